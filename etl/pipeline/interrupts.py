"""SIGINT and SIGTERM during ``etl run``: stop at once, cleanly, with one line, and never lie about a load.

Inside ``interruptible()`` the first signal raises :class:`Interrupted` (a ``KeyboardInterrupt``) in the main
thread, wherever it is: the load's transaction rolls back (psycopg cancels a running statement on
``KeyboardInterrupt``), the held stage file is dropped and the file's claim released, so the file stays in
landing or raw for the next run to take over. A second signal while that unwinds exits at once (128 +
signal number).

Once a load has committed, rolling back is no longer possible: the run enters ``deferred()`` and a signal
then waits until the file is settled (stage published, file archived, notification sent); the caller
raises it with ``raise_pending()`` between two files.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_installed: list[bool] = []
_deferring: list[bool] = []
_pending: list[int] = []


class Interrupted(KeyboardInterrupt):
    """The run was asked to stop by a signal."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(self.name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _exit_now(signum: int, _frame: FrameType | None) -> None:
    os._exit(128 + signum)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    if _deferring:
        _pending.append(signum)
        return
    for number in SIGNALS:  # a second signal does not wait for the unwinding
        signal.signal(number, _exit_now)
    raise Interrupted(signum)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGINT/SIGTERM raise :class:`Interrupted` inside the block (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, _interrupt) for number in SIGNALS}
    _installed.append(True)
    try:
        yield
    finally:
        _installed.pop()
        _pending.clear()
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Signals inside the block wait (``raise_pending`` raises them later): the work must finish."""
    _deferring.append(True)
    try:
        yield
    finally:
        _deferring.pop()


def raise_pending() -> None:
    """Raise :class:`Interrupted` for a signal that came during ``deferred()``."""
    if _pending and _installed:
        signum = _pending[0]
        _pending.clear()
        for number in SIGNALS:
            signal.signal(number, _exit_now)
        raise Interrupted(signum)
