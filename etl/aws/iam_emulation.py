"""IAM as ``template.yml`` deploys it, enforced on every AWS call of the emulated functions (docs/design.md §12).

moto does not enforce IAM by default, and its own access control checks resources for a few services only.
Here each call a Lambda handler or the Glue job makes is checked, before it is sent, against the policy of
the role that function runs under:

- the policies are the documents ``template.yml`` inlines (the files of ``roles_and_policies/``), their
  ``!Sub`` placeholders resolved for the emulated stack (:func:`deployed_roles`);
- a call is identified by the access key of the client that makes it: every function runs with credentials
  that STS issued for its own role, so a client created inside a handler (or the Glue job) signs as that role;
- :data:`OPERATIONS` maps exactly the operations the code calls to the IAM action(s) and resource ARN(s) AWS
  authorises them on (an S3 ``CopyObject`` needs ``s3:GetObject`` on the source and ``s3:PutObject`` on the
  target; a ``HeadObject`` is ``s3:GetObject``; ``ListObjectsV2`` is ``s3:ListBucket`` on the bucket with the
  ``s3:prefix`` condition key). An operation missing from the table fails loudly, so a new call cannot slip by;
- a call no statement allows raises ``AccessDenied`` (HTTP 403, as AWS answers) whose message names the
  function, the action and the resource; it is also kept in :attr:`IamEnforcer.denials`, so a caller that
  swallows the error still fails the run (``etl.aws.sim``).

Every checked call is recorded (:attr:`IamEnforcer.calls`): the "actions used" of each role.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from etl.errors import EtlError

Params = Mapping[str, Any]


@dataclass(frozen=True)
class Request:
    """One authorisation AWS makes for a call: an action on a resource, with the condition keys it carries."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()


