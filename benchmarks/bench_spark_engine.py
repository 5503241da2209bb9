"""The Spark engine (local[2]) versus the pyarrow engine on one synthetic transactions ``.dat`` file.

Times transform + stage write per engine (median of ``--repeat`` runs; Spark session start-up excluded
and reported apart), and checks that both stage files hold the same number of rows.

    PYTHONPATH=. python benchmarks/bench_spark_engine.py --rows 200000
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from bench_transform import KEY, raw_transactions

from etl.contract import load_contract
from etl.core.mask import CardMasker
from etl.core.parse import open_dat
from etl.core.transform import Lineage, transform_batch
from etl.io.stage import write_stage
from etl.spark import engine

DAY = dt.date(2024, 1, 2)


def write_file(folder: Path, rows: int) -> Path:
    """A valid-shaped transactions file: header, detail lines joined in Arrow, trailer."""
    contract = load_contract("transactions")
    raw = raw_transactions(rows, cards=max(rows // 5, 1))
    lines = pc.binary_join_element_wise(*[raw.column(f.name) for f in contract.fields], "|")
    total = pc.sum(pc.cast(raw.column("amount"), pa.int64())).as_py()
    path = folder / "transactions_20240102.dat"
    with path.open("w", encoding="utf-8") as out:
        out.write("H|TRANSACTIONS|20240102|20240103010203|01|BENCH\n")
        out.write("\n".join(lines.to_pylist()) + "\n")
        out.write(f"T|{rows}|{total:015d}\n")
    return path


def lineage(path: Path) -> Lineage:
    return Lineage(DAY, path.name, "bench", dt.datetime.now(dt.UTC))


def run_pyarrow(path: Path, stage: Path) -> str:
    contract = load_contract("transactions")
    masker, lin = CardMasker(KEY), lineage(path)
    batches = (transform_batch(b, contract, lin, masker) for b in open_dat(path, contract).batches())
    return write_stage(str(stage), contract, DAY, path.stem, batches)


def run_spark(spark, path: Path, stage: Path) -> str:
    contract = load_contract("transactions")
    df = engine.transform_file(spark, str(path), contract, lineage(path), KEY)
    return engine.write_stage(df, str(stage), contract, DAY, path.stem)


def median_seconds(fn, repeat: int) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        path = write_file(root, args.rows)
        mb = path.stat().st_size / 1e6
        start = time.perf_counter()
        spark = engine.spark_session("bench")
        startup = time.perf_counter() - start
        try:
            arrow_s, arrow_file = median_seconds(lambda: run_pyarrow(path, root / "a"), args.repeat)
            spark_s, spark_file = median_seconds(lambda: run_spark(spark, path, root / "s"), args.repeat)
        finally:
            spark.stop()
        rows = (pq.read_metadata(arrow_file).num_rows, pq.read_metadata(spark_file).num_rows)
    print(f"rows={args.rows} file={mb:.1f} MB rows_staged(pyarrow, spark)={rows}")
    print(
        f"pyarrow engine: {arrow_s:.2f} s   spark engine (local[2]): {spark_s:.2f} s   "
        f"spark session start-up: {startup:.1f} s"
    )


if __name__ == "__main__":
    main()
