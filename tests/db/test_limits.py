"""The load's lock and statement timeouts (etl.db.limits) on a real PostgreSQL: set inside the load's
transaction from the deadline, gone after it, and what a blocked or overlong load ends as."""

from __future__ import annotations

import threading

import psycopg
import pytest

from etl.contract import Contract
from etl.db import ledger, load, statements
from etl.db.errors import TransientDatabaseError, transient_database_errors
from etl.db.limits import MARGIN_S, Deadline, LoadLimits, LoadTimeoutError
from tests.builders import batches, load_kwargs, staged_txn
from tests.db.tables import table_rows

ROWS = [staged_txn("T1"), staged_txn("T2"), staged_txn("T3")]


def _show(conn: psycopg.Connection, name: str) -> str:
    row = conn.execute(f"SHOW {name}").fetchone()  # a fixed setting name, never input
    assert row is not None
    return str(row[0])


def _ms(text: str) -> float:
    """``SHOW`` output (``4min``, ``239950ms``, ``1500ms``, ``30s``) in milliseconds."""
    units = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000}
    for unit in ("ms", "min", "h", "s"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    return float(text)


def test_the_load_sets_both_timeouts_from_the_deadline_for_its_transaction_only(
    conn: psycopg.Connection, transactions: Contract
) -> None:
    seen: dict[str, str] = {}

    def inside(c: psycopg.Connection) -> None:
        seen.update(statement=_show(c, "statement_timeout"), lock=_show(c, "lock_timeout"))

    limits = LoadLimits(lock_timeout_s=1.5, deadline=Deadline.after(300))
    result = load.load(
        conn, transactions, batches(transactions, ROWS), **load_kwargs("d1"), after_copy=inside, limits=limits
    )
    assert result.counts.inserted == 3
    assert _ms(seen["lock"]) == 1500
    # 300 s left minus the margin, less what the load took so far (loosely: it took well under 20 s)
    assert (300 - MARGIN_S - 20) * 1000 <= _ms(seen["statement"]) <= (300 - MARGIN_S) * 1000
    assert (_show(conn, "statement_timeout"), _show(conn, "lock_timeout")) == ("0", "0")  # SET LOCAL


def test_without_a_deadline_there_is_no_statement_timeout_but_a_lock_timeout(
    conn: psycopg.Connection, transactions: Contract
) -> None:
    seen: dict[str, str] = {}
    limits = LoadLimits(lock_timeout_s=30)
    after = lambda c: seen.update(statement=_show(c, "statement_timeout"), lock=_show(c, "lock_timeout"))  # noqa: E731
    load.load(conn, transactions, batches(transactions, ROWS), **load_kwargs("d1"), after_copy=after, limits=limits)
    assert seen == {"statement": "0", "lock": "30s"}


def test_a_load_blocked_by_another_sessions_lock_fails_fast_as_transient(
    conn: psycopg.Connection, transactions: Contract, db_url: str
) -> None:
    """Another session holds the target table (a DDL, a long transaction): after lock_timeout the load fails
    with 55P03, which the state machine retries, instead of waiting out the function's time."""
    limits = LoadLimits(lock_timeout_s=0.5, deadline=Deadline.after(600))
    with psycopg.connect(db_url) as blocker, blocker.transaction():
        blocker.execute("LOCK TABLE fintech.transactions IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(TransientDatabaseError, match=r"lock timeout.*55P03"), transient_database_errors():
            load.load(conn, transactions, batches(transactions, ROWS), **load_kwargs("d1"), limits=limits)
    assert table_rows(conn, transactions) == []
    assert conn.execute("SELECT count(*) FROM etl.file_ledger").fetchone() == (0,)
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_waiting_for_the_feeds_own_lock_is_not_cut_by_the_short_lock_timeout(
    conn: psycopg.Connection, transactions: Contract, db_url: str
) -> None:
    """Another load of the same feed holds the feed's advisory lock and commits after a while: this load waits
    for it (bounded by the deadline, not by the 0.2 s lock_timeout) and then loads."""
    limits = LoadLimits(lock_timeout_s=0.2, deadline=Deadline.after(600))
    holding, release = threading.Event(), threading.Event()

    def other_load() -> None:
        with psycopg.connect(db_url, autocommit=True) as other, other.transaction():
            other.execute(statements.lock_feed(), (transactions.feed,))
            holding.set()
            release.wait(30)

    worker = threading.Thread(target=other_load)
    worker.start()
    try:
        assert holding.wait(30)
        threading.Timer(1.5, release.set).start()  # the other load commits while this one waits
        result = load.load(conn, transactions, batches(transactions, ROWS), **load_kwargs("d1"), limits=limits)
    finally:
        release.set()
        worker.join(30)
    assert result.counts.inserted == 3


def test_waiting_for_the_feeds_lock_ends_with_the_budget_as_a_lock_timeout(
    conn: psycopg.Connection, transactions: Contract, db_url: str
) -> None:
    limits = LoadLimits(lock_timeout_s=30, deadline=Deadline.after(MARGIN_S + 1.5))
    with psycopg.connect(db_url, autocommit=True) as other, other.transaction():
        other.execute(statements.lock_feed(), (transactions.feed,))
        with pytest.raises(TransientDatabaseError, match="55P03"), transient_database_errors():
            load.load(conn, transactions, batches(transactions, ROWS), **load_kwargs("d1"), limits=limits)


def test_a_statement_past_the_budget_is_cancelled_and_rolled_back_as_a_load_timeout(
    conn: psycopg.Connection, transactions: Contract
) -> None:
    """The budget is 2 s; a statement of the load (here a hook right after the COPY) runs longer: the server
    cancels it, the transaction rolls back, and the error says the load needs more time (not transient)."""
    limits = LoadLimits(lock_timeout_s=30, deadline=Deadline.after(MARGIN_S + 2))
    slow = lambda c: c.execute("SELECT pg_sleep(30)")  # noqa: E731
    with pytest.raises(LoadTimeoutError, match="statement timeout") as caught, transient_database_errors():
        load.load(conn, transactions, batches(transactions, ROWS), **load_kwargs("d1"), after_copy=slow, limits=limits)
    assert not isinstance(caught.value, TransientDatabaseError) and "\n" not in str(caught.value)
    assert table_rows(conn, transactions) == []
    assert not ledger.already_loaded(conn, load_kwargs("d1")["sha256"])


def test_an_operators_cancel_stays_transient(conn: psycopg.Connection, transactions: Contract, db_url: str) -> None:
    """A cancel long before the deadline is not the load's timeout: it stays a retryable 57014."""
    limits = LoadLimits(lock_timeout_s=30, deadline=Deadline.after(600))

    def cancel(pid: int) -> None:
        with psycopg.connect(db_url) as operator:
            operator.execute("SELECT pg_cancel_backend(%s)", (pid,))

    def cancelled(c: psycopg.Connection) -> None:
        threading.Timer(0.5, cancel, (c.info.backend_pid,)).start()
        c.execute("SELECT pg_sleep(30)")

    with pytest.raises(TransientDatabaseError, match="57014"), transient_database_errors():
        load.load(
            conn, transactions, batches(transactions, ROWS), **load_kwargs("d1"), after_copy=cancelled, limits=limits
        )
