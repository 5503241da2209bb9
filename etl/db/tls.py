"""How a connection to a configured database is secured and bounded, and what a TLS failure says.

Every connection gets libpq's ``connect_timeout`` (``ETL_DB_CONNECT_TIMEOUT_S``): a database behind a dropped
security-group rule or a silent load balancer would otherwise hang a Lambda until it is killed, instead of
failing at once as a lost connection (retried: ``etl.db.errors``).

A configured database (``ETL_DATABASE_URL`` or ``ETL_DB_SECRET_ID``) also gets ``ETL_DB_SSLMODE`` and
``ETL_DB_SSLROOTCERT`` when they are set, over whatever the URL says. The deployed functions use
``verify-full`` with ``rds``, the Amazon RDS global CA bundle shipped inside the package
(``etl/aws/certs/rds-global-bundle.pem``, found through ``etl.package_data``): without verification anyone
on the path to Aurora could present any certificate and read the card tokens and the ``etl`` password. The
embedded server is reached over its Unix socket, where TLS does not apply; it never gets these settings, so a
laptop needs no certificate.

A TLS failure (a certificate no trusted CA signed, one that names another host, a server without TLS, a CA
file that is missing) is a :class:`DatabaseTlsError`: a :class:`~etl.errors.ConfigError`, so one line and exit
code 2 from the CLI, and never retried by the state machine (it retries only ``TransientDatabaseError``):
the next attempt would meet the same certificate. The line names the database as ``etl.db.dsn.display``
shows it (no password), the sslmode and the CA file; libpq's own text (several lines, sometimes a hint about
environment variables) is not shown.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from etl.config import Settings, SslMode
from etl.db import dsn
from etl.errors import ConfigError
from etl.package_data import rds_ca_bundle

#: ``ETL_DB_SSLROOTCERT`` values that are not file paths
RDS_BUNDLE = "rds"  # the Amazon RDS global CA bundle of the package
SYSTEM_STORE = "system"  # libpq's own keyword: the operating system's trusted roots

#: (what libpq says, lower case) -> what went wrong, for a person; the first match wins
_FAILURES = (
    ("certificate verify failed", "the server's certificate is not signed by a CA in {ca}"),
    ("does not match host name", "the server's certificate does not name the host {host}"),
    ("server does not support ssl", "the server does not offer TLS, and sslmode={mode} requires it"),
    ("could not read root certificate", "the CA file {ca} cannot be read as PEM certificates"),
    ("root certificate file", "sslmode={mode} verifies the server, but no CA file {ca}: set ETL_DB_SSLROOTCERT"),
    ("ssl error", "the TLS handshake failed ({detail})"),
    ("ssl syscall error", "the TLS handshake failed ({detail})"),
)


class DatabaseTlsError(ConfigError):
    """The database connection failed its TLS check: a configuration to fix, not a moment to wait out."""


def ca_file(settings: Settings) -> str | None:
    """``ETL_DB_SSLROOTCERT`` as libpq's ``sslrootcert``: ``rds`` -> the packaged bundle's path, ``system`` as is,
    else a file that must exist (checked here, so the error names the variable rather than a libpq hint)."""
    value = settings.db_sslrootcert
    if not value:
        return None
    if value == RDS_BUNDLE:
        return str(rds_ca_bundle())
    if value == SYSTEM_STORE:
        return value
    if not Path(value).is_file():
        raise ConfigError(f"ETL_DB_SSLROOTCERT: no CA file {value} (a PEM file, 'rds' or 'system')")
    return value


def connection_options(settings: Settings, source: str) -> dict[str, str]:
    """libpq keywords for one connection to the database found as ``source`` (``etl.db.connect.Location``):
    ``connect_timeout`` always; ``sslmode`` and ``sslrootcert`` for a configured database when set."""
    options = {"connect_timeout": str(settings.db_connect_timeout_s)}
    if source == "embedded":
        return options
    if settings.db_sslmode is not None:
        options["sslmode"] = settings.db_sslmode.value
    root = ca_file(settings)
    if root is not None:
        options["sslrootcert"] = root
    return options


def tls_failure(exc: psycopg.Error, where: str, conninfo: str, options: dict[str, str]) -> DatabaseTlsError | None:
    """The one-line error for a connection that failed its TLS check, or None for any other failure.

    ``where`` is the database as a person may see it (no password); ``conninfo`` and ``options`` what the
    connection was opened with, read to say which check failed against what (sslmode, CA file, host). Only
    libpq's detail of a handshake failure is quoted, with every secret of ``conninfo`` taken out.
    """
    if not isinstance(exc, psycopg.OperationalError) or exc.sqlstate is not None:
        return None  # the server answered: TLS worked
    params = conninfo_to_dict(make_conninfo(conninfo, **options))
    text = str(exc).strip()
    lowered = text.lower()
    for marker, reason in _FAILURES:
        if marker in lowered:
            mode = params.get("sslmode") or SslMode.PREFER.value
            ca = params.get("sslrootcert") or "~/.postgresql/root.crt (libpq's default)"
            detail = dsn.scrub(text[lowered.index(marker) :].splitlines()[0][:200], conninfo)
            said = reason.format(ca=ca, host=params.get("host") or "?", mode=mode, detail=detail)
            return DatabaseTlsError(f"cannot connect to {where} over TLS (sslmode={mode}): {said}")
    return None
