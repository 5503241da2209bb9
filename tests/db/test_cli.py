"""``etl db upgrade|status`` and ``etl status`` against a real database given by ETL_DATABASE_URL."""

from __future__ import annotations

import json

import psycopg
import pytest
from typer.testing import CliRunner

from etl.cli.main import app
from etl.db import ledger, load
from tests.builders import batches, load_kwargs, staged_txn

runner = CliRunner()


def test_db_upgrade_then_status(empty_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETL_DATABASE_URL", empty_db_url)
    first = runner.invoke(app, ["db", "upgrade", "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert report["applied"][0] == "0001_schemas.sql" and "127.0.0.1" in report["database"]
    again = runner.invoke(app, ["db", "upgrade"])
    assert again.exit_code == 0 and "up to date" in again.output
    status = json.loads(runner.invoke(app, ["db", "status", "--json"]).output)
    assert all(m["applied_at"] for m in status["migrations"])
    assert "0003_file_ledger.sql" in runner.invoke(app, ["db", "status"]).output


def test_status_shows_the_ledger(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETL_DATABASE_URL", db_url)
    from etl.contract import load_contract

    contract = load_contract("transactions")
    with psycopg.connect(db_url, autocommit=True) as conn:
        load.load(conn, contract, batches(contract, [staged_txn("T1"), staged_txn("T2")]), **load_kwargs("day1"))
        ledger.record_rejected(
            conn,
            feed="transactions",
            file_name="bad.dat",
            sha256="f" * 64,
            business_date=None,
            execution_name="e",
            error="S002",
        )
    result = runner.invoke(app, ["status", "--json", "--limit", "5"])
    assert result.exit_code == 0, result.output
    files = json.loads(result.output)["files"]
    assert [(f["file_name"], f["status"], f["rows_inserted"]) for f in files] == [
        ("bad.dat", "REJECTED", 0),
        ("day1.dat", "LOADED", 2),
    ]
    table = runner.invoke(app, ["status", "-n", "1"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "bad.dat" in table.output and "day1.dat" not in table.output


def test_unreachable_database_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETL_DATABASE_URL", "postgresql://nobody:hunter2@127.0.0.1:1/none?connect_timeout=2")
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2
    assert "hunter2" not in result.output


def test_edited_migration_exits_2(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from etl.db import migrate

    real = migrate.available()
    edited = [*real[:-1], migrate.Migration(real[-1].name, real[-1].sql + "-- edited\n")]
    monkeypatch.setattr(migrate, "available", lambda: edited)
    monkeypatch.setenv("ETL_DATABASE_URL", db_url)
    for command in (["db", "upgrade"], ["db", "status"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2 and "changed after it was applied" in result.output
