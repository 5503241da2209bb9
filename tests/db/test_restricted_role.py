"""Migrations and full loads as the ``etl`` role with only the grants docs/deploy.md §4 lists.

The role is NOSUPERUSER NOCREATEDB NOCREATEROLE on a database whose PUBLIC defaults are revoked, on a
cluster that checks its password. It gets its grants both ways: the SQL exactly as docs/deploy.md shows it,
and ``etl.db.grants.bootstrap_role`` (what the stack's migrate function runs). Then the CLI, as that role:
``etl db upgrade``, ``etl run`` of a first day, the next day's upserts and deletes, a duplicate, a rejected
file, ``etl status``. Taking one grant away shows each one is needed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from etl.cli.main import app
from etl.db import grants, migrate
from etl.generate import BaseFile, generate
from tests import pg, restricted_role
from tests.environment import EtlEnv

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "restricted-role-test-pw-Zq8"
DAY1, DAY2 = dt.date(2024, 3, 1), dt.date(2024, 3, 2)


def documented_sql() -> list[str]:
    """The statements of the ```sql block in docs/deploy.md §4."""
    text = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    section = text[text.index("## 4.") : text.index("## 5.")]
    (block,) = re.findall(r"```sql\n(.*?)```", section, flags=re.S)
    return [line.strip() for line in block.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def cluster() -> Iterator[pg.Cluster]:
    with restricted_role.password_cluster() as running:
        yield running


def grant_as_documented(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        verifier = admin.pgconn.encrypt_password(PASSWORD.encode(), b"etl", b"scram-sha-256").decode()
        for statement in documented_sql():
            admin.execute(re.sub(r"'SCRAM-SHA-256\$4096:…'", f"'{verifier}'", statement))


def grant_by_bootstrap(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        grants.bootstrap_role(admin, restricted_role.ROLE, PASSWORD, restricted_role.DATABASE)


@pytest.fixture(params=["documented-sql", "bootstrap_role"])
def etl_role(request, cluster: pg.Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The CLI's environment pointing at the locked database as the ``etl`` role; yields the admin URL."""
    admin_url = restricted_role.locked_database(cluster)
    (grant_as_documented if request.param == "documented-sql" else grant_by_bootstrap)(admin_url)
    EtlEnv(tmp_path / "home", restricted_role.role_url(cluster, PASSWORD)).apply(monkeypatch)
    yield admin_url
    restricted_role.drop(cluster)


def etl(*args: str | Path):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def test_the_documented_grants_are_what_the_stack_grants() -> None:
    statements = documented_sql()
    assert statements[0].startswith(f"CREATE ROLE etl WITH {grants.ROLE_ATTRIBUTES} PASSWORD ")
    assert statements[1] == f"GRANT {', '.join(grants.DATABASE_PRIVILEGES)} ON DATABASE fintech TO etl;"
    assert len(statements) == 2


def test_role_has_no_more_than_the_documented_rights(etl_role: str) -> None:
    with psycopg.connect(etl_role) as admin:
        attributes = admin.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolpassword LIKE 'SCRAM-SHA-256$%' "
            "FROM pg_authid WHERE rolname = 'etl'"
        ).fetchone()
        granted = admin.execute(
            "SELECT privilege_type FROM pg_database, aclexplode(datacl) "
            "WHERE datname = 'fintech' AND grantee = 'etl'::regrole ORDER BY 1"
        ).fetchall()
        public = admin.execute(
            "SELECT count(*) FROM pg_database, aclexplode(datacl) WHERE datname = 'fintech' AND grantee = 0"
        ).fetchone()[0]
    assert attributes == (False, False, False, True, True)
    assert [p for (p,) in granted] == ["CONNECT", "CREATE", "TEMPORARY"] and public == 0


def test_upgrade_and_full_run_as_the_restricted_role(etl_role: str, tmp_path: Path) -> None:
    upgraded = etl("db", "upgrade", "--json")
    assert upgraded.exit_code == 0, upgraded.output
    assert json.loads(upgraded.stdout)["applied"] == [m.name for m in migrate.available()]
    assert etl("db", "status").exit_code == 0
    owners = restricted_role.ownership(etl_role)
    assert set(owners) == {"etl"} and {"etl", "fintech", "fintech.transactions", "etl.file_ledger"} <= owners["etl"]

    src = tmp_path / "src"
    day1 = generate("transactions", DAY1, rows=300, seed=5, out_dir=src)
    accounts = generate("account_summary", DAY1, rows=100, seed=5, out_dir=src)
    day2 = generate("transactions", DAY2, rows=300, seed=5, out_dir=src, updates_of=(BaseFile(DAY1, 300),))
    corrupt = generate("account_summary", DAY2, rows=50, seed=5, out_dir=tmp_path / "bad", corrupt="T002")
    first = etl("run", day1, accounts, "--json")
    assert first.exit_code == 0, first.output
    second = etl("run", day2, "--json")
    assert second.exit_code == 0, second.output
    again = generate("transactions", DAY1, rows=300, seed=5, out_dir=tmp_path / "again")
    duplicate = etl("run", again, corrupt, "--json")
    assert duplicate.exit_code == 1, duplicate.output  # the corrupt file is rejected
    ledger = json.loads(etl("status", "--json").stdout)["files"]
    statuses = sorted((row["file_name"], row["status"]) for row in ledger)
    assert statuses == [
        ("account_summary_20240301.dat", "LOADED"),
        ("account_summary_20240302.dat", "REJECTED"),
        ("transactions_20240301.dat", "LOADED"),
        ("transactions_20240301.dat", "SKIPPED"),
        ("transactions_20240302.dat", "LOADED"),
    ]
    day2_row = next(r for r in ledger if r["file_name"] == "transactions_20240302.dat")
    assert day2_row["rows_updated"] > 0 and day2_row["rows_deleted"] > 0 and day2_row["rows_inserted"] > 0
    with psycopg.connect(etl_role) as admin:
        assert admin.execute("SELECT count(*) FROM fintech.account_daily_summary").fetchone()[0] == 100


@pytest.mark.parametrize(
    ("revoked", "failing", "message"),
    [("CREATE", "upgrade", "permission denied for database"), ("TEMPORARY", "run", "temporary tables")],
)
def test_each_grant_is_needed(etl_role: str, tmp_path: Path, revoked: str, failing: str, message: str) -> None:
    if failing == "run":
        assert etl("db", "upgrade").exit_code == 0
    with psycopg.connect(etl_role, autocommit=True) as admin:
        admin.execute(sql.SQL("REVOKE {} ON DATABASE fintech FROM etl").format(sql.SQL(revoked)))
    if failing == "upgrade":
        result = etl("db", "upgrade")
        assert result.exit_code == 2 and message in result.output, result.output
        return
    day1 = generate("transactions", DAY1, rows=20, seed=5, out_dir=tmp_path / "src")
    result = etl("run", day1, "--json")
    assert result.exit_code == 1, result.output
    assert message in result.output, result.output
    ledger = json.loads(etl("status", "--json").stdout)["files"]
    assert [row["status"] for row in ledger] == ["FAILED"]
    with psycopg.connect(etl_role) as admin:
        assert admin.execute("SELECT count(*) FROM fintech.transactions").fetchone()[0] == 0


def test_the_etl_role_fixture_parameter_is_the_restricted_role(restricted_db_url: str) -> None:
    """What ``@pytest.mark.parametrize(..., ["superuser", "etl-role"], indirect=True)`` runs db and pipeline
    tests as (tests/conftest.py ``database_as``)."""
    with psycopg.connect(restricted_db_url) as conn:
        user, superuser, createdb = conn.execute(
            "SELECT current_user, rolsuper, rolcreatedb FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'file_ledger'").fetchone()[0]
    assert user.endswith("_etl") and not superuser and not createdb and owner == user
