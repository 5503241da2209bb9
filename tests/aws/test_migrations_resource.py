"""``Custom::DatabaseMigrations``: the real handler (``etl/aws/handlers/migrate.py``) against a real PostgreSQL
that checks passwords, secrets in (moto) Secrets Manager, and a local HTTP server standing in for the
pre-signed ``ResponseURL`` that CloudFormation waits on.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws
from psycopg import sql
from psycopg.conninfo import make_conninfo

from etl.aws import migrations_resource
from etl.db import migrate
from etl.package_data import handlers_dir
from tests import pg, restricted_role
from tests.tls import TlsServer

ROLE_PASSWORD = "migrate-test-role-pw-Xy7"
MASTER_PASSWORD = "migrate-test-master-pw-Qw3"
SIGNATURE = "X-Amz-Signature=deadbeefcafe"
EVENTS = Path(__file__).parent / "events"


@dataclass
class Responses:
    """What CloudFormation's side received: one entry per PUT (path, headers, JSON body)."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def response_server() -> Iterator[Responses]:
    responses = Responses("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            responses.received.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # keep the test output quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    responses.url = f"http://127.0.0.1:{server.server_address[1]}/cfn-response/abc?{SIGNATURE}"
    yield responses
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def cluster() -> Iterator[pg.Cluster]:
    with restricted_role.password_cluster() as running:
        yield running


def stack_secrets(target: dict[str, Any], role: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stack's database secret (RDS format) for ``target`` as ``role``, the cluster's master secret, and
    the function's environment naming them (inside ``mock_aws``)."""
    client = boto3.client("secretsmanager")
    secret = {"engine": "postgres", **target, "username": role, "password": ROLE_PASSWORD}
    database = client.create_secret(Name="fintech-etl/database", SecretString=json.dumps(secret))
    master = client.create_secret(
        Name="rds!cluster-test", SecretString=json.dumps({"username": "postgres", "password": MASTER_PASSWORD})
    )
    for name in ("ETL_DATABASE_URL", "ETL_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ETL_DB_SECRET_ID", database["ARN"])
    monkeypatch.setenv("ETL_DB_MASTER_SECRET_ID", master["ARN"])


@pytest.fixture
def stack_env(cluster: pg.Cluster, aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A locked database, the stack's two secrets in Secrets Manager and the function's environment; yields
    the administrator URL of the database."""
    admin_url = restricted_role.locked_database(cluster)
    with mock_aws():
        target = {"host": "127.0.0.1", "port": cluster.port, "dbname": restricted_role.DATABASE}
        stack_secrets(target, restricted_role.ROLE, monkeypatch)
        yield admin_url
    restricted_role.drop(cluster)


class Context:
    function_name = "fintech-etl-migrate"

    def __init__(self, remaining_s: float = 300.0) -> None:
        self._deadline = time.monotonic() + remaining_s

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


def event(kind: str, url: str, physical_id: str | None = None) -> dict[str, Any]:
    """The captured Create request (``tests/aws/events/``) as CloudFormation sends ``kind``, answering to ``url``."""
    found = json.loads((EVENTS / "cloudformation-create.json").read_text())
    found.update(RequestType=kind, ResponseURL=url, RequestId=f"request-{kind}")
    if physical_id:
        found["PhysicalResourceId"] = physical_id
    return found


def entry_point():
    """The deployed handler module, loaded from the packaged handlers folder as Lambda loads it."""
    spec = importlib.util.spec_from_file_location("migrate", handlers_dir() / "migrate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def test_create_update_delete(stack_env: str, response_server: Responses) -> None:
    handler = entry_point()
    assert handler(event("Create", response_server.url), Context()) == "SUCCESS"
    (created,) = response_server.received
    body = created["body"]
    assert body["Status"] == "SUCCESS", body
    shipped = [m.name for m in migrate.available()]
    assert body["Data"] == {"Applied": ",".join(shipped), "Count": str(len(shipped))}
    assert (body["RequestId"], body["LogicalResourceId"]) == ("request-Create", "DatabaseMigrations")
    assert body["StackId"].endswith("stack/fintech-etl/271845b0-f2e8-11ed-90ac-0eeb25b8ae21")
    assert body["PhysicalResourceId"]
    assert created["headers"]["Content-Type"] == "" and created["path"].endswith(SIGNATURE)
    # The role exists with the secret's password and owns what the migrations created.
    with psycopg.connect(make_conninfo(stack_env, user="etl", password=ROLE_PASSWORD)) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "etl"
    assert set(restricted_role.ownership(stack_env)) == {"etl"}

    physical = body["PhysicalResourceId"]
    assert handler(event("Update", response_server.url, physical), Context()) == "SUCCESS"
    updated = response_server.received[1]["body"]
    assert updated["Data"]["Count"] == "0" and updated["Reason"] == "up to date"
    assert updated["PhysicalResourceId"] == physical  # the same resource: no replacement, no Delete

    assert handler(event("Delete", response_server.url, physical), Context()) == "SUCCESS"
    assert response_server.received[2]["body"]["Status"] == "SUCCESS"
    with psycopg.connect(stack_env) as conn:  # nothing dropped
        assert conn.execute("SELECT count(*) FROM etl.schema_migrations").fetchone()[0] == len(migrate.available())


def test_a_failure_answers_failed_with_one_line_and_no_secret(
    stack_env: str,
    response_server: Responses,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    invocation_log,
) -> None:
    client = boto3.client("secretsmanager")
    secret = json.loads(client.get_secret_value(SecretId="fintech-etl/database")["SecretString"])
    client.put_secret_value(SecretId="fintech-etl/database", SecretString=json.dumps(secret | {"dbname": "nope"}))
    caplog.set_level(logging.DEBUG, logger="etl")  # what the function logs (botocore debug is off on Lambda)
    assert entry_point()(event("Create", response_server.url), Context()) == "FAILED"
    (answer,) = response_server.received
    reason = answer["body"]["Reason"]
    assert answer["body"]["Status"] == "FAILED" and "nope" in reason and "\n" not in reason
    printed = capsys.readouterr()
    [logged] = invocation_log()  # the invocation's one line: the request, its outcome, not the event
    assert (logged["request"], logged["outcome"], logged["keys"]) == ("Create DatabaseMigrations", "ok", [])
    everything = reason + caplog.text + printed.out + printed.err + json.dumps(logged)
    for secret_text in (ROLE_PASSWORD, MASTER_PASSWORD, SIGNATURE):
        assert secret_text not in everything
    assert "***" in migrations_resource.one_line(RuntimeError(f"bad {ROLE_PASSWORD}"), (ROLE_PASSWORD,))


def test_a_migration_that_cannot_finish_answers_failed_before_the_timeout(
    stack_env: str, response_server: Responses
) -> None:
    with psycopg.connect(stack_env, autocommit=True) as blocker:
        blocker.execute("SELECT pg_advisory_lock(%s)", (migrate._LOCK_KEY,))  # another upgrade holds the lock
        started = time.monotonic()
        outcome = migrations_resource.handle(
            event("Create", response_server.url), Context(migrations_resource.ANSWER_MARGIN_S + 2)
        )
        elapsed = time.monotonic() - started
    assert outcome.status == "FAILED" and "still running" in outcome.reason
    assert elapsed < 10 and response_server.received[0]["body"]["Status"] == "FAILED"


def test_unknown_request_and_unreachable_url(stack_env: str, response_server: Responses) -> None:
    assert migrations_resource.handle(event("Rotate", response_server.url), Context()).status == "FAILED"
    assert "unknown RequestType" in response_server.received[0]["body"]["Reason"]
    with pytest.raises(migrations_resource.MigrationsResponseError) as failure:
        migrations_resource.handle(event("Delete", f"http://127.0.0.1:9/x?{SIGNATURE}"), Context())
    assert SIGNATURE not in str(failure.value)


@pytest.fixture
def tls_stack_env(tls_server: TlsServer, aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The stack's secrets for a database on the TLS-only server, by the name its certificate carries, and the
    function's TLS settings as the template gives them (verify-full; the test CA instead of the RDS bundle)."""
    name = pg.create_database(tls_server.admin_url())
    role = f"{name}_etl"
    with mock_aws():
        stack_secrets({"host": "localhost", "port": tls_server.port, "dbname": name}, role, monkeypatch)
        monkeypatch.setenv("ETL_DB_SSLMODE", "verify-full")
        monkeypatch.setenv("ETL_DB_SSLROOTCERT", str(tls_server.ca))
        yield name
    pg.drop_database(tls_server.admin_url(), name)
    with psycopg.connect(tls_server.admin_url(), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_migrations_over_verified_tls_and_a_wrong_ca_answers_failed_in_one_line(
    tls_stack_env: str, tls_server: TlsServer, response_server: Responses, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both of the function's connections (master to create the role, the role to migrate) go through
    verify-full: the server accepts TCP only over TLS. With the wrong CA the answer is FAILED, one line
    naming the database (no password), and the stack event says why."""
    handler = entry_point()
    assert handler(event("Create", response_server.url), Context()) == "SUCCESS"
    assert response_server.received[0]["body"]["Data"]["Count"] == str(len(migrate.available()))
    assert set(restricted_role.ownership(tls_server.admin_url(tls_stack_env))) == {f"{tls_stack_env}_etl"}

    monkeypatch.setenv("ETL_DB_SSLROOTCERT", str(tls_server.wrong_ca))
    assert handler(event("Update", response_server.url, "physical-id"), Context()) == "FAILED"
    reason = response_server.received[1]["body"]["Reason"]
    assert reason.startswith(
        f"DatabaseTlsError: cannot connect to postgresql://postgres@localhost:{tls_server.port}/{tls_stack_env} "
        "(secret arn:aws:secretsmanager:"
    )
    assert reason.endswith(
        f"over TLS (sslmode=verify-full): the server's certificate is not signed by a CA in {tls_server.wrong_ca}"
    )
    assert MASTER_PASSWORD not in reason and ROLE_PASSWORD not in reason and "\n" not in reason


def test_a_malformed_request_answers_failed_naming_the_field_and_runs_nothing(response_server: Responses) -> None:
    request = event("Create", response_server.url)
    del request["ResourceType"]
    ran = []
    outcome = migrations_resource.handle(request, Context(), upgrade=lambda: ran.append(1) or [])
    assert outcome.status == "FAILED" and ran == []
    reason = response_server.received[0]["body"]["Reason"]
    assert reason.startswith("EventError: malformed CloudFormation Create request: ResourceType: Field required")
    assert SIGNATURE not in reason and "\n" not in reason
