"""Losing the database in the middle of ``etl run A B``: a connection that comes back (a terminated session,
an embedded server that restarts on demand) fails only A, retryably, and B loads; a database that stays
away stops the run with one line (exit 2), A left in raw for the rerun and B exactly where it was."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from etl.db import embedded, migrate
from etl.generate import generate
from etl.pipeline import context, steps
from tests import pg
from tests.pipeline.conftest import Pipeline, notifications

DAY1, DAY2 = dt.date(2024, 3, 1), dt.date(2024, 3, 2)
A, B = "transactions_20240301.dat", "transactions_20240302.dat"


def on_first_load(monkeypatch: pytest.MonkeyPatch, hook: Callable[[psycopg.Connection], None]) -> list[str]:
    """Run ``hook`` once, right after the first COPY that completes (a one-pass attempt that is not loadable
    stops before its COPY ends); returns the names of the files whose load was called."""
    loads: list[str] = []
    fired: list[bool] = []
    real = steps.load_batches

    def once(conn: psycopg.Connection) -> None:
        if not fired:
            fired.append(True)
            hook(conn)

    def load(*args, **kwargs):
        loads.append(kwargs["file_name"])
        return real(*args, **kwargs, after_copy=once)

    monkeypatch.setattr(steps, "load_batches", load)
    return loads


@pytest.fixture
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(context, "sleep", slept.append)
    return slept


@pytest.fixture
def own_cluster(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Iterator[pg.Cluster]:
    """A cluster of this test's own (it gets stopped), migrated, as ETL_DATABASE_URL."""
    cluster = pg.start_cluster()
    try:
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            migrate.upgrade(conn)
            conn.execute("CHECKPOINT")  # synchronous_commit is off in test clusters: make it survive a halt
        pipeline.db_url = cluster.url()
        pipeline.apply(monkeypatch)
        yield cluster
    finally:
        cluster.stop()


def test_database_that_stays_away_stops_the_run_and_leaves_the_rest_alone(
    pipeline: Pipeline, own_cluster: pg.Cluster, monkeypatch: pytest.MonkeyPatch, no_waiting: list[float]
) -> None:
    a = generate("transactions", DAY1, rows=500, seed=51, out_dir=pipeline.src)
    b = generate("transactions", DAY2, rows=500, seed=52, out_dir=pipeline.src)
    loads = on_first_load(monkeypatch, lambda _conn: own_cluster.halt())

    result = pipeline.cli("run", a, b)
    assert result.exit_code == 2, result.output + result.stderr
    assert set(loads) == {A}  # B never started
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: lost the database at postgresql://postgres@127.0.0.1:"), result.stderr
    assert lines[-1].endswith(f": {A} left in raw for a rerun; not started: {B}")
    assert "Traceback" not in result.stderr
    assert no_waiting == [1.0, 2.0]  # reconnecting was tried, with backoff, before giving up
    assert pipeline.files("raw") == [f"transactions/{A}", f"transactions/{A}.report.json"]
    assert pipeline.files("landing") == pipeline.files("error") == pipeline.files("archive") == []
    assert pipeline.files("stage") == []  # nothing staged for a load that did not commit

    own_cluster.resume()
    assert pipeline.ledger() == []  # nothing was recorded as done
    monkeypatch.undo()
    pipeline.apply(monkeypatch)  # own_cluster's URL
    rerun = pipeline.cli("run", "--json", a, b)
    assert rerun.exit_code == 0, rerun.output + rerun.stderr
    assert [n["status"] for n in notifications(rerun.stdout)] == ["SUCCESS", "SUCCESS"]
    assert [(r["file_name"], r["status"]) for r in pipeline.ledger()] == [(A, "LOADED"), (B, "LOADED")]
    assert pipeline.files("raw") == pipeline.files("landing") == []


