"""``etl demo``: the main job on a laptop — generate three days of both feeds, run them, show where things went."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer
from psycopg import sql
from rich.table import Table

from etl.cli.common import EXIT_FAILED, EXIT_OK, card_token_key, console, shown, usage_error
from etl.cli.run import check_database, check_zones, database_location, show_locations
from etl.config import get_settings
from etl.contract import all_contracts

if TYPE_CHECKING:
    from etl.pipeline.context import Context

START = dt.date(2024, 3, 1)


def demo(
    days: Annotated[int, typer.Option(min=1, max=31, help="Business days to generate, from 2024-03-01.")] = 3,
    rows: Annotated[int, typer.Option(min=1, help="New records per feed and day.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the dummy data.")] = 42,
) -> None:
    """Generate sample files for both feeds, run them end to end on the configured (default: embedded)
    database, then show where the parquet stage, the archive and the database rows are."""
    from etl.generate import BaseFile, generate
    from etl.pipeline.context import Context
    from etl.pipeline.run import run_file

    settings = get_settings()
    key = card_token_key(settings)
    incoming = settings.home.resolve() / "incoming"
    where = database_location(settings)
    outcomes = []
    with Context(settings, pan_key=key) as ctx:
        check_database(ctx, where)  # like `etl run`: unusable database or zones are exit 2, before anything
        check_zones(ctx)
        show_locations(settings, where)
        files = []
        for offset in range(days):
            day = START + dt.timedelta(days=offset)
            earlier = tuple(BaseFile(START + dt.timedelta(days=k), rows) for k in range(offset))
            for contract in all_contracts():
                updates = earlier if contract.feed == "transactions" else ()
                try:
                    files.append(
                        generate(contract.feed, day, rows=rows, seed=seed, out_dir=incoming, updates_of=updates)
                    )
                except OSError as exc:
                    usage_error(f"cannot write the sample files to {incoming}: {exc.strerror or exc}")
        for path in files:
            outcomes.append(run_file(ctx, path))
        _show_where(ctx)
    raise typer.Exit(EXIT_OK if all(o.ok for o in outcomes) else EXIT_FAILED)


def _show_where(ctx: Context) -> None:
    table = Table(title="where the data is", header_style="bold")
    for column in ("what", "where"):
        table.add_column(column)
    for zone in ("stage", "archive", "error"):
        table.add_row(f"{zone} zone", shown(ctx.settings.zone_uri(zone)))
    for contract in all_contracts():
        target = sql.Identifier(contract.target_table.schema_, contract.target_table.name)
        count = ctx.conn.execute(sql.SQL("SELECT count(*) FROM {}").format(target)).fetchone()[0]
        table.add_row(f"{contract.target_table.schema_}.{contract.target_table.name}", f"{count:,} rows")
    table.add_row("file ledger", "etl status")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
