"""A trigger that fails for good is never lost: on emulated AWS (template's retries, on-failure queue and alarms),
the landing event of a failing ``lz_to_raw`` ends in the failed-triggers queue, the queue-depth and Errors alarms
go to ALARM, and ``etl replay``'s queue replay loads the file exactly once.

What is emulated: moto_compat (i) retries the asynchronous invocation and sends the on-failure record with the
function's role. moto stores alarms but never evaluates them, and publishes no AWS/SQS or AWS/Lambda metrics:
:func:`evaluate` puts the metric CloudWatch would publish (the queue's visible messages, the function's errors)
and applies the alarm's own statistic, comparison and threshold, as CloudWatch does for one period.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
from pathlib import Path

import psycopg

from etl.aws.replay import replay_queue
from etl.aws.sim import PREFIX, Simulation, function_name, s3_event
from etl.generate import generate

COMPARE = {
    "GreaterThanOrEqualToThreshold": operator.ge,
    "GreaterThanThreshold": operator.gt,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}


def evaluate(cloudwatch, alarm_name: str, value: float) -> str:
    """Publish ``value`` as the alarm's metric (what AWS/SQS or AWS/Lambda would), then evaluate the alarm on
    the last period with its statistic, comparison and threshold, and set its state; returns the new state."""
    [alarm] = cloudwatch.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"]
    metric = {"Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"], "Dimensions": alarm["Dimensions"]}
    cloudwatch.put_metric_data(
        Namespace=metric["Namespace"],
        MetricData=[{"MetricName": metric["MetricName"], "Dimensions": metric["Dimensions"], "Value": value}],
    )
    end = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    points = cloudwatch.get_metric_statistics(
        **metric,
        StartTime=end - dt.timedelta(seconds=alarm["Period"] * alarm["EvaluationPeriods"]),
        EndTime=end,
        Period=alarm["Period"],
        Statistics=[alarm["Statistic"]],
    )["Datapoints"]
    breaching = any(COMPARE[alarm["ComparisonOperator"]](p[alarm["Statistic"]], alarm["Threshold"]) for p in points)
    state = "ALARM" if breaching else "OK"
    reason = f"{alarm['MetricName']} {alarm['Statistic']} {value} vs threshold {alarm['Threshold']}"
    cloudwatch.set_alarm_state(AlarmName=alarm_name, StateValue=state, StateReason=reason)
    return cloudwatch.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"][0]["StateValue"]


def visible(sqs, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_a_failing_trigger_lands_in_the_queue_raises_the_alarms_and_replays_once(
    sim: Simulation, db_url: str, tmp_path: Path
) -> None:
    sqs, cloudwatch, s3 = (sim.aws.client(s) for s in ("sqs", "cloudwatch", "s3"))
    depth_alarm, errors_alarm = f"{PREFIX}-FailedTriggersQueueDepth", f"{PREFIX}-LzToRawErrors"
    [alarm] = cloudwatch.describe_alarms(AlarmNames=[depth_alarm])["MetricAlarms"]
    assert alarm["AlarmActions"] == [sim.topic_arn]  # published to the notification topic
    assert evaluate(cloudwatch, depth_alarm, visible(sqs, sim.failed_triggers_url)) == "OK"

    path = generate("transactions", dt.date(2024, 3, 5), rows=30, seed=5, out_dir=tmp_path)
    key = sim.upload(path)
    s3.delete_bucket(Bucket=sim.buckets["raw"])  # the raw zone is unreachable: every attempt fails
    event = s3_event(sim.buckets["landing"], [key])
    sim.invoke_async("lz_to_raw", event)  # as EventBridge delivers the landing bucket's event

    assert sim.aws.invocations.count(function_name("lz_to_raw")) == 3  # two retries, as the template says
    [message] = sqs.receive_message(QueueUrl=sim.failed_triggers_url, VisibilityTimeout=0)["Messages"]
    record = json.loads(message["Body"])
    assert record["requestContext"]["functionArn"].endswith(f":function:{function_name('lz_to_raw')}:$LATEST")
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestPayload"] == event
    assert sim.aws.lost_events == []
    assert s3.head_object(Bucket=sim.buckets["landing"], Key=key)  # the file waits in landing
    assert evaluate(cloudwatch, depth_alarm, visible(sqs, sim.failed_triggers_url)) == "ALARM"
    assert evaluate(cloudwatch, errors_alarm, 3) == "ALARM"

    s3.create_bucket(Bucket=sim.buckets["raw"])  # the cause is fixed
    done = replay_queue(sqs, sim.aws.client("lambda"), sim.failed_triggers_url)
    assert [d.action for d in done] == ["invoked"]
    assert visible(sqs, sim.failed_triggers_url) == 0
    assert replay_queue(sqs, sim.aws.client("lambda"), sim.failed_triggers_url) == []  # nothing left to replay

    started = sim.trigger([f"transactions/{path.name}"])["started"]
    assert len(started) == 1
    assert sim.wait(started[0]["execution_arn"])["status"] == "SUCCEEDED"
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT file_name, status FROM etl.file_ledger").fetchall()
    assert rows == [(path.name, "LOADED")]


def test_lz_to_raw_writes_the_sha256_into_the_raw_object_and_start_step_function_reads_it(
    sim: Simulation, db_url: str, tmp_path: Path
) -> None:
    """The copy into raw carries the landing file's SHA-256 (verified after the copy) as object metadata; the
    raw trigger takes it from HEAD instead of streaming the object again (no GetObject by the function)."""
    import hashlib

    path = generate("transactions", dt.date(2024, 3, 6), rows=40, seed=6, out_dir=tmp_path)
    landed = sim.land([sim.upload(path)])["moved"][0]
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    head = sim.aws.client("s3").head_object(Bucket=sim.buckets["raw"], Key=landed["key"])
    assert head["Metadata"] == {"sha256": expected} and landed["sha256"] == expected
    before = len(sim.aws.iam.calls)
    started = sim.trigger([landed["key"]])["started"]
    trigger = function_name("start_step_function")
    operations = [c.operation for c in sim.aws.iam.calls[before:] if c.function == trigger]
    assert "GetObject" not in operations and "HeadObject" in operations, operations
    assert sim.wait(started[0]["execution_arn"])["status"] == "SUCCEEDED"
