"""A load that dies half-way leaves nothing behind and can be retried; two runs of one file load it once."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import psycopg
import pytest

from etl.config import get_settings
from etl.generate import generate
from etl.io import claims
from etl.io.zones import LocalZone
from etl.pipeline import steps
from etl.pipeline.context import Context
from etl.pipeline.run import run_file
from tests.pipeline.conftest import Pipeline, notifications
from tests.pipeline.expected import Table, execution_name

DAY1 = dt.date(2024, 3, 1)
ROWS = 800


def kill_connection(db_url: str) -> Callable[[psycopg.Connection], None]:
    """An ``after_copy`` hook that terminates the loading backend from another connection."""

    def hook(conn: psycopg.Connection) -> None:
        with psycopg.connect(db_url, autocommit=True) as killer:
            killer.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))

    return hook


def raise_error(_db_url: str) -> Callable[[psycopg.Connection], None]:
    def hook(conn: psycopg.Connection) -> None:
        copied = conn.execute("SELECT count(*) FROM _etl_load_transactions").fetchone()
        assert copied == (ROWS,)  # the COPY did happen inside the transaction
        raise RuntimeError("injected failure after the COPY")

    return hook


def inject(monkeypatch: pytest.MonkeyPatch, hook: Callable[[psycopg.Connection], None]) -> list[int]:
    """Make the pipeline's next load run ``hook`` right after its COPY; returns a list counting the calls."""
    calls: list[int] = []
    real = steps.load_batches

    def load_with_hook(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs, after_copy=hook)

    monkeypatch.setattr(steps, "load_batches", load_with_hook)
    return calls


@pytest.mark.parametrize(
    ("make_hook", "symptom", "retry_from_error_zone"),
    [(kill_connection, "terminat", True), (raise_error, "injected failure after the COPY", False)],
)
def test_failure_after_copy_leaves_no_rows_and_retry_loads_the_file(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, make_hook, symptom: str, retry_from_error_zone: bool
) -> None:
    path = generate("transactions", DAY1, rows=ROWS, seed=21, out_dir=pipeline.src)
    calls = inject(monkeypatch, make_hook(pipeline.db_url))
    before = pipeline.checksum()

    result = pipeline.cli("run", path)
    assert calls == [1]
    assert result.exit_code == 1, result.output + result.stderr
    (message,) = notifications(result.stdout)
    name = execution_name("transactions", DAY1, path.read_bytes())
    assert (message["msg"], message["executionname"], message["status"]) == (
        "File moved to error: transactions",
        name,
        "FAILURE",
    )
    assert pipeline.checksum() == before  # no partial rows, no LOADED ledger row
    assert pipeline.query("SELECT count(*) AS n FROM fintech.transactions") == [{"n": 0}]
    (failed,) = pipeline.ledger()
    assert (failed["status"], failed["file_name"], failed["execution_name"]) == ("FAILED", path.name, name)
    assert symptom in failed["error"] and symptom in message["error"]
    in_error = pipeline.zone("error") / "transactions" / "2024-03-01" / path.name
    assert in_error.read_bytes() == path.read_bytes()
    assert json.loads(in_error.with_name(path.name + ".report.json").read_text())["valid"]
    assert pipeline.files("raw") == pipeline.files("landing") == []

    monkeypatch.undo()  # the environment too: set it again for the retry
    pipeline.apply(monkeypatch)
    retry = pipeline.cli("run", in_error if retry_from_error_zone else path)
    assert retry.exit_code == 0, retry.output + retry.stderr
    assert notifications(retry.stdout)[0]["status"] == "SUCCESS"
    assert [r["status"] for r in pipeline.ledger()] == ["FAILED", "LOADED"]
    expected = Table("transactions")
    counts = expected.apply(path, pipeline.pan_key)
    assert pipeline.ledger()[1]["rows_inserted"] == counts.inserted
    assert pipeline.query("SELECT count(*) AS n FROM fintech.transactions") == [{"n": len(expected.rows)}]
    assert (pipeline.zone("archive") / "transactions" / "2024-03-01" / path.name).read_bytes() == path.read_bytes()


BAD_URL = "postgresql://nobody:hunter2@127.0.0.1:1/none?connect_timeout=2"


