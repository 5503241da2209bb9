"""Replaying failed work on AWS: a failed execution, and an event a trigger could not handle (its failure queue).

- **A failed execution.** Its input names the raw object. When MoveToError already took the file, the file in
  the error zone with that content (SHA-256 compared, not just the name) goes back to the landing bucket, where
  the triggers start over with it exactly as with a new arrival. When the file is still in raw (the failure
  path itself failed), a new execution starts on it. Either way the new execution's name comes from the
  content and the raw object's version (``states.start_for_object``), so a replay and the raw bucket's own
  trigger racing for the same object start one execution, never two, and the failed one stays in the history.
- **An event in the failure queue.** A Lambda on-failure destination record carries the function's ARN and the
  event it failed on; the function is invoked again with that event and the message deleted once it succeeds.
  A message whose replay fails again stays in the queue (visible again after its timeout).

A file in the error zone by itself is replayed by ``etl.pipeline.replay.take_out`` into landing. Nothing here
bypasses a state: validation, the F004 duplicate check and the one-transaction load all run again
(docs/design.md §8).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import Any

from etl.aws import states
from etl.errors import ConfigError
from etl.io.zones import Zone
from etl.pipeline.context import Context
from etl.pipeline.naming import execution_name
from etl.pipeline.replay import is_data_key, take_out

REPLAYABLE = ("FAILED", "TIMED_OUT", "ABORTED")


@dataclass(frozen=True)
class Replayed:
    """What one replay did: ``action`` is ``landed`` (back in landing for the triggers), ``started`` (a new
    execution), ``already_started``, ``invoked`` (a queued event ran again) or ``failed_again``."""

    source: str
    action: str
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def replay_execution(ctx: Context, sfn: Any, execution_arn: str) -> Replayed:
    """Replay one failed execution (see the module docstring)."""
    described = sfn.describe_execution(executionArn=execution_arn)
    status = described["status"]
    if status not in REPLAYABLE:
        raise ConfigError(f"execution {described['name']} is {status}: only {', '.join(REPLAYABLE)} ones replay")
    execution_input = json.loads(described["input"])
    pointer = execution_input["file"]
    raw, error = ctx.zone("raw"), ctx.zone("error")
    key = states.zone_key(raw, pointer["bucket"], pointer["key"])
    if not raw.exists(key):
        found = _in_error(error, pointer)
        landing_key = take_out(error, found, ctx.zone("landing"))
        return Replayed(execution_arn, "landed", ctx.zone("landing").uri_of(landing_key))
    day = pointer.get("business_date")
    name = execution_name(
        pointer.get("feed") or "unknown", dt.date.fromisoformat(day) if day else None, pointer["sha256"]
    )
    outcome, entry = states.start_for_object(
        sfn, described["stateMachineArn"], name, json.dumps(execution_input), raw, key
    )
    return Replayed(execution_arn, outcome, entry["name"])


def _in_error(error: Zone, pointer: dict[str, Any]) -> str:
    """The error-zone key holding the pointer's content: same business-date folder, same SHA-256."""
    feed, day = pointer.get("feed") or "unknown", pointer.get("business_date") or "undated"
    for key in error.list(f"{feed}/{day}/"):
        if is_data_key(key) and error.sha256(key) == pointer["sha256"]:
            return key
    raise ConfigError(
        f"s3://{pointer['bucket']}/{pointer['key']} is neither in raw nor, with its content, in the error zone"
    )


def replay_queue(sqs: Any, lambda_client: Any, queue_url: str, limit: int = 100) -> list[Replayed]:
    """Invoke again each on-failure record in the queue (up to ``limit``); delete the ones that succeed."""
    done: list[Replayed] = []
    while len(done) < limit:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=min(10, limit - len(done)), WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            break
        for message in batch:
            done.append(_replay_message(sqs, lambda_client, queue_url, message))
    return done


def _replay_message(sqs: Any, lambda_client: Any, queue_url: str, message: dict[str, Any]) -> Replayed:
    try:
        record = json.loads(message["Body"])
        function = record["requestContext"]["functionArn"]
        payload = record["requestPayload"]
    except (ValueError, KeyError, TypeError):
        return Replayed(message["MessageId"], "failed_again", "not a Lambda on-failure record; left in the queue")
    function = function.removesuffix(":$LATEST")
    answer = lambda_client.invoke(FunctionName=function, Payload=json.dumps(payload).encode())
    if answer.get("FunctionError"):
        error = json.loads(answer["Payload"].read() or b"{}").get("errorType", answer["FunctionError"])
        return Replayed(message["MessageId"], "failed_again", f"{function.rsplit(':', 1)[-1]}: {error}")
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return Replayed(message["MessageId"], "invoked", function.rsplit(":", 1)[-1])
