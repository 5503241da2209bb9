"""Glue job plumbing kept out of the entry script: arguments, business date, PAN key."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence

from etl.config import get_settings
from etl.io.secrets import pan_key

# Glue passes ``--name value``; ``getResolvedOptions`` wants the names with underscores. These are the names
# state_machine.yml (per run) and template.yml (DefaultArguments) use; ``--source_uri`` maps to ``source``.
REQUIRED_ARGS = ("feed", "source_uri", "stage_uri", "business_date", "execution_name")
OPTIONAL_ARGS = ("pan_key_secret_id",)


def job_arguments(argv: Sequence[str]) -> dict[str, str | None]:
    """``run_job``'s keyword arguments from the job's command line; Glue's resolver when present.

    ``argv`` is the full ``sys.argv`` (program name first); unknown arguments (Glue adds its own, and the
    state machine passes ``--sha256``, the template ``--error_uri``) are ignored.
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
    arguments = {name: resolved.get(name) for name in (*REQUIRED_ARGS, *OPTIONAL_ARGS)}
    arguments["source"] = arguments.pop("source_uri")
    return arguments


def parse_business_date(value: str | dt.date) -> dt.date:
    """``YYYY-MM-DD`` or ``YYYYMMDD`` (or a date) -> date."""
    if isinstance(value, dt.date):
        return value
    text = value.strip()
    return dt.datetime.strptime(text, "%Y%m%d").date() if text.isdigit() else dt.date.fromisoformat(text)


def resolve_pan_key(secret_id: str | None = None) -> bytes:
    """The card-token key: the job's ``--pan_key_secret_id`` when given, else the usual settings."""
    settings = get_settings()
    if secret_id:
        settings = settings.model_copy(update={"pan_key": None, "pan_key_secret_id": secret_id})
    return pan_key(settings, deployed=True)  # the Glue job is never local: no development key