# --- operation → (action, resource) --------------------------------------------------------------------------
def _object(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def _copy_source(params: Params) -> str:
    source = params["CopySource"]
    if isinstance(source, str):
        bucket, _, key = source.lstrip("/").partition("/")
        return _object(bucket, key.split("?versionId=")[0])
    return _object(source["Bucket"], source["Key"])


@dataclass(frozen=True)
class Where:
    """The account and region a call goes to (for ARNs built from a bare name)."""

    region: str = "us-east-1"
    account: str = "123456789012"


def _get(p: Params, w: Where) -> list[Request]:
    return [Request("s3:GetObject", _object(p["Bucket"], p["Key"]))]


def _put(p: Params, w: Where) -> list[Request]:
    return [Request("s3:PutObject", _object(p["Bucket"], p["Key"]))]


def _copy(p: Params, w: Where) -> list[Request]:
    return [Request("s3:GetObject", _copy_source(p)), *_put(p, w)]


def _list(p: Params, w: Where) -> list[Request]:
    return [Request("s3:ListBucket", f"arn:aws:s3:::{p['Bucket']}", (("s3:prefix", p.get("Prefix", "")),))]


def _function(p: Params, w: Where) -> list[Request]:
    name = str(p["FunctionName"])
    arn = name if name.startswith("arn:") else f"arn:aws:lambda:{w.region}:{w.account}:function:{name}"
    return [Request("lambda:InvokeFunction", arn)]


def _queue_arn(url: str, w: Where) -> str:
    """``https://sqs.<region>.amazonaws.com/<account>/<name>`` (or moto's ``http://host:port/<account>/<name>``)."""
    account, name = url.rstrip("/").rsplit("/", 2)[-2:]
    return f"arn:aws:sqs:{w.region}:{account}:{name}"


def _job(action: str) -> Callable[[Params, Where], list[Request]]:
    return lambda p, w: [Request(action, f"arn:aws:glue:{w.region}:{w.account}:job/{p['JobName']}")]


#: (service, operation) → the authorisations AWS makes for it. Exactly the operations the code calls (and, for
#: the state machine's role, the calls Step Functions makes for the Lambda and Glue tasks).
OPERATIONS: dict[tuple[str, str], Callable[[Params, Where], list[Request]]] = {
    ("s3", "GetObject"): _get,
    ("s3", "HeadObject"): _get,  # HEAD is authorised as s3:GetObject
    ("s3", "PutObject"): _put,
    ("s3", "CreateMultipartUpload"): _put,  # upload_file / upload_fileobj of large objects
    ("s3", "UploadPart"): _put,
    ("s3", "CompleteMultipartUpload"): _put,
    ("s3", "AbortMultipartUpload"): lambda p, w: [Request("s3:AbortMultipartUpload", _object(p["Bucket"], p["Key"]))],
    ("s3", "CopyObject"): _copy,
    ("s3", "UploadPartCopy"): _copy,  # the managed copy of objects over 5 GiB
    ("s3", "DeleteObject"): lambda p, w: [Request("s3:DeleteObject", _object(p["Bucket"], p["Key"]))],
    ("s3", "ListObjectsV2"): _list,
    ("stepfunctions", "StartExecution"): lambda p, w: [Request("states:StartExecution", p["stateMachineArn"])],
    ("stepfunctions", "DescribeExecution"): lambda p, w: [Request("states:DescribeExecution", p["executionArn"])],
    ("secretsmanager", "GetSecretValue"): lambda p, w: [Request("secretsmanager:GetSecretValue", p["SecretId"])],
    ("sns", "Publish"): lambda p, w: [Request("sns:Publish", p["TopicArn"])],
    ("sqs", "SendMessage"): lambda p, w: [Request("sqs:SendMessage", _queue_arn(str(p["QueueUrl"]), w))],
    ("lambda", "Invoke"): _function,
    ("glue", "StartJobRun"): _job("glue:StartJobRun"),
    ("glue", "GetJobRun"): _job("glue:GetJobRun"),
}


def requests_for(service: str, operation: str, params: Params, where: Where | None = None) -> list[Request]:
    """The authorisations of one call; an operation not in :data:`OPERATIONS` raises ``LookupError``."""
    try:
        mapper = OPERATIONS[(service, operation)]
    except KeyError:
        raise LookupError(
            f"{service}:{operation} is not in etl.aws.iam_emulation.OPERATIONS: add its IAM action and "
            "resource ARN there (and the grant to the role's policy) before calling it"
        ) from None
    return mapper(params, where or Where())


# --- policy evaluation ------------------------------------------------------------------------------------
@lru_cache(maxsize=1024)
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    text = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(f"^{text}$", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _condition_holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    """The condition operators the policies use (``StringEquals``, ``StringLike``); any other fails loudly."""
    for operator, tests in condition.items():
        if operator not in ("StringEquals", "StringLike"):
            raise NotImplementedError(f"condition operator {operator} is not emulated")
        for key, wanted in tests.items():
            if key not in context:
                return False
            value = context[key]
            if operator == "StringEquals" and value not in map(str, _as_list(wanted)):
                return False
            if operator == "StringLike" and not any(_pattern(str(w), False).match(value) for w in _as_list(wanted)):
                return False
    return True


@dataclass(frozen=True)
class Policy:
    """One role's identity policy (resolved ARNs): explicit Deny wins, else an Allow statement must match."""

    role: str
    statements: tuple[Mapping[str, Any], ...]

    def _matches(self, statement: Mapping[str, Any], request: Request) -> bool:
        if "NotAction" in statement or "NotResource" in statement:
            raise NotImplementedError("NotAction/NotResource are not emulated (etl.aws.iam_check forbids them)")
        actions = _as_list(statement.get("Action", []))
        resources = _as_list(statement.get("Resource", []))
        return (
            any(_pattern(str(a), True).match(request.action) for a in actions)
            and any(_pattern(str(r), False).match(request.resource) for r in resources)
            and _condition_holds(statement.get("Condition", {}), dict(request.context))
        )

    def allowing(self, request: Request) -> str | None:
        """The Sid of the statement that allows ``request``; None when it is not allowed."""
        allowed = None
        for index, statement in enumerate(self.statements):
            if not self._matches(statement, request):
                continue
            if statement.get("Effect") == "Deny":
                return None
            allowed = allowed or str(statement.get("Sid", index))
        return allowed

    def without(self, sid: str) -> Policy:
        """This policy with statement ``sid`` removed (tests prove a missing grant fails the run)."""
        kept = tuple(s for s in self.statements if s.get("Sid") != sid)
        if len(kept) == len(self.statements):
            raise KeyError(f"{self.role} has no statement {sid!r}")
        return Policy(self.role, kept)


# --- the template's roles ----------------------------------------------------------------------------------
class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (``!Sub x`` → ``{"Fn::Sub": x}``, ``!GetAtt A.B`` → list)."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template(path: str | Path) -> dict[str, Any]:
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_CfnLoader)


def _resolve(value: Any, values: Mapping[str, str]) -> Any:
    """``Fn::Sub`` strings with their ``${Name}`` filled from ``values``; an unknown name raises KeyError."""
    if isinstance(value, dict):
        if set(value) == {"Fn::Sub"}:
            return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], value["Fn::Sub"])
        if set(value) & {"Ref", "Fn::GetAtt"}:
            raise ValueError(f"policy value {value} is not a !Sub string")
        return {k: _resolve(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, values) for v in value]
    return value


