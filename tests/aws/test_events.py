"""etl.aws.events: every trigger shape the handlers accept, several records, URL-decoded keys."""

from __future__ import annotations

import json

import pytest

from etl.aws.events import EventError, S3Object, s3_objects


def s3_record(bucket: str, key: str, event_name: str = "ObjectCreated:Put") -> dict:
    return {
        "eventSource": "aws:s3",
        "eventName": event_name,
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 10}},
    }


def test_s3_notification_with_several_records_in_order():
    event = {"Records": [s3_record("landing", "a/transactions_20240301.dat"), s3_record("landing", "b.dat")]}
    assert s3_objects(event) == [S3Object("landing", "a/transactions_20240301.dat"), S3Object("landing", "b.dat")]


def test_keys_are_url_decoded_plus_and_percent():
    event = {"Records": [s3_record("raw", "partner+bank/2024%2F03+01/x%2By%25z%C3%A9.dat")]}
    assert s3_objects(event) == [S3Object("raw", "partner bank/2024/03 01/x+y%zé.dat")]


def test_sns_wrapped_s3_event_several_records_and_messages():
    inner = {"Records": [s3_record("landing", "one+file.dat"), s3_record("landing", "two.dat")]}
    event = {
        "Records": [
            {"EventSource": "aws:sns", "Sns": {"Message": json.dumps(inner)}},
            {
                "EventSource": "aws:sns",
                "Sns": {"Message": json.dumps({"Records": [s3_record("landing", "three%20.dat")]})},
            },
        ]
    }
    assert [o.key for o in s3_objects(event)] == ["one file.dat", "two.dat", "three .dat"]


def test_sqs_wrapped_s3_event():
    event = {"Records": [{"eventSource": "aws:sqs", "body": json.dumps({"Records": [s3_record("raw", "a+b.dat")]})}]}
    assert s3_objects(event) == [S3Object("raw", "a b.dat")]


def test_eventbridge_object_created():
    event = {
        "version": "0",
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": "raw"}, "object": {"key": "transactions/a+b%2Bc.dat", "size": 5}},
    }
    assert s3_objects(event) == [S3Object("raw", "transactions/a b+c.dat")]


def test_events_naming_no_object():
    assert s3_objects({"detail-type": "Object Deleted", "detail": {}}) == []
    assert s3_objects({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "landing"}) == []
    assert s3_objects({"Records": [s3_record("landing", "gone.dat", "ObjectRemoved:Delete")]}) == []
    sns_test = {"Records": [{"Sns": {"Message": json.dumps({"Event": "s3:TestEvent"})}}]}
    assert s3_objects(sns_test) == []


def test_a_json_string_event_is_parsed():
    assert s3_objects(json.dumps({"Records": [s3_record("raw", "x.dat")]})) == [S3Object("raw", "x.dat")]


@pytest.mark.parametrize("event", [{"hello": 1}, [1, 2], {"Records": [{"unknown": {}}]}])
def test_other_shapes_are_an_error(event):
    with pytest.raises(EventError):
        s3_objects(event)
