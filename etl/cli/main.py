"""The ``etl`` command line: one Typer app, one module per command group."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="etl",
    help="Daily fintech batch files from arrival to PostgreSQL: validate, transform, stage, load, archive.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

from etl.cli import db as _db  # noqa: E402

_db.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
