"""Captured AWS events (``tests/aws/events/``, see its README) replayed into the real handlers on emulated AWS:
the object each names is found under its real key - a key with spaces, plus signs and accents, URL-encoded by
S3 notifications and left as it is by EventBridge - and a malformed event fails with one line."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from etl.aws.replay import replay_queue
from etl.aws.sim import FunctionFailed, Simulation, function_name
from etl.package_data import samples_dir
from tests.environment import EtlEnv

EVENTS = Path(__file__).parent / "events"
SAMPLE = samples_dir() / "transactions_20240302.dat"
RAW_KEY = "transactions/transactions_20240302.dat"
ODD = "partner+bank uploads/2024 03 02/transactions_20240302.dat"
UNICODE = "café übertrag/transactions_20240302.dat"


def captured(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def put(sim: Simulation, zone: str, key: str) -> None:
    sim.aws.client("s3").put_object(Bucket=sim.buckets[zone], Key=key, Body=SAMPLE.read_bytes())


@pytest.mark.parametrize(
    ("name", "landed"),
    [
        ("eventbridge-object-created-plus-and-space.json", ODD),  # what the deployed landing rule delivers
        ("eventbridge-object-created-unicode.json", UNICODE),
        ("s3-notification-put-encoded-keys.json", ODD),
        ("s3-notification-put-unicode-slash-encoded.json", UNICODE),
        ("sns-s3-notification.json", ODD),
    ],
)
def test_a_landing_event_moves_the_object_it_names_into_raw(
    sim: Simulation, etl_env: EtlEnv, invocation_log, name: str, landed: str
):
    put(sim, "landing", landed)
    result = sim.invoke("lz_to_raw", captured(name))
    assert [m["key"] for m in result["moved"]] == [RAW_KEY] and result["skipped"] == []
    [line] = invocation_log()  # before any execution: the key, no execution name
    assert (line["keys"], line["execution_names"], line["outcome"]) == ([landed], [], "ok")
    s3 = sim.aws.client("s3")
    assert s3.list_objects_v2(Bucket=sim.buckets["landing"]).get("KeyCount") == 0
    assert s3.head_object(Bucket=sim.buckets["raw"], Key=RAW_KEY)["ContentLength"] == SAMPLE.stat().st_size


@pytest.mark.parametrize("name", ["eventbridge-object-created-raw.json", "sqs-s3-notification.json"])
def test_a_raw_event_starts_the_execution_that_loads_the_file(
    sim: Simulation, etl_env: EtlEnv, invocation_log, name: str
):
    """... and every function it invokes logs one line naming that execution and the file."""
    put(sim, "raw", RAW_KEY)
    result = sim.invoke("start_step_function", captured(name))
    [started] = result["started"]
    assert started["key"] == RAW_KEY and started["name"].startswith("transactions-20240302-")
    assert sim.wait(started["execution_arn"])["status"] == "SUCCEEDED"
    with psycopg.connect(etl_env.db_url) as conn:
        assert conn.execute("SELECT file_name, status FROM etl.file_ledger").fetchall() == [
            ("transactions_20240302.dat", "LOADED")
        ]
    lines = {line["function"]: line for line in invocation_log()}
    assert sorted(lines) == [
        function_name(m)
        for m in ("move_file", "notification", "rds_write", "start_step_function", "transform", "validation")
    ]
    for line in lines.values():
        assert (line["execution_names"], line["keys"], line["outcome"]) == ([started["name"]], [RAW_KEY], "ok")
        assert line["request_id"] and line["level"] == "INFO"


@pytest.mark.parametrize("name", ["s3-notification-delete.json", "s3-test-event.json"])
def test_events_that_name_no_new_object_do_nothing(sim: Simulation, etl_env: EtlEnv, name: str):
    put(sim, "landing", "transactions_20240302.dat")
    assert sim.invoke("lz_to_raw", captured(name)) == {"moved": [], "skipped": []}
    assert sim.aws.client("s3").list_objects_v2(Bucket=sim.buckets["landing"])["KeyCount"] == 1


def test_a_captured_on_failure_record_is_invoked_again_from_the_queue(sim: Simulation, etl_env: EtlEnv):
    put(sim, "landing", ODD)
    sqs = sim.aws.client("sqs")
    queue = sqs.create_queue(QueueName="captured-failed-triggers")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=(EVENTS / "lambda-on-failure-record.json").read_text())
    [done] = replay_queue(sqs, sim.aws.client("lambda"), queue)
    assert (done.action, done.detail) == ("invoked", function_name("lz_to_raw"))
    assert sim.aws.client("s3").head_object(Bucket=sim.buckets["raw"], Key=RAW_KEY)


def test_an_eventbridge_key_is_never_decoded_again(sim: Simulation, etl_env: EtlEnv):
    """The classic bug: ``unquote_plus`` on an EventBridge key turns its ``+`` into a space and names another
    object. Here both objects exist; the event's own object is the one moved."""
    put(sim, "landing", ODD)
    put(sim, "landing", ODD.replace("+", " "))  # what a wrong decode would name
    result = sim.invoke("lz_to_raw", captured("eventbridge-object-created-plus-and-space.json"))
    assert [m["key"] for m in result["moved"]] == [RAW_KEY]
    remaining = sim.aws.client("s3").list_objects_v2(Bucket=sim.buckets["landing"])["Contents"]
    assert [o["Key"] for o in remaining] == [ODD.replace("+", " ")]


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"detail-type": "Object Created", "source": "aws.s3", "detail": {}}, "malformed EventBridge S3 event"),
        (captured("cloudformation-create.json"), "not an S3, SNS, SQS or EventBridge event"),
    ],
)
def test_a_malformed_or_foreign_event_fails_the_invocation_with_one_line(
    sim: Simulation, etl_env: EtlEnv, invocation_log, event: dict, reason: str
):
    """Failing (not skipping) is what sends an asynchronous trigger's event to the failed-triggers queue."""
    with pytest.raises(FunctionFailed) as failed:
        sim.invoke("lz_to_raw", event)
    message = str(failed.value)
    assert f"EventError: {reason}" in message and "\n" not in message
    assert "X-Amz-Signature" not in message
    [line] = [entry for entry in invocation_log() if entry["function"] == "fintech-etl-lz-to-raw"]
    assert (line["outcome"], line["keys"], line["level"]) == ("EventError", [], "ERROR")
    assert reason in line["reason"] and "X-Amz-Signature" not in json.dumps(line)
