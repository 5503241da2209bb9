"""DuckDB over the stage: a date filter prunes partitions (the other days' files are never opened), money is
exact (in DuckDB and in the pandas frames the notebooks get), and a feed with nothing staged still has a
queryable view."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from etl.contract import load_contract
from etl.io.stage import read_stage
from etl.notebooks import stage_sql
from etl.notebooks.samples import SAMPLES_DIR, as_date, build_stage


@pytest.fixture
def stage(tmp_path: Path) -> str:
    return build_stage("transactions", SAMPLES_DIR, str(tmp_path / "stage"))


def test_a_days_query_opens_only_that_days_files(stage: str) -> None:
    root = Path(stage) / "transactions"
    for day in ("2024-03-01", "2024-03-03"):  # if the scan opened these, it would fail on them
        for path in (root / f"business_date={day}").glob("*.parquet"):
            path.write_bytes(b"not parquet")
    con = stage_sql.connect(stage, ["transactions"])
    [(n, total)] = con.sql(
        "SELECT count(*), sum(amount) FROM transactions WHERE business_date = DATE '2024-03-02'"
    ).fetchall()
    expected = read_stage(stage, load_contract("transactions"), as_date("2024-03-02"), as_date("2024-03-02"))
    assert n == expected.num_rows == 224
    assert isinstance(total, Decimal) and total == sum(expected["amount"].to_pylist())
    with pytest.raises(Exception, match=r"(?i)parquet"):
        con.sql("SELECT count(*) FROM transactions").fetchall()


def test_the_days_view_holds_only_its_days_and_hands_pandas_exact_decimals(stage: str) -> None:
    for path in (Path(stage) / "transactions" / "business_date=2024-03-01").glob("*.parquet"):
        path.write_bytes(b"not parquet")  # if the view opened this day, the query would fail
    con = stage_sql.open_days(stage, "transactions", as_date("2024-03-02"), as_date("2024-03-03"))
    frame = stage_sql.query(
        con, "SELECT channel, sum(amount) AS amount FROM days WHERE channel = $channel GROUP BY ALL", channel="ATM"
    )
    expected = read_stage(stage, load_contract("transactions"), as_date("2024-03-02"), as_date("2024-03-03"))
    rows = zip(expected["amount"].to_pylist(), expected["channel"].to_pylist(), strict=True)
    atm = [amount for amount, channel in rows if channel == "ATM"]
    assert frame["channel"].tolist() == ["ATM"]
    assert isinstance(frame["amount"][0], Decimal) and frame["amount"][0] == sum(atm)


def test_a_range_that_ends_before_it_starts_is_refused(stage: str) -> None:
    with pytest.raises(ValueError, match="start 2024-03-03 is after end 2024-03-01"):
        stage_sql.open_days(stage, "transactions", as_date("2024-03-03"), as_date("2024-03-01"))


def test_a_feed_with_nothing_staged_has_every_column(tmp_path: Path) -> None:
    con = stage_sql.connect(str(tmp_path / "empty"), ["account_summary"])
    assert con.sql("SELECT count(*) FROM account_summary").fetchall() == [(0,)]
    assert "current_balance" in con.table("account_summary").columns
