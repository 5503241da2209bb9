"""The notebooks: their parameters, papermill runs with other parameters, failure reporting, nbval.

Each notebook kernel start costs seconds, so each notebook runs a handful of times in all: nbval-lax
(defaults), nbval against its golden copy, and one or two papermill runs with other parameters.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import psycopg
import pytest

from etl.notebooks import KERNEL, golden
from etl.notebooks.samples import SAMPLES_DIR, data_path
from tests.notebooks.conftest import GOLDEN_DIR, NOTEBOOKS, SANITIZE_FILE, run_pytest

NAMES = ("explore_stage", "profile_schema", "quality_history", "reprocess")


def execute(name: str, out: Path, **parameters) -> nbformat.NotebookNode:
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"),
        str(out),
        parameters=parameters,
        kernel_name=KERNEL,
        cwd=str(NOTEBOOKS),
        progress_bar=False,
    )
    return nbformat.read(out, as_version=4)


def text_of(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", "") + output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


@pytest.mark.parametrize("name", NAMES)
def test_one_tagged_parameters_cell_with_typed_commented_defaults(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    for line in tagged[0].source.splitlines():
        assert ": " in line.split("=")[0] and "  # " in line, f"untyped or uncommented parameter: {line}"
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    assert "def " not in code and "class " not in code  # cells read top to bottom; helpers belong in etl
    assert notebook.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("name", NAMES)
def test_papermill_help_lists_each_parameter_with_type_and_meaning(name: str) -> None:
    path = NOTEBOOKS / f"{name}.ipynb"
    shown = subprocess.run(
        [sys.executable, "-m", "papermill", "--help-notebook", str(path)], capture_output=True, text=True, check=True
    ).stdout
    for parameter, info in papermill.inspect_notebook(str(path)).items():
        assert info["inferred_type_name"] in ("str", "int", "bool")
        assert info["help"], f"{parameter} has no comment"
        assert f"{parameter}: {info['inferred_type_name']}" in shown and info["help"] in shown


def test_golden_copies_are_in_step_with_their_notebooks(tmp_path: Path) -> None:
    assert golden.out_of_step(GOLDEN_DIR) == []
    edited = nbformat.read(NOTEBOOKS / "reprocess.ipynb", as_version=4)
    edited.cells[-1].source += "\n"
    copy = tmp_path / "notebooks"
    copy.mkdir()
    nbformat.write(edited, copy / "reprocess.ipynb")
    shutil.copytree(GOLDEN_DIR, copy / "golden")
    assert golden.out_of_step(copy / "golden", [copy / "reprocess.ipynb"]) == ["reprocess.ipynb"]


def test_nbval_lax_runs_every_notebook(nb_env: dict[str, str]) -> None:
    code, output = run_pytest(["--nbval-lax", "--nbval-current-env", *(f"{n}.ipynb" for n in NAMES)], nb_env, NOTEBOOKS)
    assert code == 0, output
    assert "failed" not in output and output.count("PASSED") >= 3 * 4


def test_nbval_checks_golden_outputs_and_catches_a_changed_output(nb_env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "golden"
    shutil.copytree(GOLDEN_DIR, folder)
    tampered = nbformat.read(folder / "profile_schema.ipynb", as_version=4)
    cell = next(c for c in tampered.cells if c.cell_type == "code" and "today.rows" in c.source)
    cell.outputs[0]["text"] = cell.outputs[0]["text"].replace("200 rows", "201 rows")
    nbformat.write(tampered, folder / "tampered_profile_schema.ipynb")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    code, output = run_pytest(
        [
            "--nbval",
            "--nbval-current-env",
            "--nbval-sanitize-with",
            str(SANITIZE_FILE),
            "-c",
            "pytest.ini",
            str(folder),
        ],
        nb_env,
        tmp_path,
    )
    failed = [line for line in output.splitlines() if line.startswith("FAILED")]
    assert code == 1, output
    assert failed and all("tampered_profile_schema.ipynb" in line for line in failed), output
    assert "201 rows" in output  # nbval shows the stored output that no longer matches


def test_explore_with_other_parameters(tmp_path: Path, nb_env: dict[str, str]) -> None:
    """Another feed runs its own sections (the transactions ones stay silent), the days view holds only the days
    asked for, and the ``query`` parameter sees the whole stage with exact sums."""
    notebook = execute(
        "explore_stage",
        tmp_path / "out.ipynb",
        feed="account_summary",
        start="2024-03-02",
        end="2024-03-03",
        query="SELECT count(*) AS n, sum(current_balance) AS balance FROM account_summary",
    )
    text = text_of(notebook)
    assert "account_summary: 400 rows from 2024-03-02 to 2024-03-03" in text
    assert "2024-03-01" not in text  # pruned to the two days asked for
    assert "delinquency_bucket" in text and "debit_credit" not in text
    assert "600  2520491.38" in text  # all three sample days, to the cent


def test_profile_of_a_stage_partition_writes_json_and_html(tmp_path: Path, nb_env: dict[str, str]) -> None:
    out = tmp_path / "profiles"
    execute(
        "profile_schema",
        tmp_path / "out.ipynb",
        feed="transactions",
        business_date="2024-03-02",
        source="stage",
        output_dir=str(out),
    )
    written = json.loads((out / "transactions_20240302.profile.json").read_text())
    assert written["rows"] == 224 and written["previous_date"] == "2024-03-01"
    fields = {f["field"]: f for f in written["fields"]}
    assert fields["channel"]["allowed_ok"] == 1.0 and "card_number" not in fields
    assert (out / "transactions_20240302.profile.html").read_text().startswith("<!doctype html>")


def test_profile_flags_a_null_rate_that_moved_since_the_day_before(tmp_path: Path, nb_env: dict[str, str]) -> None:
    """The drift rules written in the notebook's cells flag a field an upstream system stopped filling."""
    raw = tmp_path / "raw"
    raw.mkdir()
    samples = data_path(SAMPLES_DIR)
    shutil.copy(samples / "account_summary_20240301.dat", raw)
    lines = (samples / "account_summary_20240302.dat").read_text().splitlines(keepends=True)
    blanked = [line[:85] + " " * 8 + line[93:] if line.startswith("D") else line for line in lines]  # 86-93
    (raw / "account_summary_20240302.dat").write_text("".join(blanked))
    notebook = execute("profile_schema", tmp_path / "out.ipynb", raw_dir=str(raw), output_dir=str(tmp_path / "p"))
    assert "flagged: payment_due_date" in text_of(notebook)
    drift = json.loads((tmp_path / "p" / "account_summary_20240302.profile.json").read_text())["drift"]
    assert [(d["field"], d["flag"]) for d in drift if d["flag"]] == [("payment_due_date", "null rate")]