@pytest.mark.parametrize(
    ("database", "said"),
    [
        ("unreachable", ("cannot use the database at postgresql://nobody@127.0.0.1:1/none",)),
        ("unmigrated", ("lacks migrations 0001", "etl db upgrade")),
    ],
)
def test_a_database_etl_cannot_use_is_a_configuration_error(
    pipeline: Pipeline, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, database: str, said
) -> None:
    """No usable database when ``etl run`` starts (none listening, or one without the migrations): exit 2 with
    one clear line that never prints the password, no notification, and no file has moved anywhere."""
    path = generate("account_summary", DAY1, rows=200, seed=22, out_dir=pipeline.src)
    url = BAD_URL if database == "unreachable" else request.getfixturevalue("empty_db_url")
    monkeypatch.setenv("ETL_DATABASE_URL", url)
    result = pipeline.cli("run", path)
    assert result.exit_code == 2, result.output + result.stderr
    assert all(part in result.stderr for part in said), result.stderr
    assert "hunter2" not in result.stdout + result.stderr  # the password is never printed
    assert notifications(result.stdout) == []
    assert all(pipeline.files(z) == [] for z in ("landing", "raw", "stage", "archive", "error"))
    assert path.exists()


def test_database_lost_mid_run_leaves_the_file_in_raw_for_the_rerun(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database goes away after the run started and stays away: no ledger row can be written, so the
    file is not failed into error but left in raw, said so, and the rerun takes it over from there."""
    path = generate("account_summary", DAY1, rows=200, seed=22, out_dir=pipeline.src)
    monkeypatch.setenv("ETL_DATABASE_URL", BAD_URL)
    with Context(get_settings()) as ctx:
        outcome = run_file(ctx, path)
    assert outcome.status == "FAILURE" and outcome.database_lost and "left in raw" in (outcome.error or "")
    assert outcome.message["msg"] == "File failed, not moved to error (left in raw): account_summary"
    assert "hunter2" not in json.dumps(outcome.message)
    assert pipeline.files("raw") == ["account_summary/account_summary_20240301.dat"]
    assert pipeline.files("error") == pipeline.files("landing") == []

    monkeypatch.setenv("ETL_DATABASE_URL", pipeline.db_url)
    retry = pipeline.cli("run", path)
    assert retry.exit_code == 0, retry.output + retry.stderr
    assert notifications(retry.stdout)[0]["status"] == "SUCCESS"
    assert [r["status"] for r in pipeline.ledger()] == ["LOADED"]
    assert pipeline.files("raw") == pipeline.files("landing") == []
    assert pipeline.files("archive") == [
        "account_summary/2024-03-01/account_summary_20240301.dat",
        "account_summary/2024-03-01/account_summary_20240301.dat.report.json",
    ]


def test_two_processes_on_one_file_load_it_once(pipeline: Pipeline) -> None:
    path = generate("transactions", DAY1, rows=2000, seed=23, out_dir=pipeline.src)
    runs = [pipeline.subprocess("run", "--json", path) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    codes = [run.returncode for run in runs]
    assert codes == [0, 0], outputs
    statuses = sorted(notifications(out)[0]["status"] for out, _ in outputs)
    assert statuses == ["SKIPPED", "SUCCESS"], outputs

    ledger = pipeline.ledger()
    assert sorted(r["status"] for r in ledger) == ["LOADED", "SKIPPED"]
    assert {r["file_name"] for r in ledger} == {path.name}
    expected = Table("transactions")
    expected.apply(path, pipeline.pan_key)
    assert pipeline.query("SELECT count(*) AS n, count(DISTINCT transaction_id) AS d FROM fintech.transactions") == [
        {"n": len(expected.rows), "d": len(expected.rows)}
    ]
    archived = sorted(p for p in pipeline.files("archive") if p.endswith(".dat"))
    assert archived == [
        "transactions/2024-03-01/transactions_20240301.1.dat",
        "transactions/2024-03-01/transactions_20240301.dat",
    ]
    assert pipeline.files("raw") == pipeline.files("landing") == pipeline.files("error") == []


def test_a_name_taken_in_landing_and_raw_keeps_the_file_name(pipeline: Pipeline) -> None:
    """Another run's copy of the same file in flight: ours goes beside it under its exact name (a suffixed
    name would no longer match the feed's pattern and be rejected as F002)."""
    path = generate("transactions", DAY1, rows=200, seed=24, out_dir=pipeline.src)
    in_flight = {"landing": "transactions_20240301.dat", "raw": "transactions/transactions_20240301.dat"}
    held = []
    for zone_name, key in in_flight.items():
        (pipeline.zone(zone_name) / key).parent.mkdir(parents=True)
        (pipeline.zone(zone_name) / key).write_bytes(path.read_bytes())
        held.append(claims.claim(LocalZone(pipeline.zone(zone_name)), key))  # as the live run holds them

    result = pipeline.cli("run", path)
    for claim in held:
        claim.release()
    assert result.exit_code == 0, result.output + result.stderr
    assert notifications(result.stdout)[0]["status"] == "SUCCESS"
    assert [(r["file_name"], r["status"]) for r in pipeline.ledger()] == [(path.name, "LOADED")]
    for zone_name, key in in_flight.items():
        assert pipeline.files(zone_name) == [key]  # the other run's files are left alone
