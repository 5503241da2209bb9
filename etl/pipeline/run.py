"""``etl run``: each file through landing → raw → validate → transform → stage → load → archive/error → notify."""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etl.db.ledger import LedgerStatus
from etl.names import name_text
from etl.pipeline import drift_warnings, steps
from etl.pipeline.context import Context
from etl.pipeline.notify import Status, build_message, publish

Progress = Callable[[str], None]


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
    warnings: list[str] = field(default_factory=list)
    message: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != "FAILURE"


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
    outcome = Outcome(file=name_text(path.name), status="FAILURE", feed=ref.feed, location=name_text(path))
    outcome.business_date = ref.business_date.isoformat() if ref.business_date else None
    outcome.error = f"not taken in, left where it was: {type(exc).__name__}: {reason}"
    outcome.message = build_message(
        "FAILURE",
        feed=outcome.feed,
        execution_name="",
        file=outcome.file,
        business_date=outcome.business_date,
        error=outcome.error,
        location=outcome.location,
    )
    publish(outcome.message, topic_arn=ctx.settings.sns_topic_arn)
    return outcome


def run_landed(ctx: Context, landing_key: str, progress: Progress | None = None) -> Outcome:
    """Run one landed file to its end: archive (SUCCESS, SKIPPED) or error (FAILURE). Never raises for data."""
    say = progress or (lambda _step: None)
    say("landing → raw")
    ref = steps.land_to_raw(ctx, landing_key)
    outcome = Outcome(
        file=ref.text,
        status="FAILURE",
        feed=ref.feed,
        business_date=ref.business_date.isoformat() if ref.business_date else None,
    )
    validation: steps.Validation | None = None
    heard: list[steps.Validation] = []  # the one-pass verdict, kept if the load then fails
    try:
        say("validate → transform → stage + load")
        validation, loaded = steps.validate_stage_and_load(ctx, ref, heard.append)
        if validation is None:  # not tried in one pass: step by step
            validation = steps.validate(ctx, ref)
        report = validation.report
        outcome.execution_name = validation.execution_name
        outcome.business_date = report.business_date.isoformat() if report.business_date else outcome.business_date
        outcome.rows = {"rows_in": report.row_count, "rejected": report.rows_rejected}
        if not report.valid:
            outcome.errors = report.rule_counts
            say("reject")
            steps.record_outcome(ctx, ref, validation, LedgerStatus.REJECTED, error=rules_text(report.rule_counts))
            outcome.location = steps.finish(ctx, ref, "error", report.business_date)
        elif loaded is None and validation.duplicate:
            _skip(ctx, ref, validation, outcome, say)
        else:
            if loaded is None:  # valid, but with tolerated rejects to leave out
                say("transform → stage + load")
                loaded = steps.stage_and_load(ctx, ref, validation)
            outcome.stage_uri, result = loaded
            if result.status is LedgerStatus.SKIPPED:  # another run loaded the same content meanwhile
                outcome.status = "SKIPPED"
                outcome.rows = result.counts.notification()
                outcome.location = steps.finish(ctx, ref, "archive", report.business_date)
            else:
                outcome.rows = result.counts.notification()
                outcome.warnings = drift_warnings.for_loaded_file(ctx, ref.feed, report.business_date)
                say("archive")
                outcome.location = steps.finish(ctx, ref, "archive", report.business_date)
                outcome.status = "SUCCESS"
    except Exception as exc:
        _fail(ctx, ref, validation or (heard[0] if heard else None), outcome, exc)
    say("notify")
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
        warnings=outcome.warnings,
    )
    publish(outcome.message, topic_arn=ctx.settings.sns_topic_arn)
    return outcome


def _skip(ctx: Context, ref: steps.FileRef, validation: steps.Validation, outcome: Outcome, say: Progress) -> None:
    say("skip duplicate")
    steps.record_outcome(ctx, ref, validation, LedgerStatus.SKIPPED)
    outcome.status = "SKIPPED"
    outcome.rows = steps.skipped_counts(validation.report).notification()
    outcome.location = steps.finish(ctx, ref, "archive", validation.report.business_date)


def _fail(
    ctx: Context, ref: steps.FileRef, validation: steps.Validation | None, outcome: Outcome, exc: Exception
) -> None:
    outcome.status = "FAILURE"
    outcome.error = f"{type(exc).__name__}: {exc}"[:2000]
    if validation is not None:
        outcome.execution_name = outcome.execution_name or validation.execution_name
    detail = "".join(traceback.format_exception_only(exc)).strip()
    try:
        steps.record_outcome(ctx, ref, validation, LedgerStatus.FAILED, error=detail[:2000])
    except Exception as ledger_exc:
        outcome.error += f" (ledger not written: {type(ledger_exc).__name__})"
        ctx.close()
    if ctx.zone("raw").exists(ref.key):
        day = validation.report.business_date if validation else None
        outcome.location = steps.finish(ctx, ref, "error", day)


def rules_text(counts: dict[str, int]) -> str:
    """``T001×3, R005×1``: the rule counts as one ledger error text."""
    return ", ".join(f"{rule}×{count}" for rule, count in counts.items())
