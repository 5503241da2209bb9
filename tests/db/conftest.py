"""Fixtures for the database edge: a connection to a fresh migrated database and the two contracts."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from etl.contract import Contract, load_contract


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def transactions() -> Contract:
    return load_contract("transactions")


@pytest.fixture
def account_summary() -> Contract:
    return load_contract("account_summary")
