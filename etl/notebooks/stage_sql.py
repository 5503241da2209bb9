"""SQL over the parquet stage with DuckDB, locally or on S3, offline and without DuckDB extensions.

Each feed's stage is registered as a view over its pyarrow dataset (``etl.io.stage.stage_dataset``), the same
object every other reader uses. DuckDB hands its filters to the Arrow scanner, so ``WHERE business_date
BETWEEN …`` prunes whole partition folders: a week's query opens that week's files only. S3 goes through
pyarrow's own S3 filesystem (``AWS_ENDPOINT_URL`` honoured), so no ``httpfs`` extension is downloaded.

Money stays exact: parquet decimals arrive in DuckDB as ``DECIMAL(p, s)`` and ``sum`` keeps them exact.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from etl.contract import feed_names, load_contract
from etl.io.stage import stage_dataset


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
