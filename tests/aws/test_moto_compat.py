"""One test per moto 5.2.5 adaptation in etl.aws.moto_compat: it works, and moto still needs it.

Each "still needed" test runs moto without that one patch and asserts the behaviour the patch works around;
when a moto upgrade fixes it, that test fails and the patch can go.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from moto.awslambda.models import LambdaFunction
from moto.stepfunctions.parser.asl.component.common.retry.retrier_decl import RetrierDecl

from etl.aws.moto_compat import PATCHES, emulated_aws


def lambda_task(function_arn: str, **extra: object) -> dict:
    """A ``lambda:invoke`` Task keeping only the handler's payload under ``$.result``."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
        "ResultSelector": {"payload.$": "$.Payload"},
        "ResultPath": "$.result",
        "TimeoutSeconds": 30,
        **extra,
    }


def run(aws, definition: dict, payload: dict, name: str | None = "run-1") -> dict:
    return aws.execute(aws.create_state_machine("tiny", definition), payload, name=name, timeout_s=60)


CATCH_ALL = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}]
CAUGHT = {"Type": "Pass", "End": True}


def glue_machine(job_name: str = "tiny-job") -> dict:
    return {
        "StartAt": "Glue",
        "States": {
            "Glue": {
                "Type": "Task",
                "Resource": "arn:aws:states:::glue:startJobRun.sync",
                "Parameters": {"JobName": job_name, "Arguments": {"--source_uri.$": "$.uri"}},
                "ResultSelector": {"state.$": "$.JobRunState", "id.$": "$.Id"},
                "ResultPath": "$.glue",
                "TimeoutSeconds": 60,
                "Catch": CATCH_ALL,
                "End": True,
            },
            "Caught": CAUGHT,
        },
    }


def create_glue_job(aws, name: str = "tiny-job") -> None:
    aws.client("glue").create_job(
        Name=name,
        Role=aws.create_role("tiny-glue", "glue.amazonaws.com"),
        Command={"Name": "glueetl", "ScriptLocation": "s3://artifacts/job.py"},
        DefaultArguments={"--stage_uri": "s3://stage"},
    )


# -- (a) in-process Lambda ----------------------------------------------------------------------------------
def test_lambda_task_runs_handler_in_process(lambda_dir: Path) -> None:
    with emulated_aws(lambda_dir) as aws:
        arn = aws.create_function("tiny-double", "tiny.double", environment={"FLAVOUR": "plain"})
        definition = {"StartAt": "Double", "States": {"Double": {**lambda_task(arn), "End": True}}}
        described = run(aws, definition, {"x": 21})
    assert described["status"] == "SUCCEEDED"
    assert described["output"]["result"]["payload"] == {
        "doubled": 42,
        "flavour": "plain",
        "function": "tiny-double",
    }
    assert aws.invocations == ["tiny-double"]


def test_handler_exception_is_a_function_error_caught_by_name(lambda_dir: Path) -> None:
    with emulated_aws(lambda_dir) as aws:
        arn = aws.create_function("tiny-reject", "tiny.reject")
        task = lambda_task(arn, Catch=[{"ErrorEquals": ["BadFile"], "ResultPath": "$.error", "Next": "Caught"}])
        definition = {"StartAt": "Reject", "States": {"Reject": {**task, "End": True}, "Caught": CAUGHT}}
        described = run(aws, definition, {"x": 7})
    assert described["status"] == "SUCCEEDED"
    error = described["output"]["error"]
    assert error["Error"] == "BadFile"
    cause = json.loads(error["Cause"])
    assert cause["errorType"] == "BadFile"
    assert cause["errorMessage"] == "bad file 7"


def test_moto_still_invokes_lambda_through_invoke_lambda() -> None:
    """The patch replaces this method; a rename or signature change in moto must fail here."""
    assert list(inspect.signature(LambdaFunction._invoke_lambda).parameters) == ["self", "event"]
    assert "docker" in inspect.getsource(LambdaFunction._invoke_lambda)


def test_injected_service_error_is_retried_with_backoff(lambda_dir: Path) -> None:
    retry = {
        "ErrorEquals": ["Lambda.ServiceException"],
        "IntervalSeconds": 3,
        "BackoffRate": 2,
        "MaxAttempts": 3,
    }
    with emulated_aws(lambda_dir) as aws:
        arn = aws.create_function("tiny-double", "tiny.double")
        aws.inject_lambda_error("tiny-double", "ServiceException", times=2)
        task = lambda_task(arn, Retry=[retry], Catch=CATCH_ALL)
        definition = {"StartAt": "Double", "States": {"Double": {**task, "End": True}, "Caught": CAUGHT}}
        described = run(aws, definition, {"x": 1})
    assert described["status"] == "SUCCEEDED"
    assert "error" not in described["output"]
    assert described["output"]["result"]["payload"]["doubled"] == 2
    assert aws.invocations == ["tiny-double"] * 3
    assert aws.retry_sleeps == [3, 6]


def test_service_error_beyond_max_attempts_is_caught_with_its_lambda_name(lambda_dir: Path) -> None:
    retry = {"ErrorEquals": ["Lambda.ServiceException"], "IntervalSeconds": 1, "MaxAttempts": 1}
    with emulated_aws(lambda_dir) as aws:
        arn = aws.create_function("tiny-double", "tiny.double")
        aws.inject_lambda_error("tiny-double", "ServiceException", times=5)
        task = lambda_task(arn, Retry=[retry], Catch=CATCH_ALL)
        definition = {"StartAt": "Double", "States": {"Double": {**task, "End": True}, "Caught": CAUGHT}}
        described = run(aws, definition, {"x": 1})
    assert described["output"]["error"]["Error"] == "Lambda.ServiceException"
    assert len(aws.invocations) == 2


