"""What the steps share for one run: settings, zones, the PAN masker and a lazily opened database connection."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from types import TracebackType
from typing import BinaryIO

import psycopg

from etl.config import ZONES, Settings, get_settings
from etl.core.mask import CardMasker
from etl.io.secrets import pan_key
from etl.io.zones import Zone, zone
from etl.streams import CountingReader


class Context:
    """Opened once per ``etl run`` (or per Lambda invocation) and handed to every step."""

    def __init__(
        self,
        settings: Settings | None = None,
        on_read: Callable[[int], None] | None = None,
        *,
        deployed: bool = False,
        pan_key: bytes | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.deployed = deployed  # a Lambda invocation: never local, the development PAN key is refused
        self._pan_key = pan_key  # resolved already (``etl run`` checks it before any file moves)
        self.on_read = on_read  # told the bytes read from raw files (the CLI's progress bar)
        self.on_pass: Callable[[], None] | None = None  # told when a new pass over a raw file starts
        self._conn: psycopg.Connection | None = None

    def read_raw(self, key: str) -> BinaryIO:
        """Open a raw-zone file for reading, counting bytes for ``on_read`` when set."""
        if self.on_pass is not None:
            self.on_pass()
        stream = self.zone("raw").open_read(key)
        return stream if self.on_read is None else CountingReader(stream, self.on_read)  # type: ignore[return-value]

    @cached_property
    def zones(self) -> dict[str, Zone]:
        return {name: zone(self.settings.zone_uri(name)) for name in ZONES}

    def zone(self, name: str) -> Zone:
        return self.zones[name]

    @cached_property
    def masker(self) -> CardMasker:
        return CardMasker(self._pan_key or pan_key(self.settings, deployed=self.deployed))

    @property
    def conn(self) -> psycopg.Connection:
        """An autocommit connection, opened on first use (the embedded database starts here if needed)."""
        if self._conn is None or self._conn.closed:
            from etl.db.connect import connect

            self._conn = connect(self.settings)
        return self._conn

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
