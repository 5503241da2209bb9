"""Where staged parquet goes, and moving Spark's single part file into its place (local folder or S3).

Spark always writes a directory of part files; the stage holds one parquet file per source file so a
reprocess overwrites exactly that file. The engine writes into a temporary directory under
``<stage>/_tmp/`` (ignored by dataset readers: leading underscore) and this module promotes the part file.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from pathlib import Path
from urllib.parse import urlparse

S3_SCHEMES = ("s3", "s3a", "s3n")


def is_s3(uri: str) -> bool:
    return urlparse(uri).scheme in S3_SCHEMES


def join_uri(base: str, *parts: str) -> str:
    """``base`` joined with ``parts`` by ``/`` (S3) or the OS separator (local)."""
    if is_s3(base):
        return "/".join([base.rstrip("/"), *parts])
    return str(Path(local_path(base), *parts))


def local_path(uri: str) -> str:
    """A local path from a plain path or a ``file://`` URI."""
    return urlparse(uri).path if uri.startswith("file://") else uri


def stage_file_uri(stage_uri: str, feed: str, partition: str, business_date: dt.date, stem: str) -> str:
    """``<stage>/<feed>/<partition>=YYYY-MM-DD/<stem>.parquet``, the layout both engines share."""
    return join_uri(stage_uri, feed, f"{partition}={business_date.isoformat()}", f"{stem}.parquet")


def temp_dir_uri(stage_uri: str, feed: str) -> str:
    """A fresh directory for one Spark write, outside the feed's partitions."""
    return join_uri(stage_uri, "_tmp", feed, uuid.uuid4().hex)


def promote_part_file(temp_uri: str, final_uri: str) -> None:
    """Move the only ``part-*.parquet`` under ``temp_uri`` to ``final_uri``, then remove ``temp_uri``."""
    if is_s3(temp_uri):
        _promote_s3(temp_uri, final_uri)
    else:
        _promote_local(local_path(temp_uri), local_path(final_uri))


def _single_part(names: list[str], where: str) -> str:
    parts = [n for n in names if n.rsplit("/", 1)[-1].startswith("part-") and n.endswith(".parquet")]
    if len(parts) != 1:
        raise RuntimeError(f"expected exactly one parquet part file in {where}, found {len(parts)}")
    return parts[0]


def _promote_local(temp_dir: str, final_path: str) -> None:
    part = _single_part(os.listdir(temp_dir), temp_dir)
    os.makedirs(os.path.dirname(final_path), exist_ok=True)
    os.replace(os.path.join(temp_dir, part), final_path)
    shutil.rmtree(temp_dir)


def _bucket_key(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def _promote_s3(temp_uri: str, final_uri: str) -> None:
    """Copy (multipart when large), verify the size, then delete every temporary object."""
    import boto3

    s3 = boto3.client("s3")
    bucket, prefix = _bucket_key(temp_uri.rstrip("/") + "/")
    objects = [
        item
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    ]
    part_key = _single_part([o["Key"] for o in objects], temp_uri)
    size = next(o["Size"] for o in objects if o["Key"] == part_key)
    final_bucket, final_key = _bucket_key(final_uri)
    s3.copy({"Bucket": bucket, "Key": part_key}, final_bucket, final_key)
    copied = s3.head_object(Bucket=final_bucket, Key=final_key)["ContentLength"]
    if copied != size:
        raise RuntimeError(f"copy of {part_key} to {final_uri} has {copied} bytes, expected {size}")
    keys = [{"Key": o["Key"]} for o in objects]
    for start in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True})
