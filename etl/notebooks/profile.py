"""Schema profiles (``notebooks/profile_schema.ipynb``): per-field statistics and conformance to the contract.

A profile is taken of a raw ``.dat`` file (the text as it arrived, parsed by ``etl.core.parse``) or of a
stage partition (typed rows). Conformance reuses the validator's checks, so "conforms" here means what it
means to the pipeline. Card numbers never leave the parser unmasked: a raw profile gives no min/max for
PII fields. That much is the contract's and the card data's business, so it lives here; comparing days
(drift), charts and what to look at are the notebook's cells. A ``Profile`` is also a file format:
``quality_history`` reads the null rates and distinct counts of the profiles written here.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from etl.contract import Contract, FieldSpec, FieldType, Pii, load_contract
from etl.core import checks
from etl.core.parse import open_dat
from etl.io.stage import read_stage
from etl.io.zones import zone
from etl.notebooks.samples import SAMPLES_DIR, as_date, dat_files, stage_or_samples

Source = Literal["raw", "stage"]
# Lineage that changes on every run says nothing about the data; leaving it out keeps profiles comparable.
VOLATILE_COLUMNS = ("execution_name", "loaded_at")
# A card's stand-ins in the stage: their min/max says nothing about the data and would only show tokens.
CARD_COLUMNS = ("card_last4", "card_token")
RATES = ("null_rate", "pattern_ok", "allowed_ok", "type_ok")  # shares of rows, as floats (NaN: does not apply)
_TYPE_CHECKS = {
    FieldType.date: checks.bad_date,
    FieldType.timestamp: checks.bad_timestamp,
    FieldType.integer: checks.bad_digits,
    FieldType.decimal: checks.bad_digits,
}


@dataclass
class Profile:
    """One day's profile of a feed: per-field statistics, and the drift against the previous business day
    (which the notebook computes; a profile written without one has ``previous_date`` None)."""

    feed: str
    business_date: dt.date
    source: Source
    rows: int
    fields: pd.DataFrame
    previous_date: dt.date | None = None
    drift: pd.DataFrame = field(default_factory=pd.DataFrame)

    def to_dict(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "business_date": self.business_date.isoformat(),
            "source": self.source,
            "rows": self.rows,
            "fields": _records(self.fields),
            "previous_date": self.previous_date.isoformat() if self.previous_date else None,
            "drift": _records(self.drift),
        }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if _missing(v) else v) for k, v in row.items()} for row in frame.to_dict("records")]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _rate(mask: np.ndarray, of: np.ndarray) -> float | None:
    """Share of ``of`` rows that are set in ``mask`` (None when there are no such rows)."""
    total = int(of.sum())
    return round(float((mask & of).sum()) / total, 4) if total else None


# --- raw files -------------------------------------------------------------------------------------------


def raw_table(path: str | Path, contract: Contract) -> pa.Table:
    """Every detail record of a ``.dat`` file as text (fixed-width values right-trimmed)."""
    with Path(path).open("rb") as stream:
        table = pa.Table.from_batches(list(open_dat(stream, contract).batches()), contract_raw_schema(contract))
    if contract.format == "fixed_width":
        table = pa.table({n: pc.utf8_rtrim(table[n], characters=" ") for n in contract.field_names})
    return table.select(contract.field_names)


def contract_raw_schema(contract: Contract) -> pa.Schema:
    from etl.schema import raw_schema

    return raw_schema(contract)


def _raw_extremes(spec: FieldSpec, values: pa.Array, ok: np.ndarray) -> tuple[str | None, str | None]:
    """Min and max of the values that parse; numbers compared as numbers, never shown for PII."""
    if spec.pii is not Pii.none or not ok.any():
        return None, None
    kept = values.filter(pa.array(ok))
    if spec.type in (FieldType.integer, FieldType.decimal):
        low, high = (v.as_py() for v in pc.min_max(pc.cast(kept, pa.int64())).values())
        scale = spec.implied_decimals
        return str(Decimal(low).scaleb(-scale)), str(Decimal(high).scaleb(-scale))
    extremes = pc.min_max(kept)
    return extremes["min"].as_py(), extremes["max"].as_py()


def _raw_field(spec: FieldSpec, values: pa.Array) -> dict[str, Any]:
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    present = ~checks.to_mask(pc.equal(values, ""))
    pattern = checks.matches(values, spec.pattern) if spec.pattern else None
    allowed = checks.to_mask(pc.is_in(values, pa.array(spec.allowed))) if spec.allowed else None
    typed = ~_TYPE_CHECKS[spec.type](values) if spec.type in _TYPE_CHECKS else None
    ok = present & (typed if typed is not None else True) & (pattern if pattern is not None else True)
    low, high = _raw_extremes(spec, values, ok)
    return {
        "field": spec.name,
        "type": spec.type.value,
        "null_rate": round(1 - float(present.mean()), 4) if len(values) else None,
        "distinct": len(pc.unique(values.filter(pa.array(present)))),
        "min": low,
        "max": high,
        "pattern_ok": _rate(pattern, present) if pattern is not None else None,
        "allowed_ok": _rate(allowed, present) if allowed is not None else None,
        "type_ok": _rate(typed, present) if typed is not None else None,
    }


def profile_raw(path: str | Path, contract: Contract) -> tuple[int, pd.DataFrame]:
    """Row count and per-field statistics of a raw file's detail records."""
    table = raw_table(path, contract)
    return table.num_rows, _frame([_raw_field(spec, table[spec.name]) for spec in contract.fields])


