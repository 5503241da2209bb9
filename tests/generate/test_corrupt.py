"""Every ``--corrupt RULE`` file differs from the valid file and breaks exactly that rule."""

from __future__ import annotations

import datetime as dt

import pytest

from etl.contract import load_contract
from etl.core.rules import Rule
from etl.core.validate import validate_file
from etl.generate import CORRUPTIBLE_RULES, BaseFile, corruptible_rules, generate
from tests.generate.conftest import DAY, FEEDS, account_value, records

CASES = [(feed, rule) for feed in FEEDS for rule in corruptible_rules(load_contract(feed))]


def test_every_rule_but_f004_is_corruptible():
    assert tuple(rule for rule in Rule if rule != "F004") == CORRUPTIBLE_RULES
    assert corruptible_rules(load_contract("transactions")) == CORRUPTIBLE_RULES
    assert "R006" not in corruptible_rules(load_contract("account_summary"))


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    out = tmp_path_factory.mktemp("valid")
    return {feed: generate(feed, DAY, rows=120, seed=21, out_dir=out) for feed in FEEDS}


@pytest.mark.parametrize(("feed", "rule"), CASES)
def test_corrupt_file_differs_and_breaks_exactly_its_rule(tmp_path, valid, feed, rule):
    path = generate(feed, DAY, rows=120, seed=21, corrupt=rule, out_dir=tmp_path)
    assert (path.name, path.read_bytes()) != (valid[feed].name, valid[feed].read_bytes())
    assert validate_file(valid[feed]).valid
    report = validate_file(path)
    assert not report.valid
    assert set(report.errors) == {rule}, report.rule_counts


@pytest.mark.parametrize("feed", FEEDS)
@pytest.mark.parametrize("rule", ["S003", "R005", "T002"])
def test_corruption_in_a_multi_chunk_file(tmp_path, feed, rule):
    path = generate(feed, DAY, rows=70_000, seed=2, corrupt=rule, out_dir=tmp_path)
    assert set(validate_file(path).errors) == {rule}


@pytest.mark.parametrize("rule", ["R003", "S005", "T001"])
def test_corruption_of_a_next_day_file(tmp_path, rule):
    base = BaseFile(DAY, 400)
    path = generate(
        "transactions", DAY + dt.timedelta(days=1), rows=50, seed=6, corrupt=rule, updates_of=base, out_dir=tmp_path
    )
    assert set(validate_file(path).errors) == {rule}


@pytest.mark.parametrize("rule", ["R001", "R002", "R003", "R004", "R005"])
def test_record_edits_keep_trailer_consistent(tmp_path, rule):
    """R-rules never touch the amount, so the trailer still matches the detail lines."""
    lines = records(generate("account_summary", DAY, rows=30, seed=1, corrupt=rule, out_dir=tmp_path))
    trailer = lines[-1]
    total = sum(account_value(line) for line in lines[1:-1])
    assert int(trailer[1:10]) == 30 and int(trailer[11:26]) == abs(total)


DAMAGE = [  # (feed, rule, what the 20-record file's lines show)
    ("transactions", "S001", lambda lines: lines[0].startswith("D|")),  # the header is gone
    ("transactions", "S002", lambda lines: lines[-1].startswith("D|")),  # the trailer is gone
    ("transactions", "T001", lambda lines: lines[-1].split("|")[1] == "21"),
    ("transactions", "S004", lambda lines: sum(line.startswith("X|") for line in lines) == 1),
    ("account_summary", "F001", lambda lines: len(lines) == 2),
    ("account_summary", "S005", lambda lines: any(len(line) == 119 for line in lines)),
    ("account_summary", "H001", lambda lines: lines[0][1:21].strip() == "PAYMENTS"),
]


@pytest.mark.parametrize(("feed", "rule", "shows"), DAMAGE, ids=[f"{feed}-{rule}" for feed, rule, _ in DAMAGE])
def test_specific_damage_of_the_lines(tmp_path, feed, rule, shows):
    path = generate(feed, DAY, rows=20, seed=1, corrupt=rule, out_dir=tmp_path)
    lines = path.read_bytes().decode("utf-8", errors="replace").split("\n")[:-1]
    assert shows(lines), (lines[:2], lines[-2:])


def test_specific_damage_of_bytes_and_names(tmp_path):
    assert b"\xff" in generate("transactions", DAY, rows=20, corrupt="F003", out_dir=tmp_path / "f3").read_bytes()
    assert generate("transactions", DAY, rows=5, corrupt="F002", out_dir=tmp_path).name == "transactions-20240301.dat"
    f005 = generate("account_summary", DAY, rows=5, corrupt="F005", out_dir=tmp_path)
    assert f005.name == "account_summary_20240301_4000056655665556.dat"
    h003 = generate("account_summary", DAY, rows=5, corrupt="H003", out_dir=tmp_path)
    assert h003.name == "account_summary_29990301.dat" and h003.read_bytes()[21:29] == b"29990301"


def test_header_and_trailer_field_damage(tmp_path):
    h004 = records(generate("account_summary", DAY, rows=5, corrupt="H004", out_dir=tmp_path / "a"))
    assert h004[0][29:43] == "NOTATIME      " and len(h004[0]) == 120
    h005 = generate("transactions", DAY, rows=5, sequence=7, corrupt="H005", out_dir=tmp_path / "b")
    assert h005.name == "transactions_20240301_07.dat" and records(h005)[0].split("|")[4] == "08"
    assert generate("transactions", DAY, rows=5, corrupt="H005", out_dir=tmp_path / "c").name.endswith("_01.dat")
    t003 = records(generate("transactions", DAY, rows=5, corrupt="T003", out_dir=tmp_path / "d"))[-1]
    assert t003.split("|")[2].count(".") == 1
    assert records(generate("account_summary", DAY, rows=5, corrupt="T003", out_dir=tmp_path / "e"))[-1][10] == "X"
    with pytest.raises(ValueError, match="H005 does not apply to feed 'account_summary'"):
        generate("account_summary", DAY, rows=5, corrupt="H005", out_dir=tmp_path / "f")
