"""Notifications (docs/design.md §9): one JSON object per file, to SNS or to stdout as a JSON line.

The keys ``msg``, ``executionname`` and ``status`` are the original pipeline's and stay exactly as they were;
extra keys carry feed, file, business date, row counts and, on failure, the rule counts of the report. A loaded
file whose day left the feed's trailing window (row count, reject rate) carries ``warnings``: one line each.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Any, TextIO

from etl.names import without_card_numbers


class Status(StrEnum):
    """What happened to a file, as its notification says it: the one vocabulary of outcomes for ``etl run``,
    ``etl sim``, ``etl replay`` and the state machine (the ledger's own statuses are ``LedgerStatus``)."""

    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    SKIPPED = "SKIPPED"


MESSAGES: dict[str, str] = {
    Status.SUCCESS: "File uploaded to RDS and moved to archive: {feed}",
    Status.FAILURE: "File moved to error: {feed}",
    Status.SKIPPED: "File already loaded, moved to archive: {feed}",
}
# The same outcomes when the file could not be moved (archive or error zone failing after retries): it
# stays in raw, and the next run of it moves it (a loaded file is then a SKIPPED duplicate). The status
# keeps saying what happened to the data: a committed load stays SUCCESS.
NOT_MOVED: dict[str, str] = {
    Status.SUCCESS: "File uploaded to RDS, not moved to archive (left in raw): {feed}",
    Status.FAILURE: "File failed, not moved to error (left in raw): {feed}",
    Status.SKIPPED: "File already loaded, not moved to archive (left in raw): {feed}",
}


def build_message(
    status: Status,
    *,
    feed: str | None,
    execution_name: str,
    file: str,
    business_date: str | None = None,
    rows: dict[str, int] | None = None,
    errors: dict[str, int] | None = None,
    error: str | None = None,
    location: str | None = None,
    moved: bool = True,
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    """The notification for one file; ``None`` extras are left out. ``moved=False``: the file could not be
    moved to archive or error and is still in raw (``warnings`` says why).

    Every text that may quote a name, key or path (file, location, error, warnings) has any card number
    masked here, the one place every notification is built (docs/design.md §9)."""
    file, location, error = (None if v is None else without_card_numbers(v) for v in (file, location, error))
    warnings = [without_card_numbers(w) for w in warnings or ()]
    message: dict[str, Any] = {
        "msg": (MESSAGES if moved else NOT_MOVED)[status].format(feed=feed or "unknown"),
        "executionname": execution_name,
        "status": status,
        "feed": feed,
        "file": file,
        "business_date": business_date,
        "rows": rows,
        "errors": errors,
        "error": error,
        "location": location,
        "warnings": warnings or None,
    }
    return {k: v for k, v in message.items() if v is not None}


def publish(message: dict[str, Any], *, topic_arn: str | None = None, out: TextIO | None = None) -> str | None:
    """Publish to the SNS topic when one is configured (returns its message id), else print one JSON line."""
    body = json.dumps(message, default=str)
    if topic_arn:
        import boto3

        response = boto3.client("sns").publish(
            TopicArn=topic_arn,
            Message=body,
            Subject=f"fintech-etl {message['status']}: {message.get('feed') or 'unknown'}"[:100],
            MessageAttributes={"status": {"DataType": "String", "StringValue": message["status"]}},
        )
        return response.get("MessageId")
    stream = out or sys.stdout
    stream.write(body + "\n")
    stream.flush()
    return None
