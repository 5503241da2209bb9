"""``etl generate`` on the command line: prints the path, exit 2 with one line for bad input."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from etl.cli.main import app

runner = CliRunner()


def test_generate_prints_the_path_and_writes_the_file(tmp_path):
    result = runner.invoke(
        app, ["generate", "transactions", "--date", "2024-03-01", "--rows", "25", "--seed", "4", "-o", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    path = tmp_path / "transactions_20240301.dat"
    assert result.stdout.strip() == str(path)
    assert path.read_bytes().count(b"\nD|") == 25


def test_generate_corrupt_and_next_day(tmp_path):
    result = runner.invoke(
        app,
        [
            "generate",
            "account_summary",
            "--date",
            "2024-03-01",
            "--rows",
            "5",
            "--corrupt",
            "t002",
            "-o",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    runner.invoke(app, ["generate", "transactions", "--date", "2024-03-01", "--rows", "40", "-o", str(tmp_path)])
    result = runner.invoke(
        app,
        [
            "generate",
            "transactions",
            "--date",
            "2024-03-02",
            "--rows",
            "3",
            "--updates-of",
            "2024-03-01:40",
            "-o",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    actions = [
        line.split(b"|")[13]
        for line in (tmp_path / "transactions_20240302.dat").read_bytes().splitlines()
        if line.startswith(b"D|")
    ]
    assert actions.count(b"A") == 3 and actions.count(b"U") == 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "payments", "--date", "2024-03-01"], "unknown feed"),
        (["generate", "transactions", "--date", "2024-02-30"], "not a date"),
        (["generate", "transactions", "--date", "2024-03-01", "--corrupt", "F004"], "unknown rule"),
        (["generate", "account_summary", "--date", "2024-03-01", "--corrupt", "R006"], "does not apply"),
        (["generate", "account_summary", "--date", "2024-03-01", "--updates-of", "2024-02-29"], "transactions only"),
        (["generate", "transactions", "--date", "2024-03-02", "--updates-of", "2024-03-01:x"], "DATE:ROWS"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, args, message):
    result = runner.invoke(app, [*args, "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_typer_rejects_negative_rows(tmp_path):
    result = runner.invoke(app, ["generate", "transactions", "--date", "2024-03-01", "--rows", "-1"])
    assert result.exit_code == 2
