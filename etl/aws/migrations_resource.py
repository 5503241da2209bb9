"""``Custom::DatabaseMigrations``: the stack applies the packaged migrations itself, on every deploy that
changes them (docs/deploy.md §4).

CloudFormation sends Create/Update/Delete to the migrate function and then waits for one JSON document PUT to
the request's pre-signed ``ResponseURL``: no answer keeps the stack waiting for an hour. So :func:`handle`
answers every request, whatever happens (a request its Powertools model refuses too, before any work):
SUCCESS, or FAILED with a one-line reason (which CloudFormation shows
in the stack events, so it never carries the password or the event's signed URL), and it answers FAILED itself
before the function's own timeout when the database does not finish in time.

- Create / Update: ``etl.db.migrate.upgrade`` as the ``etl`` role from the database secret. Migrations are
  idempotent (each recorded once), so an Update re-run whose set did not change applies nothing.
- Delete: nothing. Dropping the database's data with the stack would be a disaster waiting for a typo;
  the data outlives the stack as the retained buckets do.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from etl.errors import ConfigError, EtlError

log = logging.getLogger(__name__)

SUCCESS, FAILED = "SUCCESS", "FAILED"
#: Time kept back from the function's timeout to send the answer (the PUT itself, with its own timeout).
ANSWER_MARGIN_S = 20.0
PUT_TIMEOUT_S = 15.0
#: CloudFormation limits the whole response body to 4096 bytes; the reason is cut well below that.
REASON_LIMIT = 1000

Upgrade = Callable[[], list[str]]


@dataclass
class Outcome:
    """What the function answers CloudFormation."""

    status: str
    reason: str = ""
    data: dict[str, str] = field(default_factory=dict)


def database_upgrade() -> list[str]:
    """Bootstrap the ``etl`` role with the master secret (when ``ETL_DB_MASTER_SECRET_ID`` is set), then apply
    pending migrations as that role (``ETL_DB_SECRET_ID``), so it owns what they create. Both connections
    are opened by ``etl.db.connect`` with the functions' TLS settings (``verify-full`` on AWS)."""
    from psycopg.conninfo import make_conninfo

    from etl.config import get_settings
    from etl.db import connect, grants, migrate
    from etl.io.secrets import secret_string

    settings = get_settings()
    if settings.db_master_secret_id:
        if not settings.db_secret_id:
            raise ConfigError("ETL_DB_MASTER_SECRET_ID needs ETL_DB_SECRET_ID (the role to create)")
        target = json.loads(secret_string(settings.db_secret_id))
        master = json.loads(secret_string(settings.db_master_secret_id))
        dbname = target.get("dbname") or "postgres"
        admin_at = make_conninfo(
            host=target["host"],
            port=str(target.get("port") or 5432),
            dbname=dbname,
            user=master["username"],
            password=master["password"],
        )
        location = connect.Location(admin_at, "secret", settings.db_master_secret_id)
        with connect.connect(settings, location=location) as admin:
            grants.bootstrap_role(admin, target["username"], target["password"], dbname)
    with connect.connect(settings) as conn:
        return migrate.upgrade(conn)


def physical_id(event: dict[str, Any]) -> str:
    """The id CloudFormation already knows, else one per stack and logical id (stable across updates, so an
    update never looks like a replacement that would Delete the old resource)."""
    if event.get("PhysicalResourceId"):
        return str(event["PhysicalResourceId"])
    stack = str(event.get("StackId", "stack")).split("/")[1:2] or ["stack"]
    return f"{stack[0]}-{event.get('LogicalResourceId', 'DatabaseMigrations')}"


