"""Bounded hand-offs between threads for streams of Arrow batches.

pyarrow kernels, the CSV reader, zstd and the database socket all release the GIL, so on two cores a
producer and a consumer in separate threads really overlap. Queues are bounded: memory stays a few batches.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO, TypeVar

from etl.errors import EtlError

T = TypeVar("T")
_DONE = object()
_ABORT = object()
READER_THREAD = "dat-reader"  # prefetched's thread
CONSUMER_THREAD = "tee-consumer"  # tee's thread


def prefetched(batches: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Run a batch iterator in a background thread, ``depth`` batches ahead.

    Parsing (CSV reader, numpy) and the consumer's Arrow kernels both release the GIL, so on two cores the
    reader's next block is cut while the current one is checked or transformed. Errors re-raise here.
    However the iteration ends (exhausted, an error on either side, ``close()``), the thread is told to stop,
    closes ``batches`` itself and is joined before the iteration returns: no reader outlives its pass. An
    owner that may stop early closes this iterator (``with closing(...)``) rather than leave it to the
    garbage collector, which a traceback in a reference cycle can delay indefinitely.
    """
    handoff = _Handoff(depth)
    worker = threading.Thread(target=handoff.produce, args=(batches,), name=READER_THREAD, daemon=True)
    worker.start()
    try:
        yield from handoff.received()
    finally:
        handoff.stop.set()
        worker.join()


class _Handoff:
    """The bounded queue between ``prefetched``'s reader thread and its consumer."""

    def __init__(self, depth: int) -> None:
        self.slots: queue.Queue[object] = queue.Queue(maxsize=depth)
        self.stop = threading.Event()  # the consumer is gone: hand nothing more over

    def put(self, item: object) -> bool:
        """Hand ``item`` over unless the consumer stopped (it then never takes it: never block on it)."""
        while not self.stop.is_set():
            try:
                self.slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce(self, batches: Iterable[object]) -> None:
        """The reader thread: every batch, then the end marker (or the error that ended the source)."""
        source = iter(batches)
        try:
            for batch in source:
                if not self.put(batch):
                    return
            self.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self.put(exc)
        finally:
            _close(source)  # a source stopped early finishes here, in its own thread, before the join

    def received(self) -> Iterator[T]:
        while (item := self.slots.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]


class StreamAborted(EtlError):
    """Raised inside a ``tee`` consumer when the producer stopped early: the consumer must not publish."""


def tee(items: Iterable[T], consumer: Callable[[Iterator[T]], object], depth: int = 2) -> Iterator[T]:
    """Yield ``items`` and hand each to ``consumer`` running in a thread (e.g. a parquet writer).

    When the iteration ends the consumer is joined, so the caller knows it finished; its error re-raises
    here. If the consumer fails early, the iteration stops at the next item with that error. If the caller
    stops early (an error, or ``close()``), the consumer sees ``StreamAborted`` so it can discard its work.
    ``items`` belongs to the tee: it is closed when the tee ends, so whatever threads it runs end too.
    """
    fork = _Fork(depth)
    worker = threading.Thread(target=fork.consume, args=(consumer,), name=CONSUMER_THREAD, daemon=True)
    worker.start()
    finished = False
    source = iter(items)
    try:
        for item in source:
            if fork.failure is not None:
                raise fork.failure
            fork.slots.put(item)
            yield item
        finished = True
    finally:
        fork.slots.put(_DONE if finished else _ABORT)
        worker.join()
        _close(source)
    if fork.failure is not None:
        raise fork.failure


class _Fork:
    """What ``tee``'s producer and its consumer thread share: the queue, and how the consumer ended."""

    def __init__(self, depth: int) -> None:
        self.slots: queue.Queue[object] = queue.Queue(maxsize=depth)
        self.failure: BaseException | None = None  # the consumer's error, re-raised on the producer's side
        self.ended = False  # the consumer has taken the final marker (done or aborted)

    def fed(self) -> Iterator[object]:
        """What the consumer iterates: the items until the end marker; ``StreamAborted`` if it is an abort."""
        while (item := self.slots.get()) is not _DONE:
            if item is _ABORT:
                self.ended = True
                raise StreamAborted("the producer stopped early")
            yield item
        self.ended = True

    def consume(self, consumer: Callable[[Iterator[object]], object]) -> None:
        """The consumer thread: ``consumer`` over the items; afterwards the queue is drained to its end
        marker, so the producer never blocks on a consumer that is gone."""
        try:
            consumer(self.fed())
        except BaseException as exc:  # handed to the producer side
            self.failure = exc
        finally:
            while not self.ended and self.slots.get() not in (_DONE, _ABORT):
                pass


def _close(iterator: Iterator[object]) -> None:
    """Close a generator (or any iterator with ``close``) that was stopped before its end."""
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


class CountingReader(io.RawIOBase):
    """A binary stream that reports how many bytes were read (progress bars over big files)."""

    def __init__(self, stream: BinaryIO, on_read: Callable[[int], None]) -> None:
        self._stream = stream
        self._on_read = on_read

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if data:
            self._on_read(len(data))
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._stream.close()
        super().close()
