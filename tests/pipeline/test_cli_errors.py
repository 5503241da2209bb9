"""Usage and configuration errors are ONE line on stderr with exit code 2, other failures exit 1, and never a
traceback or a secret, whatever the input: real ``etl`` processes, so what a terminal would see is what is checked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from etl.generate import generate
from tests.environment import PAN_KEY
from tests.pipeline.conftest import REPO, Pipeline, notifications

PASSWORD = "S3cretPW-do-not-print"
SECRETS = (PAN_KEY, PASSWORD)


@dataclass
class Case:
    """One hostile invocation: arguments (``{src}``, ``{home}`` filled in), environment changes, expected exit."""

    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    code: int = 2
    says: str = ""  # a fragment the one stderr line must contain
    setup: Callable[[Path], None] | None = None


def _file(name: str) -> Callable[[Path], None]:
    def make(src: Path) -> None:
        (src / name).write_bytes(b"H|x\n")

    return make


def _home_is_a_file(src: Path) -> None:
    (src / "home-file").write_text("not a folder")


CASES: dict[str, Case] = {
    "name longer than NAME_MAX": Case(["run", "x" * 300 + ".dat"], says="File name too long"),
    "validate: name longer than NAME_MAX": Case(["validate", "y" * 300 + ".dat"], says="File name too long"),
    "path longer than PATH_MAX": Case(["run", "/".join(["d" * 200] * 30) + ".dat"], says="File name too long"),
    "dotdot backslash, missing": Case(["run", "..\\..\\x.dat"], says="..\\..\\x.dat: no such file"),
    "brackets in a missing path": Case(["run", "nope[/]x.dat"], says="nope[/]x.dat: no such file"),
    "markup in a missing path": Case(["run", "[bold red]x.dat"], says="[bold red]x.dat: no such file"),
    "escape sequence in a missing path": Case(["run", "a\x1b[2Jb.dat"], says="a\\x1b[2Jb.dat: no such file"),
    "newline in a missing path": Case(["validate", "a\nb.dat"], says="a\\nb.dat: no such file"),
    "a folder as input": Case(["run", "{src}"], says="not a regular file"),
    "a FIFO as input": Case(
        ["run", "{src}/fifo.dat"], says="not a regular file", setup=lambda s: os.mkfifo(s / "fifo.dat")
    ),
    "stage URI with an unknown scheme": Case(
        ["run", "{src}/f.dat"], {"ETL_STAGE_URI": "ftp://h/x"}, says="ETL_STAGE_URI"
    ),
    "raw URI without a bucket": Case(["run", "{src}/f.dat"], {"ETL_RAW_URI": "s3://"}, says="ETL_RAW_URI"),
    "archive URI with a bad bucket": Case(["status"], {"ETL_ARCHIVE_URI": "s3://Bad_Bucket/x"}, says="ETL_ARCHIVE_URI"),
    "block size not a number": Case(["run", "{src}/f.dat"], {"ETL_BLOCK_SIZE": "abc"}, says="ETL_BLOCK_SIZE"),
    "block size not a number (status)": Case(["status"], {"ETL_BLOCK_SIZE": "abc"}, says="ETL_BLOCK_SIZE"),
    "block size too small": Case(["db", "status"], {"ETL_BLOCK_SIZE": "10"}, says="ETL_BLOCK_SIZE"),
    "negative threshold": Case(["status"], {"ETL_LARGE_FILE_THRESHOLD_BYTES": "-5"}, says="ETL_LARGE_FILE_THRESHOLD"),
    "ETL_HOME is a file": Case(["run", "{src}/f.dat"], {"ETL_HOME": "{src}/home-file"}, setup=_home_is_a_file),
    "unreachable database, password in URL": Case(
        ["status"], {"ETL_DATABASE_URL": f"postgresql://etl:{PASSWORD}@127.0.0.1:1/db"}, says="database"
    ),
    "unreachable database (run)": Case(
        ["run", "{src}/f.dat"], {"ETL_DATABASE_URL": f"postgresql://etl:{PASSWORD}@127.0.0.1:1/db"}, says="database"
    ),
    "unknown command": Case(["nope"], says="No such command"),
    "bad option value": Case(["status", "--limit", "0"], says="--limit"),
    "unknown option": Case(["run", "--frobnicate", "x.dat"], says="--frobnicate"),
    "missing argument": Case(["run"], says="files"),
    "unknown feed": Case(["validate", "--feed", "nope", "{src}/f.dat"], says="nope"),
    "replay with a bad variable": Case(["replay", "x/2024-03-01/f.dat"], {"ETL_BLOCK_SIZE": "abc"}, says="ETL_BLOCK"),
    "replay of nothing": Case(["replay"], says="nothing to replay"),
    "replay of a missing key": Case(["replay", "transactions/2024-03-01/nope.dat"], says="no data file there"),
    "replay into a read-only ETL_HOME": Case(
        ["replay", "transactions/2024-03-01/f.dat"], {"ETL_HOME": "{src}/home-file"}, setup=_home_is_a_file
    ),
}


@pytest.fixture
def hostile(pipeline: Pipeline) -> Callable[[list[str], dict[str, str]], subprocess.CompletedProcess[str]]:
    """Run ``python -m etl`` as a real process in the pipeline's environment, with changes."""

    def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        full = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
        full.pop("ETL_DEBUG", None)
        for key, value in env.items():
            full[key] = value.format(src=pipeline.src, home=pipeline.home)
        argv = [a.format(src=pipeline.src, home=pipeline.home) if "{" in a else a for a in args]
        return subprocess.run(
            [sys.executable, "-m", "etl", *argv],
            env=full,
            cwd=pipeline.src,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def assert_one_line(proc: subprocess.CompletedProcess[str], code: int, says: str = "") -> str:
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output
    for secret in SECRETS:
        assert secret not in output
    assert proc.returncode == code, output
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines
    assert says in lines[0], lines[0]
    assert "\x1b" not in proc.stderr
    return lines[0]


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_a_usage_or_configuration_error_is_one_line_exit_2(pipeline: Pipeline, hostile, case: Case) -> None:
    (pipeline.src / "f.dat").write_bytes(b"H|x\n")
    if case.setup:
        case.setup(pipeline.src)
    before = sorted(p.relative_to(pipeline.src) for p in pipeline.src.rglob("*"))
    assert_one_line(hostile(case.args, case.env), case.code, case.says)
    assert sorted(p.relative_to(pipeline.src) for p in pipeline.src.rglob("*")) == before  # inputs untouched
    assert pipeline.ledger() == []


def test_status_against_an_unmigrated_database(pipeline: Pipeline, hostile, empty_db_url: str) -> None:
    for args in (["status"], ["run", "{src}/f.dat"]):
        (pipeline.src / "f.dat").write_bytes(b"H|x\n")
        line = assert_one_line(hostile(args, {"ETL_DATABASE_URL": empty_db_url}), 2, "migrations")
        assert "etl db upgrade" in line


@contextlib.contextmanager
def _unwritable(folder: Path) -> Iterator[Path]:
    """A folder nobody can write: a read-only tmpfs when root (root ignores modes), else mode 0500."""
    folder.mkdir()
    if os.geteuid() == 0:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], check=False)
        if mounted.returncode != 0:  # no mount rights (a container): a path below a regular file cannot be made
            folder.rmdir()
            folder.write_text("")
            yield folder / "home"
            return
        try:
            yield folder
        finally:
            subprocess.run(["umount", str(folder)], check=True)
        return
    folder.chmod(0o500)
    try:
        yield folder
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize(
    ("database", "command"),
    [("configured", ["run", "{src}/f.dat"]), ("embedded", ["run", "{src}/f.dat"]), ("configured", ["demo"])],
)
def test_a_read_only_etl_home_is_one_line_exit_2(
    pipeline: Pipeline, hostile, tmp_path: Path, database: str, command: list[str]
) -> None:
    (pipeline.src / "f.dat").write_bytes(b"H|x\n")
    env = {} if database == "configured" else {"ETL_DATABASE_URL": ""}
    with _unwritable(tmp_path / "ro") as home:
        env["ETL_HOME"] = str(home)
        proc = hostile(command, env)
    line = assert_one_line(proc, 2)
    assert ("zone" if database == "configured" else "database") in line


