"""The embedded PostgreSQL used when no database is configured: ``pgserver`` under ``ETL_HOME/pgdata``.

Started on demand and left running (``cleanup_mode=None``) so the next command reuses it. On top of initdb's
defaults the server gets ``SERVER_SETTINGS`` (``ALTER SYSTEM``, then one restart the first time they are
missing).

Start-up is race-free: init, start, configure and restart all happen under ONE file lock in ``ETL_HOME``
(``.pgdata.lock``), so a second process waits for the first and then finds a configured, running server (it
never sees the server half-way through its first restart). Every connect goes through ``server_uri``, which
starts the server again if it stopped or died (``etl run`` reconnects after a lost connection this way).

Logging (docs/design.md §12: no row value in any log). The server writes its log through its logging
collector into ``ETL_HOME/pgdata/pg_log/server-<weekday>.log`` (0600, folder 0700): one file per day,
overwritten a week later, so it stays readable and bounded on every start path (``pg_ctl`` also gets
``-l``, never a deleted temp file). Errors go to the client only, never to the log: the primary message
of a conversion error quotes the value (``invalid input syntax for type integer: "..."``) and a failed COPY's
CONTEXT line quotes the row, so ``log_min_messages = log`` (server events: start, stop, checkpoints, FATAL
and PANIC); and should an error reach it anyway, ``log_error_verbosity = terse`` drops DETAIL, HINT, QUERY
and CONTEXT, ``log_min_error_statement = panic`` the statement text. Statements and parameters are never
logged. The client (the pipeline) reports every error in its own words (ledger, notification).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import psycopg
from psycopg import sql

from etl.io.zones import private_folders

# initdb's 128MB of shared buffers cannot hold a 1M-row table with its indexes: a day-2 UPDATE of a quarter
# of the rows then evicts and re-reads pages all along (measured 4.8 s -> 3.5 s with 512MB). Memory is only
# taken as pages are used. tests/pg.py starts its clusters with the same settings, so the tests and
# benchmarks measure the server ``etl run`` gets.
PERFORMANCE_SETTINGS = {"shared_buffers": "512MB"}

# What the server log may hold (see the module docstring): no statement text, no DETAIL/CONTEXT, no
# parameters. tests/pg.py starts its clusters with these too.
SAFE_LOG_SETTINGS = {
    "log_min_messages": "log",  # an ERROR's own message can quote the value (invalid input syntax: "...")
    "log_error_verbosity": "terse",
    "log_min_error_statement": "panic",
    "log_statement": "none",
    "log_min_duration_statement": "-1",
    "log_parameter_max_length": "0",
    "log_parameter_max_length_on_error": "0",
}
# Where it goes: files under ETL_HOME, private, one per weekday.
LOG_DIRECTORY = "pg_log"  # relative to pgdata (pgserver's own start-up log is the plain file pgdata/log)
LOG_FILE_SETTINGS = {
    "logging_collector": "on",
    "log_directory": LOG_DIRECTORY,
    "log_filename": "server-%a.log",
    "log_file_mode": "0600",
    "log_rotation_age": "1d",  # a new file each day ...
    "log_rotation_size": "0",
    "log_truncate_on_rotation": "on",  # ... overwriting last week's file of that weekday
}
SERVER_SETTINGS = {**PERFORMANCE_SETTINGS, **SAFE_LOG_SETTINGS, **LOG_FILE_SETTINGS}

LOCK_NAME = ".pgdata.lock"
_configured: set[Path] = set()  # servers this process saw running with every setting
START_LOG = "log"  # pgserver's ``pg_ctl -l`` file inside pgdata: the lines before the collector takes over


def _pgserver() -> ModuleType:
    """Import pgserver lazily (a configured database never needs it), without platformdirs' warning
    about an unset XDG_RUNTIME_DIR, which is noise on servers and containers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    return pgserver


def pgdata_path(home: Path) -> Path:
    return Path(home).expanduser().resolve() / "pgdata"


def log_dir(home: Path) -> Path:
    """The folder of the server's log files."""
    return pgdata_path(home) / LOG_DIRECTORY


@contextmanager
def _start_lock(pgdata: Path) -> Iterator[None]:
    """The one lock around init, start, configure and restart of this ``ETL_HOME``'s server."""
    import fasteners  # pgserver's own dependency

    private_folders(pgdata.parent)
    lock = pgdata.parent / LOCK_NAME
    os.close(os.open(lock, os.O_CREAT | os.O_WRONLY, 0o600))  # private like every file under ETL_HOME
    with fasteners.InterProcessLock(lock):
        yield


