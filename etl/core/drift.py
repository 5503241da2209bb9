"""Is today's figure normal? One comparison against a trailing window, shared by the pipeline and the notebooks.

The pipeline asks it after a load (row count and reject rate of the file against the same feed's previous
business days, read from the ledger) and puts what it finds in the notification's ``warnings``; the data-quality
notebook asks it for every day and metric of a history. A file outside the window still loads: drift is a
question for a person, not a rule of the catalogue (docs/design.md §9, thresholds in §4).

The baseline is the window's median, not its mean, so one odd day in the window does not move it. A metric is
flagged when it leaves ``median × (1 ± relative)`` or, for rates, ``median ± absolute``; a window with fewer than
``min_days`` values says nothing (a new feed has no history to drift from).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Direction(StrEnum):
    """Which way a metric left its window."""

    ABOVE = "above"
    BELOW = "below"


@dataclass(frozen=True)
class Margin:
    """How far from the window's median a value may go. ``relative`` is a fraction of the median (counts);
    ``absolute`` is in the metric's own unit (rates: 0.02 = two percentage points). Either may be ``None``."""

    relative: float | None = None
    absolute: float | None = None

    def bounds(self, median: float) -> tuple[float, float]:
        spread = max(
            abs(median) * self.relative if self.relative is not None else 0.0,
            self.absolute if self.absolute is not None else 0.0,
        )
        return median - spread, median + spread


@dataclass(frozen=True)
class Drift:
    """One metric outside its trailing window."""

    metric: str
    value: float
    median: float
    low: float
    high: float
    direction: Direction
    window_days: int

    def text(self) -> str:
        """One line for a notification or a table: no row values, only the metric's own figures."""
        return (
            f"{self.metric} {_fmt(self.value)} is {self.direction.value} its trailing {self.window_days}-day range "
            f"{_fmt(self.low)}..{_fmt(self.high)} (median {_fmt(self.median)})"
        )


def compare(metric: str, value: float, window: Sequence[float], margin: Margin, *, min_days: int) -> Drift | None:
    """The drift of ``value`` against ``window`` (earlier values of the same metric), or ``None`` when normal."""
    if len(window) < max(1, min_days):
        return None
    median = float(statistics.median(window))
    low, high = margin.bounds(median)
    if low <= value <= high:
        return None
    direction = Direction.ABOVE if value > high else Direction.BELOW
    return Drift(metric, float(value), median, low, high, direction, len(window))


def _fmt(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.4g}"
