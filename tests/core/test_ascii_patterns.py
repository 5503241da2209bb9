"""Contract patterns mean what they say in ASCII and match the WHOLE text: file names (Python ``re``) and field
values (RE2 on Arrow columns, and Python for single values) give the same, strict answers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from etl.contract import ContractError, all_contracts, contract_for_file, load_contract, parse_contract
from etl.core import checks
from etl.core.validate import validate_file
from etl.generate import generate

DAY = dt.date(2024, 3, 1)

# digits that are not 0-9 to ASCII: full-width, Arabic-Indic, Devanagari, Bengali, superscript, mathematical
UNICODE_DIGITS = {
    "full-width": "２０２４０３０１",
    "arabic-indic": "٢٠٢٤٠٣٠١",
    "devanagari": "२०२४०३०१",
    "bengali": "২০২৪০৩০১",
    "one full-width digit": "2024030１",
    "superscript two": "2024030²",
    "mathematical bold": "𝟐𝟎𝟐𝟒𝟎𝟑𝟎𝟏",
}
NEAR_MISSES = {
    "trailing newline": "transactions_20240301.dat\n",
    "trailing CRLF": "transactions_20240301.dat\r\n",
    "leading newline": "\ntransactions_20240301.dat",
    "trailing NUL": "transactions_20240301.dat\0",
    "embedded NUL": "transactions_20240301\0.dat",
    "trailing space": "transactions_20240301.dat ",
    "upper-case suffix": "transactions_20240301.DAT",
    "dotless i suffix": "transactions_20240301.dat".replace("i", "ı"),
    "Kelvin sign": "transactions_20240301.dat".replace("t", "K", 1),
    "extra suffix": "transactions_20240301.dat.gz",
    "sequence of one digit": "transactions_20240301_1.dat",
    "path with the name": "in/transactions_20240301.dat",
}


@pytest.mark.parametrize("digits", list(UNICODE_DIGITS.values()), ids=list(UNICODE_DIGITS))
@pytest.mark.parametrize("feed", ["transactions", "account_summary"])
def test_a_name_with_non_ascii_digits_matches_no_feed(feed: str, digits: str) -> None:
    name = f"{feed}_{digits}.dat"
    assert contract_for_file(name) is None
    assert load_contract(feed).match_file(name) is None
    assert load_contract(feed).file_business_date(name) is None


@pytest.mark.parametrize("name", list(NEAR_MISSES.values()), ids=list(NEAR_MISSES))
def test_a_near_miss_name_matches_no_feed(name: str) -> None:
    assert load_contract("transactions").match_file(name) is None


def test_the_exact_names_still_match() -> None:
    assert contract_for_file("transactions_20240301.dat").feed == "transactions"
    assert contract_for_file("transactions_20240301_02.dat").feed == "transactions"
    assert contract_for_file("account_summary_20240301.dat").feed == "account_summary"


@pytest.mark.parametrize(
    "name",
    [f"transactions_{UNICODE_DIGITS['full-width']}.dat", "transactions_20240301.dat\n", "transactions_20240301.dat\0"],
)
def test_validation_gives_f002_for_a_loose_name(tmp_path: Path, name: str) -> None:
    valid = generate("transactions", DAY, rows=20, seed=3, out_dir=tmp_path)
    report = validate_file(valid, file_name=name)
    assert not report.valid and set(report.errors) == {"F002"}
    assert validate_file(valid).valid  # the same bytes under the exact name


# --- field patterns: RE2 (columns) and Python (single values) agree, ASCII and whole-text --------------------

HOSTILE_VALUES = [
    "",
    "123456789012",
    "１２３４５６７８９０１２",
    "12345678901２",
    "٠١٢٣٤٥٦٧٨٩٠١",
    "123456789012\n",
    "\n123456789012",
    "123456789012\0",
    "12345678901²",
    "USD",
    "usd",
    "ＵＳＤ",
    "USD\n",
    "ÜSD",
    "a-b-c",
    "abc_é",
    "0" * 36,
    "0" * 37,
    "4000056655665556",
    "４０００056655665556",
    "   ",
    " " * 19,
    "\u00a0" * 19,
]


def _field_patterns() -> list[tuple[str, str]]:
    found = {}
    for contract in all_contracts():
        for spec in (*contract.header, *contract.fields, *contract.trailer):
            if spec.pattern:
                found[spec.pattern] = f"{contract.feed}.{spec.name}"
    extra = [r"\w+", r"^\d+$", r"[0-9]{3}", r"\s*", r"(?:AB|\d{2})"]  # classes and unanchored forms too
    return [(p, name) for p, name in found.items()] + [(p, f"extra {p}") for p in extra]


@pytest.mark.parametrize(("pattern", "where"), _field_patterns(), ids=[w for _, w in _field_patterns()])
def test_column_and_single_value_checks_agree_in_ascii(pattern: str, where: str) -> None:
    spec_matches = (
        parse_contract(_contract_with_pattern(pattern), "test.yml").fields[0].matches
    )  # the single-value check (Python, re.ASCII + fullmatch)
    column = checks.matches(pa.array(HOSTILE_VALUES, pa.string()), pattern)
    single = [spec_matches(v) for v in HOSTILE_VALUES]
    assert column.tolist() == single, where
    for value, ok in zip(HOSTILE_VALUES, single, strict=True):
        if ok:
            assert value.isascii() and "\n" not in value and "\0" not in value, (where, value)


def test_digit_patterns_take_only_ascii_digits() -> None:
    values = pa.array(["123456789012", "１２３４５６７８９０１２", "123456789012\n"], pa.string())
    assert checks.matches(values, r"^\d{12}$").tolist() == [True, False, False]
    assert checks.matches(values, r"\d{12}").tolist() == [True, False, False]  # whole text, anchors or not


def test_a_pattern_re2_cannot_run_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="RE2"):
        parse_contract(_contract_with_pattern(r"^(\d)\1$"), "test.yml")  # a back-reference: Python only


@pytest.mark.parametrize("pattern", ["(?i)^usd$", "^(?i:usd)$", "(?si)x", "(?i-s:x)"])
def test_a_case_insensitive_field_pattern_is_a_contract_error(pattern: str) -> None:
    """RE2 folds case in Unicode (``k`` matches the Kelvin sign ``K``), Python's ``re.ASCII`` does not."""
    with pytest.raises(ContractError, match="case-insensitive"):
        parse_contract(_contract_with_pattern(pattern), "test.yml")


