"""Zones (landing, raw, stage, archive, error) as URIs behind one small interface.

A zone is a local folder or ``s3://bucket/prefix``; keys are ``/``-separated paths inside it. Writes are
atomic (temp name then rename locally; S3 puts are atomic by nature). ``move`` is copy, verify (size and
SHA-256), then delete the source, and never overwrites: a name taken in the destination gets a suffix.
Between two folders of one file system the "copy" is a hard link: a second name for the very same bytes,
so there is nothing to verify and a 1 GB file moves in microseconds.

Local zones are private: every file a zone creates is ``0600`` and every folder ``0700`` whatever the umask
(created with that mode, then ``fchmod``/``chmod`` since the umask masks the creation mode), and a hard-linked
file gets ``0600`` on its inode too. A symbolic link inside a zone is never followed (``O_NOFOLLOW``): reading
or moving one fails for that file. A key is the exact name: nothing in it is rewritten (a ``\\`` is a
character of the name, not a separator). Names derived from a name (temp files, sidecars, numbered copies)
are kept within ``NAME_MAX`` (255 bytes) by ``fit_name``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import re
import shutil
import socket
import stat
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from etl.errors import EtlError

CHUNK = 1 << 20
REPORT_SUFFIX = ".report.json"
REJECTS_SUFFIX = ".rejects.dat"
ERROR_SUFFIX = ".error.json"  # beside a file in the error zone: the Step Functions error that sent it there
_MAX_SINGLE_PUT = 5 << 30  # S3 single PUT/COPY limit; larger objects go multipart
_MAX_SUFFIX = 1000
_TAKEN = ("PreconditionFailed", "ConditionalRequestConflict")  # S3 refused a create-only-if-absent write
FILE_MODE, DIR_MODE = 0o600, 0o700  # zone files hold card data: readable by their owner only
NAME_MAX = 255  # bytes in one path component (Linux, macOS); S3 has no such limit but one rule serves both


class MoveError(EtlError, RuntimeError):
    """A copy did not verify; the source is kept and the bad copy removed."""


def dated_key(feed: str, business_date: date, file_name: str) -> str:
    """Archive and error layout: ``<feed>/<YYYY-MM-DD>/<file name>``."""
    return f"{feed}/{business_date:%Y-%m-%d}/{PurePosixPath(file_name).name}"


def _nbytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def fit_name(stem: str, suffix: str = "") -> str:
    """``stem + suffix`` when it fits in ``NAME_MAX`` bytes; else the stem cut short, then ``~`` and 12 hex of
    the SHA-256 of the full stem, then ``suffix``.

    The hash keeps names derived from different long names apart, and the result is the same for the same
    input, so a sidecar is found again from its data file's name. Cuts fall on character boundaries.
    """
    if _nbytes(stem + suffix) <= NAME_MAX:
        return stem + suffix
    digest = hashlib.sha256(stem.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    tail = f"~{digest}{suffix}"
    room = NAME_MAX - _nbytes(tail)
    if room < 0:
        raise ValueError(f"suffix {suffix!r} leaves no room for a name")
    cut = stem
    while _nbytes(cut) > room:
        cut = cut[: max(0, len(cut) - max(1, (_nbytes(cut) - room) // 4))]
    return cut + tail


def sidecar_key(data_key: str, suffix: str = REPORT_SUFFIX) -> str:
    """A file that lives beside a data file (its validation report, its rejects): ``<name><suffix>``, or for a
    name too long for that, ``fit_name``'s shortened, hashed form (so it never exceeds ``NAME_MAX``)."""
    folder, _, name = data_key.rpartition("/")
    side = fit_name(name, suffix)
    return f"{folder}/{side}" if folder else side


def valid_key(key: str) -> bool:
    """True when ``key`` can name a zone object as it is (see ``_clean_key``)."""
    try:
        _clean_key(key)
    except ValueError:
        return False
    return True


