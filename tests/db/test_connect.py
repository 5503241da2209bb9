"""Where the database is: URL, Secrets Manager (moto), or the embedded pgserver; never a password shown."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import psycopg
import pytest
from moto import mock_aws

from etl.config import Settings
from etl.db import connect, embedded, migrate
from etl.io.secrets import SecretError


def test_url_wins_and_describe_hides_the_password(db_url: str) -> None:
    url = db_url.replace("postgres@", "postgres:s3cr3t-pw@")
    settings = Settings(database_url=url, db_secret_id="ignored")
    location = connect.locate(settings)
    assert location.source == "url"
    described = connect.describe(settings)
    assert "s3cr3t-pw" not in described and described.startswith("postgresql://postgres@127.0.0.1:")
    with connect.connect(settings) as conn:  # trust auth ignores the password; the URL is used as given
        assert conn.autocommit and conn.execute("SELECT 1").fetchone() == (1,)


@mock_aws
def test_rds_secret_is_resolved_without_leaking_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("secretsmanager", region_name="us-east-1")
    secret = {
        "engine": "postgres",
        "host": "aurora.example.internal",
        "port": 5432,
        "username": "etl",
        "password": "pa ss'word",
        "dbname": "fintech",
    }
    client.create_secret(Name="etl/db", SecretString=json.dumps(secret))
    location = connect.locate(Settings(db_secret_id="etl/db"))
    params = psycopg.conninfo.conninfo_to_dict(location.conninfo)
    assert (params["host"], params["port"], params["user"], params["password"], params["dbname"]) == (
        "aurora.example.internal",
        "5432",
        "etl",
        "pa ss'word",
        "fintech",
    )
    assert location.describe() == "postgresql://etl@aurora.example.internal:5432/fintech (secret etl/db)"

    client.create_secret(Name="etl/bad", SecretString=json.dumps({"host": "h", "username": "u"}))
    with pytest.raises(SecretError, match="missing password"):
        connect.locate(Settings(db_secret_id="etl/bad"))


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A world-traversable temp dir: as root, pgserver runs PostgreSQL as its own user, which cannot
    enter pytest's private (0700) tmp_path."""
    path = Path(tempfile.mkdtemp(prefix="etl-embedded-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_embedded_server_starts_migrates_and_is_reused(open_tmp: Path) -> None:
    tmp_path = open_tmp
    settings = Settings(home=tmp_path / "home")
    try:
        with connect.connect(settings) as conn:
            assert all(at is not None for _, at in migrate.status(conn))
            assert conn.execute("SELECT count(*) FROM fintech.transactions").fetchone() == (0,)
            for name, value in embedded.SERVER_SETTINGS.items():  # applied with a restart on first start
                assert conn.execute("SELECT current_setting(%s)", (name,)).fetchone() == (value,)
        assert not embedded.apply_settings(embedded.server_uri(settings.home))  # nothing left to apply
        assert connect.describe(settings).startswith("embedded PostgreSQL")
        assert (tmp_path / "home" / "pgdata" / "PG_VERSION").exists()
        with connect.connect(settings) as again:  # same server, already migrated
            assert migrate.upgrade(again) == []
    finally:
        stopped = embedded.stop(settings.home)
    assert stopped and not embedded.stop(settings.home)


def test_db_stop_command_stops_the_embedded_server(open_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from etl.cli.main import app

    home = open_tmp / "home"
    monkeypatch.delenv("ETL_DATABASE_URL", raising=False)
    monkeypatch.delenv("ETL_DB_SECRET_ID", raising=False)
    monkeypatch.setenv("ETL_HOME", str(home))
    with connect.connect(Settings(home=home)):
        pass
    assert (home / "pgdata" / "postmaster.pid").exists()
    result = CliRunner().invoke(app, ["db", "stop"])
    assert result.exit_code == 0 and "stopped" in result.output, result.output
    assert not (home / "pgdata" / "postmaster.pid").exists()
    assert "was not running" in CliRunner().invoke(app, ["db", "stop"]).output
    monkeypatch.setenv("ETL_DATABASE_URL", "postgresql://somewhere/db")
    assert CliRunner().invoke(app, ["db", "stop"]).exit_code == 2
