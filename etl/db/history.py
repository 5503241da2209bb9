"""A feed's history from the file ledger: what each business day brought, for drift checks and notebooks.

Only ``LOADED`` files count as history: a rejected or failed file says nothing about what a normal day looks
like, and a ``SKIPPED`` one repeats a day already counted. Days with several files (``_NN`` sequences) are
summed, so the baseline is per business day, the unit people ask about ("is today's file normal?").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg

from etl.db.ledger import LedgerStatus

_DAYS = """
SELECT business_date,
       count(*)             AS files,
       sum(rows_in)         AS rows_in,
       sum(rows_rejected)   AS rows_rejected
  FROM etl.file_ledger
 WHERE feed = %(feed)s AND status = %(status)s
   AND business_date >= %(first)s AND business_date < %(before)s
 GROUP BY business_date
 ORDER BY business_date
"""


@dataclass(frozen=True)
class DayFigures:
    """What the loaded files of one business day brought."""

    business_date: dt.date
    files: int
    rows_in: int
    rows_rejected: int

    @property
    def reject_rate(self) -> float:
        return self.rows_rejected / self.rows_in if self.rows_in else 0.0


def loaded_days(conn: psycopg.Connection, feed: str, before: dt.date, days: int) -> list[DayFigures]:
    """The loaded business days of ``feed`` in the ``days`` calendar days before ``before`` (oldest first)."""
    params = {
        "feed": feed,
        "status": LedgerStatus.LOADED.value,
        "first": before - dt.timedelta(days=days),
        "before": before,
    }
    rows = conn.execute(_DAYS, params).fetchall()
    return [DayFigures(day, int(files), int(rows_in), int(rejected)) for day, files, rows_in, rejected in rows]
