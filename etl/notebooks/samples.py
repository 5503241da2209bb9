"""The committed dummy data (``etl/data/samples``) as notebook defaults: find it, and stage it without a database.

Notebooks run from the package folder, from papermill's working directory or from a golden-copy folder; their
default paths (``data/samples``) are relative to the installed ``etl`` package, so the same defaults work from
all of them, in a checkout and in an installed wheel alike.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl import package_data
from etl.contract import Contract, load_contract
from etl.core.mask import CardMasker
from etl.core.parse import open_dat
from etl.core.transform import Lineage, transform_batches
from etl.core.validate import validate_file
from etl.io.stage import write_stage
from etl.pipeline.naming import execution_name

SAMPLES_DIR = "/".join(package_data.SAMPLES)
# Dummy data only: a fixed key keeps sample tokens reproducible and never touches a real secret.
SAMPLE_PAN_KEY = b"fintech-etl-samples-dummy-data-key"
# One fixed stamp for sample lineage, so a stage built from the samples is the same on every machine.
SAMPLE_LOADED_AT = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def data_path(path: str | Path) -> Path:
    """``path`` as given when it exists (absolute or relative to the working directory), else inside the package
    (``data/samples`` -> ``etl/data/samples``)."""
    given = Path(path).expanduser()
    if given.is_absolute() or given.exists():
        return given.resolve()
    return package_data.package_path(*given.parts).resolve()


def as_date(value: str | dt.date) -> dt.date:
    """An ISO date; notebooks take dates as strings (``YYYY-MM-DD``) so papermill never turns them into ints."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def dat_files(
    contract: Contract, folder: str | Path, start: dt.date | None = None, end: dt.date | None = None
) -> list[Path]:
    """The feed's ``.dat`` files in ``folder`` whose name date is within ``[start, end]``, sorted by name."""
    found = []
    for path in sorted(data_path(folder).glob("*.dat")):
        day = contract.file_business_date(path.name)
        if day is not None and (start is None or day >= start) and (end is None or day <= end):
            found.append(path)
    return found


def default_stage_uri() -> str:
    """Where a stage built from the samples lives: a fixed temp folder, rebuilt in place (files overwrite)."""
    return str(Path(tempfile.gettempdir()) / "fintech-etl-samples" / "stage")


def build_stage(feed: str, samples_dir: str | Path = SAMPLES_DIR, stage_uri: str | None = None) -> str:
    """Stage every valid sample file of ``feed`` (parse, validate, transform, write parquet); returns the stage URI.

    No database and no zones beyond the stage: this is what lets the exploration and profiling notebooks
    run as-is on a fresh clone. Invalid files are left out, as the pipeline would.
    """
    contract = load_contract(feed)
    uri = stage_uri or default_stage_uri()
    masker = CardMasker(SAMPLE_PAN_KEY)
    for path in dat_files(contract, samples_dir):
        report = validate_file(path, contract)
        if not report.valid or report.business_date is None:
            continue
        lineage = Lineage(
            report.business_date,
            path.name,
            execution_name(feed, report.business_date, report.sha256 or ""),
            SAMPLE_LOADED_AT,
        )
        with path.open("rb") as stream:
            rows = staged_rows(stream, contract, lineage, masker, report.rejected_lines)
            write_stage(uri, contract, report.business_date, path.stem, rows)
    return uri


def staged_rows(
    stream: BinaryIO, contract: Contract, lineage: Lineage, masker: CardMasker, rejected: np.ndarray
) -> Iterator[pa.RecordBatch]:
    """A ``.dat`` stream parsed and transformed into staged batches, the rejected line numbers left out."""
    batches = open_dat(stream, contract).batches()
    if len(rejected):
        lines = pa.array(rejected)
        batches = (b.filter(pc.invert(pc.is_in(b.column("_line"), lines))) for b in batches)
    yield from transform_batches(batches, contract, lineage, masker)


def stage_or_samples(feed: str, stage_uri: str, samples_dir: str | Path = SAMPLES_DIR) -> str:
    """``stage_uri`` when given, else a stage freshly built from the samples (the notebooks' default)."""
    return stage_uri if stage_uri else build_stage(feed, samples_dir)
