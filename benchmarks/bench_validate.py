"""How fast ``etl validate`` is, and how much memory it needs, on big transactions files.

    PYTHONPATH=. python benchmarks/bench_validate.py --rows 1000000 --repeat 3
    PYTHONPATH=. python benchmarks/bench_validate.py --rows 10000000 --repeat 1   # the memory check

Each timing runs the real command (``python -m etl validate FILE``) under ``/usr/bin/time -v`` and reports
wall seconds, rows per second and peak resident memory; the in-process time of ``validate_file`` (without
interpreter start-up and imports) is reported too. Goals (issue 2): >= 1,000,000 rows/s on 2 cores, and a
10,000,000-row file under 512 MiB peak.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.generate_data import make_file
from etl.core.validate import validate_file


def run_cli(path: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one ``etl validate`` process."""
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "etl", "validate", str(path)]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"validate failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return wall, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="folder for the generated file (default: temp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        path = make_file("transactions", args.rows, out)
        size = path.stat().st_size
        print(f"file: {path.name}  rows: {args.rows:,}  size: {size / 2**20:.0f} MiB")
        inproc = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            report = validate_file(path)
            inproc.append(time.perf_counter() - started)
            assert report.valid and report.row_count == args.rows, report.errors
        cli = [run_cli(path) for _ in range(args.repeat)]
        walls, peaks = [w for w, _ in cli], [p for _, p in cli]
        best_in, med_in = min(inproc), statistics.median(inproc)
        med_wall = statistics.median(walls)
        print(
            f"in-process validate_file: median {med_in:.2f} s ({args.rows / med_in:,.0f} rows/s), "
            f"best {best_in:.2f} s ({args.rows / best_in:,.0f} rows/s)"
        )
        print(
            f"etl validate (whole command): median {med_wall:.2f} s ({args.rows / med_wall:,.0f} rows/s), "
            f"best {min(walls):.2f} s"
        )
        print(f"peak memory: {max(peaks) / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
