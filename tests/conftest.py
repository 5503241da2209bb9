"""Shared fixtures: one real PostgreSQL cluster per test session, a fresh database per test.

``pg_url``        session: URL of the cluster's ``postgres`` database (``ETL_TEST_PG_URL``: reuse a server).
``pg_server_log`` session: the cluster's server log file (``ETL_TEST_PG_LOG`` with ``ETL_TEST_PG_URL``).
``migrated_template`` session: name of a database with every migration applied, used as a template.
``db_url``        function: URL of a fresh, fully migrated database (CREATE DATABASE ... TEMPLATE: fast).
``empty_db_url``  function: URL of a fresh database with no migrations.
``restricted_db_url`` function: a fresh migrated database as a role with only the documented grants.
``tls_server``    session: a second cluster that accepts TCP connections only over TLS, its certificate
                  from a test CA (tests/tls.py), started only when a test asks for it.
``tls_db_name``   function: a fresh migrated database on ``tls_server``.
``etl_env``       function: the ``ETL_*`` environment of ``etl`` on a fresh migrated database (tests/environment.py);
                  parametrise it ``["superuser", "etl-role"]`` (indirect) to run as the documented role.
``aws_env``       function: fake credentials and a region for moto, so boto3 never reaches a real account.
``spark``         session: ONE local SparkSession for every suite that needs one (no skip when Java or
                  Spark is missing: the fixture then fails, and so does CI).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings

from tests import pg
from tests.environment import FAKE_AWS, EtlEnv

# Property tests draw the same examples on every run and on every machine (derandomize: the examples follow from
# each test's own code), so a red run is red again when repeated. ``HYPOTHESIS_PROFILE=explore`` draws new
# examples each run (and keeps failures in .hypothesis/) for a deliberate hunt for new cases.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pg.Cluster | None]:
    if os.environ.get("ETL_TEST_PG_URL"):
        yield None
        return
    with pg.running_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def pg_url(pg_cluster: pg.Cluster | None) -> str:
    return pg_cluster.url() if pg_cluster is not None else os.environ["ETL_TEST_PG_URL"]


@pytest.fixture(scope="session")
def pg_server_log(pg_cluster: pg.Cluster | None) -> Path:
    """The PostgreSQL server log of the test cluster (what Aurora would ship to CloudWatch)."""
    if pg_cluster is not None:
        return pg_cluster.log
    if not os.environ.get("ETL_TEST_PG_LOG"):
        pytest.fail("with ETL_TEST_PG_URL, set ETL_TEST_PG_LOG to that server's log file")
    return Path(os.environ["ETL_TEST_PG_LOG"])


@pytest.fixture(scope="session")
def migrated_template(pg_url: str) -> Iterator[str]:
    from etl.db import migrate

    name = pg.create_database(pg_url)
    with psycopg.connect(pg.database_url(pg_url, name), autocommit=True) as conn:
        migrate.upgrade(conn)
    yield name
    pg.drop_database(pg_url, name)


def _fresh(pg_url: str, template: str | None) -> Iterator[str]:
    name = pg.create_database(pg_url, template=template)
    yield pg.database_url(pg_url, name)
    pg.drop_database(pg_url, name)


@pytest.fixture
def db_url(pg_url: str, migrated_template: str) -> Iterator[str]:
    yield from _fresh(pg_url, migrated_template)


@pytest.fixture
def empty_db_url(pg_url: str) -> Iterator[str]:
    yield from _fresh(pg_url, None)


@pytest.fixture
def restricted_db_url(pg_url: str) -> Iterator[str]:
    """URL of a fresh database migrated by, and reached as, a NOSUPERUSER role with only the grants of
    docs/deploy.md §4 (PUBLIC's database defaults revoked)."""
    from tests.restricted_role import restricted_database

    yield from restricted_database(pg_url)


def database_as(request: pytest.FixtureRequest) -> str:
    """``db_url``, or ``restricted_db_url`` when a test parametrises its fixture with ``"etl-role"``
    (``@pytest.mark.parametrize("conn", ["superuser", "etl-role"], indirect=True)``)."""
    role = getattr(request, "param", "superuser")
    return request.getfixturevalue("restricted_db_url" if role == "etl-role" else "db_url")


@pytest.fixture(scope="session")
def tls_server():
    from tests.tls import running_tls_server

    with running_tls_server() as server:
        yield server


@pytest.fixture
def tls_db_name(tls_server) -> Iterator[str]:
    from etl.db import migrate

    name = pg.create_database(tls_server.admin_url())
    with psycopg.connect(tls_server.admin_url(name), autocommit=True) as conn:
        migrate.upgrade(conn)
    yield name
    pg.drop_database(tls_server.admin_url(), name)


@pytest.fixture
def etl_env(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EtlEnv:
    """``etl`` pointed at this test only: ``ETL_HOME`` under ``tmp_path``, a fresh migrated database (as the
    superuser, or with ``"etl-role"`` as the role with only the documented grants), the test PAN key, and no
    other ``ETL_*`` variable from the developer's shell. The pipeline, AWS and notebook fixtures build on it."""
    env = EtlEnv(tmp_path / "home", database_as(request))
    env.apply(monkeypatch)
    return env


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region so boto3 can never reach a real account."""
    for name, value in FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _java_home() -> None:
    if not os.environ.get("JAVA_HOME"):
        java = shutil.which("java")
        if java is None:
            raise RuntimeError("Java is required for the Spark tests (install openjdk 17)")
        os.environ["JAVA_HOME"] = str(Path(java).resolve().parent.parent)


@pytest.fixture(scope="session")
def spark():
    _java_home()
    from etl.spark.engine import spark_session

    session = spark_session("fintech-etl-tests")
    yield session
    session.stop()
