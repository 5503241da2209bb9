"""The built-in development PAN key is public: a run that leaves the machine refuses it before touching a file."""

from __future__ import annotations

import datetime as dt

import pytest

from etl.generate import generate
from tests.environment import clear_etl_env
from tests.pipeline.conftest import Pipeline

DAY = dt.date(2024, 3, 1)


@pytest.mark.parametrize(
    "extra",
    [
        {},  # the external database alone (ETL_DATABASE_URL of the fixture)
        {"ETL_SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:etl"},
        {"ETL_ARCHIVE_URI": "s3://archive-bucket/archive"},
    ],
    ids=["external database", "sns", "s3 zone"],
)
def test_missing_key_is_refused_before_any_file_moves(pipeline: Pipeline, monkeypatch, extra) -> None:
    monkeypatch.delenv("ETL_PAN_KEY")
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    path = generate("transactions", DAY, rows=20, seed=3, out_dir=pipeline.src)
    before = path.read_bytes()
    run = pipeline.subprocess("run", path)
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "ETL_PAN_KEY" in lines[0] and "ETL_DATABASE_URL" in lines[0], stderr
    assert "Traceback" not in stderr and stdout == ""
    assert path.read_bytes() == before
    assert not pipeline.home.exists() or not [p for p in pipeline.home.rglob("*") if p.is_file()]
    assert pipeline.ledger() == []


def test_a_key_from_the_environment_is_used_without_a_warning(pipeline: Pipeline) -> None:
    path = generate("transactions", DAY, rows=20, seed=3, out_dir=pipeline.src)
    result = pipeline.cli("run", path)
    assert result.exit_code == 0, result.stderr
    assert "development key" not in result.stderr


def test_an_all_local_run_says_so_in_one_line(tmp_path, monkeypatch, capsys) -> None:
    from etl.cli.common import card_token_key
    from etl.config import Settings
    from etl.io.secrets import DEV_PAN_KEY

    clear_etl_env(monkeypatch)
    assert card_token_key(Settings(home=tmp_path)) == DEV_PAN_KEY
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and err.count("\n") == 1 and "everything is local" in err