@dataclass(frozen=True)
class DeployedRoles:
    """The template's roles with resolved policies, and which role each function and the Glue job run under."""

    policies: dict[str, Policy]  # role logical id → policy
    functions: dict[str, str]  # handler module (``lz_to_raw``) → role logical id
    glue_job: str  # the Glue job's role logical id
    state_machine: str  # the state machine's role logical id


def _role_of(resource: Mapping[str, Any]) -> str:
    role = resource["Properties"].get("Role") or resource["Properties"].get("RoleArn")
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        return str(role["Fn::GetAtt"][0])
    raise ValueError(f"role {role!r} is not !GetAtt <Role>.Arn")


def _only_role(resources: Mapping[str, Any], kind: str) -> str:
    """The role of the template's one resource of type ``kind`` (the stack has one Glue job, one state machine)."""
    roles = [_role_of(r) for r in resources.values() if r["Type"] == kind]
    if len(roles) != 1:
        raise ValueError(f"{len(roles)} {kind} resources, the stack has exactly one")
    return roles[0]


def deployed_roles(
    template_path: str | Path, values: Mapping[str, str], modules: tuple[str, ...] | None = None
) -> DeployedRoles:
    """Read ``template.yml``: the roles the functions, the Glue job and the state machine run under, each with
    its inline policy resolved with ``values`` (placeholder → value; a missing one raises KeyError). Roles no
    emulated code runs under (people's roles, such as the analysts') are left out; ``modules`` limits the
    functions to those handler modules (the pipeline's, not the stack's migrate function)."""
    resources = load_template(template_path)["Resources"]
    functions = {
        str(r["Properties"]["Handler"]).rsplit(".", 1)[0]: _role_of(r)
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
    }
    if modules is not None:
        missing = [module for module in modules if module not in functions]
        if missing:
            raise ValueError(f"no AWS::Lambda::Function with Handler {missing[0]}.handler")
        functions = {module: functions[module] for module in modules}
    glue, machine = (_only_role(resources, kind) for kind in ("AWS::Glue::Job", "AWS::StepFunctions::StateMachine"))
    policies: dict[str, Policy] = {}
    for name in sorted({*functions.values(), glue, machine}):
        statements: list[Mapping[str, Any]] = []
        for inline in resources[name]["Properties"].get("Policies", []):
            statements += _as_list(_resolve(inline["PolicyDocument"], values)["Statement"])
        policies[name] = Policy(name, tuple(statements))
    return DeployedRoles(policies, functions, glue, machine)


