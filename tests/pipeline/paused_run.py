"""``python -m tests.pipeline.paused_run POINT MARKER etl-args...``: ``etl`` that stops at one exact point of
a file's run, writes MARKER and waits there (to be killed or signalled by the test, no sleeps to guess).

Points: ``landing`` (the file just copied into landing), ``raw`` (just moved into raw), ``copy`` (rows
COPYed, inside the load's transaction, the stage file written and held back), ``commit`` (the load committed,
the stage about to be published), ``archive`` (stage published, the file not yet moved to archive).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from etl.pipeline import interrupts, steps
from etl.pipeline.context import Context


def main() -> None:
    point, marker, *args = sys.argv[1:]

    def pause(*_args: object) -> None:
        Path(marker).write_text(point)
        while not interrupts._pending:  # a signal held back (past the commit) lets the work go on
            time.sleep(0.05)

    if point == "landing":
        real_accept = steps.accept_local

        def accept_then_pause(*a, **k):
            key = real_accept(*a, **k)
            pause()
            return key

        steps.accept_local = accept_then_pause
    elif point == "raw":
        real_land = steps.land_to_raw

        def land_then_pause(*a, **k):
            ref = real_land(*a, **k)
            pause()
            return ref

        steps.land_to_raw = land_then_pause
    elif point == "copy":
        real_load = steps.load_batches

        def load_with_pause(*a, **k):
            return real_load(*a, **k, after_copy=pause)

        steps.load_batches = load_with_pause
    elif point == "commit":
        real_publish = Context.publish_stage

        def pause_then_publish(self: Context) -> str | None:
            pause()
            return real_publish(self)

        Context.publish_stage = pause_then_publish  # type: ignore[method-assign]
    elif point == "archive":
        real_finish = steps.finish

        def pause_then_finish(*a, **k):
            pause()
            return real_finish(*a, **k)

        steps.finish = pause_then_finish
    else:
        raise SystemExit(f"unknown point {point}")
    from etl.cli.main import app

    sys.argv = ["etl", *args]
    app()


if __name__ == "__main__":
    main()
