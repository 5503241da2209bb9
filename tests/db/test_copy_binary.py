"""Binary COPY built from Arrow: every type the tables use round-trips exactly through a real PostgreSQL, a
value the column cannot take is stopped before the COPY, and a binary COPY's error quotes no value."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import psycopg
import pyarrow as pa
import pytest

from etl.db.column_fit import ColumnFitError, check_fits, table_columns
from etl.db.copy_binary import SIGNATURE, TRAILER, copy_rows, encoder_for, fixed_first
from etl.db.errors import redacted_database_errors, safe_message

UTC_US = pa.timestamp("us", tz="UTC")
CARD = "4000056655665556"
TABLE = """
CREATE TABLE public.everything (
    s varchar(12), t text, i integer, b bigint, f boolean, d date, ts timestamptz,
    m numeric(12,2), r numeric(18,4), a numeric(5,3), n varchar(12) NOT NULL
)
"""
EDGE_TIMES = [
    dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
    dt.datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC),
    dt.datetime(1, 1, 1, tzinfo=dt.UTC),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC),
    dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
    dt.datetime(2024, 2, 29, 12, 0, 0, 1, tzinfo=dt.UTC),
]


def _decimals(texts: list[str | None], precision: int, scale: int) -> pa.Array:
    return pa.array([None if t is None else Decimal(t) for t in texts], pa.decimal128(precision, scale))


def batch_of_edges(rows: int = 6) -> pa.RecordBatch:
    rng = np.random.default_rng(5)
    money = ["0.00", "0.01", "-0.01", "9999999999.99", "-9999999999.99", None]
    ratio = ["0.0000", "99999999999999.9999", "-1.5000", "0.0001", None, "12345.6789"]
    apr = ["0.000", "99.999", "12.345", None, "0.001", "-1.000"]
    return pa.RecordBatch.from_pydict(
        {
            "s": pa.array(["", None, "é€x", "a" * 12, "0411", "x"][:rows], pa.string()),
            "t": pa.array(["long " * 50, "", None, "ü", "tab\tnew\nline", "q\"'"][:rows], pa.string()),
            "i": pa.array([0, -1, 2**31 - 1, -(2**31), None, 7][:rows], pa.int32()),
            "b": pa.array([0, -1, 2**63 - 1, -(2**63), None, 42][:rows], pa.int64()),
            "f": pa.array([True, False, None, True, False, True][:rows], pa.bool_()),
            "d": pa.array(
                [
                    dt.date(2000, 1, 1),
                    dt.date(1970, 1, 1),
                    dt.date(1, 1, 1),
                    dt.date(9999, 12, 31),
                    None,
                    dt.date(2024, 2, 29),
                ][:rows],
                pa.date32(),
            ),
            "ts": pa.array([*EDGE_TIMES][:rows], UTC_US),
            "m": _decimals(money[:rows], 12, 2),
            "r": _decimals(ratio[:rows], 18, 4),
            "a": _decimals(apr[:rows], 5, 3),
            "n": pa.array([str(x) for x in rng.integers(0, 10**9, rows)], pa.string()),
        }
    )


def _copy(conn: psycopg.Connection, batch: pa.RecordBatch) -> None:
    columns = list(table_columns(conn, "public", "everything").values())
    encoders = [encoder_for(c) for c in columns]
    with conn.cursor() as cur, cur.copy("COPY public.everything FROM STDIN (FORMAT binary)") as copy:
        copy.write(SIGNATURE)
        copy.write(copy_rows(batch, columns, encoders))
        copy.write(TRAILER)


def test_every_type_round_trips_exactly(conn: psycopg.Connection) -> None:
    conn.execute(TABLE)
    batch = batch_of_edges()
    _copy(conn, batch)
    stored = conn.execute("SELECT * FROM public.everything").fetchall()
    assert [list(row) for row in stored] == [list(r.values()) for r in batch.to_pylist()]


def test_many_random_values_round_trip(conn: psycopg.Connection) -> None:
    conn.execute(TABLE)
    rng = np.random.default_rng(9)
    n = 20_000
    cents = rng.integers(-(10**12) + 1, 10**12, n)
    micros = rng.integers(-62_135_596_800_000_000, 253_402_300_799_999_999, n)
    valid = rng.random(n) > 0.1
    batch = pa.RecordBatch.from_pydict(
        {
            "s": pa.array([str(x) for x in rng.integers(0, 10**12, n)], mask=~valid),
            "t": pa.array(["x" * int(k) for k in rng.integers(0, 300, n)]),
            "i": pa.array(rng.integers(-(2**31), 2**31, n).astype(np.int32), mask=~valid),
            "b": pa.array(rng.integers(-(2**62), 2**62, n)),
            "f": pa.array(rng.random(n) > 0.5, mask=~valid),
            "d": pa.array(rng.integers(-719_162, 2_932_896, n).astype(np.int32), pa.int32()).cast(pa.date32()),
            "ts": pa.array(micros, pa.int64()).cast(UTC_US),
            "m": pa.array([Decimal(int(c)).scaleb(-2) for c in cents], pa.decimal128(12, 2)),
            "r": pa.array([Decimal(int(c)).scaleb(-4) for c in cents], pa.decimal128(18, 4)),
            "a": pa.array([Decimal(int(c) % 100_000).scaleb(-3) for c in cents], pa.decimal128(5, 3)),
            "n": pa.array(["k"] * n),
        }
    )
    _copy(conn, batch)
    stored = conn.execute("SELECT * FROM public.everything ORDER BY b").fetchall()
    expected = sorted((list(r.values()) for r in batch.to_pylist()), key=lambda row: row[3])
    assert len(stored) == n
    for got, want in zip(stored, expected, strict=True):
        assert list(got) == want


def test_values_the_table_cannot_take_are_stopped_before_the_copy(conn: psycopg.Connection) -> None:
    conn.execute(TABLE)
    columns = list(table_columns(conn, "public", "everything").values())
    good = batch_of_edges(1)
    check_fits(good, columns)
    too_long = good.set_column(0, "s", pa.array([CARD]))
    with pytest.raises(ColumnFitError, match=r"column s: 1 value\(s\) longer than 12 characters") as caught:
        check_fits(too_long, columns)
    assert CARD not in str(caught.value)
    missing = good.set_column(10, "n", pa.array([None], pa.string()))
    with pytest.raises(ColumnFitError, match="column n: 1 missing value"):
        check_fits(missing, columns)
    wide = good.set_column(7, "m", pa.array([Decimal("10000000000.00")], pa.decimal128(14, 2)))
    with pytest.raises(ColumnFitError, match=r"wider than numeric\(12,2\)"):
        check_fits(wide, columns)


def test_a_failing_binary_copy_quotes_no_value(conn: psycopg.Connection) -> None:
    """Even when a value slips past every check, the server's report of a binary COPY names the line and the
    column only (a CSV COPY quotes the value: ``column s: "4000..."``); what leaves the loader is the primary
    message (``safe_message``)."""
    conn.execute(TABLE)
    columns = list(table_columns(conn, "public", "everything").values())
    encoders = [encoder_for(c) for c in columns]
    batch = batch_of_edges(2).set_column(0, "s", pa.array(["ok", CARD]))
    statement = "COPY public.everything FROM STDIN (FORMAT binary)"
    with (
        pytest.raises(psycopg.errors.StringDataRightTruncation) as caught,
        redacted_database_errors(),
        conn.cursor() as cur,
        cur.copy(statement) as copy,
    ):
        copy.write(SIGNATURE + copy_rows(batch, columns, encoders) + TRAILER)
    diag = caught.value.diag
    assert diag.context is not None and "line 2, column s" in diag.context and CARD not in diag.context
    assert CARD not in (diag.message_detail or "") and CARD not in str(caught.value)
    assert str(caught.value) == "value too long for type character varying(12) [22001]"
    with (
        pytest.raises(psycopg.errors.StringDataRightTruncation) as csv_caught,
        conn.cursor() as cur,
        cur.copy("COPY public.everything (s, n) FROM STDIN (FORMAT csv)") as copy,
    ):
        copy.write(f"{CARD},x\n")
    assert CARD in (csv_caught.value.diag.context or "")  # why the loader does not use CSV
    assert CARD not in safe_message(csv_caught.value)


def test_null_in_a_not_null_column_would_quote_the_row_so_it_is_checked_first(conn: psycopg.Connection) -> None:
    conn.execute(TABLE)
    with pytest.raises(psycopg.errors.NotNullViolation) as caught:
        conn.execute("INSERT INTO public.everything (s, n) VALUES (%s, NULL)", (CARD[:12],))
    assert CARD[:12] in (caught.value.diag.message_detail or "")  # "Failing row contains (...)"
    assert CARD[:12] not in safe_message(caught.value)


def test_columns_of_one_width_go_first_and_any_later_batch_still_fits(conn: psycopg.Connection) -> None:
    """The COPY lists the columns that are one width in the first batch first (one matrix per batch); a later
    batch where those columns are ragged (NULLs, other lengths) takes the per-row join and is stored the same."""
    conn.execute(TABLE)
    columns = list(table_columns(conn, "public", "everything").values())
    encoders = [encoder_for(c) for c in columns]
    uniform = batch_of_edges(6).set_column(0, "s", pa.array(["abcd"] * 6)).set_column(1, "t", pa.array(["xy"] * 6))
    uniform = uniform.set_column(10, "n", pa.array(["n"] * 6))
    order = fixed_first(uniform, columns, encoders)
    assert [columns[i].name for i in order][:2] == ["s", "t"]
    ragged = batch_of_edges(6)  # s and t: NULLs and several lengths
    ordered = [columns[i] for i in order]
    coders = [encoders[i] for i in order]
    names = ", ".join(c.name for c in ordered)
    with conn.cursor() as cur, cur.copy(f"COPY public.everything ({names}) FROM STDIN (FORMAT binary)") as copy:
        copy.write(SIGNATURE)
        copy.write(copy_rows(uniform, ordered, coders))
        copy.write(copy_rows(ragged, ordered, coders))
        copy.write(TRAILER)
    stored = [list(r) for r in conn.execute("SELECT * FROM public.everything ORDER BY ctid").fetchall()]
    expected = [list(r.values()) for r in uniform.to_pylist() + ragged.to_pylist()]
    assert stored == expected
