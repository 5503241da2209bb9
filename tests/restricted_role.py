"""A PostgreSQL cluster that checks passwords, and a database locked down as a hardened cluster is.

The session cluster of ``tests/pg.py`` trusts every local login, which would hide a role whose password
was never set. Here only ``postgres`` (the test's administrator) is trusted; every other role logs in with
SCRAM, and the database's PUBLIC defaults (CONNECT, TEMPORARY) are revoked, so a role has exactly what it
was granted (docs/deploy.md §4).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
import psycopg.conninfo
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tests import pg

ROLE = "etl"
DATABASE = "fintech"
HBA = """\
local all postgres trust
host  all postgres 127.0.0.1/32 trust
host  all all      127.0.0.1/32 scram-sha-256
"""


@contextlib.contextmanager
def password_cluster() -> Iterator[pg.Cluster]:
    with pg.running_cluster() as cluster:
        (cluster.pgdata / "pg_hba.conf").write_text(HBA)
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
        yield cluster


def locked_database(cluster: pg.Cluster, name: str = DATABASE) -> str:
    """A fresh database whose PUBLIC privileges are revoked; returns its administrator URL."""
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))
    return cluster.url(name)


def drop(cluster: pg.Cluster, role: str = ROLE, database: str = DATABASE) -> None:
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def role_url(cluster: pg.Cluster, password: str, role: str = ROLE, database: str = DATABASE) -> str:
    return make_conninfo(host="127.0.0.1", port=cluster.port, user=role, password=password, dbname=database)


def ownership(admin_url: str) -> dict[str, set[str]]:
    """Owner -> the schemas and tables of ``etl`` and ``fintech``."""
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            "SELECT pg_get_userbyid(nspowner), nspname FROM pg_namespace WHERE nspname IN ('etl', 'fintech') "
            "UNION ALL SELECT tableowner, schemaname || '.' || tablename FROM pg_tables "
            "WHERE schemaname IN ('etl', 'fintech')"
        ).fetchall()
    owners: dict[str, set[str]] = {}
    for owner, name in rows:
        owners.setdefault(owner, set()).add(name)
    return owners


def restricted_database(server_url: str) -> Iterator[str]:
    """A fresh database on ``server_url`` migrated by, and reached as, a role of its own that has only the
    grants of docs/deploy.md §4 (``etl.db.grants``); yields that role's URL. For fixtures parametrised over
    the role a test runs as."""
    from etl.db import grants, migrate

    name = pg.create_database(server_url)
    role, password = f"{name}_etl", "restricted-test-pw"
    admin_url = pg.database_url(server_url, name)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))
        grants.bootstrap_role(admin, role, password, name)
    where = psycopg.conninfo.conninfo_to_dict(server_url)
    url = f"postgresql://{role}:{password}@{where.get('host', '127.0.0.1')}:{where.get('port', 5432)}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        migrate.upgrade(conn)
    try:
        yield url
    finally:
        pg.drop_database(server_url, name)
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
