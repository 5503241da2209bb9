"""Static checks CI runs: cfn-lint, statelint, moto's ASL parser, parliament and our least-privilege rules.

Each checker also gets a broken input, to prove it would catch one.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import parliament
import pytest
import yaml
from cfnlint.api import lint_all
from cfnlint.decode import decode_str
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException
from statelint.linter import Linter

from etl.aws.asl import load_definition, placeholders, render_definition
from etl.aws.iam_check import check_policy, check_policy_file
from etl.package_data import policies_dir, state_machine, template

TEMPLATE = template()  # etl/aws/template.yml, as the wheel ships it
POLICIES = sorted(policies_dir().glob("*.json"))
SAMPLE_ARNS = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "fintech-etl",
    "EtlStateMachine": "arn:aws:states:us-east-1:123456789012:stateMachine:fintech-etl",
    "EtlStateMachine.Name": "fintech-etl",
    "TransformGlueJob": "fintech-etl-transform",
    "ArtifactsBucket": "fintech-etl-artifacts",
    "NotificationTopic": "arn:aws:sns:us-east-1:123456789012:fintech-etl-notifications",
    "NotificationKey.Arn": "arn:aws:kms:us-east-1:123456789012:key/0e0b3a5e-1111-2222-3333-444455556666",
    "CardDataKey.Arn": "arn:aws:kms:us-east-1:123456789012:key/0e0b3a5e-1111-2222-3333-444455556667",
    "FailedTriggersKey.Arn": "arn:aws:kms:us-east-1:123456789012:key/0e0b3a5e-1111-2222-3333-444455556668",
    "FailedTriggersQueue.Arn": "arn:aws:sqs:us-east-1:123456789012:fintech-etl-failed-triggers",
    "DbSecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:fintech-etl/database-AbCdEf",
    "PanKeySecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:fintech-etl/pan-key-AbCdEf",
    "StageDatabaseName": "fintech_etl_stage",
    "AnalystWorkGroup": "fintech-etl-analysts",
    "DbMasterSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-0a1b2c3d-AbCdEf",
}


def sample(name: str) -> str:
    """The sample value of a policy placeholder: bucket ARNs and function ARNs follow their logical ids."""
    if name in SAMPLE_ARNS:
        return SAMPLE_ARNS[name]
    if name.endswith("Bucket.Arn"):
        return f"arn:aws:s3:::fintech-etl-{name.removesuffix('Bucket.Arn').lower()}"
    if name.endswith("Function.Arn"):
        return f"arn:aws:lambda:us-east-1:123456789012:function:fintech-etl-{name.removesuffix('Function.Arn')}"
    raise KeyError(f"no sample value for placeholder {name}")


def filled(document: dict[str, Any]) -> str:
    text = json.dumps(document)
    return re.sub(r"\$\{([^}]+)\}", lambda m: sample(m.group(1)), text)


def parsed_template() -> dict[str, Any]:
    decoded, matches = decode_str(TEMPLATE.read_text())
    assert not matches, matches
    return decoded


def cfn_lint(text: str) -> list[str]:
    """Errors and warnings, as the ``cfn-lint`` command reports by default (informational rules left out)."""
    return [str(match) for match in lint_all(text) if match.rule.id[0] in "EW"]


# -- cfn-lint ------------------------------------------------------------------------------------------------
def test_cfn_lint_passes_on_template() -> None:
    assert cfn_lint(TEMPLATE.read_text()) == []


def test_cfn_lint_catches_a_template_error() -> None:
    broken = TEMPLATE.read_text().replace("RoleArn: !GetAtt StepFunctionsRole.Arn", "RoleArn: !GetAtt NoSuchRole.Arn")
    assert broken != TEMPLATE.read_text()
    problems = cfn_lint(broken)
    assert any("NoSuchRole" in problem for problem in problems), problems


# -- statelint -----------------------------------------------------------------------------------------------
def test_statelint_passes_on_state_machine() -> None:
    assert Linter.validate(render_definition()) == []


def test_statelint_catches_a_missing_next_target() -> None:
    broken = load_definition()
    del broken["States"]["LoadToDatabase"]
    problems = Linter.validate(json.dumps(broken))
    assert any("LoadToDatabase" in problem for problem in problems), problems


# -- moto's ASL parser ---------------------------------------------------------------------------------------
def test_moto_parser_accepts_state_machine() -> None:
    program, _ = AmazonStateLanguageParser.parse(render_definition())
    assert program is not None


def test_moto_parser_catches_an_unknown_state_type() -> None:
    """moto's parser checks syntax only (a missing Next target passes it; statelint catches that)."""
    broken = load_definition()
    broken["States"]["ValidateFile"]["Type"] = "Taks"
    with pytest.raises(ASLParserException, match="Taks"):
        AmazonStateLanguageParser.parse(json.dumps(broken))


