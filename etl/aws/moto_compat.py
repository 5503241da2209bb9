"""Every adaptation the project makes to moto 5.2.5, in one place: an upgrade that breaks one fails loudly.

``emulated_aws(lambda_dir, glue_runner)`` starts moto in SERVER mode (``ThreadedMotoServer`` on a free loopback
port, ``AWS_ENDPOINT_URL`` pointing every boto3 client at it) with moto's Step Functions interpreter, so calls
travel over HTTP and an S3 body is a non-seekable stream, as on AWS (docs/design.md §12). Lambda and Step
Functions run inside the server's threads of this same process, which is what lets the patches below apply:

a. ``lambda_in_process``: moto invokes Lambda functions in Docker (``LambdaFunction._invoke_lambda``); here
   the function's ``Handler`` (``module.function``) is imported from ``lambda_dir`` and called in-process
   with the function's environment variables set. A handler exception becomes a function error whose
   ``errorType`` is the exception's class name, as on AWS, so Retry/Catch match it.
   :meth:`EmulatedAWS.inject_lambda_error` makes the next invocations fail at the service level
   (``Lambda.ServiceException`` in the state machine).
b. ``glue_sync``: ``glue:startJobRun.sync`` ends in ``States.Runtime`` ("'NoneType' object has no attribute
   'interrupt_all'") because the Glue integration only lists ``sync`` as supported; widened with
   ``waitForTaskToken`` so the callback endpoint the sync path uses exists.
c. ``execution_names``: ``start_execution`` without a name gives the execution the name ``None`` (and an ARN
   ending in ``:None``); an unnamed execution gets a UUID name, as on AWS.
d. ``start_time_iso``: ``$$.Execution.StartTime`` is a ``datetime``, so an output containing it breaks
   ``describe_execution``; it becomes an ISO-8601 string, as on AWS.
e. ``glue_job_runs``: Glue job runs execute nothing and succeed; here starting a run calls the registered
   ``runner(job_name, arguments)`` and the run ends ``SUCCEEDED``, or ``FAILED`` with the exception as its
   ``ErrorMessage`` (with no runner registered, runs fail rather than pretend to have worked).
f. ``retry_without_sleep``: Retry intervals really sleep; the sleep is recorded in
   :attr:`EmulatedAWS.retry_sleeps` and skipped.
g. ``s3_missing_key_forbidden``: moto answers 404 to a HEAD or GET of a missing key whoever asks; S3 answers
   403 (AccessDenied) when the caller has no ``s3:ListBucket`` on the bucket, 404 only when it has. Here the
   caller's role policy decides, as on AWS (the emulation's own set-up calls keep moto's 404).
h. ``iam_enforced``: moto does not enforce IAM; here every call a function's client makes is checked against
   the policy of the role the function runs under (``etl.aws.iam_emulation``): a call no statement allows
   fails with AccessDenied naming the function, the action and the resource. With
   :meth:`EmulatedAWS.enforce_state_machine_role`, the Lambda and Glue calls of Step Functions' tasks too.
i. ``async_on_failure_destination``: moto runs an asynchronous (``Event``) invocation once, ignores its error
   and never uses the function's event invoke configuration; Lambda retries a failed asynchronous event
   ``MaximumRetryAttempts`` times (default 2) and then sends an on-failure record (``requestContext``
   with ``functionArn``, ``condition: RetriesExhausted``, ``approximateInvokeCount``; ``requestPayload`` = the
   event; ``responsePayload`` = the error) to ``DestinationConfig.OnFailure``. Here the retries run at once
   (no back-off) and the record goes to an SQS destination sent with the function's own role credentials,
   as Lambda does, so the role's ``sqs:SendMessage`` is checked. Only SQS destinations; ``MaximumEventAge``
   is not emulated; a refused or failed delivery is kept in :attr:`EmulatedAWS.lost_events` (on AWS: the
   ``DestinationDeliveryFailures`` metric).

Each function (and each Glue job run) runs with credentials STS issued for its own role, and with only its
own environment variables among the ``ETL_*`` ones, as on Lambda.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import io
import json
import logging
import os
import re
import sys
import threading
import time
import traceback
import types
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
from botocore.client import BaseClient
from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaFunction
from moto.core.base_backend import BackendDict
from moto.core.config import default_user_config
from moto.glue.models import FakeJob, FakeJobRun
from moto.s3.exceptions import MissingKey
from moto.s3.responses import S3Response
from moto.server import ThreadedMotoServer
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_glue,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
    ResourceCondition,
)
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from etl.aws.iam_emulation import IamEnforcer, Policy, Principal, access_key_of

MOTO_CONFIG: dict[str, Any] = {"stepfunctions": {"execute_state_machine": True}}
ACCOUNT_ID = "123456789012"  # moto's default account
STEP_FUNCTIONS_KEY = "ak"  # the access key moto's Step Functions signs its Lambda and Glue task calls with
GlueRunner = Callable[[str, dict[str, str]], None]


class LambdaServiceError(LambdaClientError):
    """A service-side Lambda failure (HTTP 500), seen by Step Functions as ``Lambda.<code>``."""

    code = 500


@dataclass
class LambdaContext:
    """The parts of the Lambda context object handlers use."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class EmulatedAWS:
    """One emulation's state: the server's endpoint, where handlers live, the Glue runner, the roles' policies
    and the IAM enforcer, injected faults, recorded retry sleeps."""

    def __init__(
        self,
        lambda_dir: str | Path,
        glue_runner: GlueRunner | None = None,
        region: str = "us-east-1",
        endpoint_url: str = "",
    ):
        self.lambda_dir = Path(lambda_dir).resolve()
        self.glue_runner = glue_runner
        self.region = region
        self.endpoint_url = endpoint_url
        self.retry_sleeps: list[float] = []
        self.invocations: list[str] = []  # function names, in invocation order
        self.lost_events: list[dict[str, Any]] = []  # (i) on-failure records no destination took
        self.iam = IamEnforcer()
        self._policies: dict[str, Policy] = {}  # role ARN → its policy
        self._faults: dict[str, list[str]] = {}
        self._modules: dict[str, types.ModuleType] = {}
        self._credentials: dict[tuple[str, str], dict[str, str]] = {}
        self._admin = boto3.session.Session(
            aws_access_key_id=_FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=_FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=_FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
            region_name=region,
        )
        self._lock = threading.RLock()  # one in-process invocation at a time: handlers share os.environ

    # -- helpers for tests and `etl sim` ------------------------------------------------------------------
    def client(self, service: str) -> Any:
        """A client of the emulation's own (unchecked) account credentials: set-up and inspection."""
        return self._admin.client(service, endpoint_url=self.endpoint_url or None)

    def role_client(self, service: str, role_arn: str, session_name: str = "test") -> Any:
        """A client signing as ``role_arn`` (STS AssumeRole): its calls are checked against the role's policy."""
        env = self.credentials_for(role_arn, session_name)
        return boto3.client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url or None,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=env["AWS_SESSION_TOKEN"],
        )

    def credentials_for(self, role_arn: str, session_name: str) -> dict[str, str]:
        """Environment variables with STS credentials of ``role_arn`` for ``session_name`` (a function's name);
        the enforcer knows their access key as that function under that role's policy."""
        with self._lock:
            cached = self._credentials.get((role_arn, session_name))
            if cached is not None:
                return cached
            creds = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name[:64])["Credentials"]
            policy = self._policies.get(role_arn) or Policy(role_arn.rsplit("/", 1)[-1], ())
            self.iam.register(creds["AccessKeyId"], Principal(session_name, role_arn, policy))
            env = {
                "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
                "AWS_SESSION_TOKEN": creds["SessionToken"],
            }
            self._credentials[(role_arn, session_name)] = env
            return env

    def enforce_state_machine_role(self, role_arn: str, name: str) -> None:
        """Check the calls moto's Step Functions makes for Lambda and Glue tasks against ``role_arn``'s policy.

        moto signs them all with one fixed key (``boto_client_for``: ``ak``), so this holds for every state
        machine of the emulation: use it with one machine."""
        policy = self._policies.get(role_arn) or Policy(role_arn.rsplit("/", 1)[-1], ())
        self.iam.register(STEP_FUNCTIONS_KEY, Principal(name, role_arn, policy))

    def inject_lambda_error(self, function_name: str, code: str = "ServiceException", times: int = 1) -> None:
        """Make the next ``times`` invocations of ``function_name`` fail with the service error ``code``."""
        with self._lock:
            self._faults.setdefault(function_name, []).extend([code] * times)

    def clear_lambda_errors(self) -> None:
        """Drop every fault still queued by :meth:`inject_lambda_error` (the cause of a failure is fixed)."""
        with self._lock:
            self._faults.clear()

    def create_role(self, name: str, service: str, policy: Policy | None = None) -> str:
        """An IAM role assumable by ``service`` whose calls ``policy`` governs (none: every call is denied)."""
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
        iam = self.client("iam")
        with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        arn = f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"
        if policy is not None:
            self._policies[arn] = policy
        return arn

    def create_function(
        self,
        name: str,
        handler: str,
        environment: Mapping[str, str] | None = None,
        timeout: int = 60,
        role: str | None = None,
    ) -> str:
        """A function whose ``handler`` (``module.function``) lives in ``lambda_dir``; returns its ARN.

        It runs under ``role`` (an ARN from :meth:`create_role`), by default a role with no permissions."""
        role = role or self.create_role("etl-emulated-lambda", "lambda.amazonaws.com")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("placeholder.txt", "handlers run in-process from lambda_dir")
        response = self.client("lambda").create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role,
            Handler=handler,
            Code={"ZipFile": buffer.getvalue()},
            Timeout=timeout,
            Environment={"Variables": dict(environment or {})},
        )
        return response["FunctionArn"]

    def create_state_machine(self, name: str, definition: str | Mapping[str, Any]) -> str:
        """A state machine (executed by moto's interpreter); returns its ARN."""
        text = definition if isinstance(definition, str) else json.dumps(definition)
        role = self.create_role("etl-emulated-states", "states.amazonaws.com")
        created = self.client("stepfunctions").create_state_machine(name=name, definition=text, roleArn=role)
        return created["stateMachineArn"]

    def execute(
        self, machine_arn: str, payload: Any, name: str | None = None, timeout_s: float = 300.0
    ) -> dict[str, Any]:
        """Start an execution, wait for its end: ``describe_execution``'s answer, ``output`` JSON-decoded."""
        kwargs = {"name": name} if name else {}
        sfn = self.client("stepfunctions")
        started = sfn.start_execution(stateMachineArn=machine_arn, input=json.dumps(payload), **kwargs)
        described = self.wait_for_execution(started["executionArn"], timeout_s)
        if described.get("output"):
            described["output"] = json.loads(described["output"])
        return described

    def wait_for_execution(self, execution_arn: str, timeout_s: float = 300.0) -> dict[str, Any]:
        """Poll until the execution leaves RUNNING; returns ``describe_execution``'s answer."""
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout_s
        while True:
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {execution_arn} still RUNNING after {timeout_s}s")
            time.sleep(0.02)

    def executed_states(self, execution_arn: str) -> list[str]:
        """Names of the states entered, in order (a retried state appears once per entry, not per attempt)."""
        sfn = self.client("stepfunctions")
        events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]

    # -- (a) in-process Lambda ----------------------------------------------------------------------------
    def _handler_function(self, handler: str) -> Callable[[Any, Any], Any]:
        module_name, _, function_name = handler.rpartition(".")
        if module_name not in self._modules:
            path = self.lambda_dir / f"{module_name.replace('.', '/')}.py"
            if not path.is_file():
                raise FileNotFoundError(f"handler module {path} not found (Handler {handler!r})")
            spec = importlib.util.spec_from_file_location(f"_etl_lambda_{module_name}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self._modules[module_name] = module
        return getattr(self._modules[module_name], function_name)

    def invoke(self, function: LambdaFunction, event: Any) -> tuple[str, bool, str]:
        """Run the handler in-process; ``(payload JSON, errored, log text)`` like moto's Docker path."""
        with self._lock:
            self.invocations.append(function.function_name)
            faults = self._faults.get(function.function_name)
            if faults:
                code = faults.pop(0)
                raise LambdaServiceError(code, f"injected {code} for {function.function_name}")
            context = LambdaContext(function.function_name, int(function.memory_size), int(function.timeout))
            env = {**function.environment_vars, "AWS_LAMBDA_FUNCTION_NAME": function.function_name}
            with self.running_as(function.role, function.function_name, env):
                try:
                    result = self._handler_function(function.handler)(event, context)
                except Exception as exc:  # the handler's failure is the function error, as on AWS
                    error = {
                        "errorMessage": str(exc),
                        "errorType": type(exc).__name__,
                        "requestId": context.aws_request_id,
                        "stackTrace": traceback.format_tb(exc.__traceback__),
                    }
                    return json.dumps(error), True, traceback.format_exc()
            return json.dumps(result), False, ""

    @contextlib.contextmanager
    def running_as(self, role_arn: str, name: str, environment: Mapping[str, str]) -> Iterator[None]:
        """Run code as function ``name`` under ``role_arn``: its role's STS credentials and its environment
        (other ``ETL_*`` variables of this process hidden, as a Lambda sees only its own), boto3's default
        session renewed so clients created inside pick up those credentials."""
        env = {**environment, **self.credentials_for(role_arn, name)}
        hidden = {key: None for key in os.environ if key.startswith("ETL_") and key not in env}
        principal = self.iam.principal(env["AWS_ACCESS_KEY_ID"])
        with self._lock, _environ({**hidden, **env}):
            boto3.DEFAULT_SESSION = None
            self.iam.acting(principal)
            try:
                yield
            finally:
                self.iam.acting(None)
                boto3.DEFAULT_SESSION = None

    # -- (i) asynchronous invocations: retries, then the on-failure destination -----------------------------
    def invoke_async(self, function: LambdaFunction, event: Any) -> None:
        """Run an ``Event`` invocation as Lambda does: retried ``MaximumRetryAttempts`` times when it fails,
        then its on-failure record sent to the configured destination."""
        config = function.event_invoke_config[0].config if function.event_invoke_config else {}
        attempts = 1 + int(config.get("MaximumRetryAttempts", 2))
        for _ in range(attempts):
            try:
                payload, errored, _ = self.invoke(function, event)
            except LambdaServiceError as exc:  # a service-side failure counts as a failed attempt too
                payload, errored = json.dumps({"errorType": exc.error_type, "errorMessage": exc.message}), True
            if not errored:
                return
        destination = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        record = on_failure_record(function.function_arn, event, json.loads(payload), attempts)
        if not destination:
            self.lost_events.append(record)  # on AWS: dropped, nothing anywhere
            return
        self.send_on_failure(function, destination, record)

    def send_on_failure(self, function: LambdaFunction, destination: str, record: dict[str, Any]) -> None:
        """Send ``record`` to an SQS ``destination`` with the function's role (what Lambda signs it with)."""
        if not destination.startswith("arn:aws:sqs:"):
            raise NotImplementedError(f"on-failure destination {destination}: only SQS is emulated")
        account, name = destination.split(":")[4:6]
        url = self.client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        try:
            self.role_client("sqs", function.role, function.function_name).send_message(
                QueueUrl=url, MessageBody=json.dumps(record)
            )
        except Exception as exc:  # a refused or failed delivery loses the event, as on AWS: kept for tests
            self.lost_events.append({**record, "deliveryError": f"{type(exc).__name__}: {exc}"})

    # -- (e) Glue job runs ---------------------------------------------------------------------------------
    def run_glue_job(self, job_run: FakeJobRun, role_arn: str) -> None:
        """Run the registered runner for ``job_run`` as the job's role and set its final state."""
        if self.glue_runner is None:
            job_run.status = "FAILED"
            job_run.error_message = "no Glue runner registered with emulated_aws(glue_runner=...)"
            return
        try:
            with self.running_as(role_arn, job_run.job_name, {}):
                self.glue_runner(job_run.job_name, dict(job_run.arguments or {}))
        except Exception as exc:
            job_run.status = "FAILED"
            job_run.error_message = f"{type(exc).__name__}: {exc}"
        else:
            job_run.status = "SUCCEEDED"


@contextlib.contextmanager
def _environ(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (None: unset) environment variables for the block, then restore them."""
    saved = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = str(value)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def on_failure_record(function_arn: str, event: Any, error: Any, invoke_count: int) -> dict[str, Any]:
    """The record Lambda sends to an on-failure destination after the last retry of an asynchronous event
    (Lambda developer guide, "Capturing records of Lambda asynchronous invocations")."""
    request_id = error.get("requestId") if isinstance(error, dict) else None
    return {
        "version": "1.0",
        "timestamp": iso_timestamp(dt.datetime.now(dt.UTC)),
        "requestContext": {
            "requestId": request_id or str(uuid.uuid4()),
            "functionArn": f"{function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": error,
    }


# -- the patches, one function each --------------------------------------------------------------------------
def lambda_in_process(emulated: EmulatedAWS) -> contextlib.AbstractContextManager[Any]:
    """(a) ``LambdaFunction._invoke_lambda`` runs the handler in-process instead of in Docker."""

    def _invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        return emulated.invoke(self, {} if event is None else event)

    return mock.patch.object(LambdaFunction, "_invoke_lambda", _invoke_lambda)


def async_on_failure_destination(emulated: EmulatedAWS) -> contextlib.AbstractContextManager[Any]:
    """(i) An ``Event`` invocation is retried and, failing for good, sent to its on-failure destination."""
    original = LambdaFunction.invoke

    def invoke(self: LambdaFunction, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
        if request_headers.get("x-amz-invocation-type") != "Event":
            return original(self, body, request_headers, response_headers)
        emulated.invoke_async(self, json.loads(body) if body else {})
        return ""  # Lambda answers 202 with an empty body

    return mock.patch.object(LambdaFunction, "invoke", invoke)


@contextlib.contextmanager
def glue_sync() -> Iterator[None]:
    """(b) Widen the Glue integration's supported patterns so ``.sync`` has its callback endpoint."""
    patterns = state_task_service_glue._SUPPORTED_INTEGRATION_PATTERNS
    added = ResourceCondition.WaitForTaskToken not in patterns
    patterns.add(ResourceCondition.WaitForTaskToken)
    try:
        yield
    finally:
        if added:
            patterns.discard(ResourceCondition.WaitForTaskToken)


def execution_names() -> contextlib.AbstractContextManager[Any]:
    """(c) An unnamed execution gets a UUID name instead of ``None``."""
    original = StepFunctionsParserBackend.start_execution

    def start_execution(self: Any, state_machine_arn: str, name: Any = None, *args: Any, **kw: Any) -> Any:
        return original(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kw)

    return mock.patch.object(StepFunctionsParserBackend, "start_execution", start_execution)


def start_time_iso() -> contextlib.AbstractContextManager[Any]:
    """(d) ``$$.Execution.StartTime`` is an ISO-8601 string (millisecond precision, UTC), as on AWS."""
    original = ExecutionWorker._get_evaluation_environment

    def _get_evaluation_environment(self: ExecutionWorker) -> Any:
        env = original(self)
        execution = env.states.context_object.context_object_data["Execution"]
        start = execution.get("StartTime")
        if isinstance(start, dt.datetime):
            execution["StartTime"] = iso_timestamp(start)
        return env

    return mock.patch.object(ExecutionWorker, "_get_evaluation_environment", _get_evaluation_environment)


def iso_timestamp(value: dt.datetime) -> str:
    """``2024-01-02T03:04:05.678Z``: the format Step Functions gives ``$$.Execution.StartTime``."""
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@contextlib.contextmanager
def glue_job_runs(emulated: EmulatedAWS) -> Iterator[None]:
    """(e) Starting a Glue job run calls the project's runner; the run ends SUCCEEDED or FAILED."""
    original_start = FakeJob.start_job_run
    original_as_dict = FakeJobRun.as_dict

    def start_job_run(self: FakeJob, *args: Any, **kwargs: Any) -> str:
        run_id = original_start(self, *args, **kwargs)
        job_run = next(run for run in self.job_runs if run.job_run_id == run_id)
        emulated.run_glue_job(job_run, self.role)
        return run_id

    def as_dict(self: FakeJobRun) -> dict[str, Any]:
        described = original_as_dict(self)
        if getattr(self, "error_message", None):
            described["ErrorMessage"] = self.error_message
        return described

    with (
        mock.patch.object(FakeJob, "start_job_run", start_job_run),
        mock.patch.object(FakeJobRun, "as_dict", as_dict),
    ):
        yield


def retry_without_sleep(emulated: EmulatedAWS) -> contextlib.AbstractContextManager[Any]:
    """(f) Retry intervals are recorded in ``emulated.retry_sleeps`` instead of slept."""
    return mock.patch.object(retrier_decl, "time", types.SimpleNamespace(sleep=emulated.retry_sleeps.append))


_AUTH_KEY = re.compile(r"Credential=([^/,\s]+)/")
_ACCESS_DENIED_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message>'
    "<RequestId>{request_id}</RequestId></Error>"
)


def _caller_key(headers: Mapping[str, Any]) -> str | None:
    """The access key of a SigV4-signed request (``Authorization: ... Credential=<key>/<scope>``)."""
    found = _AUTH_KEY.search(str(headers.get("Authorization") or headers.get("authorization") or ""))
    return found.group(1) if found else None


def s3_missing_key_forbidden(emulated: EmulatedAWS) -> contextlib.AbstractContextManager[Any]:
    """(g) A HEAD or GET of a missing key answers 403 unless the caller may ``s3:ListBucket`` the bucket."""
    original_get, original_head = S3Response.get_object, S3Response.head_object

    def forbidden(response: S3Response, operation: str, bucket: str) -> bool:
        key = _caller_key(response.headers)
        return (
            emulated.iam.may(key, f"{operation} of a missing key", "s3:ListBucket", f"arn:aws:s3:::{bucket}") is False
        )

    def get_object(self: S3Response) -> Any:
        try:
            return original_get(self)
        except MissingKey:
            if forbidden(self, "GetObject", self.bucket_name):
                body = _ACCESS_DENIED_XML.format(request_id=uuid.uuid4().hex)
                return 403, {"Content-Type": "application/xml"}, body
            raise

    def head_object(self: S3Response, bucket_name: str, *args: Any, **kwargs: Any) -> Any:
        status, headers, body = original_head(self, bucket_name, *args, **kwargs)
        if status == 404 and forbidden(self, "HeadObject", bucket_name):
            return 403, {k: v for k, v in headers.items() if not k.startswith("x-amz-")}, ""
        return status, headers, body

    stack = contextlib.ExitStack()
    stack.enter_context(mock.patch.object(S3Response, "get_object", get_object))
    stack.enter_context(mock.patch.object(S3Response, "head_object", head_object))
    return stack


def iam_enforced(emulated: EmulatedAWS) -> contextlib.AbstractContextManager[Any]:
    """(h) Every botocore call is checked by ``emulated.iam`` against the policy of the signer's role."""
    original = BaseClient._make_api_call

    def _make_api_call(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        service = self.meta.service_model.service_name
        emulated.iam.check(access_key_of(self), service, operation_name, api_params, self.meta.region_name)
        return original(self, operation_name, api_params)

    return mock.patch.object(BaseClient, "_make_api_call", _make_api_call)


PATCHES = (
    "lambda_in_process",
    "glue_sync",
    "execution_names",
    "start_time_iso",
    "glue_job_runs",
    "retry_without_sleep",
    "s3_missing_key_forbidden",
    "iam_enforced",
    "async_on_failure_destination",
)


@contextlib.contextmanager
def emulated_aws(
    lambda_dir: str | Path,
    glue_runner: GlueRunner | None = None,
    region: str = "us-east-1",
    *,
    skip: tuple[str, ...] = (),
) -> Iterator[EmulatedAWS]:
    """moto in server mode with the Step Functions interpreter and every adaptation above; yields the
    :class:`EmulatedAWS`. ``AWS_ENDPOINT_URL`` (and ``MOTO_PORT``, which moto's Step Functions integrations
    use) point at the server for the block; moto's state is reset when it ends.

    ``skip`` leaves named patches out (from :data:`PATCHES`): this module's tests use it to prove that moto
    still behaves the way each patch assumes.
    """
    unknown = set(skip) - set(PATCHES)
    if unknown:
        raise ValueError(f"unknown patch(es) {sorted(unknown)}; patches are {PATCHES}")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    emulated = EmulatedAWS(lambda_dir, glue_runner, region, endpoint_url=f"http://{host}:{port}")
    patches: dict[str, Callable[[], contextlib.AbstractContextManager[Any]]] = {
        "lambda_in_process": lambda: lambda_in_process(emulated),
        "glue_sync": glue_sync,
        "execution_names": execution_names,
        "start_time_iso": start_time_iso,
        "glue_job_runs": lambda: glue_job_runs(emulated),
        "retry_without_sleep": lambda: retry_without_sleep(emulated),
        "s3_missing_key_forbidden": lambda: s3_missing_key_forbidden(emulated),
        "iam_enforced": lambda: iam_enforced(emulated),
        "async_on_failure_destination": lambda: async_on_failure_destination(emulated),
    }
    environment = {
        **_FAKE_CREDENTIALS,
        "AWS_DEFAULT_REGION": region,
        "AWS_ENDPOINT_URL": emulated.endpoint_url,
        "MOTO_PORT": str(port),
    }
    with contextlib.ExitStack() as stack:
        stack.callback(_stop, server)
        werkzeug_log = logging.getLogger("werkzeug")  # one INFO line per request otherwise; errors still show
        stack.callback(werkzeug_log.setLevel, werkzeug_log.level)
        werkzeug_log.setLevel(logging.WARNING)
        stack.enter_context(mock.patch.dict(default_user_config, MOTO_CONFIG))
        stack.enter_context(_environ(environment))
        for name in PATCHES:
            if name not in skip:
                stack.enter_context(patches[name]())
        sys.path.insert(0, str(emulated.lambda_dir))  # handlers may import their sibling modules, as on AWS
        stack.callback(_remove_from_path, str(emulated.lambda_dir))
        boto3.DEFAULT_SESSION = None  # a session created before holds other credentials and no endpoint
        stack.callback(setattr, boto3, "DEFAULT_SESSION", None)
        yield emulated


def _stop(server: ThreadedMotoServer) -> None:
    """Stop the server and forget moto's state (what ``mock_aws`` does when it ends)."""
    server.stop()
    BackendDict.reset()


_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def _remove_from_path(entry: str) -> None:
    with contextlib.suppress(ValueError):
        sys.path.remove(entry)
