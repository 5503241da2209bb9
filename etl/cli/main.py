"""The ``etl`` command line: one Typer app, one module per command group.

Errors end here, in ONE place (``EtlGroup.main``), as one line on stderr and never a traceback:
a usage or configuration problem (:class:`etl.errors.ConfigError`, a bad option or argument) exits 2; any
other exception exits 1 (something failed; the README's exit codes). ``ETL_DEBUG=1`` (or ``--debug``) also
prints the traceback, for a bug report.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from etl.cli import backfill, db, demo, generate, replay, run, sim, validate
from etl.cli.common import EXIT_FAILED, EXIT_USAGE, error_line
from etl.errors import ConfigError


class EtlGroup(TyperGroup):
    """The root command: runs a command, then turns whatever escaped it into an exit code and one line."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        args = list(sys.argv[1:] if args is None else args)
        debug = os.environ.get("ETL_DEBUG", "").strip() not in ("", "0") or "--debug" in args
        args = [a for a in args if a != "--debug"]
        code = self._run(args, prog_name, complete_var, debug, **extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(self, args: list[str], prog_name: str | None, complete_var: str | None, debug: bool, **extra: Any) -> int:
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            return result if isinstance(result, int) else 0
        except typer.TyperException as exc:  # click's errors (typer vendors click): usage, bad parameter
            if type(exc).__name__ == "NoArgsIsHelpError":  # the help was printed
                return exc.exit_code
            error_line(_usage_text(exc) if exc.exit_code == EXIT_USAGE else exc.format_message())
            return exc.exit_code
        except typer.Abort:
            error_line("aborted")
            return EXIT_FAILED
        except ConfigError as exc:
            _debug(debug)
            error_line(str(exc))
            return EXIT_USAGE
        except Exception as exc:  # a bug or an unforeseen fault: still one line
            _debug(debug)
            error_line(f"{type(exc).__name__}: {exc}" + ("" if debug else " (ETL_DEBUG=1 shows the traceback)"))
            return EXIT_FAILED


def _usage_text(exc: typer.TyperException) -> str:
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "etl"
    return f"{exc.format_message()} (see `{command} --help`)"


def _debug(debug: bool) -> None:
    if debug:
        traceback.print_exc(file=sys.stderr)


app = typer.Typer(
    name="etl",
    cls=EtlGroup,
    help="Daily fintech batch files from arrival to PostgreSQL: validate, transform, stage, load, archive.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Configuration comes from ETL_* environment variables; see the README. ETL_DEBUG=1 (or --debug) adds the
    traceback to an error line."""


validate.register(app)
db.register(app)
generate.register(app)
run.register(app)
demo.register(app)
backfill.register(app)
sim.register(app)
replay.register(app)


def main() -> None:
    """The ``etl`` process: ``EtlGroup.main`` exits with the command's code.

    The interpreter then finalizes normally. Nothing etl leaves behind may still be at work by then: every
    thread a pass starts is joined when the pass ends (``etl.streams``), and pyarrow is never handed a Python
    file object to read from its own threads (``etl.pipeline.recover``), which is what once aborted a finished
    run at exit ("terminate called without an active exception"). A test that checks an exit code sees any
    such abort again, instead of a forced exit hiding it.
    """
    app()


if __name__ == "__main__":
    main()