def _clean_key(key: str) -> str:
    """The key as given, checked: ``/``-separated names, none empty, ``.`` or ``..``. Nothing is rewritten: a
    backslash (or any other byte) is part of a name, so a key always names exactly the file it was built from."""
    parts = key.split("/")
    if not key or any(part in ("", ".", "..") for part in parts) or "\0" in key:
        raise ValueError(f"invalid zone key {key!r}")
    return key


def _hidden(key: str) -> bool:
    """Temp files of interrupted writes start with a dot; listings never show them."""
    return PurePosixPath(key).name.startswith(".")


class Zone(ABC):
    """Storage operations every step needs, whatever the backing store."""

    uri: str

    @abstractmethod
    def uri_of(self, key: str) -> str: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int: ...

    @abstractmethod
    def open_read(self, key: str) -> BinaryIO:
        """A forward-only stream of the object: readers must not seek (an S3 body over HTTP cannot)."""

    @abstractmethod
    def local_copy(self, key: str) -> contextlib.AbstractContextManager[Path]:
        """A seekable local file of the object for the block (formats read from the end, like parquet)."""

    @abstractmethod
    def read_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes from offset ``start``: a part of a large object without reading the rest
        (``etl.io.parquet_peek`` reads a parquet footer and one column chunk this way)."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def put_file(self, local_path: str | Path, key: str, *, overwrite: bool = True) -> None:
        """Upload a local file; with ``overwrite=False`` an existing key raises ``FileExistsError``."""

    @abstractmethod
    def put_stream(self, stream: BinaryIO, key: str, *, overwrite: bool = True) -> None: ...

    @abstractmethod
    def local_write(self, key: str, *, overwrite: bool = True) -> contextlib.AbstractContextManager[Path]:
        """A local path to write; on a clean exit it becomes ``key`` atomically, on error nothing changes."""

    def put_bytes(self, data: bytes, key: str, *, overwrite: bool = True) -> None:
        self.put_stream(io.BytesIO(data), key, overwrite=overwrite)

    def sha256(self, key: str) -> str:
        digest = hashlib.sha256()
        with self.open_read(key) as stream:
            for chunk in iter(lambda: stream.read(CHUNK), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def link_to(self, key: str, dst: Zone, dst_key: str) -> bool:
        """Give the object a second name in ``dst`` without copying bytes, never over an existing name
        (``FileExistsError``); False when this pair of zones cannot."""
        return False

    def copy_to(
        self, key: str, dst: Zone, dst_key: str, *, overwrite: bool = False, metadata: Mapping[str, str] | None = None
    ) -> None:
        """Copy one object into ``dst`` (streamed; subclasses use faster paths when they can). ``metadata``:
        user metadata an S3-to-S3 copy gives the new object (a local target keeps none)."""
        with self.open_read(key) as stream:
            dst.put_stream(stream, dst_key, overwrite=overwrite)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


class LocalZone(Zone):
    """A folder: atomic writes through a hidden temp file in the target directory; private modes (see the
    module docstring). ``follow_links`` is only for the caller's own input folder (``etl run FILE``), never a
    zone: a named input that is a symbolic link is read through it, as ``cp`` does."""

    def __init__(self, root: str | Path, *, follow_links: bool = False) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)
        self.follow_links = follow_links

    def path(self, key: str) -> Path:
        return self.root / _clean_key(key)

    def uri_of(self, key: str) -> str:
        return str(self.path(key))

    def _stat(self, key: str) -> os.stat_result:
        path = self.path(key)
        return path.stat() if self.follow_links else path.lstat()

    def exists(self, key: str) -> bool:
        try:
            return stat.S_ISREG(self._stat(key).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            return False

    def size(self, key: str) -> int:
        return self._stat(key).st_size

    def open_read(self, key: str) -> BinaryIO:
        # O_NONBLOCK: a FIFO planted in a zone must not hang the run in open(); it is refused below
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | (0 if self.follow_links else _NOFOLLOW)
        fd = os.open(self.path(key), flags)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise IsADirectoryError(errno.EISDIR, "not a regular file", str(self.path(key)))
            os.set_blocking(fd, True)
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        path = self.path(key)
        if not path.is_file():
            raise FileNotFoundError(str(path))
        yield path  # already a local file: no copy

    def read_range(self, key: str, start: int, length: int) -> bytes:
        parts: list[bytes] = []
        with self.open_read(key) as stream:
            while length > 0 and (part := os.pread(stream.fileno(), min(length, CHUNK), start)):
                parts.append(part)
                start, length = start + len(part), length - len(part)
        return b"".join(parts)

    def list(self, prefix: str = "") -> list[str]:
        base = self.root / PurePosixPath(prefix).parent if "/" in prefix else self.root
        if not base.is_dir():
            return []
        keys = (p.relative_to(self.root).as_posix() for p in base.rglob("*") if _regular(p))
        return sorted(k for k in keys if k.startswith(prefix) and not _hidden(k))

    def delete(self, key: str) -> None:
        self.path(key).unlink()

    def make_folder(self, folder: Path) -> None:
        """``folder`` (inside this zone) and its missing parents, each created ``0700``."""
        private_folders(folder)

    def sweep_temps(self, key: str) -> list[Path]:
        """Remove the temp files that dead processes left for ``key`` (a crash mid-write); returns them."""
        return sweep_dead_temps(self.path(key))

    @contextlib.contextmanager
    def local_write(self, key: str, *, overwrite: bool = True) -> Iterator[Path]:
        target = self.path(key)
        private_folders(target.parent)
        sweep_dead_temps(target)
        temp = temp_path(target)
        os.close(_create_private(temp))  # the writer reopens it: an existing file keeps its 0600
        try:
            yield temp
            make_private(temp)  # in case the writer replaced the file instead of rewriting it
            _publish(temp, target, overwrite)
        finally:
            temp.unlink(missing_ok=True)

    def put_file(self, local_path: str | Path, key: str, *, overwrite: bool = True) -> None:
        with open(local_path, "rb") as stream:
            self.put_stream(stream, key, overwrite=overwrite)

    def put_stream(self, stream: BinaryIO, key: str, *, overwrite: bool = True) -> None:
        with self.local_write(key, overwrite=overwrite) as temp, temp.open("wb") as out:
            shutil.copyfileobj(stream, out, CHUNK)

    def copy_to(
        self, key: str, dst: Zone, dst_key: str, *, overwrite: bool = False, metadata: Mapping[str, str] | None = None
    ) -> None:
        # a local source keeps no metadata to give: the S3 metadata copy is S3-to-S3 (landing to raw)
        if isinstance(dst, S3Zone) and self._stat(key).st_size > _MAX_SINGLE_PUT:
            if not self.exists(key):
                raise IsADirectoryError(errno.EISDIR, "not a regular file", self.uri_of(key))
            dst.put_file(self.path(key), dst_key, overwrite=overwrite)  # multipart upload by name
            return
        with self.open_read(key) as stream:
            dst.put_stream(stream, dst_key, overwrite=overwrite)

    def link_to(self, key: str, dst: Zone, dst_key: str) -> bool:
        if not isinstance(dst, LocalZone) or self.follow_links or not self.exists(key):
            return False  # a symbolic link is never linked: reading it (O_NOFOLLOW) reports it
        target = dst.path(dst_key)
        private_folders(target.parent)
        try:
            os.link(self.path(key), target, follow_symlinks=False)
        except FileExistsError:
            raise
        except OSError:  # another file system, or one without hard links: copy instead
            return False
        try:
            make_private(target)  # the inode keeps the mode it had: a file dropped 0644 becomes 0600
        except OSError:  # not ours to chmod: take it back and copy instead (the copy is created 0600)
            target.unlink()
            return False
        return True


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def private_folders(folder: Path) -> None:
    """Create ``folder`` and its missing parents, each ``0700`` whatever the umask (existing ones are left)."""
    missing: list[Path] = []
    current = Path(folder)
    while not os.path.lexists(current):
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:  # another process made it meanwhile
            continue
        os.chmod(path, DIR_MODE)


def _create_private(path: Path) -> int:
    """A new file opened for writing, ``0600`` whatever the umask, never through a link; returns the fd."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


_HOST = socket.gethostname().replace("-", "_") or "localhost"


def temp_path(target: Path) -> Path:
    """``.<name>.tmp-<host>-<pid>-<random>`` beside ``target``: hidden from listings, and telling which
    process writes it, so a later run removes it once that process is dead, never while it lives."""
    return target.with_name(fit_name(f".{target.name}", f".tmp-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:12]}"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def sweep_dead_temps(target: Path) -> list[Path]:
    """Unlink ``target``'s temp files whose writer (on this host) is no longer running."""
    removed = []
    for temp in target.parent.glob(f".{glob_escape(target.name)}.tmp-*") if target.parent.is_dir() else []:
        host, _, rest = temp.name[len(target.name) + 6 :].partition("-")
        pid = rest.partition("-")[0]
        if host == _HOST and pid.isdigit() and not _alive(int(pid)):
            temp.unlink(missing_ok=True)
            removed.append(temp)
    return removed


def glob_escape(name: str) -> str:
    """A literal file name inside a glob pattern."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _publish(temp: Path, target: Path, overwrite: bool) -> None:
    """Rename into place; without overwrite a hard link makes "create only if absent" atomic."""
    if overwrite:
        os.replace(temp, target)
        return
    try:
        os.link(temp, target, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system: check, then rename
        if os.path.lexists(target):
            raise FileExistsError(str(target)) from None
        os.replace(temp, target)


def make_private(path: Path) -> None:
    """``chmod 0600`` a regular file without following a link (a link raises ``OSError``)."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


class S3Zone(Zone):
    """``s3://bucket/prefix`` with boto3 (``AWS_ENDPOINT_URL`` and region come from the environment)."""

    def __init__(self, bucket: str, prefix: str = "", client: object | None = None) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.client = client or boto3.client("s3")

    def object_key(self, key: str) -> str:
        key = _clean_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri_of(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def _head(self, key: str) -> dict | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise  # 403 included: without s3:ListBucket S3 says 403 for a missing key, never "absent" here

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def size(self, key: str) -> int:
        head = self._head(key)
        if head is None:
            raise FileNotFoundError(self.uri_of(key))
        return int(head["ContentLength"])

    def open_read(self, key: str) -> BinaryIO:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))["Body"]
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(self.uri_of(key)) from exc
            raise

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        """Downloaded (ranged GETs, bounded memory) into a private temp folder (0700), removed afterwards.

        A GetObject body over HTTP is a stream that cannot seek; parquet readers seek to the footer first.
        """
        import tempfile

        from botocore.exceptions import ClientError

        with tempfile.TemporaryDirectory(prefix="etl-s3-read-") as folder:
            local = Path(folder) / PurePosixPath(key).name
            try:
                self.client.download_file(self.bucket, self.object_key(key), str(local))
            except ClientError as exc:
                if _missing(exc):
                    raise FileNotFoundError(self.uri_of(key)) from exc
                raise
            yield local

    def read_range(self, key: str, start: int, length: int) -> bytes:
        from botocore.exceptions import ClientError

        if length <= 0:
            return b""
        try:
            answer = self.client.get_object(
                Bucket=self.bucket, Key=self.object_key(key), Range=f"bytes={start}-{start + length - 1}"
            )
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(self.uri_of(key)) from exc
            raise
        with contextlib.closing(answer["Body"]) as body:
            return body.read()

    def list(self, prefix: str = "") -> list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=base + prefix)
        for page in pages:
            keys += [obj["Key"][len(base) :] for obj in page.get("Contents", [])]
        return sorted(k for k in keys if not _hidden(k))

    def delete(self, key: str) -> None:
        if not self.exists(key):
            raise FileNotFoundError(self.uri_of(key))
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def _put(self, stream: BinaryIO, key: str, overwrite: bool) -> None:
        from botocore.exceptions import ClientError

        extra = {} if overwrite else {"IfNoneMatch": "*"}  # S3 conditional write: create only if absent
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.object_key(key), Body=stream, **extra)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _TAKEN:
                raise FileExistsError(self.uri_of(key)) from exc
            raise

    def put_file(self, local_path: str | Path, key: str, *, overwrite: bool = True) -> None:
        if Path(local_path).stat().st_size > _MAX_SINGLE_PUT:  # multipart: no conditional write
            if not overwrite and self.exists(key):
                raise FileExistsError(self.uri_of(key))
            self.client.upload_file(str(local_path), self.bucket, self.object_key(key))
            return
        with open(local_path, "rb") as stream:
            self._put(stream, key, overwrite)

    def put_stream(self, stream: BinaryIO, key: str, *, overwrite: bool = True) -> None:
        if overwrite:
            self.client.upload_fileobj(stream, self.bucket, self.object_key(key))
            return
        with self.local_spool(stream) as path:
            self.put_file(path, key, overwrite=False)

    @staticmethod
    @contextlib.contextmanager
    def local_spool(stream: BinaryIO) -> Iterator[Path]:
        """Streams of unknown length go through a temp file so a conditional PUT knows its size."""
        import tempfile

        with tempfile.NamedTemporaryFile(prefix="etl-spool-") as spool:
            shutil.copyfileobj(stream, spool, CHUNK)
            spool.flush()
            yield Path(spool.name)

    @contextlib.contextmanager
    def local_write(self, key: str, *, overwrite: bool = True) -> Iterator[Path]:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="etl-s3-write-") as folder:  # 0700, its file created 0600
            temp = Path(folder) / fit_name("part", PurePosixPath(key).suffix[:16])
            os.close(_create_private(temp))
            yield temp
            self.put_file(temp, key, overwrite=overwrite)

    def copy_to(
        self, key: str, dst: Zone, dst_key: str, *, overwrite: bool = False, metadata: Mapping[str, str] | None = None
    ) -> None:
        if not isinstance(dst, S3Zone):
            super().copy_to(key, dst, dst_key, overwrite=overwrite, metadata=metadata)
            return
        if not overwrite and dst.exists(dst_key):
            raise FileExistsError(dst.uri_of(dst_key))
        source = {"Bucket": self.bucket, "Key": self.object_key(key)}
        replace: dict[str, Any] = {"Metadata": dict(metadata), "MetadataDirective": "REPLACE"} if metadata else {}
        if self.size(key) > _MAX_SINGLE_PUT:
            dst.client.copy(source, dst.bucket, dst.object_key(dst_key), ExtraArgs=replace or None)
            return
        extra = {**replace, **({} if overwrite else {"IfNoneMatch": "*"})}
        dst.client.copy_object(CopySource=source, Bucket=dst.bucket, Key=dst.object_key(dst_key), **extra)


