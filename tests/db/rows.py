"""Staged rows for loader tests: plausible defaults per feed, turned into stage-schema batches."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from typing import Any

import psycopg
import pyarrow as pa
from psycopg import sql
from psycopg.rows import dict_row

from etl.contract import Contract
from etl.schema import stage_schema

LOADED_AT = dt.datetime(2024, 3, 1, 6, 0, tzinfo=dt.UTC)


def txn(transaction_id: str, action: str = "A", *, day: int = 1, **values: Any) -> dict[str, Any]:
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
        "debit_credit": "D",
        "currency": "USD",
        "merchant_name": "ACME",
        "mcc": "5411",
        "channel": "POS",
        "status": "POSTED",
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


def summary(account_id: str, *, day: int = 1, **values: Any) -> dict[str, Any]:
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
    table = pa.Table.from_pylist(rows, schema=stage_schema(contract))
    return table.to_batches(max_chunksize=size)


def sha(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def load_kwargs(label: str, day: int = 1) -> dict[str, Any]:
    return {
        "file_name": f"{label}.dat",
        "sha256": sha(label),
        "business_date": dt.date(2024, 3, day),
        "execution_name": f"exec-{day}",
    }


def table_rows(conn: psycopg.Connection, contract: Contract) -> list[dict[str, Any]]:
    """The target table's rows as dicts, ordered by primary key."""
    t = contract.target_table
    query = sql.SQL("SELECT * FROM {} ORDER BY {}").format(
        sql.Identifier(t.schema_, t.name), sql.SQL(", ").join(sql.Identifier(k) for k in contract.primary_key)
    )
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(query).fetchall())
