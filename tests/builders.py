"""Hand-made inputs for the tests: Luhn numbers, ``.dat`` records and files byte for byte, staged rows.

One module, so a record layout or a default value is written once for every suite (core, Spark, database).
The builders follow docs/design.md §3.1 (transactions, pipe-delimited) and §3.2 (account_summary, fixed
width) by hand and import nothing from ``etl.generate``: a test that builds its file here checks the product
against the contract, not against the generator.

The Luhn check here is the textbook one, written independently of ``etl.core.checks`` and
``etl.core.card_runs`` (the vectorised checks under test), so tests may use it as their reference too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from etl.contract import Contract
from etl.schema import raw_schema, stage_schema

# --- Luhn ------------------------------------------------------------------------------------------------------


def luhn_ok(number: str) -> bool:
    """The textbook Luhn check: every second digit from the right doubled (digit sum), total divisible by 10."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def luhn_complete(body: str) -> str:
    """``body`` followed by the one check digit that makes it pass :func:`luhn_ok`."""
    return body + next(d for d in "0123456789" if luhn_ok(body + d))


VISA = ["4111111111111111", "4012888888881881", "5555555555554444", "378282246310005"]  # Luhn-valid test cards

# --- transactions (docs/design.md §3.1) ----------------------------------------------------------------------

TXN_HEADER = "H|TRANSACTIONS|20240301|20240302010203|01|CORE"
TXN_FIELDS = {  # the detail fields of a plausible record, as text in the file (record_type "D" first)
    "transaction_id": "TX1",
    "account_id": "123456789012",
    "card_number": VISA[0],
    "transaction_ts": "20240301101112",
    "posted_date": "20240301",
    "amount": "000000012345",
    "debit_credit": "D",
    "currency": "USD",
    "merchant_name": "ACME",
    "mcc": "5411",
    "channel": "POS",
    "status": "POSTED",
    "action": "A",
}


def txn(tid: str = "TX1", amount: int = 12345, card: str = VISA[0], **overrides: str) -> str:
    """A transactions detail record: :data:`TXN_FIELDS` with these values (``amount`` in cents)."""
    fields = {**TXN_FIELDS, "transaction_id": tid, "card_number": card, "amount": f"{amount:012d}", **overrides}
    return "D|" + "|".join(fields.values())


def txn_file(
    details: list[str],
    *,
    date: str = "20240301",
    count: int | None = None,
    total: int | None = None,
    header: str | None = None,
) -> list[str]:
    """Header, details, trailer; the trailer's count and total are the details' unless given (to break them)."""
    if total is None:
        total = sum(int(d.split("|")[6]) for d in details if d.count("|") == 13 and d.split("|")[6].isdigit())
    head = header if header is not None else TXN_HEADER.replace("20240301", date, 1)
    return [head, *details, f"T|{len(details) if count is None else count}|{total:015d}"]


def raw_txn(**values: str) -> dict[str, str]:
    """A transactions record as the parser yields it (field name to text, ``record_type`` first)."""
    return {"record_type": "D", **TXN_FIELDS, **values}


def raw_batch(contract: Contract, records: list[dict[str, str]]) -> pa.RecordBatch:
    """Records as the parser yields them: a raw-schema batch, ``_line`` counting from 2 (after the header)."""
    rows = [{**record, "_line": i + 2} for i, record in enumerate(records)]
    return pa.RecordBatch.from_pylist(rows, schema=raw_schema(contract))


# --- account_summary (docs/design.md §3.2) -------------------------------------------------------------------


def acct(
    account: str = "000000000001",
    balance: int = 12345,
    sign: str | None = None,
    limit: int = 500000,
    due: str = "20240325",
    dpd: int = 0,
    product: str = "CCPL",
    status: str = "A",
    *,
    available: int | None = None,
    minimum: int = 2500,
    apr: str = "24990",
    customer: str = "0000000001",
    opened: str = "20200101",
) -> str:
    """An account_summary detail record of 120 characters. ``balance`` is in cents; its sign is written from
    ``sign`` if given (then ``balance`` is the magnitude), else from the value. ``available`` defaults to what
    is left of the limit."""
    if sign is None:
        sign = "-" if balance < 0 else "+"
    if available is None:
        available = max(limit - abs(balance), 0)
    line = (
        f"D{account}{customer}{product}{opened}{status}{sign}{abs(balance):012d}{limit:012d}{available:012d}"
        f"{minimum:012d}{due:<8}{dpd:03d}{apr}"
    )
    return line.ljust(120)


