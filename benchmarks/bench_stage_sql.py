"""SQL over a 10M-row parquet stage with DuckDB: a one-week filtered aggregate reads only that week's files.

    PYTHONPATH=. python benchmarks/bench_stage_sql.py                       # 10M rows over 70 days
    PYTHONPATH=. python benchmarks/bench_stage_sql.py --rows 1000000 --days 14 --repeat 5

Builds (once, kept in ``--work``) a transactions stage of ``--rows`` rows spread over ``--days`` business days
with the generator and the real stage writer (``etl.notebooks.samples.build_stage``), then runs through
``etl.notebooks.stage_sql`` the query an analyst asks first (volume by channel for one week) and reports, per
run: wall seconds, bytes the process read (``/proc/self/io`` ``rchar``: every read call, page cache or not),
and the files the scan opened against those in the stage. A full-stage query is measured beside it for scale.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.generate_data import make_file
from etl.contract import load_contract
from etl.io.stage import date_filter, stage_dataset
from etl.notebooks import stage_sql
from etl.notebooks.samples import build_stage

FIRST = dt.date(2024, 1, 1)
WEEK_QUERY = """
SELECT channel, debit_credit, count(*) AS n, sum(amount) AS amount
  FROM transactions
 WHERE business_date BETWEEN DATE '{start}' AND DATE '{end}'
 GROUP BY ALL ORDER BY ALL
"""
FULL_QUERY = "SELECT channel, debit_credit, count(*) AS n, sum(amount) AS amount FROM transactions GROUP BY ALL"


def rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise RuntimeError("no rchar in /proc/self/io")


def build(work: Path, rows: int, days: int) -> str:
    stage = work / f"stage-{rows}-{days}"
    if (stage / "transactions").exists():
        return str(stage)
    src = work / f"src-{rows}-{days}"
    src.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for index in range(days):
        make_file("transactions", rows // days, src, seed=index, business_date=FIRST + dt.timedelta(days=index))
    generated = time.perf_counter() - started
    build_stage("transactions", src, str(stage))
    print(
        f"built stage: {rows:,} rows over {days} days (generate {generated:.0f} s, stage "
        f"{time.perf_counter() - started - generated:.0f} s)"
    )
    return str(stage)


def measure(con, query: str) -> tuple[float, int, int]:
    before, started = rchar(), time.perf_counter()
    result = con.sql(query).fetchall()
    return time.perf_counter() - started, rchar() - before, sum(row[2] for row in result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=70)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-stage-sql"))
    args = parser.parse_args()

    uri = build(args.work, args.rows, args.days)
    contract = load_contract("transactions")
    dataset = stage_dataset(uri, contract)
    assert dataset is not None
    files = dataset.files
    stage_bytes = sum(Path(f).stat().st_size for f in files)
    offset = max(0, min(14, args.days - 7))
    start, end = FIRST + dt.timedelta(days=offset), FIRST + dt.timedelta(days=offset + 6)
    week_files = list(dataset.get_fragments(filter=date_filter(contract, start, end)))
    week_bytes = sum(Path(f.path).stat().st_size for f in week_files)
    print(
        f"stage: {len(files)} files, {stage_bytes / 2**20:.1f} MiB; week {start}..{end}: {len(week_files)} files, "
        f"{week_bytes / 2**20:.1f} MiB"
    )

    con = stage_sql.connect(uri, ["transactions"])
    for title, query in (("week", WEEK_QUERY.format(start=start, end=end)), ("full stage", FULL_QUERY)):
        runs = [measure(con, query) for _ in range(args.repeat)]
        seconds = statistics.median(r[0] for r in runs)
        read = statistics.median(r[1] for r in runs)
        print(
            f"{title:>10}: {runs[0][2]:,} rows aggregated, median {seconds:.3f} s, read {read / 2**20:.1f} MiB "
            f"(runs: {', '.join(f'{r[0]:.3f}s/{r[1] / 2**20:.1f}MiB' for r in runs)})"
        )


if __name__ == "__main__":
    main()
