"""Connections that verify TLS (etl.db.tls) against a real PostgreSQL 15 speaking TLS with a test CA's
certificate (tests/tls.py): verify-full connects and really is encrypted; a wrong CA, a host the certificate
does not name, a server without TLS and a missing CA file each fail with one line naming the database
without its password, as a configuration error (CLI exit 2), never a transient one; connect_timeout reaches
libpq and bounds a server that never answers."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from etl.config import Settings, SslMode
from etl.db import connect, tls
from etl.db.errors import TransientDatabaseError, is_transient, transient_database_errors
from etl.errors import ConfigError, TransientError
from etl.package_data import rds_ca_bundle
from tests.tls import TlsServer

PASSWORD = "s3cr3t-pw"


def verified(url: str, ca: Path | str, **extra) -> Settings:
    return Settings(database_url=url, db_sslmode=SslMode.VERIFY_FULL, db_sslrootcert=str(ca), **extra)


def with_password(url: str) -> str:
    return url.replace("postgres@", f"postgres:{PASSWORD}@")


def tls_error(settings: Settings) -> tls.DatabaseTlsError:
    with pytest.raises(tls.DatabaseTlsError) as caught, transient_database_errors():
        connect.connect(settings).close()
    error = caught.value
    text = str(error)
    assert "\n" not in text and PASSWORD not in text
    assert isinstance(error, ConfigError) and not isinstance(error, TransientError | psycopg.Error)
    assert error.__cause__ is None and error.__suppress_context__  # no driver chain with its own text
    return error


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_verify_full_with_the_right_ca_connects_over_tls(tls_server: TlsServer, host: str) -> None:
    settings = verified(tls_server.url(host=host), tls_server.ca)
    with connect.connect(settings) as conn:
        row = conn.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert row is not None and row[0] is True and row[1].startswith("TLSv1.")
        params = conn.info.get_parameters()
        assert (params["sslmode"], params["sslrootcert"], params["connect_timeout"]) == (
            "verify-full",
            str(tls_server.ca),
            "10",
        )


def test_the_server_refuses_a_connection_without_tls(tls_server: TlsServer) -> None:
    """What makes the test above mean something: this server takes nothing unencrypted over TCP."""
    settings = Settings(database_url=tls_server.url(), db_sslmode=SslMode.DISABLE)
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        connect.connect(settings)


def test_a_wrong_ca_fails_with_one_line_naming_the_database(tls_server: TlsServer) -> None:
    url = with_password(tls_server.url(host="localhost"))
    error = tls_error(verified(url, tls_server.wrong_ca))
    assert str(error) == (
        f"cannot connect to postgresql://postgres@localhost:{tls_server.port}/postgres over TLS (sslmode=verify-full): "
        f"the server's certificate is not signed by a CA in {tls_server.wrong_ca}"
    )


def test_the_rds_bundle_does_not_trust_a_foreign_server(tls_server: TlsServer) -> None:
    """``ETL_DB_SSLROOTCERT=rds`` (the deployed setting) resolves to the packaged bundle, and a server whose
    certificate Amazon RDS did not sign is refused."""
    settings = verified(with_password(tls_server.url(host="localhost")), "rds")
    assert tls.connection_options(settings, "url")["sslrootcert"] == str(rds_ca_bundle())
    assert "not signed by a CA in " + str(rds_ca_bundle()) in str(tls_error(settings))


def test_a_certificate_for_another_host_fails(tls_server: TlsServer) -> None:
    """The right CA, but the name connected to (``db.other.test``, reached at 127.0.0.1) is not the
    certificate's: verify-full refuses what verify-ca would accept."""
    conninfo = f"host=db.other.test hostaddr=127.0.0.1 port={tls_server.port} user=postgres password={PASSWORD}"
    error = tls_error(verified(conninfo + " dbname=postgres", tls_server.ca))
    assert "the server's certificate does not name the host db.other.test" in str(error)
    assert f"postgresql://postgres@db.other.test:{tls_server.port}/postgres" in str(error)
    ca_only = Settings(database_url=conninfo, db_sslmode=SslMode.VERIFY_CA, db_sslrootcert=str(tls_server.ca))
    connect.connect(ca_only).close()


