"""The loader against a real PostgreSQL: counts, exact values, F004 skips, atomicity, concurrency."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import psycopg
import pytest

from etl.contract import Contract, TargetTable
from etl.db import ledger, load
from etl.db.ledger import LedgerStatus
from tests.builders import batches, load_kwargs, staged_summary, staged_txn
from tests.db.tables import table_rows


def run(conn: psycopg.Connection, contract: Contract, rows: list[dict], label: str, day: int = 1, **kw):
    return load.load(conn, contract, batches(contract, rows), **load_kwargs(label, day), **kw)


@pytest.mark.parametrize("conn", ["superuser", "etl-role"], indirect=True)
def test_day_one_inserts_everything_exactly(conn: psycopg.Connection, transactions: Contract) -> None:
    rows = [
        staged_txn("T1", amount="0.01"),
        staged_txn("T2", amount="9999999999.99", debit_credit="C", signed_amount=Decimal("9999999999.99")),
        staged_txn("T3", amount="123.45"),
    ]
    result = run(conn, transactions, rows, "day1")
    assert (
        result.status,
        result.counts.rows_in,
        result.counts.inserted,
        result.counts.updated,
        result.counts.deleted,
        result.counts.unchanged,
    ) == (LedgerStatus.LOADED, 3, 3, 0, 0, 0)
    stored = table_rows(conn, transactions)
    expected = [{k: v for k, v in r.items() if k != "action"} for r in rows]
    assert stored == expected  # every column, decimals to the cent, timestamps to the microsecond
    assert [r["amount"] for r in stored] == [Decimal("0.01"), Decimal("9999999999.99"), Decimal("123.45")]
    assert conn.execute("SHOW work_mem").fetchone() == ("4MB",)  # the load's SET LOCAL did not leak


# one file carries one lineage: rows re-sent unchanged by the day-2 file still carry the day-2 lineage
DAY2_LINEAGE = {
    "business_date": dt.date(2024, 3, 2),
    "source_file": "transactions_20240302.dat",
    "execution_name": "exec-2",
}


@pytest.mark.parametrize("conn", ["superuser", "etl-role"], indirect=True)
def test_day_two_updates_deletes_and_unchanged_are_exact(conn: psycopg.Connection, transactions: Contract) -> None:
    run(conn, transactions, [staged_txn("T1"), staged_txn("T2"), staged_txn("T3"), staged_txn("T4")], "day1")
    day2 = [
        staged_txn("T1", "U", day=2, amount="50.00", status="REVERSED"),  # changed -> updated
        staged_txn("T2", "U", **DAY2_LINEAGE),  # identical data, only the lineage differs -> unchanged
        staged_txn("T3", "A", **DAY2_LINEAGE),  # the same with an add
        staged_txn("T4", "D", day=2),  # deleted
        staged_txn("T5", "A", day=2, amount="7.00"),  # new -> inserted
        staged_txn("T9", "D", day=2),  # delete of an unknown key: not found
    ]
    result = run(conn, transactions, day2, "day2", day=2)
    counts = result.counts
    assert (counts.rows_in, counts.inserted, counts.updated, counts.deleted, counts.unchanged, counts.not_found) == (
        6,
        1,
        1,
        1,
        2,
        1,
    )
    assert result.counts.accounted
    stored = {r["transaction_id"]: r for r in table_rows(conn, transactions)}
    assert sorted(stored) == ["T1", "T2", "T3", "T5"]
    assert (stored["T1"]["amount"], stored["T1"]["signed_amount"], stored["T1"]["status"]) == (
        Decimal("50.00"),
        Decimal("-50.00"),
        "REVERSED",
    )
    assert stored["T1"]["source_file"] == "transactions_20240302.dat"
    assert stored["T3"]["source_file"] == "transactions_20240301.dat"  # unchanged rows keep their lineage
    assert stored["T5"]["amount"] == Decimal("7.00")


def test_same_file_again_is_skipped_and_changes_nothing(conn: psycopg.Connection, transactions: Contract) -> None:
    run(conn, transactions, [staged_txn("T1"), staged_txn("T2")], "day1")
    before = table_rows(conn, transactions)
    again = run(conn, transactions, [staged_txn("T1", amount="1.00"), staged_txn("T3")], "day1")
    assert again.status is LedgerStatus.SKIPPED and again.counts.inserted == again.counts.updated == 0
    # not told the file's size: nothing read, nothing counted
    assert (again.counts.rows_in, again.counts.skipped) == (0, 0)
    told = run(conn, transactions, [staged_txn("T1")], "day1", file_rows=7, rows_rejected=2)
    counts = told.counts
    assert (told.status, counts.rows_in, counts.skipped, counts.rejected) == (LedgerStatus.SKIPPED, 7, 5, 2)
    assert ledger.RowCounts.of_ledger(ledger.ledger_rows(conn, 1)[0]) == told.counts
    assert table_rows(conn, transactions) == before
    assert ledger.already_loaded(conn, load_kwargs("day1")["sha256"])
    assert [r["status"] for r in ledger.ledger_rows(conn, 10)] == ["SKIPPED", "SKIPPED", "LOADED"]


def test_ledger_row_records_the_counts(conn: psycopg.Connection, transactions: Contract) -> None:
    run(conn, transactions, [staged_txn("T1"), staged_txn("T2", "D")], "day1", rows_rejected=3)
    (row,) = ledger.ledger_rows(conn, 5)
    assert {
        k: row[k]
        for k in (
            "feed",
            "file_name",
            "status",
            "rows_in",
            "rows_inserted",
            "rows_deleted",
            "rows_not_found",
            "rows_rejected",
            "execution_name",
        )
    } == {
        "feed": "transactions",
        "file_name": "day1.dat",
        "status": "LOADED",
        "rows_in": 5,  # every record of the file: 2 loaded, 3 rejected under the threshold
        "rows_inserted": 1,
        "rows_deleted": 0,
        "rows_not_found": 1,  # T2's delete: no such key
        "rows_rejected": 3,
        "execution_name": "exec-1",
    }
    assert ledger.RowCounts.of_ledger(row).accounted
    assert row["finished_at"] >= row["started_at"]


@pytest.mark.parametrize("conn", ["superuser", "etl-role"], indirect=True)
def test_failure_after_copy_leaves_nothing_and_retry_succeeds(conn: psycopg.Connection, transactions: Contract) -> None:
    def boom(_: psycopg.Connection) -> None:
        raise RuntimeError("injected failure after COPY")

    with pytest.raises(RuntimeError, match="injected"):
        run(conn, transactions, [staged_txn("T1"), staged_txn("T2"), staged_txn("T3")], "day1", after_copy=boom)
    assert table_rows(conn, transactions) == [] and ledger.ledger_rows(conn, 5) == []
    assert not ledger.already_loaded(conn, load_kwargs("day1")["sha256"])
    assert run(conn, transactions, [staged_txn("T1"), staged_txn("T2"), staged_txn("T3")], "day1").counts.inserted == 3


def test_connection_killed_after_copy_leaves_nothing(db_url: str, transactions: Contract) -> None:
    def kill(victim: psycopg.Connection) -> None:
        with psycopg.connect(db_url, autocommit=True) as killer:
            killer.execute("SELECT pg_terminate_backend(%s)", (victim.info.backend_pid,))

    with psycopg.connect(db_url, autocommit=True) as victim, pytest.raises(psycopg.OperationalError):
        run(victim, transactions, [staged_txn("T1"), staged_txn("T2")], "day1", after_copy=kill)
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert table_rows(conn, transactions) == [] and ledger.ledger_rows(conn, 5) == []
        assert run(conn, transactions, [staged_txn("T1"), staged_txn("T2")], "day1").counts.inserted == 2


def test_concurrent_loads_of_one_file_load_it_once(db_url: str, transactions: Contract) -> None:
    """The first load holds the feed lock (paused after COPY) until the second is seen waiting on it."""
    rows = [staged_txn(f"T{i}") for i in range(5)]
    results: dict[str, load.LoadResult] = {}
    errors: list[BaseException] = []

    def wait_for_second(_: psycopg.Connection) -> None:
        with psycopg.connect(db_url, autocommit=True) as watcher:
            for _ in range(600):
                waiting = watcher.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                ).fetchone()
                if waiting and waiting[0]:
                    return
                threading.Event().wait(0.05)
        raise AssertionError("second load never waited on the feed lock")

    def worker(name: str, hook: load.Hook | None) -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as c:
                results[name] = run(c, transactions, rows, "same-file", after_copy=hook)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    first = threading.Thread(target=worker, args=("first", wait_for_second))
    first.start()
    with psycopg.connect(db_url, autocommit=True) as c:  # the first holds the lock before the second starts
        for _ in range(600):
            if c.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted").fetchone()[0]:
                break
            threading.Event().wait(0.05)
    second = threading.Thread(target=worker, args=("second", None))
    second.start()
    first.join(60)
    second.join(60)
    assert not errors
    assert (results["first"].status, results["second"].status) == (LedgerStatus.LOADED, LedgerStatus.SKIPPED)
    with psycopg.connect(db_url, autocommit=True) as c:
        assert len(table_rows(c, transactions)) == 5
        assert sorted(r["status"] for r in ledger.ledger_rows(c, 10)) == ["LOADED", "SKIPPED"]


def test_repeated_keys_in_a_file_last_row_wins(conn: psycopg.Connection, transactions: Contract) -> None:
    run(conn, transactions, [staged_txn("OLD")], "day1")
    rows = [
        staged_txn("K1", amount="1.00", **DAY2_LINEAGE),
        staged_txn("K1", amount="2.00", **DAY2_LINEAGE),  # last upsert wins
        staged_txn("K2", "D", day=2),
        staged_txn("K2", "A", day=2, amount="3.00"),  # delete then add: the add wins
        staged_txn("OLD", "U", day=2, amount="4.00"),
        staged_txn("OLD", "D", day=2),  # update then delete: deleted
    ]
    result = run(conn, transactions, rows, "day2", day=2)
    stored = {r["transaction_id"]: r["amount"] for r in table_rows(conn, transactions)}
    assert stored == {"K1": Decimal("2.00"), "K2": Decimal("3.00")}
    counts = result.counts
    assert (counts.rows_in, counts.inserted, counts.updated, counts.deleted, counts.unchanged, counts.superseded) == (
        6,
        2,
        0,
        1,
        0,
        3,  # K1's first row, K2's delete, OLD's update: each followed by a later row of its key
    )
    assert result.counts.accounted


def test_unique_keys_flag_trusts_the_caller_but_fails_safely(conn: psycopg.Connection, transactions: Contract) -> None:
    with pytest.raises(psycopg.errors.UniqueViolation):
        run(conn, transactions, [staged_txn("K1"), staged_txn("K1")], "dup", unique_keys=True)
    assert table_rows(conn, transactions) == []
    assert run(conn, transactions, [staged_txn("K1"), staged_txn("K2")], "ok", unique_keys=True).counts.inserted == 2


def test_empty_string_and_null_stay_apart(conn: psycopg.Connection, transactions: Contract) -> None:
    rows = [
        staged_txn("E1", merchant_name=""),
        staged_txn("E2", merchant_name=None, mcc=None),
        staged_txn("E3", merchant_name='quote " comma , pipe | new\nline'),
    ]
    run(conn, transactions, rows, "day1")
    stored = {r["transaction_id"]: (r["merchant_name"], r["mcc"]) for r in table_rows(conn, transactions)}
    assert stored == {
        "E1": ("", "5411"),
        "E2": (None, None),
        "E3": ('quote " comma , pipe | new\nline', "5411"),
    }


def test_feed_without_action_upserts_on_composite_key(conn: psycopg.Connection, account_summary: Contract) -> None:
    day1 = [staged_summary("000000000001"), staged_summary("000000000002", payment_due_date=None, utilization=None)]
    assert run(conn, account_summary, day1, "s1").counts.inserted == 2
    # a second file for the same day (sequence 02, corrections): one lineage for all of its rows
    lineage = {"source_file": "account_summary_20240301_02.dat", "execution_name": "other"}
    again = [
        staged_summary("000000000001", current_balance=Decimal("-0.01"), apr=Decimal("0.001"), **lineage),
        staged_summary("000000000002", payment_due_date=None, utilization=None, **lineage),
        staged_summary("000000000003", **lineage),
    ]
    result = run(conn, account_summary, again, "s2")
    counts = result.counts
    assert (counts.inserted, counts.updated, counts.unchanged, counts.deleted) == (1, 1, 1, 0)
    stored = {(r["account_id"], r["business_date"].day): r for r in table_rows(conn, account_summary)}
    assert sorted(stored) == [("000000000001", 1), ("000000000002", 1), ("000000000003", 1)]
    assert (stored[("000000000001", 1)]["current_balance"], stored[("000000000001", 1)]["apr"]) == (
        Decimal("-0.01"),
        Decimal("0.001"),
    )
    assert stored[("000000000002", 1)]["execution_name"] == "exec-1"  # lineage-only change is not an update


def test_weird_table_name_is_quoted(conn: psycopg.Connection, transactions: Contract) -> None:
    name = 'Tx "odd"; DROP TABLE fintech.transactions; --'
    conn.execute(
        psycopg.sql.SQL("CREATE TABLE {} (LIKE fintech.transactions INCLUDING ALL)").format(
            psycopg.sql.Identifier("fintech", name)
        )
    )
    odd = transactions.model_copy(update={"target_table": TargetTable(schema="fintech", name=name)})
    assert run(conn, odd, [staged_txn("W1"), staged_txn("W2")], "weird").counts.inserted == 2
    assert len(table_rows(conn, odd)) == 2 and table_rows(conn, transactions) == []


def test_missing_table_or_columns_fail_cleanly(conn: psycopg.Connection, transactions: Contract) -> None:
    ghost = transactions.model_copy(update={"target_table": TargetTable(schema="fintech", name="nope")})
    with pytest.raises(psycopg.errors.UndefinedTable):
        run(conn, ghost, [staged_txn("G1")], "ghost")
    short = [b.drop_columns(["amount"]) for b in batches(transactions, [staged_txn("G1")])]
    with pytest.raises(load.LoadError, match="amount"):
        load.load(conn, transactions, short, **load_kwargs("short"))
    assert ledger.ledger_rows(conn, 5) == []


def test_load_refuses_an_open_transaction(conn: psycopg.Connection, transactions: Contract) -> None:
    with conn.transaction(), pytest.raises(load.LoadError, match="outside any transaction"):
        run(conn, transactions, [staged_txn("T1")], "day1")


@pytest.mark.parametrize("conn", ["superuser", "etl-role"], indirect=True)
def test_record_rejected_and_ledger_rows(conn: psycopg.Connection) -> None:
    common = {"feed": "transactions", "business_date": None, "execution_name": "e"}
    ledger.record_rejected(
        conn,
        file_name="a.dat",
        sha256="a" * 64,
        rows_in=10,
        rows_rejected=10,
        error="T001: count differs",
        **common,
    )
    ledger.record_rejected(conn, file_name="b.dat", sha256="b" * 64, status=LedgerStatus.FAILED, error="boom", **common)
    with pytest.raises(ValueError, match="REJECTED or FAILED"):
        ledger.record_rejected(conn, file_name="c.dat", sha256="c" * 64, status=LedgerStatus.LOADED, **common)
    rows = ledger.ledger_rows(conn, 10)
    assert [(r["file_name"], r["status"], r["rows_rejected"]) for r in rows] == [
        ("b.dat", "FAILED", 0),
        ("a.dat", "REJECTED", 10),
    ]
    assert len(ledger.ledger_rows(conn, 1)) == 1
    assert not ledger.already_loaded(conn, "a" * 64)


def test_rows_of_one_load_must_share_one_lineage(conn: psycopg.Connection, transactions: Contract) -> None:
    """Lineage reaches the table as the temp table's defaults, so a batch mixing files is refused, and rolled back."""
    rows = [staged_txn("T1"), staged_txn("T2"), staged_txn("T3", execution_name="another-run")]
    with pytest.raises(load.LoadError, match="execution_name differs"):
        run(conn, transactions, rows, "mixed")
    assert table_rows(conn, transactions) == []
    assert ledger.ledger_rows(conn, 10) == []
