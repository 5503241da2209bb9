"""Where the database is, in order: ``ETL_DATABASE_URL``; ``ETL_DB_SECRET_ID`` (Secrets Manager, RDS
format); else the embedded PostgreSQL under ``ETL_HOME``, migrated automatically on first connect.

Passwords stay inside the conninfo handed to libpq: ``describe`` gives a password-free location to print.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from etl.config import Settings
from etl.db import embedded, migrate

_migrated: set[str] = set()


@dataclass(frozen=True)
class Location:
    """A resolved database: the conninfo (may hold a password) and how it was found."""

    conninfo: str
    source: str  # "url", "secret" or "embedded"
    secret_id: str | None = None

    def describe(self) -> str:
        params = {k: v for k, v in conninfo_to_dict(self.conninfo).items() if k != "password"}
        user, host, port = params.get("user"), params.get("host", ""), params.get("port")
        dbname = params.get("dbname", "")
        if self.source == "embedded":
            return f"embedded PostgreSQL (socket {host}, database {dbname})"
        where = f"postgresql://{user + '@' if user else ''}{host}{f':{port}' if port else ''}/{dbname}"
        return f"{where} (secret {self.secret_id})" if self.source == "secret" else where


def secret_conninfo(secret_id: str, client: Any = None) -> str:
    """Conninfo from an RDS-format secret: host, port, username, password, dbname (or engine default)."""
    if client is None:
        import boto3

        client = boto3.client("secretsmanager")
    value = json.loads(client.get_secret_value(SecretId=secret_id)["SecretString"])
    missing = [k for k in ("host", "username", "password") if not value.get(k)]
    if missing:
        raise ValueError(f"secret {secret_id}: missing {', '.join(missing)} (RDS secret format expected)")
    return make_conninfo(
        host=value["host"],
        port=str(value.get("port") or 5432),
        user=value["username"],
        password=value["password"],
        dbname=value.get("dbname") or "postgres",
    )


def locate(settings: Settings) -> Location:
    """Resolve the database from the settings, starting the embedded server when nothing is configured."""
    if settings.database_url is not None:
        return Location(settings.database_url.get_secret_value(), "url")
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
    conn = psycopg.connect(location.conninfo, autocommit=True, application_name="fintech-etl")
    if location.source == "embedded" and location.conninfo not in _migrated:
        migrate.upgrade(conn)
        _migrated.add(location.conninfo)
    return conn