def _missing(exc: Exception) -> bool:
    """S3 said the key does not exist (404). A 403 is never taken for "missing": S3 answers 403 for a missing
    key to a caller without ``s3:ListBucket``, and a real denial must not read as absence (docs/design.md §12).
    """
    response = getattr(exc, "response", {}) or {}
    code = response.get("Error", {}).get("Code")
    return code in ("404", "NoSuchKey", "NotFound") or response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404


def zone(uri: str | Path) -> Zone:
    """The zone behind a URI: ``s3://bucket/prefix``, ``file:///path`` or a plain folder path."""
    text = str(uri)
    if text.startswith("s3://"):
        bucket, _, prefix = text[5:].partition("/")
        if not bucket:
            raise ValueError(f"zone URI {text!r} names no bucket")
        return S3Zone(bucket, prefix)
    if text.startswith("file://"):
        text = text[7:]
    elif "://" in text:
        raise ValueError(f"unsupported zone URI {text!r}: use a folder path or s3://bucket/prefix")
    return LocalZone(text)


def _candidates(key: str, keep_name: bool = False) -> Iterator[str]:
    """``key``, then ``name.1.ext``, ``name.2.ext``, ... so nothing is ever overwritten.

    With ``keep_name`` the file name stays intact and a numbered folder takes the suffix instead
    (``dir/1/name``, ...): landing and raw need the exact name, which says the feed and date.
    """
    yield key
    folder, _, name = key.rpartition("/")
    base = f"{folder}/" if folder else ""
    stem, dot, ext = name.rpartition(".")
    if not stem or _nbytes(ext) > 16:  # no extension (or no real one): the number goes at the end
        stem, dot, ext = name, "", ""
    for n in [*range(1, _MAX_SUFFIX), uuid.uuid4().hex]:
        yield f"{base}{n}/{name}" if keep_name else base + fit_name(f"{stem}.{n}", dot + ext)


