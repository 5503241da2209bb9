"""``etl db upgrade``, ``etl db status`` and ``etl status`` (the file ledger).

Each prints where the database is (never a password). Exit codes: 0 ok, 2 configuration or migration
error (docs/design.md §10).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table

from etl.cli.common import console, shown, usage_error
from etl.config import get_settings

if TYPE_CHECKING:  # psycopg and the db package load when a db command runs, not at CLI start-up
    import psycopg

T = TypeVar("T")
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _open() -> tuple[psycopg.Connection, str]:
    """Connect per the settings; configuration problems exit 2 with a clear message."""
    import subprocess

    import psycopg

    from etl.db import connect, migrate

    settings = get_settings()
    try:
        location = connect.locate(settings)
        return connect.connect(settings, location=location), location.describe()
    except (psycopg.Error, ValueError, OSError, subprocess.SubprocessError, migrate.MigrationError) as exc:
        usage_error(f"cannot reach the database: {exc}")


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _with_migrations(action: Callable[[psycopg.Connection], T]) -> tuple[T, str]:
    """Run a migration action; an edited applied migration or a statement the database refuses (a missing
    grant, docs/deploy.md §4) is a configuration error: one line, exit 2."""
    import psycopg

    from etl.db import migrate

    conn, where = _open()
    with conn:
        try:
            return action(conn), where
        except migrate.MigrationError as exc:
            usage_error(str(exc))
        except psycopg.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            usage_error(f"migration failed: {first}")


@db_app.command("upgrade")
def upgrade(as_json: JsonOption = False) -> None:
    """Apply pending migrations (the packaged etl/sql/) in order."""
    from etl.db import migrate

    applied, where = _with_migrations(migrate.upgrade)
    if as_json:
        print(json.dumps({"database": where, "applied": applied}))
        return
    console.print(f"database: {shown(where)}", highlight=False)
    console.print(f"applied: {', '.join(applied)}" if applied else "up to date")


@db_app.command("status")
def status(as_json: JsonOption = False) -> None:
    """Show every migration and when it was applied (pending ones have none)."""
    from etl.db import migrate

    rows, where = _with_migrations(migrate.status)
    if as_json:
        print(
            json.dumps(
                {
                    "database": where,
                    "migrations": [{"name": name, "applied_at": _plain(at)} for name, at in rows],
                }
            )
        )
        return
    table = Table(title=f"migrations — {shown(where)}")
    table.add_column("migration")
    table.add_column("applied at")
    for name, at in rows:
        table.add_row(name, at.isoformat(timespec="seconds") if at else "[yellow]pending[/yellow]")
    console.print(table)


@db_app.command("stop")
def stop() -> None:
    """Stop the embedded PostgreSQL under ETL_HOME (its data stays; the next command starts it again)."""
    settings = get_settings()
    if settings.database_url is not None or settings.db_secret_id:
        usage_error("the database is configured (ETL_DATABASE_URL or ETL_DB_SECRET_ID): nothing to stop")
    from etl.db import embedded

    stopped = embedded.stop(settings.home)
    console.print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")


LEDGER_COLUMNS = (
    ("feed", "feed"),
    ("file_name", "file"),
    ("business_date", "date"),
    ("status", "status"),
    ("rows_in", "in"),
    ("rows_inserted", "ins"),
    ("rows_updated", "upd"),
    ("rows_deleted", "del"),
    ("rows_unchanged", "same"),
    ("rows_not_found", "absent"),  # deletes of keys the table lacks
    ("rows_superseded", "sup"),
    ("rows_skipped", "skip"),
    ("rows_rejected", "rej"),
    ("finished_at", "finished"),
    ("error", "error"),
)
STATUS_STYLE = {"LOADED": "green", "SKIPPED": "cyan", "REJECTED": "red", "FAILED": "red"}


def ledger_status(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Newest rows to show.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Show the file ledger: every file loaded, skipped, rejected or failed, newest first."""
    conn, where = _open()
    with conn:
        from etl.db import ledger, migrate

        pending = [name for name, applied in migrate.status(conn) if applied is None]
        if pending:
            usage_error(f"the database at {where} lacks migrations {', '.join(pending)}: run `etl db upgrade`")
        rows = ledger.ledger_rows(conn, limit)
    if as_json:
        print(json.dumps({"database": where, "files": [{k: _plain(v) for k, v in r.items()} for r in rows]}))
        return
    table = Table(title=f"file ledger — {shown(where)}")
    for _, header in LEDGER_COLUMNS:
        table.add_column(header, justify="right" if header in {"in", "ins", "upd", "del", "same", "rej"} else "left")
    for r in rows:
        cells = []
        for key, _ in LEDGER_COLUMNS:
            value = r[key]
            if key == "finished_at" and value:
                value = value.isoformat(timespec="seconds")
            text = "" if value is None else str(value)
            cells.append(f"[{STATUS_STYLE[text]}]{text}[/]" if key == "status" else shown(text))
        table.add_row(*cells)
    console.print(table)
    if not rows:
        console.print("no files yet")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.command("status")(ledger_status)
