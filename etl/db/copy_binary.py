"""Arrow batches as PostgreSQL's binary COPY format, built column by column with numpy and Arrow kernels.

Why binary, not CSV:

- **No row value can reach a log.** When a binary COPY fails, the server's CONTEXT line names the line and
  the column only (``COPY t, line 5, column account_id``): it cannot print a value it never parsed as text.
  A CSV COPY prints the offending field (``column account_id: "4000..."``) to the client and to the server
  log, which in AWS goes to CloudWatch.
- **Less work on the server:** no text parsing of numbers, dates and timestamps (typed load 1.9 s against
  2.75 s for CSV, 1M rows), and no per-row Python on the client (psycopg's ``write_row`` is ~6x slower).

Each column becomes one Arrow binary array whose element is the field as COPY wants it (4-byte big-endian
length, then the value's bytes; -1 and nothing for NULL). ``binary_join_element_wise`` then glues the
columns of each row together in C++, and the joined array's data buffer is the COPY data of the batch.

The encoders follow the server's ``*_recv`` functions: ``date`` is days since 2000-01-01 (int32),
``timestamptz`` microseconds since 2000-01-01 UTC (int64), ``numeric`` is ``ndigits, weight, sign, dscale``
then base-10000 digits (int16 each). Numerics are written with a fixed number of digit groups (leading zero
groups allowed: ``numeric_recv`` normalises them), so every value of a column has the same width.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)
PG_EPOCH_DAYS = 10_957  # 2000-01-01 - 1970-01-01
PG_EPOCH_US = PG_EPOCH_DAYS * 86_400_000_000
NUMERIC_NEG = 0x4000
MAX_INT64_DIGITS = 18


class CopyTypeError(ValueError):
    """A batch column cannot be written as the table column's type (a contract/schema mismatch)."""


@dataclass(frozen=True)
class ColumnType:
    """A target column as the catalog describes it: enough to encode and to guard values before COPY."""

    name: str
    type_name: str  # pg_type.typname: varchar, text, int4, int8, bool, date, timestamptz, numeric
    not_null: bool
    max_length: int | None = None  # varchar(n)
    precision: int | None = None  # numeric(p, s)
    scale: int | None = None


Encoder = Callable[[pa.Array], pa.Array]


def _fixed(values: np.ndarray, valid: np.ndarray | None) -> pa.Array:
    """Big-endian fixed-width values (a (n, w) uint8 matrix) with their length prefix, NULLs as -1."""
    n, width = values.shape
    out = np.empty((n, 4 + width), dtype=np.uint8)
    out[:, :4] = np.frombuffer(width.to_bytes(4, "big"), dtype=np.uint8)
    out[:, 4:] = values
    if valid is None or valid.all():
        offsets = np.arange(n + 1, dtype=np.int32) * (4 + width)
        data = out.reshape(-1)
    else:
        out[~valid, :4] = 0xFF
        lengths = np.where(valid, 4 + width, 4).astype(np.int32)
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        keep = np.ones((n, 4 + width), dtype=bool)
        keep[~valid, 4:] = False
        data = out[keep]
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _valid(values: pa.Array) -> np.ndarray | None:
    if not values.null_count:
        return None
    return pc.is_valid(values).to_numpy(zero_copy_only=False)


def _numbers(values: pa.Array, dtype: str, offset: int = 0) -> pa.Array:
    """Integers (after ``offset``) as big-endian ``dtype`` (">i4", ">i8")."""
    raw = pc.fill_null(values, 0).to_numpy(zero_copy_only=False).astype(np.int64) - offset
    big = raw.astype(dtype)
    return _fixed(big.view(np.uint8).reshape(len(values), -1), _valid(values))


def encode_int4(values: pa.Array) -> pa.Array:
    return _numbers(values.cast(pa.int64()), ">i4")


def encode_int8(values: pa.Array) -> pa.Array:
    return _numbers(values.cast(pa.int64()), ">i8")


def encode_bool(values: pa.Array) -> pa.Array:
    raw = pc.fill_null(values, False).to_numpy(zero_copy_only=False).astype(np.uint8)
    return _fixed(raw.reshape(-1, 1), _valid(values))


def encode_date(values: pa.Array) -> pa.Array:
    return _numbers(values.cast(pa.int32()).cast(pa.int64()), ">i4", PG_EPOCH_DAYS)


