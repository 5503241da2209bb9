"""Stage writer and reader: contract schema, atomic overwrite, empty days, partition pruning, S3."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl.contract import load_contract
from etl.core.mask import CardMasker
from etl.core.transform import Lineage, transform_batch
from etl.io.stage import read_stage, stage_key, write_stage
from etl.schema import parquet_schema, stage_schema
from tests.builders import raw_batch, raw_txn

TXN = load_contract("transactions")
ACCT = load_contract("account_summary")
DAY1, DAY2, DAY3 = dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)
LOADED = dt.datetime(2024, 1, 4, tzinfo=dt.UTC)


def staged(day: dt.date, ids: list[str], amount: str = "000000012345") -> pa.RecordBatch:
    """Transformed transactions of one business date."""
    records = [
        raw_txn(
            transaction_id=i,
            account_id="000000000001",
            transaction_ts="20240102030405",
            posted_date="20240102",
            amount=amount,
            merchant_name="",
        )
        for i in ids
    ]
    raw = raw_batch(TXN, records)
    lineage = Lineage(day, f"transactions_{day:%Y%m%d}.dat", "exec", LOADED)
    return transform_batch(raw, TXN, lineage, CardMasker(b"k"))


def test_round_trip_layout_and_schema(tmp_path: Path) -> None:
    stage = str(tmp_path / "stage")
    batches = [staged(DAY2, ["a", "b"]), staged(DAY2, ["c"])]
    uri = write_stage(stage, TXN, DAY2, "transactions_20240102", batches)
    assert uri == str(tmp_path / "stage/transactions/business_date=2024-01-02/transactions_20240102.parquet")
    meta = pq.ParquetFile(uri)
    assert meta.schema_arrow == parquet_schema(TXN)
    assert meta.metadata.row_group(0).column(0).compression == "ZSTD"
    table = read_stage(stage, TXN)
    assert table.schema == stage_schema(TXN)
    assert table.column("transaction_id").to_pylist() == ["a", "b", "c"]
    assert table.column("business_date").to_pylist() == [DAY2] * 3
    assert table.column("amount").to_pylist() == [Decimal("123.45")] * 3
    assert table.column("merchant_name").null_count == 3


def test_reprocess_overwrites_its_own_file(tmp_path: Path) -> None:
    stage = str(tmp_path / "stage")
    write_stage(stage, TXN, DAY2, "transactions_20240102", [staged(DAY2, ["a", "b"])])
    write_stage(stage, TXN, DAY2, "transactions_20240102_02", [staged(DAY2, ["z"])])
    write_stage(stage, TXN, DAY2, "transactions_20240102", [staged(DAY2, ["a"], amount="1")])
    folder = tmp_path / "stage/transactions/business_date=2024-01-02"
    assert sorted(p.name for p in folder.iterdir()) == [
        "transactions_20240102.parquet",
        "transactions_20240102_02.parquet",
    ]
    table = read_stage(stage, TXN).sort_by("transaction_id")
    assert table.column("transaction_id").to_pylist() == ["a", "z"]
    assert table.column("amount").to_pylist()[0] == Decimal("0.01")


def test_failed_write_leaves_previous_file(tmp_path: Path) -> None:
    stage = str(tmp_path / "stage")
    write_stage(stage, TXN, DAY2, "t", [staged(DAY2, ["a"])])

    def broken():
        yield staged(DAY2, ["b"])
        raise RuntimeError("parser died")

    with pytest.raises(RuntimeError):
        write_stage(stage, TXN, DAY2, "t", broken())
    assert read_stage(stage, TXN).column("transaction_id").to_pylist() == ["a"]
    assert len(list((tmp_path / "stage").rglob("*"))) == 3  # feed dir, date dir, one file


@pytest.mark.parametrize("contract", [TXN, ACCT], ids=lambda c: c.feed)
def test_empty_day_has_every_column(tmp_path: Path, contract) -> None:
    stage = str(tmp_path / "stage")
    uri = write_stage(stage, contract, DAY1, "empty", [])
    # the file itself (pq.read_table would add the business_date= folder as a column on pyarrow <= 20)
    assert pq.ParquetFile(uri).schema_arrow == parquet_schema(contract)
    table = read_stage(stage, contract)
    assert table.num_rows == 0 and table.schema == stage_schema(contract)
    assert read_stage(str(tmp_path / "nothing"), contract).schema == stage_schema(contract)


def test_read_stage_prunes_by_date(tmp_path: Path) -> None:
    stage = str(tmp_path / "stage")
    for day, ids in ((DAY1, ["d1"]), (DAY2, ["d2a", "d2b"]), (DAY3, ["d3"])):
        write_stage(stage, TXN, day, f"transactions_{day:%Y%m%d}", [staged(day, ids)])
    # a corrupt file in a pruned partition proves the reader never opens it
    (tmp_path / "stage/transactions/business_date=2024-01-01/junk.parquet").write_bytes(b"not parquet")
    only = read_stage(stage, TXN, start=DAY2, end=DAY2)
    assert sorted(only.column("transaction_id").to_pylist()) == ["d2a", "d2b"]
    assert read_stage(stage, TXN, start=DAY3).column("business_date").to_pylist() == [DAY3]
    with pytest.raises(pa.ArrowInvalid):
        read_stage(stage, TXN, end=DAY1)


def test_partition_mismatch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="partition"):
        write_stage(str(tmp_path), TXN, DAY1, "x", [staged(DAY2, ["a"])])


def test_stage_key() -> None:
    assert stage_key(ACCT, DAY1, "account_summary_20240101") == (
        "account_summary/business_date=2024-01-01/account_summary_20240101.parquet"
    )


def test_s3_stage_round_trip(moto_server: str) -> None:
    boto3.client("s3").create_bucket(Bucket="stage-bucket")
    stage = "s3://stage-bucket/zones/stage"
    for day in (DAY1, DAY2):
        uri = write_stage(stage, TXN, day, f"transactions_{day:%Y%m%d}", [staged(day, [f"id-{day.day}"])])
    assert uri == "s3://stage-bucket/zones/stage/transactions/business_date=2024-01-02/transactions_20240102.parquet"
    write_stage(stage, TXN, DAY2, "transactions_20240102", [staged(DAY2, ["again"])])
    table = read_stage(stage, TXN, start=DAY2)
    assert table.schema == stage_schema(TXN)
    assert table.column("transaction_id").to_pylist() == ["again"]
    assert read_stage(stage, TXN).num_rows == 2
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="stage-bucket")["Contents"]]
    assert len(keys) == 2
