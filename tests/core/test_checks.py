"""The vectorised checks agree with plain Python on every contract pattern, dates, timestamps, Luhn and hashes."""

from __future__ import annotations

import datetime as dt
import random
import re
import zlib

import pyarrow as pa
import pytest

from etl.contract import all_contracts
from etl.core import checks
from tests.builders import luhn_ok

ALPHABET = "0123456789ABCXYZabcxyz- |.é"


def _samples(seed: int, n: int = 400) -> list[str]:
    rng = random.Random(seed)
    return [
        "".join(rng.choice(ALPHABET) for _ in range(rng.choice([0, 1, 3, 4, 12, 13, 16, 19, 20, 36, 37])))
        for _ in range(n)
    ] + ["", "0" * 12, "4111111111111111", "USD", "usd", "a-b-c", "-" * 5]


PATTERNS = sorted({f.pattern for c in all_contracts() for f in (*c.fields, *c.header, *c.trailer) if f.pattern})


@pytest.mark.parametrize("pattern", PATTERNS)
def test_matches_agrees_with_python_re(pattern: str) -> None:
    values = _samples(zlib.crc32(pattern.encode()) % 1000)  # the same seed on every run (hash() is salted)
    expected = [re.fullmatch(pattern.strip("^$"), v) is not None for v in values]
    assert checks.matches(pa.array(values), pattern).tolist() == expected


def _is_date(text: str, fmt: str) -> bool:
    """strptime's verdict on exactly-sized digit strings (strptime alone accepts ``2024013``)."""
    if len(text) != (8 if fmt == "%Y%m%d" else 14):
        return False
    try:
        dt.datetime.strptime(text, fmt)
    except ValueError:
        return False
    return text.isdigit()


def test_dates_and_timestamps_agree_with_strptime() -> None:
    rng = random.Random(3)
    dates = [f"{rng.randint(0, 2100):04d}{rng.randint(0, 13):02d}{rng.randint(0, 32):02d}" for _ in range(3000)]
    dates += ["20240229", "20230229", "20000229", "19000229", "2024013", "2024-1-01"]
    assert checks.bad_date(pa.array(dates)).tolist() == [not _is_date(d, "%Y%m%d") for d in dates]
    stamps = [d + f"{rng.randint(0, 25):02d}{rng.randint(0, 61):02d}{rng.randint(0, 61):02d}" for d in dates[:2000]]
    assert checks.bad_timestamp(pa.array(stamps)).tolist() == [not _is_date(s, "%Y%m%d%H%M%S") for s in stamps]


def test_luhn_agrees_with_the_textbook_algorithm() -> None:
    rng = random.Random(5)
    numbers = ["".join(rng.choice("0123456789") for _ in range(rng.randint(13, 19))) for _ in range(5000)]
    assert checks.luhn_fails(pa.array(numbers)).tolist() == [not luhn_ok(n) for n in numbers]


def test_equal_strings_hash_equal_and_distinct_ones_do_not_collide_here() -> None:
    values = [f"TXN-{i:08d}" for i in range(20000)] + ["", "a", "a\x00", "TXN-00000001"]
    hashes = checks.hash64(pa.array(values)).tolist()
    assert hashes[1] == hashes[-1]
    assert len(set(hashes)) == len(set(values))
