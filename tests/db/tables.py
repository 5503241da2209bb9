"""Reading a feed's target table back in the database tests."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from etl.contract import Contract


def table_rows(conn: psycopg.Connection, contract: Contract) -> list[dict[str, Any]]:
    """The target table's rows as dicts, ordered by primary key."""
    t = contract.target_table
    query = sql.SQL("SELECT * FROM {} ORDER BY {}").format(
        sql.Identifier(t.schema_, t.name), sql.SQL(", ").join(sql.Identifier(k) for k in contract.primary_key)
    )
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(query).fetchall())