def test_reprocess_applies_a_day_and_the_database_changes(tmp_path: Path, nb_env: dict[str, str]) -> None:
    notebook = execute(
        "reprocess", tmp_path / "out.ipynb", feed="account_summary", business_date="2024-03-02", dry_run=False
    )
    assert "SUCCESS" in text_of(notebook)
    with psycopg.connect(nb_env["ETL_DATABASE_URL"]) as conn:
        rows = conn.execute("SELECT count(*) FROM fintech.account_daily_summary").fetchone()[0]
        status = conn.execute("SELECT status FROM etl.file_ledger").fetchall()
    assert rows == 200 and status == [("LOADED",)]
    archive = Path(nb_env["ETL_HOME"]) / "archive" / "account_summary" / "2024-03-02"
    assert (archive / "account_summary_20240302.dat").is_file()


@pytest.mark.parametrize(
    ("parameters", "message"),
    [({"feed": "no_such_feed"}, "unknown feed"), ({"business_date": "2024-02-30"}, "is not a date")],
)
def test_a_bad_parameter_fails_the_notebook_visibly(
    parameters: dict, message: str, tmp_path: Path, nb_env: dict[str, str]
) -> None:
    with pytest.raises(papermill.PapermillExecutionError) as failure:
        execute("profile_schema", tmp_path / "out.ipynb", **parameters)
    assert message in str(failure.value)
    failed_cell = [
        c for c in nbformat.read(tmp_path / "out.ipynb", as_version=4).cells if "error" in str(c.get("outputs"))
    ]
    assert failed_cell  # the output notebook keeps the traceback where it happened


def test_quality_history_reads_existing_profiles_and_writes_missing_ones(
    tmp_path: Path, nb_env: dict[str, str]
) -> None:
    """A profile that profile_schema wrote is what the history shows for its day; a day without one gets its
    profile computed from the stage and written, so the next run reads it."""
    profiles = tmp_path / "profiles"
    execute(
        "profile_schema",
        tmp_path / "p.ipynb",
        feed="transactions",
        business_date="2024-03-02",
        source="stage",
        output_dir=str(profiles),
    )
    written = profiles / "transactions_20240302.profile.json"
    document = json.loads(written.read_text())
    for column in document["fields"]:
        if column["field"] == "merchant_name":
            column["null_rate"] = 0.5  # a value only the file can have given
    written.write_text(json.dumps(document))
    notebook = execute(
        "quality_history",
        tmp_path / "q.ipynb",
        feed="transactions",
        business_date="2024-03-03",
        history_days=3,
        output_dir=str(profiles),
    )
    text = text_of(notebook)
    assert "seeded: transactions_20240302.dat: SUCCESS" in text
    # 03-03 (0.004) against a window of 03-01 (0.01) and the 0.5 written above: median 0.255
    assert "merchant_name null rate 0.004 is below its trailing 2-day range 0.235..0.275 (median 0.255)" in text
    assert sorted(p.name for p in profiles.glob("*.json")) == [
        f"transactions_2024030{d}.profile.json" for d in (1, 2, 3)
    ]
    assert json.loads(written.read_text())["fields"] == document["fields"]  # read, never recomputed


def test_quality_history_of_account_summary(tmp_path: Path, nb_env: dict[str, str]) -> None:
    notebook = execute(
        "quality_history",
        tmp_path / "q.ipynb",
        feed="account_summary",
        business_date="2024-03-03",
        history_days=2,
        output_dir=str(tmp_path / "profiles"),
    )
    text = text_of(notebook)
    assert "seeded: account_summary_20240302.dat: SUCCESS" in text and "20240301" not in text.split("What each")[0]
    with psycopg.connect(nb_env["ETL_DATABASE_URL"]) as conn:
        days = conn.execute("SELECT DISTINCT business_date::text FROM etl.file_ledger ORDER BY 1").fetchall()
    assert days == [("2024-03-02",), ("2024-03-03",)]
