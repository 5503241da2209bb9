"""End-to-end ``etl run`` against the COPY floor, measured in the same run on the same server.

    PYTHONPATH=. python benchmarks/bench_run.py --rows 1000000 --repeat 3
    PYTHONPATH=. python benchmarks/bench_run.py --rows 10000000 --repeat 1 --skip-day2   # memory check

The floor is ``psql``'s ``\\copy`` of the same detail rows into an UNLOGGED table of text columns. Then, on a
fresh database each repeat: ``etl run`` of the day-1 file (first load into an empty table) and of a day-2
file that updates 25% of the day-1 rows and deletes 1% (``python -m etl run``, whole command, wall time and
peak memory from ``/usr/bin/time -v``). Goals (issue 3): day 1 <= 2.5x the floor, day 2 <= 3x, a 10M-row
file with peak memory under 1 GiB.

Two more floors, measured in the same run after each day-1 load, show how much of the ratio is the
database's own cost of the data the pipeline must store (typed, logged, indexed) rather than the pipeline's:
``psql``'s ``\\copy`` of the rows exactly as loaded (CSV exported from the target, key order) into an
UNLOGGED table of the target's column types with no index, and into a fresh logged copy of the target
table with its primary key and index.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from benchmarks.generate_data import make_file, make_next_day
from tests import pg

FLOOR_TABLE = (
    "CREATE UNLOGGED TABLE floor (transaction_id text, account_id text, card_number text, transaction_ts text, "
    "posted_date text, amount text, debit_credit text, currency text, merchant_name text, mcc text, "
    "channel text, status text, action text)"
)


def detail_rows(dat: Path, out: Path) -> Path:
    """The file's detail records without header, trailer and record type: what ``\\copy`` ingests."""
    with dat.open("rb") as src, out.open("wb") as dst:
        for line in src:
            if line.startswith(b"D|"):
                dst.write(line[2:])
    return out


def floor_seconds(url: str, rows_file: Path) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS floor")
        conn.execute(FLOOR_TABLE)
    return psql_copy(url, "floor", rows_file, "FORMAT text, DELIMITER '|'")


def psql_copy(url: str, table: str, source: Path, options: str) -> float:
    started = time.perf_counter()
    subprocess.run(["psql", url, "-q", "-c", f"\\copy {table} FROM '{source}' WITH ({options})"], check=True)
    return time.perf_counter() - started


def typed_floors(url: str, rows_csv: Path) -> tuple[float, float]:
    """(typed unlogged no index, logged target copy with its indexes): ``\\copy`` of the loaded rows."""
    subprocess.run(
        [
            "psql",
            url,
            "-q",
            "-c",
            f"\\copy (SELECT * FROM fintech.transactions ORDER BY transaction_id) TO '{rows_csv}' WITH (FORMAT csv)",
        ],
        check=True,
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE UNLOGGED TABLE public.floor_typed (LIKE fintech.transactions)")
        conn.execute("CREATE TABLE public.floor_target (LIKE fintech.transactions INCLUDING ALL)")
        conn.execute("CHECKPOINT")
    unindexed = psql_copy(url, "public.floor_typed", rows_csv, "FORMAT csv")
    target = psql_copy(url, "public.floor_target", rows_csv, "FORMAT csv")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE public.floor_typed, public.floor_target")
        conn.execute("CHECKPOINT")
    rows_csv.unlink()
    return unindexed, target


def etl_run(url: str, home: Path, dat: Path) -> tuple[float, int, str]:
    env = {**os.environ, "ETL_DATABASE_URL": url, "ETL_HOME": str(home), "ETL_PAN_KEY": "benchmark-key"}
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "etl", "run", "--json", str(dat)]
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"etl run failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    summary = done.stdout.strip().splitlines()[-1]  # the notification line
    return wall, peak, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-day2", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        os.chmod(tmpdir, 0o755)  # the server runs as the postgres user
        day1 = make_file("transactions", args.rows, tmpdir / "in")
        day2 = None if args.skip_day2 else make_next_day(args.rows, tmpdir / "in")
        rows_file = detail_rows(day1, tmpdir / "rows.txt")
        os.chmod(rows_file, 0o644)
        cluster = pg.start_cluster()
        try:
            floors, first, second, peaks, typed, target = [], [], [], [], [], []
            for i in range(args.repeat):
                db = pg.create_database(cluster.url())
                url = cluster.url(db)
                floors.append(floor_seconds(url, rows_file))
                from etl.db import migrate

                with psycopg.connect(url, autocommit=True) as conn:
                    migrate.upgrade(conn)
                    conn.execute("DROP TABLE IF EXISTS floor")
                wall, peak, summary = etl_run(url, tmpdir / f"home{i}", day1)
                first.append(wall)
                peaks.append(peak)
                print(f"repeat {i + 1}: floor {floors[-1]:.2f} s, day 1 {wall:.2f} s, peak {peak / 1024:.0f} MiB")
                print(f"   {summary}")
                unindexed, indexed = typed_floors(url, tmpdir / "loaded.csv")
                typed.append(unindexed)
                target.append(indexed)
                print(f"          typed floors: unlogged no index {unindexed:.2f} s, target copy {indexed:.2f} s")
                if day2 is not None:
                    wall, peak, summary = etl_run(url, tmpdir / f"home{i}", day2)
                    second.append(wall)
                    peaks.append(peak)
                    print(f"          day 2 {wall:.2f} s, peak {peak / 1024:.0f} MiB")
                    print(f"   {summary}")
                pg.drop_database(cluster.url(), db)
        finally:
            cluster.stop()
    floor = statistics.median(floors)
    print(f"\nrows {args.rows:,}: floor (psql \\copy, unlogged) median {floor:.2f} s")
    print(
        f"etl run day 1 (empty table): median {statistics.median(first):.2f} s = "
        f"{statistics.median(first) / floor:.2f}x floor (goal <= 2.5x)"
    )
    if second:
        print(
            f"etl run day 2 (25% updates, 1% deletes): median {statistics.median(second):.2f} s = "
            f"{statistics.median(second) / floor:.2f}x floor (goal <= 3x)"
        )
    for label, values in (("typed, unlogged, no index", typed), ("logged target copy, PK + index", target)):
        seconds = statistics.median(values)
        print(
            f"floor \\copy of the loaded rows into {label}: median {seconds:.2f} s = {seconds / floor:.2f}x floor; "
            f"day 1 = {statistics.median(first) / seconds:.2f}x this"
        )
    print(f"peak memory of etl run: {max(peaks) / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
