"""Fixtures for the database edge: a connection to a fresh migrated database and the two contracts."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from etl.contract import Contract, load_contract
from tests.conftest import database_as


@pytest.fixture
def conn(request: pytest.FixtureRequest) -> Iterator[psycopg.Connection]:
    """A connection to a fresh migrated database, as the superuser or (parametrised ``"etl-role"``) as a role
    with only the documented grants."""
    with psycopg.connect(database_as(request), autocommit=True) as connection:
        yield connection


@pytest.fixture
def transactions() -> Contract:
    return load_contract("transactions")


@pytest.fixture
def account_summary() -> Contract:
    return load_contract("account_summary")
