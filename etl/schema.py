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

import pyarrow as pa

from etl.contract import BucketDerivation, Contract, FieldSpec, FieldType, NegateIf, NotEqual, Pii, Ratio

RATIO_PRECISION = 18
TIMESTAMP = pa.timestamp("us", tz="UTC")


def raw_schema(contract: Contract) -> pa.Schema:
    """Detail batches as the parser yields them: every contract field as text, plus the line number."""
    return pa.schema([pa.field(f.name, pa.string()) for f in contract.fields] + [pa.field("_line", pa.int64())])


def field_type(spec: FieldSpec) -> pa.DataType:
    """Arrow type of a parsed detail field."""
    match spec.type:
        case FieldType.integer:
            return pa.int32() if spec.digits <= 9 else pa.int64()
        case FieldType.decimal:
            return pa.decimal128(max(spec.digits, spec.implied_decimals + 1), spec.implied_decimals)
        case FieldType.date:
            return pa.date32()
        case FieldType.timestamp:
            return TIMESTAMP
        case FieldType.string:
            return pa.string()
    raise TypeError(f"{spec.name}: no Arrow type for field type {spec.type!r}")


def derived_type(contract: Contract, derived: NegateIf | NotEqual | Ratio | BucketDerivation) -> pa.DataType:
    """Arrow type of a derived column (a derivation kind the schema does not know is an error, not a string)."""
    match derived:
        case NegateIf():
            return field_type(contract.field(derived.source))
        case NotEqual():
            return pa.bool_()
        case Ratio():
            return pa.decimal128(RATIO_PRECISION, derived.scale)
        case BucketDerivation():
            return pa.string()
    raise TypeError(f"{derived.name}: no Arrow type for derivation {type(derived).__name__}")


def stage_schema(contract: Contract) -> pa.Schema:
    """Every staged column in order: details (pii replaced, drops removed), derived, lineage."""
    columns: list[pa.Field] = []
    for spec in contract.fields:
        if spec.name in contract.drop:
            continue
        if spec.pii is Pii.card_number:
            nullable = not spec.required
            columns += [
                pa.field("card_last4", pa.string(), nullable),
                pa.field("card_token", pa.string(), nullable),
            ]
            continue
        columns.append(pa.field(spec.name, field_type(spec), nullable=not spec.required))
    for d in contract.derived:
        columns.append(pa.field(d.name, derived_type(contract, d)))
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
