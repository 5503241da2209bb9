"""``etl replay`` locally: a file in the error zone goes back through the unchanged pipeline once its cause is
fixed, its old report retired beside it; content already loaded ends SKIPPED, never loaded twice."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg
import pytest

from etl.generate import generate
from tests.pipeline.conftest import Pipeline, notifications

DAY = dt.date(2024, 6, 1)


@pytest.fixture
def failed(pipeline: Pipeline) -> Path:
    """A good file whose load failed for a real reason (its table was renamed away): FAILURE, in the error zone.
    The cause is then fixed (the table is back)."""
    path = generate("transactions", DAY, rows=40, seed=5, out_dir=pipeline.src)
    with psycopg.connect(pipeline.db_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE fintech.transactions RENAME TO transactions_away")
        result = pipeline.cli("run", "--json", path)
        conn.execute("ALTER TABLE fintech.transactions_away RENAME TO transactions")
    assert result.exit_code == 1 and notifications(result.stdout)[0]["status"] == "FAILURE", result.output
    return path


def test_a_failed_file_replays_to_success_once(pipeline: Pipeline, failed: Path) -> None:
    [key] = [f for f in pipeline.files("error") if f.endswith(".dat")]
    result = pipeline.cli("replay", "--json", key)
    assert result.exit_code == 0, result.output
    [message] = notifications(result.stdout)
    assert message["status"] == "SUCCESS" and message["rows"]["rows_in"] == 40
    assert [row["status"] for row in pipeline.ledger()] == ["FAILED", "LOADED"]
    assert all(f.endswith(".replayed") for f in pipeline.files("error"))
    assert f"transactions/{DAY}/{failed.name}" in pipeline.files("archive")
    again = pipeline.cli("replay", key)
    assert again.exit_code == 2 and "no data file there to replay" in again.stderr


def test_replay_selects_by_feed_and_date_and_never_loads_twice(pipeline: Pipeline, failed: Path) -> None:
    copy = pipeline.src / "copy"
    copy.mkdir()
    (copy / failed.name).write_bytes(failed.read_bytes())
    assert pipeline.cli("run", copy / failed.name).exit_code == 0  # the same content loaded meanwhile
    result = pipeline.cli("replay", "--json", "--feed", "transactions", "--date", DAY.isoformat())
    assert result.exit_code == 0, result.output
    assert [m["status"] for m in notifications(result.stdout)] == ["SKIPPED"]
    assert [row["status"] for row in pipeline.ledger()] == ["FAILED", "LOADED", "SKIPPED"]


def test_a_rejected_file_still_broken_is_rejected_again_with_a_fresh_report(pipeline: Pipeline) -> None:
    path = generate("transactions", DAY, rows=30, seed=6, out_dir=pipeline.src, corrupt="T002")
    assert pipeline.cli("run", path).exit_code == 1
    [key] = [f for f in pipeline.files("error") if f.endswith(".dat")]
    result = pipeline.cli("replay", "--json", key)
    assert result.exit_code == 1
    assert notifications(result.stdout)[0]["errors"] == {"T002": 1}
    files = pipeline.files("error")
    assert sum(f.endswith(".report.json") for f in files) == 1 and sum(f.endswith(".replayed") for f in files) == 1


def test_usage_errors(pipeline: Pipeline) -> None:
    assert pipeline.cli("replay").exit_code == 2
    result = pipeline.cli("replay", "--date", "2024-06-01")
    assert result.exit_code == 2 and "--date needs --feed" in result.stderr


def test_a_numbered_copy_in_the_error_zone_replays_under_its_own_name(pipeline: Pipeline) -> None:
    """Archive and error number a taken name (``x.1.dat``); a replay puts the file back as ``x.dat``, the name
    that says its feed and date, so it is judged on its content (T002 again), not on its name (F002)."""
    path = generate("transactions", DAY, rows=30, seed=7, out_dir=pipeline.src, corrupt="T002")
    assert pipeline.cli("run", path).exit_code == 1 and pipeline.cli("run", path).exit_code == 1
    numbered = f"transactions/{DAY}/{path.stem}.1.dat"
    assert numbered in pipeline.files("error")
    result = pipeline.cli("replay", "--json", numbered)
    assert notifications(result.stdout)[0]["errors"] == {"T002": 1}


@pytest.mark.parametrize(
    ("name", "original"),
    [
        ("t_20240301.1.dat", "t_20240301.dat"),
        (f"t_20240301.{'ab' * 16}.dat", "t_20240301.dat"),
        ("t_20240301.dat", "t_20240301.dat"),
        ("t_20240301.1234.dat", "t_20240301.1234.dat"),
    ],
)
def test_original_name_undoes_the_unique_suffix(name: str, original: str) -> None:
    from etl.io.zones import original_name

    assert original_name(name) == original
