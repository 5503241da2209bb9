"""Where the database is, in order: ``ETL_DATABASE_URL``; ``ETL_DB_SECRET_ID`` (Secrets Manager, RDS
format); else the embedded PostgreSQL under ``ETL_HOME``, migrated automatically on first connect.

Passwords stay inside the conninfo handed to libpq: ``describe`` gives a password-free location to print
(``etl.db.dsn.display``, the one function that shows a database location), a URL libpq would misread is
refused before it is used, and a driver error about connecting reaches callers only with the password
taken out (docs/design.md §10: secrets are never printed).

Every connection is opened here, with the TLS and timeout keywords of ``etl.db.tls`` (``verify-full`` against
the RDS CA bundle on AWS); a TLS failure leaves as one line that names the location, never a traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from etl.config import Settings
from etl.db import dsn, embedded, migrate, tls
from etl.io.secrets import SecretError

_migrated: set[str] = set()


@dataclass(frozen=True)
class Location:
    """A resolved database: the conninfo (may hold a password) and how it was found."""

    conninfo: str = field(repr=False)
    source: str  # "url", "secret" or "embedded"
    secret_id: str | None = None

    def describe(self) -> str:
        """Where the database is, for a person: never the password, whatever the conninfo looks like."""
        if self.source == "embedded":
            params = conninfo_to_dict(self.conninfo)  # built by us: no password, always well formed
            return f"embedded PostgreSQL (socket {params.get('host', '')}, database {params.get('dbname', '')})"
        where = dsn.display(self.conninfo)
        return f"{where} (secret {self.secret_id})" if self.source == "secret" else where


def secret_conninfo(secret_id: str, client: Any = None) -> str:
    """Conninfo from an RDS-format secret: host, port, username, password, dbname (or engine default)."""
    if client is None:
        import boto3

        client = boto3.client("secretsmanager")
    try:
        text = client.get_secret_value(SecretId=secret_id)["SecretString"]
    except Exception as exc:  # the service's message names the secret, never its value
        raise SecretError(f"cannot read secret {secret_id}: {type(exc).__name__}") from exc
    expected = "a JSON object with host, username, password (RDS secret format); value not shown"
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        raise SecretError(f"secret {secret_id} is not {expected}") from None
    if not isinstance(value, dict):
        raise SecretError(f"secret {secret_id} is not {expected}")
    missing = [k for k in ("host", "username", "password") if not value.get(k)]
    if missing:
        raise SecretError(f"secret {secret_id}: missing {', '.join(missing)}; expected {expected}")
    if not str(value.get("port") or 5432).isdigit():
        raise SecretError(f"secret {secret_id}: port is not a number; value not shown")
    try:
        return make_conninfo(
            host=str(value["host"]),
            port=str(value.get("port") or 5432),
            user=str(value["username"]),
            password=str(value["password"]),
            dbname=str(value.get("dbname") or "postgres"),
        )
    except Exception:  # libpq's message would quote the offending value
        raise SecretError(
            f"secret {secret_id}: its host, port, username or dbname is not valid; value not shown"
        ) from None


def locate(settings: Settings) -> Location:
    """Resolve the database from the settings, starting the embedded server when nothing is configured."""
    if settings.database_url is not None:
        return Location(dsn.checked(settings.database_url.get_secret_value()), "url")
    if settings.db_secret_id:
        return Location(secret_conninfo(settings.db_secret_id), "secret", settings.db_secret_id)
    return Location(embedded.server_uri(settings.home), "embedded")


def describe(settings: Settings) -> str:
    """Password-free description of where the database is, for the CLI to print."""
    return locate(settings).describe()


def connect(settings: Settings, *, location: Location | None = None) -> psycopg.Connection:
    """An autocommit connection (each ``conn.transaction()`` is a real transaction).

    The embedded database is migrated on its first connect in a process, so a laptop run needs no setup.
    """
    location = location or locate(settings)
    options = tls.connection_options(settings, location.source)
    try:
        conn = psycopg.connect(location.conninfo, autocommit=True, application_name="fintech-etl", **options)
    except psycopg.Error as exc:  # same class (transient or not), message without the password, no chain
        failure = tls.tls_failure(exc, location.describe(), location.conninfo, options)
        if failure is not None:  # a configuration to fix: one line, never retried
            raise failure from None
        raise type(exc)(dsn.scrub(str(exc), location.conninfo)) from None
    except Exception as exc:
        raise dsn.DatabaseUrlError(f"cannot connect to {location.describe()}: {type(exc).__name__}") from None
    if location.source == "embedded" and location.conninfo not in _migrated:
        migrate.upgrade(conn)
        _migrated.add(location.conninfo)
    return conn