# --- which grants the calls use --------------------------------------------------------------------------
#: Statements no call of the code makes use of: the service needs them for the function, named by Sid.
SERVICE_STATEMENTS = {
    "LambdaServiceWritesOwnLogs": "Lambda writes the function's log stream",
    "LambdaServiceDescribesVpcNetwork": "Lambda looks up the VPC a function runs in",
    "LambdaServiceManagesVpcNetworkInterfaces": "Lambda creates and removes the function's network interfaces",
    "SnsEncryptsWithTopicKeyForPublisher": "SNS encrypts a message with the topic's KMS key as the publisher",
    "GlueServiceReadsScriptAndWheel": "Glue loads the job script and the --additional-python-modules wheel",
    "GlueServiceWritesLogs": "Glue 5.0 writes the job's logs in real time",
    "LambdaServiceSendsFailedEventsToQueue": "Lambda sends a failed asynchronous event to the on-failure queue",
    "LambdaServiceEncryptsFailedEventsWithQueueKey": "SQS encrypts the on-failure record with the queue's KMS key",
    "StepFunctionsServiceDeliversLogs": "Step Functions delivers execution logs to CloudWatch Logs",
    "StepFunctionsServiceSendsTraces": "Step Functions sends X-Ray traces (StateMachineTracing=Enabled)",
    "GlueServicePublishesJobMetrics": "Glue publishes --enable-metrics / --enable-observability-metrics",
    "S3DecryptsCardDataWithBucketKey": "S3 decrypts SSE-KMS objects with the card-data key for the reader",
    "S3EncryptsAndDecryptsCardDataWithBucketKey": "S3 encrypts (and, copying, decrypts) with the card-data key",
}

#: (Sid, action) pairs the production path uses but the emulation cannot observe: Spark on Glue writes the stage
#: through Glue's S3 file system (temporary part files listed, read back, removed), the emulated job locally.
UNOBSERVED_GRANTS = {
    ("SparkWritesAndPromotesStage", "s3:GetObject"): "Spark reads its part file back and counts the rows",
    ("SparkWritesAndPromotesStage", "s3:DeleteObject"): "the temporary part-file folder is removed",
    ("SparkListsStage", "s3:ListBucket"): "the part file is found by listing the temporary folder",
    ("RunTransformJob", "glue:GetJobRuns"): "AWS lists it for Step Functions' Glue .sync integration",
    ("RunTransformJob", "glue:BatchStopJobRun"): "Step Functions stops the job run of a timed-out or stopped task",
}


@dataclass(frozen=True)
class GrantUse:
    """One granted action of one statement and how many checked calls it allowed."""

    role: str
    sid: str
    action: str
    resources: tuple[str, ...]
    uses: int

    @property
    def reason_unused(self) -> str | None:
        """Why an unused grant stays (a service need, or not observable here); None: it should go."""
        return SERVICE_STATEMENTS.get(self.sid) or UNOBSERVED_GRANTS.get((self.sid, self.action))


def usage_table(uses: list[GrantUse]) -> str:
    """Markdown: per role, each granted action with its statement, resources and observed uses."""
    lines = [
        "| role | statement | action | resources | calls allowed | if unused, why kept |",
        "|---|---|---|---|---|---|",
    ]
    for use in uses:
        resources = "<br>".join(use.resources)
        why = "" if use.uses else (use.reason_unused or "**unused: remove**")
        lines.append(f"| {use.role} | {use.sid} | {use.action} | {resources} | {use.uses} | {why} |")
    return "\n".join(lines)


def grant_uses(policies: Mapping[str, Policy], calls: list[Call]) -> list[GrantUse]:
    """Every (role, statement, action) granted, with the number of recorded calls it allowed."""
    counts: dict[tuple[str, str, str], int] = {}
    for call in calls:
        if call.statement is not None:
            key = (call.role, call.statement, call.action.lower())
            counts[key] = counts.get(key, 0) + 1
    uses = []
    for role, policy in policies.items():
        for index, statement in enumerate(policy.statements):
            if statement.get("Effect") != "Allow":
                continue
            sid = str(statement.get("Sid", index))
            resources = tuple(map(str, _as_list(statement.get("Resource", []))))
            for action in map(str, _as_list(statement.get("Action", []))):
                uses.append(GrantUse(role, sid, action, resources, counts.get((role, sid, action.lower()), 0)))
    return uses


