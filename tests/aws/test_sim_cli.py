"""``etl sim`` from the command line: executed states in order, final status, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etl.cli.main import app
from etl.package_data import samples_dir, template
from tests.aws.test_pipeline_emulated import SUCCESS_PATH

SAMPLES = samples_dir()


def without_statement(sid: str, target: Path, source: Path | None = None) -> Path:
    """A copy of ``source`` (the package's template) with the policy statement ``sid`` (unique in it) removed,
    as an operator who customised the template might deploy it."""
    lines = (source or template()).read_text().splitlines(keepends=True)
    (start,) = [i for i, line in enumerate(lines) if line.strip() == f'- Sid: "{sid}"']
    indent = lines[start].index("-")
    end = next(i for i in range(start + 1, len(lines)) if len(lines[i]) - len(lines[i].lstrip()) <= indent)
    target.write_text("".join(lines[:start] + lines[end:]))
    return target


def test_sim_json_shows_each_files_states_and_status(etl_env):
    files = [SAMPLES / "account_summary_20240303.dat", SAMPLES / "transactions_20240303.dat"]
    result = CliRunner().invoke(app, ["sim", *map(str, files), "--json"])
    assert result.exit_code == 0, result.output
    runs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["file"] for r in runs] == [f.name for f in files]
    for run in runs:
        assert run["status"] == "SUCCESS" and run["execution_status"] == "SUCCEEDED"
        assert run["states"] == SUCCESS_PATH
        assert run["notification"]["executionname"] == run["execution_name"]


def test_sim_text_output_and_exit_code_for_a_rejected_file(etl_env):
    result = CliRunner().invoke(app, ["sim", str(SAMPLES / "corrupt" / "account_summary_20240301.dat")])
    assert result.exit_code == 1, result.output
    assert "FAILURE" in result.stdout
    assert "ValidateFile → IsValid? → MoveToError → NotifyFailure → FileFailed" in result.stdout
    assert "File moved to error: account_summary" in result.stdout


def test_sim_missing_file_is_a_usage_error(etl_env, tmp_path):
    result = CliRunner().invoke(app, ["sim", str(tmp_path / "nope.dat")])
    assert result.exit_code == 2


def test_sim_deploys_the_template_it_is_given(etl_env, tmp_path):
    """``--template``: an operator's copy is what gets deployed and enforced; one grant short, the file fails
    with the one-line denial naming function, action and resource (and nothing else changes in the output)."""
    custom = without_statement("CopyIntoRawAndVerify", tmp_path / "my-template.yml")
    result = CliRunner().invoke(app, ["sim", str(SAMPLES / "transactions_20240303.dat"), "--template", str(custom)])
    assert result.exit_code == 1, result.output
    assert f"IAM as {custom} deploys it" in result.stderr
    denied = [line.strip() for line in result.stdout.splitlines() if "IAM denied:" in line]
    assert denied == [
        "IAM denied: fintech-etl-lz-to-raw (role LzToRawRole) is not allowed s3:GetObject on arn:aws:s3:::"
        "fintech-etl-raw/transactions/transactions_20240303.dat (by HeadObject): no statement of its policy allows it"
    ], result.stdout


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (None, "no such file"),
        ("Resources: [unclosed\n", "cannot deploy this template on the emulation: ParserError"),
        ("Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n", "cannot deploy this template on the emulation:"),
    ],
    ids=["missing", "not-yaml", "no-functions"],
)
def test_sim_template_it_cannot_deploy_is_one_line_exit_2(etl_env, tmp_path, text, says):
    """A file that is not there or not YAML is refused before anything starts; one the emulation cannot deploy
    (no functions, roles, job or state machine) once the deploy reads it (``--json``: no heading line)."""
    custom = tmp_path / "broken.yml"
    if text is not None:
        custom.write_text(text)
    args = ["sim", str(SAMPLES / "transactions_20240303.dat"), "--template", str(custom)]
    result = CliRunner().invoke(app, args if text is None or "unclosed" in text else [*args, "--json"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(custom) in lines[0] and says in lines[0], result.stderr
