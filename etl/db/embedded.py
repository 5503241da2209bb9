"""The embedded PostgreSQL used when no database is configured: ``pgserver`` under ``ETL_HOME/pgdata``.

Started on demand and left running (``cleanup_mode=None``) so the next command reuses it; pgserver keeps
its own lock so two processes starting at once share one server. On top of initdb's defaults the server gets
``SERVER_SETTINGS`` (``ALTER SYSTEM``, then one restart the first time they are missing).
"""

from __future__ import annotations

import os
import warnings
from functools import cache
from pathlib import Path
from types import ModuleType

import psycopg
from psycopg import sql

from etl.io.zones import private_folders

# initdb's 128MB of shared buffers cannot hold a 1M-row table with its indexes: a day-2 UPDATE of a quarter
# of the rows then evicts and re-reads pages all along (measured 4.8 s -> 3.5 s with 512MB). Memory is only
# taken as pages are used. tests/pg.py starts its clusters with the same settings, so the tests and
# benchmarks measure the server ``etl run`` gets.
SERVER_SETTINGS = {"shared_buffers": "512MB"}


def _pgserver() -> ModuleType:
    """Import pgserver lazily (a configured database never needs it), without platformdirs' warning
    about an unset XDG_RUNTIME_DIR, which is noise on servers and containers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    return pgserver


def pgdata_path(home: Path) -> Path:
    return Path(home).expanduser().resolve() / "pgdata"


@cache
def server_uri(home: Path) -> str:
    """Connection URI (unix socket, trust auth) of the embedded server for ``home``, starting it if needed."""
    pgdata = pgdata_path(home)
    private_folders(pgdata.parent)
    pgserver = _pgserver()
    uri = pgserver.get_server(pgdata, cleanup_mode=None).get_uri()
    share_home_for_traversal(pgdata.parent)
    import fasteners  # pgserver's own dependency

    with fasteners.InterProcessLock(pgdata.parent / ".pgdata-settings.lock"):  # one process restarts it
        if apply_settings(uri):
            pgserver.pg_ctl(["-w", "-m", "fast", "restart"], pgdata=pgdata, user=_system_user())
    return uri


def share_home_for_traversal(home: Path) -> None:
    """Leave ``ETL_HOME`` open to other users for traversal only (``0711``), and only when it must be.

    Run as root, pgserver runs the server as its own ``pgserver`` user and, at every start, adds ``o+rx`` to
    each folder above ``pgdata`` so that user can reach it. Reaching is all it needs: the zones inside are
    ``0700`` and their files ``0600``, so the only thing shared is ``pgdata`` (owned by ``pgserver``, ``0700``).
    Taking the read bit back keeps other users from even listing ``ETL_HOME``. Not root: the server runs as the
    caller and ``ETL_HOME`` stays ``0700``.
    """
    if _system_user() is None:
        return
    info = home.stat()
    if info.st_uid == os.geteuid():
        os.chmod(home, (info.st_mode & 0o700) | 0o011)


def apply_settings(uri: str) -> bool:
    """``ALTER SYSTEM`` for each of ``SERVER_SETTINGS`` the server does not run with; True when a restart
    is needed for them to take effect."""
    contexts: list[str] = []
    with psycopg.connect(uri, autocommit=True) as conn:
        for name, value in SERVER_SETTINGS.items():
            row = conn.execute("SELECT current_setting(%s), context FROM pg_settings WHERE name = %s", (name, name))
            current, context = row.fetchone() or (None, None)
            if current != value:
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
                contexts.append(context)
        if contexts:
            conn.execute("SELECT pg_reload_conf()")  # enough for settings that need no restart
    return "postmaster" in contexts


def _system_user() -> str | None:
    """pgserver runs the server as its own ``pgserver`` user when started by root (PostgreSQL refuses root)."""
    return "pgserver" if os.name == "posix" and os.geteuid() == 0 else None


def stop(home: Path) -> bool:
    """Stop the embedded server of ``home`` if it runs (data kept); True when one was stopped."""
    pgserver = _pgserver()
    pgdata = pgdata_path(home)
    if not (pgdata / "postmaster.pid").exists():
        return False
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=_system_user())
    server_uri.cache_clear()
    pgserver.PostgresServer._instances.pop(pgdata, None)
    return True
