"""IaC scan of ``etl/aws/template.yml``: checkov (CloudFormation framework) and cfn-lint's informational checks.

Every finding is fixed in the template or suppressed there with its reason (checkov: ``Metadata: checkov:
skip: [{id, comment}]`` on the resource; cfn-lint: ``Metadata: cfn-lint: config: ignore_checks``), so both
scans are clean. A suppression that no longer matches a finding fails too: stale reasons do not pile up.

checkov pins boto3, botocore and packaging far below this project's (checkov 3.3.30: boto3==1.35.49,
packaging<24), so it cannot share the dev environment: it runs from its own virtual environment,
``.venv-checkov`` (``CHECKOV`` overrides the executable), which this module creates when it is missing.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from etl.aws.iam_emulation import load_template
from etl.package_data import template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = template()
CHECKOV_VERSION = "3.3.30"
CHECKOV_VENV = ROOT / ".venv-checkov"


@pytest.fixture(scope="module")
def checkov() -> str:
    """The checkov executable: ``$CHECKOV``, or ``.venv-checkov`` (created with the pinned version if absent)."""
    if os.environ.get("CHECKOV"):
        return os.environ["CHECKOV"]
    executable = CHECKOV_VENV / "bin" / "checkov"
    if not executable.exists():
        subprocess.run([sys.executable, "-m", "venv", str(CHECKOV_VENV)], check=True)
        pip = [str(CHECKOV_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, f"checkov=={CHECKOV_VERSION}"], check=True)
    version = subprocess.run([str(executable), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == CHECKOV_VERSION, version.stdout
    return str(executable)


def scan(checkov: str, template: Path) -> dict[str, Any]:
    """checkov's JSON report of one CloudFormation template (``failed_checks``, ``skipped_checks``)."""
    done = subprocess.run(
        [checkov, "-f", str(template), "--framework", "cloudformation", "-o", "json", "--compact"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]
    report = json.loads(done.stdout) if done.stdout.strip() else {}
    results = report.get("results", {}) if isinstance(report, dict) else {}
    return {"failed": results.get("failed_checks", []), "skipped": results.get("skipped_checks", [])}


def suppressions(template: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(resource, check id) → comment of every checkov skip in the template."""
    found = {}
    for name, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            found[(name, skip["id"])] = skip.get("comment", "")
    return found


def test_checkov_finds_nothing_unjustified(checkov: str) -> None:
    report = scan(checkov, TEMPLATE)
    failed = [(f["check_id"], f["resource"], f["check_name"]) for f in report["failed"]]
    assert failed == [], "fix these in template.yml or suppress each with its reason:\n" + "\n".join(map(str, failed))
    skips = suppressions(load_template(TEMPLATE))
    assert skips and all(len(reason) >= 20 for reason in skips.values()), "every suppression says why"
    applied = {(s["resource"].split(".")[-1], s["check_id"]) for s in report["skipped"]}
    assert set(skips) == applied, f"suppressions matching no finding: {sorted(set(skips) - applied)}"


def test_checkov_reports_a_finding_once_its_suppression_is_removed(checkov: str, tmp_path: Path) -> None:
    """The scan really runs: without the Glue job's suppression, its finding comes back."""
    text = TEMPLATE.read_text()
    marker = "  TransformGlueJob:\n    Type: AWS::Glue::Job\n    Metadata:\n"
    assert marker in text
    start = text.index(marker) + len("  TransformGlueJob:\n    Type: AWS::Glue::Job\n")
    end = text.index("    Properties:", start)
    broken = tmp_path / "template.yml"
    broken.write_text(text[:start] + text[end:])
    failed = {(f["check_id"], f["resource"].split(".")[-1]) for f in scan(checkov, broken)["failed"]}
    assert failed == {("CKV_AWS_195", "TransformGlueJob")}


def cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--include-checks", "I", "--", str(path)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_cfn_lint_with_informational_checks_is_clean() -> None:
    done = cfn_lint(TEMPLATE)
    assert (done.returncode, done.stdout) == (0, ""), done.stdout


def test_cfn_lint_informational_checks_really_run(tmp_path: Path) -> None:
    """A secret without DeletionPolicy is an informational finding (I3011), which the template avoids."""
    text = TEMPLATE.read_text()
    retain = "    DeletionPolicy: Retain\n    UpdateReplacePolicy: Retain\n"
    begin = text.index("  PanKeySecret:\n")
    at = text.index(retain, begin)
    assert at < text.index("    Properties:", begin)
    broken = tmp_path / "template.yml"
    broken.write_text(text[:at] + text[at + len(retain) :])
    done = cfn_lint(broken)
    assert done.returncode != 0 and "I3011" in done.stdout, done.stdout


def test_keys_and_secrets_are_retained_with_the_stack_gone() -> None:
    resources = load_template(TEMPLATE)["Resources"]
    kept = [
        name
        for name, r in resources.items()
        if r["Type"] in ("AWS::KMS::Key", "AWS::SecretsManager::Secret")
        and (r.get("DeletionPolicy"), r.get("UpdateReplacePolicy")) == ("Retain", "Retain")
    ]
    assert sorted(kept) == ["CardDataKey", "DbSecret", "FailedTriggersKey", "NotificationKey", "PanKeySecret"]


def test_buckets_holding_card_numbers_use_the_rotated_card_data_key() -> None:
    resources = load_template(TEMPLATE)["Resources"]
    assert resources["CardDataKey"]["Properties"]["EnableKeyRotation"] is True
    for bucket in ("LandingBucket", "RawBucket", "ArchiveBucket", "ErrorBucket"):
        [rule] = copy.deepcopy(resources[bucket]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"])
        default = rule["ServerSideEncryptionByDefault"]
        assert (default["SSEAlgorithm"], default["KMSMasterKeyID"]) == (
            "aws:kms",
            {"Fn::GetAtt": ["CardDataKey", "Arn"]},
        )
        assert rule["BucketKeyEnabled"] is True, bucket


def test_the_vpc_endpoints_cover_every_service_the_vpc_functions_call() -> None:
    """The functions in the VPC reach no service without an endpoint: their roles' grants (service needs of
    Lambda and of S3's KMS use aside) name only services the template gives an endpoint for."""
    from etl.aws.iam_emulation import SERVICE_STATEMENTS

    resources = load_template(TEMPLATE)["Resources"]
    in_vpc = {
        n: r for n, r in resources.items() if r["Type"] == "AWS::Lambda::Function" and "VpcConfig" in r["Properties"]
    }
    assert sorted(in_vpc) == ["MigrateFunction", "MoveFileFunction", "RdsWriteFunction", "ValidationFunction"]
    for function in in_vpc.values():
        assert function["Properties"]["VpcConfig"]["Fn::If"][1]["SecurityGroupIds"] == [
            {"Ref": "FunctionsSecurityGroup"}
        ]
    endpoints = {
        r["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[1]
        for r in resources.values()
        if r["Type"] == "AWS::EC2::VPCEndpoint"
    }
    called = set()
    for function in in_vpc.values():
        role = resources[function["Properties"]["Role"]["Fn::GetAtt"][0]]
        for statement in role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]:
            if statement["Sid"] not in SERVICE_STATEMENTS:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                called |= {action.split(":")[0] for action in actions}
    # Lambda itself writes the logs and manages the network interfaces (not through the function's VPC)
    called -= {"logs", "ec2"}
    assert called == {"s3", "secretsmanager"} and called <= endpoints
    conditions = {r.get("Condition") for r in resources.values() if r["Type"].startswith("AWS::EC2::")}
    assert conditions == {"InVpc", "CreateEndpoints", "AuroraIngress"}
