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

from etl.errors import EtlError

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)
PG_EPOCH_DAYS = 10_957  # 2000-01-01 - 1970-01-01
PG_EPOCH_US = PG_EPOCH_DAYS * 86_400_000_000
NUMERIC_NEG = 0x4000
MAX_INT64_DIGITS = 18


class CopyTypeError(EtlError, ValueError):
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


# a field per row: a (n, width) uint8 matrix (every row the same width) or a binary array
Encoder = Callable[[pa.Array], "np.ndarray | pa.Array"]


def _matrix(values: np.ndarray) -> np.ndarray:
    """Fixed-width payloads (a (n, width) uint8 matrix) behind their 4-byte big-endian length."""
    n, width = values.shape
    out = np.empty((n, 4 + width), dtype=np.uint8)
    out[:, :4] = np.frombuffer(width.to_bytes(4, "big"), dtype=np.uint8)
    out[:, 4:] = values
    return out


def _fixed(values: np.ndarray, valid: np.ndarray | None) -> np.ndarray | pa.Array:
    """Fixed-width payloads with their length; NULLs (length -1, no payload) make the rows ragged."""
    n, width = values.shape
    out = _matrix(values)
    if valid is None or valid.all():
        return out
    out[~valid, :4] = 0xFF
    lengths = np.where(valid, 4 + width, 4).astype(np.int32)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    keep = np.ones((n, 4 + width), dtype=bool)
    keep[~valid, 4:] = False
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(out[keep])])


def _valid(values: pa.Array) -> np.ndarray | None:
    if not values.null_count:
        return None
    return pc.is_valid(values).to_numpy(zero_copy_only=False)


def _numbers(values: pa.Array, dtype: str, offset: int = 0) -> np.ndarray | pa.Array:
    """Integers (after ``offset``) as big-endian ``dtype`` (">i4", ">i8")."""
    raw = pc.fill_null(values, 0).to_numpy(zero_copy_only=False).astype(np.int64) - offset
    big = raw.astype(dtype)
    return _fixed(big.view(np.uint8).reshape(len(values), -1), _valid(values))


def encode_int4(values: pa.Array) -> np.ndarray | pa.Array:
    return _numbers(values.cast(pa.int64()), ">i4")


def encode_int8(values: pa.Array) -> np.ndarray | pa.Array:
    return _numbers(values.cast(pa.int64()), ">i8")


def encode_bool(values: pa.Array) -> np.ndarray | pa.Array:
    raw = pc.fill_null(values, False).to_numpy(zero_copy_only=False).astype(np.uint8)
    return _fixed(raw.reshape(-1, 1), _valid(values))


def encode_date(values: pa.Array) -> np.ndarray | pa.Array:
    return _numbers(values.cast(pa.int32()).cast(pa.int64()), ">i4", PG_EPOCH_DAYS)


def encode_timestamptz(values: pa.Array) -> np.ndarray | pa.Array:
    if not (pa.types.is_timestamp(values.type) and values.type.unit == "us" and values.type.tz in ("UTC", "+00:00")):
        raise CopyTypeError(f"timestamptz needs timestamp[us, UTC], got {values.type}")
    return _numbers(values.cast(pa.int64()), ">i8", PG_EPOCH_US)


def encode_text(values: pa.Array) -> np.ndarray | pa.Array:
    """UTF-8 bytes after their length; NULL as -1 and no payload. Values all of one length and no NULL (ids,
    tokens, codes) come out as a matrix straight from the string buffer."""
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        raise CopyTypeError(f"text needs a string column, got {values.type}")
    n = len(values)
    lengths = pc.binary_length(values)
    if n and not values.null_count and pa.types.is_string(values.type):
        low, high = pc.min_max(lengths).values()
        if low.as_py() == high.as_py():
            width = int(low.as_py())
            offsets = np.frombuffer(values.buffers()[1], dtype=np.int32, count=values.offset + n + 1)[values.offset :]
            data = np.frombuffer(values.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[0] + n * width]
            return _matrix(data.reshape(n, width))
    sizes = pc.fill_null(lengths, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    valid = _valid(values)
    if valid is not None:
        sizes = np.where(valid, sizes, -1)
    prefix = _plain(sizes.astype(">i4").view(np.uint8).reshape(n, 4))
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
    """The batch's rows in binary COPY format (no signature, no trailer: the caller frames the stream).

    The leading columns whose fields are all one width in this batch are laid out as one (n, width) matrix
    by slice assignment; the rest are glued on per row by ``binary_join_element_wise``. Putting the usually
    fixed-width columns first in the COPY's column list (``fixed_first``) makes that the common case.
    """
    n = batch.num_rows
    if not n:
        return b""
    pieces = [encode(batch.column(column.name)) for column, encode in zip(columns, encoders, strict=True)]
    lead = 0
    while lead < len(pieces) and isinstance(pieces[lead], np.ndarray):
        lead += 1
    width = 2 + sum(p.shape[1] for p in pieces[:lead])
    block = np.empty((n, width), dtype=np.uint8)
    block[:, :2] = np.frombuffer(len(columns).to_bytes(2, "big"), dtype=np.uint8)
    at = 2
    for piece in pieces[:lead]:
        block[:, at : at + piece.shape[1]] = piece
        at += piece.shape[1]
    if lead == len(pieces):
        return block.tobytes()
    rest = [_plain(p) if isinstance(p, np.ndarray) else p for p in pieces[lead:]]
    joined = pc.binary_join_element_wise(_plain(block), *rest, b"")
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32, count=n + 1)
    return joined.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0])).to_pybytes()


def fixed_first(batch: pa.RecordBatch, columns: list[ColumnType], encoders: list[Encoder]) -> list[int]:
    """Column positions in the order the COPY should list them: those whose fields in ``batch`` (the file's
    first) are all one width first, so most batches lay out as one matrix."""
    n = min(batch.num_rows, 4096)
    sample = batch.slice(0, n)
    fixed = [isinstance(encode(sample.column(c.name)), np.ndarray) for c, encode in zip(columns, encoders, strict=True)]
    return sorted(range(len(columns)), key=lambda i: not fixed[i])


def _plain(matrix: np.ndarray) -> pa.Array:
    """A (n, w) uint8 matrix as a binary array of its rows, nothing added."""
    n, width = matrix.shape
    offsets = np.arange(n + 1, dtype=np.int32) * width
    data = np.ascontiguousarray(matrix).reshape(-1)
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
