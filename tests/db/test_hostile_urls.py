"""The database password is never printed: not by any command that connects, not in an exception, whatever the
shape of ``ETL_DATABASE_URL`` (unencoded ``%``, ``@``, ``/``, spaces, a bare secret, a broken conninfo) or of a
Secrets Manager secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from typer.testing import CliRunner

from etl.cli.main import app
from etl.config import Settings
from etl.db import connect, dsn
from etl.io.secrets import SecretError
from tests.environment import EtlEnv

PW = "S3cretPW"  # every password below contains it; none of the output may
REPO = Path(__file__).resolve().parents[2]
UNREACHABLE = "127.0.0.1:1"  # connection refused at once

HOSTILE = {
    "bad percent escape": f"postgresql://etl:{PW}%zz@h/db",
    "percent at the end": f"postgresql://etl:{PW}%@h/db",
    "space": f"postgresql://etl:{PW} x@h/db",
    "unencoded at": f"postgresql://etl:{PW}@x@h/db",
    "unencoded at, reachable shape": f"postgresql://etl:x@{PW}@{UNREACHABLE}/db",
    "slash": f"postgresql://etl:{PW}/x@h/db",
    "no at": f"postgresql://etl:{PW}/db",
    "bad port": f"postgresql://etl:{PW}@h:port/db",
    "bare secret": PW,
    "bare secret with equals": f"{PW}=x y",
    "unterminated quote": f"host=h password='{PW}",
    "newline": f"postgresql://etl:{PW}\nx@h/db",
    "quote and backslash": f"postgresql://etl:{PW}'\\\"@h/db",
    "broken ipv6": f"postgresql://etl:{PW}@[::1:1/db",
    "valid, unreachable": f"postgresql://etl:{PW}@{UNREACHABLE}/db",
    "valid, password in query": f"postgresql://etl@{UNREACHABLE}/db?password={PW}",
    "keyword, unreachable": f"host=127.0.0.1 port=1 user=etl password={PW} dbname=db",
    "unknown host": f"postgresql://etl:{PW}@no-such-host.invalid/db",
    "encoded, unreachable": f"postgresql://etl:{PW}%40%25@{UNREACHABLE}/db",
}
COMMANDS = [("status",), ("status", "--json"), ("db", "status"), ("db", "upgrade"), ("run", "FILE"), ("sim", "FILE")]


def assert_hidden(*texts: object) -> None:
    for text in texts:
        assert PW not in str(text)
        assert PW[:6] not in str(text) and PW[2:] not in str(text)  # nor a piece of it


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    EtlEnv(tmp_path / "home", None).apply(monkeypatch)  # each test sets its own hostile ETL_DATABASE_URL
    dat = tmp_path / "transactions_20240301.dat"
    dat.write_text("H|TRANSACTIONS|20240301|20240302010203|01|CORE\nT|0|0\n")
    return dat


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("url", HOSTILE.values(), ids=HOSTILE.keys())
def test_no_command_prints_the_password(env: Path, monkeypatch, url: str, command: tuple[str, ...]) -> None:
    monkeypatch.setenv("ETL_DATABASE_URL", url)
    args = [str(env) if a == "FILE" else a for a in command]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert_hidden(result.stdout, result.stderr, repr(result.exception))
    assert "database" in result.stderr + result.stdout  # it still says what is wrong
    assert not (env.parent / "home" / "raw").exists() or not any((env.parent / "home" / "raw").rglob("*.dat"))


@pytest.mark.parametrize("url", HOSTILE.values(), ids=HOSTILE.keys())
def test_library_errors_and_descriptions_hide_the_password(url: str) -> None:
    assert_hidden(dsn.display(url))
    try:
        location = connect.locate(Settings(database_url=url))
        assert_hidden(location.describe(), repr(location))
        connect.connect(Settings(database_url=url), location=location).close()
    except Exception as exc:  # refused or unreachable: either way, nothing of the password
        assert_hidden(str(exc), repr(exc), exc.args)
        assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)  # nothing chained
    else:
        pytest.fail("a hostile URL connected")


def test_a_real_process_run_hides_the_password(env: Path) -> None:
    """The whole CLI as a process, its own stderr and exit code (no test runner in between)."""
    for url in (HOSTILE["bad percent escape"], HOSTILE["unencoded at"], HOSTILE["valid, unreachable"]):
        proc = subprocess.run(
            [sys.executable, "-m", "etl", "run", str(env)],
            env={**os.environ, "ETL_DATABASE_URL": url, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2, proc.stderr
        assert_hidden(proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_a_reachable_database_is_described_without_the_password(db_url: str) -> None:
    url = db_url.replace("postgres@", f"postgres:{PW}%40%25@")
    location = connect.locate(Settings(database_url=url))
    with connect.connect(Settings(database_url=url), location=location) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert_hidden(location.describe(), repr(location))
    assert location.describe().startswith("postgresql://postgres@127.0.0.1:")


hostile_chars = st.text(alphabet="@%/:?#[] '\"\\=&\n\tab1", max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=hostile_chars, after=hostile_chars, shape=st.sampled_from(["url", "query", "keyword", "bare"]))
def test_property_no_password_shape_is_ever_shown(before: str, after: str, shape: str) -> None:
    password = before + PW + after
    url = {
        "url": f"postgresql://etl:{password}@{UNREACHABLE}/db",
        "query": f"postgresql://etl@{UNREACHABLE}/db?password={password}",
        "keyword": f"host=127.0.0.1 port=1 dbname=db password={password}",
        "bare": password,
    }[shape]
    assert_hidden(dsn.display(url))
    try:
        location = connect.locate(Settings(database_url=url))
        assert_hidden(location.describe())
        connect.connect(Settings(database_url=url), location=location).close()
    except (dsn.DatabaseUrlError, psycopg.Error) as exc:
        assert_hidden(str(exc), exc.args)


@pytest.mark.parametrize(
    "stored",
    [
        PW,  # not JSON at all
        f'{{"host": "h", "username": "u", "password": "{PW}"',  # truncated JSON
        json.dumps([PW]),
        json.dumps(PW),
        json.dumps({"host": "h", "username": "u", "password": PW, "port": f"x{PW}"}),
        json.dumps({"host": f"h {PW}", "username": "u"}),
    ],
)
def test_a_malformed_database_secret_is_never_echoed(env: Path, monkeypatch, aws_env, stored: str) -> None:
    with mock_aws():
        boto3.client("secretsmanager").create_secret(Name="etl/db", SecretString=stored)
        monkeypatch.delenv("ETL_DATABASE_URL", raising=False)
        monkeypatch.setenv("ETL_DB_SECRET_ID", "etl/db")
        try:
            connect.connect(Settings(), location=connect.locate(Settings())).close()
        except (SecretError, psycopg.Error) as exc:
            assert_hidden(str(exc), exc.args)
        for command in (("status",), ("db", "status"), ("run", str(env))):
            result = CliRunner().invoke(app, list(command), env={"COLUMNS": "300"})
            assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
            assert_hidden(result.stdout, result.stderr, repr(result.exception))
            assert "etl/db" in result.stderr + result.stdout
