"""One test per moto 5.2.5 adaptation in etl.aws.moto_compat: it works, and moto still needs it.

Each "still needed" test runs moto without that one patch and asserts the behaviour the patch works around;
when a moto upgrade fixes it, that test fails and the patch can go.
"""

from __future__ import annotations

import inspect
import io
import json
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError
from moto.awslambda.models import LambdaFunction
from moto.stepfunctions.parser.asl.component.common.retry.retrier_decl import RetrierDecl

from etl.aws.iam_emulation import Policy
from etl.aws.moto_compat import PATCHES, emulated_aws
from etl.io.zones import S3Zone


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
    with pytest.raises(ValueError, match="unknown patch") as refused, emulated_aws(lambda_dir, skip=("nope",)):
        pass
    assert all(name in str(refused.value) for name in PATCHES)  # the message lists what may be skipped


# -- server mode: HTTP bodies, each function under its own role ---------------------------------------------
def test_s3_bodies_are_http_streams_that_cannot_seek(lambda_dir: Path, tmp_path: Path) -> None:
    """Over HTTP a GetObject body cannot seek, so parquet cannot read it directly; a zone's local copy can."""
    local = tmp_path / "t.parquet"
    pq.write_table(pa.table({"n": list(range(100))}), local)
    with emulated_aws(lambda_dir) as aws:
        s3 = aws.client("s3")
        s3.create_bucket(Bucket="stage")
        s3.upload_file(str(local), "stage", "t.parquet")
        body = s3.get_object(Bucket="stage", Key="t.parquet")["Body"]
        with pytest.raises(io.UnsupportedOperation, match="seek"):
            pq.ParquetFile(body)
        zone = S3Zone("stage", client=s3)
        with zone.local_copy("t.parquet") as path:
            assert pq.read_table(path).num_rows == 100
            folder = path.parent
            assert oct(folder.stat().st_mode & 0o777) == "0o700"  # a private temp folder
        assert not folder.exists()
        with pytest.raises(FileNotFoundError), zone.local_copy("missing.parquet"):
            pass


