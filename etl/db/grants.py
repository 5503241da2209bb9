"""The database role the pipeline runs as, and exactly what it is granted (docs/deploy.md §4).

The ``etl`` role is an ordinary login: NOSUPERUSER, NOCREATEDB, NOCREATEROLE. On its database it needs

- ``CONNECT`` to log in (once PUBLIC's default is revoked, as a hardened cluster does);
- ``CREATE`` to create the ``etl`` and ``fintech`` schemas in the first migration. It then owns them and
  everything the migrations create in them, so the load needs no further grant: owning a table covers
  ``INSERT/UPDATE/DELETE``, ``ANALYZE`` and ``COPY ... FROM STDIN``;
- ``TEMPORARY`` for the load's ``CREATE TEMP TABLE ... ON COMMIT DROP``.

Advisory locks (``pg_advisory_xact_lock``) and ``set_config('work_mem', ..., true)`` need no grant.

:func:`bootstrap_role` is what the stack's migrate function runs with the cluster's master secret before it
migrates as the role itself. The password reaches the server only as a SCRAM verifier computed here
(``PQencryptPasswordConn``), so not even a server logging every statement records it.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

#: The privileges on the database, in the order docs/deploy.md §4 lists them.
DATABASE_PRIVILEGES = ("CONNECT", "CREATE", "TEMPORARY")
ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"


def bootstrap_role(admin: psycopg.Connection, role: str, password: str, database: str) -> None:
    """Create ``role`` (or reset its password and attributes) and grant it exactly :data:`DATABASE_PRIVILEGES`
    on ``database``; idempotent, in one transaction of ``admin`` (a role with CREATEROLE that owns the database)."""
    verifier = admin.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
    with admin.transaction():
        exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        admin.execute(
            sql.SQL("{} ROLE {} WITH {} PASSWORD {}").format(
                sql.SQL(verb), sql.Identifier(role), sql.SQL(ROLE_ATTRIBUTES), sql.Literal(verifier)
            )
        )
        admin.execute(
            sql.SQL("GRANT {} ON DATABASE {} TO {}").format(
                sql.SQL(", ").join(map(sql.SQL, DATABASE_PRIVILEGES)), sql.Identifier(database), sql.Identifier(role)
            )
        )