_TAKEN_NAME = re.compile(r"^(?P<stem>.+)\.(?:\d{1,3}|[0-9a-f]{32})(?P<ext>\.[^./]+)$")


def original_name(name: str) -> str:
    """The name a file had before ``_candidates`` numbered it (``x.1.dat`` -> ``x.dat``); others unchanged.

    Archive and error keep a file under a numbered name when its own was taken; a replay puts it back where
    files arrive, under the name that says its feed and date.
    """
    found = _TAKEN_NAME.match(name)
    return f"{found['stem']}{found['ext']}" if found else name


def copy_unique(src: Zone, key: str, dst: Zone, dst_key: str, *, keep_name: bool = False) -> str:
    """Copy to ``dst_key`` or, when that name is taken, the first free suffixed name; returns the key written."""
    return _place_unique(src, key, dst, dst_key, keep_name, link=False)[0]


def _place_unique(
    src: Zone, key: str, dst: Zone, dst_key: str, keep_name: bool, link: bool, metadata: Mapping[str, str] | None = None
) -> tuple[str, bool]:
    """Copy (or, with ``link``, hard-link when the zones allow it) to the first free name: (key, linked)."""
    for candidate in _candidates(dst_key, keep_name):
        try:
            if link and src.link_to(key, dst, candidate):
                return candidate, True
            src.copy_to(key, dst, candidate, overwrite=False, metadata=metadata)
        except FileExistsError:
            continue
        return candidate, False
    raise MoveError(f"no free name for {dst.uri_of(dst_key)}")  # pragma: no cover - last is a fresh uuid


