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


def prefetched(batches: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Run a batch iterator in a background thread, ``depth`` batches ahead.

    Parsing (CSV reader, numpy) and the consumer's Arrow kernels both release the GIL, so on two cores the
    reader's next block is cut while the current one is checked or transformed. Errors re-raise here.
    """
    done = _DONE
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        """Hand ``item`` over unless the consumer stopped (it then never takes it: never block on it)."""
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc)

    worker = threading.Thread(target=produce, name="dat-reader", daemon=True)
    worker.start()
    try:
        while (item := slots.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()


class StreamAborted(EtlError):
    """Raised inside a ``tee`` consumer when the producer stopped early: the consumer must not publish."""


def tee(items: Iterable[T], consumer: Callable[[Iterator[T]], object], depth: int = 2) -> Iterator[T]:
    """Yield ``items`` and hand each to ``consumer`` running in a thread (e.g. a parquet writer).

    When the iteration ends the consumer is joined, so the caller knows it finished; its error re-raises
    here. If the consumer fails early, the iteration stops at the next item with that error. If the caller
    stops early (an error, or ``close()``), the consumer sees ``StreamAborted`` so it can discard its work.
    """
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    failure: list[BaseException] = []

    ended: list[bool] = []  # set once the consumer has taken the final sentinel

    def feed() -> Iterator[T]:
        while (item := slots.get()) is not _DONE:
            if item is _ABORT:
                ended.append(True)
                raise StreamAborted("the producer stopped early")
            yield item  # type: ignore[misc]
        ended.append(True)

    def run() -> None:
        try:
            consumer(feed())
        except BaseException as exc:  # handed to the producer side
            failure.append(exc)
        finally:
            while not ended and slots.get() not in (_DONE, _ABORT):  # drain so the producer never blocks
                pass

    worker = threading.Thread(target=run, name="tee-consumer", daemon=True)
    worker.start()
    finished = False
    try:
        for item in items:
            if failure:
                raise failure[0]
            slots.put(item)
            yield item
        finished = True
    finally:
        slots.put(_DONE if finished else _ABORT)
        worker.join()
    if failure:
        raise failure[0]


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
