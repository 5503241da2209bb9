"""The pyarrow engine against the ``etl.schema`` semantics, with hand-built raw batches of both feeds."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from decimal import Decimal

import pyarrow as pa
import pytest

from etl.contract import load_contract
from etl.core.mask import CardMasker
from etl.core.transform import Lineage, transform_batch, transform_table
from etl.schema import stage_schema
from tests.builders import raw_batch, raw_txn

KEY = b"test-pan-key"
CARD = "4111111111111111"
LOADED = dt.datetime(2024, 1, 3, 4, 5, 6, 789000, tzinfo=dt.UTC)
LINEAGE = Lineage(dt.date(2024, 1, 2), "/landing/transactions_20240102.dat", "exec-1", LOADED)

TXN = raw_txn(
    transaction_id="T-1",
    account_id="000000000001",
    card_number=CARD,
    transaction_ts="20240102030405",
    posted_date="20240102",
    amount="000000012345",
    merchant_name="ACME STORE",
)
ACCT = {
    "record_type": "D",
    "account_id": "000000000001",
    "customer_id": "0000000001",
    "product_code": "CCPL",
    "open_date": "20200101",
    "account_status": "A",
    "balance_sign": "+",
    "current_balance": "000000012345",
    "credit_limit": "000000100000",
    "available_credit": "000000087655",
    "minimum_payment_due": "000000002500",
    "payment_due_date": "20240125",
    "days_past_due": "000",
    "apr": "24990",
    "filler": " " * 19,
}


def raw(feed: str, *overrides: dict[str, str]) -> pa.RecordBatch:
    """A raw batch as the parser yields it: one row per override dict on top of the feed's defaults."""
    base = TXN if feed == "transactions" else ACCT
    return raw_batch(load_contract(feed), [{**base, **o} for o in overrides])


def run(feed: str, *overrides: dict[str, str]) -> list[dict]:
    batch = transform_batch(raw(feed, *overrides), load_contract(feed), LINEAGE, CardMasker(KEY))
    assert batch.schema == stage_schema(load_contract(feed))
    return batch.to_pylist()


# --- transactions -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("digits", "expected"),
    [
        ("0", "0.00"),
        ("000000000000", "0.00"),
        ("1", "0.01"),
        ("000000012345", "123.45"),
        ("999999999999", "9999999999.99"),
        ("100", "1.00"),
    ],
)
def test_amount_is_exact_decimal(digits: str, expected: str) -> None:
    (row,) = run("transactions", {"amount": digits, "debit_credit": "C"})
    assert row["amount"] == Decimal(expected)
    assert str(row["amount"]) == expected
    assert row["signed_amount"] == Decimal(expected)


def test_debits_are_negative_and_credits_positive() -> None:
    debit, credit = run("transactions", {"debit_credit": "D"}, {"debit_credit": "C", "amount": "999999999999"})
    assert debit["amount"] == Decimal("123.45")
    assert debit["signed_amount"] == Decimal("-123.45")
    assert credit["signed_amount"] == Decimal("9999999999.99")


def test_international_flag() -> None:
    rows = run("transactions", {"currency": "USD"}, {"currency": "EUR"})
    assert [r["is_international"] for r in rows] == [False, True]


