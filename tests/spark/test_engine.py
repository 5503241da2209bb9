"""The Spark engine against hand-written files of both feeds: exact values, types, masking, derivations."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import (
    ACCOUNTS,
    BUSINESS_DATE,
    CARDS,
    DPD_BOUNDARIES,
    EXECUTION,
    LOADED_AT,
    PAN_KEY,
    TRANSACTIONS,
    account_lines,
    expected_ratio,
    lineage,
    transactions_lines,
)

from etl.contract import load_contract, parse_contract
from etl.schema import stage_schema
from etl.spark.columns import spark_type
from etl.spark.engine import transform_file
from tests.builders import write

LINE_VARIANTS = {
    "lf": {},
    "crlf": {"newline": "\r\n"},
    "bom-crlf-no-final-newline": {"newline": "\r\n", "bom": True, "final": False},
    "bom-lf-trailing-blank-lines": {"bom": True, "trailing_blank": 3},
    "crlf-trailing-blank-lines": {"newline": "\r\n", "trailing_blank": 2},
}


def rows_by(df, key: str) -> dict[str, dict]:
    return {r[key]: r.asDict() for r in df.collect()}


def transform(spark, path: Path, feed: str):
    return transform_file(spark, str(path), load_contract(feed), lineage(path.name), PAN_KEY)


def token(number: str) -> str:
    return hmac.new(PAN_KEY, number.encode(), hashlib.sha256).hexdigest()


def test_transactions_columns_and_types_follow_stage_schema(spark, transactions_file):
    df = transform(spark, transactions_file, "transactions")
    schema = stage_schema(load_contract("transactions"))
    assert df.columns == schema.names
    assert [f.dataType for f in df.schema.fields] == [spark_type(f.type) for f in schema]
    assert "card_number" not in df.columns and "record_type" not in df.columns


def test_transactions_values_are_exact(spark, transactions_file):
    rows = rows_by(transform(spark, transactions_file, "transactions"), "transaction_id")
    assert len(rows) == len(TRANSACTIONS)
    zero, top, cafe, short, yen = (rows[i] for i in ("T-0001", "T-0002", "T-0003", "T-0004", "T-0005"))
    assert zero["amount"] == Decimal("0.00") and zero["signed_amount"] == Decimal("0.00")
    assert top["amount"] == Decimal("9999999999.99") and top["signed_amount"] == Decimal("9999999999.99")
    assert cafe["amount"] == Decimal("123.45") and cafe["signed_amount"] == Decimal("-123.45")
    assert short["amount"] == Decimal("0.05") and short["signed_amount"] == Decimal("0.05")
    assert yen["signed_amount"] == Decimal("-0.01")
    assert str(top["amount"]) == "9999999999.99"  # never through a float
    assert zero["transaction_ts"] == dt.datetime(2024, 3, 1, 0, 0, 0)  # Spark returns naive UTC (session tz)
    assert top["transaction_ts"] == dt.datetime(2024, 3, 1, 23, 59, 59)
    assert short["transaction_ts"] == dt.datetime(1999, 12, 31, 23, 59, 59)
    assert top["posted_date"] == dt.date(2024, 2, 29)
    assert [r["is_international"] for r in (zero, top, cafe, short, yen)] == [False, True, True, False, True]
    assert cafe["merchant_name"] == "Café Zürich"
    assert short["merchant_name"] == "  spaced name  "  # delimited text is kept as is
    assert top["merchant_name"] is None and top["mcc"] is None and short["mcc"] is None
    assert zero["account_id"] == "000000000001" and zero["action"] == "A"


def test_card_number_is_masked_with_python_hmac(spark, transactions_file):
    rows = rows_by(transform(spark, transactions_file, "transactions"), "transaction_id")
    for tid, number in CARDS.items():
        assert rows[tid]["card_last4"] == number[-4:]
        assert rows[tid]["card_token"] == token(number)
        assert number not in {str(v) for v in rows[tid].values()}


def test_lineage_columns(spark, transactions_file):
    rows = transform(spark, transactions_file, "transactions").collect()
    assert {(r.business_date, r.source_file, r.execution_name, r.loaded_at) for r in rows} == {
        (BUSINESS_DATE, "transactions_20240301.dat", EXECUTION, LOADED_AT.replace(tzinfo=None))
    }


@pytest.mark.parametrize("variant", LINE_VARIANTS)
@pytest.mark.parametrize("feed", ["transactions", "account_summary"])
def test_line_ends_bom_and_blank_tail_give_the_same_rows(spark, tmp_path, feed, variant):
    lines = transactions_lines() if feed == "transactions" else account_lines()
    name = f"{feed}_20240301.dat"
    (tmp_path / "plain").mkdir()
    plain = write(tmp_path / "plain" / name, lines)
    other = write(tmp_path / name, lines, **LINE_VARIANTS[variant])
    assert sorted(transform(spark, other, feed).collect()) == sorted(transform(spark, plain, feed).collect())
    assert transform(spark, other, feed).count() == len(TRANSACTIONS if feed == "transactions" else ACCOUNTS)


def test_account_summary_columns_and_types(spark, account_file):
    df = transform(spark, account_file, "account_summary")
    schema = stage_schema(load_contract("account_summary"))
    assert df.columns == schema.names
    assert [f.dataType for f in df.schema.fields] == [spark_type(f.type) for f in schema]
    assert dict(df.dtypes)["apr"] == "decimal(5,3)" and dict(df.dtypes)["utilization"] == "decimal(18,4)"
    assert not {"record_type", "balance_sign", "filler"} & set(df.columns)


def test_account_summary_values_are_exact(spark, account_file):
    rows = rows_by(transform(spark, account_file, "account_summary"), "account_id")
    assert len(rows) == len(ACCOUNTS)
    for a in ACCOUNTS:
        row = rows[a.account_id]
        assert row["current_balance"] == Decimal(a.balance).scaleb(-2), a
        assert row["credit_limit"] == Decimal(a.limit).scaleb(-2)
        assert row["available_credit"] == Decimal(a.available).scaleb(-2)
        assert row["minimum_payment_due"] == Decimal(a.minimum).scaleb(-2)
        assert row["apr"] == Decimal(int(a.apr)).scaleb(-3)
        assert row["days_past_due"] == a.dpd
        assert row["payment_due_date"] == (dt.date(2024, 3, 25) if a.due else None)
        ratio = expected_ratio(a.balance, a.limit)
        assert row["utilization"] == (None if ratio is None else Decimal(ratio).scaleb(-4)), a
        assert row["product_code"] == a.product and row["account_status"] == a.status
        assert row["open_date"] == dt.date(2020, 1, 15) and row["customer_id"] == "1234567890"


def test_account_summary_edge_values(spark, account_file):
    rows = rows_by(transform(spark, account_file, "account_summary"), "account_id")
    assert rows["200000000001"]["current_balance"] == Decimal("-987.65")
    assert rows["200000000001"]["payment_due_date"] is None
    assert rows["200000000002"]["utilization"] is None  # zero credit limit
    assert rows["200000000003"]["current_balance"] == Decimal("9999999999.99")
    assert rows["200000000003"]["utilization"] == Decimal("999999999999.0000")
    assert rows["200000000004"]["utilization"] == Decimal("0.0001")
    assert rows["200000000005"]["utilization"] == Decimal("-0.0001")
    assert rows["200000000006"]["utilization"] == Decimal("0.3333")
    assert rows["200000000007"]["utilization"] == Decimal("-0.6667")
    assert rows["200000000008"]["utilization"] == Decimal("-1.0000")
    assert rows["200000000003"]["apr"] == Decimal("99.999")


def test_delinquency_bucket_boundaries(spark, account_file):
    rows = transform(spark, account_file, "account_summary").collect()
    got = {r.days_past_due: r.delinquency_bucket for r in rows if r.account_id.startswith("1")}
    assert got == {
        0: "current",
        1: "1-29",
        29: "1-29",
        30: "30-59",
        59: "30-59",
        60: "60-89",
        89: "60-89",
        90: "90+",
        999: "90+",
    }
    assert sorted(got) == sorted(DPD_BOUNDARIES)


GENERIC_FIXED = """
feed: widgets
file_pattern: '^widgets_(?P<date>\\d{8})\\.dat$'
format: fixed_width
record_length: 40
header: [{name: record_type, position: [1, 1]}]
trailer: [{name: record_type, position: [1, 1]}, {name: record_count, position: [2, 10], type: integer}]
fields:
  - {name: record_type, position: [1, 1], required: true}
  - {name: code, position: [2, 6], required: true}
  - {name: label, position: [7, 16]}
  - {name: big, position: [17, 26], type: integer, required: true}
  - {name: due, position: [27, 34], type: date}
  - {name: small, position: [35, 37], type: integer}
  - {name: rate, position: [38, 40], type: decimal, implied_decimals: 3}
