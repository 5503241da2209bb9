"""A loaded file whose day leaves the feed's trailing window still loads, and its notification says why."""

from __future__ import annotations

import datetime as dt

import pytest

from etl.generate import generate
from tests.pipeline.conftest import Pipeline, notifications

FIRST = dt.date(2024, 5, 1)


@pytest.fixture
def history(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    """Five usual days of 400 transactions (± a few) loaded, with a 3-day minimum history."""
    monkeypatch.setenv("ETL_DRIFT_MIN_DAYS", "3")
    for offset, rows in enumerate((400, 410, 390, 405, 395)):
        path = generate("transactions", FIRST + dt.timedelta(days=offset), rows=rows, seed=offset, out_dir=pipeline.src)
        result = pipeline.cli("run", "--json", path)
        assert result.exit_code == 0, result.output
        [message] = notifications(result.stdout)
        assert "warnings" not in message  # days 1-3: no baseline yet; days 4-5: normal
    return pipeline


def test_half_the_usual_rows_loads_with_a_warning(history: Pipeline) -> None:
    path = generate("transactions", FIRST + dt.timedelta(days=5), rows=200, seed=9, out_dir=history.src)
    result = history.cli("run", "--json", path)
    assert result.exit_code == 0, result.output
    [message] = notifications(result.stdout)
    assert message["status"] == "SUCCESS"
    assert message["rows"]["rows_in"] == 200
    assert message["warnings"] == ["rows_in 200 is below its trailing 5-day range 280..520 (median 400)"]
    assert history.ledger()[-1]["status"] == "LOADED"


def test_a_usual_day_has_no_warning(history: Pipeline) -> None:
    path = generate("transactions", FIRST + dt.timedelta(days=5), rows=402, seed=9, out_dir=history.src)
    [message] = notifications(history.cli("run", "--json", path).stdout)
    assert message["status"] == "SUCCESS" and "warnings" not in message


def test_the_margin_is_configurable(history: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETL_DRIFT_ROWS_MARGIN", "0.6")
    path = generate("transactions", FIRST + dt.timedelta(days=5), rows=200, seed=9, out_dir=history.src)
    [message] = notifications(history.cli("run", "--json", path).stdout)
    assert "warnings" not in message
