"""Each Lambda invocation logs one JSON line: function, request id, execution name, file keys, outcome."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import pytest

from etl.aws.invocation import event_keys, logged


@dataclass
class Context:
    function_name: str = "fintech-etl-validation"
    aws_request_id: str = "req-1"


S3_RECORD = {"s3": {"bucket": {"name": "raw"}, "object": {"key": "transactions/transactions_20240301.dat"}}}


@pytest.mark.parametrize(
    ("event", "keys"),
    [
        ({"file": {"bucket": "raw", "key": "transactions/t.dat"}, "execution_name": "x"}, ["transactions/t.dat"]),
        ({"Records": [S3_RECORD, S3_RECORD]}, ["transactions/transactions_20240301.dat"] * 2),
        (
            {"Records": [{"Sns": {"Message": json.dumps({"Records": [S3_RECORD]})}}]},
            ["transactions/transactions_20240301.dat"],
        ),
        ({"detail-type": "Object Created", "detail": {"object": {"key": "a b.dat"}}}, ["a b.dat"]),
        ({"Records": [{"Sns": {"Message": "not json"}}]}, []),
        ("not a dict", []),
    ],
)
def test_event_keys(event, keys) -> None:
    assert event_keys(event) == keys


def test_a_logged_handler_says_what_it_worked_on(caplog: pytest.LogCaptureFixture) -> None:
    handler = logged(lambda event: {"valid": True})
    with caplog.at_level(logging.INFO, logger="etl.aws.invocation"):
        result = handler({"file": {"key": "transactions/t.dat"}, "execution_name": "transactions-1"}, Context())
    assert result == {"valid": True}
    [line] = [json.loads(r.message) for r in caplog.records]
    assert line["function"] == "fintech-etl-validation" and line["request_id"] == "req-1"
    assert (line["execution_name"], line["keys"], line["outcome"]) == ("transactions-1", ["transactions/t.dat"], "ok")


def test_a_failing_handler_logs_its_error_class_and_raises(caplog: pytest.LogCaptureFixture) -> None:
    def fails(event):
        raise RuntimeError("boom")

    with caplog.at_level(logging.INFO, logger="etl.aws.invocation"), pytest.raises(RuntimeError):
        logged(fails)({"execution_name": "e"}, Context())
    assert json.loads(caplog.records[0].message)["outcome"] == "RuntimeError"