def move(src: Zone, key: str, dst: Zone, dst_key: str, *, keep_name: bool = False) -> str:
    """Copy, verify size and SHA-256, then delete the source; returns the key actually written.

    Never overwrites in ``dst`` (``keep_name``: see ``_candidates``). If the copy does not verify, the bad
    copy is removed, the source is kept, and ``MoveError`` is raised. A hard link (two local folders on one
    file system) is the same file under two names: only the source name is then removed.

    An S3 target gets the source's SHA-256 as object metadata ``sha256`` in the copy itself (computed before,
    verified after), so a later reader of the object (``states.file_pointer``) need not stream it again.
    """
    known_sha = src.sha256(key) if isinstance(dst, S3Zone) else None
    metadata = {"sha256": known_sha} if known_sha else None
    candidate, linked = _place_unique(src, key, dst, dst_key, keep_name, link=True, metadata=metadata)
    if linked:
        src.delete(key)
        return candidate
    expected_size, expected_sha = src.size(key), known_sha or src.sha256(key)
    size, sha = dst.size(candidate), dst.sha256(candidate)
    if size != expected_size or sha != expected_sha:
        dst.delete(candidate)
        raise MoveError(
            f"copy of {src.uri_of(key)} to {dst.uri_of(candidate)} did not verify "
            f"(size {size} vs {expected_size}); the source is kept"
        )
    src.delete(key)
    return candidate