# -- the definition's own conventions ------------------------------------------------------------------------
def tasks() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in load_definition()["States"].items() if s["Type"] == "Task"}


def test_every_task_has_timeout_retry_and_catch_all() -> None:
    for name, state in tasks().items():
        assert state.get("TimeoutSeconds", 0) > 0, name
        assert state["Retry"] and all(r["MaxDelaySeconds"] > 0 and r["BackoffRate"] > 1 for r in state["Retry"])
        assert [c["ErrorEquals"] for c in state["Catch"]] == [["States.ALL"]], name


def short_task_timeouts(template: dict[str, Any], definition: dict[str, Any]) -> list[str]:
    """Tasks whose ``TimeoutSeconds`` does not exceed the timeout of the function or Glue job they run (in
    seconds; a Glue job's ``Timeout`` is in minutes)."""
    resources = template["Resources"]
    machine = next(r for r in resources.values() if r["Type"] == "AWS::StepFunctions::StateMachine")
    targets = machine["Properties"]["DefinitionSubstitutions"]
    short = []
    for name, state in definition["States"].items():
        if state["Type"] != "Task":
            continue
        placeholder = (state["Parameters"].get("FunctionName") or state["Parameters"]["JobName"])[2:-1]
        target = targets[placeholder]
        logical = target["Fn::GetAtt"][0] if "Fn::GetAtt" in target else target["Ref"]
        resource = resources[logical]
        limit = resource["Properties"]["Timeout"] * (60 if resource["Type"] == "AWS::Glue::Job" else 1)
        if state["TimeoutSeconds"] <= limit:
            short.append(f"{name}: {state['TimeoutSeconds']} s <= {logical} {limit} s")
    return short


def test_every_task_outlasts_the_function_or_job_it_runs() -> None:
    """A state that timed out while its function still ran would send the file to MoveToError under a load
    that may still commit: the function's own timeout (sized in docs/design.md §11) must end it first."""
    from etl.aws.iam_emulation import load_template

    template = load_template(TEMPLATE)
    definition = yaml.safe_load(state_machine().read_text(encoding="utf-8"))  # placeholders kept as ${Name}
    assert short_task_timeouts(template, definition) == []
    definition["States"]["LoadToDatabase"]["TimeoutSeconds"] = 900
    template["Resources"]["TransformGlueJob"]["Properties"]["Timeout"] = 10_000
    glue_state = definition["States"]["TransformWithGlue"]["TimeoutSeconds"]
    assert short_task_timeouts(template, definition) == [
        f"TransformWithGlue: {glue_state} s <= TransformGlueJob 600000 s",
        "LoadToDatabase: 900 s <= RdsWriteFunction 900 s",
    ]


def test_every_lambda_task_retries_lambda_service_errors() -> None:
    transient = {
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    }
    for name, state in tasks().items():
        if state["Resource"] == "arn:aws:states:::lambda:invoke":
            assert transient <= {e for r in state["Retry"] for e in r["ErrorEquals"]}, name
    assert "TransientDatabaseError" in {e for r in tasks()["LoadToDatabase"]["Retry"] for e in r["ErrorEquals"]}


def test_definition_is_jsonpath_only() -> None:
    text = json.dumps(load_definition())
    for forbidden in ('"QueryLanguage"', '"Assign"', '"Arguments": {"', '"Output"', "{%"):
        assert forbidden not in text.replace('"Arguments": {"--', ""), forbidden


def test_template_substitutes_exactly_the_definition_placeholders() -> None:
    machine = parsed_template()["Resources"]["EtlStateMachine"]["Properties"]
    assert set(machine["DefinitionSubstitutions"]) == placeholders(state_machine().read_text())


