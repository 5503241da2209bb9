"""``etl validate FILE...``: the validation report only; changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from etl.cli.common import EXIT_FAILED, EXIT_OK, check_inputs, console, print_json, shown, usage_error
from etl.contract import ContractError, load_contract
from etl.core.validate import Report, validate_file


def validate(
    files: Annotated[list[Path], typer.Argument(help="One or more .dat files.", show_default=False)],
    feed: Annotated[str | None, typer.Option(help="Check against this feed instead of guessing from the name.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON report per line.")] = False,
) -> None:
    """Validate files against their feed contract and print the report (exit 1 if any file is invalid)."""
    try:
        contract = load_contract(feed) if feed else None
    except ContractError as exc:
        usage_error(str(exc))
    check_inputs(files)
    reports: list[Report] = []
    for path in files:
        try:
            report = validate_file(path, contract)
        except OSError as exc:
            usage_error(f"{path}: cannot read: {exc.strerror or exc}")
        except Exception as exc:  # a bug, not bad input: still one line, never a traceback
            usage_error(f"{path}: internal error while validating ({type(exc).__name__}: {exc}); please report it")
        reports.append(report)
        if as_json:
            print_json(report.model_dump(mode="json"))
        else:
            _show(report)
    raise typer.Exit(EXIT_OK if all(r.valid for r in reports) else EXIT_FAILED)


def _show(report: Report) -> None:
    verdict = "[green]VALID[/]" if report.valid else "[bold red]INVALID[/]"
    console.print(
        f"{verdict}  {shown(report.file)}  feed={report.feed or '-'}  business_date={report.business_date or '-'}  "
        f"rows={report.row_count:,}  control_total={report.control_total if report.control_total is not None else '-'}",
        highlight=False,
    )
    if not report.errors:
        return
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("rule", "count", "first lines", "message"):
        table.add_column(column)
    for rule, err in sorted(report.errors.items()):
        table.add_row(rule, f"{err.count:,}", ", ".join(map(str, err.lines)) or "-", shown(err.message))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
