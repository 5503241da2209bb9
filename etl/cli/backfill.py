"""``etl backfill FEED --start D --end D``: a notebook per business date with papermill, a summary at the end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from etl.cli.common import EXIT_FAILED, EXIT_OK, console, err_console, shown, usage_error
from etl.errors import ConfigError
from etl.notebooks import KERNEL  # the package only: papermill loads when the command runs

if TYPE_CHECKING:
    from etl.notebooks.backfill import DayRun


def backfill_command(
    ctx: typer.Context,
    feed: Annotated[str, typer.Argument(help="Feed name, e.g. transactions or account_summary.", show_default=False)],
    start: Annotated[str, typer.Option("--start", help="First business date, YYYY-MM-DD.", show_default=False)],
    end: Annotated[str, typer.Option("--end", help="Last business date, YYYY-MM-DD.", show_default=False)],
    notebook: Annotated[
        str, typer.Option(help="Packaged notebook (explore_stage, profile_schema, reprocess) or a path to an .ipynb.")
    ] = "reprocess",
    output: Annotated[
        str, typer.Option("--output", "-o", help="Folder or s3://bucket/prefix for the output notebooks.")
    ] = "backfill",
    kernel: Annotated[str, typer.Option(help="Jupyter kernel name.")] = KERNEL,
) -> None:
    """Run a notebook once per business date with papermill; exit 1 if any date failed.

    Pass notebook parameters with -p NAME VALUE (repeatable); values are typed as the notebook declares.
    """
    from etl.notebooks.backfill import BackfillError, backfill

    parameters = _parameters(ctx.args)
    with _progress() as bar:
        task = bar.add_task(f"{feed} {notebook}", total=None)

        def done(run: DayRun) -> None:
            bar.update(task, advance=1, description=f"{feed} {run.business_date}: {'ok' if run.ok else 'FAILED'}")

        try:
            from etl.notebooks.backfill import business_dates

            bar.update(task, total=len(business_dates(start, end)))
            runs = backfill(
                feed,
                start,
                end,
                notebook=notebook,
                output_dir=output,
                parameters=parameters,
                kernel_name=kernel,
                on_day=done,
            )
        except (BackfillError, ConfigError, ValueError) as exc:
            usage_error(str(exc))
    _summary(feed, runs)
    failed = [run for run in runs if not run.ok]
    for run in failed:
        err_console.print(
            f"[bold red]failed:[/] {run.business_date} {shown(run.output)}", highlight=False, soft_wrap=True
        )
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def _parameters(args: list[str]) -> dict[str, str]:
    """``-p NAME VALUE`` pairs (Typer has no option taking two values repeatedly, so they arrive as extra args)."""
    found: dict[str, str] = {}
    rest = list(args)
    while rest:
        flag = rest.pop(0)
        if flag not in ("-p", "--parameter") or len(rest) < 2:
            usage_error(f"unexpected argument {flag!r}; notebook parameters are given as -p NAME VALUE")
        name, value = rest.pop(0), rest.pop(0)
        found[name] = value
    return found


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=not err_console.is_terminal,
    )


def _summary(feed: str, runs: list[DayRun]) -> None:
    table = Table(title=f"etl backfill {feed}", header_style="bold")
    for column in ("business date", "status", "output notebook", "error"):
        table.add_column(column, overflow="fold")
    for run in runs:
        status = "[green]ok[/]" if run.ok else "[red]FAILED[/]"
        table.add_row(run.business_date.isoformat(), status, shown(run.output), shown(run.error[:300]))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("backfill", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
        backfill_command
    )
