"""Step Functions payloads ⇄ ``etl.pipeline.steps``: one function per Lambda handler, payload in, result out.

The handlers in ``etl/aws/handlers/`` only call these, so the contracts of ``docs/state_machine.md`` are kept (and
tested) here. A ``file`` pointer is ``{"bucket", "key", "size", "sha256", "feed", "business_date"}``; its
bucket/key are an object of the raw zone (``ETL_RAW_URI``), the key inside the zone being the object key
without the zone's prefix. Every function opens its own :class:`Context` from the environment, as a Lambda
invocation does, and returns only small JSON-ready dicts (the 256 KiB state limit).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from etl.aws.events import s3_objects, state_input
from etl.config import get_settings
from etl.core.validate import Report
from etl.db.errors import transient_database_errors
from etl.db.ledger import LedgerStatus
from etl.db.limits import Deadline
from etl.errors import EtlError
from etl.io.zones import ERROR_SUFFIX, REPORT_SUFFIX, S3Zone, Zone, sidecar_key, valid_key
from etl.names import name_text
from etl.pipeline import drift_warnings, recover, steps
from etl.pipeline.context import Context
from etl.pipeline.naming import execution_name
from etl.pipeline.notify import Status, build_message, publish
from etl.pipeline.run import rules_text

log = logging.getLogger(__name__)

Payload = dict[str, Any]


class ForeignObjectError(EtlError, ValueError):
    """An object outside the zone a function serves (another bucket or prefix)."""


# --- pointers -----------------------------------------------------------------------------------------


def zone_key(target: Zone, bucket: str, object_key: str) -> str:
    """The zone key of an S3 object of ``target`` (the object key minus the zone's prefix)."""
    if not isinstance(target, S3Zone):
        raise ForeignObjectError(f"zone {target.uri} is not on S3")
    prefix = f"{target.prefix}/" if target.prefix else ""
    if bucket != target.bucket or not object_key.startswith(prefix):
        raise ForeignObjectError(f"s3://{bucket}/{object_key} is outside zone {target.uri}")
    return object_key[len(prefix) :]


def s3_location(uri: str) -> dict[str, str]:
    """``s3://bucket/key`` as ``{"bucket", "key"}``."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an S3 URI: {uri}")
    bucket, _, key = uri[5:].partition("/")
    return {"bucket": bucket, "key": key}


def file_pointer(raw: S3Zone, key: str) -> Payload:
    """The execution input's ``file``: size and SHA-256 (object metadata ``sha256`` if present, else streamed)."""
    ref = steps.FileRef.for_key(key)
    head = raw.client.head_object(Bucket=raw.bucket, Key=raw.object_key(key))
    sha256 = head.get("Metadata", {}).get("sha256") or raw.sha256(key)
    return {
        "bucket": raw.bucket,
        "key": raw.object_key(key),
        "size": int(head["ContentLength"]),
        "sha256": sha256,
        "feed": ref.feed,
        "business_date": ref.business_date.isoformat() if ref.business_date else None,
    }


def _raw_ref(ctx: Context, payload: Payload) -> steps.FileRef:
    """The raw file a state's payload points at (the payload checked first: a one-line error if malformed)."""
    pointer = state_input(payload).file
    return steps.FileRef.for_key(zone_key(ctx.zone("raw"), pointer.bucket, pointer.key))


def _validation(ctx: Context, ref: steps.FileRef, payload: Payload) -> steps.Validation:
    """The ValidateFile outcome for later states: the report it wrote beside the raw file."""
    return steps.Validation(steps.read_report(ctx, ref), False, payload["execution_name"])


# --- triggers -------------------------------------------------------------------------------------------


def _present(event: Any, target: Zone, name: str, skipped: list[Payload]) -> Iterator[str]:
    """Zone keys of the event's objects still in ``target``; the others are reported in ``skipped``, their
    keys with any card number masked (``etl.names.name_text``: the result is not a zone).

    Sidecars (reports, rejects, errors) are never data files; a missing object means a repeated event.
    """

    def skip(key: str, reason: str) -> None:
        skipped.append({"key": name_text(key), "reason": name_text(reason)})

    for obj in s3_objects(event):
        try:
            key = zone_key(target, obj.bucket, obj.key)
        except ForeignObjectError as exc:
            skip(obj.key, str(exc))
            continue
        if key.endswith((*steps.SIDECARS, ERROR_SUFFIX)):
            skip(obj.key, "a sidecar, not a data file")
        elif not valid_key(key):  # "a//b", "a/./b", ...: would name another object once normalised
            skip(obj.key, "not a usable zone key (empty, '.' or '..' part)")
        elif not target.exists(key):
            skip(obj.key, f"no longer in the {name} zone")
        else:
            yield key


def lz_to_raw(event: Any) -> Payload:
    """``lz_to_raw``: move every landed object the event names into raw (copy, verify, delete)."""
    moved: list[Payload] = []
    skipped: list[Payload] = []
    with Context(deployed=True) as ctx:
        landing, raw = ctx.zone("landing"), ctx.zone("raw")
        for key in _present(event, landing, "landing", skipped):
            ref = steps.land_to_raw(ctx, key)
            pointer = file_pointer(raw, ref.key)  # type: ignore[arg-type]
            moved.append({k: pointer[k] for k in ("bucket", "key", "size", "sha256")})
    return {"moved": moved, "skipped": skipped}


def start_step_function(event: Any, sfn: Any = None) -> Payload:
    """``start_step_function``: one execution per raw data file, named from feed, business date and content.

    ``ExecutionAlreadyExists`` for the object in flight (or already moved on) is a repeated event: reported
    as ``already_started``, not an error. Every file that reaches raw still gets a run (see ``start_for_object``).
    """
    settings = get_settings()
    if not settings.state_machine_arn:
        raise RuntimeError("ETL_STATE_MACHINE_ARN is not set")
    if sfn is None:
        import boto3

        sfn = boto3.client("stepfunctions")
    started: list[Payload] = []
    already: list[Payload] = []
    skipped: list[Payload] = []
    options = {"large_file_threshold_bytes": settings.large_file_threshold_bytes}
    with Context(settings, deployed=True) as ctx:
        raw = ctx.zone("raw")
        for key in _present(event, raw, "raw", skipped):
            pointer = file_pointer(raw, key)  # type: ignore[arg-type]
            day = dt.date.fromisoformat(pointer["business_date"]) if pointer["business_date"] else None
            name = execution_name(pointer["feed"] or "unknown", day, pointer["sha256"])
            execution_input = json.dumps({"file": pointer, "options": options})
            outcome, entry = start_for_object(sfn, settings.state_machine_arn, name, execution_input, raw, key)  # type: ignore[arg-type]
            (started if outcome == "started" else already).append(entry)
    return {"started": started, "already_started": already, "skipped": skipped}


def start_for_object(
    sfn: Any, machine: str, name: str, execution_input: str, raw: S3Zone, key: str
) -> tuple[str, Payload]:
    """Start ``name``; when it exists and is not this object in flight, this is a new arrival of the same
    content (a copy under another name, or a re-sent file): it gets its own run, named with a suffix from
    the object's key and version, and ends in archive as SKIPPED once the content is loaded."""
    object_key = raw.object_key(key)
    try:
        return "started", _started(sfn, machine, name, execution_input, object_key)
    except sfn.exceptions.ExecutionAlreadyExists:
        pass
    existing = sfn.describe_execution(executionArn=execution_arn(machine, name))
    same_object = json.loads(existing["input"])["file"]["key"] == object_key
    if same_object and (existing["status"] == "RUNNING" or not raw.exists(key)):
        return "already_started", {"name": name, "key": object_key}
    head = raw.client.head_object(Bucket=raw.bucket, Key=object_key)
    version = head.get("VersionId") or str(head.get("LastModified"))
    suffix = hashlib.sha256(f"{object_key}\n{version}".encode()).hexdigest()[:8]
    try:
        return "started", _started(sfn, machine, f"{name}-{suffix}"[:80], execution_input, object_key)
    except sfn.exceptions.ExecutionAlreadyExists:
        return "already_started", {"name": f"{name}-{suffix}"[:80], "key": object_key}


def _started(sfn: Any, machine: str, name: str, execution_input: str, object_key: str) -> Payload:
    arn = sfn.start_execution(stateMachineArn=machine, name=name, input=execution_input)["executionArn"]
    return {"execution_arn": arn, "name": name, "key": object_key}


def execution_arn(machine_arn: str, name: str) -> str:
    """``arn:aws:states:<region>:<account>:execution:<machine>:<name>`` from the state machine's ARN."""
    head, _, machine = machine_arn.rpartition(":stateMachine:")
    return f"{head}:execution:{machine}:{name}"


# --- states -------------------------------------------------------------------------------------------------


def validate_file(payload: Payload) -> Payload:
    """ValidateFile: the report (written beside the raw file), F004 duplicate check, ledger row if final."""
    with transient_database_errors(), Context(deployed=True) as ctx:
        ref = _raw_ref(ctx, payload)
        validation = steps.validate(ctx, ref, execution_name=payload["execution_name"])
        report = validation.report
        if not report.valid:
            steps.record_outcome(ctx, ref, validation, LedgerStatus.REJECTED, error=rules_text(report.rule_counts))
        elif validation.duplicate:
            steps.record_outcome(ctx, ref, validation, LedgerStatus.SKIPPED)
    return {
        "valid": report.valid,
        "duplicate": validation.duplicate,
        "row_count": report.row_count,
        "rule_counts": report.rule_counts,
        "report": report.model_dump(mode="json"),
    }


def transform_in_lambda(payload: Payload) -> Payload:
    """TransformInLambda: the pyarrow engine writes the file's stage parquet."""
    with Context(deployed=True) as ctx:
        ref = _raw_ref(ctx, payload)
        validation = _validation(ctx, ref, payload)
        uri = steps.transform(ctx, ref, validation)
    report = validation.report
    return {"stage_uri": uri, "rows_staged": report.row_count - report.rows_rejected}


def load_to_database(payload: Payload, deadline: Deadline | None = None) -> Payload:
    """LoadToDatabase: upsert the stage file in one transaction; transient failures raise the retried error.

    ``deadline``: when the function is stopped (its Lambda context); the load's statements are cancelled a
    margin before it, so the transaction rolls back and the error is reported (``etl.db.limits``).
    """
    with transient_database_errors(), Context(deployed=True, deadline=deadline) as ctx:
        ref = _raw_ref(ctx, payload)
        validation = _validation(ctx, ref, payload)
        result = steps.load(ctx, ref, validation)
        warnings = drift_warnings.for_loaded_file(ctx, ref.feed, validation.report.business_date)
    return {"status": str(result.status), **result.counts.notification(), "warnings": warnings}


def move_file(payload: Payload) -> Payload:
    """MoveToArchive / MoveToArchiveSkipped / MoveToError: raw → ``<zone>/<feed>/<date>/``, sidecars along.

    Into the error zone, the Step Functions error that caused the move (if any) goes beside the file.
    """
    destination = payload["destination"]
    state = payload.get("state") or {}
    with Context(deployed=True) as ctx:
        ref = _raw_ref(ctx, payload)
        if destination == "error" and state.get("error"):
            _record_failure(ctx, ref, payload, state["error"])
            if state.get("transform"):
                _unpublish_stage(ctx, ref, payload)
        report_date = ((state.get("validation") or {}).get("report") or {}).get("business_date")
        day_text = report_date or payload["file"].get("business_date")
        day = dt.date.fromisoformat(day_text) if day_text else None
        where = s3_location(steps.finish(ctx, ref, destination, day))
        if state.get("error"):
            target = ctx.zone(destination)
            key = zone_key(target, where["bucket"], where["key"])
            target.put_bytes(json.dumps(state["error"], indent=2).encode(), sidecar_key(key, ERROR_SUFFIX))
    return where


def _record_failure(ctx: Context, ref: steps.FileRef, payload: Payload, error: Payload) -> None:
    """A FAILED ledger row for a file a later state failed on (best effort: the database may be the failure)."""
    try:
        report_key = sidecar_key(ref.key, REPORT_SUFFIX)
        validation = _validation(ctx, ref, payload) if ctx.zone("raw").exists(report_key) else None
        steps.record_outcome(ctx, ref, validation, LedgerStatus.FAILED, error=error_text(error))
    except Exception as exc:
        log.warning("FAILED ledger row not written for %r: %s", ref.text, type(exc).__name__)


def _unpublish_stage(ctx: Context, ref: steps.FileRef, payload: Payload) -> None:
    """The stage file this execution published for a load that then failed (best effort, as above)."""
    try:
        recover.unpublish_uncommitted(ctx, ref, payload["execution_name"], payload["file"]["sha256"])
    except Exception as exc:
        log.warning("stage file of %s not taken back: %s", ref.text, type(exc).__name__)


def notify(payload: Payload) -> Payload:
    """NotifySuccess / NotifySkipped / NotifyFailure / NotifyNotArchived: the message of docs/design.md §9,
    published to SNS.

    A ``move_error`` in the state (the move failed after its retries) keeps the status - a committed load
    stays SUCCESS - and says the file is still in raw (``NOT_MOVED`` message, ``warnings``).
    """
    status = payload["status"]
    state = payload.get("state") or {}
    pointer = state.get("file") or {}
    validation = state.get("validation") or {}
    load = dict(state.get("load") or {})
    warnings = load.pop("warnings", None)
    rows = load or _validation_rows(status, validation)
    moved = state.get("moved")
    move_error = error_text(state.get("move_error"))  # MoveToArchive/MoveToError failed after its retries
    errors = [
        text for text in (error_text(state.get("error")), move_error if status == Status.FAILURE else None) if text
    ]
    if move_error and not moved:  # the file is still where it was: raw
        moved = {"bucket": pointer.get("bucket"), "key": pointer.get("key")}
    message = build_message(
        status,
        feed=pointer.get("feed"),
        execution_name=payload["execution_name"],
        file=PurePosixPath(pointer.get("key") or "unknown").name,
        business_date=pointer.get("business_date"),
        rows=rows,
        errors=(validation.get("rule_counts") or None) if status == Status.FAILURE else None,
        error="; ".join(errors) or None,
        location=f"s3://{moved['bucket']}/{moved['key']}" if moved else None,
        moved=not move_error,
        warnings=[
            *(warnings or []),
            *([f"not moved to archive: {move_error}"] if move_error and status != Status.FAILURE else []),
        ],
    )
    return {"message_id": publish(message, topic_arn=get_settings().sns_topic_arn)}


def _validation_rows(status: str, validation: Payload) -> dict[str, int] | None:
    """A notification's rows without a load: a SKIPPED file's records all skipped (or rejected), else the count."""
    if "row_count" not in validation:
        return None
    if status == Status.SKIPPED and "report" in validation:
        return steps.skipped_counts(Report.model_validate(validation["report"])).notification()
    return {"rows_in": validation["row_count"]}


def error_text(error: Payload | None) -> str | None:
    """``Error: message`` from a caught ``{"Error", "Cause"}`` (a Lambda's Cause is JSON with ``errorMessage``)."""
    if not error:
        return None
    cause = error.get("Cause") or ""
    try:
        detail = json.loads(cause)
    except (TypeError, ValueError):
        detail = None
    message = detail.get("errorMessage", cause) if isinstance(detail, dict) else cause
    return f"{error.get('Error', 'Error')}: {message}"[:2000]
