"""Every header and trailer field is checked against its contract spec (H001–H005, T001–T003), for both feeds.

Each case changes one field of an otherwise valid file and expects exactly one rule; the report names the
field and what is wrong with it, never the value found.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from etl.contract import load_contract
from etl.core.validate import validate_file
from tests.builders import acct, acct_file, txn, txn_file, write

TODAY = dt.date(2024, 6, 1)
TXN_HEADER = {
    "record_type": "H",
    "feed_name": "TRANSACTIONS",
    "business_date": "20240301",
    "created_at": "20240302010203",
    "sequence": "01",
    "source_system": "CORE",
}
CARD = "4111111111111111"


def txn_header(**changes: str) -> str:
    return "|".join({**TXN_HEADER, **changes}.values())


def txn_report(tmp_path: Path, *, header: str | None = None, trailer: str | None = None, name: str | None = None):
    lines = txn_file([txn("A"), txn("B", 250)], header=header)
    if trailer is not None:
        lines[-1] = trailer
    return validate_file(write(tmp_path / (name or "transactions_20240301.dat"), lines), today=TODAY)


def acct_report(tmp_path: Path, *, at: tuple[int, int] | None = None, value: str = "", trailer: bool = False):
    """account_summary file with positions ``at`` (1-based, inclusive) of the header or trailer overwritten."""
    lines = acct_file([acct(balance=100), acct("000000000002", balance=300, sign="-")])
    if at is not None:
        row = -1 if trailer else 0
        start, end = at
        lines[row] = lines[row][: start - 1] + value.ljust(end - start + 1) + lines[row][end:]
        assert len(lines[row]) == 120
    path = write(tmp_path / "account_summary_20240301.dat", lines, newline="\r\n")
    return validate_file(path, today=TODAY)


def only(report, rule: str, line: int) -> None:
    assert set(report.errors) == {rule}, report.rule_counts
    assert report.errors[rule].count == 1 and report.errors[rule].lines == [line]
    assert not report.valid


# --- header ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("created_at", "NOTATIME"),
        ("created_at", "20240230010203"),  # February 30
        ("created_at", "20240302250000"),  # hour 25
        ("created_at", "2024030201020"),  # 13 digits
        ("created_at", ""),
        ("created_at", "２０２４０３０２０１０２０３"),  # full-width digits
        ("sequence", "XX"),
        ("sequence", "1"),
        ("sequence", "001"),
        ("sequence", ""),
        ("sequence", "٠١"),  # Arabic-Indic digits
        ("source_system", ""),
        ("source_system", "core"),
        ("source_system", "CORE SYSTEM"),
        ("source_system", "C" * 21),
        ("source_system", CARD),
    ],
)
def test_transactions_header_field_not_in_its_format_is_h004(tmp_path, field, value):
    report = txn_report(tmp_path, header=txn_header(**{field: value}))
    only(report, "H004", 1)
    assert report.errors["H004"].message.startswith(f"header {field}: ")


@pytest.mark.parametrize(
    ("at", "value"),
    [
        ((30, 43), "NOTATIME"),
        ((30, 43), ""),  # required
        ((30, 43), "20241301000000"),  # month 13
        ((44, 44), "X"),  # the padding to 120 is spaces
        ((119, 120), "00"),
    ],
)
def test_account_summary_header_field_not_in_its_format_is_h004(tmp_path, at, value):
    only(acct_report(tmp_path, at=at, value=value), "H004", 1)


@pytest.mark.parametrize("value", ["transactions", "TRANSACTION", " TRANSACTIONS", CARD])
def test_feed_name_must_be_exact_h001(tmp_path, value):
    report = txn_report(tmp_path, header=txn_header(feed_name=value))
    only(report, "H001", 1)
    assert CARD not in report.to_json()


def test_account_summary_feed_name_is_compared_without_its_padding(tmp_path):
    assert acct_report(tmp_path).valid
    only(acct_report(tmp_path, at=(2, 21), value="account_summary"), "H001", 1)


@pytest.mark.parametrize("value", ["２０２４０３０１", "2024031", "20240301 ", CARD])
def test_business_date_must_be_an_ascii_date_h003(tmp_path, value):
    report = txn_report(tmp_path, header=txn_header(business_date=value))
    only(report, "H003", 1)
    assert CARD not in report.to_json()


@pytest.mark.parametrize(
    ("name", "sequence", "rule"),
    [
        ("transactions_20240301_02.dat", "02", None),
        ("transactions_20240301_02.dat", "01", "H005"),
        ("transactions_20240301_01.dat", "10", "H005"),
        ("transactions_20240301.dat", "07", None),  # a name without _NN has nothing to compare
        ("transactions_20240301_02.dat", "2", "H004"),  # a malformed sequence is H004 only
    ],
)
def test_header_sequence_matches_the_file_name(tmp_path, name, sequence, rule):
    report = txn_report(tmp_path, header=txn_header(sequence=sequence), name=name)
    if rule is None:
        assert report.valid, report.errors
    else:
        only(report, rule, 1)


def test_header_findings_carry_the_header_line(tmp_path):
    lines = txn_file([txn("A")], header=txn_header(created_at="NOTATIME"))
    path = write(tmp_path / "transactions_20240301.dat", ["", *lines])  # a blank first line moves the header
    report = validate_file(path, today=TODAY)
    assert report.errors["H004"].lines == [2] and report.errors["S004"].lines == [1]


# --- trailer --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "trailer",
    [
        "T||000000000012595",  # count missing
        "T|2a|000000000012595",
        "T|+2|000000000012595",
        "T| 2|000000000012595",
        "T|٢|000000000012595",  # Arabic-Indic two
        "T|²|000000000012595",  # superscript two: a Python digit that int() refuses
        "T|0000000000002|000000000012595",  # 13 digits: longer than any count, as long as a card number
        "T|" + CARD + "|000000000012595",
        "T|2|",  # total missing
        "T|2|125.95",
        "T|2|-12595",
        "T|2|+12595",
        "T|2|" + "0" * 26 + "12595",  # 31 digits
        "T|2|" + "9" * 5000,  # more digits than int() takes
    ],
)
def test_transactions_trailer_field_not_in_its_format_is_t003(tmp_path, trailer):
    report = txn_report(tmp_path, trailer=trailer)
    only(report, "T003", 4)
    assert CARD not in report.to_json()


def test_a_well_formed_trailer_still_gets_t001_and_t002(tmp_path):
    only(txn_report(tmp_path, trailer="T|3|000000000012595"), "T001", 4)
    only(txn_report(tmp_path, trailer="T|2|12596"), "T002", 4)
    assert txn_report(tmp_path, trailer="T|000000000002|" + "0" * 25 + "12595").valid  # zero padding is fine


@pytest.mark.parametrize(
    ("at", "value"),
    [
        ((11, 11), "X"),  # the sign
        ((11, 11), " "),
        ((2, 10), "00000000A"),
        ((2, 10), "        2"),
        ((12, 26), "00000000000020O"),
        ((12, 26), "-00000000000200"),
        ((27, 27), "X"),  # the padding to 120 is spaces
    ],
)
def test_account_summary_trailer_field_not_in_its_format_is_t003(tmp_path, at, value):
    only(acct_report(tmp_path, at=at, value=value, trailer=True), "T003", 4)


def test_reports_never_echo_header_or_trailer_text(tmp_path):
    marker = "Z9Q7"
    report = txn_report(
        tmp_path,
        header=txn_header(feed_name=marker, created_at=marker, sequence=marker, source_system=marker + "?"),
        trailer=f"T|{marker}|{marker}",
    )
    assert {"H001", "H004", "T003"} <= set(report.errors)
    assert marker not in report.to_json()


@pytest.mark.parametrize("feed", ["transactions", "account_summary"])
def test_every_header_and_trailer_field_has_a_check(feed):
    """No field of a header or trailer is free text: each has a type, pattern or allowed set (or its own rule)."""
    contract = load_contract(feed)
    own_rules = {"record_type", "feed_name"}
    for spec in (*contract.header, *contract.trailer):
        if spec.name in own_rules:
            continue
        assert spec.type.value != "string" or spec.pattern or spec.allowed, f"{feed}: {spec.name} is unchecked"
        assert spec.name == "filler" or spec.required, f"{feed}: {spec.name} should be required"
