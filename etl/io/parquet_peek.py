"""One value of a parquet file in a zone, read without reading the file.

MoveToError and the rerun's restage check ask a stage file one question: which execution wrote it (the
``execution_name`` lineage column of its first row). A stage file of a 10M-row day is ~730 MiB, and the
function that asks runs in 256 MB (``docs/design.md §11``), so neither the whole object nor a download of it
will do. Parquet keeps its metadata in a footer at the end and each column of each row group in one
contiguous chunk, so two or three ranged reads answer: the footer's length, the footer, that one chunk.

The bytes are written at their own offsets into a sparse temp file (the holes take no disk) that pyarrow
then reads by path. pyarrow is never handed a Python file object: it would call back into Python from its
own C++ threads, and such a call still at work when the interpreter exits aborts the process (see
``etl.pipeline.recover``). A local zone's file is read by its path directly.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from etl.io.zones import LocalZone, Zone

_MAGIC = b"PAR1"
_TAIL = 8  # the footer's length (4 bytes, little-endian) and the magic


class NotParquetError(ValueError):
    """The object does not end like a parquet file."""


def first_value(zone: Zone, key: str, column: str) -> str | None:
    """``column`` of the first row of the parquet object ``key`` as text; None for a file without rows."""
    if isinstance(zone, LocalZone):
        path = zone.path(key)
        if not path.is_file():
            raise FileNotFoundError(zone.uri_of(key))
        return _first_value(path, column)
    size = zone.size(key)
    with tempfile.TemporaryDirectory(prefix="etl-parquet-peek-") as folder:  # 0700
        sparse = Path(folder) / "peek.parquet"
        with open(sparse, "wb") as out:
            out.truncate(size)
            metadata = _footer(zone, key, size, out, sparse)
            if metadata.num_rows == 0 or metadata.num_row_groups == 0:
                return None
            names = _names(metadata, column)
            chunk = metadata.row_group(0).column(names.index(column))
            start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
            os.pwrite(out.fileno(), zone.read_range(key, start, chunk.total_compressed_size), start)
        return _first_value(sparse, column)


def _footer(zone: Zone, key: str, size: int, out: BinaryIO, sparse: Path) -> pq.FileMetaData:
    """Read the footer into ``out`` at its offset and parse it."""
    tail = zone.read_range(key, size - _TAIL, _TAIL) if size >= 2 * len(_MAGIC) + 4 else b""
    if len(tail) != _TAIL or tail[4:] != _MAGIC:
        raise NotParquetError(f"{zone.uri_of(key)} is not a parquet file")
    length = int.from_bytes(tail[:4], "little")
    start = size - _TAIL - length
    if start < len(_MAGIC):
        raise NotParquetError(f"{zone.uri_of(key)} has a damaged parquet footer")
    os.pwrite(out.fileno(), zone.read_range(key, start, length) + tail, start)
    os.pwrite(out.fileno(), _MAGIC, 0)
    out.flush()
    return pq.read_metadata(sparse)


def _names(metadata: pq.FileMetaData, column: str) -> list[str]:
    names = metadata.schema.names
    if column not in names:
        raise KeyError(column)
    return names


def _first_value(path: Path, column: str) -> str | None:
    try:
        metadata = pq.read_metadata(path)
    except pa.ArrowInvalid as exc:
        raise NotParquetError(f"{path.name} is not a parquet file") from exc
    if metadata.num_rows == 0 or metadata.num_row_groups == 0:
        return None
    _names(metadata, column)
    with pq.ParquetFile(str(path)) as parquet:
        values = parquet.read_row_group(0, columns=[column], use_threads=False).column(0)
        return str(values[0]) if len(values) else None
