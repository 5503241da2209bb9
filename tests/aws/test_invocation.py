"""Each Lambda invocation logs one JSON line (Powertools Logger): function, request id, execution name(s), file
keys, outcome - and never the event itself."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from etl.aws.events import s3_notification
from etl.aws.invocation import event_keys, execution_names, logged

EVENTS = Path(__file__).parent / "events"


@dataclass
class Context:
    function_name: str = "fintech-etl-validation"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def captured(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


@pytest.mark.parametrize(
    ("event", "keys"),
    [
        ({"file": {"bucket": "raw", "key": "transactions/t.dat"}, "execution_name": "x"}, ["transactions/t.dat"]),
        ({"status": "SUCCESS", "state": {"file": {"key": "transactions/t.dat"}}}, ["transactions/t.dat"]),
        (s3_notification("raw", ["a b.dat", "c+d.dat"]), ["a b.dat", "c+d.dat"]),
        (captured("sns-s3-notification.json"), ["partner+bank uploads/2024 03 02/transactions_20240302.dat"]),
        (captured("eventbridge-object-created-unicode.json"), ["café übertrag/transactions_20240302.dat"]),
        (captured("cloudformation-create.json"), []),
        ({"Records": [{"Sns": {"Message": "not json"}}]}, []),
        ({"status": "FAILURE", "state": "not an object"}, []),
        ("not a dict", []),
    ],
)
def test_event_keys(event, keys) -> None:
    assert event_keys(event) == keys


def test_execution_names_of_a_state_and_of_the_trigger_that_starts_them() -> None:
    assert execution_names({"execution_name": "transactions-1"}) == ["transactions-1"]
    result = {"started": [{"name": "a", "key": "k"}], "already_started": [{"name": "b"}], "skipped": []}
    assert execution_names(s3_notification("raw", ["k"]), result) == ["a", "b"]
    assert execution_names(s3_notification("landing", ["k"]), {"moved": []}) == []


def test_a_logged_handler_says_what_it_worked_on(invocation_log) -> None:
    handler = logged(lambda event: {"valid": True})
    result = handler({"file": {"key": "transactions/t.dat"}, "execution_name": "transactions-1"}, Context())
    assert result == {"valid": True}
    [line] = invocation_log()
    assert line["function"] == "fintech-etl-validation" and line["request_id"] == "req-1"
    assert (line["execution_names"], line["keys"]) == (["transactions-1"], ["transactions/t.dat"])
    assert line["outcome"] == "ok"
    assert line["service"] == "fintech-etl" and line["level"] == "INFO" and "timestamp" in line


def test_a_failing_handler_logs_its_error_class_and_one_line_and_raises(invocation_log) -> None:
    def fails(event):
        raise RuntimeError("boom\nsecond line with detail")

    with pytest.raises(RuntimeError):
        logged(fails)({"execution_name": "e"}, Context())
    [line] = invocation_log()
    assert (line["outcome"], line["reason"], line["level"]) == ("RuntimeError", "boom", "ERROR")


def test_the_custom_resource_request_is_logged_without_its_signed_url(invocation_log) -> None:
    event = captured("cloudformation-create.json")
    seen = []
    handler = logged(lambda event, context: seen.append(context.aws_request_id) or "SUCCESS", with_context=True)
    assert handler(event, Context()) == "SUCCESS" and seen == ["req-1"]
    [line] = invocation_log()
    assert line["request"] == "Create DatabaseMigrations" and line["keys"] == []
    text = json.dumps(line)
    assert "ResponseURL" not in text and "X-Amz-Signature" not in text and event["ResponseURL"] not in text
