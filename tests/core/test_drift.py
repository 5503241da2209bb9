"""The trailing-window comparison shared by drift warnings and the data-quality notebook."""

from __future__ import annotations

import pytest

from etl.core.drift import Direction, Margin, compare

WINDOW = [1000, 1040, 980, 5000, 1010]  # one odd day: the median (1010) ignores it


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1010, None), (1515, None), (505, None), (1516, Direction.ABOVE), (504, Direction.BELOW), (0, Direction.BELOW)],
)
def test_relative_margin_around_the_median(value: int, expected: Direction | None) -> None:
    drift = compare("rows_in", value, WINDOW, Margin(relative=0.5), min_days=3)
    assert (drift.direction if drift else None) == expected
    if drift:
        assert (drift.median, drift.low, drift.high, drift.window_days) == (1010, 505, 1515, 5)
        assert drift.text().startswith(f"rows_in {value} is {expected.value} its trailing 5-day range 505..1515")


def test_absolute_margin_for_rates() -> None:
    rates = [0.01, 0.012, 0.011]
    assert compare("reject_rate", 0.03, rates, Margin(absolute=0.02), min_days=3) is None
    drift = compare("reject_rate", 0.0311, rates, Margin(absolute=0.02), min_days=3)
    assert drift is not None and drift.direction is Direction.ABOVE


def test_too_short_a_window_says_nothing() -> None:
    assert compare("rows_in", 1, [1000, 1000], Margin(relative=0.1), min_days=3) is None
    assert compare("rows_in", 1, [], Margin(relative=0.1), min_days=0) is None
