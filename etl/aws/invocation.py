"""What every Lambda handler shares: the context it receives, and one log line per invocation.

The handlers in ``etl/aws/handlers/`` are one call into ``etl.aws.states``; :func:`logged` wraps that call so
each invocation logs, as one JSON line, the function, its request id, the execution name and the file key it
worked on (from the event: a state's ``file`` pointer, or the S3/EventBridge records of a trigger), the outcome
and the time taken. No row value is ever in an event (states pass pointers, docs/design.md §8). The Lambda
runtime sends the line to CloudWatch Logs with the request id.

A key is logged as S3 gave it, except that a card number in it is masked (:func:`logged_key`): a landing key is
whatever a sender named it (``incoming/4111111111111111/x.dat``); keys past landing never hold one
(docs/design.md §6). An exception leaving a handler is masked the same way (:func:`masked_exception`), since
the runtime logs its message and Step Functions keeps it as the error's cause.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from etl.db.limits import Deadline
from etl.names import name_text, without_card_numbers

log = logging.getLogger("etl.aws.invocation")
log.setLevel(logging.INFO)

Event = dict[str, Any]
Handler = Callable[[Event, "LambdaContext"], Event]


class LambdaContext(Protocol):
    """The parts of the Lambda context object the handlers use."""

    function_name: str
    aws_request_id: str


def event_keys(event: Any) -> list[str]:
    """The object keys an event names: a state's ``file`` pointer, or every record of an S3 notification, an
    SNS-wrapped one or an EventBridge "Object Created" event (unparsed: logging never fails an invocation)."""
    if not isinstance(event, dict):
        return []
    pointer = event.get("file")
    if isinstance(pointer, dict) and "key" in pointer:
        return [str(pointer["key"])]
    detail = event.get("detail")
    if isinstance(detail, dict) and isinstance(detail.get("object"), dict):
        return [str(detail["object"].get("key"))]
    keys = []
    for record in event.get("Records") or []:
        if isinstance(record, dict) and "Sns" in record:
            try:
                keys += event_keys(json.loads(record["Sns"].get("Message") or "{}"))
            except ValueError:
                continue
        elif isinstance(record, dict):
            keys.append(str(((record.get("s3") or {}).get("object") or {}).get("key")))
    return keys


def logged_key(key: str) -> str:
    """An object key as a log line, an execution's input or a result may show it: card numbers masked
    (``etl.names.name_text``). Every key logged or returned outside the zones goes through this."""
    return name_text(key)


def masked_exception(exc: BaseException) -> BaseException:
    """``exc`` (and the exceptions chained to it) with any card number in its message masked, in place:
    string arguments, and an ``OSError``'s file names. Returns ``exc``, to be re-raised."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.args = tuple(without_card_numbers(a) if isinstance(a, str) else a for a in current.args)
        if isinstance(current, OSError):
            for attribute in ("filename", "filename2"):
                value = getattr(current, attribute)
                if isinstance(value, str):
                    setattr(current, attribute, without_card_numbers(value))
        current = current.__cause__ or current.__context__
    return exc


def logged(function: Callable[..., Event], *, timed: bool = False) -> Handler:
    """A Lambda handler around ``function(event)`` that logs each invocation (see the module docstring).

    ``timed``: ``function(event, deadline=...)`` with the moment the function will be stopped, read from the
    context at the start of the invocation (``etl.db.limits.Deadline``).
    """

    @functools.wraps(function)
    def handler(event: Event, context: LambdaContext) -> Event:
        entry = {
            "function": getattr(context, "function_name", None),
            "request_id": getattr(context, "aws_request_id", None),
            "execution_name": event.get("execution_name") if isinstance(event, dict) else None,
            "keys": [logged_key(key) for key in event_keys(event)],
        }
        started = time.perf_counter()
        try:
            result = function(event, deadline=Deadline.of_lambda(context)) if timed else function(event)
        except Exception as exc:
            log.info(json.dumps({**entry, "outcome": type(exc).__name__, "seconds": _since(started)}))
            masked_exception(exc)  # in place: the same exception goes on, with its traceback
            raise
        log.info(json.dumps({**entry, "outcome": "ok", "seconds": _since(started)}))
        return result

    return handler


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)
