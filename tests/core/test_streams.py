"""``etl.streams``: a consumer that stops early never leaves the producer thread (and itself) blocked, and
however a stream ends, its thread is gone when the stream is."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import closing

import pytest

from etl.streams import CONSUMER_THREAD, READER_THREAD, prefetched, tee


def test_stopping_early_never_blocks_on_the_producers_last_hand_over() -> None:
    """The producer has filled the queue and waits to hand over its end marker when the consumer stops:
    closing the iterator must still return (it used to wait forever, hanging ``etl run`` on a bad file)."""
    done = threading.Event()

    def consume() -> None:
        stream = prefetched(iter([1, 2]), depth=1)
        assert next(stream) == 1
        threading.Event().wait(0.3)  # let the producer fill the queue and reach its end marker
        stream.close()
        done.set()

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    assert done.wait(10), "closing a prefetched stream early blocked"


def test_stopping_early_after_an_error_never_blocks() -> None:
    def broken():
        yield 1
        yield 2
        raise ValueError("boom")

    done = threading.Event()

    def consume() -> None:
        stream = prefetched(broken(), depth=1)
        next(stream)
        threading.Event().wait(0.3)
        stream.close()
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    assert done.wait(10)


def _stream_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in (READER_THREAD, CONSUMER_THREAD)]


def _source(closed: list[str]) -> Iterator[int]:
    """Numbers without end; says when it was closed (in which thread)."""
    try:
        yield from itertools.count()
    finally:
        closed.append(threading.current_thread().name)


def test_a_prefetched_stream_closed_early_leaves_no_thread_and_closes_its_source() -> None:
    """The reader thread closes its source itself and is joined before ``close()`` returns, even while the
    stream object is still referenced (as a traceback would keep it): nothing is left to the collector."""
    closed: list[str] = []
    stream = prefetched(_source(closed), depth=2)
    assert [next(stream), next(stream)] == [0, 1]
    stream.close()
    assert (closed, _stream_threads()) == ([READER_THREAD], [])


def test_a_prefetched_stream_whose_consumer_fails_leaves_no_thread() -> None:
    closed: list[str] = []

    def consume() -> None:
        with closing(prefetched(_source(closed))) as stream:
            for item in stream:
                if item == 3:
                    raise ValueError("the consumer broke")

    with pytest.raises(ValueError, match="the consumer broke"):
        consume()
    assert (closed, _stream_threads()) == ([READER_THREAD], [])


@pytest.mark.parametrize("end", ["consumer fails", "producer closes early", "source fails", "exhausted"])
def test_a_tee_ends_its_consumer_thread_and_closes_its_input(end: str) -> None:
    closed: list[str] = []
    source = _source(closed) if end != "exhausted" else iter(range(5))

    def failing_source() -> Iterator[int]:
        yield from (0, 1, 2)
        raise OSError("read failed")

    def consumer(items: Iterator[int]) -> None:
        for item in items:
            if end == "consumer fails" and item == 3:
                raise OSError("disk full")

    stream = tee(failing_source() if end == "source fails" else source, consumer)
    if end == "producer closes early":
        next(stream)
        stream.close()
    elif end == "exhausted":
        assert list(stream) == list(range(5))
    else:
        with pytest.raises(OSError):
            list(stream)
    assert _stream_threads() == []
    assert closed == ([] if end in ("source fails", "exhausted") else [threading.main_thread().name])
