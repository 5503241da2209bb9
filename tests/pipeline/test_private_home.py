"""``etl run`` on the embedded server: only ``pgdata`` is shared with the server's user; every zone file and
folder is private to the caller, whatever the umask, and another user (the server's own included) reads none."""

from __future__ import annotations

import datetime as dt
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etl.cli.main import app
from etl.db import embedded
from etl.generate import generate
from tests.environment import EtlEnv

ZONES = ("landing", "raw", "stage", "archive", "error")
PROBE = """
import os, sys
user = sys.argv[1]
import pwd
entry = pwd.getpwnam(user)
os.setgid(entry.pw_gid); os.setuid(entry.pw_uid)
readable = []
for p in sys.argv[2:]:
    try:
        os.listdir(p) if os.path.isdir(p) else open(p, 'rb').read(1)
        readable.append(p)
    except PermissionError:
        pass
print(len(readable), readable)
"""


@pytest.fixture
def open_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An ``ETL_HOME`` in a folder the server's user can reach (pytest's tmp folders are 0700), embedded database."""
    base = Path(tempfile.mkdtemp(prefix="etl-private-"))
    base.chmod(0o755)
    home = base / "home"
    EtlEnv(home, None).apply(monkeypatch)  # no URL: the embedded server under home
    old = os.umask(0)  # the most permissive umask: modes must not depend on it
    try:
        yield home
    finally:
        os.umask(old)
        embedded.stop(home)
        shutil.rmtree(base, ignore_errors=True)


def test_embedded_run_shares_only_pgdata(open_home: Path) -> None:
    src = open_home.parent / "in"
    src.mkdir()
    good = generate("transactions", dt.date(2024, 3, 1), rows=30, seed=2, out_dir=src)
    bad = src / "transactions_20240302.dat"
    bad.write_bytes(b"H|junk\n")
    for path in (good, bad):
        path.chmod(0o644)
    result = CliRunner().invoke(app, ["run", str(good), str(bad)], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.stdout + result.stderr  # one loaded, one rejected

    zone_paths = [p for zone in ZONES for p in [open_home / zone, *(open_home / zone).rglob("*")]]
    files = [p for p in zone_paths if p.is_file()]
    assert {p.suffix for p in files} >= {".dat", ".json", ".parquet"}  # data, reports and stage all looked at
    for path in zone_paths:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"
    home_mode = stat.S_IMODE(open_home.stat().st_mode)
    if os.geteuid() != 0:
        assert home_mode == 0o700
        return
    assert home_mode == 0o711  # traversable for the server's user, not listable
    pgdata = embedded.pgdata_path(open_home)
    assert pwd.getpwuid(pgdata.stat().st_uid).pw_name == "pgserver"
    for user in ("nobody", "pgserver"):
        probe = [sys.executable, "-c", PROBE, user, str(open_home), *map(str, zone_paths)]
        done = subprocess.run(probe, capture_output=True, text=True, check=True)
        assert done.stdout.startswith("0 "), (user, done.stdout)
