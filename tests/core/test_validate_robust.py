"""No input, however broken, makes validation raise: mutated, truncated and oversized files all get a report."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from etl.core.validate import validate_file
from tests.core.dat_builders import acct, acct_file, txn, txn_file, write

SEEDS = range(60)


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """Flip, insert, delete or duplicate a few random bytes, or cut the file short."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        kind = rng.choice(["flip", "insert", "delete", "cut", "dup"])
        at = rng.randrange(max(len(buf), 1))
        if kind == "flip" and buf:
            buf[at] = rng.randrange(256)
        elif kind == "insert":
            buf[at:at] = bytes([rng.choice(b"|\r\n \x00\xffD9T")])
        elif kind == "delete" and buf:
            del buf[at]
        elif kind == "cut":
            del buf[at:]
        elif kind == "dup":
            buf[at:at] = buf[at : at + rng.randint(1, 200)]
    return bytes(buf)


@pytest.mark.parametrize("feed", ["transactions", "account_summary"])
def test_mutated_files_always_get_a_report(tmp_path: Path, feed: str) -> None:
    if feed == "transactions":
        name = "transactions_20240301.dat"
        original = write(tmp_path / name, txn_file([txn(f"T{i}", 100 + i) for i in range(30)])).read_bytes()
    else:
        name = "account_summary_20240301.dat"
        lines = acct_file([acct(f"{i:012d}", balance=i * 7) for i in range(1, 31)])
        original = write(tmp_path / name, lines, newline="\r\n").read_bytes()
    outcomes = set()
    for seed in SEEDS:
        rng = random.Random(seed)
        path = tmp_path / "m" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(_mutate(original, rng))
        report = validate_file(path, block_size=256)  # tiny blocks: records straddle block edges
        assert report.feed == feed
        assert report.valid == (not report.errors)
        outcomes.add(report.valid)
    assert False in outcomes  # the mutations do break files


def test_a_line_longer_than_any_record_is_s005_not_a_memory_blow_up(tmp_path: Path) -> None:
    path = tmp_path / "transactions_20240301.dat"
    path.write_bytes(b"H|TRANSACTIONS|20240301|20240302010203|01|CORE\n" + b"D" * (3 << 20))
    report = validate_file(path, block_size=64 << 10)
    assert not report.valid and "S005" in report.errors
