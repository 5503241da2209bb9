"""``etl sim`` from the command line: executed states in order, final status, exit codes."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from etl.cli.main import app
from etl.package_data import samples_dir
from tests.aws.test_pipeline_emulated import SUCCESS_PATH

SAMPLES = samples_dir()


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