def test_a_function_runs_with_its_roles_credentials_and_only_its_own_etl_variables(
    lambda_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETL_LEAKED", "from the test process")
    with emulated_aws(lambda_dir) as aws:
        role = aws.create_role("tiny-role", "lambda.amazonaws.com", Policy("TinyRole", ()))
        aws.create_function("tiny-env", "tiny.environment", environment={"ETL_OWN": "mine"}, role=role)
        names = ["ETL_OWN", "ETL_LEAKED", "AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL"]
        response = aws.client("lambda").invoke(FunctionName="tiny-env", Payload=json.dumps({"names": names}))
        seen = json.loads(response["Payload"].read())
        assert (seen["ETL_OWN"], seen["ETL_LEAKED"]) == ("mine", None)
        assert seen["AWS_ENDPOINT_URL"] == aws.endpoint_url.rstrip("/")
        principal = aws.iam.principal(seen["AWS_ACCESS_KEY_ID"])
        assert (principal.function, principal.role_arn) == ("tiny-env", role)
    assert os.environ["ETL_LEAKED"] == "from the test process"


# -- (h) IAM enforced ---------------------------------------------------------------------------------------
PUT_ALLOWED = Policy(
    "TinyRole",
    ({"Sid": "PutAllowed", "Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::zone/allowed/*"},),
)


def test_a_handlers_call_outside_its_policy_fails_naming_function_action_and_resource(lambda_dir: Path) -> None:
    with emulated_aws(lambda_dir) as aws:
        aws.client("s3").create_bucket(Bucket="zone")
        role = aws.create_role("tiny-role", "lambda.amazonaws.com", PUT_ALLOWED)
        aws.create_function("tiny-put", "tiny.put", role=role)

        def invoke(key: str) -> dict:
            event = json.dumps({"bucket": "zone", "key": key})
            response = aws.client("lambda").invoke(FunctionName="tiny-put", Payload=event)
            return {"error": response.get("FunctionError"), **json.loads(response["Payload"].read())}

        assert invoke("allowed/a") == {"error": None, "put": "allowed/a"}
        refused = invoke("other/b")
        assert refused["error"] and refused["errorType"] == "ClientError"
        assert (
            "tiny-put (role TinyRole) is not allowed s3:PutObject on arn:aws:s3:::zone/other/b"
            in (refused["errorMessage"])
        )
        assert [c.statement for c in aws.iam.calls] == ["PutAllowed", None]
        keys = [o["Key"] for o in aws.client("s3").list_objects_v2(Bucket="zone")["Contents"]]
        assert keys == ["allowed/a"]


def test_moto_still_does_not_enforce_iam(lambda_dir: Path) -> None:
    with emulated_aws(lambda_dir, skip=("iam_enforced",)) as aws:
        aws.client("s3").create_bucket(Bucket="zone")
        role = aws.create_role("tiny-role", "lambda.amazonaws.com", PUT_ALLOWED)
        aws.role_client("s3", role, "tiny").put_object(Bucket="zone", Key="other/b", Body=b"x")
        assert aws.client("s3").head_object(Bucket="zone", Key="other/b")["ContentLength"] == 1


# -- (g) a missing key is 403 without s3:ListBucket --------------------------------------------------------
READ_ONLY = {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::zone/*"}
LIST = {"Sid": "List", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::zone"}


def missing_key_errors(aws, role: str) -> tuple[str, str]:
    s3 = aws.role_client("s3", role, "tiny")
    codes = []
    for call in (s3.head_object, s3.get_object):
        with pytest.raises(ClientError) as error:
            call(Bucket="zone", Key="nope")
        codes.append(error.value.response["Error"]["Code"])
    return tuple(codes)


def test_missing_key_is_403_without_list_bucket_and_404_with_it(lambda_dir: Path) -> None:
    with emulated_aws(lambda_dir) as aws:
        s3 = aws.client("s3")
        s3.create_bucket(Bucket="zone")
        s3.put_object(Bucket="zone", Key="here", Body=b"x")
        reader = aws.create_role("reader", "lambda.amazonaws.com", Policy("Reader", (READ_ONLY,)))
        lister = aws.create_role("lister", "lambda.amazonaws.com", Policy("Lister", (READ_ONLY, LIST)))
        assert missing_key_errors(aws, reader) == ("403", "AccessDenied")
        assert missing_key_errors(aws, lister) == ("404", "NoSuchKey")
        assert aws.role_client("s3", reader, "tiny").get_object(Bucket="zone", Key="here")["Body"].read() == b"x"
        with pytest.raises(ClientError, match="404"):
            s3.head_object(Bucket="zone", Key="nope")  # the emulation's own calls keep moto's answer
        refused = [(c.function, c.operation, c.action, c.resource) for c in aws.iam.denials]
        assert refused == [
            ("tiny", "HeadObject of a missing key", "s3:ListBucket", "arn:aws:s3:::zone"),
            ("tiny", "GetObject of a missing key", "s3:ListBucket", "arn:aws:s3:::zone"),
        ]
        reader_zone = S3Zone("zone", client=aws.role_client("s3", reader, "tiny"))
        with pytest.raises(ClientError, match="403"):
            reader_zone.exists("nope")  # forbidden is never taken for absent
        assert S3Zone("zone", client=aws.role_client("s3", lister, "tiny")).exists("nope") is False


def test_moto_still_answers_404_to_a_caller_without_list_bucket(lambda_dir: Path) -> None:
    with emulated_aws(lambda_dir, skip=("s3_missing_key_forbidden",)) as aws:
        aws.client("s3").create_bucket(Bucket="zone")
        reader = aws.create_role("reader", "lambda.amazonaws.com", Policy("Reader", (READ_ONLY,)))
        assert missing_key_errors(aws, reader) == ("404", "NoSuchKey")


# -- (i) a failed asynchronous invocation is retried, then sent to its on-failure destination --------------
SEND_FAILURES = {
    "Sid": "SendFailures",
    "Effect": "Allow",
    "Action": "sqs:SendMessage",
    "Resource": "arn:aws:sqs:us-east-1:123456789012:failures",
}


def failing_async_function(aws, policy: Policy) -> str:
    """``tiny-reject`` (always raises) with 2 retries and the ``failures`` queue as on-failure destination."""
    queue = aws.client("sqs").create_queue(QueueName="failures")["QueueUrl"]
    role = aws.create_role("tiny-role", "lambda.amazonaws.com", policy)
    aws.create_function("tiny-reject", "tiny.reject", role=role)
    aws.client("lambda").put_function_event_invoke_config(
        FunctionName="tiny-reject",
        MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:failures"}},
    )
    answer = aws.client("lambda").invoke(FunctionName="tiny-reject", InvocationType="Event", Payload=b'{"x": 7}')
    assert answer["StatusCode"] == 202
    return queue


def queued(aws, queue: str) -> list[dict]:
    messages = aws.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def test_failed_async_invocation_is_retried_then_recorded_in_the_on_failure_queue(lambda_dir: Path) -> None:
    with emulated_aws(lambda_dir) as aws:
        queue = failing_async_function(aws, Policy("TinyRole", (SEND_FAILURES,)))
        assert aws.invocations == ["tiny-reject"] * 3  # the first attempt and two retries
        [record] = queued(aws, queue)
        context = record["requestContext"]
        assert context["functionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:tiny-reject:$LATEST"
        assert (context["condition"], context["approximateInvokeCount"]) == ("RetriesExhausted", 3)
        assert record["requestPayload"] == {"x": 7}
        assert record["responsePayload"]["errorType"] == "BadFile"
        assert [c.statement for c in aws.iam.calls] == ["SendFailures"]  # sent with the function's role
        assert aws.lost_events == []


def test_an_on_failure_record_the_role_may_not_send_is_lost(lambda_dir: Path) -> None:
    with emulated_aws(lambda_dir) as aws:
        queue = failing_async_function(aws, Policy("TinyRole", ()))
        assert queued(aws, queue) == []
        [lost] = aws.lost_events
        assert "not allowed sqs:SendMessage on arn:aws:sqs:us-east-1:123456789012:failures" in lost["deliveryError"]


def test_moto_still_runs_an_async_invocation_once_and_drops_its_failure(lambda_dir: Path) -> None:
    with emulated_aws(lambda_dir, skip=("async_on_failure_destination",)) as aws:
        queue = failing_async_function(aws, Policy("TinyRole", (SEND_FAILURES,)))
        assert aws.invocations == ["tiny-reject"]
        assert queued(aws, queue) == []
