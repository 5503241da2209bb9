"""How long a load may wait on the database: for a lock, for a statement (docs/design.md §7).

A Lambda function is killed at its timeout, mid-statement, and Step Functions then sees ``Sandbox.Timedout``:
not a ``TransientDatabaseError``, so no retry, and the server may keep the dead session's transaction (its
locks, the feed's advisory lock) until it notices the client is gone. So the load carries its own limits,
derived from ONE place, the time the function has left (``Deadline``, from the Lambda context):

- ``statement_timeout`` = that time minus :data:`MARGIN_S`, set again before every statement of the load: the
  server cancels whatever runs past it and the transaction rolls back while the function still has a minute
  to report. That is :class:`LoadTimeoutError`, not transient: the file did not fit the function's time, and
  the same attempt would not fit it either (size the function, template.yml ``Timeout``).
- ``lock_timeout`` = ``ETL_DB_LOCK_TIMEOUT_S`` (30 s) for every lock the work takes (rows and tables of the
  target, which another session's transaction or DDL may hold): the load then fails with SQLSTATE 55P03,
  a ``TransientDatabaseError`` that the state machine retries with backoff, instead of waiting out the
  function's whole time.
- Waiting for the feed's own advisory lock (another load of the same feed, committing soon) is not
  a blocked load: it may wait for the whole budget, and at its end fails as a lock timeout too (transient).

Without a deadline (``etl run`` on a laptop) no statement timeout applies; the lock timeout does.
All of them are ``SET LOCAL``: they end with the load's transaction, and the connection keeps its defaults.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from etl.errors import EtlError

#: Seconds kept back from the function's remaining time: cancel, roll back, the drift query and the answer.
MARGIN_S = 60.0
#: The least statement timeout ever set (a budget already spent still gets a statement cancelled, not 0 = none).
MIN_STATEMENT_MS = 1000
#: A cancelled statement with less than this above the margin left was cancelled by our statement_timeout.
_TIMEOUT_SLACK_S = 5.0


class LoadTimeoutError(EtlError):
    """The load was cancelled by its statement timeout and rolled back: it needs more time than the function has."""


@dataclass(frozen=True)
class Deadline:
    """The moment the caller is stopped, in ``time.monotonic()`` seconds (a Lambda function's timeout)."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    @classmethod
    def of_lambda(cls, context: Any) -> Deadline | None:
        """From a Lambda context's ``get_remaining_time_in_millis()``; None for a caller without one."""
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        return None if remaining is None else cls.after(remaining() / 1000)

    def remaining_s(self) -> float:
        return self.at - time.monotonic()


@dataclass(frozen=True)
class LoadLimits:
    """The limits of one load's transaction: ``lock_timeout`` and the ``deadline`` the statements must beat."""

    lock_timeout_s: float
    deadline: Deadline | None = None
    margin_s: float = MARGIN_S

    def statement_timeout_ms(self) -> int:
        """The budget left for the next statement: 0 (none) without a deadline."""
        if self.deadline is None:
            return 0
        return max(int((self.deadline.remaining_s() - self.margin_s) * 1000), MIN_STATEMENT_MS)

    def before_feed_lock(self, conn: psycopg.Connection) -> None:
        """Wait for the feed's advisory lock as long as the budget allows, and end as a lock timeout."""
        _set_local(conn, statement_timeout_ms=0, lock_timeout_ms=self.statement_timeout_ms())

    def before_statement(self, conn: psycopg.Connection) -> None:
        """The work's limits, the statement budget recomputed from the time left now."""
        _set_local(
            conn, statement_timeout_ms=self.statement_timeout_ms(), lock_timeout_ms=int(self.lock_timeout_s * 1000)
        )

    @contextlib.contextmanager
    def timeouts_named(self) -> Iterator[None]:
        """A statement our own statement_timeout cancelled leaves as :class:`LoadTimeoutError` (one line);
        any other cancel (an operator's ``pg_cancel_backend``) stays what it is (transient, SQLSTATE 57014)."""
        try:
            yield
        except psycopg.errors.QueryCanceled:
            deadline = self.deadline
            if deadline is None or deadline.remaining_s() > self.margin_s + _TIMEOUT_SLACK_S:
                raise
            raise LoadTimeoutError(
                f"the load was cancelled by its statement timeout {self.margin_s:.0f} s before the function's end and "
                "rolled back: it needs more time than the function has (template.yml Timeout)"
            ) from None


def _set_local(conn: psycopg.Connection, *, statement_timeout_ms: int, lock_timeout_ms: int) -> None:
    conn.execute(
        "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)",
        (f"{statement_timeout_ms}ms", f"{lock_timeout_ms}ms"),
    )
