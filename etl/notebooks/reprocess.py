"""Re-running one business day from the archive or error zone (``notebooks/reprocess.ipynb``, ``etl backfill``).

A real run moves the day's files back into landing and runs each through the unchanged pipeline
(``run_landed``): validation, rule F004 (content already loaded is skipped), stage, load, archive/error.
A dry run changes nothing: it validates the file where it lies and asks the database what the load would
do with the same statements in a rolled-back transaction (``etl.db.load.preview``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath

import pandas as pd

from etl.config import Settings, get_settings
from etl.contract import load_contract
from etl.core.rules import Rule
from etl.core.transform import Lineage
from etl.core.validate import validate_stream
from etl.db import ledger
from etl.db.load import preview
from etl.errors import EtlError
from etl.io.zones import Zone, copy_unique, dated_key, zone
from etl.notebooks.samples import SAMPLES_DIR, as_date, dat_files, data_path, staged_rows
from etl.pipeline.context import Context
from etl.pipeline.naming import execution_name
from etl.pipeline.notify import Status
from etl.pipeline.replay import is_data_key, take_out
from etl.pipeline.run import run_landed

SOURCE_ZONES = ("archive", "error")
COUNTS = ("rows_in", "inserted", "updated", "deleted", "unchanged")


class ReprocessError(EtlError, RuntimeError):
    """A day could not be reprocessed (no file, or a file was rejected or failed); the message says which."""


class Decision(StrEnum):
    """What a dry run finds the pipeline would do with a file (a real run's decision is its ``Status``)."""

    LOAD = "LOAD"
    SKIP = "SKIP"  # content already loaded (rule F004)
    REJECT = "REJECT"


@dataclass
class Change:
    """One file of the day: what the pipeline decided (or would decide) and the rows it changed (or would)."""

    file: str
    decision: Decision | Status  # a dry run's Decision, or the real run's notification status
    rows_in: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.decision in (Decision.REJECT, Status.FAILURE)


@dataclass
class Result:
    feed: str
    business_date: dt.date
    source_zone: str
    dry_run: bool
    changes: list[Change] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """One row per file, in file-name order."""
        return pd.DataFrame([asdict(c) for c in self.changes], columns=["file", "decision", *COUNTS, "detail"])

    def raise_for_failure(self) -> None:
        """Raise ``ReprocessError`` naming the day and the files that were (or would be) rejected or failed."""
        bad = [f"{c.file}: {c.decision} {c.detail}".strip() for c in self.changes if c.failed]
        if bad:
            raise ReprocessError(f"{self.feed} {self.business_date}: " + "; ".join(bad))


def day_files(source: Zone, feed: str, day: dt.date) -> list[str]:
    """Keys of the feed's data files for ``day`` in an archive/error zone (reports and rejects left out)."""
    prefix = dated_key(feed, day, "x")[:-1]
    return [k for k in source.list(prefix) if is_data_key(k)]


def seed_from_samples(source: Zone, feed: str, day: dt.date, samples_dir: str) -> list[str]:
    """Copy the day's sample files into an empty zone day (a fresh laptop or CI has nothing archived yet).

    Nothing is copied when the zone already holds files for the day or ``samples_dir`` is empty.
    """
    existing = day_files(source, feed, day)
    if existing or not samples_dir:
        return existing
    folder = zone(str(data_path(samples_dir)))
    for path in dat_files(load_contract(feed), samples_dir, day, day):
        copy_unique(folder, path.name, source, dated_key(feed, day, path.name))
    return day_files(source, feed, day)


def preview_file(ctx: Context, source: Zone, key: str) -> Change:
    """Dry run of one file: validate it in place, then the load's counts from a rolled-back transaction."""
    name = PurePosixPath(key).name
    report = validate_stream(lambda: source.open_read(key), name, block_size=ctx.settings.block_size)
    if not report.valid or report.business_date is None or report.feed is None:
        rules = ", ".join(f"{rule}×{count}" for rule, count in report.rule_counts.items())
        return Change(name, Decision.REJECT, rows_in=report.row_count, detail=rules)
    contract = load_contract(report.feed)
    sha = report.sha256 or ""
    lineage = Lineage.now(report.business_date, name, execution_name(contract.feed, report.business_date, sha))
    with source.open_read(key) as stream:
        rows = staged_rows(stream, contract, lineage, ctx.masker, report.rejected_lines)
        counts = preview(ctx.conn, contract, rows, unique_keys=Rule.R005 not in report.errors).counts
    skip = ledger.already_loaded(ctx.conn, sha)
    return Change(
        name,
        Decision.SKIP if skip else Decision.LOAD,
        **{k: getattr(counts, k) for k in COUNTS},
        detail="content already loaded (F004): counts show what re-applying it would change" if skip else "",
    )


def rerun_file(ctx: Context, source: Zone, key: str) -> Change:
    """Move the file back to landing and run it through the pipeline; it ends in archive or error again."""
    name = PurePosixPath(key).name
    landing_key = take_out(source, key, ctx.zone("landing"))
    outcome = run_landed(ctx, landing_key)
    detail = outcome.error or ", ".join(f"{rule}×{count}" for rule, count in outcome.errors.items())
    return Change(name, outcome.status, **{k: outcome.rows.get(k, 0) for k in COUNTS}, detail=detail)


def reprocess(
    feed: str,
    business_date: str,
    source_zone: str = "archive",
    dry_run: bool = True,
    samples_dir: str = SAMPLES_DIR,
    settings: Settings | None = None,
) -> Result:
    """Reprocess ``feed`` on an ISO ``business_date`` from ``source_zone``; see the module docstring.

    Zones and database come from ``settings`` (``ETL_*``). ``samples_dir`` seeds an empty zone day with
    the committed samples; pass "" to use only what the zone holds. Raises ``ReprocessError`` when the
    day has no file.
    """
    contract = load_contract(feed)
    day = as_date(business_date)
    if source_zone not in SOURCE_ZONES:
        raise ValueError(f"source_zone must be one of {', '.join(SOURCE_ZONES)}, not {source_zone!r}")
    result = Result(contract.feed, day, source_zone, dry_run)
    with Context(settings or get_settings()) as ctx:
        source = ctx.zone(source_zone)
        keys = seed_from_samples(source, contract.feed, day, samples_dir)
        if not keys:
            raise ReprocessError(f"{feed} {day}: no file in the {source_zone} zone")
        for key in keys:
            result.changes.append(preview_file(ctx, source, key) if dry_run else rerun_file(ctx, source, key))
    return result
