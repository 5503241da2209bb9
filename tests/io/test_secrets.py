"""PAN key resolution: environment, Secrets Manager (moto), then a loudly warned development default."""

from __future__ import annotations

import json
import logging
import warnings

import boto3
import pytest

from etl.config import Settings
from etl.errors import ConfigError
from etl.io.secrets import DEV_PAN_KEY, DevKeyWarning, MissingPanKeyError, SecretError, pan_key
from tests.environment import clear_etl_env

SECRET = "super-secret-pan-key-value"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_etl_env(monkeypatch)


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


REMOTE = {
    "ETL_RAW_URI": "s3://raw-bucket/raw",
    "ETL_STAGE_URI": "s3://stage-bucket",
    "ETL_DATABASE_URL": "postgresql://etl@db.example/fintech",
    "ETL_DB_SECRET_ID": "etl/db",
    "ETL_SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:etl",
}


@pytest.fixture
def all_local(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("ETL_HOME", str(tmp_path))  # and nothing remote (clean_env)


def test_development_key_only_when_everything_is_local(all_local, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.warns(DevKeyWarning, match="everything is local") as warned, caplog.at_level(logging.DEBUG):
        assert pan_key(Settings()) == DEV_PAN_KEY
    assert len(warned) == 1 and "\n" not in str(warned[0].message)  # one line
    assert "development key" not in caplog.text  # not logged as well: the CLI printed it twice
    assert DEV_PAN_KEY.decode() not in str(warned[0].message)
    local_folders = Settings(raw_uri="/tmp/raw", stage_uri="file:///tmp/stage")
    assert local_folders.remote_parts() == []


@pytest.mark.parametrize("variable", REMOTE)
def test_missing_key_is_a_configuration_error_off_the_machine(all_local, monkeypatch, variable) -> None:
    monkeypatch.setenv(variable, REMOTE[variable])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning either: refused outright
        with pytest.raises(MissingPanKeyError, match=variable) as err:
            pan_key(Settings())
    assert isinstance(err.value, ConfigError)
    monkeypatch.setenv("ETL_PAN_KEY", SECRET)
    assert pan_key(Settings()) == SECRET.encode()


def test_every_remote_part_is_named(all_local, monkeypatch) -> None:
    for variable, value in REMOTE.items():
        monkeypatch.setenv(variable, value)
    with pytest.raises(MissingPanKeyError) as err:
        pan_key(Settings())
    assert all(variable in str(err.value) for variable in REMOTE)


def test_deployed_components_never_use_the_development_key(all_local, monkeypatch) -> None:
    """Lambda handlers and the Glue job are never local, whatever their environment says."""
    from etl.pipeline.context import Context
    from etl.spark.job import resolve_pan_key

    with pytest.raises(MissingPanKeyError, match="deployed"):
        pan_key(Settings(), deployed=True)
    with pytest.raises(MissingPanKeyError):
        resolve_pan_key()
    with pytest.raises(MissingPanKeyError), Context(deployed=True) as ctx:
        ctx.masker  # noqa: B018 - the transform Lambda's first use of the key
    monkeypatch.setenv("ETL_PAN_KEY", SECRET)
    assert resolve_pan_key() == SECRET.encode()
