"""Spark column expressions for the transform semantics of ``etl.schema`` (built-ins only, no Python UDF).

Every conversion is exact: decimals are cast from digit strings (never through double), ratios are
rounded on integers with ``div``, and the card token is HMAC-SHA256 composed from ``sha2`` so it equals
Python's ``hmac`` byte for byte. Nothing here reads data; these only build expressions.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from etl.contract import BucketDerivation, Derivation, FieldSpec, FieldType, NegateIf, NotEqual, Ratio
from etl.schema import RATIO_PRECISION

HMAC_BLOCK = 64  # SHA-256 block size in bytes


def spark_type(arrow_type: pa.DataType) -> T.DataType:
    """The Spark type that writes back to parquet as ``arrow_type``."""
    if pa.types.is_string(arrow_type):
        return T.StringType()
    if pa.types.is_int32(arrow_type):
        return T.IntegerType()
    if pa.types.is_int64(arrow_type):
        return T.LongType()
    if pa.types.is_decimal(arrow_type):
        return T.DecimalType(arrow_type.precision, arrow_type.scale)
    if pa.types.is_date32(arrow_type):
        return T.DateType()
    if pa.types.is_timestamp(arrow_type):
        return T.TimestampType()
    if pa.types.is_boolean(arrow_type):
        return T.BooleanType()
    raise TypeError(f"no Spark type for Arrow type {arrow_type}")


def quoted(name: str) -> str:
    """A column name as a SQL identifier (backticks doubled inside)."""
    return "`" + name.replace("`", "``") + "`"


def blank_to_null(text: Column, value: Column) -> Column:
    """``value``, or null where ``text`` is empty or only spaces."""
    return F.when(F.trim(text) == "", F.lit(None)).otherwise(value)


def decimal_from_digits(digits: Column, precision: int, scale: int, negative: Column | None = None) -> Column:
    """Exact decimal(precision, scale) from an unsigned digit string with ``scale`` implied decimals.

    The decimal point is inserted into the text and the text is cast, so no binary float is involved.
    """
    if scale:
        padded = F.when(F.length(digits) <= scale, F.lpad(digits, scale + 1, "0")).otherwise(digits)
        text = F.regexp_replace(padded, rf"(\d{{{scale}}})$", r".$1")
    else:
        text = digits
    if negative is not None:
        text = F.concat(F.when(negative, F.lit("-")).otherwise(F.lit("")), text)
    return text.cast(T.DecimalType(precision, scale))


def make_date(text: Column) -> Column:
    """``YYYYMMDD`` -> date."""
    part = _parts(text, (1, 4), (5, 2), (7, 2))
    return F.make_date(*part)


def make_timestamp_utc(text: Column) -> Column:
    """``YYYYMMDDHHMMSS`` -> timestamp, read as UTC whatever the session time zone."""
    parts = _parts(text, (1, 4), (5, 2), (7, 2), (9, 2), (11, 2), (13, 2))
    return F.make_timestamp(*parts, F.lit("UTC"))


def _parts(text: Column, *spans: tuple[int, int]) -> list[Column]:
    return [F.substring(text, start, width).cast(T.IntegerType()) for start, width in spans]


def typed_field(spec: FieldSpec, text: Column, sign: Column | None, fixed_width: bool) -> Column:
    """The staged value of a detail field from its raw text (``sign`` is the raw sign field, if any)."""
    if spec.type is FieldType.string:
        value = F.rtrim(text) if fixed_width else text
        return value if spec.required else F.when(value == "", F.lit(None)).otherwise(value)
    digits = F.trim(text)
    if spec.type is FieldType.integer:
        kind = T.IntegerType() if spec.digits <= 9 else T.LongType()
        value = digits.cast(kind)
    elif spec.type is FieldType.decimal:
        arrow = pa.decimal128(max(spec.digits, spec.implied_decimals + 1), spec.implied_decimals)
        negative = None if sign is None else F.trim(sign) == "-"
        value = decimal_from_digits(digits, arrow.precision, arrow.scale, negative)
    elif spec.type is FieldType.date:
        value = make_date(digits)
    else:
        value = make_timestamp_utc(digits)
    return blank_to_null(text, value)


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """Standard HMAC inner and outer pads of ``key`` for SHA-256 (RFC 2104)."""
    if len(key) > HMAC_BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(HMAC_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def hmac_sha256_hex(text: Column, key: bytes) -> Column:
    """Lower-case hex HMAC-SHA256(key, UTF-8 bytes of ``text``), from Spark's ``sha2`` on binary."""
    ipad, opad = hmac_pads(key)
    inner = F.sha2(F.concat(F.unhex(F.lit(ipad.hex())), text.cast(T.BinaryType())), 256)
    return F.sha2(F.concat(F.unhex(F.lit(opad.hex())), F.unhex(inner)), 256)


