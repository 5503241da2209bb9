"""etl.db.errors against a real server: which failures become the retried ``TransientDatabaseError``."""

from __future__ import annotations

import psycopg
import pytest

from etl.db.errors import TransientDatabaseError, is_transient, transient_database_errors


def _raise(conn: psycopg.Connection, sqlstate: str) -> None:
    conn.execute(f"DO $$ BEGIN RAISE EXCEPTION 'boom' USING ERRCODE = '{sqlstate}'; END $$")


@pytest.mark.parametrize("sqlstate", ["40001", "40P01", "55P03", "57014", "53300"])
def test_transient_server_errors_are_mapped(db_url, sqlstate):
    with (
        psycopg.connect(db_url, autocommit=True) as conn,
        pytest.raises(TransientDatabaseError) as caught,
        transient_database_errors(),
    ):
        _raise(conn, sqlstate)
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)
    assert type(caught.value).__name__ == "TransientDatabaseError"  # the name state_machine.yml retries


def test_a_lost_connection_is_transient(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn, psycopg.connect(db_url, autocommit=True) as killer:
        killer.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        with pytest.raises(TransientDatabaseError), transient_database_errors():
            conn.execute("SELECT 1")


@pytest.mark.parametrize("sqlstate", ["23505", "22003", "42P01", "28P01"])
def test_data_and_configuration_errors_pass_through(db_url, sqlstate):
    with (
        psycopg.connect(db_url, autocommit=True) as conn,
        pytest.raises(psycopg.Error) as caught,
        transient_database_errors(),
    ):
        _raise(conn, sqlstate)
    assert not isinstance(caught.value, TransientDatabaseError)
    assert caught.value.sqlstate == sqlstate


def test_only_psycopg_operational_errors_qualify():
    assert not is_transient(ValueError("x"))
    assert is_transient(psycopg.OperationalError("connection refused"))
