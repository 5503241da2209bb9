"""A failure after the load committed (archive zone full or unreachable) never un-says the load: SUCCESS,
one LOADED ledger row, the move retried with backoff, and when it still fails the file stays in raw, the
notification says so, and the next run archives it (a SKIPPED duplicate by content)."""

from __future__ import annotations

import datetime as dt
import errno
from pathlib import Path

import pytest

from etl.generate import generate
from etl.io.zones import LocalZone
from etl.pipeline import run as pipeline_run
from etl.pipeline import steps
from tests.pipeline.conftest import Pipeline, notifications

DAY1 = dt.date(2024, 3, 1)
NAME = "account_summary_20240301.dat"


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(pipeline_run, "sleep", slept.append)
    return slept


def full_archive(monkeypatch: pytest.MonkeyPatch, archive: Path, failures: int) -> list[str]:
    """Moves into the zone at ``archive`` fail with ENOSPC for the first ``failures`` tries (nothing is written)."""
    calls: list[str] = []
    real_move = steps.move

    def move(src, key: str, dst, dst_key: str, **kwargs):
        if isinstance(dst, LocalZone) and dst.root == archive.resolve():
            calls.append(dst_key)
            if len(calls) <= failures:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_move(src, key, dst, dst_key, **kwargs)

    monkeypatch.setattr(steps, "move", move)
    return calls


def test_archive_full_after_commit_is_success_and_the_rerun_archives(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, no_backoff: list[float]
) -> None:
    path = generate("account_summary", DAY1, rows=300, seed=41, out_dir=pipeline.src)
    calls = full_archive(monkeypatch, pipeline.zone("archive"), failures=10**6)
    result = pipeline.cli("run", "--json", path)
    assert result.exit_code == 0, result.output + result.stderr
    (message,) = notifications(result.stdout)
    assert (message["msg"], message["status"]) == (
        "File uploaded to RDS, not moved to archive (left in raw): account_summary",
        "SUCCESS",
    )
    assert message["rows"]["inserted"] == 300
    (warning,) = message["warnings"]
    assert "not moved to archive after 3 attempts" in warning and "No space left on device" in warning
    assert len(calls) == 3 and no_backoff == [0.5, 1.0]  # bounded retries with backoff
    assert [r["status"] for r in pipeline.ledger()] == ["LOADED"]  # never FAILED after the commit
    assert pipeline.query("SELECT count(*) AS n FROM fintech.account_daily_summary") == [{"n": 300}]
    assert pipeline.files("raw") == [f"account_summary/{NAME}", f"account_summary/{NAME}.report.json"]
    assert message["location"] == str(pipeline.zone("raw") / "account_summary" / NAME)
    assert pipeline.files("error") == pipeline.files("archive") == []
    assert len(pipeline.files("stage")) == 1  # the committed load's stage is published

    monkeypatch.undo()  # the archive has room again; the environment back for the rerun
    pipeline.apply(monkeypatch)
    rerun = pipeline.cli("run", "--json", path)
    assert rerun.exit_code == 0, rerun.output + rerun.stderr
    (again,) = notifications(rerun.stdout)
    assert (again["status"], again["msg"]) == ("SKIPPED", "File already loaded, moved to archive: account_summary")
    assert [r["status"] for r in pipeline.ledger()] == ["LOADED", "SKIPPED"]
    assert pipeline.files("raw") == pipeline.files("landing") == []
    assert pipeline.files("archive") == [
        f"account_summary/2024-03-01/{NAME}",
        f"account_summary/2024-03-01/{NAME}.report.json",
    ]


def test_a_move_that_fails_twice_is_retried_to_success(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, no_backoff: list[float]
) -> None:
    path = generate("account_summary", DAY1, rows=300, seed=42, out_dir=pipeline.src)
    calls = full_archive(monkeypatch, pipeline.zone("archive"), failures=2)
    result = pipeline.cli("run", "--json", path)
    assert result.exit_code == 0, result.output + result.stderr
    (message,) = notifications(result.stdout)
    assert message["msg"] == "File uploaded to RDS and moved to archive: account_summary"
    assert "warnings" not in message and len(no_backoff) == 2
    assert calls[:2] == [f"account_summary/2024-03-01/{NAME}"] * 2
    assert pipeline.files("raw") == [] and f"account_summary/2024-03-01/{NAME}" in pipeline.files("archive")


def test_error_zone_failing_keeps_the_failure_and_the_file_in_raw(pipeline: Pipeline, monkeypatch) -> None:
    """The same for a rejected file whose error zone is unusable: REJECTED stays REJECTED, the file in raw."""
    full_archive(monkeypatch, pipeline.zone("error"), failures=10**6)  # the error zone full, after the checks
    path = pipeline.src / NAME
    path.write_bytes(b"garbage\n")
    result = pipeline.cli("run", "--json", path)
    assert result.exit_code == 1, result.output + result.stderr
    (message,) = notifications(result.stdout)
    assert (message["status"], message["msg"]) == (
        "FAILURE",
        "File failed, not moved to error (left in raw): account_summary",
    )
    assert [r["status"] for r in pipeline.ledger()] == ["REJECTED"]
    assert f"account_summary/{NAME}" in pipeline.files("raw")
