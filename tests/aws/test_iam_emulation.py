"""The IAM emulation's parts: the template's roles as deployed, policy evaluation, the operation table."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from etl.aws.iam_emulation import (
    Call,
    ForeignCredentials,
    IamEnforcer,
    Policy,
    Principal,
    Request,
    deployed_roles,
    grant_uses,
    load_template,
    requests_for,
)
from etl.aws.sim import HANDLERS
from tests.aws.test_static import POLICIES, TEMPLATE, filled, sample


class Samples(dict):
    """The sample placeholder values of test_static, looked up as the template's policies need them."""

    def __missing__(self, name: str) -> str:
        return sample(name)


def roles():
    return deployed_roles(TEMPLATE, Samples(), HANDLERS)


def test_deployed_policies_are_the_documents_resolved() -> None:
    deployed = roles()
    resources = load_template(TEMPLATE)["Resources"]
    documents = {
        r["Metadata"]["PolicyDocument"]: name for name, r in resources.items() if r["Type"] == "AWS::IAM::Role"
    }
    for path in POLICIES:
        role = documents[path.relative_to(TEMPLATE.parent).as_posix()]
        if role not in deployed.policies:
            continue  # a role no emulated code runs under (the analysts')
        expected = json.loads(filled(json.loads(path.read_text())))["Statement"]
        assert list(deployed.policies[role].statements) == expected, role
    # a policy for every role that runs code (each function, the Glue job, the state machine) and for no other
    assert set(deployed.policies) == {*deployed.functions.values(), deployed.glue_job, deployed.state_machine}


def test_each_function_and_the_glue_job_has_its_role() -> None:
    deployed = roles()
    assert deployed.functions == {
        "lz_to_raw": "LzToRawRole",
        "start_step_function": "StartStepFunctionRole",
        "validation": "ValidationRole",
        "transform": "TransformRole",
        "rds_write": "RdsWriteRole",
        "move_file": "MoveFileRole",
        "notification": "NotificationRole",
    }
    assert (deployed.glue_job, deployed.state_machine) == ("GlueJobRole", "StepFunctionsRole")
    every_function = deployed_roles(TEMPLATE, Samples()).functions
    assert set(every_function) - set(deployed.functions) == {"migrate"}  # the stack's own, not the pipeline's


class WithoutRawBucket(Samples):
    def __missing__(self, name: str) -> str:
        if name == "RawBucket.Arn":
            raise KeyError(name)
        return sample(name)


def test_an_unknown_placeholder_fails_loudly() -> None:
    with pytest.raises(KeyError, match=r"RawBucket\.Arn"):
        deployed_roles(TEMPLATE, WithoutRawBucket())


