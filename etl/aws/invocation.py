"""What every Lambda handler shares: the typed handler signature, and one structured log line per invocation.

The handlers in ``etl/aws/handlers/`` are one call into ``etl.aws.states`` (or ``migrations_resource``);
:func:`logged` wraps that call so each invocation writes, as one JSON line through the Powertools for AWS
Lambda ``Logger`` (timestamp, level, service, X-Ray trace id), the function, its request id and cold start,
the execution name(s) and the file key(s) it worked on, the outcome and the time taken:

- a state's payload names its execution (``execution_name``) and its file (``file`` or ``state.file``);
- a trigger names the objects of its event (``etl.aws.events``, keys decoded), and ``start_step_function`` the
  executions it started (from its result); ``lz_to_raw`` runs before any execution exists;
- the migrations custom resource names its request type and logical id (no file, no execution).

Only these fields are logged, never the event itself: a state carries pointers and counts (docs/design.md §8),
but a CloudFormation request carries a pre-signed response URL, and a failure's message is cut to one line.

A key is logged as S3 gave it, except that a card number in it is masked (:func:`logged_key`): a landing key is
whatever a sender named it (``incoming/4111111111111111/x.dat``); keys past landing never hold one
(docs/design.md §6). An exception leaving a handler is masked the same way (:func:`masked_exception`), since
the runtime logs its message and Step Functions keeps it as the error's cause.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from etl.aws.events import EventError, s3_objects
from etl.db.limits import Deadline
from etl.names import name_text, without_card_numbers


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now: on Lambda it goes to CloudWatch Logs like stdout; ``etl sim``
    keeps its stdout for its own output (``--json``), and a test can capture it."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


logger = Logger(service="fintech-etl", logger_handler=_CurrentStderr())

Event = dict[str, Any]
_cold = True


class LambdaContext(Protocol):
    """The parts of the Lambda context object the handlers use."""

    function_name: str
    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int: ...


Handler = Callable[[Event, LambdaContext], Any]


def event_keys(event: Any) -> list[str]:
    """The object keys an event names: a state's file pointer, or the objects of a trigger event (decoded).
    Never raises: an event nothing can be read from has no keys (its handler reports why)."""
    if not isinstance(event, dict):
        return []
    state = event.get("state")
    for pointer in (event.get("file"), state.get("file") if isinstance(state, dict) else None):
        if isinstance(pointer, dict) and "key" in pointer:
            return [str(pointer["key"])]
    if "RequestType" in event:  # a CloudFormation custom-resource request names no file
        return []
    try:
        return [obj.key for obj in s3_objects(event)]
    except EventError:
        return []


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


def execution_names(event: Any, result: Any = None) -> list[str]:
    """The execution a state works for, or the executions a trigger started (or found already started)."""
    if isinstance(event, dict) and event.get("execution_name"):
        return [str(event["execution_name"])]
    if isinstance(result, dict):
        entries = [*(result.get("started") or []), *(result.get("already_started") or [])]
        return [str(entry["name"]) for entry in entries if isinstance(entry, dict) and "name" in entry]
    return []


def logged(function: Callable[..., Any], *, with_context: bool = False, timed: bool = False) -> Handler:
    """A Lambda handler around ``function(event)`` (``function(event, context)`` when ``with_context``) that
    logs each invocation (see the module docstring). Errors are re-raised unchanged: the state machine's
    Retry/Catch match them by class name, and a trigger's failure goes to its on-failure queue.

    ``timed``: ``function(event, deadline=...)`` with the moment the function will be stopped, read from the
    context at the start of the invocation (``etl.db.limits.Deadline``).
    """

    @functools.wraps(function)
    def handler(event: Event, context: LambdaContext) -> Any:
        global _cold
        entry: dict[str, Any] = {
            "function": getattr(context, "function_name", None),
            "request_id": getattr(context, "aws_request_id", None),
            "cold_start": _cold,
            "keys": [logged_key(key) for key in event_keys(event)],
        }
        if isinstance(event, dict) and "RequestType" in event:
            entry["request"] = f"{event.get('RequestType')} {event.get('LogicalResourceId')}"
        _cold = False
        started = time.perf_counter()
        try:
            if timed:
                result = function(event, deadline=Deadline.of_lambda(context))
            else:
                result = function(event, context) if with_context else function(event)
        except Exception as exc:
            masked_exception(exc)  # in place: the same exception goes on, with its traceback
            reason = (str(exc).strip().splitlines() or [""])[0][:300]
            entry.update(execution_names=execution_names(event), outcome=type(exc).__name__, reason=reason)
            logger.error("invocation failed", extra={**entry, "seconds": _since(started)})
            raise
        entry.update(execution_names=execution_names(event, result), outcome="ok")
        logger.info("invocation done", extra={**entry, "seconds": _since(started)})
        return result

    return handler


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)
