"""``etl replay`` locally: a file in the error zone goes back through the unchanged pipeline once its cause is
fixed, its old report retired beside it; content already loaded ends SKIPPED, never loaded twice."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from etl.generate import generate
from tests.pipeline.conftest import Pipeline, notifications

DAY = dt.date(2024, 6, 1)


@pytest.fixture
def failed(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A good file whose load failed (the database refused it): FAILURE, in the error zone."""
    path = generate("transactions", DAY, rows=40, seed=5, out_dir=pipeline.src)
    with monkeypatch.context() as patch:
        import etl.db.load

        def refuse(*args, **kwargs):
            raise RuntimeError("database said no")

        patch.setattr(etl.db.load, "load", refuse)
        patch.setattr("etl.pipeline.steps.load_batches", refuse)
        result = pipeline.cli("run", "--json", path)
    assert result.exit_code == 1 and notifications(result.stdout)[0]["status"] == "FAILURE"
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
