"""Which run owns a file in a local zone: a claim is an ``flock`` on a hidden ``.<name>.lock`` beside it.

The kernel drops the lock when its process dies (kill -9 included), so "claimed" always means "a live run
is working on this file" and an unclaimed file left in landing or raw is a dead run's, which the next run
of the same content picks up instead of adding a numbered copy beside it (``place``). S3 zones have no
claims: there each file has its own Step Functions execution.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path

from etl.io.zones import LocalZone, Zone, _candidates, copy_unique, fit_name, move, private_folders

LOCK_SUFFIX = ".lock"


@dataclass
class Claim:
    """A held claim on one key of a local zone; ``release`` (or the process ending) frees it."""

    zone: LocalZone
    key: str
    _fd: int | None = field(default=None, repr=False)

    def release(self) -> None:
        """Free the claim; the lock file goes too, removed while still locked (see ``claim``)."""
        if self._fd is None:
            return
        try:
            lock_path(self.zone, self.key).unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None


def lock_path(zone: LocalZone, key: str) -> Path:
    path = zone.path(key)
    return path.with_name(fit_name(f".{path.name}", LOCK_SUFFIX))  # within NAME_MAX for long names


def claim(zone: LocalZone, key: str) -> Claim | None:
    """Claim ``key`` without waiting; None when a live run holds it.

    The lock file is removed on release while locked, so after locking we check that the path still
    names the file we locked; if not (it was removed and maybe re-created meanwhile) we try again.
    """
    path = lock_path(zone, key)
    private_folders(path.parent)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return Claim(zone, key, fd)
        os.close(fd)


def same_content(a: Zone, a_key: str, b: Zone, b_key: str) -> bool:
    """Same size and SHA-256 (size first: different sizes never read a byte)."""
    return a.size(a_key) == b.size(b_key) and a.sha256(a_key) == b.sha256(b_key)


def place(
    src: Zone, key: str, dst: Zone, dst_key: str, *, sidecars: tuple[str, ...] = (), keep_source: bool = False
) -> tuple[str, Claim | None]:
    """Move (``keep_source``: copy) ``src/key`` into ``dst`` under its exact name (numbered folders when
    taken) and claim it there.

    A slot nobody claims that already holds the same content is a dead run's copy: it is taken over (our
    copy is deleted instead of being added beside it, and the dead run's sidecars are dropped: the new run
    writes its own). A slot held by a live run, or holding other content, is passed over. Returns the key
    and the claim (None on S3, where this is a plain ``move``).
    """
    if not isinstance(dst, LocalZone):
        if keep_source:
            return copy_unique(src, key, dst, dst_key, keep_name=True), None
        return move(src, key, dst, dst_key, keep_name=True), None
    for candidate in _candidates(dst_key, keep_name=True):
        held = claim(dst, candidate)
        if held is None:
            continue
        try:
            dst.sweep_temps(candidate)
            if not dst.exists(candidate):
                if keep_source:
                    return copy_unique(src, key, dst, candidate, keep_name=True), held
                return move(src, key, dst, candidate, keep_name=True), held
            if same_content(src, key, dst, candidate):
                if not keep_source:
                    src.delete(key)
                for suffix in sidecars:
                    dst.path(candidate + suffix).unlink(missing_ok=True)
                return candidate, held
        except BaseException:
            held.release()
            raise
        held.release()
    raise RuntimeError(f"no free name for {dst.uri_of(dst_key)}")  # pragma: no cover - last is a fresh uuid
