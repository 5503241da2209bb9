"""``etl.streams``: a consumer that stops early never leaves the producer thread (and itself) blocked."""

from __future__ import annotations

import threading

from etl.streams import prefetched


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