def encode_timestamptz(values: pa.Array) -> pa.Array:
    if not (pa.types.is_timestamp(values.type) and values.type.unit == "us" and values.type.tz in ("UTC", "+00:00")):
        raise CopyTypeError(f"timestamptz needs timestamp[us, UTC], got {values.type}")
    return _numbers(values.cast(pa.int64()), ">i8", PG_EPOCH_US)


def encode_text(values: pa.Array) -> pa.Array:
    """UTF-8 bytes after their length; NULL as -1 (the joined row then carries no payload for it)."""
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        raise CopyTypeError(f"text needs a string column, got {values.type}")
    lengths = pc.fill_null(pc.binary_length(values), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    valid = _valid(values)
    if valid is not None:
        lengths = np.where(valid, lengths, -1)
    prefix = _plain(lengths.astype(">i4").view(np.uint8).reshape(len(values), 4))
    payload = pc.fill_null(values.cast(pa.binary()), b"")
    return pc.binary_join_element_wise(prefix, payload, b"")


def _unscaled(values: pa.Array) -> np.ndarray:
    """decimal128 values as their unscaled int64 (the precision checked: at most 18 digits)."""
    if values.type.precision > MAX_INT64_DIGITS:
        raise CopyTypeError(f"numeric of precision {values.type.precision} is not supported (max 18)")
    words = np.frombuffer(values.buffers()[1], dtype=np.int64, count=2 * (values.offset + len(values)))
    low = words[2 * values.offset :: 2].copy()
    if values.null_count:
        low[~pc.is_valid(values).to_numpy(zero_copy_only=False)] = 0
    return low


def numeric_encoder(precision: int, scale: int) -> Encoder:
    """numeric(p, s) from decimal128(_, s): fixed groups, so every value has the same width."""
    pad = (4 - scale % 4) % 4
    if precision + pad > MAX_INT64_DIGITS:
        raise CopyTypeError(f"numeric({precision},{scale}) is not supported by the binary encoder")
    groups = max(1, -(-(precision + pad) // 4))
    weight = groups - (scale + pad) // 4 - 1
    head = np.array([groups, weight, 0, scale], dtype=">i2")

    def encode(values: pa.Array) -> pa.Array:
        if not pa.types.is_decimal(values.type) or values.type.scale != scale:
            raise CopyTypeError(f"numeric(_, {scale}) needs decimal128(_, {scale}), got {values.type}")
        unscaled = _unscaled(values)
        n = len(values)
        words = np.empty((n, 4 + groups), dtype=">i2")
        words[:, :] = 0
        words[:, :4] = head
        words[:, 2] = np.where(unscaled < 0, NUMERIC_NEG, 0)
        rest = np.abs(unscaled) * (10**pad)
        for k in range(groups - 1, -1, -1):
            rest, words[:, 4 + k] = np.divmod(rest, 10_000)
        return _fixed(words.view(np.uint8).reshape(n, -1), _valid(values))

    return encode


def encoder_for(column: ColumnType) -> Encoder:
    simple: dict[str, Encoder] = {
        "varchar": encode_text,
        "text": encode_text,
        "bpchar": encode_text,
        "int4": encode_int4,
        "int8": encode_int8,
        "bool": encode_bool,
        "date": encode_date,
        "timestamptz": encode_timestamptz,
    }
    if column.type_name in simple:
        return simple[column.type_name]
    if column.type_name == "numeric" and column.precision is not None and column.scale is not None:
        return numeric_encoder(column.precision, column.scale)
    raise CopyTypeError(f"column {column.name}: type {column.type_name} has no binary encoder")


def copy_rows(batch: pa.RecordBatch, columns: list[ColumnType], encoders: list[Encoder]) -> bytes:
    """The batch's rows in binary COPY format (no signature, no trailer: the caller frames the stream)."""
    n = batch.num_rows
    count = np.full((n, 2), 0, dtype=np.uint8)
    count[:, :] = np.frombuffer(len(columns).to_bytes(2, "big"), dtype=np.uint8)
    parts = [_plain(count)]
    for column, encode in zip(columns, encoders, strict=True):
        parts.append(encode(batch.column(column.name)))
    joined = pc.binary_join_element_wise(*parts, b"")
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32, count=n + 1)
    return joined.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0])).to_pybytes() if n else b""


def _plain(matrix: np.ndarray) -> pa.Array:
    """A (n, w) uint8 matrix as a binary array of its rows, nothing added."""
    n, width = matrix.shape
    offsets = np.arange(n + 1, dtype=np.int32) * width
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(matrix.reshape(-1))])
