"""The pipeline's steps, each once. Inputs and outputs are zone keys and small results, never file contents,
so the same functions serve ``etl run`` (chained in-process) and the Lambda handlers (one state each).

File lifecycle: landing → raw (copy, verify, delete) → validated in place (report written beside it) →
staged as parquet → loaded → the raw file and its sidecars move to archive (LOADED, SKIPPED) or error
(REJECTED, FAILED). Every file that reaches raw ends in archive or error.

``etl run`` first tries its local fast path, ``etl.pipeline.one_pass``: the same steps in one pass over the
raw file, the verdict arriving before anything is applied or published; what that pass cannot take goes step
by step here, as the Lambdas always do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from etl.contract import Contract, contract_for_file, load_contract
from etl.core.parse import open_dat
from etl.core.rules import Rule
from etl.core.transform import Lineage, transform_batches
from etl.core.validate import Report, card_name_report, validate_stream
from etl.db import ledger
from etl.db.ledger import LedgerStatus, RowCounts
from etl.db.load import LoadResult
from etl.db.load import load as load_batches
from etl.io import claims
from etl.io.stage import stage_key, write_stage
from etl.io.zones import REJECTS_SUFFIX, REPORT_SUFFIX, LocalZone, dated_key, move, sidecar_key
from etl.names import holds_card_number, name_text
from etl.pipeline.context import Context
from etl.pipeline.naming import execution_name as name_execution
from etl.schema import stage_schema
from etl.streams import prefetched, tee

NAME_SUFFIX = ".name"  # beside a file whose name held a card number: that exact name (docs/design.md §6)
SIDECARS = (REPORT_SUFFIX, REJECTS_SUFFIX, NAME_SUFFIX)
# The raw folder of files whose name held a card number (rule F005): past landing their keys are masked.
CARD_NAME_FOLDER = "card-number-in-name"


@dataclass(frozen=True)
class FileRef:
    """A file in the raw zone: its key and what its name tells (feed and business date, when it matches).

    ``card_name``: the name held a card number (rule F005) — it is in ``CARD_NAME_FOLDER`` under its masked
    name, or (a landing key) still holds it; such a file has no feed, whatever its name would match.
    """

    key: str
    name: str
    feed: str | None
    business_date: dt.date | None
    card_name: bool = False

    @classmethod
    def for_key(cls, key: str) -> FileRef:
        name = PurePosixPath(key).name
        card_name = key.startswith(f"{CARD_NAME_FOLDER}/") or holds_card_number(name)
        contract = None if card_name else contract_for_file(name)
        return cls(
            key,
            name,
            contract.feed if contract else None,
            contract.file_business_date(name) if contract else None,
            card_name,
        )

    @property
    def contract(self) -> Contract:
        if self.feed is None:
            raise ValueError(f"{self.name}: no feed")
        return load_contract(self.feed)

    @property
    def text(self) -> str:
        """The name as the ledger, notifications and lineage store it (``etl.names.name_text``)."""
        return name_text(self.name)

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem

    def to_dict(self) -> dict[str, str | None]:
        data = asdict(self)
        data["business_date"] = self.business_date.isoformat() if self.business_date else None
        return data


@dataclass(frozen=True)
class Validation:
    """A file's report, whether its content is loaded already (rule F004), and the execution it belongs to."""

    report: Report
    duplicate: bool
    execution_name: str


@dataclass(frozen=True)
class Loaded:
    """A committed load: its result, and the URI of the stage file written for it (None when none was: a
    SKIPPED load reads nothing). ``etl run`` holds that file back until it publishes it."""

    result: LoadResult
    stage_uri: str | None


# --- landing → raw ----------------------------------------------------------------------------------


def accept_local(ctx: Context, path: Path) -> str:
    """Copy a local file into the landing zone (the caller's file is left where it was); returns its key.

    A name already in landing (another run of the same file) puts the copy in a numbered folder: the
    file name itself must stay exact, since it names the feed and date. An input that is a symbolic link is
    read through it, as ``cp`` does (the caller named it), and its target's bytes land under the link's own
    name; no link is ever copied, and links inside the zones are never followed. A dead run's copy of the
    same content is taken over instead (``etl.io.claims.place``).
    """
    source = LocalZone(path.parent.resolve(), follow_links=True)
    key, held = claims.place(source, path.name, ctx.zone("landing"), path.name, keep_source=True)
    ctx.keep_claim("landing", key, held)
    return key