# -- (b) + (e) Glue .sync runs the registered runner --------------------------------------------------------
def test_glue_sync_task_runs_the_registered_runner(lambda_dir: Path) -> None:
    calls: list[tuple[str, dict[str, str]]] = []
    with emulated_aws(lambda_dir, glue_runner=lambda job, args: calls.append((job, args))) as aws:
        create_glue_job(aws)
        described = run(aws, glue_machine(), {"uri": "s3://raw/f.dat"})
    assert described["status"] == "SUCCEEDED"
    assert described["output"]["glue"]["state"] == "SUCCEEDED"
    assert calls == [("tiny-job", {"--stage_uri": "s3://stage", "--source_uri": "s3://raw/f.dat"})]


def test_glue_runner_failure_fails_the_task_with_its_message(lambda_dir: Path) -> None:
    def broken(job: str, args: dict[str, str]) -> None:
        raise RuntimeError("spark blew up")

    with emulated_aws(lambda_dir, glue_runner=broken) as aws:
        create_glue_job(aws)
        described = run(aws, glue_machine(), {"uri": "s3://raw/f.dat"})
    error = described["output"]["error"]
    assert error["Error"] == "States.TaskFailed"
    cause = json.loads(error["Cause"])
    assert cause["JobRunState"] == "FAILED"
    assert cause["ErrorMessage"] == "RuntimeError: spark blew up"


def test_glue_without_runner_fails_rather_than_pretending(lambda_dir: Path) -> None:
    with emulated_aws(lambda_dir) as aws:
        create_glue_job(aws)
        described = run(aws, glue_machine(), {"uri": "s3://raw/f.dat"})
    assert "no Glue runner registered" in json.loads(described["output"]["error"]["Cause"])["ErrorMessage"]


def test_moto_still_breaks_glue_sync_without_widened_patterns(lambda_dir: Path) -> None:
    with emulated_aws(lambda_dir, glue_runner=lambda job, args: None, skip=("glue_sync",)) as aws:
        create_glue_job(aws)
        described = run(aws, glue_machine(), {"uri": "s3://raw/f.dat"})
    error = described["output"]["error"]  # moto's States.ALL also catches States.Runtime
    assert error["Error"] == "States.Runtime"
    assert "interrupt_all" in error["Cause"]


def test_moto_still_runs_glue_jobs_without_executing_anything(lambda_dir: Path) -> None:
    with emulated_aws(lambda_dir, skip=("glue_job_runs",)) as aws:
        create_glue_job(aws)
        glue = aws.client("glue")
        run_id = glue.start_job_run(JobName="tiny-job")["JobRunId"]
        state = glue.get_job_run(JobName="tiny-job", RunId=run_id)["JobRun"]["JobRunState"]
    assert state == "SUCCEEDED"  # moto "succeeds" a run that executed nothing


# -- (c) execution names -------------------------------------------------------------------------------------
def test_unnamed_execution_gets_a_uuid_name(lambda_dir: Path) -> None:
    definition = {
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Parameters": {"n.$": "$$.Execution.Name"}, "End": True}},
    }
    with emulated_aws(lambda_dir) as aws:
        described = run(aws, definition, {}, name=None)
    assert re.fullmatch(r"[0-9a-f-]{36}", described["output"]["n"])
    assert described["executionArn"].endswith(":" + described["output"]["n"])


def test_moto_still_names_unnamed_executions_none(lambda_dir: Path) -> None:
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    with emulated_aws(lambda_dir, skip=("execution_names",)) as aws:
        described = run(aws, definition, {}, name=None)
    assert described["executionArn"].endswith(":None")


# -- (d) $$.Execution.StartTime ------------------------------------------------------------------------------
START_TIME = {
    "StartAt": "P",
    "States": {"P": {"Type": "Pass", "Parameters": {"t.$": "$$.Execution.StartTime"}, "End": True}},
}


def test_execution_start_time_is_an_iso_string(lambda_dir: Path) -> None:
    with emulated_aws(lambda_dir) as aws:
        described = run(aws, START_TIME, {})
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", described["output"]["t"])


def test_moto_still_breaks_on_start_time_in_output(lambda_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Over HTTP the server's TypeError is a 500 to the client; the server's log names the datetime."""
    with (
        emulated_aws(lambda_dir, skip=("start_time_iso",)) as aws,
        pytest.raises(ClientError, match=r"\(500\).*DescribeExecution"),
    ):
        run(aws, START_TIME, {})
    assert "Object of type datetime is not JSON serializable" in caplog.text


# -- (f) retries do not sleep --------------------------------------------------------------------------------
def test_moto_retrier_still_sleeps_through_module_time() -> None:
    """The patch swaps ``retrier_decl.time``; if moto sleeps another way, this fails."""
    assert "time.sleep(interval_seconds)" in inspect.getsource(RetrierDecl._eval_body)


def test_unknown_patch_name_is_refused(lambda_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown patch"), emulated_aws(lambda_dir, skip=("nope",)):
        pass
    assert len(PATCHES) == 8
