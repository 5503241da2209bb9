"""``etl run``: each file through landing → raw → validate → transform → stage → load → archive/error → notify."""

from __future__ import annotations

import contextlib
import datetime as dt
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from time import sleep  # (a name of this module: tests replace it, not time.sleep)
from typing import Any

from etl.core.validate import Report
from etl.db.ledger import LedgerStatus
from etl.names import name_text
from etl.pipeline import drift_warnings, interrupts, one_pass, recover, steps
from etl.pipeline.context import Context
from etl.pipeline.notify import Status, build_message, publish
from etl.pipeline.one_pass import Ending

Progress = Callable[[str], None]
MOVE_ATTEMPTS, MOVE_BACKOFF = 3, 0.5  # moving to archive/error: tries 0, 0.5 and 1.5 s later


@dataclass
class Outcome:
    """What happened to one file; ``message`` is its notification."""

    file: str
    status: Status
    feed: str | None = None
    business_date: str | None = None
    execution_name: str = ""
    location: str | None = None
    stage_uri: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)  # drift, a move that failed after the verdict, ...
    message: dict[str, Any] = field(default_factory=dict)
    moved: bool = True  # False: archive/error could not take the file, it is still in raw
    database_lost: bool = False  # the database stayed unreachable: the caller stops

    @property
    def ok(self) -> bool:
        return self.status != Status.FAILURE


def run_file(ctx: Context, path: Path, progress: Progress | None = None) -> Outcome:
    """Copy a local file into landing and run it through the pipeline.

    A file that cannot be taken in (landing full, a name the zone's file system refuses, no permission) is a
    FAILURE of that file alone: the caller's file stays where it was, untouched, nothing of it stays in the
    zones, and the notification says why; there is no ledger row, since the pipeline never had the file.
    """
    try:
        landing_key = steps.accept_local(ctx, path)
    except OSError as exc:
        return _not_taken(ctx, path, None, exc)
    try:
        return run_landed(ctx, landing_key, progress)
    except OSError as exc:  # past landing → raw every error is the file's own FAILURE: this is that move
        if not ctx.zone("landing").exists(landing_key):
            raise
        return _not_taken(ctx, path, landing_key, exc)


def _not_taken(ctx: Context, path: Path, landing_key: str | None, exc: OSError) -> Outcome:
    """The FAILURE of a local file the zones could not take; our own landing copy is removed (the caller still
    has the original, so nothing is lost and nothing is left behind)."""
    if landing_key is not None:
        with contextlib.suppress(OSError):
            ctx.zone("landing").delete(landing_key)
    ref = steps.FileRef.for_key(name_text(path.name))
    reason = exc.strerror or str(exc)
    outcome = Outcome(file=name_text(path.name), status=Status.FAILURE, feed=ref.feed, location=name_text(path))
    outcome.business_date = ref.business_date.isoformat() if ref.business_date else None
    outcome.error = f"not taken in, left where it was: {type(exc).__name__}: {reason}"
    return _notify(ctx, outcome)


def run_landed(ctx: Context, landing_key: str, progress: Progress | None = None) -> Outcome:
    """Run one landed file to its end: archive (SUCCESS, SKIPPED) or error (FAILURE). Never raises for data.

    Whatever ends the run (an error, SIGINT/SIGTERM as ``KeyboardInterrupt``), the stage file of a load
    that did not commit is dropped and the claims on the file are released: an interrupted file stays in
    raw, unclaimed, and the next run of it takes it over.
    """
    say = progress or (lambda _step: None)
    say("landing → raw")
    try:
        ref = steps.land_to_raw(ctx, landing_key)
        return _run_raw(ctx, ref, say)
    finally:
        ctx.discard_stage()
        ctx.release_claims()


def _run_raw(ctx: Context, ref: steps.FileRef, say: Progress) -> Outcome:
    with contextlib.ExitStack() as settling:  # holds signals back once the load has committed
        return _run_raw_until_settled(ctx, ref, say, settling)


def _run_raw_until_settled(ctx: Context, ref: steps.FileRef, say: Progress, settling: contextlib.ExitStack) -> Outcome:
    outcome = Outcome(
        file=ref.text,
        status=Status.FAILURE,
        feed=ref.feed,
        business_date=ref.business_date.isoformat() if ref.business_date else None,
    )
    validation: steps.Validation | None = None
    destination: str | None = "error"
    try:
        say("validate → transform → stage + load")
        attempt = one_pass.attempt(ctx, ref)
        validation = attempt.validation
        if attempt.ending is Ending.FAILED:  # a valid file whose load failed: the FAILURE below, with its verdict
            assert attempt.failure is not None
            raise attempt.failure
        if validation is None:  # NOT_TRIED, or STOPPED before the verdict: validate step by step
            validation = steps.validate(ctx, ref)
        report = validation.report
        outcome.execution_name = validation.execution_name
        outcome.business_date = report.business_date.isoformat() if report.business_date else outcome.business_date
        outcome.rows = {"rows_in": report.row_count, "rejected": report.rows_rejected}
        if not report.valid:  # REJECTED in the pass, or by the step-by-step validation
            outcome.errors = report.rule_counts
            say("reject")
            steps.record_outcome(ctx, ref, validation, LedgerStatus.REJECTED, error=rules_text(report.rule_counts))
        elif attempt.ending in (Ending.LOADED, Ending.SKIPPED):
            assert attempt.loaded is not None
            destination = "archive"
            _loaded(ctx, ref, report, attempt.loaded, outcome, settling)
        elif validation.duplicate:  # found step by step: the content is loaded already (rule F004)
            say("skip duplicate")
            steps.record_outcome(ctx, ref, validation, LedgerStatus.SKIPPED)
            outcome.status, destination = Status.SKIPPED, "archive"
            outcome.rows = steps.skipped_counts(report).notification()
            recover.restage_if_lost(ctx, ref, validation)  # a crash between an earlier commit and its publish
        else:  # valid, not loaded by the pass (tolerated rejects to leave out, or it stopped early): step by step
            say("transform → stage + load")
            ctx.discard_stage()  # the one-pass attempt's, if it got that far
            loaded = steps.stage_and_load(ctx, ref, validation)
            destination = "archive"
            _loaded(ctx, ref, report, loaded, outcome, settling)
    except Exception as exc:
        if outcome.status == Status.SUCCESS:  # the stage publish failed after the commit: the load stands
            outcome.warnings.append(f"stage not published: {type(exc).__name__}: {exc}"[:500])
        else:
            destination = _fail(ctx, ref, validation, outcome, exc)
    if destination is not None:
        say("archive" if destination == "archive" else "error")
        day = validation.report.business_date if validation else None
        _settle(ctx, ref, destination, day, outcome)
    else:  # the database is gone: the file waits in raw for the rerun
        outcome.moved = False
        outcome.location = ctx.zone("raw").uri_of(ref.key)
    say("notify")
    return _notify(ctx, outcome)