def land_to_raw(ctx: Context, landing_key: str) -> FileRef:
    """Move a landed file into raw: copy, verify size and SHA-256, delete from landing (exact name kept).

    Locally the raw file is claimed for this run; a dead run's copy of the same content is taken over
    (``etl.io.claims.place``), so a crash never leaves a file in raw that a rerun does not pick up.

    A name holding a card number (rule F005) is the exception: from here on its key is the masked name in
    ``CARD_NAME_FOLDER`` (numbered folders when two names mask alike), and the exact name is kept as the
    bytes of a ``.name`` sidecar, which travels with the file. So no key past landing - in an execution's
    input, a log line, an S3 listing, an error message - can hold the number (docs/design.md §6).
    """
    ref = FileRef.for_key(landing_key)
    folder, name = (CARD_NAME_FOLDER, name_text(ref.name)) if ref.card_name else (ref.feed or "unknown", ref.name)
    raw_key = f"{folder}/{name}"
    final, held = claims.place(ctx.zone("landing"), landing_key, ctx.zone("raw"), raw_key, sidecars=SIDECARS)
    ctx.release_claim("landing", landing_key)
    ctx.keep_claim("raw", final, held)
    if ref.card_name:
        exact = ref.name.encode("utf-8", "surrogateescape")
        ctx.zone("raw").put_bytes(exact, sidecar_key(final, NAME_SUFFIX))
    return FileRef.for_key(final)


# --- validate ------------------------------------------------------------------------------------------


def validate(ctx: Context, ref: FileRef, *, execution_name: str | None = None) -> Validation:
    """Validate the raw file, check the ledger for the same content (F004), write the report beside it."""
    if ref.card_name:  # masked in CARD_NAME_FOLDER: the name says F005, not what its masked text would match
        report = card_name_report(ref.name)
    else:
        report = validate_stream(lambda: ctx.read_raw(ref.key), ref.name, block_size=ctx.settings.block_size)
    name = execution_name or name_execution(ref.feed or "unknown", report.business_date, report.sha256 or "")
    duplicate = bool(report.valid and report.sha256 and ledger.already_loaded(ctx.conn, report.sha256))
    write_report(ctx, ref, report)
    return Validation(report, duplicate, name)


def write_report(ctx: Context, ref: FileRef, report: Report) -> None:
    """The report (and, for a valid file with tolerated rejects, their line numbers) beside the raw file."""
    raw = ctx.zone("raw")
    raw.put_bytes(report.to_json().encode(), sidecar_key(ref.key, REPORT_SUFFIX))
    if report.rows_rejected and report.valid:
        lines = "\n".join(map(str, report.rejected_lines.tolist())) + "\n"
        raw.put_bytes(lines.encode(), sidecar_key(ref.key, REJECTS_SUFFIX))


def read_report(ctx: Context, ref: FileRef) -> Report:
    """The report written by ``validate`` (for steps that run in another process, like a Lambda)."""
    with ctx.zone("raw").open_read(sidecar_key(ref.key, REPORT_SUFFIX)) as stream:
        return Report.model_validate_json(stream.read())


def _rejected_lines(ctx: Context, ref: FileRef, report: Report) -> np.ndarray:
    """The rejected line numbers ``write_report`` left beside the raw file. The report says whether there are
    any, so nothing probes for the sidecar (a probe for a missing key needs ``s3:ListBucket``, docs/design.md
    §12); when the report says so, the sidecar must be there."""
    if not (report.valid and report.rows_rejected):
        return np.zeros(0, dtype=np.int64)
    with ctx.zone("raw").open_read(sidecar_key(ref.key, REJECTS_SUFFIX)) as stream:
        return np.array([int(x) for x in stream.read().split()], dtype=np.int64)


