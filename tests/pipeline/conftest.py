"""End-to-end fixtures: a tmp ``ETL_HOME``, a fresh migrated real PostgreSQL database, a test PAN key.

``pipeline`` builds on ``etl_env`` (tests/conftest.py: the ``ETL_*`` environment) and gives helpers to run
``etl`` in-process (Typer's CliRunner), as a real subprocess, and to read the database back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row
from typer.testing import CliRunner, Result

from etl.cli.main import app
from tests.environment import EtlEnv
from tests.pipeline.expected import TABLES

REPO = Path(__file__).resolve().parents[2]


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
class Pipeline(EtlEnv):
    """A test's ``etl`` environment with a folder of source files and helpers to run and read back."""

    src: Path = field(kw_only=True)

    def zone(self, name: str) -> Path:
        return self.home / name

    def files(self, zone: str) -> list[str]:
        """Relative paths of every file in a zone, sorted."""
        root = self.zone(zone)
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.exists() else []

    def cli(self, *args: str | Path) -> Result:
        """``etl ...`` in-process; stdout and stderr apart."""
        return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})

    def subprocess(self, *args: str | Path, module: str = "etl") -> subprocess.Popen[str]:
        """``python -m etl ...`` (or another ``module``) as a real process with this test's environment."""
        env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
        return subprocess.Popen(
            [sys.executable, "-m", module, *map(str, args)],
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
def pipeline(etl_env: EtlEnv, tmp_path: Path) -> Pipeline:
    """``etl_env`` (parametrise that fixture ``["superuser", "etl-role"]`` to run as the role with only the
    grants of docs/deploy.md §4) with an empty source folder."""
    src = tmp_path / "src"
    src.mkdir()
    return Pipeline(etl_env.home, etl_env.db_url, src=src)
