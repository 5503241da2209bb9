"""The target table's columns as the catalog describes them, and a check that a batch fits them before COPY.

A value the table cannot take makes the server raise, and some server reports quote the row: a NOT NULL
violation's DETAIL is "Failing row contains (...)". The loader therefore checks every batch against the
real table (read from ``pg_attribute``, so a migration that changes a column is followed) before it is
sent: NULLs in NOT NULL columns, strings longer than ``varchar(n)``, numbers wider than ``numeric(p, s)``.
A batch that does not fit stops the load with :class:`ColumnFitError`, whose message names the column and
the rule, never a value; nothing of that batch reaches the server.
"""

from __future__ import annotations

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from etl.db.copy_binary import ColumnType
from etl.errors import EtlError

CATALOG = """
SELECT a.attname, t.typname, a.attnotnull, a.atttypmod
FROM pg_attribute AS a
JOIN pg_type AS t ON t.oid = a.atttypid
JOIN pg_class AS c ON c.oid = a.attrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
VARHDRSZ = 4


class ColumnFitError(EtlError):
    """A batch holds a value its table column cannot store; the message names the column, not the value."""


def table_columns(conn: psycopg.Connection, schema: str, name: str) -> dict[str, ColumnType]:
    """Name -> type of every column of ``schema.name`` (empty when the table does not exist)."""
    found: dict[str, ColumnType] = {}
    for column, type_name, not_null, typmod in conn.execute(CATALOG, (schema, name)).fetchall():
        length = precision = scale = None
        if type_name in ("varchar", "bpchar") and typmod >= VARHDRSZ:
            length = typmod - VARHDRSZ
        if type_name == "numeric" and typmod >= VARHDRSZ:
            precision, scale = (typmod - VARHDRSZ) >> 16, (typmod - VARHDRSZ) & 0xFFFF
        found[column] = ColumnType(column, type_name, bool(not_null), length, precision, scale)
    return found


def check_fits(batch: pa.RecordBatch, columns: list[ColumnType]) -> None:
    """Raise :class:`ColumnFitError` when a value of ``batch`` cannot be stored in its column."""
    for column in columns:
        values = batch.column(column.name)
        if column.not_null and values.null_count:
            raise ColumnFitError(f"column {column.name}: {values.null_count} missing value(s) in a NOT NULL column")
        if column.max_length is not None and len(values):
            longest = pc.max(pc.utf8_length(values)).as_py()
            if longest is not None and longest > column.max_length:
                too_long = int(pc.sum(pc.greater(pc.utf8_length(values), column.max_length)).as_py() or 0)
                raise ColumnFitError(
                    f"column {column.name}: {too_long} value(s) longer than {column.max_length} characters"
                )
        if column.precision is not None and pa.types.is_decimal(values.type) and len(values):
            _check_precision(column, values)


def _check_precision(column: ColumnType, values: pa.Array) -> None:
    assert column.precision is not None and column.scale is not None
    if values.type.scale != column.scale:
        raise ColumnFitError(f"column {column.name}: scale {values.type.scale} where the table has {column.scale}")
    if values.type.precision <= column.precision:
        return
    limit = 10**column.precision
    unscaled = np.frombuffer(values.buffers()[1], dtype=np.int64, count=2 * (values.offset + len(values)))
    low = unscaled[2 * values.offset :: 2]
    high = unscaled[2 * values.offset + 1 :: 2]
    valid = pc.is_valid(values).to_numpy(zero_copy_only=False)
    over = valid & ((high != (low >> 63)) | (np.abs(low) >= limit))
    if over.any():
        raise ColumnFitError(
            f"column {column.name}: {int(over.sum())} value(s) wider than numeric({column.precision},{column.scale})"
        )
