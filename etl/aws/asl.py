"""The Step Functions definition (``etl/aws/state_machine.yml``) as deployed: placeholders filled, YAML to JSON.

CloudFormation fills the ``${Name}`` placeholders textually (DefinitionSubstitutions) before the YAML is
parsed; :func:`render_definition` does the same, so local runs, linters and moto see what AWS sees.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from etl.package_data import state_machine

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z][A-Za-z0-9_:.]*)\}")

#: The Lambda functions the definition invokes, by placeholder, with their handler module in ``etl/aws/handlers/``.
LAMBDA_PLACEHOLDERS: dict[str, str] = {
    "ValidationFunctionArn": "validation",
    "TransformFunctionArn": "transform",
    "RdsWriteFunctionArn": "rds_write",
    "MoveFileFunctionArn": "move_file",
    "NotificationFunctionArn": "notification",
}
GLUE_PLACEHOLDER = "GlueJobName"


def placeholders(text: str) -> set[str]:
    """Names of the ``${...}`` placeholders in a definition text."""
    return set(_PLACEHOLDER.findall(text))


def substitute(text: str, substitutions: Mapping[str, str]) -> str:
    """Fill every placeholder; a missing one is an error naming it (AWS would reject the definition too)."""
    missing = placeholders(text) - set(substitutions)
    if missing:
        raise KeyError(f"no substitution for placeholder(s): {', '.join(sorted(missing))}")
    return _PLACEHOLDER.sub(lambda m: str(substitutions[m.group(1)]), text)


def sample_substitutions(
    *, account: str = "123456789012", region: str = "us-east-1", prefix: str = "fintech-etl"
) -> dict[str, str]:
    """Sample values: functions ``<prefix>-<handler module>``, the Glue job ``<prefix>-transform``."""
    subs = {
        name: f"arn:aws:lambda:{region}:{account}:function:{prefix}-{module.replace('_', '-')}"
        for name, module in LAMBDA_PLACEHOLDERS.items()
    }
    subs[GLUE_PLACEHOLDER] = f"{prefix}-transform"
    return subs


def load_definition(substitutions: Mapping[str, str] | None = None, path: str | Path | None = None) -> dict[str, Any]:
    """The definition (``etl/aws/state_machine.yml`` unless ``path``) as a dict, placeholders filled (sample
    values when ``substitutions`` is None)."""
    path = state_machine() if path is None else Path(path)
    text = path.read_text(encoding="utf-8")
    filled = substitute(text, sample_substitutions() if substitutions is None else substitutions)
    definition = yaml.safe_load(filled)
    if not isinstance(definition, dict):
        raise ValueError(f"{path}: a state machine definition must be a mapping")
    return definition


def render_definition(substitutions: Mapping[str, str] | None = None, path: str | Path | None = None) -> str:
    """The definition as the JSON text Step Functions (and moto) accept."""
    return json.dumps(load_definition(substitutions, path), indent=2)
