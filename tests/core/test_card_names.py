"""A card number in a file name or key (rule F005): found by the one detector of ``etl.core.card_runs``, masked
wherever a name is stored or shown (``etl.names``), and a name that only looks like digits is left alone."""

from __future__ import annotations

import os

import pytest

from etl.core.rules import Rule
from etl.core.validate import validate_stream
from etl.names import holds_card_number, name_text, terminal_text, without_card_numbers


def luhn_complete(body: str) -> str:
    """``body`` and the check digit that makes it pass Luhn (computed here on its own, not by the detector)."""
    for check in "0123456789":
        digits = [int(c) for c in body + check]
        total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(reversed(digits)))
        if total % 10 == 0:
            return body + check
    raise AssertionError(body)


NINETEEN = luhn_complete("627598000000000000")
# name -> the card number it holds (digits only)
HOSTILE = {
    "transactions_4111111111111111.dat": "4111111111111111",
    "4222222222222.dat": "4222222222222",  # 13 digits
    "amex_378282246310005.dat": "378282246310005",  # 15
    f"x_{NINETEEN}.dat": NINETEEN,  # 19
    "4000 0566 5566 5556.dat": "4000056655665556",  # spaced
    "refund-5555-5555-5555-4444_20240301_01.dat": "5555555555554444",  # dashed, then a date and a sequence
    "5200_8282_8282_8210.dat": "5200828282828210",  # underscores separate groups in a name
    "6011.0009.9013.9424.dat": "6011000990139424",  # so do dots
    "TX3530111333300000ref.dat": "3530111333300000",  # glued to letters
    "batch_99994012888888881881000.dat": "4012888888881881",  # inside a longer digit run
    "AMEX 3782 822463 10005.dat": "378282246310005",  # Amex 4-6-5 groups
    "incoming/6011111111111117/transactions_20240301.dat": "6011111111111117",  # a folder of a key
    os.fsdecode(b"caf\xff4111111111111111.dat"): "4111111111111111",  # beside a byte that is not UTF-8
    "transactions_20240301\n4000056655665556.dat": "4000056655665556",  # beside a control character
}
# names with many digits and no card number: must stay exactly as they are
PLAIN = [
    "transactions_20240301.dat",
    "transactions_20240301_01.dat",  # date + sequence
    "account_summary_20240301_99.dat",
    "transactions_1234567812345678.dat",  # 16 digits, Luhn fails
    "2024/03/01/transactions_20240301.dat",  # dated folders
    "transactions_20240301_20240302_20240303.dat",  # several dates: 8-digit groups never chain
    "export_2024-03-01_12-30-45.dat",  # 14 digits in short groups; Luhn fails
    "8f14e45f-ceea-467a-9575-4e1f8c2e7c3b.dat",  # a UUID
    "1234567890.dat",  # too short
]


def digits_of(text: str) -> str:
    return "".join(c for c in text if c.isascii() and c.isdigit())


@pytest.mark.parametrize("name", HOSTILE)
def test_a_name_holding_a_card_number_is_found_and_masked_to_its_last_four(name: str) -> None:
    card = HOSTILE[name]
    assert luhn_complete(card[:-1]) == card  # the test data are card numbers
    assert holds_card_number(name)
    for shown in (name_text(name), terminal_text(name), without_card_numbers(name)):
        assert card not in digits_of(shown)
        assert len(digits_of(shown)) == 4  # every digit but the name's last four is masked
        assert not holds_card_number(shown)
    masked = without_card_numbers(name)
    assert len(masked) == len(name)  # one character for each: separators, letters, other bytes kept
    assert [c for c in masked if not c.isdigit() and c != "*"] == [c for c in name if not c.isdigit()]


@pytest.mark.parametrize("name", PLAIN)
def test_a_name_without_a_card_number_is_shown_exactly(name: str) -> None:
    assert not holds_card_number(name)
    assert name_text(name) == terminal_text(name) == without_card_numbers(name) == name


def test_masking_keeps_what_name_text_and_terminal_text_did_before() -> None:
    name = os.fsdecode(b"caf\xff4111111111111111\x1b.dat")
    assert name_text(name) == "caf\\xff************1111\x1b.dat"  # stored: non-UTF-8 byte spelled out
    assert terminal_text(name) == "caf\\xff************1111\\x1b.dat"  # shown: the escape too
    assert without_card_numbers(name) == os.fsdecode(b"caf\xff************1111\x1b.dat")  # the byte kept


def test_a_uri_keeps_its_scheme() -> None:
    assert without_card_numbers("s3://error/unknown/undated/4111111111111111.dat") == (
        "s3://error/unknown/undated/************1111.dat"
    )


@pytest.mark.parametrize("name", [n for n in HOSTILE if "/" not in n])
def test_validation_rejects_the_name_before_reading_the_file(name: str) -> None:
    def never_opened():
        raise AssertionError("a file rejected for its name is not read")

    report = validate_stream(never_opened, name)
    assert not report.valid and report.rule_counts == {"F005": 1}
    assert report.file == name_text(name) and HOSTILE[name] not in digits_of(report.to_json())
    assert Rule.F005.meaning == "file name holds a card number"


def test_a_name_matching_no_feed_without_a_card_number_is_still_f002_and_exact() -> None:
    report = validate_stream(lambda: None, "transactions_1234567812345678.dat")  # type: ignore[arg-type, return-value]
    assert report.rule_counts == {"F002": 1} and report.file == "transactions_1234567812345678.dat"
    assert "1234567812345678" in report.errors["F002"].message
