"""A run killed (kill -9) or interrupted (SIGINT, SIGTERM) at exact points of a file's life: what it leaves
is consistent (the stage never shows rows the database does not have) and the rerun reconciles everything
(the file in raw taken over, no numbered copies, no temp files, the stage repaired, the file loaded once)."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from etl.generate import generate
from tests.pipeline.conftest import Pipeline, notifications
from tests.pipeline.expected import Table, execution_name

DAY1 = dt.date(2024, 3, 1)
NAME = "transactions_20240301.dat"
RAW = f"transactions/{NAME}"
STAGED = "transactions/business_date=2024-03-01/transactions_20240301.parquet"
ARCHIVED = [f"transactions/2024-03-01/{NAME}", f"transactions/2024-03-01/{NAME}.report.json"]


def paused(pipeline: Pipeline, point: str, *paths: Path) -> tuple[subprocess.Popen[str], Path]:
    """``etl run --json`` in a real process, stopped at ``point``; returns once it is there."""
    marker = pipeline.src / f"paused-{point}"
    run = pipeline.subprocess(point, marker, "run", "--json", *paths, module="tests.pipeline.paused_run")
    deadline = time.monotonic() + 180
    while not marker.exists():
        if run.poll() is not None or time.monotonic() > deadline:
            run.kill()
            raise AssertionError(f"never reached {point}: {run.communicate()}")
        time.sleep(0.05)
    return run, marker


def loaded_rows(pipeline: Pipeline) -> int:
    return pipeline.query("SELECT count(*) AS n FROM fintech.transactions")[0]["n"]


def assert_reconciled(pipeline: Pipeline, path: Path, status: str) -> None:
    """The rerun of ``path``: ``status``, loaded exactly once, every zone clean, the stage right."""
    rerun = pipeline.cli("run", "--json", path)
    assert rerun.exit_code == 0, rerun.output + rerun.stderr
    assert [n["status"] for n in notifications(rerun.stdout)] == [status]
    ledger = pipeline.ledger()
    assert [r["status"] for r in ledger if r["status"] == "LOADED"] == ["LOADED"]
    assert {r["status"] for r in ledger} <= {"LOADED", "SKIPPED"}
    expected = Table("transactions")
    expected.apply(path, pipeline.pan_key)
    assert loaded_rows(pipeline) == len(expected.rows)
    assert pipeline.files("landing") == pipeline.files("raw") == pipeline.files("error") == []  # hidden too
    assert pipeline.files("archive") == ARCHIVED
    assert pipeline.files("stage") == [STAGED]  # no temp file, published once
    staged = pq.read_table(pipeline.zone("stage") / STAGED)
    (loaded,) = [r for r in ledger if r["status"] == "LOADED"]
    assert staged.num_rows == loaded["rows_in"] > 0
    assert set(staged.column("execution_name").to_pylist()) == {execution_name("transactions", DAY1, path.read_bytes())}


@pytest.mark.parametrize("point", ["landing", "raw", "copy", "commit", "archive"])
def test_kill_9_at_each_point_then_the_rerun_reconciles(pipeline: Pipeline, point: str) -> None:
    path = generate("transactions", DAY1, rows=3000, seed=31, out_dir=pipeline.src)
    run, _ = paused(pipeline, point, path)
    run.send_signal(signal.SIGKILL)
    run.communicate(timeout=30)

    committed = point in ("commit", "archive")
    assert [r["status"] for r in pipeline.ledger()] == (["LOADED"] if committed else [])
    assert (loaded_rows(pipeline) > 0) == committed
    # the stage shows rows only once the database has them (published after the commit)
    assert (STAGED in pipeline.files("stage")) == (point == "archive")
    waiting = ("landing", NAME) if point == "landing" else ("raw", RAW)
    assert waiting[1] in pipeline.files(waiting[0])  # the dead run's copy
    if point == "copy":
        assert [f for f in pipeline.files("stage") if ".tmp-" in f]  # the held stage file of the dead run

    assert_reconciled(pipeline, path, "SKIPPED" if committed else "SUCCESS")


@pytest.mark.parametrize(("sig", "point"), [(signal.SIGTERM, "copy"), (signal.SIGINT, "copy"), (signal.SIGTERM, "raw")])
def test_a_signal_rolls_the_file_back_and_exits_with_one_line(pipeline: Pipeline, sig: int, point: str) -> None:
    path = generate("transactions", DAY1, rows=3000, seed=32, out_dir=pipeline.src)
    second = generate("transactions", dt.date(2024, 3, 2), rows=100, seed=33, out_dir=pipeline.src)
    run, _ = paused(pipeline, point, path, second)
    started = time.monotonic()
    run.send_signal(sig)
    stdout, stderr = run.communicate(timeout=60)
    assert time.monotonic() - started < 15  # promptly
    assert run.returncode == 128 + sig, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    name = signal.Signals(sig).name
    assert lines[0] == f"interrupted by {name}: {NAME} rolled back and left for a rerun; not started: {second.name}"
    assert notifications(stdout) == []
    assert pipeline.ledger() == [] and loaded_rows(pipeline) == 0  # rolled back, nothing recorded as done
    assert pipeline.files("stage") == []  # the held stage file dropped
    assert [f for f in pipeline.files("raw") if f.endswith(".dat")] == [RAW]  # unclaimed, for the rerun
    assert not [f for f in pipeline.files("raw") if f.endswith(".lock")]  # claim released
    assert_reconciled(pipeline, path, "SUCCESS")


def test_a_signal_after_the_commit_waits_until_the_file_is_settled(pipeline: Pipeline) -> None:
    """Past the commit nothing can roll back: the file is published, archived and notified, then the run stops."""
    path = generate("transactions", DAY1, rows=3000, seed=34, out_dir=pipeline.src)
    second = generate("transactions", dt.date(2024, 3, 2), rows=100, seed=35, out_dir=pipeline.src)
    run, _ = paused(pipeline, "commit", path, second)
    run.send_signal(signal.SIGTERM)
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.strip() == f"interrupted by SIGTERM: stopped after 1 file(s); not started: {second.name}"
    assert [n["status"] for n in notifications(stdout)] == ["SUCCESS"]
    assert pipeline.files("stage") == [STAGED] and pipeline.files("archive") == ARCHIVED
    assert pipeline.files("raw") == pipeline.files("landing") == []


def test_a_signal_while_blocked_in_the_database_exits_promptly(pipeline: Pipeline) -> None:
    """The load waits on the feed lock another session holds (a blocking libpq wait, not Python code): SIGTERM
    still stops the run at once, with one line, nothing loaded, the file left for the rerun."""
    import psycopg

    path = generate("transactions", DAY1, rows=3000, seed=36, out_dir=pipeline.src)
    with psycopg.connect(pipeline.db_url) as blocker:
        blocker.execute("SELECT pg_advisory_xact_lock(hashtext('fintech-etl.load'), hashtext('transactions'))")
        run = pipeline.subprocess("run", "--json", path)
        deadline = time.monotonic() + 120
        waiting = (
            "SELECT count(*) AS n FROM pg_stat_activity "
            "WHERE application_name = 'fintech-etl' AND wait_event = 'advisory'"
        )
        while pipeline.query(waiting)[0]["n"] == 0:
            assert run.poll() is None and time.monotonic() < deadline, run.communicate()
            time.sleep(0.1)
        started = time.monotonic()
        run.send_signal(signal.SIGTERM)
        stdout, stderr = run.communicate(timeout=60)
        assert time.monotonic() - started < 10
    assert run.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.strip() == f"interrupted by SIGTERM: {NAME} rolled back and left for a rerun"
    assert notifications(stdout) == [] and pipeline.ledger() == [] and loaded_rows(pipeline) == 0
    assert pipeline.files("stage") == []
    assert_reconciled(pipeline, path, "SUCCESS")
