"""The edge cases of both feeds the Spark suite runs, as ``.dat`` files written with tests/builders.py (the
``spark`` session is in tests/conftest.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.builders import acct, acct_file, luhn_complete, txn_file, write

BUSINESS_DATE = dt.date(2024, 3, 1)
PAN_KEY = b"test-pan-key-not-a-secret"
LOADED_AT = dt.datetime(2024, 3, 2, 6, 30, 15, 123456, tzinfo=dt.UTC)
EXECUTION = "transactions-20240301-abc123"
DPD_BOUNDARIES = (0, 1, 29, 30, 59, 60, 89, 90, 999)


def lineage(source_file: str):
    """The lineage every test file is stamped with."""
    from etl.core.transform import Lineage

    return Lineage(BUSINESS_DATE, source_file, EXECUTION, LOADED_AT)


# --- transactions (docs/design.md §3.1) -----------------------------------------------------------------------

CARDS = {
    "T-0001": luhn_complete("411111111111111"),  # 16 digits
    "T-0002": luhn_complete("550000000000000"),
    "T-0003": luhn_complete("378282246310"),  # 13 digits
    "T-0004": luhn_complete("601100000000000000"),  # 19 digits
    "T-0005": luhn_complete("411111111111222"),
}

TRANSACTIONS = [
    # id, account, card, ts, posted, amount, d/c, currency, merchant, mcc, channel, status, action
    [
        "T-0001",
        "000000000001",
        CARDS["T-0001"],
        "20240301000000",
        "20240301",
        "000000000000",
        "D",
        "USD",
        "Coffee Shop",
        "5812",
        "POS",
        "POSTED",
        "A",
    ],
    [
        "T-0002",
        "000000000002",
        CARDS["T-0002"],
        "20240301235959",
        "20240229",
        "999999999999",
        "C",
        "EUR",
        "",
        "",
        "ECOM",
        "PENDING",
        "U",
    ],
    [
        "T-0003",
        "000000000003",
        CARDS["T-0003"],
        "20240229120000",
        "20240301",
        "000000012345",
        "D",
        "GBP",
        "Café Zürich",
        "5411",
        "ATM",
        "REVERSED",
        "D",
    ],
    [
        "T-0004",
        "999999999999",
        CARDS["T-0004"],
        "19991231235959",
        "20000101",
        "5",
        "C",
        "USD",
        "  spaced name  ",
        "",
        "P2P",
        "POSTED",
        "A",
    ],
    [
        "T-0005",
        "000000000005",
        CARDS["T-0005"],
        "20240301101010",
        "20240301",
        "000000000001",
        "D",
        "JPY",
        "ACH Payroll",
        "6011",
        "ACH",
        "POSTED",
        "U",
    ],
]


def transactions_lines(rows: list[list[str]] = TRANSACTIONS) -> list[str]:
    return txn_file(["|".join(["D", *r]) for r in rows])


# --- account_summary (docs/design.md §3.2) --------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    account_id: str
    balance: int  # signed cents
    limit: int = 500000
    available: int = 100000
    minimum: int = 2500
    due: str = "20240325"
    dpd: int = 0
    apr: str = "24990"
    product: str = "CCPL"
    status: str = "A"

    def line(self) -> str:
        return acct(
            self.account_id,
            self.balance,
            limit=self.limit,
            due=self.due,
            dpd=self.dpd,
            product=self.product,
            status=self.status,
            available=self.available,
            minimum=self.minimum,
            apr=self.apr,
            customer="1234567890",
            opened="20200115",
        )


ACCOUNTS = [
    *[Account(f"1000000000{i:02d}", balance=12345 * (i + 1), dpd=d) for i, d in enumerate(DPD_BOUNDARIES)],
    Account("200000000001", balance=-98765, due=""),  # negative balance, no payment due
    Account("200000000002", balance=0, limit=0, available=0, minimum=0, apr="00000"),  # zero limit
    Account("200000000003", balance=999999999999, limit=1, apr="99999", product="CCGD"),  # maximum
    Account("200000000004", balance=1, limit=20000),  # 0.00005 -> 0.0001 (half away from zero)
    Account("200000000005", balance=-1, limit=20000, status="F"),  # -0.00005 -> -0.0001
    Account("200000000006", balance=10000, limit=30000, product="CHKG"),  # 1/3
    Account("200000000007", balance=-20000, limit=30000, product="SAVG", status="X"),  # -2/3
    Account("200000000008", balance=-999999999999, limit=999999999999, status="C"),  # -1
]


def account_lines(rows: list[Account] = ACCOUNTS) -> list[str]:
    return acct_file([a.line() for a in rows])


def expected_ratio(numerator: int, denominator: int, scale: int = 4) -> int | None:
    """Reference: unscaled ratio of two equally scaled integers, half away from zero, in pure integers."""
    if denominator == 0:
        return None
    q, r = divmod(abs(numerator) * 10**scale, abs(denominator))
    q += 2 * r >= abs(denominator)
    return -q if (numerator < 0) != (denominator < 0) else q


@pytest.fixture
def transactions_file(tmp_path: Path) -> Path:
    return write(tmp_path / "transactions_20240301.dat", transactions_lines())


@pytest.fixture
def account_file(tmp_path: Path) -> Path:
    return write(tmp_path / "account_summary_20240301.dat", account_lines())
