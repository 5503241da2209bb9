"""Notebook fixtures: a fresh database, ETL_HOME and PAN key for the kernels papermill and nbval start.

Kernels inherit the test process's environment, so monkeypatched ``ETL_*`` variables reach them; the
repository goes first on PYTHONPATH so kernels import this checkout's ``etl``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from etl.notebooks.golden import GOLDEN_PAN_KEY, SANITIZE_NAME
from etl.package_data import notebooks_dir
from tests.environment import EtlEnv

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = notebooks_dir()  # the packaged notebooks (etl/notebooks/*.ipynb)
GOLDEN_DIR = REPO / "notebooks" / "golden"  # their executed copies, kept in the repository
SANITIZE_FILE = GOLDEN_DIR / SANITIZE_NAME


@pytest.fixture
def nb_env(etl_env: EtlEnv, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment a notebook kernel sees: ``etl_env`` (test database, temp ETL_HOME) with the PAN key the
    golden copies were executed with, so their card tokens match."""
    replace(etl_env, key=GOLDEN_PAN_KEY).apply(monkeypatch)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return dict(os.environ)


def run_pytest(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run pytest (with nbval) in a subprocess of this interpreter; exit code and combined output."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done.returncode, done.stdout + done.stderr
