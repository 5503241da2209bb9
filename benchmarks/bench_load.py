"""Loader benchmark: 1M synthetic staged transactions against the ``psql \\copy`` floor, same run.

Reports seconds for: the floor (``psql \\copy`` of the same rows as CSV into an UNLOGGED table with no
indexes), COPY into the loader's temp table alone, the first load into an empty table, a second load
(25% of rows changed, 1% deleted, the rest unchanged) and, with ``--compare``, the same two loads done
with ``INSERT ... ON CONFLICT DO UPDATE ... WHERE IS DISTINCT FROM`` for reference.

    PYTHONPATH=. python benchmarks/bench_load.py [--rows 1000000] [--url postgresql://...] [--compare]

Without ``--url`` it starts a throwaway cluster (tests/pg.py) and removes it afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql

from etl.contract import load_contract
from etl.db import load as loader
from etl.db import migrate, statements
from etl.schema import stage_schema
from tests import pg

BATCH_ROWS = 65_536


def cents_to_decimal(cents: np.ndarray) -> pa.Array:
    """decimal128(12, 2) straight from integer cents (the unscaled value): exact, no float, no strings."""
    words = np.zeros((len(cents), 2), np.int64)
    words[:, 0] = cents
    words[:, 1] = np.where(cents < 0, -1, 0)
    return pa.Array.from_buffers(pa.decimal128(12, 2), len(cents), [None, pa.py_buffer(words)])


def synthetic_transactions(rows: int, seed: int = 7) -> pa.Table:
    """Staged transactions (stage_schema incl. action) built column-wise with numpy: no per-row Python."""
    rng = np.random.default_rng(seed)
    schema = stage_schema(load_contract("transactions"))
    ids = pc.binary_join_element_wise("TX-", pa.array(np.arange(rows).astype(str)), "")
    cents = rng.integers(1, 10_000_000, rows)
    amount = cents_to_decimal(cents)
    debit = rng.random(rows) < 0.7
    currency = np.where(rng.random(rows) < 0.9, "USD", "EUR")
    ts = pa.array(1_700_000_000_000_000 + rng.integers(0, 86_400_000_000, rows), pa.int64())
    data = {
        "transaction_id": ids,
        "account_id": pa.array(np.char.zfill(rng.integers(0, 10**12, rows).astype(str), 12)),
        "card_last4": pa.array(np.char.zfill(rng.integers(0, 10_000, rows).astype(str), 4)),
        "card_token": pa.array([hashlib.sha256(b"k").hexdigest()] * 1).take(pa.array(np.zeros(rows, int))),
        "transaction_ts": ts.cast(pa.timestamp("us", tz="UTC")),
        "posted_date": pa.array(np.full(rows, 19_700, np.int32)).cast(pa.date32()),
        "amount": amount,
        "debit_credit": pa.array(np.where(debit, "D", "C")),
        "currency": pa.array(currency),
        "merchant_name": pa.array(np.where(rng.random(rows) < 0.1, None, "ACME STORE 42"), pa.string()),
        "mcc": pa.array(np.full(rows, "5411")),
        "channel": pa.array(np.array(["POS", "ECOM", "ATM", "ACH", "P2P"])[rng.integers(0, 5, rows)]),
        "status": pa.array(np.full(rows, "POSTED")),
        "action": pa.array(np.full(rows, "A")),
        "signed_amount": pc.if_else(pa.array(debit), pc.negate(amount), amount),
        "is_international": pa.array(currency != "USD"),
        "business_date": pa.array(np.full(rows, 19_700, np.int32)).cast(pa.date32()),
        "source_file": pa.array(np.full(rows, "transactions_20231111.dat")),
        "execution_name": pa.array(np.full(rows, "bench-1")),
        "loaded_at": pa.array(np.full(rows, 1_700_000_000_000_000), pa.int64()).cast(schema.field("loaded_at").type),
    }
    return pa.Table.from_pydict(data).cast(schema)


def second_day(day1: pa.Table, seed: int = 8) -> pa.Table:
    """Same keys: 25% with a new status and amount, 1% marked D, the rest identical apart from lineage."""
    rows = day1.num_rows
    pick = np.random.default_rng(seed).random(rows)
    update, delete = pick < 0.25, pick >= 0.99
    status = pc.if_else(pa.array(update), "REVERSED", day1["status"])
    amount = pc.if_else(pa.array(update), cents_to_decimal(np.full(rows, 101)), day1["amount"])
    signed = pc.if_else(pc.equal(day1["debit_credit"], "D"), pc.negate(amount), amount)
    action = pc.if_else(pa.array(delete), "D", pc.if_else(pa.array(update), "U", day1["action"]))
    table = day1
    for name, column in (
        ("status", status),
        ("amount", amount),
        ("signed_amount", signed),
        ("action", action),
        ("source_file", pa.array(np.full(rows, "transactions_20231112.dat"))),
        ("execution_name", pa.array(np.full(rows, "bench-2"))),
    ):
        table = table.set_column(table.schema.get_field_index(name), name, column.cast(table.schema.field(name).type))
    return table


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def fresh_db(server_url: str) -> Iterator[str]:
    name = pg.create_database(server_url)
    try:
        url = pg.database_url(server_url, name)
        with psycopg.connect(url, autocommit=True) as conn:
            migrate.upgrade(conn)
        yield url
    finally:
        pg.drop_database(server_url, name)


def psql_floor(url: str, table: pa.Table, workdir: Path) -> float:
    """``psql \\copy`` of the same rows (CSV) into an UNLOGGED table without indexes."""
    path = workdir / "rows.csv"
    columns = table.schema.names
    pacsv.write_csv(table, path, pacsv.WriteOptions(include_header=False))  # what psql reads (CSV)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS floor_copy")
        conn.execute("CREATE UNLOGGED TABLE floor_copy (LIKE fintech.transactions)")
        conn.execute("ALTER TABLE floor_copy ADD COLUMN action text")
    cols = ", ".join(columns)
    seconds, _ = timed(
        lambda: subprocess.run(
            [
                "psql",
                url,
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                f"\\copy floor_copy ({cols}) FROM '{path}' CSV",
            ],
            check=True,
        )
    )
    return seconds


def copy_only(url: str, table: pa.Table) -> float:
    plan = statements.LoadPlan(load_contract("transactions"))
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction(force_rollback=True):
        for stmt in statements.create_temp(plan):
            conn.execute(stmt)
        seconds, _ = timed(lambda: loader.copy_batches(conn, plan, table.to_batches(BATCH_ROWS)))
    return seconds


def run_load(url: str, table: pa.Table, name: str) -> tuple[float, loader.LoadResult]:
    contract = load_contract("transactions")
    with psycopg.connect(url, autocommit=True) as conn:
        seconds, result = timed(
            lambda: loader.load(
                conn,
                contract,
                table.to_batches(BATCH_ROWS),
                file_name=name,
                sha256=hashlib.sha256(name.encode()).hexdigest(),
                business_date=dt.date(2023, 11, 11),
                execution_name="bench",
                unique_keys=True,
            )
        )
    return seconds, result  # type: ignore[return-value]


def on_conflict_load(url: str, table: pa.Table) -> float:
    """Reference strategy: one INSERT ... ON CONFLICT DO UPDATE WHERE DISTINCT, then DELETE."""
    plan = statements.LoadPlan(load_contract("transactions"))
    cols = [sql.Identifier(c) for c in plan.table_columns]
    upsert = sql.SQL(
        "INSERT INTO {t} ({c}) SELECT {c} FROM {tmp} WHERE action IN ('A', 'U') ON CONFLICT (transaction_id) "
        "DO UPDATE SET {s} WHERE ({tc}) IS DISTINCT FROM ({ec})"
    ).format(
        t=plan.target,
        tmp=plan.temp,
        c=sql.SQL(", ").join(cols),
        s=sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in plan.set_columns),
        tc=sql.SQL(", ").join(sql.Identifier("transactions", c) for c in plan.compared_columns),
        ec=sql.SQL(", ").join(sql.Identifier("excluded", c) for c in plan.compared_columns),
    )

    def work() -> None:
        with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
            for stmt in statements.create_temp(plan):
                conn.execute(stmt)
            loader.copy_batches(conn, plan, table.to_batches(BATCH_ROWS))
            conn.execute(statements.analyze_temp(plan))
            conn.execute(upsert)
            conn.execute(statements.delete_marked(plan))  # type: ignore[arg-type]

    seconds, _ = timed(work)
    return seconds


def measure(server_url: str, rows: int, repeat: int, compare: bool) -> dict[str, object]:
    day1 = synthetic_transactions(rows)
    day2 = second_day(day1)
    figures: dict[str, list[float]] = {}
    counts: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeat):
            for url in fresh_db(server_url):
                figures.setdefault("psql_copy_floor", []).append(psql_floor(url, day1, Path(tmp)))
                figures.setdefault("copy_into_temp", []).append(copy_only(url, day1))
                seconds, first = run_load(url, day1, "transactions_20231111.dat")
                figures.setdefault("load_first", []).append(seconds)
                seconds, second = run_load(url, day2, "transactions_20231112.dat")
                figures.setdefault("load_second", []).append(seconds)
                counts = {"first": first.__dict__, "second": second.__dict__}
            if compare:
                for url in fresh_db(server_url):
                    figures.setdefault("on_conflict_first", []).append(on_conflict_load(url, day1))
                    figures.setdefault("on_conflict_second", []).append(on_conflict_load(url, day2))
    medians = {k: round(statistics.median(v), 3) for k, v in figures.items()}
    floor = medians["psql_copy_floor"]
    ratios = {f"{k}_x_floor": round(v / floor, 2) for k, v in medians.items() if k != "psql_copy_floor"}
    return {
        "rows": rows,
        "repeat": repeat,
        "seconds": medians,
        "ratios": ratios,
        "counts": {k: {n: str(x) for n, x in v.items()} for k, v in counts.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--url", help="server URL (a database is created and dropped on it)")
    parser.add_argument("--compare", action="store_true", help="also time INSERT ... ON CONFLICT")
    args = parser.parse_args()
    if args.url:
        report = measure(args.url, args.rows, args.repeat, args.compare)
    else:
        with pg.running_cluster() as cluster:
            report = measure(cluster.url(), args.rows, args.repeat, args.compare)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
