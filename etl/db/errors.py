"""Which database failures are worth retrying, under the one name the state machine retries.

``state_machine.yml`` retries ``LoadToDatabase`` on an error named exactly ``TransientDatabaseError`` (the
Lambda runtime reports an exception's class name as its error type). A lost connection, a serialization
failure, a deadlock, a lock timeout or a server restart go away on their own; a constraint violation or
bad credentials do not, so they fail the file at once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import psycopg

from etl.errors import TransientError

# SQLSTATE classes / codes that describe the moment, not the data or the configuration.
TRANSIENT_CLASSES = ("08", "40", "53", "57")  # connection, transaction rollback, resources, operator intervention
TRANSIENT_CODES = ("55P03",)  # lock_not_available


def safe_message(exc: BaseException) -> str:
    """A database error as one line without row data: the server's primary message and SQLSTATE only.

    ``str()`` of a psycopg error is the server's whole report: its DETAIL ("Failing row contains (...)",
    "Key (id)=(...)") and CONTEXT ("COPY t, line 5, column c: \"<value>\"") lines quote row values, which
    may be card numbers. The primary message of the statements the loader runs names types, columns and
    constraints, never a value (the loader sends only binary COPY data, whose errors quote nothing).
    """
    if not isinstance(exc, psycopg.Error):
        return str(exc)
    primary = exc.diag.message_primary if exc.diag else None
    if primary is None:  # no server report (a client-side or connection error): its first line
        text = str(exc).strip()
        primary = text.splitlines()[0] if text else type(exc).__name__
    state = f" [{exc.sqlstate}]" if exc.sqlstate else ""
    return f"{primary}{state}"


def redact(exc: BaseException) -> BaseException:
    """Replace a psycopg error's text with ``safe_message`` in place (same class, SQLSTATE and ``diag``), so
    whoever prints it later (a traceback, a ledger row, a notification) prints no row data."""
    if isinstance(exc, psycopg.Error):
        exc.args = (safe_message(exc),)
    return exc


@contextlib.contextmanager
def redacted_database_errors() -> Iterator[None]:
    """Any psycopg error leaving the block carries ``safe_message`` only (chained ones too)."""
    try:
        yield
    except psycopg.Error as exc:
        seen: BaseException | None = exc
        while seen is not None:
            redact(seen)
            seen = seen.__cause__ or seen.__context__
        raise


class _RedactPsycopgLog(logging.Filter):
    """psycopg logs some errors itself (``error ignored terminating <Copy>: <error>`` when a COPY ends with an
    exception), with the server's whole text: log them with ``safe_message`` instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, psycopg.Error) for a in record.args):
            record.args = tuple(safe_message(a) if isinstance(a, psycopg.Error) else a for a in record.args)
        return True


def install_log_redaction() -> None:
    """Idempotent: one filter on the ``psycopg`` logger."""
    logger = logging.getLogger("psycopg")
    if not any(isinstance(f, _RedactPsycopgLog) for f in logger.filters):
        logger.addFilter(_RedactPsycopgLog())


class TransientDatabaseError(TransientError, RuntimeError):
    """A database failure that a later attempt may not meet; the caller (Step Functions) retries."""


def is_transient(exc: BaseException) -> bool:
    """True for psycopg errors a retry can cure (no SQLSTATE: the connection itself failed)."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state[:2] in TRANSIENT_CLASSES or state in TRANSIENT_CODES


@contextlib.contextmanager
def transient_database_errors() -> Iterator[None]:
    """Re-raise transient psycopg errors as :class:`TransientDatabaseError` (the original is chained)."""
    try:
        yield
    except psycopg.Error as exc:
        if is_transient(exc):
            raise TransientDatabaseError(f"{type(exc).__name__}: {safe_message(exc)}") from redact(exc)
        raise