def test_database_gone_between_two_files_stops_before_the_next(
    pipeline: Pipeline, own_cluster: pg.Cluster, monkeypatch: pytest.MonkeyPatch, no_waiting: list[float]
) -> None:
    a = generate("transactions", DAY1, rows=300, seed=57, out_dir=pipeline.src)
    b = generate("transactions", DAY2, rows=300, seed=58, out_dir=pipeline.src)
    real_finish = steps.finish

    def finish_then_halt(*args, **kwargs):
        where = real_finish(*args, **kwargs)
        own_cluster.halt()
        return where

    monkeypatch.setattr(steps, "finish", finish_then_halt)
    result = pipeline.cli("run", "--json", a, b)
    assert result.exit_code == 2, result.output + result.stderr
    assert [n["status"] for n in notifications(result.stdout)] == ["SUCCESS"]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: lost the database at postgresql://") and line.endswith(f"; not started: {B}")
    assert pipeline.files("landing") == pipeline.files("raw") == []  # B was not even landed
    assert b.exists()


def test_a_terminated_session_fails_only_that_file(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, no_waiting: list[float]
) -> None:
    a = generate("transactions", DAY1, rows=500, seed=53, out_dir=pipeline.src)
    b = generate("transactions", DAY2, rows=500, seed=54, out_dir=pipeline.src)

    def terminate(conn: psycopg.Connection) -> None:
        with psycopg.connect(pipeline.db_url, autocommit=True) as killer:
            killer.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))

    on_first_load(monkeypatch, terminate)
    result = pipeline.cli("run", "--json", a, b)
    assert result.exit_code == 1, result.output + result.stderr
    assert [n["status"] for n in notifications(result.stdout)] == ["FAILURE", "SUCCESS"]
    assert [(r["file_name"], r["status"]) for r in pipeline.ledger()] == [(A, "FAILED"), (B, "LOADED")]
    assert f"transactions/2024-03-01/{A}" in pipeline.files("error")  # retryable from there
    assert pipeline.files("raw") == []


@pytest.fixture
def embedded_home(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """ETL_HOME in a world-traversable folder (as root, pgserver runs PostgreSQL as its own user), no URL."""
    folder = Path(tempfile.mkdtemp(prefix="etl-lost-"))
    folder.chmod(0o755)
    home = folder / "home"
    pipeline.home, pipeline.db_url = home, None
    pipeline.apply(monkeypatch)
    try:
        yield home
    finally:
        embedded.stop(home)
        shutil.rmtree(folder, ignore_errors=True)


def test_the_embedded_server_dying_mid_run_is_restarted_for_the_next_file(
    pipeline: Pipeline, embedded_home: Path, monkeypatch: pytest.MonkeyPatch, no_waiting: list[float]
) -> None:
    a = generate("transactions", DAY1, rows=500, seed=55, out_dir=pipeline.src)
    b = generate("transactions", DAY2, rows=500, seed=56, out_dir=pipeline.src)
    pgdata = embedded.pgdata_path(embedded_home)

    def crash(_conn: psycopg.Connection) -> None:
        embedded._pgserver().pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=pgdata, user=embedded._system_user())

    on_first_load(monkeypatch, crash)
    result = pipeline.cli("run", "--json", a, b)
    assert result.exit_code == 1, result.output + result.stderr
    assert [n["status"] for n in notifications(result.stdout)] == ["FAILURE", "SUCCESS"]
    pipeline.db_url = embedded.server_uri(embedded_home)
    assert [(r["file_name"], r["status"]) for r in pipeline.ledger()] == [(A, "FAILED"), (B, "LOADED")]
    assert "ledger not written" not in result.stdout
    in_error = pipeline.zone("error") / "transactions" / "2024-03-01" / A
    assert in_error.exists() and pipeline.files("raw") == []

    monkeypatch.undo()
    replace(pipeline, home=embedded_home, db_url=None).apply(monkeypatch)  # the embedded server again
    retry = pipeline.cli("run", "--json", in_error)
    assert retry.exit_code == 0, retry.output + retry.stderr
    assert [r["status"] for r in pipeline.ledger()] == ["FAILED", "LOADED", "LOADED"]
