"""Golden executed copies of the packaged notebooks, checked cell by cell by nbval.

The copies live in the repository (``notebooks/golden/``, with its ``sanitize.cfg``), not in the package: the
caller (``notebooks/regenerate_golden.py``, the tests) names that folder. Outputs are deterministic by
construction (seeded samples, sorted results, no times or paths printed), so a golden copy changes only when a
notebook or the logic behind it does. ``regenerate`` rewrites them; ``out_of_step`` tells which golden copies no
longer have their notebook's cells.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from etl.notebooks import KERNEL
from etl.package_data import notebooks_dir

SANITIZE_NAME = "sanitize.cfg"  # nbval's output sanitisers, beside the golden copies
# Dummy key for golden runs (card tokens are never printed, but the dev-key warning would be).
GOLDEN_PAN_KEY = "golden-notebooks-dummy-pan-key"


def notebooks() -> list[Path]:
    """The packaged notebooks (``etl/notebooks/*.ipynb``)."""
    return sorted(notebooks_dir().glob("*.ipynb"))


def sources(path: Path) -> list[tuple[str, str]]:
    """(cell type, source) of every cell: what must match between a notebook and its golden copy."""
    import nbformat

    return [(cell.cell_type, cell.source) for cell in nbformat.read(path, as_version=4).cells]


def out_of_step(golden_dir: Path, sources_of: list[Path] | None = None) -> list[str]:
    """Names of notebooks (the packaged ones unless ``sources_of``) whose golden copy in ``golden_dir`` is missing
    or whose cells differ from the notebook's."""
    stale = []
    for path in notebooks() if sources_of is None else sources_of:
        golden = golden_dir / path.name
        if not golden.is_file() or sources(golden) != sources(path):
            stale.append(path.name)
    return stale


def strip_run_metadata(path: Path) -> None:
    """Drop papermill's timings, per-cell execution times and stderr streams (library warnings that depend on
    the machine, such as a missing ``XDG_RUNTIME_DIR``): what is left is the notebook's own output."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    notebook.metadata.pop("papermill", None)
    for cell in notebook.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if (o.get("output_type"), o.get("name")) != ("stream", "stderr")]
    nbformat.write(notebook, path)


@contextlib.contextmanager
def golden_environment() -> Iterator[Path]:
    """A fresh ETL_HOME and the golden PAN key for the duration; an embedded database there if none is set."""
    saved = {k: os.environ.get(k) for k in ("ETL_HOME", "ETL_PAN_KEY")}
    with tempfile.TemporaryDirectory(prefix="etl-golden-") as home:
        os.environ.update(ETL_HOME=home, ETL_PAN_KEY=GOLDEN_PAN_KEY)
        try:
            yield Path(home)
        finally:
            if not os.environ.get("ETL_DATABASE_URL"):
                from etl.db.embedded import stop

                stop(Path(home))
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def regenerate(golden_dir: Path, names: list[str] | None = None, kernel_name: str = KERNEL) -> list[Path]:
    """Execute the notebooks (all, or those named) with their defaults into ``golden_dir``."""
    import papermill

    chosen = [p for p in notebooks() if names is None or p.stem in names or p.name in names]
    written = []
    with golden_environment():
        for path in chosen:
            target = golden_dir / path.name
            papermill.execute_notebook(
                str(path), str(target), kernel_name=kernel_name, cwd=str(path.parent), progress_bar=False
            )
            strip_run_metadata(target)
            written.append(target)
    return written
