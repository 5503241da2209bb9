"""The embedded server: race-free start-up from several processes, a readable private bounded log under
ETL_HOME on every start path, no row value in that log, and a restart on demand after it died."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from etl.config import Settings
from etl.db import connect, embedded

REPO = Path(__file__).resolve().parents[2]
PAN = "4000056655665556"
PROCESSES, TRIALS = 3, 3


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """World-traversable (as root, pgserver runs PostgreSQL as its own user)."""
    path = Path(tempfile.mkdtemp(prefix="etl-embedded-"))
    path.chmod(0o755)
    yield path
    embedded.stop(path / "home")
    shutil.rmtree(path, ignore_errors=True)


def _postmaster_pid(home: Path) -> int:
    return int((embedded.pgdata_path(home) / "postmaster.pid").read_text().split()[0])


def _open_files(pid: int) -> list[str]:
    """Every file a process (the postmaster and its children) has open, as /proc shows it."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    names = []
    for proc in [pid, *map(int, children)]:
        folder = Path(f"/proc/{proc}/fd")
        for fd in folder.iterdir() if folder.exists() else []:
            try:
                names.append(os.readlink(fd))
            except OSError:
                continue
    return names


def _check_log(home: Path) -> list[Path]:
    folder = embedded.log_dir(home)
    logs = sorted(folder.glob("server-*.log"))
    assert logs, f"no server log in {folder}"
    assert folder.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in logs)
    opened = _open_files(_postmaster_pid(home))
    assert not [name for name in opened if name.endswith("(deleted)")], opened
    assert any(name.startswith(str(folder)) for name in opened), opened  # the collector writes here
    return logs


def test_concurrent_first_starts_share_one_configured_server(open_tmp: Path) -> None:
    """N processes on a fresh ETL_HOME at once, several trials: every one succeeds."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("ETL_DATABASE_URL", None)
    env.pop("ETL_DB_SECRET_ID", None)
    for trial in range(TRIALS):
        home = open_tmp / f"home{trial}"
        env["ETL_HOME"] = str(home)
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "etl", "db", "status"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for _ in range(PROCESSES)
        ]
        results = [(run.wait(timeout=240), *run.communicate()) for run in runs]
        try:
            assert [code for code, _, _ in results] == [0] * PROCESSES, results
            uri = embedded.server_uri(home)
            with psycopg.connect(uri) as conn:
                for name, value in embedded.PERFORMANCE_SETTINGS.items():
                    assert conn.execute("SELECT current_setting(%s)", (name,)).fetchone() == (value,)
            _check_log(home)
        finally:
            embedded.stop(home)


def test_server_log_is_private_bounded_and_holds_no_row_value(open_tmp: Path) -> None:
    home = open_tmp / "home"
    settings = Settings(home=home)
    with connect.connect(settings) as conn:
        conn.execute("CREATE TEMP TABLE t (n int, account_id varchar(10))")
        with pytest.raises(psycopg.errors.DataError), conn.cursor() as cur, cur.copy("COPY t FROM STDIN") as copy:
            copy.write(f"1\tACC{PAN}\n")  # too long: the server's CONTEXT line quotes the row
        with pytest.raises(psycopg.errors.DataError):
            conn.execute(f"SELECT '{PAN}x'::int")  # the failing statement's text holds the value
        shown = dict(conn.execute("SELECT name, setting FROM pg_settings WHERE name LIKE 'log%'").fetchall())
    assert shown["log_min_messages"] == "log" and shown["log_min_error_statement"] == "panic"
    assert shown["log_truncate_on_rotation"] == "on"  # bounded: a week of daily files, each overwritten
    embedded.stop(home)  # flushed: the shutdown lines come after the errors
    embedded.server_uri(home)
    text = "".join(p.read_text(errors="replace") for p in _check_log(home))
    assert "shut down" in text  # the log is really written ...
    assert PAN not in text and "ERROR" not in text and "CONTEXT" not in text  # ... and holds no row value
    start_log = embedded.pgdata_path(home) / embedded.START_LOG
    assert PAN not in start_log.read_text(errors="replace")

    # every restart path logs to the same place: stop + start (above), and a killed server started on demand
    os.kill(_postmaster_pid(home), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while embedded._running_uri(embedded.pgdata_path(home)) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    with connect.connect(settings) as conn:  # started again on demand
        assert conn.execute("SELECT 1").fetchone() == (1,)
    _check_log(home)
