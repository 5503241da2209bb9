"""The stage written by Spark: one zstd parquet file per source file, Arrow types of ``parquet_schema``."""

from __future__ import annotations

import io
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import BUSINESS_DATE, PAN_KEY, TRANSACTIONS, lineage, transactions_lines
from moto import mock_aws

from etl.contract import load_contract
from etl.io.zones import zone
from etl.schema import parquet_schema
from etl.spark.engine import transform_file, write_stage
from etl.spark.stage import promote_part_file
from tests.builders import write


def stage(spark, path: Path, feed: str, stage_dir: Path) -> Path:
    contract = load_contract(feed)
    df = transform_file(spark, str(path), contract, lineage(path.name), PAN_KEY)
    return Path(write_stage(df, str(stage_dir), contract, BUSINESS_DATE, path.stem))


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("feed", ["transactions", "account_summary"])
def test_one_zstd_file_with_the_contract_schema(spark, tmp_path, feed, transactions_file, account_file):
    source = transactions_file if feed == "transactions" else account_file
    stage_dir = tmp_path / "stage"
    written = stage(spark, source, feed, stage_dir)
    assert files_under(stage_dir) == [f"{feed}/business_date=2024-03-01/{source.stem}.parquet"]
    assert written == stage_dir / feed / "business_date=2024-03-01" / f"{source.stem}.parquet"
    table = pq.read_table(written, partitioning=None)  # the file, not its business_date= folder
    want = parquet_schema(load_contract(feed))
    assert table.schema.names == want.names
    assert [f.type for f in table.schema] == [f.type for f in want]  # decimal, date32, timestamp[us, UTC]
    meta = pq.read_metadata(written)
    assert {meta.row_group(0).column(i).compression for i in range(meta.num_columns)} == {"ZSTD"}
    assert "business_date" not in table.schema.names  # the partition lives in the directory name


def test_reprocess_overwrites_only_its_own_file(spark, tmp_path):
    stage_dir = tmp_path / "stage"
    first = write(tmp_path / "transactions_20240301.dat", transactions_lines())
    sibling = write(tmp_path / "transactions_20240301_02.dat", transactions_lines(TRANSACTIONS[:1]))
    stage(spark, first, "transactions", stage_dir)
    stage(spark, sibling, "transactions", stage_dir)
    fewer = write(first, transactions_lines(TRANSACTIONS[:2]))
    again = stage(spark, fewer, "transactions", stage_dir)
    assert files_under(stage_dir) == [
        "transactions/business_date=2024-03-01/transactions_20240301.parquet",
        "transactions/business_date=2024-03-01/transactions_20240301_02.parquet",
    ]
    assert pq.read_table(again).column("transaction_id").to_pylist() == ["T-0001", "T-0002"]


@mock_aws
def test_promote_on_s3_copies_verifies_and_cleans_up(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="lake")
    sink = io.BytesIO()
    pq.write_table(pa.table({"x": [1, 2, 3]}), sink)
    tmp = "stage/_tmp/transactions/abc/"
    s3.put_object(Bucket="lake", Key=tmp + "part-00000-abc-c000.zstd.parquet", Body=sink.getvalue())
    s3.put_object(Bucket="lake", Key=tmp + "_SUCCESS", Body=b"")
    final = "stage/transactions/business_date=2024-03-01/t.parquet"
    s3.put_object(Bucket="lake", Key=final, Body=b"old version")
    promote_part_file(zone("s3://lake/stage"), "_tmp/transactions/abc", final.removeprefix("stage/"))
    assert s3.get_object(Bucket="lake", Key=final)["Body"].read() == sink.getvalue()
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="lake").get("Contents", [])] == [final]


def test_promote_refuses_several_part_files(tmp_path):
    for name in ("part-0.parquet", "part-1.parquet"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(RuntimeError, match="exactly one parquet part file"):
        promote_part_file(zone(str(tmp_path.parent)), tmp_path.name, "out.parquet")