def card_columns(text: Column, key: bytes, fixed_width: bool) -> tuple[Column, Column]:
    """``card_last4`` and ``card_token`` of a card number; null when the number is empty."""
    number = F.rtrim(text) if fixed_width else text
    number = F.when(number == "", F.lit(None)).otherwise(number)
    return F.substring(number, -4, 4), hmac_sha256_hex(number, key)


def ratio_sql(numerator: str, denominator: str, num_type: T.DataType, den_type: T.DataType,
              scale: int) -> str:
    """SQL for the unscaled (x 10^scale) ratio, rounded half away from zero; null when the denominator is 0.

    round_half_up(x / y) == (2x + y) div 2y for x, y >= 0; ``div`` on decimals is exact, so the result
    matches an integer computation on the unscaled values.
    """
    n, d = _exact(quoted(numerator), num_type), _exact(quoted(denominator), den_type)
    twice_power = 2 * 10**scale
    quotient = f"((abs({n}) * {twice_power} + abs({d})) div (2 * abs({d})))"
    sign = f"(CASE WHEN ({n} < 0) <> ({d} < 0) THEN -1 ELSE 1 END)"
    return f"CASE WHEN {d} = 0 THEN NULL ELSE {sign} * {quotient} END"


def _exact(sql: str, kind: T.DataType) -> str:
    """Integers widened to decimal so the arithmetic cannot overflow."""
    return sql if isinstance(kind, T.DecimalType) else f"CAST({sql} AS DECIMAL(20, 0))"


def decimal_from_unscaled(unscaled: Column, precision: int, scale: int) -> Column:
    """Exact decimal(precision, scale) from an integer count of 10^-scale units."""
    digits = F.abs(unscaled).cast(T.StringType())
    return decimal_from_digits(digits, precision, scale, negative=unscaled < 0)


def bucket_column(source: Column, derivation: BucketDerivation) -> Column:
    """Label of the first bucket whose inclusive ``max`` is >= the source; null for a null source."""
    *bounded, last = derivation.buckets
    label = F.when(source.isNull(), F.lit(None))
    for bucket in bounded:
        label = label.when(source <= bucket.max, F.lit(bucket.label))
    return label.otherwise(F.lit(last.label))


def derived_column(derivation: Derivation, types: dict[str, T.DataType]) -> Column:
    """The expression of one contract derivation over the typed detail columns."""
    if isinstance(derivation, NegateIf):
        source = F.col(quoted(derivation.source))
        return F.when(F.col(quoted(derivation.when_field)) == derivation.equals, -source).otherwise(source)
    if isinstance(derivation, NotEqual):
        return F.col(quoted(derivation.source)) != F.lit(derivation.value)
    if isinstance(derivation, Ratio):
        sql = ratio_sql(derivation.numerator, derivation.denominator, types[derivation.numerator],
                        types[derivation.denominator], derivation.scale)
        return decimal_from_unscaled(F.expr(sql), RATIO_PRECISION, derivation.scale)
    if isinstance(derivation, BucketDerivation):
        return bucket_column(F.col(quoted(derivation.source)), derivation)
    raise TypeError(f"unsupported derivation {derivation!r}")


def delimiter_regex(delimiter: str) -> str:
    """The contract delimiter as a Java regex matching it literally (``Pattern.quote``)."""
    return rf"\Q{delimiter}\E"
