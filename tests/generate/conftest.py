"""Fixtures for generator tests: a small dated file of each feed, and independent readers of the layout.

The readers here re-implement the contract layouts on purpose (no import from ``etl.generate``), and the Luhn
check comes from tests/builders.py (the textbook one), so a test that compares a generated trailer with a total
computed here checks the generator against docs/design.md §3.1 and §3.2.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from etl.generate import generate

DAY = dt.date(2024, 3, 1)
FEEDS = ("transactions", "account_summary")


def records(path: Path) -> list[str]:
    text = path.read_bytes().decode("utf-8")
    assert text.endswith("\n") and "\r" not in text
    return text[:-1].split("\n")


def transaction_fields(path: Path) -> list[list[str]]:
    return [line.split("|") for line in records(path) if line.startswith("D|")]


def account_value(line: str) -> int:
    """Signed current_balance (cents) of an account_summary detail record (positions 37, 38-49)."""
    value = int(line[37:49])
    return -value if line[36] == "-" else value


@pytest.fixture(scope="session")
def small_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 3,000-row file of each feed (seed 5): several chunks' worth of variety, still quick."""
    out = tmp_path_factory.mktemp("small")
    return {feed: generate(feed, DAY, rows=3000, seed=5, out_dir=out) for feed in FEEDS}
