"""The deployable artifacts, built once per session with the documented command (docs/deploy.md §1)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Built:
    """``python -m tools.build_artifacts --out <out>`` ran; the zips Lambda and Glue would unpack, unpacked."""

    out: Path
    manifest: dict
    code: Path  # lambda.zip, as /var/task
    layer: Path  # layer.zip's python/, as /opt/python
    glue_wheels: Path  # the .gluewheels.zip's wheels/


def unzip(archive: Path, target: Path) -> Path:
    with zipfile.ZipFile(archive) as z:
        z.extractall(target)
    return target


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("artifacts")
    result = subprocess.run(
        [sys.executable, "-m", "tools.build_artifacts", "--out", str(out)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    unpacked = tmp_path_factory.mktemp("unpacked")
    (glue_zip,) = out.glob("*.gluewheels.zip")
    return Built(
        out,
        manifest,
        code=unzip(out / "lambda.zip", unpacked / "task"),
        layer=unzip(out / "layer.zip", unpacked / "opt") / "python",
        glue_wheels=unzip(glue_zip, unpacked / "glue") / "wheels",
    )


def clean_python(paths: list[Path], code: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    """Run ``code`` in an isolated interpreter (``-I -S``: no site-packages, no PYTHON* variables) whose
    import path is ``paths`` and the standard library only; returns the completed process."""
    prelude = f"import sys; sys.path[:0] = {[str(p) for p in paths]!r}\n"
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", prelude + code], capture_output=True, text=True, env=env, cwd=cwd
    )
