"""Dummy ``account_summary`` records (docs/design.md §3.2), built as a fixed-width byte matrix per chunk.

Account ``i`` keeps its identity across days (id, customer, product, open date, limit, APR come from a
generator keyed by seed and chunk only); balances and delinquency change daily (keyed by the date too).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from etl.generate import _vec as v
from etl.generate._ids import account_ids, customer_ids, customer_of_account

CHUNK = 65_536
RECORD = 120
STATIC_TAG, DAILY_TAG = 0xA501, 0xA502
PRODUCTS = ("CCPL", "CCGD", "CHKG", "SAVG")
STATUSES = ("A", "C", "F", "X")
_PRODUCT_P = (0.35, 0.20, 0.30, 0.15)
_STATUS_P = (0.90, 0.04, 0.02, 0.04)
_OPEN_REFERENCE = v.day_number(dt.date(2024, 1, 1))
_PRODUCT_BYTES = v.bytes_table(PRODUCTS, 4)
_STATUS_BYTES = v.bytes_table(STATUSES, 1)


@dataclass
class Accounts:
    """One chunk of account rows as numpy columns; money in cents (balance signed)."""

    index: np.ndarray
    product: np.ndarray
    open_day: np.ndarray
    status: np.ndarray
    balance: np.ndarray
    credit_limit: np.ndarray
    available: np.ndarray
    minimum_due: np.ndarray
    due_day: np.ndarray  # -1 = blank
    days_past_due: np.ndarray
    apr: np.ndarray  # thousandths of a percent


def chunks(seed: int, business_date: dt.date, sequence: int | None, rows: int) -> Iterator[Accounts]:
    for chunk, start in enumerate(range(0, rows, CHUNK)):
        yield _accounts(seed, business_date, sequence, chunk, np.arange(start, min(rows, start + CHUNK)))


def _accounts(seed: int, day: dt.date, sequence: int | None, chunk: int, index: np.ndarray) -> Accounts:
    n, day_n = len(index), v.day_number(day)
    s = v.rng(seed, STATIC_TAG, chunk)
    product = s.choice(4, size=n, p=_PRODUCT_P)
    credit = product < 2
    limit = np.where(product == 0, s.integers(1, 31, n) * 50_000, s.integers(5, 51, n) * 100_000)
    limit = np.where(credit, limit, 0)
    apr = np.select(
        [product == 0, product == 1, product == 3],
        [s.integers(72, 121, n) * 250 - 10, s.integers(56, 93, n) * 250 - 10, s.integers(1, 46, n) * 100],
        0,
    )
    usage = s.beta(2, 3, n)
    open_day = np.minimum(_OPEN_REFERENCE - s.integers(30, 9_000, n), day_n - 1)
    status = s.choice(4, size=n, p=_STATUS_P)
    status = np.where(~credit & (status == 3), 1, status)  # deposits are closed, not charged off

    d = v.rng(seed, DAILY_TAG, day_n, sequence or 0, chunk)
    card_balance = (limit * np.clip(usage + d.normal(0, 0.05, n), 0, 1.1)).astype(np.int64)
    card_balance = np.where(d.random(n) < 0.03, -d.integers(100, 20_000, n), card_balance)  # overpaid
    deposit_balance = (np.exp(d.normal(11.5, 1.6, n))).astype(np.int64)
    deposit_balance = np.where(d.random(n) < 0.05, -d.integers(100, 50_000, n), deposit_balance)  # overdrawn
    balance = np.where(credit, card_balance, deposit_balance)
    balance = np.where(status == 1, np.where(d.random(n) < 0.8, 0, balance), balance)
    balance = np.clip(balance, -999_999_999_999, 999_999_999_999)
    owed = credit & (balance > 0)
    minimum = np.where(owed, np.minimum(balance, np.maximum(2_500, balance // 50)), 0)
    due = np.where(owed & (status != 1) & (d.random(n) < 0.9), day_n + d.integers(1, 29, n), -1)
    bucket = d.choice(5, size=n, p=(0.80, 0.09, 0.05, 0.03, 0.03))
    low = np.array([0, 1, 30, 60, 90])[bucket]
    high = np.array([0, 29, 59, 89, 400])[bucket]
    dpd = np.where(owed, d.integers(low, high + 1), 0)
    dpd = np.where(status == 3, d.integers(120, 721, n), dpd)
    dpd = np.where(~credit & (balance < 0), d.integers(1, 46, n), dpd)
    return Accounts(
        index=index,
        product=product,
        open_day=open_day,
        status=status,
        balance=balance,
        credit_limit=limit,
        available=np.where(credit, np.maximum(limit - np.maximum(balance, 0), 0), 0),
        minimum_due=minimum,
        due_day=due,
        days_past_due=dpd,
        apr=apr,
    )


def format_records(seed: int, a: Accounts) -> np.ndarray:
    """Detail records as an (n, 121) byte matrix: 120 characters and the LF."""
    n = len(a.index)
    m = np.full((n, RECORD + 1), ord(" "), dtype=np.uint8)
    m[:, 0] = ord("D")
    m[:, 1:13] = v.digits(account_ids(seed, a.index), 12)
    m[:, 13:23] = v.digits(customer_ids(seed, customer_of_account(a.index)), 10)
    m[:, 23:27] = _PRODUCT_BYTES[a.product]
    m[:, 27:35] = v.digits(v.yyyymmdd(a.open_day), 8)
    m[:, 35:36] = _STATUS_BYTES[a.status]
    m[:, 36] = np.where(a.balance < 0, ord("-"), ord("+"))
    m[:, 37:49] = v.digits(np.abs(a.balance), 12)
    m[:, 49:61] = v.digits(a.credit_limit, 12)
    m[:, 61:73] = v.digits(a.available, 12)
    m[:, 73:85] = v.digits(a.minimum_due, 12)
    has_due = a.due_day >= 0
    m[has_due, 85:93] = v.digits(v.yyyymmdd(a.due_day[has_due]), 8)
    m[:, 93:96] = v.digits(a.days_past_due, 3)
    m[:, 96:101] = v.digits(a.apr, 5)
    m[:, RECORD] = ord("\n")
    return m
