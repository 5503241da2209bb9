"""A throwaway PostgreSQL cluster for tests, built with the machine's ``initdb``/``pg_ctl``.

Runs as the ``postgres`` OS user when the tests run as root (PostgreSQL refuses root). Durability is
switched off (fsync, synchronous_commit): the cluster lives for one test session only.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from etl.db.embedded import PERFORMANCE_SETTINGS, SAFE_LOG_SETTINGS

BIN_CANDIDATES = ("/usr/local/bin", "/usr/lib/postgresql/15/bin")


def _binary(name: str) -> str:
    found = shutil.which(name) or next((f"{d}/{name}" for d in BIN_CANDIDATES if Path(f"{d}/{name}").exists()), None)
    if not found:
        raise RuntimeError(f"{name} not found: install PostgreSQL server binaries (initdb, pg_ctl)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres_user() -> list[str]:
    """Command prefix to drop root privileges (PostgreSQL will not run as root)."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


@dataclass
class Cluster:
    """A running cluster: ``url`` points at its ``postgres`` database."""

    root: Path
    port: int
    options: str = ""  # the server options it was started with

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        """The server log (``pg_ctl -l``): every ERROR with its CONTEXT and STATEMENT lands here."""
        return self.root / "log"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def halt(self) -> None:
        """Stop the server at once (``-m immediate``: every session dies), keeping its data for ``resume``."""
        _pg_ctl(self, "-m", "immediate", "-w", "stop")

    def resume(self) -> None:
        """Start a halted cluster again on the same port."""
        _pg_ctl(self, "-l", str(self.root / "log"), "-o", self.options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        subprocess.run(
            [
                *_as_postgres_user(),
                _binary("pg_ctl"),
                "-D",
                str(self.pgdata),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(extra_options: str = "", hba: str | None = None) -> Cluster:
    """initdb + pg_ctl start in a fresh temp dir on a free port; trust auth on localhost only.

    ``extra_options``: more ``-c name=value`` server options; ``hba``: the whole ``pg_hba.conf`` instead of
    initdb's (tests/tls.py: TLS only over TCP)."""
    root = Path(tempfile.mkdtemp(prefix="etl-pg-"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    prefix = _as_postgres_user()
    cluster = Cluster(root, _free_port())
    subprocess.run(
        [
            *prefix,
            _binary("initdb"),
            "-D",
            str(cluster.pgdata),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    if hba is not None:
        (cluster.pgdata / "pg_hba.conf").write_text(hba)
    settings = {**PERFORMANCE_SETTINGS, **SAFE_LOG_SETTINGS}  # as the embedded server (its log stays in root/log)
    cluster.options = (
        f"-c port={cluster.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50 "
        + " ".join(f"-c {name}={value}" for name, value in settings.items())
        + (f" {extra_options}" if extra_options else "")
    )
    try:
        subprocess.run(
            [
                *prefix,
                _binary("pg_ctl"),
                "-D",
                str(cluster.pgdata),
                "-l",
                str(cluster.log),
                "-o",
                cluster.options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError:
        log = (root / "log").read_text(errors="replace") if (root / "log").exists() else ""
        cluster.stop()
        raise RuntimeError(f"PostgreSQL did not start:\n{log}") from None
    return cluster


def _pg_ctl(cluster: Cluster, *args: str) -> None:
    subprocess.run(
        [*_as_postgres_user(), _binary("pg_ctl"), "-D", str(cluster.pgdata), *args], check=True, capture_output=True
    )


def create_database(server_url: str, *, template: str | None = None, name: str | None = None) -> str:
    """Create a database (optionally from a template) and return its name."""
    name = name or f"t_{uuid.uuid4().hex[:12]}"
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(query)
    return name


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def database_url(server_url: str, name: str) -> str:
    return server_url.rsplit("/", 1)[0] + "/" + name


@contextlib.contextmanager
def running_cluster(extra_options: str = "", hba: str | None = None) -> Iterator[Cluster]:
    cluster = start_cluster(extra_options, hba)
    try:
        yield cluster
    finally:
        cluster.stop()
