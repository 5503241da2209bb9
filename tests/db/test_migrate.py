"""Migrations: applied in order once, recorded, idempotent, and an edited applied file is refused."""

from __future__ import annotations

import psycopg
import pytest

from etl.db import migrate


def test_upgrade_applies_all_then_nothing(empty_db_url: str) -> None:
    names = [m.name for m in migrate.available()]
    assert names == sorted(names) and names[0].startswith("0001_")
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert [n for n, at in migrate.status(conn) if at is None] == names
        assert migrate.upgrade(conn) == names
        assert migrate.upgrade(conn) == []
        status = migrate.status(conn)
        assert [n for n, _ in status] == names and all(at is not None for _, at in status)
        tables = conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema IN ('fintech', 'etl') ORDER BY 1"
        ).fetchall()
        assert [t[0] for t in tables] == [
            "etl.file_ledger",
            "etl.schema_migrations",
            "fintech.account_daily_summary",
            "fintech.transactions",
        ]


def test_pending_migration_is_applied_later(empty_db_url: str) -> None:
    first, *rest = migrate.available()
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert migrate.upgrade(conn, [first]) == [first.name]
        status = dict(migrate.status(conn))
        assert status[first.name] is not None and all(status[m.name] is None for m in rest)
        assert migrate.upgrade(conn) == [m.name for m in rest]


def test_changed_applied_migration_is_refused(db_url: str) -> None:
    migrations = migrate.available()
    edited = [*migrations[:-1], migrate.Migration(migrations[-1].name, migrations[-1].sql + "\n-- edited\n")]
    with psycopg.connect(db_url, autocommit=True) as conn:
        with pytest.raises(migrate.MigrationError, match=migrations[-1].name):
            migrate.upgrade(conn, edited)
        with pytest.raises(migrate.MigrationError, match="changed after it was applied"):
            migrate.status(conn, edited)


def test_failing_migration_leaves_nothing_behind(empty_db_url: str) -> None:
    broken = [
        *migrate.available(),
        migrate.Migration("9999_broken.sql", "CREATE TABLE etl.x (a int); SELECT 1/0;"),
    ]
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero):
            migrate.upgrade(conn, broken)
        assert conn.execute("SELECT to_regclass('etl.x')").fetchone() == (None,)
        assert dict(migrate.status(conn, broken))["9999_broken.sql"] is None
