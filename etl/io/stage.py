"""The parquet stage: one zstd file per source file, partitioned by business date (hive layout).

``<stage>/<feed>/business_date=YYYY-MM-DD/<source file stem>.parquet``. A reprocess rewrites its own
file atomically, so stage never holds duplicates and a crash never leaves half a file where readers look.
The schema comes from the contract, so an empty day still has every column.

``etl run`` writes the file before its load commits, so it holds it back (``hold``): written under a temp
name, published (renamed into place) by ``HeldStage.publish`` only once the load has committed, discarded
otherwise. The stage never shows rows the database rolled back; a crash between the commit and the rename
leaves the partition missing, and the next run of the file restages it (``etl.pipeline.recover``).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from etl.contract import Contract
from etl.io.zones import LocalZone, Zone, make_private, private_folders, temp_path, zone
from etl.schema import parquet_schema, stage_schema

if TYPE_CHECKING:
    import pyarrow.dataset as ds

ROW_GROUP_ROWS = 128 * 1024  # parser batches are small; gather them so row groups compress well


def stage_key(contract: Contract, business_date: dt.date, source_file_stem: str) -> str:
    """Key of a source file's parquet inside the stage zone."""
    return f"{contract.feed}/{contract.partition_column}={business_date:%Y-%m-%d}/{source_file_stem}.parquet"


@dataclass
class HeldStage:
    """A stage file written under a temp name, not yet where readers look."""

    target: Zone
    key: str
    temp: Path

    @property
    def uri(self) -> str:
        return self.target.uri_of(self.key)

    def publish(self) -> str:
        """Put the file in place (atomic rename locally, one PUT on S3); returns its URI."""
        try:
            if isinstance(self.target, LocalZone):
                os.replace(self.temp, self.target.path(self.key))
            else:
                self.target.put_file(self.temp, self.key)
        finally:
            self.discard()
        return self.uri

    def discard(self) -> None:
        self.temp.unlink(missing_ok=True)
        if not isinstance(self.target, LocalZone):  # its own temp folder
            shutil.rmtree(self.temp.parent, ignore_errors=True)


def write_stage(
    stage_zone_uri: str,
    contract: Contract,
    business_date: dt.date,
    source_file_stem: str,
    batches: Iterable[pa.RecordBatch],
    *,
    compression: str = "zstd",
    hold: list[HeldStage] | None = None,
) -> str:
    """Stream staged batches (``stage_schema``) into the day's parquet file; returns its URI.

    Memory stays bounded by one row group. Batches may or may not carry the partition column; when
    they do, it must equal ``business_date``. With ``hold`` the finished file is not published but
    appended there as a :class:`HeldStage` (the caller publishes it after its load commits).
    """
    target = zone(stage_zone_uri)
    key = stage_key(contract, business_date, source_file_stem)
    if hold is None:
        with target.local_write(key) as path:
            _write_parquet(path, contract, business_date, batches, compression)
        return target.uri_of(key)
    if isinstance(target, LocalZone):
        private_folders(target.path(key).parent)
        target.sweep_temps(key)
        temp = temp_path(target.path(key))
        os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # private before any byte
    else:
        temp = Path(tempfile.mkdtemp(prefix="etl-stage-")) / PurePosixPath(key).name
    try:
        _write_parquet(temp, contract, business_date, batches, compression)
        make_private(temp)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    hold.append(HeldStage(target, key, temp))
    return target.uri_of(key)


def _write_parquet(
    path: Path, contract: Contract, business_date: dt.date, batches: Iterable[pa.RecordBatch], compression: str
) -> None:
    schema = parquet_schema(contract)
    with pq.ParquetWriter(path, schema, compression=compression) as writer:
        pending: list[pa.RecordBatch] = []
        rows = 0
        for batch in batches:
            pending.append(_for_parquet(batch, schema, contract.partition_column, business_date))
            rows += batch.num_rows
            if rows >= ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(pending, schema))
                pending, rows = [], 0
        if pending:
            writer.write_table(pa.Table.from_batches(pending, schema))


def _for_parquet(batch: pa.RecordBatch, schema: pa.Schema, partition: str, day: dt.date) -> pa.RecordBatch:
    if partition in batch.schema.names and batch.num_rows:
        same = pc.all(pc.equal(batch.column(partition), pa.scalar(day, pa.date32()))).as_py()
        if not same:
            raise ValueError(f"rows with a {partition} other than {day} cannot go into that partition")
    return batch.select(schema.names).cast(schema)


def stage_dataset(stage_uri: str, contract: Contract) -> ds.Dataset | None:
    """A feed's stage as one pyarrow dataset (hive partitioning, explicit schema), or ``None`` before its first
    file. Readers filter on the partition column and whole directories are pruned; DuckDB and pandas read the
    same object, so every reader of the stage prunes the same way.
    """
    import pyarrow.dataset as ds  # heavy (pulls in pandas): only readers pay for it

    filesystem, root = _filesystem(stage_uri)
    base = f"{root}/{contract.feed}"
    if filesystem.get_file_info(base).type is pafs.FileType.NotFound:
        return None
    column = contract.partition_column
    partitioning = ds.partitioning(pa.schema([pa.field(column, pa.date32())]), flavor="hive")
    dataset_schema = parquet_schema(contract).append(pa.field(column, pa.date32()))
    return ds.dataset(base, schema=dataset_schema, format="parquet", filesystem=filesystem, partitioning=partitioning)


def date_filter(contract: Contract, start: dt.date | None, end: dt.date | None) -> ds.Expression | None:
    """The partition filter for business dates in ``[start, end]`` (either open)."""
    import pyarrow.dataset as ds

    column = contract.partition_column
    condition = None
    if start is not None:
        condition = ds.field(column) >= pa.scalar(start, pa.date32())
    if end is not None:
        upper = ds.field(column) <= pa.scalar(end, pa.date32())
        condition = upper if condition is None else condition & upper
    return condition


def read_stage(
    stage_uri: str, contract: Contract, start: dt.date | None = None, end: dt.date | None = None
) -> pa.Table:
    """Staged rows of a feed for business dates in ``[start, end]`` (either open), ``stage_schema`` order.

    The date filter prunes whole directories and the partition column comes back as date32.
    """
    full = stage_schema(contract)
    dataset = stage_dataset(stage_uri, contract)
    if dataset is None:
        return full.empty_table()
    return dataset.to_table(filter=date_filter(contract, start, end)).select(full.names).cast(full)


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and root path of a zone URI (S3 honours ``AWS_ENDPOINT_URL``)."""
    if not uri.startswith("s3://"):
        local = zone(uri)
        assert isinstance(local, LocalZone)
        return pafs.LocalFileSystem(), local.root.as_posix()
    parsed = urlparse(uri)
    options: dict[str, str] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        url = urlparse(endpoint)
        options["endpoint_override"] = url.netloc or url.path
        options["scheme"] = url.scheme or "https"
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        options["region"] = region
    return pafs.S3FileSystem(**options), f"{parsed.netloc}{parsed.path}".rstrip("/")
