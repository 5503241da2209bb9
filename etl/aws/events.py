"""What a Lambda function is invoked with, parsed in one place: the objects an S3 trigger event names, whatever
envelope it came in, and the file pointer a state of the state machine receives.

Each shape is validated with the pydantic model Powertools for AWS Lambda keeps for it
(``aws_lambda_powertools.utilities.parser.models``), so a field AWS always sends and this event lacks is an
error here, not a ``KeyError`` three calls later:

- EventBridge ``Object Created`` (``detail.bucket/object``): what the deployed rules deliver (docs/design.md §8).
  Its key is the object's key as it is: EventBridge does not URL-encode it.
- An S3 event notification (``Records[].s3``): its key is URL-encoded (``+`` for a space, ``%XX`` for the
  rest, ``%2B`` for a plus) and is decoded with ``unquote_plus``.
- The same notification wrapped in SNS (``Records[].Sns.Message``) or SQS (``Records[].body``).

S3's ``s3:TestEvent``, records other than ``ObjectCreated:*`` and EventBridge events of other types name no
object and are left out. A state's input is checked against :class:`StateInput` (docs/state_machine.md).
Anything else is an :class:`EventError` with a one-line reason that names the shape and the first field at
fault, never a value from the event.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple, TypeVar
from urllib.parse import quote_plus, unquote_plus

from aws_lambda_powertools.utilities.parser.models import (
    S3EventNotificationEventBridgeModel,
    S3RecordModel,
    SnsRecordModel,
    SqsRecordModel,
)
from pydantic import BaseModel, ValidationError

from etl.errors import EtlError

Model = TypeVar("Model", bound=BaseModel)


class S3Object(NamedTuple):
    bucket: str
    key: str


class EventError(EtlError, ValueError):
    """The event has none of the accepted shapes (the message is one line without the event's values)."""


class FilePointer(BaseModel):
    """A raw file as the execution input names it (built by ``start_step_function``)."""

    bucket: str
    key: str
    size: int
    sha256: str
    feed: str | None = None
    business_date: str | None = None


class StateInput(BaseModel):
    """What ValidateFile, TransformInLambda, LoadToDatabase and the Move states receive (other fields pass)."""

    file: FilePointer
    execution_name: str


def state_input(payload: Any) -> StateInput:
    """The payload's file pointer and execution name, or a one-line :class:`EventError`."""
    if not isinstance(payload, dict):
        raise EventError(f"a state's input must be a JSON object, not {type(payload).__name__}")
    return parsed(StateInput, payload, "state input")


def s3_objects(event: Any) -> list[S3Object]:
    """Every ``(bucket, key)`` the event names, in order, keys as S3 stores them."""
    if isinstance(event, str | bytes):
        try:
            event = json.loads(event)
        except ValueError:
            raise EventError("an S3 trigger event must be JSON") from None
    if not isinstance(event, dict):
        raise EventError(f"an S3 trigger event must be a JSON object, not {type(event).__name__}")
    if "detail-type" in event:
        bridged = parsed(S3EventNotificationEventBridgeModel, event, "EventBridge S3 event")
        if bridged.detail_type != "Object Created":
            return []
        return [S3Object(bridged.detail.bucket.name, bridged.detail.object.key)]
    if event.get("Event") == "s3:TestEvent":
        return []
    records = event.get("Records")
    if not isinstance(records, list):
        raise EventError(f"not an S3, SNS, SQS or EventBridge event (keys: {sorted(event)[:8]})")
    return [obj for index, record in enumerate(records) for obj in _record(record, f"Records[{index}]")]


def _record(record: Any, where: str) -> list[S3Object]:
    source = (record.get("eventSource") or record.get("EventSource")) if isinstance(record, dict) else None
    if source == "aws:s3":
        s3 = parsed(S3RecordModel, record, f"{where} (S3 notification)")
        if not s3.eventName.startswith("ObjectCreated"):
            return []
        return [S3Object(s3.s3.bucket.name, unquote_plus(s3.s3.object.key))]
    if source == "aws:sns":
        message = parsed(SnsRecordModel, record, f"{where} (SNS)").Sns.Message
        return s3_objects(message)
    if source == "aws:sqs":
        return s3_objects(parsed(SqsRecordModel, record, f"{where} (SQS)").body)
    raise EventError(f"{where}: eventSource {str(source)[:40]!r} is not aws:s3, aws:sns or aws:sqs")


def parsed(model: type[Model], data: Any, shape: str) -> Model:
    """``model`` validated from ``data``; a failure is one line naming the first field, without its value."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False, include_context=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "(event)"
        raise EventError(f"malformed {shape}: {field}: {first['msg']} ({exc.error_count()} error(s))") from None
    except (TypeError, AttributeError, KeyError):  # a model's own before-validator tripping on a missing part
        raise EventError(f"malformed {shape}: required fields missing") from None


def s3_notification(bucket: str, keys: Sequence[str], *, region: str = "us-east-1") -> dict[str, Any]:
    """An S3 ``ObjectCreated:Put`` notification for ``keys`` shaped as S3 sends it (keys URL-encoded), for the
    emulation's triggers and tests (``tests/aws/events/`` holds the captured ones)."""
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": "1970-01-01T00:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "EXAMPLE123456789", "x-amz-id-2": "EXAMPLE/123"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "fintech-etl",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"size": 0, "eTag": "0", "sequencer": "0A1B2C3D4E5F678901"},
        },
    }
    return {"Records": [_with_key(record, quote_plus(key, safe="/")) for key in keys]}


def _with_key(record: dict[str, Any], key: str) -> dict[str, Any]:
    s3 = record["s3"]
    return {**record, "s3": {**s3, "object": {**s3["object"], "key": key}}}
