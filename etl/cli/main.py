"""The ``etl`` command line: one Typer app, one module per command group."""

from __future__ import annotations

import typer

from etl.cli import backfill, db, demo, generate, replay, run, sim, validate

app = typer.Typer(
    name="etl",
    help="Daily fintech batch files from arrival to PostgreSQL: validate, transform, stage, load, archive.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Configuration comes from ETL_* environment variables; see the README."""


validate.register(app)
db.register(app)
generate.register(app)
run.register(app)
demo.register(app)
backfill.register(app)
sim.register(app)
replay.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
