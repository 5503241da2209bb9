"""The deployed functions' database connections over verified TLS, the production code path: the emulated
stack (moto, IAM enforced) reaches a PostgreSQL that accepts TCP only over TLS (tests/tls.py), through the
RDS-format secret, with ``ETL_DB_SSLMODE=verify-full`` and the test CA as ``ETL_DB_SSLROOTCERT``, as the
template gives the functions verify-full and the RDS bundle. A wrong CA fails the file once, into the error
zone with the one-line reason: a certificate is not a moment to wait out, so nothing retries it."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import yaml

from etl.aws import sim as sim_module
from etl.aws.sim import function_name, simulation
from etl.db.limits import MARGIN_S
from etl.db.load import load as load_batches
from etl.package_data import samples_dir, state_machine
from etl.pipeline import steps
from tests.aws.test_pipeline_emulated import SUCCESS_PATH, keys
from tests.environment import EtlEnv
from tests.tls import TlsServer

SAMPLE = samples_dir() / "transactions_20240301.dat"
INSIDE_THE_LOAD = (
    "SELECT ssl, (SELECT setting FROM pg_settings WHERE name = 'statement_timeout'), "
    "(SELECT setting FROM pg_settings WHERE name = 'lock_timeout') FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
)


@pytest.fixture
def tls_env(tls_server: TlsServer, tls_db_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI's configuration: the TLS server by name, verified against the test CA; returns an admin URL."""
    EtlEnv(tmp_path / "home", tls_server.url(tls_db_name, host="localhost")).apply(monkeypatch)
    monkeypatch.setenv("ETL_DB_SSLMODE", "verify-full")
    monkeypatch.setenv("ETL_DB_SSLROOTCERT", str(tls_server.ca))
    return tls_server.admin_url(tls_db_name)


def ledger(admin_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(admin_url) as conn:
        return conn.execute("SELECT file_name, status FROM etl.file_ledger ORDER BY ledger_id").fetchall()


def test_a_file_is_loaded_through_verified_tls(
    tls_env: str, tls_server: TlsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole production path; inside the rds_write function's load (a hook after its COPY) the session is
    TLS and carries the lock timeout and a statement timeout from the function's remaining time (900 s)."""
    seen: list[dict] = []

    def observed_load(conn: psycopg.Connection, *args, **kwargs):
        def inside(c: psycopg.Connection) -> None:
            row = c.execute(INSIDE_THE_LOAD).fetchone()
            seen.append({"ssl": row[0], "statement_ms": int(row[1]), "lock_ms": int(row[2])})

        return load_batches(conn, *args, **kwargs, after_copy=inside)

    monkeypatch.setattr(steps, "load_batches", observed_load)
    with simulation() as sim:
        for module in ("validation", "rds_write", "move_file"):
            env = sim.environment(module)
            assert (env["ETL_DB_SSLMODE"], env["ETL_DB_SSLROOTCERT"]) == ("verify-full", str(tls_server.ca))
        run = sim.run_file(SAMPLE)
    assert (run.status, run.execution_status, run.states) == ("SUCCESS", "SUCCEEDED", SUCCESS_PATH), run.detail
    assert ledger(tls_env) == [(SAMPLE.name, "LOADED")]
    (inside,) = seen
    assert inside["ssl"] is True and inside["lock_ms"] == 30_000
    # loosely: the function's 900 s minus the margin, less the time the run took to get there (well under 2 min)
    assert (900 - MARGIN_S - 120) * 1000 < inside["statement_ms"] <= (900 - MARGIN_S) * 1000


def test_a_wrong_ca_fails_the_file_once_with_the_one_line(
    tls_env: str, tls_server: TlsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI reaches the database (right CA); the functions are deployed with the wrong one."""
    wrong = {"ETL_DB_SSLMODE": "verify-full", "ETL_DB_SSLROOTCERT": str(tls_server.wrong_ca)}
    monkeypatch.setattr(sim_module, "database_tls", lambda settings: wrong)
    with simulation() as sim:
        run = sim.run_file(SAMPLE)
        invocations = list(sim.aws.invocations)
        errored = keys(sim, "error")
    caught = ["ValidateFile", "MoveToError", "NotifyFailure", "FileFailed"]  # ValidateFile's Catch, no Retry
    assert (run.status, run.execution_status, run.states) == ("FAILURE", "FAILED", caught)
    assert invocations.count(function_name("validation")) == 1  # not retried
    assert errored[0] == "transactions/2024-03-01/transactions_20240301.dat"
    error = run.notification["error"]
    assert error.startswith("DatabaseTlsError: cannot connect to postgresql://postgres@localhost:")
    assert (
        f"over TLS (sslmode=verify-full): the server's certificate is not signed by a CA in {tls_server.wrong_ca}"
        in error
    )
    assert "\n" not in error
    assert ledger(tls_env) == []  # the database was never reached


def test_the_state_machine_never_retries_a_tls_failure() -> None:
    """The states whose functions connect to the database (MoveToError writes its FAILED ledger row best effort,
    catching its own failure) retry only TransientDatabaseError and Lambda's own service errors: a TLS failure
    is caught into the failure path on its first attempt."""
    states = yaml.safe_load(state_machine().read_text())["States"]
    for name in ("ValidateFile", "LoadToDatabase"):
        retried = {error for rule in states[name].get("Retry", []) for error in rule["ErrorEquals"]}
        assert not {"DatabaseTlsError", "ConfigError", "States.ALL", "States.TaskFailed"} & retried, name
        assert all(e.startswith("Lambda.") or e == "TransientDatabaseError" for e in retried), name
    assert any("TransientDatabaseError" in rule["ErrorEquals"] for rule in states["LoadToDatabase"]["Retry"])
