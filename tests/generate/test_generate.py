"""The generator writes valid, deterministic, realistic files exactly in the contract layout."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

import numpy as np
import pytest

from etl.generate import BaseFile, derive_update_file, generate
from etl.generate.transactions import card_numbers, transaction_ids
from tests.builders import luhn_ok
from tests.generate.conftest import DAY, FEEDS, account_value, records, transaction_fields


@pytest.mark.parametrize("feed", FEEDS)
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, feed):
    first = generate(feed, DAY, rows=300, seed=11, out_dir=tmp_path / "a")
    again = generate(feed, DAY, rows=300, seed=11, out_dir=tmp_path / "b")
    other = generate(feed, DAY, rows=300, seed=12, out_dir=tmp_path / "c")
    assert first.name == again.name == other.name == f"{feed}_20240301.dat"
    assert first.read_bytes() == again.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_sequence_is_in_name_and_header(tmp_path):
    path = generate("transactions", DAY, rows=5, sequence=3, out_dir=tmp_path)
    assert path.name == "transactions_20240301_03.dat"
    assert records(path)[0].split("|")[4] == "03"


def test_transactions_layout_and_trailer(small_files):
    lines = records(small_files["transactions"])
    header = lines[0].split("|")
    assert header[:3] == ["H", "TRANSACTIONS", "20240301"]
    assert re.fullmatch(r"\d{14}", header[3]) and header[4] == "01" and len(header) == 6
    details = [line.split("|") for line in lines[1:-1]]
    assert all(len(d) == 14 and d[0] == "D" for d in details)
    trailer = lines[-1].split("|")
    assert trailer[0] == "T" and len(trailer) == 3
    assert int(trailer[1]) == len(details) == 3000
    assert int(trailer[2]) == sum(int(d[6]) for d in details)


def test_transactions_field_formats(small_files):
    details = transaction_fields(small_files["transactions"])
    patterns = {
        1: r"[A-Za-z0-9-]{1,36}",
        2: r"\d{12}",
        3: r"\d{13,19}",
        4: r"2024(0228|0229|0301)\d{6}",
        5: r"20240301",
        6: r"\d{12}",
        7: r"[DC]",
        8: r"[A-Z]{3}",
        10: r"(\d{4})?",
        11: r"POS|ECOM|ATM|ACH|P2P",
        12: r"POSTED|PENDING|REVERSED",
        13: r"[AUD]",
    }
    for d in details:
        for index, pattern in patterns.items():
            assert re.fullmatch(pattern, d[index]), (index, d[index])
        assert len(d[9]) <= 40 and "|" not in d[9]
        dt.datetime.strptime(d[4], "%Y%m%d%H%M%S")
    assert len({d[1] for d in details}) == len(details)


def test_every_card_number_is_luhn_valid_and_cards_repeat(small_files):
    cards = [d[3] for d in transaction_fields(small_files["transactions"])]
    assert all(luhn_ok(card) for card in cards)
    lengths = Counter(len(card) for card in cards)
    assert lengths.most_common(1)[0][0] == 16
    distinct = len(set(cards))
    assert len(cards) / 40 <= distinct <= len(cards) / 10  # about one card per 20 transactions


def test_transactions_values_are_varied(small_files):
    details = transaction_fields(small_files["transactions"])
    amounts = [int(d[6]) for d in details]
    assert 0 in amounts and max(amounts) >= 1_000_000  # some zero, some large (>= 10,000.00)
    assert {d[7] for d in details} == {"D", "C"}
    currencies = Counter(d[8] for d in details)
    assert currencies.most_common(1)[0][0] == "USD" and len(currencies) >= 4
    assert {d[11] for d in details} == {"POS", "ECOM", "ATM", "ACH", "P2P"}
    assert {d[12] for d in details} == {"POSTED", "PENDING", "REVERSED"}
    actions = Counter(d[13] for d in details)
    assert set(actions) == {"A", "U", "D"} and actions["A"] > 0.9 * len(details)
    assert any(d[9] == "" for d in details) and any(d[10] == "" for d in details)
    assert len({d[9] for d in details}) > 50


def test_account_summary_layout_and_trailer(small_files):
    lines = records(small_files["account_summary"])
    assert all(len(line) == 120 for line in lines)
    header, trailer, details = lines[0], lines[-1], lines[1:-1]
    assert header[0] == "H" and header[1:21] == "ACCOUNT_SUMMARY".ljust(20) and header[21:29] == "20240301"
    assert re.fullmatch(r"\d{14}", header[29:43]) and header[43:].strip() == ""
    assert all(d[0] == "D" for d in details)
    total = sum(account_value(d) for d in details)
    assert trailer[0] == "T" and int(trailer[1:10]) == len(details) == 3000
    assert trailer[10] == ("-" if total < 0 else "+") and int(trailer[11:26]) == abs(total)
    assert re.fullmatch(r"\d{15}", trailer[11:26]) and trailer[26:].strip() == ""


def test_account_summary_values_cover_every_case(small_files):
    details = records(small_files["account_summary"])[1:-1]
    assert len({d[1:13] for d in details}) == len(details)
    assert {d[23:27] for d in details} == {"CCPL", "CCGD", "CHKG", "SAVG"}
    assert {d[35] for d in details} == {"A", "C", "F", "X"}
    assert any(d[36] == "-" for d in details)
    deposits = [d for d in details if d[23:27] in ("CHKG", "SAVG")]
    assert all(int(d[49:61]) == 0 for d in deposits)
    assert any(d[85:93] == " " * 8 for d in details)
    dpd = [int(d[93:96]) for d in details]
    buckets = {0 if x == 0 else 1 if x < 30 else 30 if x < 60 else 60 if x < 90 else 90 for x in dpd}
    assert buckets == {0, 1, 30, 60, 90}
    for d in details:
        assert re.fullmatch(r"\d{12}\d{10}", d[1:23]) and d[101:] == " " * 19
        dt.datetime.strptime(d[27:35], "%Y%m%d")
        if d[85:93].strip():
            dt.datetime.strptime(d[85:93], "%Y%m%d")


def test_accounts_keep_identity_across_days_and_join_transactions(tmp_path):
    one = records(generate("account_summary", DAY, rows=400, seed=9, out_dir=tmp_path / "1"))[1:-1]
    two = records(generate("account_summary", DAY + dt.timedelta(days=1), rows=400, seed=9, out_dir=tmp_path / "2"))[
        1:-1
    ]
    assert [d[1:36] for d in one] == [d[1:36] for d in two]  # ids, customer, product, open date, status
    assert [d[37:49] for d in one] != [d[37:49] for d in two]  # balances move
    tx = transaction_fields(generate("transactions", DAY, rows=4000, seed=9, out_dir=tmp_path / "t"))
    assert {d[2] for d in tx} <= {d[1:13] for d in one}


def test_next_day_updates_and_deletes_earlier_ids(tmp_path):
    day1 = generate("transactions", DAY, rows=2000, seed=3, out_dir=tmp_path)
    day2 = derive_update_file(DAY, DAY + dt.timedelta(days=1), base_rows=2000, rows=100, seed=3, out_dir=tmp_path)
    first = {d[1]: d for d in transaction_fields(day1)}
    second = transaction_fields(day2)
    by_action = Counter(d[13] for d in second)
    assert by_action["A"] == 100
    assert abs(by_action["U"] - 500) <= 25 and abs(by_action["D"] - 20) <= 3
    resent = [d for d in second if d[13] in "UD"]
    assert all(d[1] in first for d in resent)
    assert all(d[5] == "20240302" for d in resent if d[13] == "U")
    assert any(d[6] != first[d[1]][6] for d in resent if d[13] == "U")  # some amounts adjusted
    assert all(d[2:5] == first[d[1]][2:5] for d in resent)  # same account, card, timestamp
    assert all(first[d[1]][13] != "D" for d in resent)  # nothing deleted on day 1 comes back
    fresh = {d[1] for d in second if d[13] == "A"}
    assert not fresh & set(first)
    lines = records(day2)
    assert int(lines[-1].split("|")[2]) == sum(int(d[6]) for d in second)


def test_third_day_never_touches_what_day_two_deleted(tmp_path):
    d1, d2, d3 = DAY, DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=2)
    kw = {"seed": 4, "out_dir": tmp_path, "update_fraction": 0.2, "delete_fraction": 0.05}
    generate("transactions", d1, rows=1000, **kw)
    day2 = generate("transactions", d2, rows=500, updates_of=BaseFile(d1, 1000), **kw)
    day3 = generate("transactions", d3, rows=500, updates_of=[BaseFile(d1, 1000), BaseFile(d2, 500)], **kw)
    deleted2 = {d[1] for d in transaction_fields(day2) if d[13] == "D"}
    third = transaction_fields(day3)
    assert deleted2 and not deleted2 & {d[1] for d in third}
    new2 = {d[1] for d in transaction_fields(day2) if d[13] == "A"}
    assert {d[1] for d in third if d[13] in "UD"} & new2  # day 3 also revisits day-2 ids
    assert len({d[1] for d in third}) == len(third)


def test_transaction_ids_are_reproducible_from_seed_date_and_row(tmp_path):
    path = generate("transactions", DAY, rows=50, seed=8, out_dir=tmp_path)
    assert [d[1] for d in transaction_fields(path)] == transaction_ids(8, DAY, None, range(50))


def test_zero_rows_is_header_and_trailer_only(tmp_path):
    lines = records(generate("transactions", DAY, rows=0, out_dir=tmp_path))
    assert lines[0].startswith("H|") and lines[1:] == ["T|0|000000000000000"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rows": -1}, "rows"),
        ({"seed": -1}, "seed"),
        ({"sequence": 100}, "sequence"),
        ({"corrupt": "Z001"}, "unknown rule"),
        ({"corrupt": "R005", "rows": 1}, "at least 2"),
        ({"update_fraction": 1.5}, "fraction"),
    ],
)
def test_bad_arguments_are_value_errors(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate("transactions", DAY, out_dir=tmp_path, **{"rows": 10, **kwargs})


def test_account_summary_has_no_luhn_rule_nor_updates(tmp_path):
    with pytest.raises(ValueError, match="does not apply"):
        generate("account_summary", DAY, rows=10, corrupt="R006", out_dir=tmp_path)
    with pytest.raises(ValueError, match="transactions only"):
        generate("account_summary", DAY, rows=10, updates_of=BaseFile(DAY, 10), out_dir=tmp_path)


def test_card_numbers_cover_every_brand_length_and_pass_luhn():
    numbers = card_numbers(13, np.arange(20_000)).to_pylist()
    lengths = Counter(len(n) for n in numbers)
    assert set(lengths) == {13, 15, 16, 19} and lengths[16] > 0.75 * len(numbers)
    assert all(luhn_ok(n) and n.isdigit() for n in numbers)
    assert {n[0] for n in numbers} == {"3", "4", "5", "6"}
    assert card_numbers(13, np.arange(5)).to_pylist() == numbers[:5]  # a card keeps its number
