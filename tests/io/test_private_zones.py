"""Local zones are private (files 0600, folders 0700, whatever the umask and the input's mode), never follow a
link, keep names exact (a backslash is a character) and keep derived names within NAME_MAX."""

from __future__ import annotations

import datetime as dt
import io
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from etl.contract import load_contract
from etl.io.stage import write_stage
from etl.io.zones import (
    NAME_MAX,
    REJECTS_SUFFIX,
    REPORT_SUFFIX,
    LocalZone,
    S3Zone,
    copy_unique,
    fit_name,
    move,
    sidecar_key,
    zone,
)
from etl.schema import stage_schema

DATA = b"H|TRANSACTIONS|20240301\nD|card 4000056655665556\nT|1|0\n"


@pytest.fixture(params=[0o000, 0o022, 0o002], ids=["umask-000", "umask-022", "umask-002"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def modes(root: Path) -> dict[str, int]:
    """Mode of everything under ``root`` (itself included), links not followed."""
    found = {".": stat.S_IMODE(root.lstat().st_mode)}
    for path in root.rglob("*"):
        found[path.relative_to(root).as_posix()] = stat.S_IMODE(path.lstat().st_mode)
    return found


def assert_private(root: Path) -> None:
    for name, mode in modes(root).items():
        path = root / name
        expected = 0o700 if path.is_dir() and not path.is_symlink() else 0o600
        assert mode == expected, f"{name}: {oct(mode)}"


def test_every_way_of_writing_is_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    raw = zone(tmp_path / "home" / "raw")
    raw.put_bytes(DATA, "transactions/a.dat")
    raw.put_stream(io.BytesIO(DATA), "transactions/deep/er/b.dat")
    source = tmp_path / "input.dat"
    source.write_bytes(DATA)
    source.chmod(0o666)
    raw.put_file(source, "transactions/c.dat")
    with raw.local_write("transactions/d.dat") as temp, open(temp, "wb") as out:
        out.write(DATA)
    with raw.local_write("transactions/e.dat") as temp:  # a writer that replaces the temp file
        temp.unlink()
        temp.write_bytes(DATA)
    raw.put_bytes(b"{}", sidecar_key("transactions/a.dat", REPORT_SUFFIX))
    raw.put_bytes(b"3\n", sidecar_key("transactions/a.dat", REJECTS_SUFFIX))
    assert_private(tmp_path / "home")  # ETL_HOME created by the first write is 0700 too
    assert stat.S_IMODE(source.stat().st_mode) == 0o666  # the input is never changed


def test_the_stage_parquet_is_private(tmp_path: Path, umask: int) -> None:
    contract = load_contract("transactions")
    schema = stage_schema(contract)
    batch = pa.RecordBatch.from_pylist([], schema=schema)
    write_stage(str(tmp_path / "stage"), contract, dt.date(2024, 3, 1), "transactions_20240301", [batch])
    assert any(p.suffix == ".parquet" for p in (tmp_path / "stage").rglob("*"))
    assert_private(tmp_path / "stage")


@pytest.mark.parametrize("linked", [True, False], ids=["hard-link", "copy"])
def test_a_move_makes_the_file_private_even_when_it_arrived_world_readable(
    tmp_path: Path, umask: int, linked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing, raw = zone(tmp_path / "landing"), zone(tmp_path / "raw")
    dropped = tmp_path / "landing" / "x.dat"  # dropped by someone else, world-readable
    dropped.parent.mkdir()
    dropped.write_bytes(DATA)
    dropped.chmod(0o644)
    if not linked:
        monkeypatch.setattr(LocalZone, "link_to", lambda *a, **k: False)
    key = move(landing, "x.dat", raw, "transactions/x.dat", keep_name=True)
    assert (raw.path(key).stat().st_nlink == 1) and raw.path(key).read_bytes() == DATA
    assert_private(tmp_path / "raw")


def test_a_link_inside_a_zone_is_never_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"not for the zones")
    raw, archive = zone(tmp_path / "raw"), zone(tmp_path / "archive")
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "x.dat").symlink_to(secret)
    assert not raw.exists("x.dat") and raw.list() == []
    with pytest.raises(OSError):
        raw.open_read("x.dat")
    with pytest.raises(OSError):
        move(raw, "x.dat", archive, "x.dat")
    assert archive.list() == [] and secret.read_bytes() == b"not for the zones"
    # a link planted where a write is published is not written through either
    (tmp_path / "raw" / "y.dat").symlink_to(tmp_path / "victim")
    with pytest.raises(FileExistsError):
        raw.put_bytes(DATA, "y.dat", overwrite=False)
    assert not (tmp_path / "victim").exists()


def test_a_fifo_in_a_zone_is_refused_without_hanging(tmp_path: Path) -> None:
    raw = zone(tmp_path / "raw")
    (tmp_path / "raw").mkdir()
    os.mkfifo(tmp_path / "raw" / "x.dat")
    assert not raw.exists("x.dat") and raw.list() == []
    with pytest.raises(OSError):
        raw.open_read("x.dat")
    with pytest.raises(OSError):
        move(raw, "x.dat", zone(tmp_path / "archive"), "x.dat")


def test_an_input_link_is_read_through_only_when_asked(tmp_path: Path, umask: int) -> None:
    """``etl run LINK`` copies the target's bytes (the caller named it); zones never do."""
    target = tmp_path / "in" / "target.bin"
    target.parent.mkdir()
    target.write_bytes(DATA)
    (tmp_path / "in" / "transactions_20240301.dat").symlink_to(target)
    landing = zone(tmp_path / "landing")
    inputs = LocalZone(tmp_path / "in", follow_links=True)
    key = copy_unique(inputs, "transactions_20240301.dat", landing, "transactions_20240301.dat", keep_name=True)
    landed = landing.path(key)
    assert not landed.is_symlink() and landed.read_bytes() == DATA
    assert_private(tmp_path / "landing")
    with pytest.raises(OSError):
        LocalZone(tmp_path / "in").open_read("transactions_20240301.dat")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch user; modes are checked by the tests above")
def test_another_user_can_read_nothing_in_the_zones(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for name in ("landing", "raw", "archive", "error", "stage"):
        zone(home / name).put_bytes(DATA, f"feed/2024-03-01/{name}.dat")
    os.chmod(tmp_path, 0o711)  # pytest's tmp folders are 0700: let the other user reach ETL_HOME, as pgserver would
    os.chmod(home, 0o711)
    paths = [str(p) for p in home.rglob("*")]
    probe = (
        "import os, sys\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "readable = []\n"
        "for p in sys.argv[1:]:\n"
        "    try:\n"
        "        os.listdir(p) if os.path.isdir(p) else open(p, 'rb').read()\n"
        "        readable.append(p)\n"
        "    except PermissionError:\n"
        "        pass\n"
        "print(len(readable), readable)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, *paths], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("0 "), done.stdout
    assert len(paths) == 5 * 4  # zone, feed, day, file: the probe did look at every one


# --- names: exact, bounded -----------------------------------------------------------------------------------


def test_a_backslash_is_part_of_the_name(tmp_path: Path) -> None:
    local = zone(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.dat").write_bytes(b"the folder's file")
    (tmp_path / "sub\\x.dat").write_bytes(b"the backslash file")
    with local.open_read("sub\\x.dat") as stream:
        assert stream.read() == b"the backslash file"
    assert local.path("sub\\x.dat").name == "sub\\x.dat"
    s3 = S3Zone("bucket", "zone/prefix", client=object())
    assert s3.object_key("in/..\\..\\x.dat") == "zone/prefix/in/..\\..\\x.dat"


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "..", "./a", "a/.", "a\0b"])
def test_keys_that_would_name_another_file_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError):
        zone(tmp_path).path(key)
    with pytest.raises(ValueError):
        S3Zone("bucket", "", client=object()).object_key(key)


LONG = {
    "ascii 255": "t" * 251 + ".dat",
    "ascii 250": "a" * 246 + ".dat",
    "two-byte chars": "é" * 125 + ".dat",
    "four-byte chars": "😀" * 62 + ".dat",
    "non-UTF-8 bytes": os.fsdecode(b"\xff" * 251 + b".dat"),
    "no extension": "n" * 255,
}


@pytest.mark.parametrize("name", list(LONG.values()), ids=list(LONG))
def test_derived_names_fit_in_name_max_and_stay_apart(tmp_path: Path, name: str) -> None:
    def size(text: str) -> int:
        return len(os.fsencode(text))

    assert size(name) <= NAME_MAX
    twin = name[:-5] + ("Z" if name[-5] != "Z" else "Y") + name[-4:]  # same long prefix, another name
    for suffix in (REPORT_SUFFIX, REJECTS_SUFFIX, ".error.json"):
        side = sidecar_key(f"feed/day/{name}", suffix)
        assert side.startswith("feed/day/") and side.endswith(suffix)
        assert size(side.rpartition("/")[2]) <= NAME_MAX
        assert side == sidecar_key(f"feed/day/{name}", suffix)  # found again from the data file's name
        assert side != sidecar_key(f"feed/day/{twin}", suffix)
    # a whole life in local zones: numbered copies, temp files and sidecars all fit
    raw, archive = zone(tmp_path / "raw"), zone(tmp_path / "archive")
    for _ in range(3):
        raw.put_bytes(DATA, name, overwrite=False) if not raw.exists(name) else None
        raw.put_bytes(b"{}", sidecar_key(name))
        final = move(raw, name, archive, name)
        move(raw, sidecar_key(name), archive, sidecar_key(final))
    assert len(archive.list()) == 6
    assert all(size(Path(k).name) <= NAME_MAX for k in archive.list())


def test_fit_name_keeps_short_names() -> None:
    assert fit_name("transactions_20240301.dat", ".report.json") == "transactions_20240301.dat.report.json"
    assert sidecar_key("a/b.dat") == "a/b.dat.report.json"
