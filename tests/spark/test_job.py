"""The Glue job path: arguments, PAN key resolution, ``run_job`` and the thin entry script end to end."""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest
from conftest import CARDS, account_lines
from moto import mock_aws

from etl.spark.engine import run_job
from etl.spark.job import job_arguments, parse_business_date, resolve_pan_key

ROOT = Path(__file__).resolve().parents[2]
ARGV = [
    "transform_job.py",
    "--feed",
    "transactions",
    "--source_uri",
    "/raw/transactions_20240301.dat",
    "--stage_uri",
    "/stage",
    "--business_date",
    "2024-03-01",
    "--execution_name",
    "ex-1",
]


def test_job_arguments_without_glue():
    glue_extras = ["--JOB_ID", "j_1", "--job-bookmark-option", "job-bookmark-disable", "--sha256", "ab" * 32]
    args = job_arguments([*ARGV, *glue_extras, "--error_uri", "s3://error"])
    assert args == {
        "feed": "transactions",
        "source": "/raw/transactions_20240301.dat",
        "stage_uri": "/stage",
        "business_date": "2024-03-01",
        "execution_name": "ex-1",
        "pan_key_secret_id": None,
    }
    assert job_arguments([*ARGV, "--pan_key_secret_id", "pan"])["pan_key_secret_id"] == "pan"
    with pytest.raises(SystemExit):
        job_arguments(ARGV[:3])


def test_parse_business_date_forms():
    assert (
        parse_business_date("2024-03-01")
        == parse_business_date("20240301")
        == parse_business_date(parse_business_date(" 2024-03-01 "))
    )


def test_job_secret_id_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("ETL_PAN_KEY", "env-key")
    assert resolve_pan_key() == b"env-key"
    with mock_aws():
        boto3.client("secretsmanager").create_secret(Name="etl/pan-key", SecretString='{"pan_key": "sm-key"}')
        assert resolve_pan_key("etl/pan-key") == b"sm-key"


def test_run_job_without_feed_or_date_uses_the_file_name(spark, tmp_path, account_file):
    result = run_job(
        spark, source=str(account_file), stage_uri=str(tmp_path / "stage"), execution_name="ex-2", pan_key=b"k"
    )
    assert result["feed"] == "account_summary" and result["business_date"] == "2024-03-01"
    assert result["rows"] == len(account_lines()) - 2 == pq.read_metadata(result["stage_file"]).num_rows


@mock_aws
def test_glue_entry_end_to_end(spark, tmp_path, transactions_file, monkeypatch, capsys):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("ETL_PAN_KEY", raising=False)
    boto3.client("secretsmanager").create_secret(Name="etl/pan-key", SecretString="glue-key")
    spec = importlib.util.spec_from_file_location("transform_job", ROOT / "glue" / "transform_job.py")
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    argv = [
        "transform_job.py",
        "--feed",
        "transactions",
        "--source_uri",
        str(transactions_file),
        "--stage_uri",
        str(tmp_path / "stage"),
        "--business_date",
        "20240301",
        "--execution_name",
        "ex-3",
        "--pan_key_secret_id",
        "etl/pan-key",
    ]
    result = entry.main(argv)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == result
    assert result["rows"] == len(CARDS)
    table = pq.read_table(result["stage_file"])
    assert set(table.column("execution_name").to_pylist()) == {"ex-3"}
    want = {hmac.new(b"glue-key", n.encode(), hashlib.sha256).hexdigest() for n in CARDS.values()}
    assert set(table.column("card_token").to_pylist()) == want
