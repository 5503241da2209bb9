"""``etl run``'s fast path: validate, transform, stage and load a raw file in ONE pass (docs/design.md §8).

Each parsed batch is checked by the validator, transformed, handed to a thread that writes the stage parquet,
and COPYed into the load's temp table; the verdict comes at the end of the pass, before the load's statements
run and before anything is published. A batch reaches the COPY only once its own checks found nothing, so the
database never receives a value the validator has not passed (no server error, and no server log line, can
quote one). The first finding ends the pass: the step-by-step path (``etl.pipeline.steps``) then validates the
whole file for its report (REJECTED), or leaves tolerated rejects out.

``attempt`` says how the pass ended (``Ending``); ``etl.pipeline.run`` goes on from there. Whatever ended it,
every thread the pass started (the reader, the stage writer, the COPY's encoder) has been joined and its raw
file closed when ``attempt`` returns or raises.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, replace
from enum import Enum

import pyarrow as pa

from etl.core.parse import DatReader, open_dat
from etl.core.transform import Lineage, transform_batches
from etl.core.validate import Report, Validator
from etl.db import ledger
from etl.db.ledger import LedgerStatus
from etl.db.load import LoadResult
from etl.pipeline import steps
from etl.pipeline.context import Context
from etl.pipeline.naming import execution_name as name_execution
from etl.pipeline.steps import FileRef, Loaded, StageWrite, Validation


class Ending(Enum):
    """How a one-pass attempt ended, and so what the caller does next."""

    NOT_TRIED = "not tried"  # no feed or date in the name, or the content is loaded already: step by step
    STOPPED = "stopped before the verdict"  # a finding, a value the transform cannot take, the database: step by step
    REJECTED = "rejected"  # the verdict: invalid; nothing applied or published
    VALID_NOT_LOADED = "valid, not loaded"  # the verdict: valid with tolerated rejects to leave out: step by step
    LOADED = "loaded"  # valid and committed; the stage file is held until the caller publishes it
    SKIPPED = "skipped"  # another run loaded the same content meanwhile; validated afterwards for its report
    FAILED = "failed after the verdict"  # valid, and its load failed: the failure, with the verdict


@dataclass(frozen=True)
class OnePass:
    """The end of a one-pass attempt: its ``ending``, the file's ``validation`` when the pass reached its
    verdict (or, SKIPPED, validated it afterwards), the ``loaded`` result (LOADED, SKIPPED) and the
    ``failure`` of a valid file's load (FAILED)."""

    ending: Ending
    validation: Validation | None = None
    loaded: Loaded | None = None
    failure: Exception | None = None


def attempt(ctx: Context, ref: FileRef) -> OnePass:
    """Validate, transform, stage and load ``ref`` in one pass over the raw file; see the module docstring.

    The lineage needs the execution name, so the file's SHA-256 is read first (0.1 s per 138 MB). A
    ``KeyboardInterrupt`` (a signal) still propagates, after the pass has been wound down.
    """
    if ref.feed is None or ref.business_date is None:
        return OnePass(Ending.NOT_TRIED)
    sha256 = ctx.zone("raw").sha256(ref.key)
    if ledger.already_loaded(ctx.conn, sha256):
        return OnePass(Ending.NOT_TRIED)
    one = _Pass(ctx, ref, sha256, ref.business_date, name_execution(ref.feed, ref.business_date, sha256))
    try:
        loaded = one.load()
    except Exception as exc:
        return one.ended_by(exc)
    if loaded.result.status is LedgerStatus.SKIPPED:  # decided under the lock, before the file was read
        validation = steps.validate(ctx, ref, execution_name=one.execution_name)
        return OnePass(Ending.SKIPPED, validation, Loaded(_with_file_rows(ctx, loaded, validation.report), None))
    return OnePass(Ending.LOADED, one.verdict, loaded)


class _NotLoadable(Exception):
    """The pass found the file invalid, or with rejected records to leave out: roll its load back."""


@dataclass
class _Pass:
    """One pass over a raw file, and the verdict once the pass has read the whole file."""

    ctx: Context
    ref: FileRef
    sha256: str
    day: dt.date
    execution_name: str
    verdict: Validation | None = None

    @property
    def loadable(self) -> bool:
        """The verdict lets this pass's load commit: valid, nothing to leave out, the content it started from."""
        if self.verdict is None:
            return False
        report = self.verdict.report
        started_from = (report.sha256, report.business_date) == (self.sha256, self.day)
        return report.valid and not report.rows_rejected and started_from

    def load(self) -> Loaded:
        """The load fed by the pass; raises ``_NotLoadable`` (or whatever broke) to roll it back. Every
        stream is closed on the way out, innermost last, so each joins its thread whatever ended the pass."""
        contract, ctx = self.ref.contract, self.ctx
        lineage = Lineage.now(self.day, self.ref.text, self.execution_name)
        with (
            closing(self.checked_batches()) as checked,
            closing(transform_batches(checked, contract, lineage, ctx.masker)) as transformed,
            closing(StageWrite(ctx, self.ref, self.day, transformed)) as staged,
        ):
            result = steps.load_checked(
                ctx, self.ref, staged.batches, sha256=self.sha256, day=self.day, execution_name=self.execution_name
            )
        return Loaded(result, staged.uri)

    def checked_batches(self) -> Iterator[pa.RecordBatch]:
        """The raw file's batches, each validated before it goes on; at the end, the verdict and its report."""
        contract, size = self.ref.contract, self.ctx.settings.block_size
        validator = Validator(contract, self.ref.name)
        with self.ctx.read_raw(self.ref.key) as stream:
            reader = open_dat(stream, contract, block_size=size)
            with closing(validator.checked(reader)) as checked:
                for batch in checked:
                    if _found_anything(validator, reader):  # a batch reaches the COPY only once it passed
                        raise _NotLoadable
                    yield batch
        report = validator.finish(reader, lambda: self.ctx.read_raw(self.ref.key), size)
        steps.write_report(self.ctx, self.ref, report)
        self.verdict = Validation(report, False, self.execution_name)
        if not self.loadable:
            raise _NotLoadable

    def ended_by(self, exc: Exception) -> OnePass:
        """The ending of a pass that raised (its load rolled back, its stage write aborted)."""
        if self.verdict is None:
            # broken before the verdict (a finding, a value the transform cannot take, the database gone): step
            # by step validates first, so a bad file is still REJECTED and a real failure shows again in its load
            return OnePass(Ending.STOPPED)
        if self.loadable:
            return OnePass(Ending.FAILED, self.verdict, failure=exc)  # a valid file: a failure of its load
        ending = Ending.VALID_NOT_LOADED if self.verdict.report.valid else Ending.REJECTED
        return OnePass(ending, self.verdict)


def _found_anything(validator: Validator, reader: DatReader) -> bool:
    """Whether the pass has met any finding yet (a record rule, or a structural problem of the parser).

    Checked after each batch's own checks and before the batch goes on to the transform and the COPY.
    """
    return bool(validator.findings.by_rule) or bool(reader.findings.by_rule)


def _with_file_rows(ctx: Context, loaded: Loaded, report: Report) -> LoadResult:
    """A SKIPPED load written before the file was read: its ledger row and result get the file's rows."""
    result = loaded.result
    if result.ledger_id is None:
        return result
    counts = steps.skipped_counts(report)
    ledger.set_counts(ctx.conn, result.ledger_id, counts)
    return replace(result, counts=counts)
