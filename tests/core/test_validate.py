"""Every rule of docs/design.md §4 (but F004, which needs the ledger), for both feeds where it applies."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest

from etl.contract import load_contract
from etl.core.validate import validate_file, validate_stream
from tests.builders import VISA, acct, acct_file, txn, txn_file, write

TODAY = dt.date(2024, 6, 1)


def check(path: Path, **kw):
    return validate_file(path, today=TODAY, **kw)


def txn_path(tmp_path: Path, lines: list[str], name: str = "transactions_20240301.dat", **kw) -> Path:
    return write(tmp_path / name, lines, **kw)


def acct_path(tmp_path: Path, lines: list[str], name: str = "account_summary_20240301.dat", **kw) -> Path:
    return write(tmp_path / name, lines, newline="\r\n", **kw)


def rules(report) -> set[str]:
    return set(report.errors)


def test_valid_files_of_both_feeds(tmp_path):
    t = check(txn_path(tmp_path, txn_file([txn("A", 100), txn("B", 250, debit_credit="C", currency="EUR")])))
    assert t.valid and t.errors == {}
    assert t.feed == "transactions" and t.business_date == dt.date(2024, 3, 1)
    assert t.row_count == 2 and t.control_total == Decimal("3.50") and t.trailer_control_total == Decimal("3.50")
    a = check(acct_path(tmp_path, acct_file([acct(balance=100), acct("000000000002", balance=300, sign="-", due="")])))
    assert a.valid and a.errors == {} and a.control_total == Decimal("-2.00")


@pytest.mark.parametrize(
    "variant",
    [
        {"newline": "\r\n"},
        {"bom": True},
        {"final": False},
        {"newline": "\r\n", "bom": True, "final": False},
    ],
)
def test_line_end_variants_are_valid(tmp_path, variant):
    assert check(txn_path(tmp_path, txn_file([txn("A"), txn("B")]), **variant)).valid


def test_empty_lines_at_the_end_are_valid(tmp_path):
    path = txn_path(tmp_path, txn_file([txn("A")]))
    path.write_bytes(path.read_bytes() + b"\n\n\r\n")
    assert check(path).valid


def test_zero_byte_file_is_f001_only(tmp_path):
    path = tmp_path / "transactions_20240301.dat"
    path.write_bytes(b"")
    report = check(path)
    assert not report.valid and rules(report) == {"F001"}


def test_header_and_trailer_without_details_is_f001(tmp_path):
    report = check(txn_path(tmp_path, txn_file([], count=0, total=0)))
    assert rules(report) == {"F001"}


def test_trailer_only_file(tmp_path):
    report = check(txn_path(tmp_path, ["T|0|0"]))
    assert not report.valid and {"F001", "S001"} <= rules(report)


def test_binary_file_is_rejected_not_crashed(tmp_path):
    path = tmp_path / "transactions_20240301.dat"
    path.write_bytes(bytes(range(256)) * 40)
    report = check(path)
    assert not report.valid and rules(report) == {"F003"}


def test_name_matching_no_feed_is_f002(tmp_path):
    report = check(txn_path(tmp_path, txn_file([txn()]), name="payments_20240301.dat"))
    assert report.feed is None and rules(report) == {"F002"}


def test_name_not_matching_the_forced_feed_is_f002(tmp_path):
    path = txn_path(tmp_path, txn_file([txn()]))
    report = check(path, contract=load_contract("account_summary"))
    assert rules(report) == {"F002"}


@pytest.mark.parametrize("feed", ["transactions", "account_summary"])
def test_f003_bad_encoding(tmp_path, feed):
    if feed == "transactions":
        path = txn_path(tmp_path, txn_file([txn("A"), txn("B")]))
        path.write_bytes(path.read_bytes().replace(b"ACME", b"AC\xc3E", 1))
    else:
        path = acct_path(tmp_path, acct_file([acct()]))
        path.write_bytes(path.read_bytes().replace(b"CCPL", b"CC\xc3\xa9", 1))
    report = check(path)
    assert rules(report) == {"F003"} and report.errors["F003"].lines == [2]


STRUCTURE_CASES = [  # (feed, rule, the valid file's lines changed into the fault, the line S005 names)
    ("transactions", "S001", lambda lines: lines[1:], None),  # no header
    ("transactions", "S002", lambda lines: lines[:-1], None),  # no trailer
    ("transactions", "S003", lambda lines: [*lines[:2], lines[0], *lines[2:]], None),  # a second header
    ("transactions", "S004", lambda lines: [*lines[:2], "X|1|2", *lines[2:]], None),  # an unknown record type
    ("transactions", "S005", lambda lines: [lines[0], lines[1].rsplit("|", 1)[0], *lines[2:]], 2),  # a field short
    ("account_summary", "S001", lambda lines: lines[1:], None),
    ("account_summary", "S002", lambda lines: lines[:-1], None),
    ("account_summary", "S003", lambda lines: [*lines[:2], lines[-1], *lines[2:]], None),  # a second trailer
    ("account_summary", "S004", lambda lines: [*lines[:2], "Z".ljust(120), *lines[2:]], None),
    ("account_summary", "S005", lambda lines: [*lines[:2], lines[2] + "X", *lines[3:]], 3),  # a record too long
]


@pytest.mark.parametrize(
    ("feed", "rule", "edit", "line"), STRUCTURE_CASES, ids=[f"{feed}-{rule}" for feed, rule, *_ in STRUCTURE_CASES]
)
def test_structure_rules(tmp_path, feed, rule, edit, line):
    if feed == "transactions":
        report = check(txn_path(tmp_path, edit(txn_file([txn("A"), txn("B")]))))
    else:
        report = check(acct_path(tmp_path, edit(acct_file([acct(), acct("000000000002")]))))
    if line is None:
        assert rules(report) == {rule}
    else:
        assert rule in rules(report) and report.errors[rule].lines == [line]


@pytest.mark.parametrize(
    ("feed", "changes", "day", "rule"),
    [
        ("transactions", {"header": "H|PAYMENTS|20240301|20240302010203|01|CORE"}, "20240301", "H001"),
        ("transactions", {"date": "20240302"}, "20240301", "H002"),  # the header's day is not the name's
        ("account_summary", {"date": "20240302"}, "20240301", "H002"),
        ("transactions", {"header": "H|TRANSACTIONS|20240231|20240302010203|01|CORE"}, "20240301", "H003"),
        ("transactions", {"date": "20250101"}, "20250101", "H003"),  # after today
        ("transactions", {"count": 2}, "20240301", "T001"),
        ("transactions", {"total": 1}, "20240301", "T002"),
        ("account_summary", {"count": 5}, "20240301", "T001"),
        ("account_summary", {"total": -12345}, "20240301", "T002"),
    ],
)
def test_header_and_trailer_rules(tmp_path, feed, changes, day, rule):
    """One header or trailer value changed in a file named for ``day``: exactly that rule."""
    if feed == "transactions":
        path = txn_path(tmp_path, txn_file([txn()], **changes), name=f"transactions_{day}.dat")
    else:
        path = acct_path(tmp_path, acct_file([acct()], **changes), name=f"account_summary_{day}.dat")
    assert rules(check(path)) == {rule}


@pytest.mark.parametrize(
    ("overrides", "rule"),
    [
        ({"currency": ""}, "R001"),
        ({"posted_date": "20240230"}, "R002"),
        ({"transaction_ts": "20240301256000"}, "R002"),
        ({"channel": "FAX"}, "R003"),
        ({"currency": "usd"}, "R004"),
        ({"mcc": "54111"}, "R004"),
        ({"merchant_name": "M" * 41}, "R004"),
        ({"card": "4111111111111112"}, "R006"),
    ],
)
def test_record_rules_transactions(tmp_path, overrides, rule):
    card = overrides.pop("card", VISA[0])
    report = check(txn_path(tmp_path, txn_file([txn("A"), txn("B", card=card, **overrides)])))
    assert rules(report) == {rule}
    assert report.errors[rule].lines == [3] and report.errors[rule].count == 1
    assert not report.valid and report.rows_rejected == 1


def test_r005_duplicate_key_reports_both_lines(tmp_path):
    report = check(txn_path(tmp_path, txn_file([txn("A"), txn("B"), txn("A")])))
    assert rules(report) == {"R005"} and report.errors["R005"].lines == [2, 4]
    accounts = acct_file([acct("000000000001"), acct("000000000001")])
    assert rules(check(acct_path(tmp_path, accounts))) == {"R005"}


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        ({"product": "XXXX"}, "R003"),
        ({"status": "Q"}, "R003"),
        ({"account": "00000000000A"}, "R004"),
        ({"due": "20240231"}, "R002"),
        ({"account": "            "}, "R001"),
    ],
)
def test_record_rules_account_summary(tmp_path, kwargs, rule):
    report = check(acct_path(tmp_path, acct_file([acct(), acct(**{"account": "000000000009", **kwargs})])))
    assert rules(report) == {rule}, report.errors
    assert report.errors[rule].lines == [3]


def test_only_the_first_failing_rule_of_a_field_counts(tmp_path):
    # an empty required amount is R001 only (not also R004/R002); a non-digit one is R004 only. Neither counts
    # in the control total, which the builder's trailer leaves out too.
    empty = txn("B").replace("|000000012345|", "||")
    letters = txn("C").replace("|000000012345|", "|00000001234X|")
    report = check(txn_path(tmp_path, txn_file([txn("A"), empty, letters])))
    assert report.rule_counts == {"R001": 1, "R004": 1}


def test_report_never_contains_a_card_number(tmp_path):
    cards = ["4111111111111112", VISA[1], VISA[2]]
    lines = txn_file([txn("A", card=cards[0]), txn("A", card=cards[1]), txn("C", card=cards[2], channel="X")])
    report = check(txn_path(tmp_path, lines))
    text = report.to_json()
    assert {"R005", "R006", "R003"} <= rules(report)
    for card in cards:
        assert card not in text


def test_reject_threshold_tolerates_bad_records(tmp_path):
    contract = load_contract("transactions").model_copy(update={"reject_threshold": 0.5})
    report = validate_file(
        txn_path(tmp_path, txn_file([txn("A"), txn("B", channel="X"), txn("C")])), contract, today=TODAY
    )
    assert report.valid and report.rows_rejected == 1 and report.rejected_lines.tolist() == [3]


def test_validate_stream_reads_from_any_opener(tmp_path):
    data = "\n".join(txn_file([txn("A"), txn("A")])).encode()
    report = validate_stream(lambda: io.BytesIO(data), "transactions_20240301.dat", today=TODAY)
    assert rules(report) == {"R005"}
