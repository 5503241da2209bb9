"""What the steps share for one run: settings, zones, the PAN masker and a lazily opened database connection."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from time import sleep  # (a name of this module: tests replace it, not time.sleep)
from types import TracebackType
from typing import BinaryIO

import psycopg

from etl.config import ZONES, Settings, get_settings
from etl.core.mask import CardMasker
from etl.db.limits import Deadline, LoadLimits
from etl.io.claims import Claim
from etl.io.secrets import pan_key
from etl.io.stage import HeldStage
from etl.io.zones import Zone, zone
from etl.streams import CountingReader

RECONNECT_ATTEMPTS, RECONNECT_BACKOFF = 3, 1.0  # after a lost connection: tries 0, 1 and 3 s later


class Context:
    """Opened once per ``etl run`` (or per Lambda invocation) and handed to every step."""

    def __init__(
        self,
        settings: Settings | None = None,
        on_read: Callable[[int], None] | None = None,
        *,
        deployed: bool = False,
        pan_key: bytes | None = None,
        deadline: Deadline | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.deployed = deployed  # a Lambda invocation: never local, the development PAN key is refused
        self._pan_key = pan_key  # resolved already (``etl run`` checks it before any file moves)
        self.deadline = deadline  # when the caller is stopped (a Lambda's timeout): bounds the load's statements
        self.on_read = on_read  # told the bytes read from raw files (the CLI's progress bar)
        self.on_pass: Callable[[], None] | None = None  # told when a new pass over a raw file starts
        self._conn: psycopg.Connection | None = None
        self.held_stage: list[HeldStage] = []  # written by the one-pass load, published once it commits
        self._claims: dict[tuple[str, str], Claim] = {}  # (zone, key) of the files this run works on

    # --- what this run holds until its file is done ---------------------------------------------------

    def keep_claim(self, zone_name: str, key: str, claim: Claim | None) -> None:
        if claim is not None:
            self._claims[(zone_name, key)] = claim

    def release_claim(self, zone_name: str, key: str) -> None:
        claim = self._claims.pop((zone_name, key), None)
        if claim is not None:
            claim.release()

    def release_claims(self) -> None:
        for key in list(self._claims):
            self.release_claim(*key)

    def publish_stage(self) -> str | None:
        """Publish the stage file held back for a load that has now committed; its URI."""
        uris = [held.publish() for held in self.held_stage]
        self.held_stage.clear()
        return uris[-1] if uris else None

    def discard_stage(self) -> None:
        """Drop a held stage file whose load did not commit."""
        for held in self.held_stage:
            held.discard()
        self.held_stage.clear()

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

    def load_limits(self) -> LoadLimits:
        """The load's lock and statement timeouts: ``ETL_DB_LOCK_TIMEOUT_S`` and this run's deadline."""
        return LoadLimits(self.settings.db_lock_timeout_s, self.deadline)

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None

    def database_reachable(self, attempts: int = RECONNECT_ATTEMPTS, backoff: float = RECONNECT_BACKOFF) -> bool:
        """True when the database answers, reconnecting if the connection was lost (the embedded server is
        started again on demand), with ``attempts`` tries ``backoff`` × 2**n seconds apart."""
        if self._conn is not None and not self._conn.closed:
            try:
                self._conn.execute("SELECT 1")
                return True
            except psycopg.Error:
                self.close()
        for attempt in range(attempts):
            if attempt:
                sleep(backoff * 2 ** (attempt - 1))
            try:
                self.conn.execute("SELECT 1")
                return True
            except Exception:  # psycopg's, or the embedded server failing to start
                self.close()
        return False

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.discard_stage()
        self.release_claims()
        self.close()
