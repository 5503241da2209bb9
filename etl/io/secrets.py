"""Secrets at the edge: the PAN key from the environment or AWS Secrets Manager.

Key material is never logged or put in exception messages; only where it came from is.
"""

from __future__ import annotations

import json
import logging
import warnings

from etl.config import Settings
from etl.errors import ConfigError

log = logging.getLogger(__name__)

DEV_PAN_KEY = b"fintech-etl-local-development-pan-key-NOT-FOR-PRODUCTION"
DEV_KEY_WARNING = (
    "no ETL_PAN_KEY or ETL_PAN_KEY_SECRET_ID: card tokens use the built-in development key, allowed only "
    "because everything is local (embedded database, local zones, no SNS); its tokens are not secret"
)


class DevKeyWarning(UserWarning):
    """The built-in development PAN key is in use (a one-line warning; only ever for an all-local run)."""


class MissingPanKeyError(ConfigError):
    """No PAN key is configured and the run is not all-local: the built-in key is refused."""


class SecretError(ConfigError):
    """A secret could not be read or has an unexpected shape (the message never holds the value)."""


def secret_string(secret_id: str) -> str:
    """The ``SecretString`` of a Secrets Manager secret (boto3 honours ``AWS_ENDPOINT_URL``)."""
    import boto3

    try:
        response = boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)
    except Exception as exc:
        raise SecretError(f"cannot read secret {secret_id!r}: {type(exc).__name__}") from exc
    value = response.get("SecretString")
    if not value:
        raise SecretError(f"secret {secret_id!r} has no SecretString")
    return value


def _key_from_secret(value: str, secret_id: str) -> bytes:
    """A plain SecretString is the key; a JSON object carries it under ``pan_key``."""
    text = value.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SecretError(f"secret {secret_id!r} looks like JSON but does not parse") from exc
        key = data.get("pan_key") if isinstance(data, dict) else None
        if not isinstance(key, str) or not key:
            raise SecretError(f"secret {secret_id!r} is a JSON object without a non-empty 'pan_key'")
        return key.encode()
    return value.encode()


def pan_key(settings: Settings, *, deployed: bool = False) -> bytes:
    """The HMAC key for card tokens: ``ETL_PAN_KEY``, else the Secrets Manager secret, else the dev key.

    The built-in key is public (it is in this file), so a token made with it is reversed from the BIN and
    last four digits in seconds. It is only used when everything stays on this machine (embedded database,
    local zones, no SNS) and the caller is not a deployed component (``deployed``: the Lambda handlers and
    the Glue job, which are never local); otherwise a missing key is a :class:`MissingPanKeyError`.
    """
    if settings.pan_key is not None and settings.pan_key.get_secret_value():
        log.info("PAN key from ETL_PAN_KEY")
        return settings.pan_key.get_secret_value().encode()
    if settings.pan_key_secret_id:
        log.info("PAN key from Secrets Manager secret %s", settings.pan_key_secret_id)
        return _key_from_secret(secret_string(settings.pan_key_secret_id), settings.pan_key_secret_id)
    remote = ["a deployed Lambda or Glue job"] if deployed else settings.remote_parts()
    if remote:
        raise MissingPanKeyError(
            "no ETL_PAN_KEY or ETL_PAN_KEY_SECRET_ID: the built-in development key is only for an all-local run, "
            f"and this one uses {', '.join(remote)}"
        )
    # One channel only: a warning shows once on the CLI's stderr (one line, see etl.cli.common), in a
    # notebook and in a log, and can be filtered like any Python warning.
    warnings.warn(DEV_KEY_WARNING, DevKeyWarning, stacklevel=2)
    return DEV_PAN_KEY
