"""What the database must hold after loading generated files, computed here from the ``.dat`` bytes alone.

Deliberately independent of ``etl``: the layouts of docs/design.md §3.1 and §3.2 and its transform (§5) are
re-implemented with ``str`` slicing, ``int`` arithmetic and ``Decimal``, so a test comparing these rows with
the database checks the whole pipeline rather than the pipeline against itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

TXN_DATA = (
    "account_id",
    "card_last4",
    "card_token",
    "transaction_ts",
    "posted_date",
    "amount",
    "debit_credit",
    "currency",
    "merchant_name",
    "mcc",
    "channel",
    "status",
    "signed_amount",
    "is_international",
)
ACCOUNT_DATA = (
    "customer_id",
    "product_code",
    "open_date",
    "account_status",
    "current_balance",
    "credit_limit",
    "available_credit",
    "minimum_payment_due",
    "payment_due_date",
    "days_past_due",
    "apr",
    "utilization",
    "delinquency_bucket",
)
LINEAGE = ("business_date", "source_file", "execution_name")
KEYS = {"transactions": ("transaction_id",), "account_summary": ("account_id", "business_date")}
DATA = {"transactions": TXN_DATA, "account_summary": ACCOUNT_DATA}
TABLES = {"transactions": "fintech.transactions", "account_summary": "fintech.account_daily_summary"}


def feed_of(path: Path) -> str:
    return "account_summary" if path.name.startswith("account_summary_") else "transactions"


def _date(text: str) -> dt.date | None:
    return None if not text.strip() else dt.datetime.strptime(text, "%Y%m%d").date()


def _cents(digits: str, scale: int = 2) -> Decimal:
    return Decimal(int(digits)).scaleb(-scale)


def card_token(key: bytes, number: str) -> str:
    return hmac.new(key, number.encode(), hashlib.sha256).hexdigest()


def execution_name(feed: str, day: dt.date, data: bytes) -> str:
    return f"{feed}-{day:%Y%m%d}-{hashlib.sha256(data).hexdigest()[:16]}"


def bucket(days: int) -> str:
    if days <= 0:
        return "current"
    return "1-29" if days < 30 else "30-59" if days < 60 else "60-89" if days < 90 else "90+"


def ratio(numerator_cents: int, denominator_cents: int, scale: int = 4) -> Decimal | None:
    """numerator / denominator at ``scale`` digits, half away from zero, in integers (no rounding of a float)."""
    if denominator_cents == 0:
        return None
    scaled = abs(numerator_cents) * 10**scale
    quotient, remainder = divmod(scaled, abs(denominator_cents))
    if 2 * remainder >= abs(denominator_cents):
        quotient += 1
    negative = (numerator_cents < 0) != (denominator_cents < 0)
    return Decimal(-quotient if negative else quotient).scaleb(-scale)


@dataclass
class Record:
    """One detail record: its key, the loaded values (data and lineage) and the load action."""

    key: tuple[Any, ...]
    values: dict[str, Any]
    action: str = "A"
    card_number: str = ""


def records(path: Path, pan_key: bytes) -> list[Record]:
    """Every detail record of a generated file, typed as the database should hold it."""
    data = path.read_bytes()
    feed = feed_of(path)
    lines = data.decode("utf-8").removeprefix("\ufeff").splitlines()
    header, details = lines[0], [line for line in lines[1:] if line.startswith("D")]
    day = _date(header.split("|")[2] if feed == "transactions" else header[21:29])
    assert day is not None
    lineage = {"business_date": day, "source_file": path.name, "execution_name": execution_name(feed, day, data)}
    parse = _transaction if feed == "transactions" else _account
    return [parse(line, pan_key, lineage) for line in details]


def _transaction(line: str, pan_key: bytes, lineage: dict[str, Any]) -> Record:
    f = line.split("|")
    assert len(f) == 14, line
    amount = _cents(f[6])
    values = {
        "account_id": f[2],
        "card_last4": f[3][-4:],
        "card_token": card_token(pan_key, f[3]),
        "transaction_ts": dt.datetime.strptime(f[4], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC),
        "posted_date": _date(f[5]),
        "amount": amount,
        "debit_credit": f[7],
        "currency": f[8],
        "merchant_name": f[9] or None,
        "mcc": f[10] or None,
        "channel": f[11],
        "status": f[12],
        "signed_amount": -amount if f[7] == "D" else amount,
        "is_international": f[8] != "USD",
        **lineage,
    }
    return Record((f[1],), values, f[13], f[3])


def _account(line: str, pan_key: bytes, lineage: dict[str, Any]) -> Record:
    assert len(line) == 120, line

    def at(first: int, last: int) -> str:
        return line[first - 1 : last]

    balance_cents = int(at(38, 49)) * (-1 if at(37, 37) == "-" else 1)
    limit_cents = int(at(50, 61))
    days = int(at(94, 96))
    values = {
        "account_id": at(2, 13),
        "customer_id": at(14, 23),
        "product_code": at(24, 27),
        "open_date": _date(at(28, 35)),
        "account_status": at(36, 36),
        "current_balance": Decimal(balance_cents).scaleb(-2),
        "credit_limit": Decimal(limit_cents).scaleb(-2),
        "available_credit": _cents(at(62, 73)),
        "minimum_payment_due": _cents(at(74, 85)),
        "payment_due_date": _date(at(86, 93)),
        "days_past_due": days,
        "apr": _cents(at(97, 101), 3),
        "utilization": ratio(balance_cents, limit_cents),
        "delinquency_bucket": bucket(days),
        **lineage,
    }
    return Record((values["account_id"], lineage["business_date"]), values)


@dataclass
class Counts:
    """What happened to each record of a file; ``accounted``: every record lands in exactly one count."""

    rows_in: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    not_found: int = 0  # a delete of a key the table does not hold
    superseded: int = 0  # an earlier record of a key that comes again later in the file
    skipped: int = 0  # records of a file whose content was loaded before
    rejected: int = 0

    @property
    def accounted(self) -> bool:
        parts = (self.inserted, self.updated, self.deleted, self.unchanged)
        return self.rows_in == sum(parts) + self.not_found + self.superseded + self.skipped + self.rejected


@dataclass
class Table:
    """The expected contents of one feed's table, file after file (docs/design.md §7 semantics)."""

    feed: str
    rows: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)

    def apply(self, path: Path, pan_key: bytes) -> Counts:
        """Upsert A/U records (an unchanged row keeps its old lineage), delete D records; return the counts."""
        counts = Counts()
        latest: dict[tuple[Any, ...], Record] = {}
        for record in records(path, pan_key):  # the last record of a key wins
            counts.rows_in += 1
            if latest.pop(record.key, None) is not None:
                counts.superseded += 1
            latest[record.key] = record
        data = DATA[self.feed]
        for key, record in latest.items():
            old = self.rows.get(key)
            if record.action == "D":
                if old is not None:
                    counts.deleted += 1
                    del self.rows[key]
                else:
                    counts.not_found += 1
            elif old is None:
                counts.inserted += 1
                self.rows[key] = record.values
            elif any(old[c] != record.values[c] for c in data):
                counts.updated += 1
                self.rows[key] = record.values
            else:
                counts.unchanged += 1
        return counts

    def skip(self, path: Path, pan_key: bytes) -> Counts:
        """A file whose content was already loaded: nothing changes, every record is skipped."""
        total = sum(1 for _ in records(path, pan_key))
        return Counts(rows_in=total, skipped=total)


def card_numbers(path: Path) -> set[str]:
    """Every card number field of a transactions file (valid, or broken on purpose)."""
    found = set()
    for line in path.read_bytes().decode("utf-8", "replace").splitlines():
        parts = line.split("|")
        if parts[0] == "D" and len(parts) > 3 and parts[3].strip():
            found.add(parts[3].strip())
    return found