def acct_file(
    details: list[str], *, date: str = "20240301", count: int | None = None, total: int | None = None
) -> list[str]:
    """Header, details, trailer; the trailer's count and signed total are the details' unless given."""
    if total is None:
        total = sum(int(d[37:49]) * (-1 if d[36] == "-" else 1) for d in details if len(d) == 120)
    sign = "-" if total < 0 else "+"
    head = ("H" + "ACCOUNT_SUMMARY".ljust(20) + date + "20240302010203").ljust(120)
    trail = ("T" + f"{len(details) if count is None else count:09d}" + sign + f"{abs(total):015d}").ljust(120)
    return [head, *details, trail]


# --- files -----------------------------------------------------------------------------------------------------


def write(
    path: Path,
    lines: list[str],
    *,
    newline: str = "\n",
    final: bool = True,
    bom: bool = False,
    trailing_blank: int = 0,
) -> Path:
    """The lines as bytes exactly as a sender would write them: line ends, BOM, final newline, blank tail."""
    data = newline.join(lines) + (newline if final else "") + newline * trailing_blank
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode("utf-8"))
    return path


# --- staged rows (the stage schema the loader reads; docs/design.md §5) ----------------------------------------

LOADED_AT = dt.datetime(2024, 3, 1, 6, 0, tzinfo=dt.UTC)


def staged_txn(transaction_id: str, action: str = "A", *, day: int = 1, **values: Any) -> dict[str, Any]:
    """A staged transactions row with plausible defaults; ``day`` sets the lineage."""
    amount = Decimal(values.pop("amount", "12.34"))
    debit = values.get("debit_credit", "D") == "D"
    row: dict[str, Any] = {
        "transaction_id": transaction_id,
        "account_id": "000000000042",
        "card_last4": "1111",
        "card_token": "ab" * 32,
        "transaction_ts": dt.datetime(2024, 3, day, 12, 30, 15, 250000, tzinfo=dt.UTC),
        "posted_date": dt.date(2024, 3, day),
        "amount": amount,
        # the text columns keep the values of a .dat record (TXN_FIELDS): the same plausible record everywhere
        **{k: TXN_FIELDS[k] for k in ("debit_credit", "currency", "merchant_name", "mcc", "channel", "status")},
        "action": action,
        "signed_amount": -amount if debit else amount,
        "is_international": False,
        "business_date": dt.date(2024, 3, day),
        "source_file": f"transactions_202403{day:02d}.dat",
        "execution_name": f"exec-{day}",
        "loaded_at": LOADED_AT,
    }
    row.update(values)
    return row


def staged_summary(account_id: str, *, day: int = 1, **values: Any) -> dict[str, Any]:
    """A staged account_summary row with plausible defaults; ``day`` sets the lineage."""
    row: dict[str, Any] = {
        "account_id": account_id,
        "customer_id": "0000000007",
        "product_code": "CCPL",
        "open_date": dt.date(2020, 1, 1),
        "account_status": "A",
        "current_balance": Decimal("-1234.56"),
        "credit_limit": Decimal("5000.00"),
        "available_credit": Decimal("3765.44"),
        "minimum_payment_due": Decimal("25.00"),
        "payment_due_date": None,
        "days_past_due": 0,
        "apr": Decimal("24.990"),
        "utilization": Decimal("-0.2469"),
        "delinquency_bucket": "current",
        "business_date": dt.date(2024, 3, day),
        "source_file": f"account_summary_202403{day:02d}.dat",
        "execution_name": f"exec-{day}",
        "loaded_at": LOADED_AT,
    }
    row.update(values)
    return row


def batches(contract: Contract, rows: list[dict[str, Any]], size: int = 2) -> list[pa.RecordBatch]:
    """Rows as stage-schema batches of ``size`` rows (several batches exercise the streaming COPY)."""
    return pa.Table.from_pylist(rows, schema=stage_schema(contract)).to_batches(max_chunksize=size)


def load_kwargs(label: str, day: int = 1) -> dict[str, Any]:
    """The file identity ``etl.db.load`` records in the ledger, for a file named after ``label``."""
    return {
        "file_name": f"{label}.dat",
        "sha256": hashlib.sha256(label.encode()).hexdigest(),
        "business_date": dt.date(2024, 3, day),
        "execution_name": f"exec-{day}",
    }
