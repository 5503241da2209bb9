"""One value of a stage parquet, read from its footer and one column chunk (``etl.io.parquet_peek``).

On S3 the reads go over moto's HTTP server, so the bodies are real non-seekable streams, and every GetObject
is counted: the answer must come from a few ranged reads that add up to a small part of the object."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl.io.parquet_peek import NotParquetError, first_value
from etl.io.zones import S3Zone, Zone, zone

ROWS = 300_000


def _stage_table(rows: int, execution: str) -> pa.Table:
    """A stage-like table: a lineage column (one value, dictionary-encoded) beside columns that carry weight."""
    return pa.table(
        {
            "transaction_id": pa.array([f"tx-{i:09d}" for i in range(rows)]),
            "amount": pa.array(range(rows), pa.int64()),
            "execution_name": pa.array([execution] * rows),
        }
    )


@pytest.fixture
def s3_zone(moto_server: str) -> Iterator[tuple[S3Zone, list[int]]]:
    """An S3 zone over HTTP and the byte counts of every GetObject it answered."""
    client = boto3.client("s3")
    client.create_bucket(Bucket="stage")
    fetched: list[int] = []
    client.meta.events.register(
        "after-call.s3.GetObject", lambda parsed, **_: fetched.append(int(parsed["ContentLength"]))
    )
    yield S3Zone("stage", "prefix", client=client), fetched


def _put(z: Zone, table: pa.Table, tmp_path: Path, key: str, **options: object) -> int:
    local = tmp_path / "file.parquet"
    pq.write_table(table, local, **options)
    z.put_file(local, key)
    return local.stat().st_size


def test_the_first_value_comes_from_a_small_part_of_a_large_object(
    s3_zone: tuple[S3Zone, list[int]], tmp_path: Path
) -> None:
    z, fetched = s3_zone
    size = _put(z, _stage_table(ROWS, "exec-1"), tmp_path, "t/day.parquet", row_group_size=50_000)
    fetched.clear()
    assert first_value(z, "t/day.parquet", "execution_name") == "exec-1"
    assert 2 <= len(fetched) <= 3
    assert sum(fetched) < size / 20, (sum(fetched), size)


@pytest.mark.parametrize("dictionary", [True, False], ids=["dictionary", "plain"])
@pytest.mark.parametrize("compression", ["snappy", "zstd", "none"])
def test_every_encoding_and_codec_gives_the_first_row(
    s3_zone: tuple[S3Zone, list[int]], tmp_path: Path, dictionary: bool, compression: str
) -> None:
    z, _ = s3_zone
    table = _stage_table(20_000, "first").set_column(2, "execution_name", pa.array(["first"] + ["later"] * 19_999))
    _put(z, table, tmp_path, "t/x.parquet", use_dictionary=dictionary, compression=compression, row_group_size=7_000)
    assert first_value(z, "t/x.parquet", "execution_name") == "first"


@pytest.fixture(params=["local", "s3"])
def any_zone(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Zone]:
    if request.param == "local":
        return lambda: zone(tmp_path / "stage")
    z, _ = request.getfixturevalue("s3_zone")
    return lambda: z


def test_a_file_without_rows_has_no_value(any_zone: Callable[[], Zone], tmp_path: Path) -> None:
    z = any_zone()
    _put(z, _stage_table(0, "x"), tmp_path, "t/empty.parquet")
    assert first_value(z, "t/empty.parquet", "execution_name") is None


def test_an_object_that_is_not_parquet_is_refused(any_zone: Callable[[], Zone]) -> None:
    z = any_zone()
    z.put_bytes(b"H|TRANSACTIONS|20240301\n" * 10, "t/not.parquet")
    z.put_bytes(b"PAR1", "t/short.parquet")
    z.put_bytes(b"PAR1" + b"\0" * 10 + (1_000_000).to_bytes(4, "little") + b"PAR1", "t/footer.parquet")
    for key in ("t/not.parquet", "t/short.parquet", "t/footer.parquet"):
        with pytest.raises(NotParquetError):
            first_value(z, key, "execution_name")


def test_a_missing_object_or_column_is_an_error(any_zone: Callable[[], Zone], tmp_path: Path) -> None:
    z = any_zone()
    with pytest.raises(FileNotFoundError):
        first_value(z, "t/missing.parquet", "execution_name")
    _put(z, _stage_table(10, "x"), tmp_path, "t/ten.parquet")
    with pytest.raises(KeyError):
        first_value(z, "t/ten.parquet", "no_such_column")