# --- transform → stage --------------------------------------------------------------------------------


def staged_batches(ctx: Context, ref: FileRef, lineage: Lineage, report: Report) -> Iterator[pa.RecordBatch]:
    """The raw file parsed and transformed (pyarrow engine), the records ``report`` rejected left out. Streams."""
    contract = ref.contract
    rejected = _rejected_lines(ctx, ref, report)
    with ctx.read_raw(ref.key) as stream:
        reader = open_dat(stream, contract, block_size=ctx.settings.block_size)
        with closing(prefetched(reader.batches())) as parsed:  # its reader thread ends with this pass
            raw_batches: Iterable[pa.RecordBatch] = parsed
            if len(rejected):
                kept = pa.array(rejected)
                raw_batches = (b.filter(pc.invert(pc.is_in(b.column("_line"), kept))) for b in parsed)
            yield from transform_batches(raw_batches, contract, lineage, ctx.masker)


def transform(ctx: Context, ref: FileRef, validation: Validation) -> str:
    """Transform the raw file into its stage parquet file (overwriting its own earlier one); returns the URI."""
    business_date = validation.report.business_date
    assert business_date is not None, "a valid file has a business date"
    lineage = Lineage.now(business_date, ref.text, validation.execution_name)
    return write_stage(
        ctx.settings.zone_uri("stage"),
        ref.contract,
        business_date,
        ref.stem,
        staged_batches(ctx, ref, lineage, validation.report),
    )


def stage_batches(ctx: Context, ref: FileRef, business_date: dt.date) -> Iterator[pa.RecordBatch]:
    """Read a staged file back in batches, the partition column restored (the loader's input)."""
    contract = ref.contract
    key = stage_key(contract, business_date, ref.stem)
    schema = stage_schema(contract)
    with ctx.zone("stage").local_copy(key) as path:  # parquet seeks (footer first): an S3 body cannot
        for batch in pq.ParquetFile(path).iter_batches(batch_size=64 * 1024):
            day = pa.array(np.full(batch.num_rows, business_date), pa.date32())
            yield pa.RecordBatch.from_arrays(
                [day if name == contract.partition_column else batch.column(name) for name in schema.names],
                schema=schema,
            )


# --- load -------------------------------------------------------------------------------------------------


def load(
    ctx: Context, ref: FileRef, validation: Validation, batches: Iterable[pa.RecordBatch] | None = None
) -> LoadResult:
    """Upsert the file's staged rows in one transaction; SKIPPED when the same content was already loaded.

    ``batches`` defaults to reading the stage parquet back (the Lambda path); ``stage_and_load`` streams them.
    """
    report = validation.report
    assert report.business_date is not None and report.sha256 is not None
    return load_batches(
        ctx.conn,
        ref.contract,
        stage_batches(ctx, ref, report.business_date) if batches is None else batches,
        file_name=ref.text,
        sha256=report.sha256,
        business_date=report.business_date,
        execution_name=validation.execution_name,
        rows_rejected=report.rows_rejected,
        file_rows=report.row_count,
        unique_keys=Rule.R005 not in report.errors,
        limits=ctx.load_limits(),
    )


def load_checked(
    ctx: Context, ref: FileRef, batches: Iterable[pa.RecordBatch], *, sha256: str, day: dt.date, execution_name: str
) -> LoadResult:
    """The one pass's load (``etl.pipeline.one_pass``): its batches are validated on their way in and the
    verdict comes before the statements run, so the keys are unique (R005 is a record rule: a file that
    reaches the statements passed it) and nothing is rejected."""
    return load_batches(
        ctx.conn,
        ref.contract,
        batches,
        file_name=ref.text,
        sha256=sha256,
        business_date=day,
        execution_name=execution_name,
        unique_keys=True,
        limits=ctx.load_limits(),
    )


