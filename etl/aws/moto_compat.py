"""Every adaptation the project makes to moto 5.2.5, in one place: an upgrade that breaks one fails loudly.

``emulated_aws(lambda_dir, glue_runner)`` activates ``mock_aws`` with moto's Step Functions interpreter and:

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
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import io
import json
import os
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
from moto import mock_aws
from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaFunction
from moto.glue.models import FakeJob, FakeJobRun
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_glue,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
    ResourceCondition,
)
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

MOTO_CONFIG: dict[str, Any] = {"stepfunctions": {"execute_state_machine": True}}
ACCOUNT_ID = "123456789012"  # moto's default account
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
    """One emulation's state: where handlers live, the Glue runner, injected faults, recorded retry sleeps."""

    def __init__(self, lambda_dir: str | Path, glue_runner: GlueRunner | None = None, region: str = "us-east-1"):
        self.lambda_dir = Path(lambda_dir).resolve()
        self.glue_runner = glue_runner
        self.region = region
        self.retry_sleeps: list[float] = []
        self.invocations: list[str] = []  # function names, in invocation order
        self._faults: dict[str, list[str]] = {}
        self._modules: dict[str, types.ModuleType] = {}
        self._lock = threading.RLock()  # one in-process invocation at a time: handlers share os.environ

    # -- helpers for tests and `etl sim` ------------------------------------------------------------------
    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region)

    def inject_lambda_error(self, function_name: str, code: str = "ServiceException", times: int = 1) -> None:
        """Make the next ``times`` invocations of ``function_name`` fail with the service error ``code``."""
        with self._lock:
            self._faults.setdefault(function_name, []).extend([code] * times)

    def clear_lambda_errors(self) -> None:
        """Drop every fault still queued by :meth:`inject_lambda_error` (the cause of a failure is fixed)."""
        with self._lock:
            self._faults.clear()

    def create_role(self, name: str, service: str) -> str:
        """An IAM role assumable by ``service`` (moto's Lambda checks that the execution role exists)."""
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
        iam = self.client("iam")
        with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        return f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"

    def create_function(
        self, name: str, handler: str, environment: Mapping[str, str] | None = None, timeout: int = 60
    ) -> str:
        """A function whose ``handler`` (``module.function``) lives in ``lambda_dir``; returns its ARN."""
        role = self.create_role("etl-emulated-lambda", "lambda.amazonaws.com")
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
            with _environ(env):
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

    # -- (e) Glue job runs ---------------------------------------------------------------------------------
    def run_glue_job(self, job_run: FakeJobRun) -> None:
        """Run the registered runner for ``job_run`` and set its final state."""
        if self.glue_runner is None:
            job_run.status = "FAILED"
            job_run.error_message = "no Glue runner registered with emulated_aws(glue_runner=...)"
            return
        try:
            self.glue_runner(job_run.job_name, dict(job_run.arguments or {}))
        except Exception as exc:
            job_run.status = "FAILED"
            job_run.error_message = f"{type(exc).__name__}: {exc}"
        else:
            job_run.status = "SUCCEEDED"


@contextlib.contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update({key: str(value) for key, value in values.items()})
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


# -- the patches, one function each --------------------------------------------------------------------------
def lambda_in_process(emulated: EmulatedAWS) -> contextlib.AbstractContextManager[Any]:
    """(a) ``LambdaFunction._invoke_lambda`` runs the handler in-process instead of in Docker."""

    def _invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        return emulated.invoke(self, {} if event is None else event)

    return mock.patch.object(LambdaFunction, "_invoke_lambda", _invoke_lambda)


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
        emulated.run_glue_job(job_run)
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


PATCHES = (
    "lambda_in_process",
    "glue_sync",
    "execution_names",
    "start_time_iso",
    "glue_job_runs",
    "retry_without_sleep",
)


@contextlib.contextmanager
def emulated_aws(
    lambda_dir: str | Path,
    glue_runner: GlueRunner | None = None,
    region: str = "us-east-1",
    *,
    skip: tuple[str, ...] = (),
) -> Iterator[EmulatedAWS]:
    """moto with the Step Functions interpreter and every adaptation above; yields the :class:`EmulatedAWS`.

    ``skip`` leaves named patches out (from :data:`PATCHES`): this module's tests use it to prove that moto
    still behaves the way each patch assumes.
    """
    unknown = set(skip) - set(PATCHES)
    if unknown:
        raise ValueError(f"unknown patch(es) {sorted(unknown)}; patches are {PATCHES}")
    emulated = EmulatedAWS(lambda_dir, glue_runner, region)
    patches: dict[str, Callable[[], contextlib.AbstractContextManager[Any]]] = {
        "lambda_in_process": lambda: lambda_in_process(emulated),
        "glue_sync": glue_sync,
        "execution_names": execution_names,
        "start_time_iso": start_time_iso,
        "glue_job_runs": lambda: glue_job_runs(emulated),
        "retry_without_sleep": lambda: retry_without_sleep(emulated),
    }
    with contextlib.ExitStack() as stack:
        stack.enter_context(_environ(_FAKE_CREDENTIALS | {"AWS_DEFAULT_REGION": region}))
        stack.enter_context(mock_aws(config=MOTO_CONFIG))
        for name in PATCHES:
            if name not in skip:
                stack.enter_context(patches[name]())
        sys.path.insert(0, str(emulated.lambda_dir))  # handlers may import their sibling modules, as on AWS
        stack.callback(_remove_from_path, str(emulated.lambda_dir))
        yield emulated


_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def _remove_from_path(entry: str) -> None:
    with contextlib.suppress(ValueError):
        sys.path.remove(entry)