def _loaded(
    ctx: Context,
    ref: steps.FileRef,
    report: Report,
    loaded: steps.Loaded,
    outcome: Outcome,
    settling: contextlib.ExitStack,
) -> None:
    """The outcome of a committed load: SUCCESS, its held stage file published; or SKIPPED when another run
    loaded the same content meanwhile (the load wrote its SKIPPED row, and staged nothing of its own)."""
    outcome.stage_uri = loaded.stage_uri
    result = loaded.result
    if result.status is LedgerStatus.SKIPPED:
        outcome.status = Status.SKIPPED
        outcome.rows = result.counts.notification()
        ctx.discard_stage()
        return
    # committed: from here on nothing un-says the load (a failed move is a warning, a signal waits)
    settling.enter_context(interrupts.deferred())
    outcome.status = Status.SUCCESS
    outcome.rows = result.counts.notification()
    outcome.stage_uri = ctx.publish_stage() or outcome.stage_uri
    outcome.warnings += drift_warnings.for_loaded_file(ctx, ref.feed, report.business_date)


def _notify(ctx: Context, outcome: Outcome) -> Outcome:
    """Build the file's notification from its outcome and publish it (SNS, or a JSON line)."""
    outcome.message = build_message(
        outcome.status,
        feed=outcome.feed,
        execution_name=outcome.execution_name,
        file=outcome.file,
        business_date=outcome.business_date,
        rows=outcome.rows or None,
        errors=outcome.errors or None,
        error=outcome.error,
        location=outcome.location,
        moved=outcome.moved,
        warnings=outcome.warnings,
    )
    publish(outcome.message, topic_arn=ctx.settings.sns_topic_arn)
    return outcome


def _settle(ctx: Context, ref: steps.FileRef, destination: str, day: dt.date | None, outcome: Outcome) -> None:
    """Move the file to archive or error, retried ``MOVE_ATTEMPTS`` times with backoff (a full disk, a
    throttled bucket). A move that still fails leaves the file in raw and says so, without changing the
    outcome: the rerun of the file moves it."""
    failure: Exception | None = None
    for attempt in range(MOVE_ATTEMPTS):
        if attempt:
            sleep(MOVE_BACKOFF * 2 ** (attempt - 1))
        if not ctx.zone("raw").exists(ref.key):
            break  # moved by an attempt that then failed on a sidecar
        try:
            outcome.location = steps.finish(ctx, ref, destination, day)
            return
        except Exception as exc:
            failure = exc
    outcome.moved = False
    outcome.location = ctx.zone("raw").uri_of(ref.key)
    reason = f"{type(failure).__name__}: {failure}" if failure else "its sidecars were left behind"
    outcome.warnings.append(f"not moved to {destination} after {MOVE_ATTEMPTS} attempts ({reason})"[:500])


def _fail(
    ctx: Context, ref: steps.FileRef, validation: steps.Validation | None, outcome: Outcome, exc: Exception
) -> str | None:
    """A FAILURE: the FAILED ledger row, and the file to error; returns where the file goes.

    When the database itself is gone (no answer even after reconnecting), no ledger row can be written:
    the file stays in raw for a rerun (None) and the outcome says the database was lost, so the caller
    stops instead of failing every remaining file.
    """
    outcome.status = Status.FAILURE
    outcome.error = f"{type(exc).__name__}: {exc}"[:2000]
    if validation is not None:
        outcome.execution_name = outcome.execution_name or validation.execution_name
    if not ctx.database_reachable():
        outcome.database_lost = True
        outcome.error += " (database unreachable: file left in raw for a rerun)"
        return None
    detail = "".join(traceback.format_exception_only(exc)).strip()
    try:
        steps.record_outcome(ctx, ref, validation, LedgerStatus.FAILED, error=detail[:2000])
    except Exception as ledger_exc:
        outcome.error += f" (ledger not written: {type(ledger_exc).__name__})"
        ctx.close()
    return "error" if ctx.zone("raw").exists(ref.key) else None


def rules_text(counts: dict[str, int]) -> str:
    """``T001×3, R005×1``: the rule counts as one ledger error text."""
    return ", ".join(f"{rule}×{count}" for rule, count in counts.items())
