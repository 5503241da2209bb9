"""The pyarrow transform engine: raw detail batches (all text) to typed, masked, derived, staged rows.

Follows the semantics in the ``etl.schema`` docstring exactly; the PySpark engine follows the same text
and a parity test holds the two together. Pure: Arrow in, Arrow out, no I/O. Vectorised with Arrow
compute and numpy; the only Python loop is the HMAC over distinct card numbers.

Rows with record errors are removed by the caller first. Text that still does not parse becomes null
rather than raising, so a bad row can never take a whole file down here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.contract import BucketDerivation, Contract, FieldSpec, FieldType, NegateIf, NotEqual, Pii, Ratio
from etl.core.card_runs import mask_card_runs
from etl.core.mask import CardMasker
from etl.schema import RATIO_PRECISION, TIMESTAMP, field_type, stage_schema

_INT64_DIGITS = 18  # every 18-digit unscaled value fits int64 exactly
_WIDE = pa.decimal128(38, 0)


@dataclass(frozen=True)
class Lineage:
    """Where staged rows came from; one value per file, stamped on every row."""

    business_date: dt.date
    source_file: str
    execution_name: str
    loaded_at: dt.datetime

    def __post_init__(self) -> None:
        if self.loaded_at.tzinfo is None:
            raise ValueError("loaded_at must be timezone-aware (UTC)")
        object.__setattr__(self, "loaded_at", self.loaded_at.astimezone(dt.UTC))
        object.__setattr__(self, "source_file", PurePosixPath(self.source_file.replace("\\", "/")).name)

    @classmethod
    def now(cls, business_date: dt.date, source_file: str, execution_name: str) -> Lineage:
        """Lineage stamped with the current UTC time, truncated to microseconds like the column."""
        return cls(business_date, source_file, execution_name, dt.datetime.now(dt.UTC))


def transform_batches(
    batches: Iterable[pa.RecordBatch], contract: Contract, lineage: Lineage, masker: CardMasker
) -> Iterator[pa.RecordBatch]:
    """Transform a stream of raw batches lazily (bounded memory for the stage writer)."""
    for batch in batches:
        yield transform_batch(batch, contract, lineage, masker)


def transform_table(table: pa.Table, contract: Contract, lineage: Lineage, masker: CardMasker) -> pa.Table:
    """Transform a whole raw table (notebooks, tests); the result has ``stage_schema(contract)``."""
    out = list(transform_batches(table.to_batches(), contract, lineage, masker))
    return pa.Table.from_batches(out, schema=stage_schema(contract))


def transform_batch(batch: pa.RecordBatch, contract: Contract, lineage: Lineage, masker: CardMasker) -> pa.RecordBatch:
    """One raw batch (``raw_schema(contract)``) to one staged batch (``stage_schema(contract)``)."""
    fixed = contract.format == "fixed_width"
    text = {spec.name: _text(batch.column(spec.name), fixed) for spec in contract.fields}
    typed = {spec.name: _typed(spec, text) for spec in contract.fields}
    columns: list[pa.Array] = []
    for spec in contract.fields:
        if spec.name in contract.drop:
            continue
        if spec.pii is Pii.card_number:
            columns += masker.mask(typed[spec.name])
        else:
            columns.append(typed[spec.name])
    columns += [_derive(d, typed) for d in contract.derived]
    columns += _lineage_columns(lineage, batch.num_rows)
    return pa.RecordBatch.from_arrays(columns, schema=stage_schema(contract))


# --- fields ---------------------------------------------------------------------------------------------


def _text(column: pa.Array, fixed: bool) -> pa.Array:
    """Raw text as the types read it: fixed-width values are space padded on the right."""
    return pc.utf8_rtrim(column, characters=" ") if fixed else column


def _blank_to_null(values: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, values.type), values)


def _typed(spec: FieldSpec, text: dict[str, pa.Array]) -> pa.Array:
    values = text[spec.name]
    kind = spec.type
    if kind is FieldType.string:
        values = values if spec.required else _blank_to_null(values)
        # free text keeps its record with any card number masked; in any other field a card number has
        # rejected the record already (R007), and masking here too means no path can stage it in clear
        return mask_card_runs(values, loose=spec.pii is Pii.free_text) if spec.may_hold_card_run else values
    if kind is FieldType.integer:
        return _parse_int(_blank_to_null(values), field_type(spec))
    if kind is FieldType.decimal:
        return _parse_decimal(spec, _blank_to_null(values), text.get(spec.sign_field or ""))
    if kind is FieldType.date:
        parsed = pc.strptime(values, format="%Y%m%d", unit="s", error_is_null=True)
        return parsed.cast(pa.date32())
    parsed = pc.strptime(values, format="%Y%m%d%H%M%S", unit="us", error_is_null=True)
    return parsed.cast(TIMESTAMP)  # wall-clock text is UTC: a metadata-only cast


def _parse_int(values: pa.Array, to: pa.DataType) -> pa.Array:
    """Digit strings to integers; anything unparsable (never expected after validation) becomes null."""
    try:
        return pc.cast(values, to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        digits = 9 if to == pa.int32() else _INT64_DIGITS
        ok = pc.match_substring_regex(values, rf"^\d{{1,{digits}}}$")
        return pc.cast(pc.if_else(ok, values, pa.scalar(None, values.type)), to)


def _parse_decimal(spec: FieldSpec, values: pa.Array, sign: pa.Array | None) -> pa.Array:
    """Digits with implied decimals to an exact decimal: the digits are the unscaled integer."""
    target = field_type(spec)
    if target.precision <= _INT64_DIGITS:
        unscaled = _parse_int(values, pa.int64())
    else:  # wide values: Arrow's string -> decimal cast is exact too, just slower
        ok = pc.match_substring_regex(values, rf"^\d{{1,{target.precision}}}$")
        unscaled = pc.cast(pc.if_else(ok, values, pa.scalar(None, values.type)), _WIDE)
    if sign is not None:
        unscaled = pc.if_else(pc.equal(sign, "-"), pc.negate(unscaled), unscaled)
    return _decimal_from_unscaled(unscaled, target)


def _decimal_from_unscaled(unscaled: pa.Array, target: pa.Decimal128Type) -> pa.Array:
    """Reinterpret integers as decimals with ``target.scale`` implied digits (no multiplication, no float).

    Arrow's integer -> decimal cast would multiply by 10**scale. Casting to scale 0 and viewing the same
    128-bit values as the target type keeps the digits; the precision is checked on the integers first
    (a checked narrowing decimal cast does the same but is 7x slower).
    """
    if unscaled.type != _WIDE:
        low, high = pc.min_max(unscaled).values()
        limit = 10**target.precision
        if low.is_valid and not (-limit < low.as_py() and high.as_py() < limit):
            raise pa.ArrowInvalid(f"value does not fit {target}")
        unscaled = pc.cast(unscaled, _WIDE)  # wide inputs are digit-limited to the precision already
    return unscaled.view(target)


# --- derived columns ------------------------------------------------------------------------------------


def _derive(d: NegateIf | NotEqual | Ratio | BucketDerivation, typed: dict[str, pa.Array]) -> pa.Array:
    if isinstance(d, NegateIf):
        source = typed[d.source]
        return pc.if_else(pc.equal(typed[d.when_field], d.equals), pc.negate(source), source)
    if isinstance(d, NotEqual):
        source = typed[d.source]
        return pc.not_equal(source, pa.scalar(d.value).cast(source.type))
    if isinstance(d, Ratio):
        return _ratio(typed[d.numerator], typed[d.denominator], d.scale)
    return _bucket(typed[d.source], d)


def _unscaled(values: pa.Array) -> tuple[np.ndarray, int]:
    """Exact integers behind a decimal (precision <= 18) or integer array, nulls as 0, and the scale."""
    if pa.types.is_decimal(values.type):
        if values.type.precision > _INT64_DIGITS:
            raise NotImplementedError("ratio over decimals wider than 18 digits")
        words = np.frombuffer(values.buffers()[1], dtype=np.int64)
        start = 2 * values.offset
        # little-endian 128-bit two's complement: the low word is the value when it fits in int64
        return words[start : start + 2 * len(values) : 2].copy(), values.type.scale
    return pc.fill_null(values, 0).to_numpy(zero_copy_only=False).astype(np.int64), 0


def _ratio(numerator: pa.Array, denominator: pa.Array, scale: int) -> pa.Array:
    """``numerator / denominator`` at ``scale``, rounded half away from zero, in integer arithmetic."""
    num, num_scale = _unscaled(numerator)
    den, den_scale = _unscaled(denominator)
    null = (pc.or_(numerator.is_null(), denominator.is_null())).to_numpy(zero_copy_only=False) | (den == 0)
    shift = den_scale + scale - num_scale
    limit = np.iinfo(np.int64).max
    biggest = max(int(np.abs(num).max(initial=0)), int(np.abs(den).max(initial=0)))
    if biggest * 10 ** abs(shift) > limit:  # would overflow int64: exact Python integers instead
        num, den = num.astype(object), den.astype(object)
    if shift >= 0:
        num = num * 10**shift
    else:
        den = den * 10**-shift
    den = np.where(null, 1, den)
    a_num, a_den = np.abs(num), np.abs(den)
    quotient, remainder = a_num // a_den, a_num % a_den
    quotient = quotient + (remainder >= a_den - remainder)
    result = np.where((num < 0) != (den < 0), -quotient, quotient)
    unscaled = pa.array(result.astype(np.int64) if result.dtype == object else result, pa.int64(), mask=null)
    return _decimal_from_unscaled(unscaled, pa.decimal128(RATIO_PRECISION, scale))


def _bucket(values: pa.Array, d: BucketDerivation) -> pa.Array:
    """Label of the first bucket whose inclusive ``max`` is >= the value (the last bucket is open)."""
    bounds = np.array([b.max for b in d.buckets[:-1]], dtype=np.int64)
    numbers = pc.fill_null(values, 0).to_numpy(zero_copy_only=False)
    index = np.searchsorted(bounds, numbers, side="left")
    labels = pa.array([b.label for b in d.buckets], pa.string())
    return labels.take(pa.array(index, pa.int32(), mask=values.is_null().to_numpy(zero_copy_only=False)))


# --- lineage --------------------------------------------------------------------------------------------


def _lineage_columns(lineage: Lineage, rows: int) -> list[pa.Array]:
    return [
        pa.repeat(pa.scalar(lineage.business_date, pa.date32()), rows),
        pa.repeat(pa.scalar(lineage.source_file, pa.string()), rows),
        pa.repeat(pa.scalar(lineage.execution_name, pa.string()), rows),
        pa.repeat(pa.scalar(lineage.loaded_at, TIMESTAMP), rows),
    ]
