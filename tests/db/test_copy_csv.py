"""The COPY CSV encoder: timestamps built from integer parts must be the same instants PostgreSQL stores."""

from __future__ import annotations

import datetime as dt

import numpy as np
import psycopg
import pyarrow as pa
import pytest

from etl.db.copy_csv import CopyFormatError, csv_bytes, timestamp_text

UTC_US = pa.timestamp("us", tz="UTC")
EDGES = [
    dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
    dt.datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC),  # negative epoch: floor, not truncation
    dt.datetime(1, 1, 1, tzinfo=dt.UTC),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC),
    dt.datetime(2024, 2, 29, 12, 0, 0, 1, tzinfo=dt.UTC),
    dt.datetime(2024, 3, 1, 0, 0, tzinfo=dt.UTC),
    dt.datetime(2038, 1, 19, 3, 14, 8, 500_000, tzinfo=dt.UTC),
]


def random_instants(n: int, seed: int = 7) -> pa.Array:
    rng = np.random.default_rng(seed)
    low, high = -62_135_596_800_000_000, 253_402_300_799_999_999  # 0001-01-01 .. 9999-12-31 23:59:59.999999
    return pa.array(rng.integers(low, high, n, endpoint=True), pa.int64()).cast(UTC_US)


def test_text_is_the_same_instant_for_edges_nulls_and_random_values() -> None:
    values = pa.concat_arrays([pa.array([*EDGES, None], UTC_US), random_instants(5000)])
    text = timestamp_text(values)
    assert text.null_count == 1 and text[len(EDGES)].as_py() is None
    assert text[0].as_py() == "1970-01-01 00:00:00.000000+00"
    assert text[1].as_py() == "1969-12-31 23:59:59.999999+00"
    parsed = [dt.datetime.fromisoformat(s + ":00") if s else None for s in text.to_pylist()]
    assert parsed == values.to_pylist()


def test_sliced_input_and_years_beyond_9999_fall_back_exactly() -> None:
    values = pa.array(EDGES, UTC_US).slice(2, 3)
    assert timestamp_text(values).to_pylist() == [
        "0001-01-01 00:00:00.000000+00",
        "9999-12-31 23:59:59.999999+00",
        "2024-02-29 12:00:00.000001+00",
    ]
    far = pa.array([300_000_000_000_000_000], pa.int64()).cast(UTC_US)  # year 11476: pyarrow's own cast
    assert timestamp_text(far).to_pylist() == far.cast(pa.string()).to_pylist()


def test_postgresql_reads_back_every_instant(db_url: str) -> None:
    values = pa.concat_arrays([pa.array([*EDGES, None], UTC_US), random_instants(2000, seed=11)])
    batch = pa.record_batch([pa.array(range(len(values))), values], names=["i", "ts"])
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'America/New_York'")  # the '+00' suffix, not the session, decides
        conn.execute("CREATE TEMP TABLE t (i int, ts timestamptz)")
        with conn.cursor().copy("COPY t FROM STDIN (FORMAT csv, NULL '')") as copy:
            copy.write(csv_bytes(batch, ["i", "ts"]))
        conn.execute("SET TimeZone = 'UTC'")  # read back without a year-1 instant turning BC in New York
        stored = [row[0] for row in conn.execute("SELECT ts FROM t ORDER BY i")]
    assert stored == values.to_pylist()


def test_missing_columns_are_named() -> None:
    batch = pa.record_batch([pa.array([1])], names=["a"])
    with pytest.raises(CopyFormatError, match=r"\['b'\]"):
        csv_bytes(batch, ["a", "b"])