def stage_and_load(ctx: Context, ref: FileRef, validation: Validation) -> Loaded:
    """Local fast path of transform + load: one pass over the raw file feeds the COPY while a thread writes
    the same batches to the stage parquet. The parquet is finished (or its error raised) before the load's
    statements run, so a failed stage write rolls the load back; the result equals ``transform`` then ``load``.
    """
    day = validation.report.business_date
    assert day is not None
    lineage = Lineage.now(day, ref.text, validation.execution_name)
    with (
        closing(staged_batches(ctx, ref, lineage, validation.report)) as batches,
        closing(StageWrite(ctx, ref, day, batches)) as staged,  # a load that stopped early aborts the write
    ):
        result = load(ctx, ref, validation, staged.batches)
    return Loaded(result, staged.uri)


class StageWrite:
    """``batches`` passed on (``self.batches``) while a thread writes them to the file's stage parquet.

    The file is held back in ``ctx.held_stage`` until the caller publishes it after its load commits;
    ``uri`` is its URI once written. Closed before the stream's end (the load stopped early: SKIPPED, an
    error), the write is aborted and nothing is held; closing joins the writer thread and closes ``batches``.
    """

    def __init__(self, ctx: Context, ref: FileRef, day: dt.date, batches: Iterable[pa.RecordBatch]) -> None:
        self._ctx, self._ref, self._day = ctx, ref, day
        self.uri: str | None = None
        self.batches = tee(batches, self._write)

    def _write(self, staged: Iterator[pa.RecordBatch]) -> None:
        stage = self._ctx.settings.zone_uri("stage")
        self.uri = write_stage(stage, self._ref.contract, self._day, self._ref.stem, staged, hold=self._ctx.held_stage)

    def close(self) -> None:
        self.batches.close()


def skipped_counts(report: Report) -> RowCounts:
    """Every record of a SKIPPED file: rejected ones (under the threshold) as rejected, the rest skipped."""
    return RowCounts(
        rows_in=report.row_count, skipped=report.row_count - report.rows_rejected, rejected=report.rows_rejected
    )


# --- archive / error ---------------------------------------------------------------------------------------


def finish(ctx: Context, ref: FileRef, destination: str, business_date: dt.date | None = None) -> str:
    """Move the raw file and its sidecars to ``archive`` or ``error`` under ``<feed>/<date>/``; returns its URI."""
    if destination not in ("archive", "error"):
        raise ValueError(f"destination must be archive or error, not {destination!r}")
    raw, target = ctx.zone("raw"), ctx.zone(destination)
    day = business_date or ref.business_date
    feed = ref.feed or "unknown"
    wanted = dated_key(feed, day, ref.name) if day else f"{feed}/undated/{ref.name}"
    final = move(raw, ref.key, target, wanted)
    for suffix in SIDECARS:
        side = sidecar_key(ref.key, suffix)
        if raw.exists(side):
            move(raw, side, target, sidecar_key(final, suffix))
    return target.uri_of(final)


def record_outcome(
    ctx: Context, ref: FileRef, validation: Validation | None, status: LedgerStatus, error: str | None = None
) -> None:
    """A REJECTED, FAILED or SKIPPED ledger row (a load writes its own LOADED or SKIPPED row)."""
    report = validation.report if validation else None
    if status is LedgerStatus.SKIPPED:
        assert report is not None and validation is not None
        with ctx.conn.transaction():
            ledger.insert_row(
                ctx.conn,
                feed=ref.feed or "unknown",
                file_name=ref.text,
                sha256=report.sha256 or "",
                business_date=report.business_date,
                status=status,
                execution_name=validation.execution_name,
                counts=skipped_counts(report),
            )
        return
    ledger.record_rejected(
        ctx.conn,
        feed=ref.feed or "unknown",
        file_name=ref.text,
        sha256=(report.sha256 if report else None) or _raw_sha256(ctx, ref),
        business_date=report.business_date if report else ref.business_date,
        execution_name=validation.execution_name if validation else None,
        status=status,
        rows_in=report.row_count if report else 0,
        rows_rejected=report.rows_rejected if report else 0,
        error=error,
    )


def _raw_sha256(ctx: Context, ref: FileRef) -> str:
    """The raw file's SHA-256 for a ledger row written before any report (a failure early in a pass)."""
    raw = ctx.zone("raw")
    return raw.sha256(ref.key) if raw.exists(ref.key) else ""