primary_key: [code]
target_table: {schema: s, name: widgets}
checks:
  record_count: {trailer_field: record_count}
  control_total: {trailer_field: record_count}
"""

GENERIC_DELIMITED = """
feed: dots
file_pattern: '^dots_(?P<date>\\d{8})\\.dat$'
format: delimited
delimiter: "."
header: [{name: record_type, index: 0}]
trailer: [{name: record_type, index: 0}, {name: record_count, index: 1, type: integer, max_length: 9}]
fields:
  - {name: record_type, index: 0, required: true}
  - {name: id, index: 1, required: true}
  - {name: note, index: 2}
  - {name: amount, index: 3, type: decimal, implied_decimals: 0, max_length: 5}
  - {name: limit, index: 4, type: integer, max_length: 5}
derived:
  - {name: share, kind: ratio, numerator: amount, denominator: limit, scale: 2}
primary_key: [id]
target_table: {schema: s, name: dots}
checks:
  record_count: {trailer_field: record_count}
  control_total: {trailer_field: record_count}
"""


def test_generic_fixed_width_contract(spark, tmp_path):
    contract = parse_contract(GENERIC_FIXED, "widgets.yml")
    lines = [
        "H".ljust(40),
        "D" + "AB12 " + "first".ljust(10) + "1234567890" + " " * 8 + " " * 3 + "999",
        "D" + "CD34 " + " " * 10 + "0000000001" + "20240229" + " " * 3 + "000",
        "T000000002".ljust(40),
    ]
    path = write(tmp_path / "widgets_20240301.dat", lines)
    df = transform_file(spark, str(path), contract, lineage(path.name), PAN_KEY)
    assert dict(df.dtypes)["big"] == "bigint" and dict(df.dtypes)["small"] == "int"
    rows = {r.code: r for r in df.collect()}
    assert rows["AB12"].label == "first" and rows["CD34"].label is None
    assert rows["AB12"].big == 1234567890 and rows["AB12"].due is None and rows["AB12"].small is None
    assert rows["AB12"].rate == Decimal("0.999")
    assert rows["CD34"].due == dt.date(2024, 2, 29) and rows["CD34"].small is None
    assert rows["CD34"].rate == Decimal("0.000")


def test_generic_delimited_contract_with_regex_delimiter(spark, tmp_path):
    contract = parse_contract(GENERIC_DELIMITED, "dots.yml")
    lines = ["H", "D.a.x y.7.8", "D.b..5.0", "D.c.z.1.3", "D.d.z.1.", "T.4"]
    path = write(tmp_path / "dots_20240301.dat", lines)
    df = transform_file(spark, str(path), contract, lineage(path.name), PAN_KEY)
    rows = {r.id: r for r in df.collect()}
    assert dict(df.dtypes)["amount"] == "decimal(5,0)" and dict(df.dtypes)["share"] == "decimal(18,2)"
    assert rows["a"].note == "x y" and rows["a"].share == Decimal("0.88")  # 7/8 = 0.875 -> 0.88
    assert rows["b"].note is None and rows["b"].share is None  # denominator 0
    assert rows["c"].share == Decimal("0.33")
    assert rows["d"].limit is None and rows["d"].share is None


def test_paths_with_spaces_plus_and_glob_characters_are_read_literally(spark, tmp_path):
    folder = tmp_path / "raw dir+1 [x]{a,b}*?"
    folder.mkdir()
    path = write(folder / "transactions_20240301.dat", transactions_lines())
    decoy = tmp_path / "raw dir+1 x"  # what the unescaped glob [x] would match instead
    decoy.mkdir()
    write(decoy / "transactions_20240301.dat", transactions_lines(TRANSACTIONS[:1]))
    assert transform(spark, path, "transactions").count() == len(TRANSACTIONS)
