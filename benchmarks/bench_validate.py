"""How fast ``etl validate`` is, and how much memory it needs, on big transactions files and on junk.

    PYTHONPATH=. python benchmarks/bench_validate.py --rows 1000000 --repeat 3
    PYTHONPATH=. python benchmarks/bench_validate.py --rows 10000000 --repeat 1   # the memory check
    PYTHONPATH=. python benchmarks/bench_validate.py --case junk --repeat 3       # hostile structure

Each timing runs the real command (``python -m etl validate FILE``) under ``/usr/bin/time -v`` and reports
wall seconds, lines per second and peak resident memory; the in-process time of ``validate_file`` (without
interpreter start-up and imports) is reported too. Goals: >= 1,000,000 rows/s on 2 cores, and a
10,000,000-row file under 512 MiB peak.

``--case junk`` validates files made of structural errors only, each of which the validator must count
exactly while keeping only a few line numbers: 2M one-byte unknown records (4 MB), 4M blank lines (4 MB) and
40M (40 MB: the peak must not grow with them), 2M detail records with one field (4 MB) and 1M lines of
delimiters only. Their cost should be that of a
valid file of the same size, and their memory that of a tiny file plus a few blocks (``--case tiny`` gives
the baseline: interpreter, imports and one small file).
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

HEADER = b"H|TRANSACTIONS|20240301|20240302010203|01|CORE\n"
DETAIL = b"D|TX1|123456789012|4111111111111111|20240301101112|20240301|000000012345|D|USD|ACME|5411|POS|POSTED|A\n"
# name: (body between header and trailer, rule the body breaks, how many times)
JUNK = {
    "unknown": (b"X\n" * 2_000_000, "S004", 2_000_000),
    "blank": (DETAIL + b"\n" * 4_000_000 + DETAIL.replace(b"TX1", b"TX2"), "S004", 4_000_000),
    "blank x10": (DETAIL + b"\n" * 40_000_000 + DETAIL.replace(b"TX1", b"TX2"), "S004", 40_000_000),
    "short": (b"D\n" * 2_000_000, "S005", 2_000_000),
    "delimiters": ((b"|" * 13 + b"\n") * 1_000_000, "S004", 1_000_000),
}


def junk_file(name: str, out: Path) -> tuple[Path, str, int]:
    """A transactions file whose body is junk of one kind; the rule it breaks and how many times."""
    body, rule, count = JUNK[name]
    path = out / name.replace(" ", "") / "transactions_20240301.dat"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(HEADER + body + b"T|0|0\n")
    return path, rule, count


def run_cli(path: Path, *, valid: bool = True) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one ``etl validate`` process."""
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "etl", "validate", str(path)]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != (0 if valid else 1):
        raise SystemExit(f"validate failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return wall, peak


def bench_junk(out: Path, repeat: int) -> None:
    for name in JUNK:
        path, rule, count = junk_file(name, out)
        lines = count + 2
        inproc = []
        for _ in range(repeat):
            started = time.perf_counter()
            report = validate_file(path)
            inproc.append(time.perf_counter() - started)
            found = report.errors[rule]
            assert found.count == count and len(found.lines) <= 10, (rule, found)
        cli = [run_cli(path, valid=False) for _ in range(repeat)]
        med_in = statistics.median(inproc)
        print(
            f"{name:>10}: {path.stat().st_size / 1e6:.0f} MB, {rule} x {count:,}: in-process median {med_in:.2f} s "
            f"({lines / med_in:,.0f} lines/s), whole command median {statistics.median(w for w, _ in cli):.2f} s, "
            f"peak {max(p for _, p in cli) / 1024:.0f} MiB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case", choices=["valid", "junk", "tiny"], default="valid")
    parser.add_argument("--out", type=Path, default=None, help="folder for the generated file (default: temp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        if args.case == "junk":
            bench_junk(out, args.repeat)
            return
        if args.case == "tiny":
            args.rows = 10
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
