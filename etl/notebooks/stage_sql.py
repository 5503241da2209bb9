"""SQL over the parquet stage with DuckDB, locally or on S3, offline and without DuckDB extensions.

Each feed's stage is registered as a view over its pyarrow dataset (``etl.io.stage.stage_dataset``), the same
object every other reader uses. DuckDB hands its filters to the Arrow scanner, so ``WHERE business_date
BETWEEN …`` prunes whole partition folders: a week's query opens that week's files only. S3 goes through
pyarrow's own S3 filesystem (``AWS_ENDPOINT_URL`` honoured), so no ``httpfs`` extension is downloaded.

Money stays exact: parquet decimals arrive in DuckDB as ``DECIMAL(p, s)`` and ``sum`` keeps them exact, and
``query`` hands results to pandas through Arrow, so they arrive as ``Decimal`` (DuckDB's own ``.df()`` would
turn them into float64).

The notebooks write their analysis as SQL and pandas in their cells; this module only opens the stage.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import duckdb
import pandas as pd

from etl.contract import feed_names, load_contract
from etl.io.stage import stage_dataset

DAYS_VIEW = "days"  # the view of one feed's rows for a range of business dates (``open_days``)


def connect(stage_uri: str, feeds: Iterable[str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per feed (named after the feed) over the stage.

    A feed with nothing staged yet still gets a view with every column, so queries written for it run and
    return no rows.
    """
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    for feed in feeds or feed_names():
        contract = load_contract(feed)
        dataset = stage_dataset(stage_uri, contract)
        if dataset is None:
            from etl.schema import stage_schema

            con.register(feed, stage_schema(contract).empty_table())
        else:
            con.register(feed, dataset)
    return con


def open_days(stage_uri: str, feed: str, start: dt.date, end: dt.date) -> duckdb.DuckDBPyConnection:
    """``connect`` for one feed, plus the view ``days``: that feed's rows for business dates ``[start, end]``.

    Queries over ``days`` open only the partition folders of those dates (the view's filter reaches the Arrow
    scanner), so a notebook can group and chart without repeating the date filter in every query.
    """
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    con = connect(stage_uri, [feed])
    date = duckdb.ColumnExpression(load_contract(feed).partition_column)
    rows = con.table(feed).filter(date.between(duckdb.ConstantExpression(start), duckdb.ConstantExpression(end)))
    rows.create_view(DAYS_VIEW)
    return con


def query(con: duckdb.DuckDBPyConnection, sql: str, **params: Any) -> pd.DataFrame:
    """The result of ``sql`` (``$name`` parameters bound from ``params``) as pandas, decimals as ``Decimal``."""
    return con.sql(sql, params=params or None).to_arrow_table().to_pandas()
