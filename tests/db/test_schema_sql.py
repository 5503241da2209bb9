"""The SQL tables and the contracts cannot drift: columns, types, nullability and keys must agree."""

from __future__ import annotations

import psycopg
import pyarrow as pa
import pytest

from etl.contract import Contract, all_contracts
from etl.schema import stage_schema


def expected_type(arrow: pa.DataType) -> tuple[str, int | None, int | None]:
    """(information_schema data_type, numeric precision, scale) a stage column must have in PostgreSQL."""
    if pa.types.is_decimal(arrow):
        return "numeric", arrow.precision, arrow.scale
    simple = {pa.int32(): "integer", pa.int64(): "bigint", pa.date32(): "date", pa.bool_(): "boolean"}
    if arrow in simple:
        return simple[arrow], None, None
    if pa.types.is_timestamp(arrow):
        assert arrow.tz == "UTC"
        return "timestamp with time zone", None, None
    assert pa.types.is_string(arrow), arrow
    return "text", None, None


def table_columns(conn: psycopg.Connection, contract: Contract) -> list[tuple]:
    return conn.execute(
        """SELECT column_name, data_type, numeric_precision, numeric_scale, is_nullable,
                  character_maximum_length
           FROM information_schema.columns WHERE table_schema = %s AND table_name = %s
           ORDER BY ordinal_position""",
        (contract.target_table.schema_, contract.target_table.name),
    ).fetchall()


@pytest.mark.parametrize("contract", all_contracts(), ids=lambda c: c.feed)
def test_table_matches_stage_schema(conn: psycopg.Connection, contract: Contract) -> None:
    stage = stage_schema(contract)
    action = contract.action.field if contract.action else None
    expected = [f for f in stage if f.name != action]
    actual = table_columns(conn, contract)
    assert [c[0] for c in actual] == [f.name for f in expected]
    for field, (name, data_type, precision, scale, nullable, _) in zip(expected, actual, strict=True):
        want_type, want_precision, want_scale = expected_type(field.type)
        got_type = "text" if data_type in ("character varying", "text") else data_type
        assert (got_type, precision if want_precision else None, scale if want_precision else None) == (
            want_type,
            want_precision,
            want_scale,
        ), name
        assert (nullable == "YES") == field.nullable, f"{name}: nullability differs from the contract"


@pytest.mark.parametrize("contract", all_contracts(), ids=lambda c: c.feed)
def test_varchar_lengths_hold_every_valid_value(conn: psycopg.Connection, contract: Contract) -> None:
    """A varchar limit may never be shorter than the contract allows (max_length or fixed width)."""
    limits = {name: length for name, *_, length in table_columns(conn, contract) if length is not None}
    for spec in contract.fields:
        if spec.name in limits:
            allowed = max([len(a) for a in spec.allowed or ()] + [spec.max_length or 0, spec.width or 0])
            assert allowed and limits[spec.name] >= allowed, spec.name


@pytest.mark.parametrize("contract", all_contracts(), ids=lambda c: c.feed)
def test_primary_key_is_the_contracts(conn: psycopg.Connection, contract: Contract) -> None:
    rows = conn.execute(
        """SELECT a.attname FROM pg_index i
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
           WHERE i.indrelid = to_regclass(%s) AND i.indisprimary
           ORDER BY array_position(i.indkey::int2[], a.attnum)""",
        (f"{contract.target_table.schema_}.{contract.target_table.name}",),
    ).fetchall()
    assert [r[0] for r in rows] == list(contract.primary_key)
