"""Arrow schemas that follow from a contract: raw detail batches, staged rows and the target table.

Transform semantics shared by both engines (pyarrow and PySpark) — the parity test holds them to this:

* string fields keep their text; empty optional strings become null. Fixed-width strings are right-trimmed.
* integer fields -> int32 (int64 above 9 digits); decimal fields -> decimal128(digits, implied_decimals)
  built from the integer digits (exact, never float); a ``sign_field`` of ``-`` negates the value.
* date fields ``YYYYMMDD`` -> date32; blank optional dates -> null.
* timestamp fields ``YYYYMMDDHHMMSS`` -> timestamp[us, UTC].
* pii ``card_number`` -> ``card_last4`` (last four digits) and ``card_token`` (lower-case hex
  HMAC-SHA256 of the full number, keyed by the PAN key), in the card field's place; the number is dropped.
* derived columns follow the detail columns, in contract order:
  ``negate_if`` keeps the source type; ``not_equal`` is bool; ``ratio`` is decimal128(18, scale),
  rounded half away from zero, null when the denominator is 0; ``bucket`` is a string label.
* lineage columns close the row: business_date (date32, the header's), source_file (bare file name),
  execution_name (string), loaded_at (timestamp[us, UTC], one value per file).
* fields listed in ``drop`` do not appear. Staged parquet files leave out the partition column, which
  lives in the ``<partition>=YYYY-MM-DD`` directory name; ``stage_schema`` includes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from etl.contract import Contract, FieldSpec

RATIO_PRECISION = 18
TIMESTAMP = pa.timestamp("us", tz="UTC")


def raw_schema(contract: Contract) -> pa.Schema:
    """Detail batches as the parser yields them: every contract field as text, plus the line number."""
    return pa.schema([pa.field(f.name, pa.string()) for f in contract.fields] + [pa.field("_line", pa.int64())])


def field_type(spec: FieldSpec) -> pa.DataType:
    """Arrow type of a parsed detail field."""
    kind = spec.type.value
    if kind == "integer":
        return pa.int32() if spec.digits <= 9 else pa.int64()
    if kind == "decimal":
        return pa.decimal128(max(spec.digits, spec.implied_decimals + 1), spec.implied_decimals)
    if kind == "date":
        return pa.date32()
    if kind == "timestamp":
        return TIMESTAMP
    return pa.string()


def stage_schema(contract: Contract) -> pa.Schema:
    """Every staged column in order: details (pii replaced, drops removed), derived, lineage."""
    columns: list[pa.Field] = []
    for spec in contract.fields:
        if spec.name in contract.drop:
            continue
        if spec.pii.value == "card_number":
            nullable = not spec.required
            columns += [
                pa.field("card_last4", pa.string(), nullable),
                pa.field("card_token", pa.string(), nullable),
            ]
            continue
        columns.append(pa.field(spec.name, field_type(spec), nullable=not spec.required))
    for d in contract.derived:
        if d.kind == "negate_if":
            columns.append(pa.field(d.name, field_type(contract.field(d.source))))
        elif d.kind == "not_equal":
            columns.append(pa.field(d.name, pa.bool_()))
        elif d.kind == "ratio":
            columns.append(pa.field(d.name, pa.decimal128(RATIO_PRECISION, d.scale)))
        else:
            columns.append(pa.field(d.name, pa.string()))
    columns += [
        pa.field("business_date", pa.date32(), nullable=False),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("execution_name", pa.string(), nullable=False),
        pa.field("loaded_at", TIMESTAMP, nullable=False),
    ]
    return pa.schema(columns)


def parquet_schema(contract: Contract) -> pa.Schema:
    """Columns inside a staged parquet file: the stage schema less the partition column."""
    schema = stage_schema(contract)
    return schema.remove(schema.get_field_index(contract.partition_column))
