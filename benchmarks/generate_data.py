"""Big dummy files for the benchmarks, and how long the generator takes to write them.

Importable (``make_file``, ``make_next_day``) by other benchmark scripts; run directly it writes the files
and prints seconds and size per file:

    PYTHONPATH=. python benchmarks/generate_data.py --rows 1000000 --out /tmp/bench
    PYTHONPATH=. python benchmarks/generate_data.py --rows 1000000 --feed transactions --next-day
    /usr/bin/time -v env PYTHONPATH=. python benchmarks/generate_data.py --rows 10000000   # peak memory

``--next-day`` also writes the day-2 transactions file that re-sends 25% of the day-1 ids as updates and
1% as deletes (plus ``--next-day-rows`` new records), for load benchmarks of a second day.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

from etl.generate import derive_update_file, generate

DAY = dt.date(2024, 3, 1)


def make_file(feed: str, rows: int, out_dir: str | Path, seed: int = 0, business_date: dt.date = DAY) -> Path:
    """A valid ``feed`` file of ``rows`` records in ``out_dir`` (deterministic for the seed)."""
    return generate(feed, business_date, rows=rows, seed=seed, out_dir=out_dir)


def make_next_day(
    rows: int,
    out_dir: str | Path,
    seed: int = 0,
    *,
    new_rows: int = 0,
    update_fraction: float = 0.25,
    delete_fraction: float = 0.01,
) -> Path:
    """The day after ``make_file("transactions", rows, ...)``: updates and deletes of its ids."""
    return derive_update_file(
        DAY,
        DAY + dt.timedelta(days=1),
        base_rows=rows,
        rows=new_rows,
        seed=seed,
        out_dir=out_dir,
        update_fraction=update_fraction,
        delete_fraction=delete_fraction,
    )


def _timed(label: str, make: Callable[[], Path]) -> Path:
    start = time.perf_counter()
    path = make()
    seconds = time.perf_counter() - start
    size = path.stat().st_size
    print(f"{label:<36} {seconds:7.2f} s  {size / 2**20:9.1f} MiB  {path}")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--feed", choices=["transactions", "account_summary", "all"], default="all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/etl-bench"))
    parser.add_argument("--next-day", action="store_true", help="also write the day-2 update file")
    parser.add_argument("--next-day-rows", type=int, default=0, help="new records in the day-2 file")
    args = parser.parse_args()
    feeds = ["transactions", "account_summary"] if args.feed == "all" else [args.feed]
    for feed in feeds:
        _timed(f"{feed} {args.rows:,} rows", lambda feed=feed: make_file(feed, args.rows, args.out, args.seed))
    if args.next_day:
        _timed(
            "transactions next day (25% U, 1% D)",
            lambda: make_next_day(args.rows, args.out, args.seed, new_rows=args.next_day_rows),
        )


if __name__ == "__main__":
    main()
