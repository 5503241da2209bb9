"""The file ledger ``etl.file_ledger``: one row per file the pipeline finished with.

It answers rule F004 (was this content already loaded?) and feeds ``etl status``. LOADED and SKIPPED rows
are written by the loader inside its transaction; REJECTED and FAILED rows by ``record_rejected`` on their
own, because the load they describe never committed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from etl.names import without_card_numbers


class LedgerStatus(StrEnum):
    LOADED = "LOADED"
    SKIPPED = "SKIPPED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class RowCounts:
    """What happened to every detail record of one file; ``accounted`` is the identity every row keeps.

    rows_in = inserted + updated + deleted + unchanged + not_found + superseded + skipped + rejected, where
    ``not_found`` is a delete of a key the table does not have, ``superseded`` an earlier row of a key that
    comes again later in the same file (the last one wins), ``skipped`` the rows of a file whose content was
    already loaded (SKIPPED), ``rejected`` the records left out under the reject threshold. The ledger column
    of each count is ``rows_<name>`` (``rows_in`` itself); the notification's ``rows`` uses the bare names.
    """

    rows_in: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    not_found: int = 0
    superseded: int = 0
    skipped: int = 0
    rejected: int = 0

    @property
    def accounted(self) -> bool:
        return self.rows_in == sum(getattr(self, f.name) for f in fields(self) if f.name != "rows_in")

    def notification(self) -> dict[str, int]:
        """The notification's ``rows``: every count, under the ledger's names less ``rows_``."""
        return asdict(self)

    def ledger_values(self) -> dict[str, int]:
        """Ledger column -> value."""
        return {name if name == "rows_in" else f"rows_{name}": value for name, value in asdict(self).items()}

    @classmethod
    def of_ledger(cls, row: dict[str, Any]) -> RowCounts:
        return cls(**{f.name: int(row[f.name if f.name == "rows_in" else f"rows_{f.name}"]) for f in fields(cls)})


COUNT_COLUMNS = tuple(RowCounts().ledger_values())

COLUMNS = (
    "ledger_id",
    "feed",
    "file_name",
    "sha256",
    "business_date",
    "status",
    *COUNT_COLUMNS,
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
    counts: RowCounts | None = None,
    error: str | None = None,
) -> int:
    """Write one ledger row in the caller's transaction; return its id.

    The name and the error text are the caller's, already shown through ``etl.names``; a card number in either
    (an error quoting a path, say) is masked here once more, the one place every row is written."""
    values = (counts or RowCounts()).ledger_values()
    file_name, error = without_card_numbers(file_name), None if error is None else without_card_numbers(error)
    query = sql.SQL(
        "INSERT INTO etl.file_ledger (feed, file_name, sha256, business_date, status, {counts}, execution_name, "
        "started_at, finished_at, error) VALUES (%s, %s, %s, %s, %s, {slots}, %s, coalesce(%s, now()), "
        "clock_timestamp(), %s) RETURNING ledger_id"
    ).format(
        counts=sql.SQL(", ").join(map(sql.Identifier, values)),
        slots=sql.SQL(", ").join(sql.Placeholder() for _ in values),
    )
    row = conn.execute(
        query,
        (feed, file_name, sha256, business_date, str(status), *values.values(), execution_name, started_at, error),
    ).fetchone()
    assert row is not None
    return int(row[0])


def set_counts(conn: psycopg.Connection, ledger_id: int, counts: RowCounts) -> None:
    """Correct the counts of a ledger row (a SKIPPED row written before the file's row count was known)."""
    values = counts.ledger_values()
    query = sql.SQL("UPDATE etl.file_ledger SET {} WHERE ledger_id = %s").format(
        sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(name)) for name in values)
    )
    with conn.transaction():
        conn.execute(query, (*values.values(), ledger_id))


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
            counts=RowCounts(rows_in=rows_in, rejected=rows_rejected),
            error=error,
        )


def ledger_rows(conn: psycopg.Connection, limit: int = 50) -> list[dict[str, Any]]:
    """The most recent ledger rows, newest first, as plain dicts (column name -> value)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT {} FROM etl.file_ledger ORDER BY started_at DESC, ledger_id DESC LIMIT %s").format(
                sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
            ),
            (limit,),
        )
        return list(cur.fetchall())
