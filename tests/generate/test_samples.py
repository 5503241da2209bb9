"""The committed samples are exactly what the commands in ``etl/data/samples/README.md`` generate."""

from __future__ import annotations

import shlex
from pathlib import Path

from typer.testing import CliRunner

from etl.cli.main import app
from etl.core.validate import validate_file
from etl.package_data import samples_dir

SAMPLES = samples_dir()
REPO = Path(__file__).resolve().parents[2]  # the README's commands run from the repository root


def commands() -> list[list[str]]:
    lines = (SAMPLES / "README.md").read_text(encoding="utf-8").splitlines()
    return [shlex.split(line)[1:] for line in lines if line.startswith("etl generate ")]


def test_readme_commands_reproduce_the_committed_samples(tmp_path):
    runner = CliRunner()
    found = commands()
    assert len(found) == 8
    for args in found:
        out = args[args.index("-o") + 1]
        args[args.index("-o") + 1] = str(tmp_path / out)
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        written = Path(result.stdout.strip())
        committed = REPO / out / written.name
        assert written.read_bytes() == committed.read_bytes(), committed


def test_samples_validate():
    for path in sorted(SAMPLES.glob("*.dat")):
        assert validate_file(path).valid, path
    for path in sorted((SAMPLES / "corrupt").glob("*.dat")):
        assert set(validate_file(path).errors) == {"T002"}, path