POLICY = Policy(
    "R",
    (
        {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/in/*"},
        {"Sid": "Reports", "Effect": "Allow", "Action": ["s3:PutObject"], "Resource": ["arn:aws:s3:::b/*.json"]},
        {"Sid": "NoSecrets", "Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/in/secret*"},
        {
            "Sid": "ListIn",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::b",
            "Condition": {"StringLike": {"s3:prefix": ["in/*"]}},
        },
    ),
)


@pytest.mark.parametrize(
    ("request_", "sid"),
    [
        (Request("s3:GetObject", "arn:aws:s3:::b/in/x.dat"), "Read"),
        (Request("S3:getobject", "arn:aws:s3:::b/in/x.dat"), "Read"),  # actions are case-insensitive
        (Request("s3:GetObject", "arn:aws:s3:::b/IN/x.dat"), None),  # resources are not
        (Request("s3:GetObject", "arn:aws:s3:::b/out/x.dat"), None),
        (Request("s3:GetObject", "arn:aws:s3:::b/in/secret.dat"), None),  # an explicit Deny wins
        (Request("s3:PutObject", "arn:aws:s3:::b/a/x.dat.report.json"), "Reports"),
        (Request("s3:PutObject", "arn:aws:s3:::b/a/x.dat"), None),
        (Request("s3:DeleteObject", "arn:aws:s3:::b/in/x.dat"), None),
        (Request("s3:ListBucket", "arn:aws:s3:::b", (("s3:prefix", "in/x"),)), "ListIn"),
        (Request("s3:ListBucket", "arn:aws:s3:::b", (("s3:prefix", "out/"),)), None),
        (Request("s3:ListBucket", "arn:aws:s3:::b"), None),  # a condition key the request lacks: no match
    ],
)
def test_policy_evaluation(request_: Request, sid: str | None) -> None:
    assert POLICY.allowing(request_) == sid


def test_an_unemulated_condition_operator_fails_loudly() -> None:
    odd = Policy("R", ({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": {"IpAddress": {}}},))
    with pytest.raises(NotImplementedError, match="IpAddress"):
        odd.allowing(Request("s3:GetObject", "arn:aws:s3:::b/k"))


def test_without_removes_one_statement_or_says_there_is_none() -> None:
    assert POLICY.without("Read").allowing(Request("s3:GetObject", "arn:aws:s3:::b/in/x")) is None
    with pytest.raises(KeyError, match="Nope"):
        POLICY.without("Nope")


def test_operations_map_to_actions_and_resources() -> None:
    assert requests_for("s3", "HeadObject", {"Bucket": "b", "Key": "k/x y+z"}) == [
        Request("s3:GetObject", "arn:aws:s3:::b/k/x y+z")
    ]
    assert requests_for(
        "s3", "CopyObject", {"Bucket": "d", "Key": "k2", "CopySource": {"Bucket": "s", "Key": "k1"}}
    ) == [
        Request("s3:GetObject", "arn:aws:s3:::s/k1"),
        Request("s3:PutObject", "arn:aws:s3:::d/k2"),
    ]
    assert requests_for("s3", "CopyObject", {"Bucket": "d", "Key": "k2", "CopySource": "s/k1?versionId=3"})[0] == (
        Request("s3:GetObject", "arn:aws:s3:::s/k1")
    )
    assert requests_for("s3", "ListObjectsV2", {"Bucket": "b", "Prefix": "p/"}) == [
        Request("s3:ListBucket", "arn:aws:s3:::b", (("s3:prefix", "p/"),))
    ]
    execution = "arn:aws:states:us-east-1:1:execution:m:n"
    assert requests_for("stepfunctions", "DescribeExecution", {"executionArn": execution}) == [
        Request("states:DescribeExecution", execution)
    ]


def test_an_operation_missing_from_the_table_fails_loudly() -> None:
    with pytest.raises(LookupError, match="s3:ListBuckets is not in"):
        requests_for("s3", "ListBuckets", {})


def test_enforcer_checks_known_keys_records_and_denies_with_names() -> None:
    enforcer = IamEnforcer()
    enforcer.register("AKIA1", Principal("fn-a", "arn:aws:iam::1:role/R", POLICY))
    enforcer.check("AKIA1", "s3", "GetObject", {"Bucket": "b", "Key": "in/x"})
    with pytest.raises(ClientError) as denied:
        enforcer.check("AKIA1", "s3", "PutObject", {"Bucket": "b", "Key": "in/x"})
    error = denied.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
    assert "fn-a (role R) is not allowed s3:PutObject on arn:aws:s3:::b/in/x" in error["Error"]["Message"]
    assert [c.statement for c in enforcer.calls] == ["Read", None]
    assert enforcer.denials == [Call("fn-a", "R", "PutObject", "s3:PutObject", "arn:aws:s3:::b/in/x", None)]
    enforcer.check("testing", "s3", "PutObject", {"Bucket": "b", "Key": "in/x"})  # the emulation's own key
    assert len(enforcer.calls) == 2
    assert enforcer.may("AKIA1", "HeadObject of a missing key", "s3:ListBucket", "arn:aws:s3:::b") is False
    assert enforcer.may("testing", "HeadObject of a missing key", "s3:ListBucket", "arn:aws:s3:::b") is None


def test_a_function_calling_with_foreign_credentials_is_refused() -> None:
    enforcer = IamEnforcer()
    enforcer.acting(Principal("fn-a", "arn:aws:iam::1:role/R", POLICY))
    try:
        with pytest.raises(ForeignCredentials, match="fn-a called s3:GetObject"):
            enforcer.check("testing", "s3", "GetObject", {"Bucket": "b", "Key": "in/x"})
    finally:
        enforcer.acting(None)


def test_grant_uses_count_calls_per_statement_and_action() -> None:
    calls = [Call("fn", "R", "GetObject", "s3:GetObject", "arn:aws:s3:::b/in/x", "Read")] * 2
    uses = {(u.sid, u.action): u.uses for u in grant_uses({"R": POLICY}, calls)}
    assert uses == {("Read", "s3:GetObject"): 2, ("Reports", "s3:PutObject"): 0, ("ListIn", "s3:ListBucket"): 0}
