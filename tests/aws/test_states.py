"""etl.aws.states helpers that the emulated pipeline does not reach in every branch."""

from __future__ import annotations

import json

import pytest

from etl.aws.states import ForeignObjectError, error_text, execution_arn, s3_location, zone_key
from etl.io.zones import LocalZone, S3Zone


def test_zone_key_strips_the_zone_prefix_and_refuses_other_objects(tmp_path):
    plain, prefixed = S3Zone("raw", client=object()), S3Zone("data", "raw/v1", client=object())
    assert zone_key(plain, "raw", "transactions/t.dat") == "transactions/t.dat"
    assert zone_key(prefixed, "data", "raw/v1/transactions/t.dat") == "transactions/t.dat"
    with pytest.raises(ForeignObjectError):
        zone_key(plain, "landing", "transactions/t.dat")
    with pytest.raises(ForeignObjectError):
        zone_key(prefixed, "data", "raw/v2/t.dat")
    with pytest.raises(ForeignObjectError):
        zone_key(LocalZone(tmp_path), "raw", "t.dat")


def test_s3_location_and_execution_arn():
    assert s3_location("s3://archive/transactions/2024-03-01/t.dat") == {
        "bucket": "archive",
        "key": "transactions/2024-03-01/t.dat",
    }
    with pytest.raises(ValueError):
        s3_location("/local/path")
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:fintech-etl"
    assert execution_arn(machine, "n-1") == "arn:aws:states:us-east-1:123456789012:execution:fintech-etl:n-1"


def test_error_text_reads_a_lambda_cause_or_keeps_plain_text():
    cause = json.dumps({"errorMessage": "could not connect", "errorType": "TransientDatabaseError"})
    assert error_text({"Error": "TransientDatabaseError", "Cause": cause}) == (
        "TransientDatabaseError: could not connect"
    )
    assert error_text({"Error": "States.Timeout", "Cause": "took too long"}) == "States.Timeout: took too long"
    assert error_text(None) is None
