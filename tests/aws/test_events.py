"""etl.aws.events: every trigger shape the handlers accept, several records, keys decoded only where S3 encoded
them, one-line errors for anything else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from etl.aws.events import EventError, S3Object, s3_notification, s3_objects, state_input

EVENTS = Path(__file__).parent / "events"
ODD = "partner+bank uploads/2024 03 02/transactions_20240302.dat"
UNICODE = "café übertrag/transactions_20240302.dat"
RAW_KEY = "transactions/transactions_20240302.dat"


def captured(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


@pytest.mark.parametrize(
    ("name", "objects"),
    [
        ("eventbridge-object-created-plus-and-space.json", [S3Object("fintech-etl-landing", ODD)]),
        ("eventbridge-object-created-unicode.json", [S3Object("fintech-etl-landing", UNICODE)]),
        ("eventbridge-object-created-raw.json", [S3Object("fintech-etl-raw", RAW_KEY)]),
        ("s3-notification-put-encoded-keys.json", [S3Object("fintech-etl-landing", ODD)]),
        ("s3-notification-put-unicode-slash-encoded.json", [S3Object("fintech-etl-landing", UNICODE)]),
        ("sns-s3-notification.json", [S3Object("fintech-etl-landing", ODD)]),
        ("sqs-s3-notification.json", [S3Object("fintech-etl-raw", RAW_KEY)]),
        ("s3-notification-delete.json", []),
        ("s3-test-event.json", []),
    ],
)
def test_captured_events(name: str, objects: list[S3Object]) -> None:
    assert s3_objects(captured(name)) == objects


def test_the_same_key_is_encoded_by_s3_notifications_and_left_as_it_is_by_eventbridge() -> None:
    notification = captured("s3-notification-put-encoded-keys.json")["Records"][0]["s3"]["object"]["key"]
    bridged = captured("eventbridge-object-created-plus-and-space.json")["detail"]["object"]["key"]
    assert (notification, bridged) == ("partner%2Bbank+uploads/2024+03+02/transactions_20240302.dat", ODD)


def test_several_records_in_order_and_the_builder_encodes_as_s3_does() -> None:
    event = s3_notification("landing", [RAW_KEY, "x+y%z é.dat"])
    assert [r["s3"]["object"]["key"] for r in event["Records"]] == [RAW_KEY, "x%2By%25z+%C3%A9.dat"]
    assert s3_objects(event) == [S3Object("landing", RAW_KEY), S3Object("landing", "x+y%z é.dat")]


def test_sns_with_several_messages_and_a_json_string_event() -> None:
    sns = captured("sns-s3-notification.json")
    second = json.loads(json.dumps(sns["Records"][0]))
    second["Sns"]["Message"] = json.dumps(s3_notification("fintech-etl-landing", ["two.dat"]))
    sns["Records"].append(second)
    assert [o.key for o in s3_objects(json.dumps(sns))] == [ODD, "two.dat"]


def test_eventbridge_events_of_other_types_name_no_object() -> None:
    event = captured("eventbridge-object-created-raw.json")
    event["detail-type"] = "Object Deleted"
    assert s3_objects(event) == []


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"hello": 1}, "not an S3, SNS, SQS or EventBridge event (keys: ['hello'])"),
        ([1, 2], "must be a JSON object, not list"),
        ("{not json", "must be JSON"),
        ({"Records": [{"unknown": {}}]}, "Records[0]: eventSource 'None' is not aws:s3, aws:sns or aws:sqs"),
        ({"detail-type": "Object Created", "detail": {}}, "malformed EventBridge S3 event: version: Field required"),
        (
            {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]},
            "malformed Records[0] (S3 notification)",
        ),
        (
            {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "{}"}}]},
            "malformed Records[0] (SNS): EventVersion: Field required",
        ),
    ],
)
def test_other_shapes_are_a_one_line_error(event, message: str) -> None:
    with pytest.raises(EventError) as caught:
        s3_objects(event)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_an_error_never_carries_the_events_values() -> None:
    event = captured("cloudformation-create.json")  # a signed URL: what must never reach a log
    with pytest.raises(EventError) as caught:
        s3_objects(event)
    assert "X-Amz-Signature" not in str(caught.value) and event["StackId"] not in str(caught.value)
    broken = captured("eventbridge-object-created-raw.json")
    broken["detail"]["object"]["key"] = ["s3cr3t-value"]
    with pytest.raises(EventError) as caught:
        s3_objects(broken)
    assert "s3cr3t-value" not in str(caught.value) and "detail.object.key" in str(caught.value)


def test_a_state_input_is_checked_before_any_work() -> None:
    pointer = {"bucket": "raw", "key": "transactions/t.dat", "size": 10, "sha256": "ab", "feed": "transactions"}
    parsed = state_input({"file": pointer, "execution_name": "transactions-1", "state": {"other": 1}})
    assert (parsed.file.key, parsed.file.business_date, parsed.execution_name) == (
        "transactions/t.dat",
        None,
        "transactions-1",
    )
    with pytest.raises(EventError, match=r"^malformed state input: file\.sha256: Field required \(1 error\(s\)\)$"):
        state_input({"file": {k: v for k, v in pointer.items() if k != "sha256"}, "execution_name": "x"})
    with pytest.raises(EventError, match="must be a JSON object"):
        state_input(None)
