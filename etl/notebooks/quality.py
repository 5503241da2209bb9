"""Data-quality history of a feed (``notebooks/quality_history.ipynb``): what to read, not what to conclude.

The notebook asks three sources and does its own grouping and charts in cells a person can change:

- the **file ledger** (``etl.file_ledger``): one row per file the pipeline finished, with its status and the
  rows it brought, inserted, updated, deleted, left unchanged or rejected;
- the **validation reports** kept beside every file in the archive and error zones: rule counts (rejects per
  rule) and the control total computed over the detail records against the trailer's;
- the **profiles** ``profile_schema`` writes per day (``<feed>_<YYYYMMDD>.profile.json``): null rate and distinct
  count of every column. A day without one is profiled from the stage and written, so the history grows as
  backfills run and is never computed twice.

Drift uses the same trailing-window comparison as the pipeline's warnings (``etl.core.drift``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from psycopg import sql

from etl.config import Settings, get_settings
from etl.contract import load_contract
from etl.core.drift import Margin, compare
from etl.core.validate import Report
from etl.io.zones import REPORT_SUFFIX, zone
from etl.notebooks import profile
from etl.notebooks.samples import SAMPLES_DIR, as_date, dat_files
from etl.pipeline.context import Context

LEDGER_COLUMNS = (
    "business_date", "file_name", "status", "rows_in", "rows_inserted", "rows_updated", "rows_deleted",
    "rows_unchanged", "rows_rejected", "started_at",
)  # fmt: skip


def _days(start: str, end: str) -> tuple[dt.date, dt.date]:
    first, last = as_date(start), as_date(end)
    if first > last:
        raise ValueError(f"start {first} is after end {last}")
    return first, last


def ledger(feed: str, start: str, end: str, settings: Settings | None = None) -> pd.DataFrame:
    """Every ledger row of ``feed`` for business dates in ``[start, end]``, oldest first."""
    first, last = _days(start, end)
    query = sql.SQL(
        "SELECT {} FROM etl.file_ledger WHERE feed = %s AND business_date BETWEEN %s AND %s "
        "ORDER BY business_date, ledger_id"
    ).format(sql.SQL(", ").join(map(sql.Identifier, LEDGER_COLUMNS)))
    with Context(settings or get_settings()) as ctx:
        rows = ctx.conn.execute(query, (feed, first, last)).fetchall()
    frame = pd.DataFrame(rows, columns=list(LEDGER_COLUMNS))
    frame["business_date"] = pd.to_datetime(frame["business_date"]).dt.date
    return frame


def seed_from_samples(
    feed: str, start: str, end: str, samples_dir: str = SAMPLES_DIR, settings: Settings | None = None
) -> list[str]:
    """Run the sample files of the range through the pipeline when the ledger knows nothing of it yet.

    A fresh laptop or CI has no history; this gives the notebook one, through the real pipeline (zones,
    validation, load, ledger). A range the ledger already covers is left alone, and ``samples_dir=""``
    never seeds. Returns the statuses of the files run.
    """
    from etl.pipeline.run import run_file

    first, last = _days(start, end)
    if not samples_dir or not ledger(feed, start, end, settings).empty:
        return []
    contract = load_contract(feed)
    paths = dat_files(contract, samples_dir, first, last) + dat_files(contract, f"{samples_dir}/corrupt", first, last)
    with Context(settings or get_settings()) as ctx, contextlib.redirect_stdout(io.StringIO()):  # notifications
        return [f"{path.name}: {run_file(ctx, path).status}" for path in sorted(paths, key=lambda p: p.name)]


def reports(feed: str, start: str, end: str, settings: Settings | None = None) -> pd.DataFrame:
    """One row per validation report in the archive and error zones for the range: zone, file, rows, rejects,
    control totals, and one ``<rule>`` column per rule that fired (its count)."""
    first, last = _days(start, end)
    settings = settings or get_settings()
    records = []
    for zone_name in ("archive", "error"):
        target = zone(settings.zone_uri(zone_name))
        for day in pd.date_range(first, last).date:
            for key in target.list(f"{feed}/{day:%Y-%m-%d}/"):
                if not key.endswith(REPORT_SUFFIX):
                    continue
                with target.open_read(key) as stream:
                    report = Report.model_validate(json.loads(stream.read()))
                records.append(
                    {
                        "business_date": day,
                        "zone": zone_name,
                        "file": report.file,
                        "valid": report.valid,
                        "rows": report.row_count,
                        "rows_rejected": report.rows_rejected,
                        "control_total": report.control_total,
                        "trailer_control_total": report.trailer_control_total,
                        **report.rule_counts,
                    }
                )
    return pd.DataFrame(records)


def profiles(
    feed: str, start: str, end: str, profiles_dir: str, stage_uri: str = "", settings: Settings | None = None
) -> pd.DataFrame:
    """Per day and column: rows, null rate and distinct count, from ``<feed>_<YYYYMMDD>.profile.json`` in
    ``profiles_dir``. A staged day without a profile is profiled from the stage and its profile written there.
    An empty ``stage_uri`` means the stage zone of the settings."""
    first, last = _days(start, end)
    stage = stage_uri or (settings or get_settings()).zone_uri("stage")
    folder = Path(profiles_dir).expanduser().resolve() if "://" not in profiles_dir else None  # an output folder
    target = zone(str(folder) if folder else profiles_dir)
    records = []
    for day in pd.date_range(first, last).date:
        name = f"{feed}_{day:%Y%m%d}.profile.json"
        if not target.exists(name):
            measured = profile.measure(feed, day, "stage", stage_uri=stage, missing_ok=True)
            if measured is None:
                continue  # nothing staged that day
            profile.write(measured, str(folder) if folder else profiles_dir)  # fields only: the history reads no drift
        with target.open_read(name) as stream:
            document = json.loads(stream.read())
        for column in document["fields"]:
            records.append(
                {
                    "business_date": day,
                    "rows": document["rows"],
                    "field": column["field"],
                    "null_rate": column["null_rate"],
                    "distinct": column["distinct"],
                }
            )
    return pd.DataFrame(records, columns=["business_date", "rows", "field", "null_rate", "distinct"])


def trailing_drift(series: pd.Series, margin: Margin, *, window_days: int, min_days: int = 2) -> pd.Series:
    """For a metric indexed by business date: the drift text of each day against the ``window_days`` calendar
    days before it ("" when normal or without enough history). The pipeline's warnings use the same rule."""
    values = series.dropna().sort_index()
    flags = {}
    for day, value in values.items():
        window: Sequence[float] = [v for d, v in values.items() if day - dt.timedelta(days=window_days) <= d < day]
        found = compare(
            str(series.name or "value"), float(value), [float(v) for v in window], margin, min_days=min_days
        )
        flags[day] = found.text() if found else ""
    return pd.Series(flags, name=f"{series.name}_drift", dtype=str)
