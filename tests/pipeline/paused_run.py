"""``python -m tests.pipeline.paused_run POINT MARKER etl-args...``: ``etl`` that stops at one exact point of
a file's run, writes MARKER and waits there (to be killed or signalled by the test, no sleeps to guess).

Points: ``landing`` (the file just copied into landing), ``raw`` (just moved into raw), ``copy`` (rows
COPYed, inside the load's transaction, the stage file written and held back), ``commit`` (the load committed,
the stage about to be published), ``archive`` (stage published, the file not yet moved to archive).
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from etl.pipeline import interrupts, steps
from etl.pipeline.context import Context


def main() -> None:
    point, marker, *args = sys.argv[1:]

    def pause(*_args: object) -> None:
        Path(marker).write_text(point)
        while not interrupts._pending:  # a signal held back (past the commit) lets the work go on
            time.sleep(0.05)

    def then_pause(real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*a: Any, **k: Any) -> Any:
            result = real(*a, **k)
            pause()
            return result

        return wrapped

    def pause_then(real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*a: Any, **k: Any) -> Any:
            pause()
            return real(*a, **k)

        return wrapped

    if point == "landing":
        steps.accept_local = then_pause(steps.accept_local)
    elif point == "raw":
        steps.land_to_raw = then_pause(steps.land_to_raw)
    elif point == "copy":
        steps.load_batches = functools.partial(steps.load_batches, after_copy=pause)
    elif point == "commit":
        Context.publish_stage = pause_then(Context.publish_stage)  # type: ignore[method-assign]
    elif point == "archive":
        steps.finish = pause_then(steps.finish)
    else:
        raise SystemExit(f"unknown point {point}")
    from etl.cli.main import app

    sys.argv = ["etl", *args]
    app()


if __name__ == "__main__":
    main()
