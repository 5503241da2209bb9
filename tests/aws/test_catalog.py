"""The stage's catalog tables in ``template.yml``: columns equal to the contract's parquet schema, and partition
projection properties that Athena accepts (names, types, formats and the location template)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pyarrow as pa
import pytest

from etl.aws.catalog import glue_type, partition_keys, table_columns
from etl.contract import feed_names, load_contract
from tests.aws.test_static import parsed_template

TABLES = {"transactions": "TransactionsStageTable", "account_summary": "AccountSummaryStageTable"}


def table_input(feed: str) -> dict[str, Any]:
    return parsed_template()["Resources"][TABLES[feed]]["Properties"]["TableInput"]


def test_every_feed_has_a_table() -> None:
    assert sorted(TABLES) == sorted(feed_names())


@pytest.mark.parametrize("feed", sorted(TABLES))
def test_columns_follow_the_contract(feed: str) -> None:
    contract = load_contract(feed)
    table = table_input(feed)
    assert table["Name"] == feed
    assert table["StorageDescriptor"]["Columns"] == table_columns(contract)
    assert table["PartitionKeys"] == partition_keys(contract)


@pytest.mark.parametrize("feed", sorted(TABLES))
def test_partition_projection_is_what_athena_accepts(feed: str) -> None:
    """Athena's documented rules for a ``date`` projection: enabled, a type, a Java date format that renders
    the folder names, a ``<first>,NOW`` range, a whole-number interval with a unit, and a location template
    naming the column exactly once as ``${column}``."""
    contract = load_contract(feed)
    column = contract.partition_column
    params = table_input(feed)["Parameters"]
    assert params["projection.enabled"] == "true"
    assert params[f"projection.{column}.type"] == "date"
    java_format = params[f"projection.{column}.format"]
    assert java_format == "yyyy-MM-dd"
    sample = dt.date(2024, 3, 1)
    rendered = java_format.replace("yyyy", f"{sample:%Y}").replace("MM", f"{sample:%m}").replace("dd", f"{sample:%d}")
    assert f"{column}={rendered}" == f"{column}={sample:%Y-%m-%d}"  # what etl.io.stage.stage_key writes
    first, last = params[f"projection.{column}.range"]["Fn::Sub"].split(",")
    assert first == "${StageProjectionFirstDate}" and last == "NOW"
    assert params[f"projection.{column}.interval"].isdigit()
    assert params[f"projection.{column}.interval.unit"] == "DAYS"
    location = params["storage.location.template"]["Fn::Sub"]
    assert location == f"s3://${{StageBucket}}/{feed}/{column}=${{!{column}}}/"  # ${!x} renders as ${x}
    assert re.findall(r"\$\{!(\w+)\}", location) == [column]
    projected = {key.split(".")[1] for key in params if key.startswith("projection.") and key != "projection.enabled"}
    assert projected == {p["Name"] for p in table_input(feed)["PartitionKeys"]}


def test_every_stage_type_has_a_catalog_type() -> None:
    assert glue_type(pa.decimal128(18, 4)) == "decimal(18,4)"
    assert glue_type(pa.timestamp("us", tz="UTC")) == "timestamp"
    with pytest.raises(TypeError):
        glue_type(pa.list_(pa.string()))


def test_analyst_role_cannot_reach_the_zones_with_card_numbers() -> None:
    role = parsed_template()["Resources"]["AnalystRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    text = repr(role)
    for bucket in ("LandingBucket", "RawBucket", "ArchiveBucket", "ErrorBucket"):
        assert bucket not in text
    assert "StageBucket" in text
