"""Least-privilege rules for the policy documents in ``roles_and_policies/`` (what parliament does not check).

A statement that allows must name its actions exactly (no ``*`` anywhere in an action, so neither ``"*"`` nor
``"s3:*"`` nor ``"s3:Get*"``), must not use ``NotAction``/``NotResource``, and must scope its resources: no
``"*"`` and no ARN whose resource part is a bare wildcard (``arn:aws:s3:::*``), except for the actions listed
below.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

#: Actions AWS authorises only on ``"*"`` (what a Lambda function in a VPC describes).
STAR_ONLY_ACTIONS = frozenset(
    {
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        # Step Functions' log delivery to CloudWatch Logs and X-Ray (the state machine role, AWS documents "*")
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        # Glue's job metrics (the Glue job role; scoped by the cloudwatch:namespace condition)
        "cloudwatch:PutMetricData",
    }
)

#: Actions on resources whose ids exist only at run time (the ENIs Lambda creates in the VPC): they may
#: name every resource of a type in the stack's account and region (``...:network-interface/*``), not ``"*"``.
RUNTIME_RESOURCE_ACTIONS = frozenset(
    {
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
    }
)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wild(segment: str) -> bool:
    return segment.strip("*?") == ""


def _unscoped(resource: str) -> bool:
    """``*``, or an ARN naming no particular resource: ``arn:aws:s3:::*``, ``...:function:*``, ``...:job/*``.

    ``arn:aws:s3:::bucket/*`` (one bucket's objects) and ``...:log-group:/aws-glue/*`` (a prefix) are scoped.
    """
    if _wild(resource):
        return True
    parts = resource.split(":", 5)
    if len(parts) < 6:
        return False
    service, segments = parts[2], re.split(r"[:/]", parts[5])
    if service == "s3" or len(segments) == 1:  # S3 ARNs and SNS/SQS ARNs start with the resource's own name
        return _wild(segments[0])
    return all(_wild(segment) for segment in segments[1:])  # the first segment is the resource type


def check_policy(document: dict[str, Any]) -> list[str]:
    """Problems in one policy document, as readable lines (empty when it is least-privilege)."""
    problems: list[str] = []
    for index, statement in enumerate(_as_list(document.get("Statement", []))):
        where = f"statement {statement.get('Sid', index)}"
        if statement.get("Effect") != "Allow":
            continue
        for key in ("NotAction", "NotResource"):
            if key in statement:
                problems.append(f"{where}: {key} with Allow grants everything not listed")
        actions = [str(a) for a in _as_list(statement.get("Action", []))]
        for action in actions:
            if "*" in action:
                problems.append(f"{where}: wildcard action {action!r}")
        for resource in map(str, _as_list(statement.get("Resource", []))):
            if _unscoped(resource):
                allowed = STAR_ONLY_ACTIONS if _wild(resource) else STAR_ONLY_ACTIONS | RUNTIME_RESOURCE_ACTIONS
                broad = [a for a in actions if a not in allowed]
                if broad:
                    problems.append(f"{where}: unscoped resource {resource!r} for {', '.join(broad or actions)}")
    return problems


def check_policy_file(path: str | Path) -> list[str]:
    """:func:`check_policy` on a JSON file, each problem prefixed with the file name."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    return [f"{Path(path).name}: {problem}" for problem in check_policy(document)]