def _frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Per-field records as a frame whose rate columns are floats, so a notebook can subtract and compare them."""
    return pd.DataFrame(records).astype(dict.fromkeys(RATES, float))


# --- stage partitions --------------------------------------------------------------------------------------


def _stage_field(contract: Contract, name: str, values: pa.Array) -> dict[str, Any]:
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    present = ~checks.to_mask(pc.is_null(values))
    spec = next((s for s in contract.fields if s.name == name), None)
    text = values.cast(pa.string()) if pa.types.is_string(values.type) else None
    pattern = checks.matches(text, spec.pattern) if spec and spec.pattern and text is not None else None
    allowed = checks.to_mask(pc.is_in(values, pa.array(spec.allowed))) if spec and spec.allowed else None
    extremes = pc.min_max(values) if present.any() and name not in CARD_COLUMNS else None
    return {
        "field": name,
        "type": str(values.type),
        "null_rate": round(1 - float(present.mean()), 4) if len(values) else None,
        "distinct": len(pc.unique(values.filter(pa.array(present)))),
        "min": _text(extremes["min"].as_py()) if extremes else None,
        "max": _text(extremes["max"].as_py()) if extremes else None,
        "pattern_ok": _rate(pattern, present) if pattern is not None else None,
        "allowed_ok": _rate(allowed, present) if allowed is not None else None,
        "type_ok": None,  # typed columns parsed already; rows that did not were rejected upstream
    }


def _text(value: Any) -> str | None:
    return None if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)


def profile_stage(stage_uri: str, contract: Contract, day: dt.date) -> tuple[int, pd.DataFrame]:
    """Row count and per-column statistics of one stage partition (volatile lineage left out)."""
    table = read_stage(stage_uri, contract, day, day)
    names = [n for n in table.column_names if n not in VOLATILE_COLUMNS]
    return table.num_rows, _frame([_stage_field(contract, n, table[n]) for n in names])


# --- one day, output ----------------------------------------------------------------------------------------


@overload
def measure(
    feed: str,
    business_date: str | dt.date,
    source: Source = ...,
    raw_dir: str = ...,
    stage_uri: str = ...,
    *,
    missing_ok: Literal[False] = ...,
) -> Profile: ...
@overload
def measure(
    feed: str,
    business_date: str | dt.date,
    source: Source = ...,
    raw_dir: str = ...,
    stage_uri: str = ...,
    *,
    missing_ok: bool,
) -> Profile | None: ...
def measure(
    feed: str,
    business_date: str | dt.date,
    source: Source = "raw",
    raw_dir: str = SAMPLES_DIR,
    stage_uri: str = "",
    *,
    missing_ok: bool = False,
) -> Profile | None:
    """Profile ``feed`` on one business date from ``raw`` files in ``raw_dir`` or from the ``stage``.

    A day without data raises ``FileNotFoundError``, or gives None with ``missing_ok`` (the day before, say,
    which a profile compares with when it exists). An empty ``stage_uri`` with ``source="stage"`` means a stage
    built from ``raw_dir``'s samples.
    """
    contract = load_contract(feed)
    day = as_date(business_date)
    if source not in ("raw", "stage"):
        raise ValueError(f"source must be 'raw' or 'stage', not {source!r}")
    if source == "stage":
        rows, fields = profile_stage(stage_or_samples(feed, stage_uri, raw_dir), contract, day)
    else:
        files = dat_files(contract, raw_dir, day, day)
        if len(files) > 1:
            raise ValueError(f"{len(files)} {feed} files for {day}; profile them one by one")
        rows, fields = profile_raw(files[0], contract) if files else (0, pd.DataFrame())
    if rows:
        return Profile(feed, day, source, rows, fields)
    if missing_ok:
        return None
    raise FileNotFoundError(f"no {feed} data for {day} in the {source} source")


def to_html(result: Profile) -> str:
    """A self-contained HTML page: the field table and the drift table."""
    title = html.escape(f"{result.feed} {result.business_date} ({result.source}, {result.rows} rows)")
    drift_part = (
        result.drift.to_html(index=False, na_rep="")
        if result.previous_date
        else "<p>No comparison with a previous business day in this profile.</p>"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
        f"<h1>{title}</h1><h2>Fields</h2>{result.fields.to_html(index=False, na_rep='')}"
        f"<h2>Drift against {result.previous_date or '-'}</h2>{drift_part}</body></html>"
    )


def write(result: Profile, output_dir: str = ".") -> list[str]:
    """Write ``<feed>_<date>.profile.json`` and ``.profile.html`` into ``output_dir`` (folder or ``s3://``;
    empty: a temp folder, so a notebook run as-is never writes into the repository).

    Returns the file names written (not paths: notebook outputs stay the same wherever they run).
    """
    folder = output_dir or str(Path(tempfile.gettempdir()) / "fintech-etl-profiles")
    target = zone(folder if folder.startswith("s3://") else str(Path(folder).resolve()))
    stem = f"{result.feed}_{result.business_date:%Y%m%d}.profile"
    document = json.dumps(result.to_dict(), indent=2, default=str).encode()
    target.put_bytes(document, f"{stem}.json")
    target.put_bytes(to_html(result).encode(), f"{stem}.html")
    return [f"{stem}.json", f"{stem}.html"]
