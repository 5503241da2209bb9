"""``etl replay`` on emulated AWS: a failed execution runs again under a new deterministic name and the file
ends loaded exactly once; an event in a trigger's failure queue is invoked again and leaves the queue."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import psycopg
import pytest

from etl.aws.replay import replay_execution, replay_queue
from etl.aws.sim import Simulation, function_name, s3_event
from etl.config import Settings
from etl.errors import ConfigError
from etl.generate import generate
from etl.pipeline.context import Context
from etl.pipeline.replay import RETIRED_SUFFIX

DAY = "2024-03-05"


def zones(sim: Simulation) -> Settings:
    return Settings(**{f"{name}_uri": f"s3://{bucket}" for name, bucket in sim.buckets.items()})


def loaded(db_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT file_name, status FROM etl.file_ledger ORDER BY ledger_id").fetchall()


def failed_run(sim: Simulation, tmp_path: Path):
    """A good file whose load keeps failing at the service level: retries run out, it ends in error."""
    path = generate("transactions", dt.date.fromisoformat(DAY), rows=50, seed=3, out_dir=tmp_path)
    sim.aws.inject_lambda_error(function_name("rds_write"), times=20)
    run = sim.run_file(path)
    assert run.status == "FAILURE", run
    sim.aws.clear_lambda_errors()  # the cause is fixed
    execution = sim.aws.client("stepfunctions").list_executions(stateMachineArn=sim.machine_arn)["executions"][0]
    return path, execution["executionArn"]


def test_a_failed_execution_whose_file_is_in_error_goes_back_through_the_triggers(
    sim: Simulation, db_url: str, tmp_path: Path
) -> None:
    path, arn = failed_run(sim, tmp_path)
    sfn = sim.aws.client("stepfunctions")
    with Context(zones(sim)) as ctx:
        replayed = replay_execution(ctx, sfn, arn)
        assert replayed.action == "landed" and replayed.detail.endswith(f"/{path.name}")
        retired = [k for k in ctx.zone("error").list() if k.endswith(RETIRED_SUFFIX)]
        assert retired and not [k for k in ctx.zone("error").list() if not k.endswith(RETIRED_SUFFIX)]
    landed = sim.land([path.name])
    started = sim.trigger([landed["moved"][0]["key"]])["started"]
    assert len(started) == 1 and started[0]["name"] != arn.rsplit(":", 1)[1]
    assert sim.wait(started[0]["execution_arn"])["status"] == "SUCCEEDED"
    assert sim.notification_for(started[0]["name"])["status"] == "SUCCESS"
    assert loaded(db_url) == [(path.name, "FAILED"), (path.name, "LOADED")]
    with Context(zones(sim)) as ctx, pytest.raises(ConfigError, match="SUCCEEDED"):
        replay_execution(ctx, sfn, started[0]["execution_arn"])


def test_a_failed_execution_whose_file_stayed_in_raw_is_started_again_once(
    sim: Simulation, db_url: str, tmp_path: Path
) -> None:
    path, arn = failed_run(sim, tmp_path)
    sfn = sim.aws.client("stepfunctions")
    with Context(zones(sim)) as ctx:  # as if MoveToError had failed: the file is still in raw
        error, raw = ctx.zone("error"), ctx.zone("raw")
        [key] = [k for k in error.list() if k.endswith(".dat")]
        raw.put_bytes(error.open_read(key).read(), f"transactions/{path.name}")
        error.delete(key)
        first = replay_execution(ctx, sfn, arn)
        again = replay_execution(ctx, sfn, arn)  # the operator runs it twice: still one new execution
    # the same name, content and input: AWS (and moto) answer a repeat with the same execution, no second one
    assert first.action in ("started", "already_started") and again.detail == first.detail
    names = [e["name"] for e in sfn.list_executions(stateMachineArn=sim.machine_arn)["executions"]]
    assert sorted(names) == sorted([arn.rsplit(":", 1)[1], first.detail])
    new_arn = arn.rsplit(":", 1)[0] + ":" + first.detail
    assert sim.wait(new_arn)["status"] == "SUCCEEDED"
    assert loaded(db_url)[-1] == (path.name, "LOADED")


def test_failure_queue_events_are_invoked_again_and_deleted(sim: Simulation, db_url: str, tmp_path: Path) -> None:
    path = generate("transactions", dt.date.fromisoformat(DAY), rows=20, seed=4, out_dir=tmp_path)
    key = sim.upload(path)
    sqs = sim.aws.client("sqs")
    queue = sqs.create_queue(QueueName="lz-to-raw-failures")["QueueUrl"]
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name('lz_to_raw')}:$LATEST"
    record = {
        "version": "1.0",
        "requestContext": {"functionArn": arn, "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": s3_event(sim.buckets["landing"], [key]),
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorType": "TimeoutError"},
    }
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(record))
    sqs.send_message(QueueUrl=queue, MessageBody="not a record")
    done = replay_queue(sqs, sim.aws.client("lambda"), queue)
    assert sorted(d.action for d in done) == ["failed_again", "invoked"]
    with Context(zones(sim)) as ctx:
        assert ctx.zone("raw").exists(f"transactions/{path.name}") and not ctx.zone("landing").exists(key)
    counts = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    # the record that ran is gone; the other waits out its visibility timeout, still in the queue
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesNotVisible"]) == ("0", "1")