def test_a_server_without_tls_fails_under_verify_full(pg_url: str, tls_server: TlsServer) -> None:
    error = tls_error(verified(with_password(pg_url), tls_server.ca))
    assert str(error).endswith("the server does not offer TLS, and sslmode=verify-full requires it")


def test_verify_full_without_a_ca_file_says_which_variable(
    tls_server: TlsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.postgresql/root.crt
    monkeypatch.delenv("PGSSLROOTCERT", raising=False)
    error = tls_error(Settings(database_url=tls_server.url(host="localhost"), db_sslmode=SslMode.VERIFY_FULL))
    assert str(error) == (
        f"cannot connect to postgresql://postgres@localhost:{tls_server.port}/postgres over TLS (sslmode=verify-full): "
        "sslmode=verify-full verifies the server, but no CA file ~/.postgresql/root.crt (libpq's default): "
        "set ETL_DB_SSLROOTCERT"
    )
    not_pem = tmp_path / "not-a-ca.pem"
    not_pem.write_text("not a certificate\n")
    assert str(tls_error(verified(tls_server.url(), not_pem))).endswith(
        f"the CA file {not_pem} cannot be read as PEM certificates"
    )
    with pytest.raises(ConfigError, match=r"^ETL_DB_SSLROOTCERT: no CA file /nonexistent/ca.pem"):
        connect.connect(verified(tls_server.url(), "/nonexistent/ca.pem"))


def test_an_invalid_sslmode_is_a_one_line_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from etl.config import get_settings

    monkeypatch.setenv("ETL_DB_SSLMODE", "verify-fully")
    with pytest.raises(ConfigError, match="ETL_DB_SSLMODE") as caught:
        get_settings()
    assert "\n" not in str(caught.value)


def test_cli_exits_2_with_the_one_line(tls_server: TlsServer, tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "ETL_HOME": str(tmp_path / "home"),
        "ETL_DATABASE_URL": with_password(tls_server.url(host="localhost")),
        "ETL_DB_SSLMODE": "verify-full",
        "ETL_DB_SSLROOTCERT": str(tls_server.wrong_ca),
    }
    result = subprocess.run(
        [sys.executable, "-m", "etl", "db", "status"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr and PASSWORD not in result.stderr + result.stdout
    assert "not signed by a CA in" in lines[0] and f"postgres@localhost:{tls_server.port}/postgres" in lines[0]


def test_the_embedded_server_and_plain_urls_get_no_tls_settings(pg_url: str) -> None:
    """The local default stays: only connect_timeout for the embedded server's socket, whatever is set; and a
    URL without TLS settings connects as it always did."""
    settings = Settings(db_sslmode=SslMode.VERIFY_FULL, db_sslrootcert="rds")
    assert tls.connection_options(settings, "embedded") == {"connect_timeout": "10"}
    with connect.connect(Settings(database_url=pg_url)) as conn:
        params = conn.info.get_parameters()
        assert "sslrootcert" not in params and params["connect_timeout"] == "10"
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (False,)


def test_connect_timeout_bounds_a_server_that_never_answers() -> None:
    """A socket that accepts TCP (the kernel's backlog) but never answers libpq's first message: the connection
    fails after connect_timeout (2 s here; measured loosely) as a lost connection, which is transient."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        settings = Settings(database_url=f"postgresql://etl:{PASSWORD}@127.0.0.1:{port}/db", db_connect_timeout_s=2)
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError) as caught:
            connect.connect(settings)
        took = time.monotonic() - started
    assert "timeout" in str(caught.value) and PASSWORD not in str(caught.value)
    assert is_transient(caught.value)
    assert took < 30  # without connect_timeout libpq would wait for the server forever
    with pytest.raises(TransientDatabaseError), transient_database_errors():
        raise caught.value
