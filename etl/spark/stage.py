"""Moving Spark's single part file into the stage layout that both engines share (local folder or S3).

Spark always writes a directory of part files; the stage holds one parquet file per source file
(``etl.io.stage.stage_key``) so a reprocess overwrites exactly that file. The engine writes into a fresh
directory under ``<stage>/_tmp/`` (skipped by dataset readers: leading underscore) and this module
promotes the part file: a rename locally, copy + size check + delete on S3.
"""

from __future__ import annotations

import os
import shutil
import uuid

from etl.io.zones import LocalZone, Zone, make_private, private_folders

TEMP_ROOT = "_tmp"


def temp_prefix(feed: str) -> str:
    """A fresh zone key prefix for one Spark write, outside the feed's partitions."""
    return f"{TEMP_ROOT}/{feed}/{uuid.uuid4().hex}"


def _single_part(keys: list[str], where: str) -> str:
    parts = [k for k in keys if k.rsplit("/", 1)[-1].startswith("part-") and k.endswith(".parquet")]
    if len(parts) != 1:
        raise RuntimeError(f"expected exactly one parquet part file in {where}, found {len(parts)}")
    return parts[0]


def promote_part_file(stage: Zone, prefix: str, final_key: str) -> None:
    """Move the only ``part-*.parquet`` under ``prefix`` to ``final_key`` (replacing it), drop ``prefix``."""
    if isinstance(stage, LocalZone):
        folder = stage.path(prefix)
        part = folder / _single_part(os.listdir(folder), str(folder))
        target = stage.path(final_key)
        private_folders(target.parent)
        make_private(part)  # Spark wrote it with the umask's mode; the stage is private (0600)
        os.replace(part, target)
        shutil.rmtree(folder)
        return
    keys = stage.list(prefix + "/")
    part = _single_part(keys, stage.uri_of(prefix))
    stage.copy_to(part, stage, final_key, overwrite=True)
    if stage.size(final_key) != stage.size(part):
        raise RuntimeError(f"copy of {stage.uri_of(part)} to {stage.uri_of(final_key)} did not verify")
    for key in keys:
        stage.delete(key)