def _contract_with_pattern(pattern: str) -> str:
    quoted = pattern.replace("'", "''")
    return f"""
feed: test
file_pattern: '^test_(?P<date>\\d{{8}})\\.dat$'
format: delimited
delimiter: '|'
header:
  - {{name: record_type, index: 0}}
trailer:
  - {{name: record_type, index: 0}}
  - {{name: record_count, index: 1, type: integer, max_length: 9}}
fields:
  - {{name: value, index: 0, pattern: '{quoted}'}}
primary_key: [value]
target_table: {{schema: s, name: t}}
checks:
  record_count: {{trailer_field: record_count}}
  control_total: {{trailer_field: record_count}}
"""


@pytest.mark.parametrize("count", ["２", "²", "٢", "1２"], ids=["full-width", "superscript", "arabic", "mixed"])
def test_a_trailer_with_non_ascii_digits_is_a_finding_not_a_crash(tmp_path: Path, count: str) -> None:
    valid = generate("transactions", DAY, rows=2, seed=3, out_dir=tmp_path)
    lines = valid.read_text().splitlines()
    trailer = lines[-1].split("|")
    trailer[1] = count
    lines[-1] = "|".join(trailer)
    valid.write_text("\n".join(lines) + "\n")
    report = validate_file(valid)
    assert not report.valid and {"T001", "T003"} & set(report.errors)  # count mismatch or field not in format


def test_a_header_date_in_full_width_digits_is_not_a_date(tmp_path: Path) -> None:
    valid = generate("transactions", DAY, rows=2, seed=3, out_dir=tmp_path)
    text = valid.read_text()
    valid.write_text(text.replace("|20240301|", "|２０２４０３０１|", 1))
    report = validate_file(valid)
    assert not report.valid and {"H003", "H004"} & set(report.errors)  # not a date, or field not in format
