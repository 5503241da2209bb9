"""PAN key resolution: environment, Secrets Manager (moto), then a loudly warned development default."""

from __future__ import annotations

import json
import logging

import boto3
import pytest

from etl.config import Settings
from etl.io.secrets import DEV_PAN_KEY, SecretError, pan_key

SECRET = "super-secret-pan-key-value"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ETL_PAN_KEY", raising=False)
    monkeypatch.delenv("ETL_PAN_KEY_SECRET_ID", raising=False)


def test_environment_key_wins(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("ETL_PAN_KEY", SECRET)
    monkeypatch.setenv("ETL_PAN_KEY_SECRET_ID", "unused")
    with caplog.at_level(logging.DEBUG, logger="etl"):
        assert pan_key(Settings()) == SECRET.encode()
    assert SECRET not in caplog.text


@pytest.mark.parametrize("stored", [SECRET, json.dumps({"pan_key": SECRET, "other": 1})])
def test_secrets_manager_plain_or_json(
    stored: str, mocked_aws: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    boto3.client("secretsmanager").create_secret(Name="etl/pan", SecretString=stored)
    monkeypatch.setenv("ETL_PAN_KEY_SECRET_ID", "etl/pan")
    with caplog.at_level(logging.DEBUG, logger="etl"):
        assert pan_key(Settings()) == SECRET.encode()
    assert SECRET not in caplog.text


def test_bad_secrets_name_no_value(mocked_aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    boto3.client("secretsmanager").create_secret(Name="etl/json", SecretString=json.dumps({"key": SECRET}))
    monkeypatch.setenv("ETL_PAN_KEY_SECRET_ID", "etl/json")
    with pytest.raises(SecretError, match="pan_key") as err:
        pan_key(Settings())
    assert SECRET not in str(err.value)
    monkeypatch.setenv("ETL_PAN_KEY_SECRET_ID", "etl/missing")
    with pytest.raises(SecretError, match="etl/missing"):
        pan_key(Settings())


def test_development_default_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.warns(UserWarning, match="production") as warned, caplog.at_level(logging.DEBUG):
        assert pan_key(Settings()) == DEV_PAN_KEY
    assert len(warned) == 1
    assert "production" not in caplog.text  # not logged as well: the CLI printed it twice
    assert DEV_PAN_KEY.decode() not in str(warned[0].message)
