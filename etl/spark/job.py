"""Glue job plumbing kept out of the entry script: arguments, business date, PAN key, lineage values."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass

from etl.config import get_settings

REQUIRED_ARGS = ("feed", "source", "stage-uri", "business-date", "execution-name")
OPTIONAL_ARGS = ("pan-key-secret-id",)
SECRET_JSON_KEYS = ("pan_key", "key")


@dataclass(frozen=True)
class StageLineage:
    """Lineage values stamped on every staged row of one file."""

    business_date: dt.date
    source_file: str
    execution_name: str
    loaded_at: dt.datetime


def job_arguments(argv: Sequence[str]) -> dict[str, str | None]:
    """Job arguments as keyword names (``--stage-uri`` -> ``stage_uri``); Glue's resolver when present.

    ``argv`` is the full ``sys.argv`` (program name first); unknown arguments (Glue adds its own) are ignored.
    """
    present = [name for name in OPTIONAL_ARGS if f"--{name}" in argv]
    try:
        from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]
    except ImportError:
        parser = argparse.ArgumentParser(prog="transform_job", description="Transform one raw file to stage.")
        for name in REQUIRED_ARGS:
            parser.add_argument(f"--{name}", required=True)
        for name in OPTIONAL_ARGS:
            parser.add_argument(f"--{name}", default=None)
        resolved = vars(parser.parse_known_args(list(argv[1:]))[0])
    else:
        resolved = getResolvedOptions(list(argv), [*REQUIRED_ARGS, *present])
    names = [*REQUIRED_ARGS, *OPTIONAL_ARGS]
    return {n.replace("-", "_"): resolved.get(n.replace("-", "_"), resolved.get(n)) for n in names}


def parse_business_date(value: str | dt.date) -> dt.date:
    """``YYYY-MM-DD`` or ``YYYYMMDD`` (or a date) -> date."""
    if isinstance(value, dt.date):
        return value
    text = value.strip()
    return dt.datetime.strptime(text, "%Y%m%d").date() if text.isdigit() else dt.date.fromisoformat(text)


def resolve_pan_key(secret_id: str | None = None) -> bytes:
    """The card-token key: a Secrets Manager secret (raw string, or JSON with ``pan_key``) or ``ETL_PAN_KEY``.

    There is no default here: the Glue job must never tokenise with a made-up key.
    """
    secret_id = secret_id or get_settings().pan_key_secret_id
    if secret_id:
        import boto3

        secret = boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)
        if "SecretBinary" in secret:
            return bytes(secret["SecretBinary"])
        return _key_from_secret_string(secret["SecretString"])
    key = get_settings().pan_key
    if key is None:
        raise ValueError("no PAN key: pass --pan-key-secret-id or set ETL_PAN_KEY / ETL_PAN_KEY_SECRET_ID")
    return key.get_secret_value().encode("utf-8")


def _key_from_secret_string(text: str) -> bytes:
    try:
        data = json.loads(text)
    except ValueError:
        return text.encode("utf-8")
    if isinstance(data, dict):
        for name in SECRET_JSON_KEYS:
            if isinstance(data.get(name), str):
                return data[name].encode("utf-8")
        raise ValueError("PAN key secret is JSON without a 'pan_key' string")
    return text.encode("utf-8")