# --- enforcement -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Principal:
    """Who signs with an access key: a function (or the Glue job) and the role it runs under."""

    function: str
    role_arn: str
    policy: Policy


@dataclass(frozen=True)
class Call:
    """One checked authorisation: who, what, on which resource, and the statement that allowed it (or None)."""

    function: str
    role: str
    operation: str
    action: str
    resource: str
    statement: str | None

    def denial_text(self) -> str:
        return (
            f"{self.function} (role {self.role}) is not allowed {self.action} on {self.resource} "
            f"(by {self.operation}): no statement of its policy allows it"
        )


class ForeignCredentials(EtlError):
    """A function called AWS with credentials that are not its role's: the emulation could not check the call."""


@dataclass
class IamEnforcer:
    """Principals by access key, every checked call, and the denials (docs/design.md §12)."""

    principals: dict[str, Principal] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    denials: list[Call] = field(default_factory=list)
    resolve_secret: Callable[[str], str] = field(default=lambda secret_id: secret_id)
    account: str = "123456789012"
    _acting: threading.local = field(default_factory=threading.local, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def register(self, access_key: str, principal: Principal) -> None:
        self.principals[access_key] = principal

    def acting(self, principal: Principal | None) -> None:
        """Mark the current thread as running ``principal``'s code (None: no function runs here)."""
        self._acting.principal = principal

    def principal(self, access_key: str | None) -> Principal | None:
        return self.principals.get(access_key or "")

    def check(
        self, access_key: str | None, service: str, operation: str, params: Params, region: str = "us-east-1"
    ) -> None:
        """Authorise one call; raises botocore's ``ClientError`` (AccessDenied, 403) when the policy refuses."""
        principal = self.principal(access_key)
        if principal is None:
            acting = getattr(self._acting, "principal", None)
            if acting is not None:  # a handler calling with credentials that are not its role's
                raise ForeignCredentials(
                    f"{acting.function} called {service}:{operation} with credentials that are not its role's "
                    "(a client created outside the function?)"
                )
            return  # the emulation's own set-up and inspection calls
        for request in requests_for(service, operation, params, Where(region, self.account)):
            if request.action == "secretsmanager:GetSecretValue":
                request = Request(request.action, self.resolve_secret(request.resource), request.context)
            sid = principal.policy.allowing(request)
            call = Call(principal.function, principal.policy.role, operation, request.action, request.resource, sid)
            with self._lock:
                self.calls.append(call)
                if sid is None:
                    self.denials.append(call)
            if sid is None:
                raise _access_denied(call)

    def may(self, access_key: str | None, operation: str, action: str, resource: str) -> bool | None:
        """Whether the principal behind ``access_key`` is allowed ``action`` on ``resource``, for an
        authorisation a service makes inside ``operation`` (S3's "may the caller list?" before it answers a
        missing key): recorded like a call, a refusal as a denial. None: not a function's key."""
        principal = self.principal(access_key)
        if principal is None:
            return None
        sid = principal.policy.allowing(Request(action, resource))
        call = Call(principal.function, principal.policy.role, operation, action, resource, sid)
        with self._lock:
            self.calls.append(call)
            if sid is None:
                self.denials.append(call)
        return sid is not None


def _access_denied(call: Call) -> Exception:
    from botocore.exceptions import ClientError

    error = {"Error": {"Code": "AccessDenied", "Message": call.denial_text()}}
    return ClientError({**error, "ResponseMetadata": {"HTTPStatusCode": 403}}, call.operation)


def access_key_of(client: Any) -> str | None:
    """The access key a botocore client signs with (None for an unsigned client)."""
    credentials = client._request_signer._credentials
    return None if credentials is None else credentials.access_key
