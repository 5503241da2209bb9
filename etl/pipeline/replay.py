"""Replaying a file from the error zone, once its cause is fixed: back to the start of the unchanged pipeline.

A replay never edits a file or bypasses a step. The file is moved (copy, verify, delete) out of the error zone
to where the pipeline starts, and everything runs again: validation, rule F004 (content already loaded ends
SKIPPED, so a replay never loads a file twice), stage, load, archive or error. The old report and error
sidecars stay in the error zone renamed ``*.replayed`` (history, not a live rejection), so a report beside a
file is always that file's latest verdict.

Locally the file goes to landing and ``run_landed`` takes it through. On AWS the same move goes to the raw
bucket and ``etl.aws.replay`` starts the execution (docs/design.md §8).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

from etl.errors import ConfigError
from etl.io.zones import ERROR_SUFFIX, Zone, move, original_name, sidecar_key
from etl.pipeline import steps
from etl.pipeline.context import Context
from etl.pipeline.run import Outcome, run_landed

SIDECAR_SUFFIXES = (*steps.SIDECARS, ERROR_SUFFIX)
RETIRED_SUFFIX = ".replayed"


def is_data_key(key: str) -> bool:
    """A file the pipeline ran (not a report, rejects, error record or retired sidecar beside one)."""
    return not key.endswith((*SIDECAR_SUFFIXES, RETIRED_SUFFIX))


def error_files(zone: Zone, feed: str | None = None, day: str | None = None) -> list[str]:
    """Data files in the error zone, optionally of one feed and one business date (``YYYY-MM-DD``)."""
    if day and not feed:
        raise ConfigError("--date needs --feed (the error zone is laid out <feed>/<date>/)")
    prefix = f"{feed}/{day}/" if feed and day else f"{feed}/" if feed else ""
    return sorted(key for key in zone.list(prefix) if is_data_key(key))


def retire_sidecars(zone: Zone, key: str) -> list[str]:
    """Rename the sidecars beside ``key`` to ``<sidecar>.replayed`` (never overwriting an older one)."""
    retired = []
    for suffix in SIDECAR_SUFFIXES:
        side = sidecar_key(key, suffix)
        if zone.exists(side):
            retired.append(move(zone, side, zone, sidecar_key(side, RETIRED_SUFFIX)))  # within NAME_MAX
    return retired


def take_out(source: Zone, key: str, target: Zone) -> str:
    """Move a file out of the error (or archive) zone to where files arrive in ``target``, under the name it
    arrived with (a numbered ``x.1.dat`` is ``x.dat`` again), after retiring its sidecars."""
    if not source.exists(key) or not is_data_key(key):
        raise ConfigError(f"{source.uri_of(key)}: no data file there to replay")
    retire_sidecars(source, key)
    return move(source, key, target, original_name(PurePosixPath(key).name), keep_name=True)


def replay_local(ctx: Context, keys: list[str]) -> Iterator[Outcome]:
    """Each error-zone file back into landing and through the pipeline; one outcome (and notification) each."""
    error, landing = ctx.zone("error"), ctx.zone("landing")
    for key in keys:
        landing_key = take_out(error, key, landing)
        yield run_landed(ctx, landing_key)
