"""The real state_machine.yml on emulated AWS, with throwaway handlers that follow docs/state_machine.md.

The handlers here only honour the event/result contracts; the real ones live in etl/aws/handlers/.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from etl.aws.asl import LAMBDA_PLACEHOLDERS, render_definition, sample_substitutions
from etl.aws.moto_compat import EmulatedAWS, emulated_aws

HANDLERS = """
import json, os


class TransientDatabaseError(Exception):
    pass


class LoadFailed(Exception):
    pass


def _record(name, event):
    with open(os.environ["EVENTS_FILE"], "a") as out:
        out.write(json.dumps({"handler": name, "event": event}) + "\\n")


def validation(event, context):
    _record("validation", event)
    key = event["file"]["key"]
    valid = "invalid" not in key
    return {"valid": valid, "duplicate": "dup" in key, "row_count": 3,
            "rule_counts": {} if valid else {"T001": 1},
            "report": {"valid": valid, "errors": {} if valid else {"T001": {"count": 1, "lines": [5]}}}}


def transform(event, context):
    _record("transform", event)
    return {"stage_uri": "s3://stage/x.parquet", "rows_staged": 3, "extra": "dropped by ResultSelector"}


def rds_write(event, context):
    _record("rds_write", event)
    key = event["file"]["key"]
    if "flaky" in key:
        counter = os.environ["EVENTS_FILE"] + ".flaky"
        seen = int(open(counter).read()) if os.path.exists(counter) else 0
        open(counter, "w").write(str(seen + 1))
        if seen < 2:
            raise TransientDatabaseError("could not connect")
    if "broken" in key:
        raise LoadFailed("constraint violated")
    if "raced" in key:  # another execution loaded the same content first
        return {"status": "SKIPPED", "rows_in": 0, "inserted": 0, "updated": 0, "deleted": 0, "unchanged": 0,
                "rejected": 0, "warnings": []}
    return {"status": "LOADED", "rows_in": 3, "inserted": 3, "updated": 0, "deleted": 0, "unchanged": 0, "rejected": 0,
            "warnings": []}


class ArchiveUnavailable(Exception):
    pass


def move_file(event, context):
    _record("move_file", event)
    if "archive-down" in event["file"]["key"] and event["destination"] == "archive":
        raise ArchiveUnavailable("archive bucket unreachable")
    return {"bucket": event["destination"], "key": event["file"]["key"]}


def notification(event, context):
    _record("notification", event)
    return {"message_id": "m-1"}
