"""The real handlers (etl/aws/handlers/), the real state machine (etl/aws/state_machine.yml), moto, a real
PostgreSQL and (for large files) the real PySpark engine: files dropped into the landing bucket end in the
database, archive or error, notified.

All of it over HTTP (moto in server mode) with IAM enforced: every call of every function is checked against
its role's policy as template.yml deploys it (docs/design.md §12)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest
from psycopg import sql

from etl.aws.iam_emulation import grant_uses, usage_table
from etl.aws.sim import Simulation, function_name
from etl.contract import load_contract
from etl.generate import derive_update_file, generate
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
def test_valid_file_is_loaded_archived_and_notified(sim, db_url, name):
    feed = load_contract(name.rsplit("_", 1)[0]).feed
    run = sim.run_file(SAMPLES / name)
    assert (run.status, run.execution_status, run.states) == ("SUCCESS", "SUCCEEDED", SUCCESS_PATH)
    message = run.notification
    assert message["msg"] == f"File uploaded to RDS and moved to archive: {feed}"
    assert message["executionname"] == run.execution_name and message["status"] == "SUCCESS"
    assert run.execution_name.startswith(f"{feed}-20240301-")
    loaded = table_rows(db_url, feed)
    assert loaded == message["rows"]["inserted"] > 0
    archived = f"{feed}/2024-03-01/{name}"
    assert keys(sim, "archive") == [archived, archived + ".report.json"]
    assert read(sim, "archive", archived) == (SAMPLES / name).read_bytes()
    assert keys(sim, "landing") == keys(sim, "raw") == keys(sim, "error") == []
    assert keys(sim, "stage") == [f"{feed}/business_date=2024-03-01/{Path(name).stem}.parquet"]
    assert ledger(db_url) == [(name, "LOADED", run.execution_name)]


def test_rejected_file_goes_to_error_with_its_report(sim, db_url):
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
    assert table_rows(db_url, "transactions") == 0
    assert [row[1] for row in ledger(db_url)] == ["REJECTED"]
    assert keys(sim, "raw") == keys(sim, "archive") == keys(sim, "stage") == []


def test_transient_lambda_error_is_retried_to_success(sim, db_url):
    sim.aws.inject_lambda_error(function_name("rds_write"), times=2)
    run = sim.run_file(SAMPLES / "transactions_20240302.dat")
    assert (run.status, run.states) == ("SUCCESS", SUCCESS_PATH)
    assert sim.aws.invocations.count(function_name("rds_write")) == 3
    assert len(sim.aws.retry_sleeps) == 2  # two backoffs, skipped rather than slept
    assert [row[1] for row in ledger(db_url)] == ["LOADED"]
    assert table_rows(db_url, "transactions") == run.notification["rows"]["inserted"]


def test_large_file_is_transformed_by_the_spark_glue_job(open_sim, db_url, spark, tmp_path):
    path = generate("account_summary", dt.date(2024, 3, 4), rows=40, seed=7, out_dir=tmp_path)
    sim = open_sim(threshold=1000, spark=spark)
    run = sim.run_file(path)
    assert run.status == "SUCCESS", run
    assert run.states == [*SUCCESS_PATH[:3], "TransformWithGlue", *SUCCESS_PATH[4:]]
    assert table_rows(db_url, "account_summary") == 40 == run.notification["rows"]["rows_in"]
    staged_key = f"account_summary/business_date=2024-03-04/{path.stem}.parquet"
    assert keys(sim, "stage") == [staged_key]  # Spark's temporary part files are gone
    local = tmp_path / "staged.parquet"
    local.write_bytes(read(sim, "stage", staged_key))
    table = pq.read_table(local)
    assert table.num_rows == 40 and set(table.column("execution_name").to_pylist()) == {run.execution_name}


def test_glue_failure_is_caught_into_the_failure_path(open_sim, db_url, spark, tmp_path):
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
    assert table_rows(db_url, "account_summary") == 0
    assert ledger(db_url) == [("account_summary_20240302.dat", "FAILED", run.execution_name)]


def test_repeated_events_and_copies_load_once(sim, db_url, tmp_path):
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
    assert [row[1] for row in ledger(db_url)] == ["LOADED", "SKIPPED", "SKIPPED"]
    assert table_rows(db_url, "transactions") == sim.notification_for(execution["name"])["rows"]["inserted"]
    assert keys(sim, "raw") == []
    assert sorted(k for k in keys(sim, "archive") if k.endswith(".dat")) == [
        "transactions/2024-03-01/transactions_20240301.1.dat",
        "transactions/2024-03-01/transactions_20240301.dat",
        "transactions/2024-03-01/transactions_20240301_01.dat",
    ]


def test_key_with_spaces_and_plus_signs(sim, db_url):
    key = "partner+bank uploads/2024 03 02/transactions_20240302.dat"
    run = sim.run_file(SAMPLES / "transactions_20240302.dat", key=key)  # the event carries it URL-encoded
    assert (run.status, run.states) == ("SUCCESS", SUCCESS_PATH)
    assert "transactions/2024-03-02/transactions_20240302.dat" in keys(sim, "archive")
    assert keys(sim, "landing") == []
    assert table_rows(db_url, "transactions") > 0


def test_every_scenario_passes_with_iam_enforced_and_every_grant_is_used(open_sim, db_url, spark, tmp_path):
    """Small files through Lambda (a day, its next-day update, a rejected file, a duplicate, repeated events,
    a load that fails for good) and a large one through Glue, under the deployed policies: nothing is denied,
    and every granted action was used by some call, unless it is a named service need or a Spark write the
    emulation cannot observe."""
    day = dt.date(2024, 4, 1)
    base = generate("transactions", day, rows=120, seed=5, out_dir=tmp_path)
    update = derive_update_file(day, day + dt.timedelta(days=1), base_rows=120, rows=10, seed=5, out_dir=tmp_path)
    large = generate("account_summary", day, rows=1500, seed=7, out_dir=tmp_path / "large")
    rejected = SAMPLES / "corrupt" / "transactions_20240301.dat"
    threshold = max(p.stat().st_size for p in (base, update, rejected)) + 1
    assert large.stat().st_size > threshold
    sim = open_sim(threshold=threshold, spark=spark)

    loaded = sim.run_file(base)
    assert (loaded.status, loaded.states) == ("SUCCESS", SUCCESS_PATH), loaded
    inserted = loaded.notification["rows"]["inserted"]
    assert inserted == table_rows(db_url, "transactions")
    updated = sim.run_file(update)  # the next day: updates and deletes of the first day's ids, and new rows
    assert (updated.status, updated.states) == ("SUCCESS", SUCCESS_PATH), updated
    rows = updated.notification["rows"]
    assert rows["updated"] > 0 and rows["deleted"] > 0 and rows["inserted"] == 10
    assert table_rows(db_url, "transactions") == inserted + 10 - rows["deleted"]
    assert sim.run_file(rejected).states == REJECT_PATH
    assert keys(sim, "error") == [
        "transactions/2024-03-01/transactions_20240301.dat",
        "transactions/2024-03-01/transactions_20240301.dat.report.json",
    ]
    duplicate = sim.run_file(base, key=f"again/{base.name}")
    assert (duplicate.status, duplicate.states) == ("SKIPPED", SKIP_PATH), duplicate
    assert sim.land([f"again/{base.name}"])["skipped"]  # a repeated landing event: gone from landing (404)
    assert sim.trigger([f"transactions/{base.name}"])["skipped"]  # a repeated raw event: gone from raw (404)
    sim.aws.inject_lambda_error(function_name("rds_write"), times=7)  # the first try and all 6 retries
    failed = sim.run_file(SAMPLES / "transactions_20240302.dat")  # MoveToError writes its FAILED ledger row
    assert (failed.status, failed.states[-3:]) == ("FAILURE", ["MoveToError", "NotifyFailure", "FileFailed"])
    assert ledger(db_url)[-1][:2] == ("transactions_20240302.dat", "FAILED")
    large_run = sim.run_file(large)
    assert (large_run.status, large_run.states[3]) == ("SUCCESS", "TransformWithGlue"), large_run
    assert table_rows(db_url, "account_summary") == 1500

    assert sim.aws.iam.denials == []
    enforced = set(sim.roles.functions.values()) | {sim.roles.glue_job, sim.roles.state_machine}
    uses = grant_uses({role: sim.roles.policies[role] for role in enforced}, sim.aws.iam.calls)
    assert {u.role for u in uses} == enforced
    print(usage_table(uses))  # the "used against granted" table of docs/deploy.md (pytest -s shows it)
    unused = [(u.role, u.sid, u.action) for u in uses if u.uses == 0 and u.reason_unused is None]
    assert unused == []
    assert all(u.uses == 0 for u in uses if u.reason_unused), "a grant named unused is used: update the lists"


SAMPLE = SAMPLES / "transactions_20240301.dat"
RAW_KEY = "transactions/transactions_20240301.dat"
REMOVALS = [
    ("ValidationRole", "WriteReportBesideRaw", "validation", "s3:PutObject", f"fintech-etl-raw/{RAW_KEY}.report.json"),
    ("TransformRole", "ReadPanKey", "transform", "secretsmanager:GetSecretValue", "fintech-etl/pan-key-"),
    (
        "RdsWriteRole",
        "ReadStage",
        "rds_write",
        "s3:GetObject",
        "fintech-etl-stage/transactions/business_date=2024-03-01/transactions_20240301.parquet",
    ),
    ("MoveFileRole", "TellMissingSidecarsInRaw", "move_file", "s3:ListBucket", "arn:aws:s3:::fintech-etl-raw (by"),
    (
        "StartStepFunctionRole",
        "StartPipeline",
        "start_step_function",
        "states:StartExecution",
        ":stateMachine:fintech-etl",
    ),
    ("NotificationRole", "PublishNotifications", "notification", "sns:Publish", ":fintech-etl-notifications"),
    ("StepFunctionsRole", "InvokePipelineFunctions", None, "lambda:InvokeFunction", ":function:fintech-etl-validation"),
]


@pytest.mark.parametrize(("role", "sid", "module", "action", "resource"), REMOVALS, ids=[r[1] for r in REMOVALS])
def test_a_missing_statement_fails_the_run_naming_function_action_and_resource(
    open_sim, db_url, role, sid, module, action, resource
):
    """The same good file, one statement short: the run fails, and says who was refused what on which resource
    (even where the code catches the error, as the PAN key lookup does)."""
    sim = open_sim(without=((role, sid),))
    run = sim.run_file(SAMPLE)
    assert run.status == "FAILURE", run
    who = function_name(module) if module else "fintech-etl (state machine)"
    expected = f"{who} (role {role}) is not allowed {action} on "
    named = [d for d in run.denied if d.startswith(expected)]
    assert named and all(resource in d for d in named), run.denied
    assert named[0] in run.detail
    assert all(d.startswith(f"{who} (role {role})") for d in run.denied), run.denied


def test_archive_bucket_unreachable_after_the_load_is_success_and_a_new_event_archives(sim, db_url):
    """The real handlers: the archive bucket is gone when MoveToArchive runs. The load stays committed and
    SUCCESS (one LOADED ledger row, nothing in error), the file stays in raw, and the raw object's event
    sent again runs it as a SKIPPED duplicate into archive once the bucket is back."""
    name = "transactions_20240301.dat"
    s3 = sim.aws.client("s3")
    s3.delete_bucket(Bucket=sim.buckets["archive"])
    run = sim.run_file(SAMPLES / name)
    assert run.states[-5:] == [
        "LoadToDatabase",
        "LoadedOrSkipped?",
        "MoveToArchive",
        "NotifyNotArchived",
        "ArchiveFailed",
    ]
    assert run.execution_status == "FAILED" and run.status == "SUCCESS"
    message = run.notification
    assert message["msg"] == "File uploaded to RDS, not moved to archive (left in raw): transactions"
    assert message["rows"]["inserted"] == table_rows(db_url, "transactions") > 0
    assert "NoSuchBucket" in message["warnings"][0]
    assert message["location"] == f"s3://{sim.buckets['raw']}/transactions/{name}"
    assert sim.aws.invocations.count(function_name("move_file")) == 4  # retried
    assert ledger(db_url) == [(name, "LOADED", run.execution_name)]
    assert keys(sim, "error") == []
    assert f"transactions/{name}" in keys(sim, "raw")

    s3.create_bucket(Bucket=sim.buckets["archive"])
    (again,) = sim.trigger([f"transactions/{name}"])["started"]
    described = sim.wait(again["execution_arn"])
    assert described["status"] == "SUCCEEDED"
    assert sim.notification_for(again["name"])["status"] == "SKIPPED"
    assert [row[1] for row in ledger(db_url)] == ["LOADED", "SKIPPED"]
    assert keys(sim, "raw") == [] and f"transactions/2024-03-01/{name}" in keys(sim, "archive")


def test_a_load_that_fails_after_the_transform_takes_its_stage_file_back(sim, db_url):
    """On AWS the Transform state publishes the stage before the load; when the load then fails for good,
    MoveToError removes that stage file: the stage never shows rows the database does not have."""
    sim.aws.inject_lambda_error(function_name("rds_write"), times=7)  # more than its 6 attempts
    run = sim.run_file(SAMPLES / "transactions_20240301.dat")
    assert run.states[-4:] == ["LoadToDatabase", "MoveToError", "NotifyFailure", "FileFailed"]
    assert "TransformInLambda" in run.states
    assert table_rows(db_url, "transactions") == 0
    assert keys(sim, "stage") == []
    assert [row[1] for row in ledger(db_url)] == ["FAILED"]
