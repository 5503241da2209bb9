"""Runtime settings from ``ETL_*`` environment variables (pydantic-settings), with local defaults."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ZONES = ("landing", "raw", "stage", "archive", "error")


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

    pan_key: SecretStr | None = None
    pan_key_secret_id: str | None = None

    sns_topic_arn: str | None = None
    state_machine_arn: str | None = None
    large_file_threshold_bytes: int = Field(default=50 << 20, ge=0)  # larger files go to the Glue job
    execution_name: str | None = None
    block_size: int = Field(default=3 << 20, ge=64 << 10)  # 3 MiB: 10M rows validate in < 512 MiB

    def zone_uri(self, zone: str) -> str:
        """URI of a zone: the override if set, else a folder under ``home``."""
        if zone not in ZONES:
            raise ValueError(f"unknown zone {zone!r}; zones are {', '.join(ZONES)}")
        override = getattr(self, f"{zone}_uri")
        return override or str((self.home / zone).resolve())

    @cached_property
    def zones(self) -> dict[str, str]:
        return {zone: self.zone_uri(zone) for zone in ZONES}


def get_settings() -> Settings:
    """Fresh settings from the environment (cheap; tests change the environment between calls)."""
    return Settings()
