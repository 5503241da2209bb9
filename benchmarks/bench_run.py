"""End-to-end ``etl run`` against the COPY floor, measured in the same run on the same server.

    PYTHONPATH=. python benchmarks/bench_run.py --rows 1000000 --repeat 3 --big-rows 10000000

Both servers are measured in one run: an external one (a tests/pg.py cluster) and the embedded default
(pgserver), each with its own floors. The table at the end gives, per server and size, the ratios of the goals:
day 1 <= 1.5x the target floor, day 2 <= 1.0x the same day-1 target floor, and the peak memory (< 1 GiB at 10M).

The floor is ``psql``'s ``\\copy`` of the same detail rows into an UNLOGGED table of text columns. Then, on a
fresh database each repeat: ``etl run`` of the day-1 file (first load into an empty table) and of a day-2
file that updates 25% of the day-1 rows and deletes 1% (``python -m etl run``, whole command, wall time and
peak memory from ``/usr/bin/time -v``).

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
        (options,) = conn.execute(
            "SELECT coalesce(array_to_string(reloptions, ', '), '') FROM pg_class "
            "WHERE oid = 'fintech.transactions'::regclass"
        ).fetchone()
        storage = f" WITH ({options})" if options else ""  # the target's own fillfactor: same pages to write
        conn.execute(f"CREATE TABLE public.floor_target (LIKE fintech.transactions INCLUDING ALL){storage}")
        conn.execute("CHECKPOINT")
    unindexed = psql_copy(url, "public.floor_typed", rows_csv, "FORMAT csv")
    target = psql_copy(url, "public.floor_target", rows_csv, "FORMAT csv")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE public.floor_typed, public.floor_target")
        conn.execute("CHECKPOINT")
    rows_csv.unlink()
    return unindexed, target


def etl_run(env_extra: dict[str, str], home: Path, dat: Path) -> tuple[float, int, str]:
    env = {k: v for k, v in os.environ.items() if k != "ETL_DATABASE_URL"}  # none: the embedded server
    env.update({**env_extra, "ETL_HOME": str(home), "ETL_PAN_KEY": "benchmark-key"})
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "etl", "run", "--json", str(dat)]
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"etl run failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    summary = done.stdout.strip().splitlines()[-1]  # the notification line
    return wall, peak, summary


class External:
    """A tests/pg.py cluster (as a separate server would be): a fresh migrated database per repeat."""

    label = "external (tests/pg.py cluster)"

    def __enter__(self) -> External:
        self.cluster = pg.start_cluster()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cluster.stop()

    def fresh(self, home: Path) -> tuple[str, dict[str, str]]:
        self.db = pg.create_database(self.cluster.url())
        url = self.cluster.url(self.db)
        return url, {"ETL_DATABASE_URL": url}

    def release(self, home: Path) -> None:
        pg.drop_database(self.cluster.url(), self.db)


class Embedded:
    """The embedded default (pgserver under ``ETL_HOME/pgdata``, no ``ETL_DATABASE_URL``): a fresh ETL_HOME
    per repeat, its server started (and tuned, as ``etl`` does) before the clock starts, as it stays running
    between commands."""

    label = "embedded (pgserver, the default)"

    def __enter__(self) -> Embedded:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def fresh(self, home: Path) -> tuple[str, dict[str, str]]:
        from etl.db import embedded

        home.mkdir(parents=True, exist_ok=True)
        os.chmod(home, 0o755)
        return embedded.server_uri(home), {}

    def release(self, home: Path) -> None:
        from etl.db import embedded

        embedded.stop(home)


def measure(
    server: External | Embedded, args: argparse.Namespace, tmpdir: Path, day1: Path, day2: Path | None, rows_file: Path
) -> dict[str, float]:
    """Repeats on one server; returns the medians (seconds, MiB)."""
    from etl.db import migrate

    floors, first, second, peaks, typed, target = [], [], [], [], [], []
    print(f"\n== {server.label} ==", flush=True)
    with server:
        for i in range(args.repeat):
            home = tmpdir / f"home-{type(server).__name__}-{i}"
            url, env = server.fresh(home)
            try:
                floors.append(floor_seconds(url, rows_file))
                with psycopg.connect(url, autocommit=True) as conn:
                    migrate.upgrade(conn)
                    conn.execute("DROP TABLE IF EXISTS floor")
                    conn.execute("CHECKPOINT")
                load = os.getloadavg()[0]
                wall, peak, summary = etl_run(env, home, day1)
                first.append(wall)
                peaks.append(peak)
                print(
                    f"repeat {i + 1}: bare floor {floors[-1]:.2f} s, day 1 {wall:.2f} s, peak {peak / 1024:.0f} MiB"
                    f" (load average before: {load:.1f})",
                    flush=True,
                )
                print(f"   {summary}")
                unindexed, indexed = typed_floors(url, tmpdir / "loaded.csv")
                typed.append(unindexed)
                target.append(indexed)
                print(f"          floors: typed unlogged no index {unindexed:.2f} s, target copy {indexed:.2f} s")
                if day2 is not None:
                    load = os.getloadavg()[0]
                    wall, peak, summary = etl_run(env, home, day2)
                    second.append(wall)
                    peaks.append(peak)
                    print(f"          day 2 {wall:.2f} s, peak {peak / 1024:.0f} MiB (load average before: {load:.1f})")
                    print(f"   {summary}")
            finally:
                server.release(home)
    med = {
        "floor": statistics.median(floors),
        "day1": statistics.median(first),
        "typed": statistics.median(typed),
        "target": statistics.median(target),
        "peak": max(peaks) / 1024,
    }
    if second:
        med["day2"] = statistics.median(second)
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-day2", action="store_true")
    parser.add_argument("--servers", default="external,embedded", help="comma-separated: external, embedded")
    parser.add_argument("--big-rows", type=int, default=0, help="also a day-1 run of this many rows (10M check)")
    args = parser.parse_args()
    results: list[tuple[str, int, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        os.chmod(tmpdir, 0o755)  # the server runs as the postgres user
        sizes = [(args.rows, args.skip_day2, args.repeat)]
        if args.big_rows:
            sizes.append((args.big_rows, True, 1))
        for rows, skip_day2, repeat in sizes:
            day1 = make_file("transactions", rows, tmpdir / f"in{rows}")
            day2 = None if skip_day2 else make_next_day(rows, tmpdir / f"in{rows}")
            rows_file = detail_rows(day1, tmpdir / "rows.txt")
            os.chmod(rows_file, 0o644)
            for name in args.servers.split(","):
                server = External() if name == "external" else Embedded()
                run_args = argparse.Namespace(**{**vars(args), "repeat": repeat})
                results.append((server.label, rows, measure(server, run_args, tmpdir, day1, day2, rows_file)))
            for path in (day1, day2, rows_file):
                if path is not None:
                    path.unlink()
    print(
        "\n| server | rows | bare floor | target floor | day 1 | day 1 / target (goal <= 1.5x) "
        "| day 2 | day 2 / day-1 target (goal <= 1.0x) | peak MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, rows, m in results:
        day2 = f"{m['day2']:.2f} s | {m['day2'] / m['target']:.2f}x" if "day2" in m else "— | —"
        print(
            f"| {label} | {rows:,} | {m['floor']:.2f} s | {m['target']:.2f} s | {m['day1']:.2f} s | "
            f"{m['day1'] / m['target']:.2f}x | {day2} | {m['peak']:.0f} |"
        )


if __name__ == "__main__":
    main()
