"""The PySpark transform engine (the Glue job's), held to the same semantics as the pyarrow engine.

``transform_file`` reads a validated ``.dat`` with ``spark.read.text`` and returns the typed stage rows in
``stage_schema(contract)`` order; ``write_stage`` writes them as the one zstd parquet file of the shared
stage layout. Everything is driven by the contract: no per-feed code. See ``etl.schema`` for the semantics.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import PurePosixPath
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from etl.contract import Contract, Pii, contract_for_file, load_contract
from etl.core.transform import Lineage
from etl.io.stage import stage_key
from etl.io.zones import zone
from etl.names import name_text
from etl.schema import field_type, parquet_schema, stage_schema
from etl.spark import columns as C
from etl.spark.stage import promote_part_file, temp_prefix

LINE = "_value"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# Runtime SQL settings the engine relies on; applied to any session, Glue's included.
RUNTIME_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.ansi.enabled": "false",
}
LOCAL_CONF = {
    "spark.driver.memory": "1g",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}


def configure(spark: SparkSession) -> SparkSession:
    """Apply the runtime settings the semantics depend on (UTC, microsecond parquet timestamps)."""
    for key, value in RUNTIME_CONF.items():
        spark.conf.set(key, value)
    return spark


def spark_session(app_name: str = "fintech-etl") -> SparkSession:
    """Glue's session when running under Glue, else a small local one (``ETL_SPARK_MASTER``, local[2])."""
    try:
        from awsglue.context import GlueContext  # type: ignore[import-not-found]
    except ImportError:
        master = os.environ.get("ETL_SPARK_MASTER", "local[2]")
        builder = SparkSession.builder.appName(app_name).master(master)
        for key, value in {**LOCAL_CONF, **RUNTIME_CONF}.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
    else:
        from pyspark.context import SparkContext

        spark = GlueContext(SparkContext.getOrCreate()).spark_session
    return configure(spark)


def literal_path(path: str) -> str:
    """``path`` with Hadoop glob characters escaped, so a file named ``a[1].dat`` is read as itself."""
    return re.sub(r"([\\\[\]{}*?])", r"\\\1", path)


def read_detail_lines(spark: SparkSession, path: str, contract: Contract) -> DataFrame:
    """Detail lines of the file, one ``_value`` each (BOM removed; CRLF and blank lines handled)."""
    lines = spark.read.text(literal_path(path)).select(F.regexp_replace("value", "^\ufeff", "").alias(LINE))
    detail = contract.record_types.detail
    if contract.format == "delimited":
        record_type = F.split(LINE, C.delimiter_regex(contract.delimiter), 2).getItem(0)
    else:
        record_type = F.substring(LINE, 1, len(detail))
    return lines.where(record_type == detail)


def raw_fields(lines: DataFrame, contract: Contract) -> DataFrame:
    """One text column per contract field: split (limit -1) or sliced by position."""
    if contract.format == "delimited":
        parts = F.split(LINE, C.delimiter_regex(contract.delimiter), -1)
        return lines.select(*[parts.getItem(f.index).alias(f.name) for f in contract.fields])
    return lines.select(*[F.substring(LINE, f.position[0], f.width).alias(f.name) for f in contract.fields])


def typed_fields(raw: DataFrame, contract: Contract, pan_key: bytes) -> DataFrame:
    """Every field typed, pii replaced by its masked columns; dropped fields stay for the derivations."""
    fixed = contract.format == "fixed_width"
    selected: list[Column] = []
    for spec in contract.fields:
        text = F.col(C.quoted(spec.name))
        if spec.pii is Pii.card_number:
            last4, token = C.card_columns(text, pan_key, fixed)
            selected += [last4.alias("card_last4"), token.alias("card_token")]
            continue
        sign = F.col(C.quoted(spec.sign_field)) if spec.sign_field else None
        selected.append(C.typed_field(spec, text, sign, fixed).alias(spec.name))
    return raw.select(*selected)


def transform_file(spark: SparkSession, path: str, contract: Contract, lineage: Lineage, pan_key: bytes) -> DataFrame:
    """The staged rows of a validated ``.dat`` (local path or s3), in ``stage_schema(contract)`` order."""
    configure(spark)
    typed = typed_fields(raw_fields(read_detail_lines(spark, path, contract), contract), contract, pan_key)
    types = {f.name: C.spark_type(field_type(f)) for f in contract.fields if f.pii is Pii.none}
    derived = [C.derived_column(d, types).alias(d.name) for d in contract.derived]
    lineage_columns = [
        F.lit(lineage.business_date).cast(T.DateType()).alias("business_date"),
        F.lit(lineage.source_file).alias("source_file"),
        F.lit(lineage.execution_name).alias("execution_name"),
        F.timestamp_micros(F.lit(_epoch_micros(lineage.loaded_at))).alias("loaded_at"),
    ]
    full = typed.select("*", *derived, *lineage_columns)
    return full.select(
        *[F.col(C.quoted(f.name)).cast(C.spark_type(f.type)).alias(f.name) for f in stage_schema(contract)]
    )


def _epoch_micros(moment: dt.datetime) -> int:
    """Microseconds since the epoch, exactly; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (moment - EPOCH) // dt.timedelta(microseconds=1)


def write_stage(
    df: DataFrame, stage_uri: str, contract: Contract, business_date: dt.date, source_file_stem: str
) -> str:
    """Write ``df`` as ``<stage>/<feed>/<partition>=YYYY-MM-DD/<stem>.parquet`` (zstd); returns its URI.

    One part file is written to a temporary directory and moved into place, replacing an earlier
    version of the same source file and nothing else.
    """
    configure(df.sparkSession)
    names = [f.name for f in parquet_schema(contract)]
    stage, temp = zone(stage_uri), temp_prefix(contract.feed)
    out = df.select(*[C.quoted(n) for n in names]).coalesce(1)
    out.write.option("compression", "zstd").parquet(stage.uri_of(temp))
    final = stage_key(contract, business_date, source_file_stem)
    promote_part_file(stage, temp, final)
    return stage.uri_of(final)


def run_job(
    spark: SparkSession,
    *,
    source: str,
    stage_uri: str,
    execution_name: str,
    feed: str | None = None,
    business_date: str | dt.date | None = None,
    pan_key: bytes | None = None,
    pan_key_secret_id: str | None = None,
    loaded_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """The Glue job: transform one raw file into its stage parquet and describe the result."""
    from etl.spark.job import parse_business_date, resolve_pan_key

    name = PurePosixPath(source).name
    contract = load_contract(feed) if feed else contract_for_file(name)
    if contract is None:
        raise ValueError(f"{name}: no feed contract matches this file name")
    day = parse_business_date(business_date) if business_date else contract.file_business_date(name)
    if day is None:
        raise ValueError(f"{name}: no business date given and none in the file name")
    key = pan_key if pan_key is not None else resolve_pan_key(pan_key_secret_id)
    lineage = Lineage(day, name_text(name), execution_name, loaded_at or dt.datetime.now(dt.UTC))
    df = transform_file(spark, source, contract, lineage, key)
    stage_file = write_stage(df, stage_uri, contract, day, PurePosixPath(name).stem)
    rows = spark.read.parquet(literal_path(stage_file)).count()  # from the parquet footer, no second parse
    return {
        "feed": contract.feed,
        "source_file": name_text(name),
        "business_date": day.isoformat(),
        "execution_name": execution_name,
        "stage_file": stage_file,
        "rows": rows,
        "engine": "spark",
    }