def test_debug_shows_the_traceback(pipeline: Pipeline, hostile) -> None:
    proc = hostile(["status"], {"ETL_BLOCK_SIZE": "abc", "ETL_DEBUG": "1"})
    assert proc.returncode == 2 and "Traceback" in proc.stderr and proc.stderr.splitlines()[-1].startswith("error: ")


# --- file-level OS errors: the file fails alone, stays where it was, nothing is left half-moved -------------


def _enospc_after(monkeypatch: pytest.MonkeyPatch, zone_root: Path) -> None:
    """Make every write of a file under ``zone_root`` fail half-way with ENOSPC (a full disk)."""
    real = shutil.copyfileobj

    def copy(src, dst, length=0):
        if str(getattr(dst, "name", "")).startswith(str(zone_root)):
            dst.write(src.read(10))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst, length) if length else real(src, dst)

    monkeypatch.setattr(shutil, "copyfileobj", copy)


@pytest.mark.parametrize("zone", ["landing", "raw"])
def test_disk_full_while_taking_a_file_in(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, zone: str) -> None:
    path = generate("transactions", dt.date(2024, 3, 1), rows=20, seed=1, out_dir=pipeline.src)
    data = path.read_bytes()
    with monkeypatch.context() as patch:
        _enospc_after(patch, pipeline.zone(zone))
        if zone == "raw":  # landing → raw copies (no hard link) so the write to raw fails
            patch.setattr("etl.io.zones.LocalZone.link_to", lambda *a, **k: False)
        result = pipeline.cli("run", path)
    output = result.stdout + result.stderr
    assert result.exit_code == 1, output
    assert "Traceback" not in output and (result.exception is None or isinstance(result.exception, SystemExit))
    (message,) = notifications(result.stdout)
    assert message["status"] == "FAILURE" and "No space left on device" in message["error"]
    assert message["location"] == str(path)
    assert path.read_bytes() == data  # left where it was
    for name in ("landing", "raw", "archive", "error", "stage"):  # nothing half-written or half-moved
        assert pipeline.files(name) == [], name
        root = pipeline.zone(name)
        assert not root.exists() or not [p for p in root.rglob(".*") if p.is_file()], name
    again = pipeline.cli("run", path)  # once there is room, the same file loads
    assert again.exit_code == 0, again.stdout + again.stderr