"""

THRESHOLD = 1000


@pytest.fixture
def pipeline(tmp_path: Path):
    folder = tmp_path / "lambda"
    folder.mkdir()
    (folder / "handlers.py").write_text(textwrap.dedent(HANDLERS))
    events = tmp_path / "events.jsonl"
    glue_calls: list[dict[str, str]] = []

    def glue_runner(job: str, args: dict[str, str]) -> None:
        glue_calls.append(args)
        if "glue-fails" in args["--source_uri"]:
            raise RuntimeError("executor lost")

    with emulated_aws(folder, glue_runner=glue_runner) as aws:
        subs = sample_substitutions()
        for placeholder, module in LAMBDA_PLACEHOLDERS.items():
            name = subs[placeholder].rsplit(":", 1)[1]
            aws.create_function(name, f"handlers.{module}", environment={"EVENTS_FILE": str(events)})
        aws.client("glue").create_job(
            Name=subs["GlueJobName"],
            Role=aws.create_role("glue", "glue.amazonaws.com"),
            Command={"Name": "glueetl", "ScriptLocation": "s3://artifacts/glue/transform_job.py"},
        )
        machine = aws.create_state_machine("etl", render_definition(subs))
        yield Pipeline(aws, machine, events, glue_calls)


class Pipeline:
    def __init__(self, aws: EmulatedAWS, machine: str, events: Path, glue_calls: list[dict[str, str]]):
        self.aws, self.machine, self.events_file, self.glue_calls = aws, machine, events, glue_calls

    def run(self, key: str, size: int = 10) -> tuple[dict[str, Any], list[str]]:
        payload = {
            "file": {
                "bucket": "raw",
                "key": key,
                "size": size,
                "sha256": "ab" * 32,
                "feed": "transactions",
                "business_date": "2024-03-01",
            },
            "options": {"large_file_threshold_bytes": THRESHOLD},
        }
        described = self.aws.execute(self.machine, payload, name="transactions-20240301-abab")
        return described, self.aws.executed_states(described["executionArn"])

    def events(self, handler: str) -> list[dict[str, Any]]:
        lines = self.events_file.read_text().splitlines() if self.events_file.exists() else []
        return [r["event"] for r in map(json.loads, lines) if r["handler"] == handler]


def test_valid_small_file_goes_through_lambda_transform_to_archive(pipeline: Pipeline) -> None:
    described, states = pipeline.run("transactions/transactions_20240301.dat")
    assert described["status"] == "SUCCEEDED"
    assert states == [
        "ValidateFile", "IsValid?", "SmallOrLarge?", "TransformInLambda", "LoadToDatabase", "LoadedOrSkipped?",
        "MoveToArchive", "NotifySuccess", "Succeeded",
    ]  # fmt: skip
    out = described["output"]
    assert out["transform"] == {"engine": "pyarrow", "stage_uri": "s3://stage/x.parquet", "rows_staged": 3}
    assert out["load"]["inserted"] == 3
    assert out["moved"] == {"bucket": "archive", "key": "transactions/transactions_20240301.dat"}
    (load_event,) = pipeline.events("rds_write")
    assert set(load_event) == {"file", "validation", "transform", "execution_name"}
    assert load_event["execution_name"] == "transactions-20240301-abab"
    (note,) = pipeline.events("notification")
    assert note["status"] == "SUCCESS"
    assert note["state"]["load"]["rows_in"] == 3


def test_large_file_goes_through_glue(pipeline: Pipeline) -> None:
    described, states = pipeline.run("transactions/transactions_20240301.dat", size=THRESHOLD + 1)
    assert described["status"] == "SUCCEEDED"
    assert "TransformWithGlue" in states and "TransformInLambda" not in states
    assert pipeline.glue_calls == [
        {
            "--source_uri": "s3://raw/transactions/transactions_20240301.dat",
            "--feed": "transactions",
            "--business_date": "2024-03-01",
            "--sha256": "ab" * 32,
            "--execution_name": "transactions-20240301-abab",
        }
    ]
    assert described["output"]["transform"]["engine"] == "spark"
    assert described["output"]["transform"]["job_run_state"] == "SUCCEEDED"


def test_glue_failure_is_caught_into_the_error_path(pipeline: Pipeline) -> None:
    described, states = pipeline.run("transactions/glue-fails_20240301.dat", size=THRESHOLD + 1)
    assert described["status"] == "FAILED"
    assert states[-3:] == ["MoveToError", "NotifyFailure", "FileFailed"]
    (note,) = pipeline.events("notification")
    assert note["state"]["error"]["Error"] == "States.TaskFailed"
    assert "executor lost" in note["state"]["error"]["Cause"]


def test_invalid_file_moves_to_error_and_notifies_failure_with_report(pipeline: Pipeline) -> None:
    described, states = pipeline.run("transactions/invalid_20240301.dat")
    assert described["status"] == "FAILED"
    assert described["error"] == "FileFailed"
    assert states == ["ValidateFile", "IsValid?", "MoveToError", "NotifyFailure", "FileFailed"]
    (move,) = pipeline.events("move_file")
    assert move["destination"] == "error" and move["status"] == "FAILURE"
    assert move["state"]["validation"]["report"]["errors"]["T001"]["count"] == 1
    (note,) = pipeline.events("notification")
    assert note["status"] == "FAILURE"
    assert note["state"]["validation"]["rule_counts"] == {"T001": 1}


def test_duplicate_file_is_archived_as_skipped(pipeline: Pipeline) -> None:
    described, states = pipeline.run("transactions/dup_20240301.dat")
    assert described["status"] == "SUCCEEDED"
    assert states == ["ValidateFile", "IsValid?", "MoveToArchiveSkipped", "NotifySkipped", "Succeeded"]
    assert pipeline.events("rds_write") == []
    (move,) = pipeline.events("move_file")
    assert (move["destination"], move["status"]) == ("archive", "SKIPPED")


def test_transient_database_error_is_retried_with_backoff(pipeline: Pipeline) -> None:
    described, _ = pipeline.run("transactions/flaky_20240301.dat")
    assert described["status"] == "SUCCEEDED"
    assert len(pipeline.events("rds_write")) == 3
    # JitterStrategy FULL: each wait is random in [0, IntervalSeconds * BackoffRate ** attempt]
    first, second = pipeline.aws.retry_sleeps
    assert 0 <= first <= 10 and 0 <= second <= 20


def test_load_failure_carries_error_and_cause_into_the_notification(pipeline: Pipeline) -> None:
    described, states = pipeline.run("transactions/broken_20240301.dat")
    assert described["status"] == "FAILED"
    assert states[-4:] == ["LoadToDatabase", "MoveToError", "NotifyFailure", "FileFailed"]
    assert len(pipeline.events("rds_write")) == 1  # LoadFailed is not retried
    (note,) = pipeline.events("notification")
    assert note["state"]["error"]["Error"] == "LoadFailed"
    assert json.loads(note["state"]["error"]["Cause"])["errorMessage"] == "constraint violated"


def test_lambda_service_errors_are_retried_on_every_lambda_task(pipeline: Pipeline) -> None:
    subs = sample_substitutions()
    for placeholder in LAMBDA_PLACEHOLDERS:
        pipeline.aws.inject_lambda_error(subs[placeholder].rsplit(":", 1)[1], "TooManyRequestsException")
    described, _ = pipeline.run("transactions/transactions_20240301.dat")
    assert described["status"] == "SUCCEEDED"
    assert len(pipeline.aws.retry_sleeps) == 5
    assert all(0 <= sleep <= 2 for sleep in pipeline.aws.retry_sleeps)


def test_a_load_that_lost_the_race_is_archived_as_skipped(pipeline: Pipeline) -> None:
    described, states = pipeline.run("transactions/raced/transactions_20240301.dat")
    assert described["status"] == "SUCCEEDED"
    assert states[-5:] == ["LoadToDatabase", "LoadedOrSkipped?", "MoveToArchiveSkipped", "NotifySkipped", "Succeeded"]


def test_archive_failure_after_the_load_is_retried_then_notified_as_success_not_failure(pipeline: Pipeline) -> None:
    """The rows are committed: a move that keeps failing must not go down the FAILURE path (no MoveToError, no
    FAILED ledger row); it is retried with backoff, then NotifyNotArchived says SUCCESS, file left in raw."""
    described, states = pipeline.run("transactions/archive-down_20240301.dat")
    assert states[-5:] == ["LoadToDatabase", "LoadedOrSkipped?", "MoveToArchive", "NotifyNotArchived", "ArchiveFailed"]
    assert "MoveToError" not in states and "NotifyFailure" not in states
    assert (described["status"], described["error"]) == ("FAILED", "ArchiveFailed")
    moves = pipeline.events("move_file")
    assert len(moves) == 4 and {m["destination"] for m in moves} == {"archive"}  # 1 try + 3 retries
    archive_sleeps = pipeline.aws.retry_sleeps[-3:]
    assert len(pipeline.aws.retry_sleeps) == 3
    assert all(0 <= sleep <= 5 * 2**n for n, sleep in enumerate(archive_sleeps))
    (note,) = pipeline.events("notification")
    assert note["status"] == "SUCCESS"
    assert note["state"]["load"]["inserted"] == 3
    assert note["state"]["move_error"]["Error"] == "ArchiveUnavailable"
