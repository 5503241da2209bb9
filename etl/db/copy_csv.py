"""Arrow batches as the CSV text that ``COPY ... (FORMAT csv, NULL '')`` reads: written by pyarrow, no per-row
Python. Nulls are unquoted empty fields, strings are quoted (so ``""`` stays an empty string).

pyarrow's own cast of a timestamp to text formats each value through a date library: 1.3 of the 1.5 s the
CSV of 1M transactions costs. ``timestamp_text`` builds the same instants from integer parts with numpy
instead (~0.1 s), in the ISO form PostgreSQL reads for ``timestamptz``.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from etl.core.strings import from_matrix

CSV_OPTIONS = pacsv.WriteOptions(include_header=False)
US_PER_DAY = 86_400_000_000
WIDTH = len("YYYY-MM-DD HH:MM:SS.ffffff+00")


class CopyFormatError(ValueError):
    """A batch lacks columns the COPY needs."""


def csv_bytes(batch: pa.RecordBatch, columns: list[str]) -> bytes:
    """``columns`` of one batch as COPY-ready CSV."""
    try:
        selected = batch.select(columns)
    except KeyError as exc:
        missing = sorted(set(columns) - set(batch.schema.names))
        raise CopyFormatError(f"batch lacks stage column(s) {missing}") from exc
    arrays = [timestamp_text(a) if _is_utc_us(a.type) else a for a in selected.columns]
    sink = io.BytesIO()
    pacsv.write_csv(pa.RecordBatch.from_arrays(arrays, names=columns), sink, CSV_OPTIONS)
    return sink.getvalue()


def _is_utc_us(kind: pa.DataType) -> bool:
    return pa.types.is_timestamp(kind) and kind.unit == "us" and kind.tz in ("UTC", "+00:00")


def timestamp_text(values: pa.Array) -> pa.Array:
    """UTC microsecond timestamps as ``YYYY-MM-DD HH:MM:SS.ffffff+00`` strings (nulls stay null).

    Years outside 0001-9999 (not a fixed-width date) go through pyarrow's own cast instead.
    """
    n = len(values)
    micros = pc.fill_null(values.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
    days, in_day = np.divmod(micros, US_PER_DAY)
    dates = pa.array(days.astype(np.int32), pa.date32()).cast(pa.string())
    if n and pc.min_max(pc.utf8_length(dates)).as_py() != {"min": 10, "max": 10}:
        return values.cast(pa.string())
    text = np.empty((n, WIDTH), dtype=np.uint8)
    text[:, 0:10] = np.frombuffer(dates.buffers()[2], dtype=np.uint8, count=n * 10).reshape(n, 10)
    seconds, fraction = np.divmod(in_day, 1_000_000)
    hours, rest = np.divmod(seconds, 3600)
    minutes, secs = np.divmod(rest, 60)
    for start, number, width in ((11, hours, 2), (14, minutes, 2), (17, secs, 2), (20, fraction, 6)):
        _digits(text, start, number, width)
    for position, char in ((10, " "), (13, ":"), (16, ":"), (19, ".")):
        text[:, position] = ord(char)
    text[:, 26:29] = np.frombuffer(b"+00", dtype=np.uint8)
    strings = from_matrix(text)
    if values.null_count:
        strings = pc.if_else(pc.is_valid(values), strings, pa.scalar(None, pa.string()))
    return strings


def _digits(text: np.ndarray, start: int, number: np.ndarray, width: int) -> None:
    """Write ``number`` zero-padded to ``width`` ASCII digits into columns ``start...`` of every row."""
    for position in range(start + width - 1, start - 1, -1):
        number, digit = np.divmod(number, 10)
        text[:, position] = digit + ord("0")
