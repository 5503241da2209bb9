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

from etl.contract import BucketDerivation, Derivation, FieldSpec, FieldType, NegateIf, NotEqual, Pii, Ratio
from etl.core.card_runs import KEEP_LAST, MAX_DIGITS, MAX_GROUP, MIN_DIGITS, PREFILTER
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
        value = value if spec.required else F.when(value == "", F.lit(None)).otherwise(value)
        return mask_card_runs(value, loose=spec.pii is Pii.free_text) if spec.may_hold_card_run else value
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


def ratio_sql(numerator: str, denominator: str, num_type: T.DataType, den_type: T.DataType, scale: int) -> str:
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
        sql = ratio_sql(
            derivation.numerator,
            derivation.denominator,
            types[derivation.numerator],
            types[derivation.denominator],
            derivation.scale,
        )
        return decimal_from_unscaled(F.expr(sql), RATIO_PRECISION, derivation.scale)
    if isinstance(derivation, BucketDerivation):
        return bucket_column(F.col(quoted(derivation.source)), derivation)
    raise TypeError(f"unsupported derivation {derivation!r}")


def delimiter_regex(delimiter: str) -> str:
    """The contract delimiter as a Java regex matching it literally (``Pattern.quote``)."""
    return rf"\Q{delimiter}\E"


# --- card numbers outside the card field (the definition is etl.core.card_runs's; tests hold them equal) ---

_CONTIGUOUS = f"[0-9]{{{MIN_DIGITS},}}"
# groups of 1-6 digits joined by spaces or dashes, not glued to a letter or digit at either end
_FORMATTED = f"(?<![A-Za-z0-9])[0-9]{{1,{MAX_GROUP}}}(?:[ -]+[0-9]{{1,{MAX_GROUP}}})+(?![A-Za-z0-9])"
_JOINS = "(?<=[0-9])[ -]+(?=[0-9])"  # separators between two digits
_LAST_FOUR = f"[0-9](?:[^0-9]*[0-9]){{{KEEP_LAST - 1}}}[^0-9]*$"


def _luhn_ok(digits: Column) -> Column:
    """Luhn check of a digit string: every second digit from the right doubled (digit sums), total % 10 == 0."""
    doubled = F.array(*[F.lit(v) for v in (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)])
    n = F.length(digits)

    def add(total: Column, i: Column) -> Column:
        digit = digits.substr(n - i + 1, F.lit(1)).cast(T.IntegerType())
        return total + F.when(i % 2 == 0, F.element_at(doubled, digit + 1)).otherwise(digit)

    return F.aggregate(F.sequence(F.lit(1), n), F.lit(0), add) % 10 == 0


def _contiguous_card(run: Column) -> Column:
    """A run of 13+ digits holds a Luhn-valid window of 13-19 digits."""
    n = F.length(run)
    return F.exists(
        F.sequence(F.lit(0), n - MIN_DIGITS),
        lambda s: F.exists(
            F.sequence(F.lit(MIN_DIGITS), F.least(F.lit(MAX_DIGITS), n - s)),
            lambda w: _luhn_ok(run.substr(s + 1, w)),
        ),
    )


def _formatted_card(chain: Column) -> Column:
    """Consecutive whole groups of a chain hold 13-19 digits that pass the Luhn check."""
    groups = F.split(chain, "[ -]+")
    n = F.size(groups)
    return F.exists(
        F.sequence(F.lit(1), n),
        lambda i: F.exists(
            F.sequence(i, n),
            lambda j: _window_card(F.array_join(F.slice(groups, i, j - i + 1), "")),
        ),
    )


def _window_card(digits: Column) -> Column:
    n = F.length(digits)
    return F.when((n >= MIN_DIGITS) & (n <= MAX_DIGITS), _luhn_ok(digits)).otherwise(F.lit(False))


def holds_card_run(value: Column, *, loose: bool = False) -> Column:
    """True when the text holds a card-number run (``etl.core.card_runs``), false otherwise or for null.
    ``loose`` (free text): digits joined by spaces or dashes are one run, whatever their grouping."""
    if loose:
        joined = F.regexp_replace(value, _JOINS, "")
        found = F.exists(F.regexp_extract_all(joined, F.lit(_CONTIGUOUS), 0), _contiguous_card)
    else:
        contiguous = F.exists(F.regexp_extract_all(value, F.lit(_CONTIGUOUS), 0), _contiguous_card)
        formatted = F.exists(F.regexp_extract_all(value, F.lit(_FORMATTED), 0), _formatted_card)
        found = contiguous | formatted
    return F.coalesce(F.when(value.rlike(PREFILTER), found).otherwise(F.lit(False)), F.lit(False))


def mask_card_runs(value: Column, *, loose: bool = False) -> Column:
    """The text with every digit but its last four turned into ``*`` when it holds a card-number run."""
    tail = F.regexp_extract(value, _LAST_FOUR, 0)
    head = value.substr(F.lit(1), F.length(value) - F.length(tail))
    masked = F.concat(F.regexp_replace(head, "[0-9]", "*"), tail)
    return F.when(holds_card_run(value, loose=loose), masked).otherwise(value)
