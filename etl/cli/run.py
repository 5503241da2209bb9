"""``etl run FILE...``: the whole pipeline per file, one notification each, a summary at the end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from etl.cli.common import EXIT_FAILED, EXIT_OK, console, err_console, print_json, usage_error
from etl.config import get_settings
from etl.pipeline.context import Context
from etl.pipeline.run import Outcome, run_file

STEPS = 7  # landing → raw, validate, transform → stage, load, archive, notify (+ one spare for reject/skip)


def run(
    files: Annotated[list[Path], typer.Argument(help="One or more .dat files.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcomes as JSON lines.")] = False,
) -> None:
    """Run each file through landing → raw → validate → transform → stage → load → archive/error → notify."""
    for path in files:
        if not path.is_file():
            usage_error(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
    settings = get_settings()
    if not as_json:
        show_locations(settings)
    outcomes: list[Outcome] = []
    with Context(settings) as ctx, _progress(as_json) as bar:
        for path in files:
            task = bar.add_task(path.name, total=STEPS)

            def step(name: str, task: int = task, label: str = path.name) -> None:
                bar.update(task, advance=1, description=f"{label}: {name}")

            outcomes.append(run_file(ctx, path, step))
            bar.update(task, completed=STEPS)
    if as_json:
        for outcome in outcomes:
            print_json({"summary": outcome.message})
    else:
        _summary(outcomes)
    raise typer.Exit(EXIT_OK if all(o.ok for o in outcomes) else EXIT_FAILED)


def show_locations(settings) -> None:
    from etl.db.connect import describe

    err_console.print(
        f"zones under [bold]{settings.home.resolve()}[/]; database: {describe(settings)}", highlight=False
    )


def _progress(quiet: bool) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=quiet or not err_console.is_terminal,
    )


def _summary(outcomes: list[Outcome]) -> None:
    table = Table(title="etl run", header_style="bold")
    for column in ("file", "status", "rows in", "inserted", "updated", "deleted", "unchanged", "detail"):
        table.add_column(column)
    for o in outcomes:
        colour = {"SUCCESS": "green", "SKIPPED": "yellow", "FAILURE": "red"}[o.status]
        detail = o.error or ", ".join(f"{k}×{v}" for k, v in o.errors.items()) or (o.location or "")
        table.add_row(
            o.file,
            f"[{colour}]{o.status}[/]",
            *(f"{o.rows.get(k, 0):,}" for k in ("rows_in", "inserted", "updated", "deleted", "unchanged")),
            detail,
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
