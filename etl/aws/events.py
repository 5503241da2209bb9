"""The objects an S3 trigger event names, whatever envelope it came in (the one place events are parsed).

Accepted: an S3 event notification (``Records[].s3``), the same wrapped in SNS (``Records[].Sns.Message``)
or SQS (``Records[].body``), and an EventBridge ``Object Created`` event (``detail.bucket/object``).
Object keys arrive URL-encoded (``+`` for a space, ``%XX``) and are decoded with ``unquote_plus``.
S3's ``s3:TestEvent`` and records other than ``ObjectCreated:*`` name no object and are left out.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple
from urllib.parse import unquote_plus

from etl.errors import EtlError


class S3Object(NamedTuple):
    bucket: str
    key: str


class EventError(EtlError, ValueError):
    """The event has none of the accepted shapes."""


def s3_objects(event: Any) -> list[S3Object]:
    """Every ``(bucket, key)`` the event names, in order, keys decoded."""
    if isinstance(event, str):
        event = json.loads(event)
    if not isinstance(event, dict):
        raise EventError(f"an S3 trigger event must be a JSON object, not {type(event).__name__}")
    if "detail-type" in event:
        return _eventbridge(event)
    if "Records" in event:
        return [obj for record in event["Records"] for obj in _record(record)]
    if event.get("Event") == "s3:TestEvent":
        return []
    raise EventError(f"not an S3, SNS, SQS or EventBridge event (keys: {sorted(event)[:8]})")


def _eventbridge(event: dict[str, Any]) -> list[S3Object]:
    if event["detail-type"] != "Object Created":
        return []
    detail = event.get("detail") or {}
    return [S3Object(detail["bucket"]["name"], unquote_plus(detail["object"]["key"]))]


def _record(record: dict[str, Any]) -> list[S3Object]:
    if "s3" in record:
        if not str(record.get("eventName", "ObjectCreated")).startswith("ObjectCreated"):
            return []
        s3 = record["s3"]
        return [S3Object(s3["bucket"]["name"], unquote_plus(s3["object"]["key"]))]
    if "Sns" in record:
        return s3_objects(record["Sns"]["Message"])
    if "body" in record:  # SQS
        return s3_objects(record["body"])
    raise EventError(f"record without s3, Sns or body (keys: {sorted(record)[:8]})")
