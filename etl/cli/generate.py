"""``etl generate FEED --date D``: a deterministic dummy file, valid or breaking exactly one rule."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from etl.cli.common import console, shown, usage_error
from etl.contract import ContractError, feed_names, load_contract
from etl.generate import CORRUPTIBLE_RULES, BaseFile, generate


def _iso_date(text: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        usage_error(f"{option}: {text!r} is not a date (YYYY-MM-DD)")


def _base_file(text: str, rows: int) -> BaseFile:
    """``YYYY-MM-DD`` or ``YYYY-MM-DD:ROWS`` (rows default to --rows)."""
    day, _, count = text.partition(":")
    if count and not count.isdigit():
        usage_error(f"--updates-of: {text!r} is not DATE or DATE:ROWS")
    return BaseFile(_iso_date(day, "--updates-of"), int(count) if count else rows)


def generate_command(
    feed: Annotated[str, typer.Argument(help="Feed name, e.g. transactions or account_summary.", show_default=False)],
    date: Annotated[str, typer.Option("--date", help="Business date, YYYY-MM-DD.", show_default=False)],
    rows: Annotated[int, typer.Option(help="Number of new detail records.", min=0)] = 1000,
    seed: Annotated[int, typer.Option(help="Seed: same arguments and seed give the same bytes.", min=0)] = 0,
    corrupt: Annotated[
        str | None, typer.Option(help=f"Break exactly this rule: {', '.join(CORRUPTIBLE_RULES)}.")
    ] = None,
    out_dir: Annotated[Path, typer.Option("-o", "--out-dir", help="Directory to write into.")] = Path("."),
    sequence: Annotated[int | None, typer.Option(help="Sequence in the day (adds _NN to the name).")] = None,
    updates_of: Annotated[
        list[str] | None,
        typer.Option(
            help="Re-send ids of the earlier file DATE[:ROWS] of this seed as updates/deletes "
            "(transactions; repeatable).",
            show_default=False,
        ),
    ] = None,
    update_fraction: Annotated[float, typer.Option(help="Share of each earlier file sent as U.")] = 0.25,
    delete_fraction: Annotated[float, typer.Option(help="Share of each earlier file sent as D.")] = 0.01,
) -> None:
    """Write a deterministic dummy .dat file and print its path."""
    try:
        load_contract(feed)
    except ContractError:
        usage_error(f"unknown feed {feed!r}; known feeds: {', '.join(feed_names())}")
    business_date = _iso_date(date, "--date")
    bases = [_base_file(text, rows) for text in updates_of or []]
    try:
        path = generate(
            feed,
            business_date,
            rows=rows,
            seed=seed,
            corrupt=corrupt.upper() if corrupt else None,
            out_dir=out_dir,
            sequence=sequence,
            updates_of=bases,
            update_fraction=update_fraction,
            delete_fraction=delete_fraction,
        )
    except ValueError as exc:
        usage_error(str(exc))
    except OSError as exc:
        usage_error(f"{out_dir}: cannot write: {exc.strerror or exc}")
    console.print(shown(path), highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_command)