def one_line(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """``Type: first line`` of an error, with any known secret value blanked, cut to :data:`REASON_LIMIT`."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[:REASON_LIMIT]


def _known_secrets() -> tuple[str, ...]:
    """The passwords, when they can be read, so no error text can carry one to the stack events."""
    from etl.config import get_settings
    from etl.io.secrets import secret_string

    settings = get_settings()
    found = []
    for secret_id in (settings.db_secret_id, settings.db_master_secret_id):
        try:
            if secret_id:
                found.append(str(json.loads(secret_string(secret_id)).get("password", "")))
        except Exception:  # the secret's own failure is what the upgrade reports
            continue
    return tuple(found)


def run_with_deadline(upgrade: Upgrade, deadline_s: float) -> Outcome:
    """Run ``upgrade`` in a worker thread; FAILED when it raises or is still running at ``deadline_s``.

    Each migration commits in its own transaction, so one cut off by the function's end rolls back when its
    connection drops and the next deploy applies it again.
    """
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            result["applied"] = upgrade()
        except BaseException as exc:  # reported as FAILED, never re-raised into a silent thread death
            result["error"] = exc

    worker = threading.Thread(target=work, name="migrations", daemon=True)
    worker.start()
    worker.join(max(deadline_s, 0.0))
    if worker.is_alive():
        return Outcome(FAILED, f"migrations still running after {deadline_s:.0f} s; raise the function's timeout")
    if "error" in result:
        reason = one_line(result["error"], _known_secrets())
        log.error("migrations failed: %s", reason)
        return Outcome(FAILED, reason)
    applied = result["applied"]
    reason = f"applied {', '.join(applied)}" if applied else "up to date"
    return Outcome(SUCCESS, reason, {"Applied": ",".join(applied), "Count": str(len(applied))})


def respond(event: dict[str, Any], outcome: Outcome) -> None:
    """PUT the answer to ``ResponseURL`` (content type empty: the URL is signed without one)."""
    body = json.dumps(
        {
            "Status": outcome.status,
            "Reason": outcome.reason or outcome.status,
            "PhysicalResourceId": physical_id(event),
            "StackId": event.get("StackId", ""),
            "RequestId": event.get("RequestId", ""),
            "LogicalResourceId": event.get("LogicalResourceId", ""),
            "NoEcho": False,
            "Data": outcome.data,
        }
    ).encode("utf-8")
    request = urllib.request.Request(
        event["ResponseURL"],
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    with urllib.request.urlopen(request, timeout=PUT_TIMEOUT_S) as response:
        response.read()


def _check_request(event: dict[str, Any]) -> None:
    """The request as CloudFormation sends it (its Powertools model), or a one-line ``EventError``."""
    from aws_lambda_powertools.utilities.parser.models import (
        CloudFormationCustomResourceCreateModel,
        CloudFormationCustomResourceDeleteModel,
        CloudFormationCustomResourceUpdateModel,
    )

    from etl.aws.events import parsed

    models = {
        "Create": CloudFormationCustomResourceCreateModel,
        "Update": CloudFormationCustomResourceUpdateModel,
        "Delete": CloudFormationCustomResourceDeleteModel,
    }
    kind = event.get("RequestType")
    if kind in models:
        parsed(models[kind], event, f"CloudFormation {kind} request")


def handle(event: dict[str, Any], context: Any, upgrade: Upgrade = database_upgrade) -> Outcome:
    """Answer one custom-resource request; returns what was sent. Never raises before the answer is sent."""
    kind = event.get("RequestType")
    try:
        _check_request(event)
        if kind == "Delete":
            outcome = Outcome(SUCCESS, "migrations are not rolled back: the database keeps its schema and data")
        elif kind in ("Create", "Update"):
            remaining_s = context.get_remaining_time_in_millis() / 1000 if context is not None else 300.0
            outcome = run_with_deadline(upgrade, remaining_s - ANSWER_MARGIN_S)
        else:
            outcome = Outcome(FAILED, f"unknown RequestType {kind!r}")
    except Exception as exc:  # a malformed event or context: still answer
        outcome = Outcome(FAILED, one_line(exc))
    log.info("%s %s: %s %s", event.get("LogicalResourceId"), kind, outcome.status, outcome.reason)
    try:
        respond(event, outcome)
    except Exception as exc:
        # Nothing else can tell CloudFormation; the error names no URL (it is signed) and reaches the logs.
        raise MigrationsResponseError(f"could not answer CloudFormation: {type(exc).__name__}") from None
    return outcome


class MigrationsResponseError(EtlError):
    """The answer to CloudFormation could not be delivered (it will time out the resource)."""
