"""Which database failures are worth retrying, under the one name the state machine retries.

``state_machine.yml`` retries ``LoadToDatabase`` on an error named exactly ``TransientDatabaseError`` (the
Lambda runtime reports an exception's class name as its error type). A lost connection, a serialization
failure, a deadlock, a lock timeout or a server restart go away on their own; a constraint violation or
bad credentials do not, so they fail the file at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg

# SQLSTATE classes / codes that describe the moment, not the data or the configuration.
TRANSIENT_CLASSES = ("08", "40", "53", "57")  # connection, transaction rollback, resources, operator intervention
TRANSIENT_CODES = ("55P03",)  # lock_not_available


class TransientDatabaseError(RuntimeError):
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
            state = f" [{exc.sqlstate}]" if exc.sqlstate else ""
            raise TransientDatabaseError(f"{type(exc).__name__}{state}: {exc}") from exc
        raise
