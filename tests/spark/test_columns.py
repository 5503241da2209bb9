"""Column builders checked against pure-Python references on many values: HMAC keys and exact ratios."""

from __future__ import annotations

import hashlib
import hmac
import random
from decimal import Decimal

import pytest
from conftest import expected_ratio
from pyspark.sql import functions as F
from pyspark.sql import types as T

from etl.contract import Ratio
from etl.spark.columns import decimal_from_digits, derived_column, hmac_sha256_hex

NUMBERS = ["4111111111111111", "378282246310005", "6011000000000000004", "0", "", "é-unicode"]


@pytest.mark.parametrize(
    "key",
    [b"k", b"x" * 32, b"y" * 64, b"z" * 65, bytes(range(256)), b""],
    ids=["1B", "32B", "64B-block", "65B-hashed", "256B-hashed", "empty"],
)
def test_hmac_equals_python_hmac(spark, key):
    df = spark.createDataFrame([(n,) for n in NUMBERS], "n string")
    got = {r.n: r.t for r in df.select("n", hmac_sha256_hex(F.col("n"), key).alias("t")).collect()}
    assert got == {n: hmac.new(key, n.encode(), hashlib.sha256).hexdigest() for n in NUMBERS}


def _pairs() -> list[tuple[int, int]]:
    rng = random.Random(20240301)
    edges = [
        (1, 20000),
        (-1, 20000),
        (3, 20000),
        (1, 3),
        (2, 3),
        (-2, 3),
        (0, 5),
        (5, 0),
        (-5, 0),
        (999999999999, 1),
        (-999999999999, 999999999999),
        (1, 999999999999),
        (999999999998, 999999999999),
        (500000000000, 999999999999),
        (499999999999, 999999999998),
    ]
    rand = [(rng.randint(-(10**12) + 1, 10**12 - 1), rng.randint(0, 10**12 - 1)) for _ in range(1500)]
    small = [(rng.randint(-50000, 50000), rng.randint(1, 300)) for _ in range(500)]
    return edges + rand + small


def test_ratio_rounds_half_away_from_zero_exactly(spark):
    pairs = _pairs()
    rows = [(i, Decimal(n).scaleb(-2), Decimal(d).scaleb(-2)) for i, (n, d) in enumerate(pairs)]
    df = spark.createDataFrame(rows, "i int, n decimal(12,2), d decimal(12,2)")
    ratio = Ratio(name="r", kind="ratio", numerator="n", denominator="d", scale=4)
    types = {"n": T.DecimalType(12, 2), "d": T.DecimalType(12, 2)}
    out = df.select("i", derived_column(ratio, types).alias("r"))
    assert dict(out.dtypes)["r"] == "decimal(18,4)"
    got = {r.i: r.r for r in out.collect()}
    for i, (n, d) in enumerate(pairs):
        want = expected_ratio(n, d)
        assert got[i] == (None if want is None else Decimal(want).scaleb(-4)), (n, d)


@pytest.mark.parametrize(
    ("digits", "precision", "scale", "negative", "want"),
    [
        ("000000000000", 12, 2, False, "0.00"),
        ("999999999999", 12, 2, False, "9999999999.99"),
        ("999999999999", 12, 2, True, "-9999999999.99"),
        ("5", 12, 2, False, "0.05"),
        ("45", 12, 2, True, "-0.45"),
        ("12345", 5, 3, False, "12.345"),
        ("7", 5, 0, False, "7"),
        ("000000000000", 12, 2, True, "0.00"),
        ("9999999999999999", 18, 4, False, "999999999999.9999"),
    ],
)
def test_decimal_from_digits_is_exact(spark, digits, precision, scale, negative, want):
    df = spark.createDataFrame([(digits, negative)], "s string, neg boolean")
    value = df.select(decimal_from_digits(F.col("s"), precision, scale, F.col("neg")).alias("v")).first().v
    assert value == Decimal(want) and str(value) == want
