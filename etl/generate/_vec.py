"""Vectorised building blocks for the generator: stable hashes, digit matrices and Arrow strings.

Everything works on whole chunks (numpy arrays of one value per row) so a million rows cost a few
array operations instead of a million Python f-strings. Hashes are pure functions of their inputs, which
is what makes ids and card numbers reproducible from (seed, date, row) alone.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_HEX_PAIRS = np.frombuffer("".join(f"{i:02x}" for i in range(256)).encode(), np.uint8).reshape(256, 2)
EPOCH = dt.date(1970, 1, 1)


def mix_int(*parts: int) -> int:
    """splitmix64 over several Python ints: a stable 64-bit key for (seed, date, purpose, ...)."""
    z = 0
    for part in parts:
        z = (z ^ (part & _MASK64)) + _GOLDEN & _MASK64
        z = (z ^ (z >> 30)) * _M1 & _MASK64
        z = (z ^ (z >> 27)) * _M2 & _MASK64
        z ^= z >> 31
    return z


def mix(values: np.ndarray, key: int | np.ndarray) -> np.ndarray:
    """splitmix64 of ``values ^ key`` element-wise (uint64 arithmetic wraps, as intended)."""
    z = values.astype(np.uint64) ^ (np.uint64(key) if isinstance(key, int) else key.astype(np.uint64))
    z = z + np.uint64(_GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


def rng(*parts: int) -> np.random.Generator:
    """A private generator for one purpose; never numpy's global state."""
    return np.random.default_rng([p & 0xFFFFFFFF for p in parts] + [(p >> 32) & 0xFFFFFFFF for p in parts])


def digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers as an (n, width) ASCII byte matrix."""
    v = np.array(values, dtype=np.int64)  # a copy: divided in place below
    out = np.empty((len(v), width), dtype=np.uint8)
    for column in range(width - 1, -1, -1):
        out[:, column] = v % 10
        v //= 10
    out += ord("0")
    return out


def uuid_matrix_keys(keys: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Version-4-shaped UUIDs (n, 36): a pure function of each row's file key and row number."""
    hi = mix(rows, keys)
    lo = mix(hi, keys ^ np.uint64(0x5BD1E995))
    raw = np.stack([hi, lo], axis=1).astype(">u8").view(np.uint8).reshape(len(rows), 16)
    raw[:, 6] = 0x40 | (raw[:, 6] & 0x0F)  # version 4
    raw[:, 8] = 0x80 | (raw[:, 8] & 0x3F)  # RFC 4122 variant
    hexed = _HEX_PAIRS[raw].reshape(len(rows), 32)
    out = np.full((len(rows), 36), ord("-"), dtype=np.uint8)
    out[:, 0:8], out[:, 9:13], out[:, 14:18] = hexed[:, 0:8], hexed[:, 8:12], hexed[:, 12:16]
    out[:, 19:23], out[:, 24:36] = hexed[:, 16:20], hexed[:, 20:32]
    return out


def luhn_complete(payload: np.ndarray) -> np.ndarray:
    """Check digits (0-9) for right-aligned payload digit values (n, w); leading zeros are harmless."""
    d = payload.astype(np.int64)
    from_right = np.arange(d.shape[1], 0, -1)  # 1 for the rightmost payload digit
    doubled = d * 2
    doubled = np.where(doubled > 9, doubled - 9, doubled)
    total = np.where(from_right % 2 == 1, doubled, d).sum(axis=1)
    return (10 - total % 10) % 10


def fixed_strings(matrix: np.ndarray) -> pa.StringArray:
    """An (n, w) ASCII/UTF-8 byte matrix as an Arrow string array of n values of w bytes."""
    n, w = matrix.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32) if n else np.zeros(1, np.int32)
    data = np.ascontiguousarray(matrix, dtype=np.uint8)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def ragged_strings(matrix: np.ndarray, keep: np.ndarray) -> pa.StringArray:
    """Strings made of the bytes of each row where ``keep`` is true, in column order."""
    n = matrix.shape[0]
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(keep.sum(axis=1), out=offsets[1:])
    data = np.ascontiguousarray(matrix[keep], dtype=np.uint8)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01, the unit of the int date arrays used here."""
    return (day - EPOCH).days


def yyyymmdd(days: np.ndarray) -> np.ndarray:
    """Int ``YYYYMMDD`` for int arrays of days since 1970-01-01."""
    d64 = np.asarray(days, dtype="datetime64[D]")
    years = d64.astype("datetime64[Y]").astype(np.int64) + 1970
    months = d64.astype("datetime64[M]")
    month = months.astype(np.int64) % 12 + 1
    day = (d64 - months.astype("datetime64[D]")).astype(np.int64) + 1
    return years * 10000 + month * 100 + day


def text_table(values: list[str] | tuple[str, ...]) -> pa.StringArray:
    """A small lookup array; ``table.take(indices)`` turns category codes into text."""
    return pa.array(list(values), pa.string())


def bytes_table(values: list[str] | tuple[str, ...], width: int) -> np.ndarray:
    """Left-justified, space-padded ASCII rows (k, width) for fixed-width lookups."""
    return np.frombuffer(b"".join(v.ljust(width).encode("ascii") for v in values), np.uint8).reshape(-1, width)


def string_buffer(lines: pa.StringArray) -> bytes:
    """The concatenated bytes of a string array with no nulls (its data buffer, no copy per row)."""
    if len(lines) == 0:
        return b""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1 + lines.offset)
    start, end = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
    return lines.buffers()[2].slice(start, end - start).to_pybytes()
