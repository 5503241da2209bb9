"""``etl run FILE...``: the whole pipeline per file, one notification each, a summary at the end."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from etl.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    STATUS_COLOURS,
    card_token_key,
    check_inputs,
    console,
    err_console,
    print_json,
    shown,
    usage_error,
)
from etl.config import Settings, get_settings

if TYPE_CHECKING:  # the pipeline (psycopg, boto3, ...) loads when the command runs, not at CLI start-up
    from etl.pipeline.context import Context
    from etl.pipeline.run import Outcome


def run(
    files: Annotated[list[Path], typer.Argument(help="One or more .dat files.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Only JSON on stdout: a notification per file.")] = False,
) -> None:
    """Run each file through landing → raw → validate → transform → stage → load → archive/error → notify."""
    check_inputs(files)
    settings = get_settings()
    key = card_token_key(settings)
    where = database_location(settings)
    from etl.pipeline.context import Context
    from etl.pipeline.interrupts import Interrupted, interruptible, raise_pending
    from etl.pipeline.run import run_file

    outcomes: list[Outcome] = []
    current: Path | None = None
    try:
        with interruptible(), _progress(as_json) as bar, Context(settings, pan_key=key) as ctx:
            check_database(ctx, where)
            check_zones(ctx)
            if not as_json:  # once it is all usable: an error stays the one line on stderr
                show_locations(settings, where)
            for index, path in enumerate(files):
                current = path
                if index and not ctx.database_reachable():  # lost between two files: leave the rest alone
                    _report(outcomes, as_json, settings.sns_topic_arn)
                    usage_error(f"lost the database at {where}; not started: {_names(files[index:])}")
                # one pass over the raw file validates, transforms and loads it; a further pass (confirming
                # duplicate keys, leaving out rejected records) starts the bar again
                task = bar.add_task(shown(path.name), total=_size(path))
                ctx.on_read = lambda n, task=task: bar.update(task, advance=n)
                ctx.on_pass = lambda task=task: bar.update(task, completed=0)

                def step(name: str, task: int = task, label: str = shown(path.name)) -> None:
                    bar.update(task, description=f"{label}: {name}")

                outcome = run_file(ctx, path, step)
                outcomes.append(outcome)
                current = None
                raise_pending()  # a signal that came after the load committed: stop now the file is settled
                bar.update(task, completed=_size(path))
                if outcome.database_lost:
                    _report(outcomes, as_json, settings.sns_topic_arn)
                    rest = f"; not started: {_names(files[index + 1 :])}" if files[index + 1 :] else ""
                    usage_error(f"lost the database at {where}: {shown(path.name)} left in raw for a rerun{rest}")
            current = None
    except Interrupted as exc:
        _report(outcomes, as_json, settings.sns_topic_arn)
        done = len(outcomes)
        rest = [p for p in files[done:] if p != current]
        what = f"{shown(current.name)} rolled back and left for a rerun" if current else f"stopped after {done} file(s)"
        left = f"; not started: {_names(rest)}" if rest else ""
        err_console.print(f"[bold red]interrupted[/] by {exc.name}: {what}{left}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    _report(outcomes, as_json, settings.sns_topic_arn)
    raise typer.Exit(EXIT_OK if all(o.ok for o in outcomes) else EXIT_FAILED)


def _names(paths: list[Path]) -> str:
    return ", ".join(shown(p.name) for p in paths)


def _report(outcomes: list[Outcome], as_json: bool, sns_topic_arn: str | None) -> None:
    """The per-file lines (``--json`` with SNS) or the summary table of the files that ran."""
    if as_json:
        if sns_topic_arn:  # notifications went to SNS: still give the caller one line per file
            for outcome in outcomes:
                print_json(outcome.message)
    elif outcomes:
        _summary(outcomes)


def show_locations(settings: Settings, where: str | None = None) -> None:
    """Say where the zones and the database are (never a password)."""
    where = where or database_location(settings)
    home = shown(settings.home.resolve())
    err_console.print(f"zones under [bold]{home}[/]; database: {shown(where)}", highlight=False)


def database_location(settings: Settings) -> str:
    """Where the database is (password-free), resolved before any file moves: an unreadable database
    secret is a configuration error (exit 2), not a failure of every file."""
    from etl.db.connect import describe

    try:
        return describe(settings)
    except Exception as exc:
        source = f" from secret {settings.db_secret_id}" if settings.db_secret_id else ""
        usage_error(f"cannot locate the database{source}: {type(exc).__name__}: {exc}")


def check_database(ctx: Context, where: str) -> None:
    """Connect and check the schema before any file moves: a database that is down or not migrated is a
    configuration error (exit 2) with every file left where it was, not a FAILED run of each file."""
    import subprocess

    import psycopg

    from etl.db import migrate

    try:
        pending = [name for name, applied in migrate.status(ctx.conn) if applied is None]
    except (psycopg.Error, migrate.MigrationError, OSError, subprocess.SubprocessError) as exc:
        # OSError, SubprocessError: the embedded server cannot start (a read-only ETL_HOME, ...)
        first_line = (str(exc).strip().splitlines() or [""])[0]
        usage_error(f"cannot use the database at {where}: {type(exc).__name__}: {first_line}")
    if pending:
        usage_error(f"the database at {where} lacks migrations {', '.join(pending)}: run `etl db upgrade`")


def check_zones(ctx: Context) -> None:
    """Each local zone folder exists (created ``0700``) and is writable before any file moves: a read-only or
    missing ``ETL_HOME`` is a configuration error (exit 2) with every file left where it was."""
    import os

    from etl.io.zones import LocalZone

    for name, target in ctx.zones.items():
        if not isinstance(target, LocalZone):
            continue
        try:
            target.make_folder(target.root)
            if not os.access(target.root, os.W_OK | os.X_OK):
                raise PermissionError(13, "Permission denied")
        except OSError as exc:
            usage_error(f"the {name} zone {target.root} cannot be written: {exc.strerror or exc}")


def _size(path: Path) -> int:
    """The input's size for the progress bar (1 when it cannot be read: the run itself reports why)."""
    try:
        return max(path.stat().st_size, 1)
    except OSError:
        return 1


def _progress(quiet: bool) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
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
        colour = STATUS_COLOURS[o.status]
        detail = "; ".join(filter(None, [o.error or ", ".join(f"{k}×{v}" for k, v in o.errors.items()), *o.warnings]))
        table.add_row(
            shown(o.file),
            f"[{colour}]{o.status}[/]",
            *(f"{o.rows.get(k, 0):,}" for k in ("rows_in", "inserted", "updated", "deleted", "unchanged")),
            shown(detail),
        )
    console.print(table)
    for o in outcomes:
        if o.location:
            console.print(f"{shown(o.file)} → {shown(o.location)}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
