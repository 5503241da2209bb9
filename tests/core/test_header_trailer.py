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
    ("field", "value", "rule"),
    [
        ("created_at", "NOTATIME", "H004"),
        ("created_at", "20240230010203", "H004"),  # February 30
        ("created_at", "20240302250000", "H004"),  # hour 25
        ("created_at", "2024030201020", "H004"),  # 13 digits
        ("created_at", "", "H004"),
        ("created_at", "２０２４０３０２０１０２０３", "H004"),  # full-width digits
        ("sequence", "XX", "H004"),
        ("sequence", "1", "H004"),
        ("sequence", "001", "H004"),
        ("sequence", "", "H004"),
        ("sequence", "٠١", "H004"),  # Arabic-Indic digits
        ("source_system", "", "H004"),
        ("source_system", "core", "H004"),
        ("source_system", "CORE SYSTEM", "H004"),
        ("source_system", "C" * 21, "H004"),
        ("source_system", CARD, "H004"),
        ("feed_name", "transactions", "H001"),  # the feed's name, exactly
        ("feed_name", "TRANSACTION", "H001"),
        ("feed_name", " TRANSACTIONS", "H001"),
        ("feed_name", CARD, "H001"),
        ("business_date", "２０２４０３０１", "H003"),  # an ASCII date
        ("business_date", "2024031", "H003"),
        ("business_date", "20240301 ", "H003"),
        ("business_date", CARD, "H003"),
    ],
)
def test_transactions_header_field_breaks_its_rule(tmp_path, field, value, rule):
    """H001 feed name, H003 business date, H004 any other field not in its format: one finding on line 1 that
    says what is wrong (H004 names the field) and never echoes the value."""
    report = txn_report(tmp_path, header=txn_header(**{field: value}))
    only(report, rule, 1)
    assert report.errors[rule].message.startswith(f"header {field}: " if rule == "H004" else "header ")
    assert CARD not in report.to_json()


@pytest.mark.parametrize(
    ("record", "at", "value", "rule"),
    [
        ("header", (30, 43), "NOTATIME", "H004"),
        ("header", (30, 43), "", "H004"),  # required
        ("header", (30, 43), "20241301000000", "H004"),  # month 13
        ("header", (44, 44), "X", "H004"),  # the padding to 120 is spaces
        ("header", (119, 120), "00", "H004"),
        ("trailer", (11, 11), "X", "T003"),  # the sign
        ("trailer", (11, 11), " ", "T003"),
        ("trailer", (2, 10), "00000000A", "T003"),
        ("trailer", (2, 10), "        2", "T003"),
        ("trailer", (12, 26), "00000000000020O", "T003"),
        ("trailer", (12, 26), "-00000000000200", "T003"),
        ("trailer", (27, 27), "X", "T003"),  # the padding to 120 is spaces
    ],
)
def test_account_summary_header_or_trailer_field_not_in_its_format(tmp_path, record, at, value, rule):
    """H004 on the header (line 1), T003 on the trailer (line 4): positions ``at`` overwritten with ``value``."""
    trailer = record == "trailer"
    only(acct_report(tmp_path, at=at, value=value, trailer=trailer), rule, 4 if trailer else 1)


def test_account_summary_feed_name_is_compared_without_its_padding(tmp_path):
    assert acct_report(tmp_path).valid
    only(acct_report(tmp_path, at=(2, 21), value="account_summary"), "H001", 1)


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