def _running_uri(pgdata: Path) -> str | None:
    """The URI of the server running on ``pgdata`` and ready, else None (never started, stopped or killed)."""
    from pgserver.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (AssertionError, ValueError, OSError):  # a postmaster.pid being written or half-removed
        return None
    if info is None or not info.is_running() or info.status != "ready":
        return None
    return info.get_uri()


def server_uri(home: Path) -> str:
    """Connection URI (unix socket, trust auth) of the embedded server for ``home``, starting it if needed.

    Cheap when it runs (reads ``postmaster.pid``); otherwise starts (and on the very first start
    configures) it under the start lock, so concurrent callers share one server.
    """
    pgdata = pgdata_path(home)
    if (uri := _running_uri(pgdata)) is not None and (pgdata in _configured or not _needs_settings(uri)):
        _configured.add(pgdata)
        return uri
    with _start_lock(pgdata):
        pgserver = _pgserver()
        uri = _running_uri(pgdata)
        if uri is None:
            pgserver.PostgresServer._instances.pop(pgdata, None)  # a handle on a server that is gone
            private_folders(pgdata.parent)
            uri = pgserver.get_server(pgdata, cleanup_mode=None).get_uri()
            share_home_for_traversal(pgdata.parent)
        if apply_settings(uri):
            _pg_ctl(pgdata, "restart")
            uri = _running_uri(pgdata) or uri
    _configured.add(pgdata)
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


def _needs_settings(uri: str) -> bool:
    """True when the running server lacks one of ``SERVER_SETTINGS`` (checked without changing anything)."""
    try:
        with psycopg.connect(uri, autocommit=True, connect_timeout=10) as conn:
            return bool(_missing(conn))
    except psycopg.OperationalError:  # stopping or restarting right now: take the lock and look again
        return True


def _missing(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    """(name, wanted value, context) of each setting the server does not run with."""
    rows = conn.execute(
        "SELECT name, setting, current_setting(name), context FROM pg_settings WHERE name = ANY(%s)",
        (list(SERVER_SETTINGS),),
    ).fetchall()
    missing = []
    for name, setting, shown, context in rows:
        wanted = SERVER_SETTINGS[name]
        if wanted not in (setting, shown) and not _same_mode(name, setting, wanted):
            missing.append((name, wanted, context))
    return missing


def _same_mode(name: str, setting: str, wanted: str) -> bool:
    """``log_file_mode`` shows as ``0600`` but its raw setting is the decimal ``384``."""
    return name == "log_file_mode" and setting.isdigit() and int(setting) == int(wanted, 8)


def apply_settings(uri: str) -> bool:
    """``ALTER SYSTEM`` for each of ``SERVER_SETTINGS`` the server does not run with; True when a restart
    is needed for them to take effect."""
    with psycopg.connect(uri, autocommit=True) as conn:
        missing = _missing(conn)
        for name, value, _context in missing:
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
        if missing:
            conn.execute("SELECT pg_reload_conf()")  # enough for settings that need no restart
    return any(context == "postmaster" for _name, _value, context in missing)


def _pg_ctl(pgdata: Path, action: str) -> None:
    """``pg_ctl <action>`` (fast mode, waiting); a (re)started server's early output goes to pgdata/log,
    never to pg_ctl's own captured output (pgserver's deleted temp file)."""
    args = ["-w", "-m", "fast"]
    if action in ("start", "restart"):
        args += ["-l", str(pgdata / START_LOG)]
    _pgserver().pg_ctl([*args, action], pgdata=pgdata, user=_system_user())


def _system_user() -> str | None:
    """pgserver runs the server as its own ``pgserver`` user when started by root (PostgreSQL refuses root)."""
    return "pgserver" if os.name == "posix" and os.geteuid() == 0 else None


def stop(home: Path) -> bool:
    """Stop the embedded server of ``home`` if it runs (data kept); True when one was stopped."""
    pgdata = pgdata_path(home)
    if not (pgdata / "postmaster.pid").exists():
        return False
    with _start_lock(pgdata):
        _configured.discard(pgdata)
        _pgserver().PostgresServer._instances.pop(pgdata, None)
        if _running_uri(pgdata) is None:  # not running (a stale postmaster.pid: the next start clears it)
            return False
        _pg_ctl(pgdata, "stop")
    return True
