"""Drift warnings for a loaded file: its day's row count and reject rate against the feed's trailing window.

The file still loads whatever this says; the notification carries what it found under ``warnings`` so an
operator sees "half the usual rows" the morning it happens (docs/design.md §9). The day's figures include the
file itself and any other loaded file of the same business day (``_NN`` sequences), so a second file of a
day is compared as the day it completes. Thresholds come from ``ETL_DRIFT_*`` settings.
"""

from __future__ import annotations

import datetime as dt

import psycopg

from etl.config import Settings
from etl.core.drift import Drift, Margin, compare
from etl.db.history import loaded_days
from etl.pipeline.context import Context


def day_drift(settings: Settings, conn: psycopg.Connection, feed: str, business_date: dt.date) -> list[Drift]:
    """What moved on ``business_date`` (its loaded files, committed) against the days before it."""
    figures = loaded_days(conn, feed, business_date + dt.timedelta(days=1), settings.drift_window_days + 1)
    today = [day for day in figures if day.business_date == business_date]
    window = [day for day in figures if day.business_date < business_date]
    if not today:
        return []
    day = today[0]
    found = [
        compare(
            "rows_in",
            day.rows_in,
            [d.rows_in for d in window],
            Margin(relative=settings.drift_rows_margin),
            min_days=settings.drift_min_days,
        ),
        compare(
            "reject_rate",
            day.reject_rate,
            [d.reject_rate for d in window],
            Margin(absolute=settings.drift_reject_margin),
            min_days=settings.drift_min_days,
        ),
    ]
    return [drift for drift in found if drift is not None]


def warnings_for(settings: Settings, conn: psycopg.Connection, feed: str, business_date: dt.date) -> list[str]:
    """:func:`day_drift` as notification lines."""
    return [drift.text() for drift in day_drift(settings, conn, feed, business_date)]


def for_loaded_file(ctx: Context, feed: str | None, business_date: dt.date | None) -> list[str]:
    """The warnings for a file just loaded (committed). A drift check that cannot run (the database went away
    after the commit) is itself one warning line: it must never turn a loaded file into a failure."""
    if feed is None or business_date is None:
        return []
    try:
        return warnings_for(ctx.settings, ctx.conn, feed, business_date)
    except psycopg.Error as exc:
        return [f"drift check not run: {type(exc).__name__}"]
