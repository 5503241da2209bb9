"""The embedded PostgreSQL used when no database is configured: ``pgserver`` under ``ETL_HOME/pgdata``.

Started on demand and left running (``cleanup_mode=None``) so the next command reuses it; pgserver keeps
its own lock so two processes starting at once share one server.
"""

from __future__ import annotations

import os
import warnings
from functools import cache
from pathlib import Path
from types import ModuleType


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
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    return _pgserver().get_server(pgdata, cleanup_mode=None).get_uri()


def stop(home: Path) -> bool:
    """Stop the embedded server of ``home`` if it runs (data kept); True when one was stopped."""
    pgserver = _pgserver()
    pgdata = pgdata_path(home)
    if not (pgdata / "postmaster.pid").exists():
        return False
    user = "pgserver" if os.name == "posix" and os.geteuid() == 0 else None
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    server_uri.cache_clear()
    pgserver.PostgresServer._instances.pop(pgdata, None)
    return True
