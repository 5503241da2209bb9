"""The ``ETL_*`` environment every test that runs the product in-process, in a subprocess or in a kernel sees.

One place decides what a test's ``etl`` is pointed at, so a variable left in the developer's shell (an S3 zone,
a secret id, an SNS topic, a block size) can never change what a test means: :meth:`EtlEnv.apply` first clears
every ``ETL_*`` variable (but the ``ETL_TEST_*`` ones that choose the test server), then sets exactly

``ETL_HOME``          the test's own folder, so zones and the embedded database are private to it;
``ETL_DATABASE_URL``  the test's fresh database (left unset for the embedded server under ``ETL_HOME``);
``ETL_PAN_KEY``       a fixed test key, so card tokens are the same on every run and computable by the oracle.

Tests of the settings themselves start from :func:`clear_etl_env` alone. The ``etl_env`` fixture of
tests/conftest.py applies an :class:`EtlEnv` for a fresh migrated database; the pipeline, AWS and
notebook fixtures build on that fixture, and tests that undo or move the environment apply it again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

PAN_KEY = "e2e-test-pan-key-0123456789"  # a test key: never a real secret, the same on every run
# Credentials and a region for moto: boto3 finds these before any real profile, so no test reaches an account.
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def clear_etl_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset every ``ETL_*`` variable but ``ETL_TEST_*``: the settings a test reads are only the ones it sets."""
    for name in [n for n in os.environ if n.startswith("ETL_") and not n.startswith("ETL_TEST_")]:
        monkeypatch.delenv(name)


@dataclass
class EtlEnv:
    """Where a test's ``etl`` keeps its zones, which database it loads, and the key its card tokens use."""

    home: Path
    db_url: str | None  # None: the embedded server under ``home``
    key: str = PAN_KEY

    @property
    def pan_key(self) -> bytes:
        """The key card tokens are computed with (``tests.pipeline.expected.card_token``)."""
        return self.key.encode()

    def apply(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Clear every ``ETL_*`` variable but ``ETL_TEST_*``, then set home, database URL and PAN key."""
        clear_etl_env(monkeypatch)
        monkeypatch.setenv("ETL_HOME", str(self.home))
        if self.db_url is not None:
            monkeypatch.setenv("ETL_DATABASE_URL", self.db_url)
        monkeypatch.setenv("ETL_PAN_KEY", self.key)
