"""Transform + stage write of synthetic transactions rows (default 1,000,000).

Reports seconds (median of ``--repeat`` runs) for: the HMAC variants on distinct card numbers, the
pyarrow transform, and the parquet stage write with zstd versus snappy.

    PYTHONPATH=. python benchmarks/bench_transform.py --rows 1000000 --cards 200000
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.contract import load_contract
from etl.core.mask import CardMasker
from etl.core.transform import Lineage, transform_batch
from etl.io.stage import write_stage
from etl.schema import raw_schema

KEY = b"benchmark-pan-key"
PARSER_BATCH_ROWS = 38_000  # about what a 4 MiB parser block of transactions lines holds


def digits(values: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(pc.cast(pa.array(values), pa.string()), width=width, padding="0")


def raw_transactions(rows: int, cards: int, seed: int = 7) -> pa.Table:
    """Raw detail rows as the parser yields them, generated without a Python loop per row."""
    rng = np.random.default_rng(seed)
    ids = pc.binary_join_element_wise("T-", digits(np.arange(rows), 10), "")
    pick = lambda options, p=None: pa.array(options).take(pa.array(rng.choice(len(options), rows, p=p)))  # noqa: E731
    ts = pc.binary_join_element_wise(
        "20240102",
        digits(rng.integers(0, 24, rows), 2),
        digits(rng.integers(0, 60, rows), 2),
        digits(rng.integers(0, 60, rows), 2),
        "",
    )
    columns = {
        "record_type": pa.repeat(pa.scalar("D"), rows),
        "transaction_id": ids,
        "account_id": digits(rng.integers(0, 10**12, rows), 12),
        "card_number": digits(4 * 10**15 + rng.integers(0, cards, rows), 16),
        "transaction_ts": ts,
        "posted_date": pick(["20240101", "20240102"]),
        "amount": digits(rng.integers(0, 10**7, rows), 12),
        "debit_credit": pick(["D", "C"], [0.8, 0.2]),
        "currency": pick(["USD", "EUR", "GBP"], [0.9, 0.05, 0.05]),
        "merchant_name": pick(["ACME STORE", "", "COFFEE SHOP 42", "ONLINE MARKET"]),
        "mcc": pick(["5411", "", "5812", "5999"]),
        "channel": pick(["POS", "ECOM", "ATM", "ACH", "P2P"]),
        "status": pick(["POSTED", "PENDING", "REVERSED"]),
        "action": pick(["A", "U", "D"], [0.9, 0.08, 0.02]),
        "_line": pa.array(np.arange(2, rows + 2, dtype=np.int64)),
    }
    return pa.table(columns, schema=raw_schema(load_contract("transactions")))


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def bench_hmac(count: int, repeat: int) -> None:
    values = [str(4 * 10**15 + i) for i in range(count)]
    masker = CardMasker(KEY)
    base = hmac.new(KEY, digestmod=hashlib.sha256)

    def copy_per_value() -> list[str]:
        out = []
        for v in values:
            h = base.copy()
            h.update(v.encode())
            out.append(h.hexdigest())
        return out

    variants = {
        "hmac.new per value": lambda: [hmac.new(KEY, v.encode(), hashlib.sha256).hexdigest() for v in values],
        "hmac.new once + .copy()": copy_per_value,
        "pre-keyed sha256 inner/outer (CardMasker)": lambda: [masker.token(v) for v in values],
    }
    print(f"HMAC of {count:,} distinct numbers (median of {repeat}):")
    for name, fn in variants.items():
        seconds, _ = timed(fn, repeat)
        print(f"  {name:45s} {seconds:6.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cards", type=int, default=200_000, help="distinct card numbers")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    contract = load_contract("transactions")
    start = time.perf_counter()
    raw = raw_transactions(args.rows, args.cards)
    print(f"generated {raw.num_rows:,} raw rows in {time.perf_counter() - start:.2f} s ({args.cards:,} distinct cards)")
    bench_hmac(min(args.cards, args.rows), args.repeat)

    day = dt.date(2024, 1, 2)
    lineage = Lineage.now(day, "transactions_20240102.dat", "bench")
    batches = raw.to_batches(max_chunksize=PARSER_BATCH_ROWS)

    def mask_file() -> list:
        masker = CardMasker(KEY)  # a fresh token cache per file
        return [masker.mask(b.column("card_number")) for b in batches]

    def transform_file() -> list[pa.RecordBatch]:
        masker = CardMasker(KEY)
        return [transform_batch(b, contract, lineage, masker) for b in batches]

    mask_s, _ = timed(mask_file, args.repeat)
    transform_s, staged = timed(transform_file, args.repeat)
    print(
        f"transform of {raw.num_rows:,} rows in {len(batches)} batches: {transform_s:.3f} s "
        f"(of which card masking {mask_s:.3f} s)"
    )
    whole = raw.combine_chunks().to_batches()[0]
    whole_s, _ = timed(lambda: transform_batch(whole, contract, lineage, CardMasker(KEY)), args.repeat)
    print(f"transform as one batch: {whole_s:.3f} s")

    with tempfile.TemporaryDirectory(prefix="etl-bench-") as folder:
        for codec in ("zstd", "snappy"):
            seconds, uri = timed(
                lambda codec=codec: write_stage(
                    f"{folder}/{codec}", contract, day, "transactions_20240102", staged, compression=codec
                ),
                args.repeat,
            )
            size = os.path.getsize(uri)
            print(f"stage write {codec:6s}: {seconds:.3f} s, {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
