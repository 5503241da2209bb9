"""What a run repairs after an earlier run of the same file died part-way (kill -9, power loss).

- landing and raw: the dead run's copy is taken over (``etl.io.claims.place``, called by the steps);
- temp files of dead writers go when the same key is written again (``etl.io.zones.sweep_dead_temps``);
- the stage: ``etl run`` publishes a file's stage parquet only after its load committed, so a crash
  between the commit and the rename leaves the database (and its LOADED ledger row) without the stage
  file. The rerun finds the content already loaded (SKIPPED) and restages it here when the LOADED row is
  this very file's and its stage file is missing or holds another content's rows.
- the stage on AWS: the Transform state must publish the parquet before LoadToDatabase reads it, so when
  the file then fails, MoveToError takes back the stage file this execution wrote if the ledger confirms
  its content was never loaded (``unpublish_uncommitted``).
"""

from __future__ import annotations

from etl.db.ledger import LedgerStatus
from etl.io.parquet_peek import first_value
from etl.io.stage import stage_key
from etl.io.zones import LocalZone
from etl.pipeline import steps
from etl.pipeline.context import Context


def restage_if_lost(ctx: Context, ref: steps.FileRef, validation: steps.Validation) -> str | None:
    """Restage a file already LOADED under this name and date whose stage file is missing or stale;
    returns the URI written, None when the stage was right (or is another file's business)."""
    report = validation.report
    day = report.business_date
    if ref.feed is None or day is None or not report.sha256:
        return None
    row = ctx.conn.execute(
        "SELECT file_name, business_date FROM etl.file_ledger WHERE sha256 = %s AND status = %s",
        (report.sha256, str(LedgerStatus.LOADED)),
    ).fetchone()
    if row is None or (row[0], row[1]) != (ref.name, day):
        return None  # loaded under another name or date: that file's stage holds these rows
    stage = ctx.zone("stage")
    key = stage_key(ref.contract, day, ref.stem)
    if isinstance(stage, LocalZone):
        stage.sweep_temps(key)
    if stage.exists(key):
        staged = _staged_execution(ctx, key)
        if staged == validation.execution_name or (staged is None and report.row_count == report.rows_rejected):
            return None
    return steps.transform(ctx, ref, validation)


def _staged_execution(ctx: Context, key: str) -> str | None:
    """The execution name stamped on a stage file's rows (None for a file without rows), read from its
    footer and first chunk only (``etl.io.parquet_peek``): memory stays small whatever the file's size."""
    return first_value(ctx.zone("stage"), key, "execution_name")


def unpublish_uncommitted(ctx: Context, ref: steps.FileRef, execution_name: str, sha256: str) -> str | None:
    """Delete the stage file of a failed execution whose load never committed; returns its URI if deleted.

    Only a file written by this very execution (its rows carry ``execution_name``) and only when the ledger
    answers that ``sha256`` has no LOADED row: a database that cannot answer leaves the file alone.
    """
    if ref.feed is None or ref.business_date is None:
        return None
    stage = ctx.zone("stage")
    key = stage_key(ref.contract, ref.business_date, ref.stem)
    if not stage.exists(key) or _staged_execution(ctx, key) != execution_name:
        return None
    row = ctx.conn.execute(
        "SELECT 1 FROM etl.file_ledger WHERE sha256 = %s AND status = %s", (sha256, str(LedgerStatus.LOADED))
    ).fetchone()
    if row is not None:
        return None
    stage.delete(key)
    return stage.uri_of(key)
