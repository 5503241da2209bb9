"""Runtime settings from ``ETL_*`` environment variables (pydantic-settings), with local defaults."""

from __future__ import annotations

import re
from enum import StrEnum
from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from etl.errors import ConfigError

ZONES = ("landing", "raw", "stage", "archive", "error")
# S3 bucket naming rules: 3-63 of lower-case letters, digits, dots and hyphens, a letter or digit at each end
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", re.ASCII)


class SslMode(StrEnum):
    """libpq's ``sslmode`` values (``ETL_DB_SSLMODE``): only ``verify-full`` checks both who signed the server's
    certificate and that it names the host connected to; the deployed functions use it (docs/deploy.md §3)."""

    DISABLE = "disable"
    ALLOW = "allow"
    PREFER = "prefer"
    REQUIRE = "require"
    VERIFY_CA = "verify-ca"
    VERIFY_FULL = "verify-full"

    @property
    def verifies(self) -> bool:
        """True when libpq checks the server's certificate against a CA (and so needs one)."""
        return self in (SslMode.VERIFY_CA, SslMode.VERIFY_FULL)


def check_zone_uri(uri: str) -> str:
    """A zone is ``s3://bucket[/prefix]``, ``file:///path`` or a plain folder path; anything else is refused
    when the settings load, so a typo is a configuration error before any file moves."""
    if uri.startswith("s3://"):
        bucket = uri[5:].partition("/")[0]
        if not _BUCKET.fullmatch(bucket):
            raise ValueError("an S3 zone is s3://bucket[/prefix] with a valid bucket name")
    elif "://" in uri and not uri.startswith("file://"):
        raise ValueError("a zone is a folder path, file:///path or s3://bucket[/prefix]")
    elif not uri.removeprefix("file://") or "\0" in uri:
        raise ValueError("a zone needs a folder path")
    return uri


class Settings(BaseSettings):
    """Where zones and the database are, and the keys the pipeline needs.

    Zones default to folders under ``ETL_HOME``; each may be overridden with a URI such as
    ``s3://bucket/prefix`` (``ETL_LANDING_URI``, ``ETL_RAW_URI``, ...).
    """

    model_config = SettingsConfigDict(env_prefix="ETL_", extra="ignore")

    home: Path = Path(".etl")
    landing_uri: str | None = None
    raw_uri: str | None = None
    stage_uri: str | None = None
    archive_uri: str | None = None
    error_uri: str | None = None

    database_url: SecretStr | None = None
    db_secret_id: str | None = None
    # The cluster's master secret (username, password): only the stack's migrate function has it, to create
    # the etl role and grant it (etl.db.grants) before migrating as that role.
    db_master_secret_id: str | None = None

    # How connections to a configured database (URL or secret, never the embedded server on its Unix socket)
    # are secured and bounded (etl.db.tls, etl.db.limits; docs/design.md §7). sslmode unset: what the URL says,
    # else libpq's default. The CA: a PEM file, "rds" (the Amazon RDS bundle shipped in the package) or
    # "system" (the OS trust store).
    db_sslmode: SslMode | None = None
    db_sslrootcert: str | None = None
    db_connect_timeout_s: int = Field(default=10, ge=2)  # libpq: 2 s is the least it honours
    db_lock_timeout_s: float = Field(default=30, gt=0)  # a load blocked this long by another session's lock

    pan_key: SecretStr | None = None
    pan_key_secret_id: str | None = None

    sns_topic_arn: str | None = None
    state_machine_arn: str | None = None
    large_file_threshold_bytes: int = Field(default=50 << 20, ge=0)  # larger files go to the Glue job
    block_size: int = Field(default=3 << 20, ge=64 << 10)  # 3 MiB: 10M rows validate in < 512 MiB

    # Drift warnings after a load (docs/design.md §9): the file's day against the feed's trailing window.
    drift_window_days: int = Field(default=14, ge=1)  # calendar days before the business date
    drift_min_days: int = Field(default=5, ge=1)  # fewer loaded days than this: no baseline, no warning
    drift_rows_margin: float = Field(default=0.3, ge=0)  # rows_in outside median × (1 ± this)
    drift_reject_margin: float = Field(default=0.02, ge=0)  # reject rate above median + this (0.02 = 2 points)

    @field_validator("landing_uri", "raw_uri", "stage_uri", "archive_uri", "error_uri")
    @classmethod
    def _zone_uri(cls, value: str | None) -> str | None:
        return None if value is None else check_zone_uri(value)

    def zone_uri(self, zone: str) -> str:
        """URI of a zone: the override if set, else a folder under ``home``."""
        if zone not in ZONES:
            raise ValueError(f"unknown zone {zone!r}; zones are {', '.join(ZONES)}")
        override = getattr(self, f"{zone}_uri")
        return override or str((self.home / zone).resolve())

    @cached_property
    def zones(self) -> dict[str, str]:
        return {zone: self.zone_uri(zone) for zone in ZONES}

    def remote_parts(self) -> list[str]:
        """The variables that take this run off the machine (S3 zones, an external database, SNS); empty when
        everything is local. Only an all-local run may use the built-in development PAN key."""
        parts = [
            f"ETL_{zone.upper()}_URI"
            for zone in ZONES
            if "://" in (getattr(self, f"{zone}_uri") or "") and not getattr(self, f"{zone}_uri").startswith("file://")
        ]
        if self.database_url is not None:
            parts.append("ETL_DATABASE_URL")
        if self.db_secret_id:
            parts.append("ETL_DB_SECRET_ID")
        if self.sns_topic_arn:
            parts.append("ETL_SNS_TOPIC_ARN")
        return parts


def get_settings() -> Settings:
    """Fresh settings from the environment (cheap; tests change the environment between calls).

    An invalid variable is a :class:`ConfigError` naming each variable and what is wrong with it, never the
    value (it may be a secret: pydantic's own message would quote it).
    """
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"ETL_{'_'.join(map(str, e['loc'])).upper()}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