# -- IAM: parliament, our least-privilege rules, the template inlines the same documents -----------------
#: parliament wants EVERY resource type its database lists for an action matched, but AWS authorises
#: ``states:DescribeExecution`` on a standard execution OR an express one. The machine is STANDARD: granting the
#: express format too would allow nothing that exists, so only that one requirement is set aside.
PARLIAMENT_ALTERNATIVES = {("states:DescribeExecution", "arn:*:states:*:*:express:*:*:*")}


def parliament_findings(document: str) -> list[tuple[str, Any]]:
    found = []
    for finding in parliament.analyze_policy_string(document).findings:
        detail = finding.detail
        if finding.issue == "RESOURCE_MISMATCH":
            detail = [d for d in detail if (d["action"], d["required_format"]) not in PARLIAMENT_ALTERNATIVES]
            if not detail:
                continue
        found.append((finding.issue, detail))
    return found


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
def test_parliament_finds_nothing(path: Path) -> None:
    assert parliament_findings(filled(json.loads(path.read_text()))) == []


def test_parliament_still_catches_a_wrong_resource_for_describe_execution() -> None:
    wrong = {"Effect": "Allow", "Action": "states:DescribeExecution", "Resource": SAMPLE_ARNS["EtlStateMachine"]}
    findings = parliament_findings(json.dumps({"Version": "2012-10-17", "Statement": [wrong]}))
    assert [issue for issue, _ in findings] == ["RESOURCE_MISMATCH"]


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
def test_policies_are_least_privilege(path: Path) -> None:
    assert check_policy_file(path) == []


UNSCOPED_S3 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


def test_parliament_catches_unscoped_s3_star() -> None:
    findings = parliament.analyze_policy_string(json.dumps(UNSCOPED_S3)).findings
    assert "RESOURCE_STAR" in {f.issue for f in findings}


def test_least_privilege_check_catches_service_wildcards_and_unscoped_resources() -> None:
    assert check_policy(UNSCOPED_S3) == [
        "statement 0: wildcard action 's3:*'",
        "statement 0: unscoped resource '*' for s3:*",
    ]
    scoped_star = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}]}
    assert check_policy(scoped_star) == ["statement 0: wildcard action 's3:*'"]
    any_function = {
        "Statement": [
            {
                "Sid": "S",
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": "arn:aws:lambda:us-east-1:1:function:*",
            }
        ]
    }
    assert check_policy(any_function) == [
        "statement S: unscoped resource 'arn:aws:lambda:us-east-1:1:function:*' for lambda:InvokeFunction"
    ]
    not_action = {"Statement": [{"Effect": "Allow", "NotAction": "iam:PassRole", "Resource": "arn:aws:s3:::b"}]}
    assert check_policy(not_action) == ["statement 0: NotAction with Allow grants everything not listed"]
    eni = "arn:aws:ec2:us-east-1:123456789012:network-interface/*"
    vpc = {"Statement": [{"Effect": "Allow", "Action": "ec2:CreateNetworkInterface", "Resource": eni}]}
    assert check_policy(vpc) == []
    vpc["Statement"][0]["Resource"] = "*"
    assert check_policy(vpc) == ["statement 0: unscoped resource '*' for ec2:CreateNetworkInterface"]
    describe = {"Statement": [{"Effect": "Allow", "Action": "ec2:DescribeSubnets", "Resource": "*"}]}
    assert check_policy(describe) == []


def unsub(value: Any) -> Any:
    """The template's policy with ``Fn::Sub`` strings back to their placeholder text."""
    if isinstance(value, dict):
        if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            return value["Fn::Sub"]
        return {key: unsub(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unsub(item) for item in value]
    return value


def test_template_inlines_exactly_the_policy_documents() -> None:
    roles = {
        name: resource
        for name, resource in parsed_template()["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
    }
    used = {}
    for name, role in roles.items():
        (policy,) = role["Properties"]["Policies"]
        path = TEMPLATE.parent / role["Metadata"]["PolicyDocument"]  # relative to the template
        used[path.name] = name
        assert unsub(copy.deepcopy(dict(policy["PolicyDocument"]))) == json.loads(path.read_text()), name
    assert sorted(used) == [p.name for p in POLICIES]  # every document is used, by exactly one role


def test_no_yaml_aliases_in_definition() -> None:
    """CloudFormation reads the YAML from S3; keep it plain (no anchors or aliases)."""
    events = yaml.parse(state_machine().read_text())
    assert not any(isinstance(e, yaml.AliasEvent) for e in events)
