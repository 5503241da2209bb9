"""The stage as Glue Data Catalog tables: columns derived from the contract, as the parquet files are written.

``template.yml`` declares one table per feed over the stage bucket, with partition projection on the partition
column, so Athena, Spark or anything that reads the catalog can query the stage with no crawler and no
partition maintenance. The template is written by hand (CloudFormation is its own language); a test holds its
columns equal to :func:`table_columns` for every contract, so the two cannot drift.
"""

from __future__ import annotations

import pyarrow as pa

from etl.contract import Contract
from etl.schema import parquet_schema, stage_schema


def glue_type(arrow: pa.DataType) -> str:
    """The Hive/Glue type Athena reads a parquet column of this Arrow type as."""
    if pa.types.is_decimal(arrow):
        return f"decimal({arrow.precision},{arrow.scale})"
    simple = {
        pa.string(): "string",
        pa.int32(): "int",
        pa.int64(): "bigint",
        pa.bool_(): "boolean",
        pa.date32(): "date",
    }
    if arrow in simple:
        return simple[arrow]
    if pa.types.is_timestamp(arrow):
        return "timestamp"
    raise TypeError(f"no catalog type for Arrow type {arrow}")


def table_columns(contract: Contract) -> list[dict[str, str]]:
    """The columns stored inside a feed's parquet files, in file order (the partition column is not one)."""
    return [{"Name": f.name, "Type": glue_type(f.type)} for f in parquet_schema(contract)]


def partition_keys(contract: Contract) -> list[dict[str, str]]:
    """The partition column, which lives in the ``<column>=YYYY-MM-DD`` folder names."""
    column = stage_schema(contract).field(contract.partition_column)
    return [{"Name": column.name, "Type": glue_type(column.type)}]
