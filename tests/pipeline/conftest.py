"""End-to-end fixtures: a tmp ``ETL_HOME``, a fresh migrated real PostgreSQL database, a test PAN key.

``pipeline`` sets the ``ETL_*`` environment and gives helpers to run ``etl`` in-process (Typer's
CliRunner), as a real subprocess, and to read the database back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row
from typer.testing import CliRunner, Result

from etl.cli.main import app
from tests.conftest import database_as
from tests.pipeline.expected import TABLES

PAN_KEY = "e2e-test-pan-key-0123456789"
REPO = Path(__file__).resolve().parents[2]
CLEARED = (
    "ETL_DB_SECRET_ID",
    "ETL_PAN_KEY_SECRET_ID",
    "ETL_SNS_TOPIC_ARN",
    "ETL_LANDING_URI",
    "ETL_RAW_URI",
    "ETL_STAGE_URI",
    "ETL_ARCHIVE_URI",
    "ETL_ERROR_URI",
)


def notifications(text: str) -> list[dict[str, Any]]:
    """The JSON lines of a run's stdout that are notifications (the summary table and others skipped)."""
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            obj = json.loads(line)
            if "executionname" in obj:
                found.append(obj)
    return found


@dataclass
class Pipeline:
    home: Path
    src: Path
    db_url: str

    @property
    def pan_key(self) -> bytes:
        return PAN_KEY.encode()

    def zone(self, name: str) -> Path:
        return self.home / name

    def files(self, zone: str) -> list[str]:
        """Relative paths of every file in a zone, sorted."""
        root = self.zone(zone)
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.exists() else []

    def cli(self, *args: str | Path) -> Result:
        """``etl ...`` in-process; stdout and stderr apart."""
        return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})

    def subprocess(self, *args: str | Path) -> subprocess.Popen[str]:
        """``python -m etl ...`` as a real process with this test's environment."""
        env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
        return subprocess.Popen(
            [sys.executable, "-m", "etl", *map(str, args)],
            env=env,
            cwd=self.src,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def query(self, query: str | sql.Composable, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with psycopg.connect(self.db_url, autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
            return list(cur.execute(query, params).fetchall())

    def ledger(self) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM etl.file_ledger ORDER BY ledger_id")

    def table(self, feed: str) -> list[dict[str, Any]]:
        schema, name = TABLES[feed].split(".")
        return self.query(sql.SQL("SELECT * FROM {}").format(sql.Identifier(schema, name)))

    def checksum(self) -> dict[str, str]:
        """md5 of every operational table and of the LOADED ledger rows, row text sorted."""
        sums = {}
        for feed, qualified in TABLES.items():
            schema, name = qualified.split(".")
            query = sql.SQL(
                "SELECT count(*) AS n, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "
                "AS md5 FROM {} AS t"
            ).format(sql.Identifier(schema, name))
            row = self.query(query)[0]
            sums[feed] = f"{row['n']}:{row['md5']}"
        row = self.query(
            "SELECT count(*) AS n, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) AS md5 "
            "FROM etl.file_ledger AS t WHERE status = 'LOADED'"
        )[0]
        sums["ledger_loaded"] = f"{row['n']}:{row['md5']}"
        return sums


@pytest.fixture
def pipeline(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    """The environment of ``etl`` on a fresh migrated database, as the superuser or (parametrised
    ``"etl-role"``) as a role with only the grants of docs/deploy.md §4."""
    db_url = database_as(request)
    home, src = tmp_path / "home", tmp_path / "src"
    src.mkdir()
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ETL_HOME", str(home))
    monkeypatch.setenv("ETL_DATABASE_URL", db_url)
    monkeypatch.setenv("ETL_PAN_KEY", PAN_KEY)
    return Pipeline(home, src, db_url)
