"""The HOT-friendly transactions table: next-day updates stay on their page (no index entry), and the
loader's statements still plan on the primary key (the EXPLAIN plans the design relies on)."""

from __future__ import annotations

import psycopg

from etl.contract import Contract
from etl.db import load, statements
from tests.builders import batches, load_kwargs, staged_txn

DAY2 = {"business_date": __import__("datetime").date(2024, 3, 2), "source_file": "t2.dat", "execution_name": "e2"}


def test_transactions_has_a_fillfactor_and_no_index_on_lineage(conn: psycopg.Connection) -> None:
    (options,) = conn.execute("SELECT reloptions FROM pg_class WHERE oid = 'fintech.transactions'::regclass").fetchone()
    assert "fillfactor=75" in options
    indexes = [r[0] for r in conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'transactions'")]
    assert len(indexes) == 1 and "(transaction_id)" in indexes[0]  # the primary key only


def test_next_day_updates_are_heap_only(conn: psycopg.Connection, transactions: Contract) -> None:
    rows = [staged_txn(f"T{i:05d}") for i in range(2000)]
    load.load(conn, transactions, batches(transactions, rows), **load_kwargs("day1", 1))
    changed = [
        staged_txn(f"T{i:05d}", "U", day=2, amount="99.00", **{k: v for k, v in DAY2.items() if k != "business_date"})
        for i in range(0, 2000, 4)
    ]
    result = load.load(conn, transactions, batches(transactions, changed), **load_kwargs("day2", 2))
    assert result.counts.updated == 500
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("SELECT pg_stat_clear_snapshot()")
    updates, hot = conn.execute(
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = 'fintech.transactions'::regclass"
    ).fetchone()
    assert updates == 500 and hot == 500  # every update stayed on its page, no index entry written


def test_the_loaders_statements_plan_on_the_primary_key(conn: psycopg.Connection, transactions: Contract) -> None:
    """EXPLAIN of the UPDATE, DELETE and INSERT a load runs, inside a real load (temp table filled)."""
    load.load(
        conn,
        transactions,
        batches(transactions, [staged_txn(f"T{i:05d}") for i in range(5000)]),
        **load_kwargs("day1", 1),
    )
    conn.execute("ANALYZE fintech.transactions")
    plans: dict[str, str] = {}
    plan = statements.LoadPlan(transactions)

    def explain(c: psycopg.Connection) -> None:
        c.execute(statements.analyze_temp(plan))
        for name in ("update_changed", "delete_marked", "insert_new"):
            stmt = getattr(statements, name)(plan)
            text = "\n".join(r[0] for r in c.execute(psycopg.sql.SQL("EXPLAIN {}").format(stmt)).fetchall())
            plans[name] = text

    day2 = [staged_txn(f"T{i:05d}", "U", day=2, amount="1.00") for i in range(0, 50)] + [staged_txn("NEW1", day=2)]
    day2 += [staged_txn(f"T{i:05d}", "D", day=2) for i in range(100, 110)]
    load.load(conn, transactions, batches(transactions, day2), **load_kwargs("day2", 2), after_copy=explain)
    for name, text in plans.items():
        assert "transactions_pkey" in text or "Hash" in text, (name, text)
        assert "business_date_idx" not in text
