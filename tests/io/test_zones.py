"""Zones on a local folder and on S3 (moto): the same contract for both, and moves that never lose data."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from etl.io.zones import (
    REPORT_SUFFIX,
    LocalZone,
    MoveError,
    S3Zone,
    Zone,
    copy_unique,
    dated_key,
    move,
    sidecar_key,
    zone,
)

DATA = b"H|TRANSACTIONS|20240102\nD|1\nT|1|0\n" * 100


@pytest.fixture(params=["local", "s3"])
def make_zone(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], Zone]:
    """A factory of zones of one kind; S3 zones share one moto bucket under different prefixes."""
    if request.param == "local":
        return lambda name: zone(tmp_path / name)
    bucket = request.getfixturevalue("bucket")
    return lambda name: zone(f"s3://{bucket}/pipeline/{name}")


def test_factory_and_layout(tmp_path: Path, bucket: str) -> None:
    assert isinstance(zone(tmp_path), LocalZone)
    assert isinstance(zone(f"file://{tmp_path}"), LocalZone)
    s3 = zone(f"s3://{bucket}/a/b/")
    assert isinstance(s3, S3Zone) and s3.uri_of("x/y.dat") == f"s3://{bucket}/a/b/x/y.dat"
    with pytest.raises(ValueError):
        zone("ftp://host/x")
    key = dated_key("transactions", dt.date(2024, 1, 2), "/landing/transactions_20240102.dat")
    assert key == "transactions/2024-01-02/transactions_20240102.dat"
    assert sidecar_key(key) == key + REPORT_SUFFIX


def test_put_read_list_size_checksum_delete(make_zone: Callable[[str], Zone], tmp_path: Path) -> None:
    z = make_zone("raw")
    source = tmp_path / "in.dat"
    source.write_bytes(DATA)
    z.put_file(source, "transactions/2024-01-02/in.dat")
    z.put_bytes(b"{}", "transactions/2024-01-02/in.dat.report.json")
    z.put_bytes(b"x", "other/x.dat")
    assert z.exists("transactions/2024-01-02/in.dat") and not z.exists("nope.dat")
    assert z.size("transactions/2024-01-02/in.dat") == len(DATA)
    assert z.sha256("transactions/2024-01-02/in.dat") == hashlib.sha256(DATA).hexdigest()
    with z.open_read("transactions/2024-01-02/in.dat") as stream:
        assert stream.read() == DATA
    assert z.list("transactions/") == ["transactions/2024-01-02/in.dat", "transactions/2024-01-02/in.dat.report.json"]
    assert sorted(z.list()) == sorted([*z.list("transactions/"), "other/x.dat"])
    z.delete("other/x.dat")
    assert not z.exists("other/x.dat")
    with pytest.raises(FileNotFoundError):
        z.delete("other/x.dat")
    with pytest.raises(FileNotFoundError):
        z.size("other/x.dat")


def test_put_without_overwrite_refuses(make_zone: Callable[[str], Zone]) -> None:
    z = make_zone("archive")
    z.put_bytes(b"first", "a.dat", overwrite=False)
    with pytest.raises(FileExistsError):
        z.put_bytes(b"second", "a.dat", overwrite=False)
    z.put_bytes(b"third", "a.dat")
    with z.open_read("a.dat") as stream:
        assert stream.read() == b"third"


def test_move_verifies_and_deletes_source(make_zone: Callable[[str], Zone]) -> None:
    raw, archive = make_zone("raw"), make_zone("archive")
    raw.put_bytes(DATA, "transactions_20240102.dat")
    key = dated_key("transactions", dt.date(2024, 1, 2), "transactions_20240102.dat")
    assert move(raw, "transactions_20240102.dat", archive, key) == key
    assert not raw.exists("transactions_20240102.dat")
    assert archive.sha256(key) == hashlib.sha256(DATA).hexdigest()


def test_move_never_overwrites(make_zone: Callable[[str], Zone]) -> None:
    raw, error = make_zone("raw"), make_zone("error")
    finals = []
    for n in range(3):
        raw.put_bytes(DATA + bytes([n]), "f.dat")
        finals.append(move(raw, "f.dat", error, "transactions/2024-01-02/f.dat"))
    assert finals == [
        "transactions/2024-01-02/f.dat",
        "transactions/2024-01-02/f.1.dat",
        "transactions/2024-01-02/f.2.dat",
    ]
    for n, key in enumerate(finals):
        with error.open_read(key) as stream:
            assert stream.read() == DATA + bytes([n])


def test_move_between_local_and_s3(tmp_path: Path, bucket: str) -> None:
    local, s3 = zone(tmp_path / "raw"), zone(f"s3://{bucket}/archive")
    local.put_bytes(DATA, "f.dat")
    assert move(local, "f.dat", s3, "f.dat") == "f.dat"
    local.put_bytes(b"again", "f.dat")
    assert move(local, "f.dat", s3, "f.dat") == "f.1.dat"
    assert move(s3, "f.dat", local, "back.dat") == "back.dat"
    assert local.sha256("back.dat") == hashlib.sha256(DATA).hexdigest()
    assert s3.list() == ["f.1.dat"]


def test_failed_verify_keeps_source(
    make_zone: Callable[[str], Zone], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw, archive = make_zone("raw"), make_zone("archive")
    raw.put_bytes(DATA, "f.dat")
    original = type(raw).copy_to

    def truncating_copy(self: Zone, key: str, dst: Zone, dst_key: str, **options: Any) -> None:
        original(self, key, dst, dst_key, **options)
        dst.put_bytes(DATA[: len(DATA) // 2], dst_key)  # the copy arrives short

    monkeypatch.setattr(type(raw), "copy_to", truncating_copy)
    monkeypatch.setattr(type(raw), "link_to", lambda *_args: False)  # the copy path, also for local folders
    with pytest.raises(MoveError, match="source is kept"):
        move(raw, "f.dat", archive, "f.dat")
    assert raw.sha256("f.dat") == hashlib.sha256(DATA).hexdigest()
    assert archive.list() == []


def test_local_move_links_instead_of_copying(tmp_path: Path) -> None:
    raw, archive = zone(tmp_path / "raw"), zone(tmp_path / "archive")
    raw.put_bytes(DATA, "f.dat")
    inode = raw.path("f.dat").stat().st_ino
    assert move(raw, "f.dat", archive, "a/f.dat") == "a/f.dat"
    assert archive.path("a/f.dat").stat().st_ino == inode  # the same bytes, not a copy
    assert not raw.exists("f.dat") and archive.path("a/f.dat").stat().st_nlink == 1
    raw.put_bytes(b"other", "f.dat")
    assert move(raw, "f.dat", archive, "a/f.dat") == "a/f.1.dat"  # a link never replaces a taken name
    assert archive.path("a/f.dat").read_bytes() == DATA


def test_local_move_copies_and_verifies_across_file_systems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def cross_device(*_args: object, **_kwargs: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    raw, archive = zone(tmp_path / "raw"), zone(tmp_path / "archive")
    raw.put_bytes(DATA, "f.dat")
    inode = raw.path("f.dat").stat().st_ino
    assert move(raw, "f.dat", archive, "f.dat") == "f.dat"
    assert archive.path("f.dat").stat().st_ino != inode and archive.path("f.dat").read_bytes() == DATA
    assert not raw.exists("f.dat")


def test_copy_unique_never_links(tmp_path: Path) -> None:
    """accept_local copies the caller's own file: a link would let later edits of it reach the zones."""
    outside, landing = zone(tmp_path / "outside"), zone(tmp_path / "landing")
    outside.put_bytes(DATA, "f.dat")
    assert copy_unique(outside, "f.dat", landing, "f.dat", keep_name=True) == "f.dat"
    assert landing.path("f.dat").stat().st_ino != outside.path("f.dat").stat().st_ino


def test_local_write_is_atomic(tmp_path: Path) -> None:
    z = LocalZone(tmp_path / "stage")
    z.put_bytes(b"old", "d/x.parquet")
    with pytest.raises(RuntimeError), z.local_write("d/x.parquet") as temp:
        temp.write_bytes(b"half")
        raise RuntimeError("crash mid-write")
    assert (tmp_path / "stage/d/x.parquet").read_bytes() == b"old"
    assert z.list() == ["d/x.parquet"]
    assert sorted(p.name for p in (tmp_path / "stage/d").iterdir()) == ["x.parquet"]


def test_keys_cannot_escape_the_zone(tmp_path: Path) -> None:
    z = LocalZone(tmp_path)
    for bad in ("../x", "/etc/passwd", "a/../../x", ""):
        with pytest.raises(ValueError):
            z.exists(bad)


def test_s3_zone_uses_the_bucket(bucket: str) -> None:
    zone(f"s3://{bucket}/p").put_bytes(b"1", "k.dat")
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["p/k.dat"]
