"""The real handlers (etl/aws/handlers/), the real state machine (etl/aws/state_machine.yml), moto, a real
PostgreSQL and (for large files) the real PySpark engine: files dropped into the landing bucket end in the
database, archive or error, notified."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest
from psycopg import sql

from etl.aws.sim import Simulation, function_name
from etl.contract import load_contract
from etl.generate import generate
from etl.package_data import samples_dir

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = samples_dir()
SUCCESS_PATH = [
    "ValidateFile",
    "IsValid?",
    "SmallOrLarge?",
    "TransformInLambda",
    "LoadToDatabase",
    "LoadedOrSkipped?",
    "MoveToArchive",
    "NotifySuccess",
    "Succeeded",
]
REJECT_PATH = ["ValidateFile", "IsValid?", "MoveToError", "NotifyFailure", "FileFailed"]
SKIP_PATH = ["ValidateFile", "IsValid?", "MoveToArchiveSkipped", "NotifySkipped", "Succeeded"]


def table_rows(db_url: str, feed: str) -> int:
    target = load_contract(feed).target_table
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(target.schema_, target.name))
    with psycopg.connect(db_url) as conn:
        return conn.execute(query).fetchone()[0]


def ledger(db_url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(db_url) as conn:
        query = "SELECT file_name, status, execution_name FROM etl.file_ledger ORDER BY ledger_id"
        return conn.execute(query).fetchall()


def keys(sim: Simulation, zone: str) -> list[str]:
    listed = sim.aws.client("s3").list_objects_v2(Bucket=sim.buckets[zone]).get("Contents", [])
    return sorted(o["Key"] for o in listed)


def read(sim: Simulation, zone: str, key: str) -> bytes:
    return sim.aws.client("s3").get_object(Bucket=sim.buckets[zone], Key=key)["Body"].read()


@pytest.mark.parametrize("name", ["transactions_20240301.dat", "account_summary_20240301.dat"])
def test_valid_file_is_loaded_archived_and_notified(sim, etl_env, name):
    feed = load_contract(name.rsplit("_", 1)[0]).feed
    run = sim.run_file(SAMPLES / name)
    assert (run.status, run.execution_status, run.states) == ("SUCCESS", "SUCCEEDED", SUCCESS_PATH)
    message = run.notification
    assert message["msg"] == f"File uploaded to RDS and moved to archive: {feed}"
    assert message["executionname"] == run.execution_name and message["status"] == "SUCCESS"
    assert run.execution_name.startswith(f"{feed}-20240301-")
    loaded = table_rows(etl_env, feed)
    assert loaded == message["rows"]["inserted"] > 0
    archived = f"{feed}/2024-03-01/{name}"
    assert keys(sim, "archive") == [archived, archived + ".report.json"]
    assert read(sim, "archive", archived) == (SAMPLES / name).read_bytes()
    assert keys(sim, "landing") == keys(sim, "raw") == keys(sim, "error") == []
    assert keys(sim, "stage") == [f"{feed}/business_date=2024-03-01/{Path(name).stem}.parquet"]
    assert ledger(etl_env) == [(name, "LOADED", run.execution_name)]


def test_rejected_file_goes_to_error_with_its_report(sim, etl_env):
    source = SAMPLES / "corrupt" / "transactions_20240301.dat"
    run = sim.run_file(source)
    assert (run.status, run.execution_status, run.states) == ("FAILURE", "FAILED", REJECT_PATH)
    where = "transactions/2024-03-01/transactions_20240301.dat"
    assert keys(sim, "error") == [where, where + ".report.json"]
    report = json.loads(read(sim, "error", where + ".report.json"))
    assert not report["valid"] and report["errors"]
    message = run.notification
    assert message["msg"] == "File moved to error: transactions" and message["status"] == "FAILURE"
    assert message["errors"] == {rule: e["count"] for rule, e in report["errors"].items()}
    assert message["location"] == f"s3://{sim.buckets['error']}/{where}"
    assert table_rows(etl_env, "transactions") == 0
    assert [row[1] for row in ledger(etl_env)] == ["REJECTED"]
    assert keys(sim, "raw") == keys(sim, "archive") == keys(sim, "stage") == []


def test_transient_lambda_error_is_retried_to_success(sim, etl_env):
    sim.aws.inject_lambda_error(function_name("rds_write"), times=2)
    run = sim.run_file(SAMPLES / "transactions_20240302.dat")
    assert (run.status, run.states) == ("SUCCESS", SUCCESS_PATH)
    assert sim.aws.invocations.count(function_name("rds_write")) == 3
    assert len(sim.aws.retry_sleeps) == 2  # two backoffs, skipped rather than slept
    assert [row[1] for row in ledger(etl_env)] == ["LOADED"]
    assert table_rows(etl_env, "transactions") == run.notification["rows"]["inserted"]


def test_large_file_is_transformed_by_the_spark_glue_job(open_sim, etl_env, spark, tmp_path):
    path = generate("account_summary", dt.date(2024, 3, 4), rows=40, seed=7, out_dir=tmp_path)
    sim = open_sim(threshold=1000, spark=spark)
    run = sim.run_file(path)
    assert run.status == "SUCCESS", run
    assert run.states == [*SUCCESS_PATH[:3], "TransformWithGlue", *SUCCESS_PATH[4:]]
    assert table_rows(etl_env, "account_summary") == 40 == run.notification["rows"]["rows_in"]
    staged_key = f"account_summary/business_date=2024-03-04/{path.stem}.parquet"
    assert keys(sim, "stage") == [staged_key]  # Spark's temporary part files are gone
    local = tmp_path / "staged.parquet"
    local.write_bytes(read(sim, "stage", staged_key))
    table = pq.read_table(local)
    assert table.num_rows == 40 and set(table.column("execution_name").to_pylist()) == {run.execution_name}


def test_glue_failure_is_caught_into_the_failure_path(open_sim, etl_env, spark, tmp_path):
    sim = open_sim(threshold=1000, spark=spark)
    sim.aws.client("secretsmanager").delete_secret(SecretId=sim.pan_key_secret_id, ForceDeleteWithoutRecovery=True)
    run = sim.run_file(SAMPLES / "account_summary_20240302.dat")
    assert run.status == "FAILURE"
    assert run.states == [
        "ValidateFile",
        "IsValid?",
        "SmallOrLarge?",
        "TransformWithGlue",
        "MoveToError",
        "NotifyFailure",
        "FileFailed",
    ]
    assert "SecretError" in run.notification["error"]
    where = "account_summary/2024-03-02/account_summary_20240302.dat"
    assert keys(sim, "error") == [where, where + ".error.json", where + ".report.json"]
    assert json.loads(read(sim, "error", where + ".error.json"))["Error"]
    assert table_rows(etl_env, "account_summary") == 0
    assert ledger(etl_env) == [("account_summary_20240302.dat", "FAILED", run.execution_name)]


def test_repeated_events_and_copies_load_once(sim, etl_env, tmp_path):
    source = SAMPLES / "transactions_20240301.dat"
    landing_key = sim.upload(source)
    landed = sim.land([landing_key])
    raw_key = landed["moved"][0]["key"]
    assert sim.land([landing_key]) == {
        "moved": [],
        "skipped": [{"key": landing_key, "reason": "no longer in the landing zone"}],
    }
    (execution,) = sim.trigger([raw_key])["started"]
    again = sim.trigger([raw_key])  # the same S3 event delivered twice: the running execution, or nothing
    assert [e["execution_arn"] for e in again["started"]] in ([execution["execution_arn"]], [])
    sim.wait(execution["execution_arn"])
    assert len(sim.aws.client("stepfunctions").list_executions(stateMachineArn=sim.machine_arn)["executions"]) == 1
    assert sim.trigger([raw_key]) == {
        "started": [],
        "already_started": [],
        "skipped": [{"key": raw_key, "reason": "no longer in the raw zone"}],
    }

    copy = tmp_path / "transactions_20240301_01.dat"  # the header's sequence is 01: another _NN would be H005
    shutil.copyfile(source, copy)
    copied = sim.run_file(copy)  # the same content under another name
    resent = sim.run_file(source, key="resent/transactions_20240301.dat")  # the same name, sent again
    for run in (copied, resent):
        assert (run.status, run.execution_status, run.states) == ("SKIPPED", "SUCCEEDED", SKIP_PATH)
        assert run.notification["msg"] == "File already loaded, moved to archive: transactions"
    assert resent.execution_name.startswith(execution["name"] + "-")
    assert [row[1] for row in ledger(etl_env)] == ["LOADED", "SKIPPED", "SKIPPED"]
    assert table_rows(etl_env, "transactions") == sim.notification_for(execution["name"])["rows"]["inserted"]
    assert keys(sim, "raw") == []
    assert sorted(k for k in keys(sim, "archive") if k.endswith(".dat")) == [
        "transactions/2024-03-01/transactions_20240301.1.dat",
        "transactions/2024-03-01/transactions_20240301.dat",
        "transactions/2024-03-01/transactions_20240301_01.dat",
    ]


def test_key_with_spaces_and_plus_signs(sim, etl_env):
    key = "partner+bank uploads/2024 03 02/transactions_20240302.dat"
    run = sim.run_file(SAMPLES / "transactions_20240302.dat", key=key)  # the event carries it URL-encoded
    assert (run.status, run.states) == ("SUCCESS", SUCCESS_PATH)
    assert "transactions/2024-03-02/transactions_20240302.dat" in keys(sim, "archive")
    assert keys(sim, "landing") == []
    assert table_rows(etl_env, "transactions") > 0