def test_typed_dates_and_utc_timestamps() -> None:
    (row,) = run("transactions", {"transaction_ts": "20231231235959", "posted_date": "20240101"})
    assert row["transaction_ts"] == dt.datetime(2023, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    assert row["posted_date"] == dt.date(2024, 1, 1)


def test_empty_optional_strings_become_null_and_text_is_kept() -> None:
    empty, spaced = run("transactions", {"merchant_name": "", "mcc": ""}, {"merchant_name": " Café  "})
    assert empty["merchant_name"] is None and empty["mcc"] is None
    assert spaced["merchant_name"] == " Café  "  # delimited text is not trimmed
    assert spaced["mcc"] == "5411"


def test_card_is_masked_and_record_type_dropped() -> None:
    rows = run("transactions", {"card_number": CARD}, {"card_number": "5500005555555559"}, {"card_number": CARD})
    expected = hmac.new(KEY, CARD.encode(), hashlib.sha256).hexdigest()
    assert rows[0]["card_last4"] == "1111" and rows[1]["card_last4"] == "5559"
    assert rows[0]["card_token"] == rows[2]["card_token"] == expected
    assert rows[1]["card_token"] != expected
    for row in rows:
        assert "card_number" not in row and "record_type" not in row
        assert all(CARD not in str(v) and "5500005555555559" not in str(v) for v in row.values())


def test_lineage_on_every_row() -> None:
    rows = run("transactions", {"transaction_id": "A"}, {"transaction_id": "B"})
    for row in rows:
        assert row["business_date"] == dt.date(2024, 1, 2)
        assert row["source_file"] == "transactions_20240102.dat"
        assert row["execution_name"] == "exec-1"
        assert row["loaded_at"] == LOADED


def test_column_order_is_details_derived_lineage() -> None:
    (row,) = run("transactions", {})
    assert list(row)[:4] == ["transaction_id", "account_id", "card_last4", "card_token"]
    assert list(row)[-6:] == ["signed_amount", "is_international", *Lineage.__dataclass_fields__]


def test_unparsable_text_becomes_null_instead_of_crashing() -> None:
    (row,) = run("transactions", {"amount": "12a", "posted_date": "2024013x", "transaction_ts": "nope"})
    assert row["amount"] is None and row["signed_amount"] is None
    assert row["posted_date"] is None and row["transaction_ts"] is None


# --- account_summary --------------------------------------------------------------------------------------


def test_signed_balances_and_implied_decimals() -> None:
    neg, pos = run(
        "account_summary",
        {"balance_sign": "-", "current_balance": "999999999999"},
        {"balance_sign": "+", "current_balance": "000000000000", "apr": "00001"},
    )
    assert neg["current_balance"] == Decimal("-9999999999.99")
    assert pos["current_balance"] == Decimal("0.00")
    assert neg["apr"] == Decimal("24.990") and pos["apr"] == Decimal("0.001")
    assert neg["credit_limit"] == Decimal("1000.00") and neg["minimum_payment_due"] == Decimal("25.00")
    assert neg["days_past_due"] == 0
    assert {"record_type", "balance_sign", "filler"}.isdisjoint(neg)


@pytest.mark.parametrize(
    ("sign", "balance", "limit", "expected"),
    [
        ("+", "000000012345", "000000100000", "0.1235"),  # 0.12345 rounds half away from zero
        ("-", "000000012345", "000000100000", "-0.1235"),
        ("+", "000000000100", "000000003200", "0.0313"),  # 1/32 = 0.03125
        ("-", "000000000100", "000000003200", "-0.0313"),
        ("+", "000000000100", "000000000300", "0.3333"),
        ("+", "000000000200", "000000000300", "0.6667"),
        ("+", "000000000000", "000000100000", "0.0000"),
        ("+", "999999999999", "000000000001", "999999999999.0000"),
        ("+", "000000012345", "000000000000", None),
    ],  # zero limit: no utilization
)
def test_utilization_exact(sign: str, balance: str, limit: str, expected: str | None) -> None:
    (row,) = run("account_summary", {"balance_sign": sign, "current_balance": balance, "credit_limit": limit})
    assert row["utilization"] == (None if expected is None else Decimal(expected))


@pytest.mark.parametrize(
    ("days", "label"),
    [
        ("000", "current"),
        ("001", "1-29"),
        ("029", "1-29"),
        ("030", "30-59"),
        ("059", "30-59"),
        ("060", "60-89"),
        ("089", "60-89"),
        ("090", "90+"),
        ("999", "90+"),
    ],
)
def test_delinquency_bucket_boundaries(days: str, label: str) -> None:
    (row,) = run("account_summary", {"days_past_due": days})
    assert row["days_past_due"] == int(days)
    assert row["delinquency_bucket"] == label


def test_blank_payment_due_date_is_null() -> None:
    blank, dated = run("account_summary", {"payment_due_date": " " * 8}, {})
    assert blank["payment_due_date"] is None
    assert dated["payment_due_date"] == dt.date(2024, 1, 25)
    assert dated["open_date"] == dt.date(2020, 1, 1)


def test_fixed_width_strings_are_right_trimmed() -> None:
    (row,) = run("account_summary", {"account_id": "12345678901 ", "customer_id": " 123456789"})
    assert row["account_id"] == "12345678901"
    assert row["customer_id"] == " 123456789"  # only the right side is padding


# --- tables and empties -----------------------------------------------------------------------------------


@pytest.mark.parametrize("feed", ["transactions", "account_summary"])
def test_empty_batch_keeps_the_schema(feed: str) -> None:
    contract = load_contract(feed)
    empty = raw_batch(contract, [])
    out = transform_batch(empty, contract, LINEAGE, CardMasker(KEY))
    assert out.num_rows == 0 and out.schema == stage_schema(contract)


def test_transform_table_over_several_batches() -> None:
    contract = load_contract("transactions")
    table = pa.Table.from_batches(
        [raw("transactions", {"transaction_id": "A"}), raw("transactions", {"transaction_id": "B", "amount": "5"})]
    )
    out = transform_table(table, contract, LINEAGE, CardMasker(KEY))
    assert out.schema == stage_schema(contract)
    assert out.column("transaction_id").to_pylist() == ["A", "B"]
    assert out.column("amount").to_pylist() == [Decimal("123.45"), Decimal("0.05")]
    assert len(set(out.column("card_token").to_pylist())) == 1


def test_lineage_requires_aware_time_and_keeps_bare_name() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Lineage(dt.date(2024, 1, 2), "f.dat", "e", dt.datetime(2024, 1, 2))
    local = dt.datetime(2024, 1, 2, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    lineage = Lineage(dt.date(2024, 1, 2), "s3://b/raw/f.dat", "e", local)
    assert lineage.source_file == "f.dat" and lineage.loaded_at.utcoffset() == dt.timedelta(0)
    assert lineage.loaded_at.hour == 10


def test_decimal_precision_is_enforced() -> None:
    from etl.core.transform import _decimal_from_unscaled

    ok = _decimal_from_unscaled(pa.array([-99999, 99999, None], pa.int64()), pa.decimal128(5, 3))
    assert ok.to_pylist() == [Decimal("-99.999"), Decimal("99.999"), None]
    with pytest.raises(pa.ArrowInvalid):
        _decimal_from_unscaled(pa.array([100000], pa.int64()), pa.decimal128(5, 3))
    with pytest.raises(pa.ArrowInvalid):
        _decimal_from_unscaled(pa.array([-100000], pa.int64()), pa.decimal128(5, 3))
