"""Ordered SQL migrations (``etl/sql/``, shipped in the package), applied once each and recorded.

Each file runs in its own transaction together with its bookkeeping row, so a failing migration leaves
nothing half-applied. A file changed after it was applied is refused: migrations are history, not state.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from importlib import resources

import psycopg

from etl.errors import EtlError

MIGRATIONS_PACKAGE = "etl"
MIGRATIONS_DIR = "sql"
# Serialises concurrent upgrades (two CLI processes starting on a fresh embedded database).
_LOCK_KEY = 0x6574_6C6D  # "etlm"

_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS etl;
CREATE TABLE IF NOT EXISTS etl.schema_migrations (
    name       text        PRIMARY KEY,
    checksum   char(64)    NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""


class MigrationError(EtlError, RuntimeError):
    """A migration cannot be applied safely (for example an applied file was edited)."""


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def available() -> list[Migration]:
    """The packaged migration files in name order (``0001_...sql``, ``0002_...sql``, ...)."""
    folder = resources.files(MIGRATIONS_PACKAGE) / MIGRATIONS_DIR
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [Migration(p.name, p.read_text(encoding="utf-8")) for p in files]


def _applied(conn: psycopg.Connection) -> dict[str, tuple[str, dt.datetime]]:
    rows = conn.execute("SELECT name, checksum, applied_at FROM etl.schema_migrations").fetchall()
    return {name: (checksum, applied_at) for name, checksum, applied_at in rows}


def _check_unchanged(migrations: list[Migration], applied: dict[str, tuple[str, dt.datetime]]) -> None:
    for m in migrations:
        if m.name in applied and applied[m.name][0] != m.checksum:
            raise MigrationError(
                f"migration {m.name} was changed after it was applied "
                f"(recorded checksum {applied[m.name][0][:12]}…, file {m.checksum[:12]}…); "
                "add a new migration instead of editing an applied one"
            )


def upgrade(conn: psycopg.Connection, migrations: list[Migration] | None = None) -> list[str]:
    """Apply pending migrations in order; return the names applied (empty when up to date)."""
    migrations = available() if migrations is None else migrations
    done: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(_BOOTSTRAP)
    for m in migrations:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            applied = _applied(conn)
            _check_unchanged(migrations, applied)
            if m.name in applied:
                continue
            conn.execute(m.sql)
            conn.execute("INSERT INTO etl.schema_migrations (name, checksum) VALUES (%s, %s)", (m.name, m.checksum))
            done.append(m.name)
    return done


def status(conn: psycopg.Connection, migrations: list[Migration] | None = None) -> list[tuple[str, dt.datetime | None]]:
    """Every known migration with its applied time (None when pending); raises on an edited file."""
    migrations = available() if migrations is None else migrations
    exists = conn.execute("SELECT to_regclass('etl.schema_migrations') IS NOT NULL").fetchone()
    applied = _applied(conn) if exists and exists[0] else {}
    _check_unchanged(migrations, applied)
    names = [m.name for m in migrations] + sorted(set(applied) - {m.name for m in migrations})
    return [(name, applied[name][1] if name in applied else None) for name in names]
