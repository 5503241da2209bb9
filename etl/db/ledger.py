"""The file ledger ``etl.file_ledger``: one row per file the pipeline finished with.

It answers rule F004 (was this content already loaded?) and feeds ``etl status``. LOADED and SKIPPED rows
are written by the loader inside its transaction; REJECTED and FAILED rows by ``record_rejected`` on their
own, because the load they describe never committed.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

import psycopg
from psycopg.rows import dict_row


class LedgerStatus(StrEnum):
    LOADED = "LOADED"
    SKIPPED = "SKIPPED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"


COLUMNS = (
    "ledger_id",
    "feed",
    "file_name",
    "sha256",
    "business_date",
    "status",
    "rows_in",
    "rows_inserted",
    "rows_updated",
    "rows_deleted",
    "rows_unchanged",
    "rows_rejected",
    "execution_name",
    "started_at",
    "finished_at",
    "error",
)


def already_loaded(conn: psycopg.Connection, sha256: str) -> bool:
    """True when a file with this content has a LOADED ledger row (rule F004)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM etl.file_ledger WHERE sha256 = %s AND status = 'LOADED')", (sha256,)
    ).fetchone()
    return bool(row and row[0])


def insert_row(
    conn: psycopg.Connection,
    *,
    feed: str,
    file_name: str,
    sha256: str,
    business_date: dt.date | None,
    status: LedgerStatus,
    execution_name: str | None,
    started_at: dt.datetime | None = None,
    rows_in: int = 0,
    inserted: int = 0,
    updated: int = 0,
    deleted: int = 0,
    unchanged: int = 0,
    rejected: int = 0,
    error: str | None = None,
) -> int:
    """Write one ledger row in the caller's transaction; return its id."""
    row = conn.execute(
        """
        INSERT INTO etl.file_ledger (feed, file_name, sha256, business_date, status, rows_in, rows_inserted,
            rows_updated, rows_deleted, rows_unchanged, rows_rejected, execution_name, started_at,
            finished_at, error)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()), clock_timestamp(), %s)
        RETURNING ledger_id
        """,
        (
            feed,
            file_name,
            sha256,
            business_date,
            str(status),
            rows_in,
            inserted,
            updated,
            deleted,
            unchanged,
            rejected,
            execution_name,
            started_at,
            error,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def record_rejected(
    conn: psycopg.Connection,
    *,
    feed: str,
    file_name: str,
    sha256: str,
    business_date: dt.date | None,
    execution_name: str | None,
    status: LedgerStatus = LedgerStatus.REJECTED,
    rows_in: int = 0,
    rows_rejected: int = 0,
    error: str | None = None,
    started_at: dt.datetime | None = None,
) -> int:
    """Record a REJECTED or FAILED file in its own transaction (the failed load left nothing behind)."""
    if status not in (LedgerStatus.REJECTED, LedgerStatus.FAILED):
        raise ValueError(f"record_rejected writes REJECTED or FAILED rows, not {status}")
    with conn.transaction():
        return insert_row(
            conn,
            feed=feed,
            file_name=file_name,
            sha256=sha256,
            business_date=business_date,
            status=status,
            execution_name=execution_name,
            started_at=started_at,
            rows_in=rows_in,
            rejected=rows_rejected,
            error=error,
        )


def ledger_rows(conn: psycopg.Connection, limit: int = 50) -> list[dict[str, Any]]:
    """The most recent ledger rows, newest first, as plain dicts (column name -> value)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT ledger_id, feed, file_name, sha256, business_date, status, rows_in, rows_inserted, "
            "rows_updated, rows_deleted, rows_unchanged, rows_rejected, execution_name, started_at, "
            "finished_at, error FROM etl.file_ledger ORDER BY started_at DESC, ledger_id DESC LIMIT %s",
            (limit,),
        )
        return list(cur.fetchall())
