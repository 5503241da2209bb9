"""Searching everything a run left for card numbers: texts, the database's rows, the server's log.

One search for every card-data test, so that each asks the same question: a number counts as found also when
its digits are split by spaces, dashes, underscores or dots (as a name or a free text may write it)."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
from psycopg import sql

from tests.pipeline.conftest import Pipeline


def found_in(text: str, numbers: set[str]) -> set[str]:
    """The numbers in ``text``, also written with spaces, dashes, underscores or dots between their digits."""
    joined = re.sub(r"(?<=[0-9])[ ._-]+(?=[0-9])", "", text)
    return {n for n in numbers if n in text or n in joined}


def database_text(pipeline: Pipeline) -> str:
    """Every row of every user table, as PostgreSQL's text of the whole row."""
    tables = pipeline.query(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
        "AND table_schema NOT IN ('pg_catalog', 'information_schema')"
    )
    assert {("fintech", "transactions"), ("etl", "file_ledger")} <= {
        (t["table_schema"], t["table_name"]) for t in tables
    }
    texts = []
    for t in tables:
        query = sql.SQL("SELECT t::text AS row FROM {} AS t").format(sql.Identifier(t["table_schema"], t["table_name"]))
        texts += [r["row"] for r in pipeline.query(query)]
    return "\n".join(texts)


def server_log_since(db_url: str, log: Path, start: int) -> str:
    """The server's log from byte ``start`` on, after a marker line proves it is the server's log being read
    (errors themselves are not logged there: their text can quote a value)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DO $$ BEGIN RAISE LOG 'server-log-marker'; END $$")
    with log.open("rb") as stream:
        stream.seek(start)
        text = stream.read().decode("utf-8", "replace")
    assert "server-log-marker" in text
    return text
