"""Backfills: one papermill run of a notebook per business date (``etl backfill``).

Parameters reach the notebook typed by its own parameters cell: a value for a ``str`` parameter stays a
string, so ``20240301`` is never turned into an int (papermill's and YAML's trap); dates always go as ISO
strings. A failing date does not stop the others; its output notebook (with the traceback) is kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl.errors import ConfigError
from etl.notebooks import KERNEL
from etl.notebooks.samples import as_date
from etl.package_data import notebooks_dir

_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}


class BackfillError(ConfigError, ValueError):
    """Bad backfill arguments (dates, notebook, parameters); nothing was run."""


@dataclass
class DayRun:
    """One business date's notebook run."""

    business_date: dt.date
    output: str
    ok: bool = False
    error: str = ""


def business_dates(start: str | dt.date, end: str | dt.date) -> list[dt.date]:
    """Every date from ``start`` to ``end`` inclusive (the feeds arrive every calendar day, weekends too)."""
    first, last = as_date(start), as_date(end)
    if first > last:
        raise BackfillError(f"--start {first} is after --end {last}")
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def notebook_path(name: str) -> Path:
    """``reprocess`` -> the packaged ``etl/notebooks/reprocess.ipynb``; a path ending in ``.ipynb`` is taken as
    given (relative to the working directory)."""
    packaged = notebooks_dir()
    path = Path(name).expanduser().resolve() if name.endswith(".ipynb") else packaged / f"{name}.ipynb"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in packaged.glob("*.ipynb")))
        raise BackfillError(f"notebook {name!r} not found (notebooks: {known})")
    return path


def declared_parameters(path: Path) -> dict[str, str]:
    """Parameter name -> declared type name, from the notebook's ``parameters`` cell."""
    import papermill

    return {name: info["inferred_type_name"] for name, info in papermill.inspect_notebook(str(path)).items()}


def coerce(name: str, text: str, type_name: str) -> Any:
    """A ``-p NAME VALUE`` string as the type the notebook declares (``str`` stays text, always)."""
    try:
        if type_name == "bool":
            lowered = text.strip().lower()
            if lowered not in _TRUE | _FALSE:
                raise ValueError(text)
            return lowered in _TRUE
        if type_name == "int":
            return int(text)
        if type_name == "float":
            return float(text)
    except ValueError:
        raise BackfillError(f"-p {name}: {text!r} is not a {type_name}") from None
    return text


def day_parameters(declared: Mapping[str, str], feed: str, day: dt.date, output_dir: str) -> dict[str, Any]:
    """What the backfill itself fills in, for the parameters the notebook has: feed, the date, output folder."""
    iso = day.isoformat()
    wanted = {"feed": feed, "business_date": iso, "start": iso, "end": iso, "output_dir": output_dir}
    return {name: value for name, value in wanted.items() if name in declared}


def output_location(output_dir: str, notebook: Path, feed: str, day: dt.date) -> str:
    """``<output>/<notebook>_<feed>_<YYYY-MM-DD>.ipynb``; the output may be a folder or ``s3://``."""
    name = f"{notebook.stem}_{feed}_{day.isoformat()}.ipynb"
    if output_dir.startswith("s3://"):
        return f"{output_dir.rstrip('/')}/{name}"
    return str(Path(output_dir).resolve() / name)


def run_day(notebook: Path, output: str, parameters: dict[str, Any], kernel_name: str = KERNEL) -> str:
    """Execute one notebook with papermill; returns an error text, or "" when it ran through."""
    import papermill

    try:
        papermill.execute_notebook(
            str(notebook),
            output,
            parameters=parameters,
            kernel_name=kernel_name,
            cwd=str(notebook.parent),
            progress_bar=False,
            log_output=False,
        )
    except papermill.PapermillExecutionError as exc:
        return f"{exc.ename}: {exc.evalue}"
    except Exception as exc:  # a kernel that died, an unwritable output: that date failed, the others go on
        return f"{type(exc).__name__}: {exc}"
    return ""


def backfill(
    feed: str,
    start: str | dt.date,
    end: str | dt.date,
    *,
    notebook: str = "reprocess",
    output_dir: str = "backfill",
    parameters: Mapping[str, str] | None = None,
    kernel_name: str = KERNEL,
    on_day: Callable[[DayRun], None] | None = None,
) -> list[DayRun]:
    """Run ``notebook`` once per business date; every date runs even when an earlier one failed.

    ``parameters`` are ``-p`` strings, converted to the types the notebook declares; names it does not
    declare are refused (a typo would otherwise be ignored silently). ``BackfillError`` for bad arguments.
    """
    from etl.contract import ContractError, load_contract

    try:
        load_contract(feed)
    except ContractError as exc:
        raise BackfillError(str(exc)) from None
    days = business_dates(start, end)
    path = notebook_path(notebook)
    declared = declared_parameters(path)
    unknown = sorted(set(parameters or {}) - set(declared))
    if unknown:
        raise BackfillError(f"{path.name} has no parameter {', '.join(unknown)} (it has {', '.join(declared)})")
    extra = {name: coerce(name, text, declared[name]) for name, text in (parameters or {}).items()}
    if not output_dir.startswith("s3://"):
        Path(output_dir).mkdir(parents=True, exist_ok=True)
    output_root = output_dir if output_dir.startswith("s3://") else str(Path(output_dir).resolve())
    runs = []
    for day in days:
        run = DayRun(day, output_location(output_dir, path, feed, day))
        run.error = run_day(
            path, run.output, {**day_parameters(declared, feed, day, output_root), **extra}, kernel_name
        )
        run.ok = not run.error
        runs.append(run)
        if on_day is not None:
            on_day(run)
    return runs
