"""No input, however broken, makes validation raise: mutated, truncated and oversized files all get a report."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from etl.core.validate import validate_file
from tests.builders import acct, acct_file, txn, txn_file, write

SEEDS = range(60)


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """Flip, insert, delete or duplicate a few random bytes, or cut the file short."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        kind = rng.choice(["flip", "insert", "delete", "cut", "dup"])
        at = rng.randrange(max(len(buf), 1))
        if kind == "flip" and buf:
            buf[at] = rng.randrange(256)
        elif kind == "insert":
            buf[at:at] = bytes([rng.choice(b"|\r\n \x00\xffD9T")])
        elif kind == "delete" and buf:
            del buf[at]
        elif kind == "cut":
            del buf[at:]
        elif kind == "dup":
            buf[at:at] = buf[at : at + rng.randint(1, 200)]
    return bytes(buf)


@pytest.mark.parametrize("feed", ["transactions", "account_summary"])
def test_mutated_files_always_get_a_report(tmp_path: Path, feed: str) -> None:
    if feed == "transactions":
        name = "transactions_20240301.dat"
        original = write(tmp_path / name, txn_file([txn(f"T{i}", 100 + i) for i in range(30)])).read_bytes()
    else:
        name = "account_summary_20240301.dat"
        lines = acct_file([acct(f"{i:012d}", balance=i * 7) for i in range(1, 31)])
        original = write(tmp_path / name, lines, newline="\r\n").read_bytes()
    outcomes = set()
    for seed in SEEDS:
        rng = random.Random(seed)
        path = tmp_path / "m" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(_mutate(original, rng))
        report = validate_file(path, block_size=256)  # tiny blocks: records straddle block edges
        assert report.feed == feed
        assert report.valid == (not report.errors)
        outcomes.add(report.valid)
    assert False in outcomes  # the mutations do break files


def test_a_line_longer_than_any_record_is_s005_not_a_memory_blow_up(tmp_path: Path) -> None:
    path = tmp_path / "transactions_20240301.dat"
    path.write_bytes(b"H|TRANSACTIONS|20240301|20240302010203|01|CORE\n" + b"D" * (3 << 20))
    report = validate_file(path, block_size=64 << 10)
    assert not report.valid and "S005" in report.errors


# --- junk lines: exact counts, a bounded sample, whatever the block size --------------------------------------

JUNK_COPIES = 20_000
BLOCK_SIZES = [4096, 1 << 20]  # many block edges inside the junk, and the whole junk in one block


def _junk_file(tmp_path: Path, feed: str, junk: bytes, *, copies: int = JUNK_COPIES) -> tuple[Path, int]:
    """A valid two-record file with ``copies`` of ``junk`` between its records; the junk's first line number."""
    if feed == "transactions":
        lines = txn_file([txn("A", 100), txn("B", 200)])
        name = "transactions_20240301.dat"
    else:
        lines = acct_file([acct("000000000001", balance=100), acct("000000000002", balance=200)])
        name = "account_summary_20240301.dat"
    encoded = [line.encode() + b"\n" for line in lines]
    path = tmp_path / name
    path.write_bytes(b"".join([*encoded[:2], junk * copies, *encoded[2:]]))
    return path, 3


def _expect(report, rule: str, count: int, first: int, step: int = 1) -> None:
    found = report.errors[rule]
    assert found.count == count, (rule, found)
    assert found.lines == [first + step * k for k in range(min(count, 10))]
    assert not report.valid


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
@pytest.mark.parametrize("feed", ["transactions", "account_summary"])
@pytest.mark.parametrize(
    ("junk", "lines_each"),
    [
        (b"\r\n", 1),  # CR-only lines of a CRLF blank
        (b"\r", 1),  # lone CR: a line end, so a blank line
        (b"\r\r\r\n", 3),  # two lone CRs and a CRLF: three blank lines
        (b"\n", 1),
    ],
)
def test_blank_line_classes_are_counted_exactly(tmp_path, feed, block_size, junk, lines_each):
    path, first = _junk_file(tmp_path, feed, junk)
    report = validate_file(path, block_size=block_size)
    assert set(report.errors) == {"S004"}, report.rule_counts
    _expect(report, "S004", JUNK_COPIES * lines_each, first)
    assert report.row_count == 2


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
@pytest.mark.parametrize(
    ("feed", "junk", "rule"),
    [
        ("transactions", b"|" * 13 + b"\n", "S004"),  # only delimiters: record type ''
        ("transactions", b"|\r\n", "S004"),
        ("transactions", b"X\n", "S004"),
        ("transactions", b"\xef\xbb\xbfD|A|B\n", "S004"),  # a BOM in the middle is no record type
        ("transactions", b"D\n", "S005"),  # a detail type without fields
        ("transactions", b"D|" + b"|" * 40 + b"\n", "S005"),
        ("transactions", b"D|" + b"x" * 100_000 + b"\n", "S005"),  # very long, under the runaway limit
        ("account_summary", b" " * 120 + b"\n", "S004"),
        ("account_summary", b"Z" * 120 + b"\r\n", "S004"),
        ("account_summary", b"D" * 121 + b"\n", "S005"),
        ("account_summary", b"D" + b"0" * 100_000 + b"\n", "S005"),
    ],
)
def test_junk_record_classes_are_counted_exactly(tmp_path, feed, junk, rule, block_size):
    copies = JUNK_COPIES if len(junk) < 1000 else 30
    path, first = _junk_file(tmp_path, feed, junk, copies=copies)
    report = validate_file(path, block_size=block_size)
    assert set(report.errors) - {"T001"} == {rule}, report.rule_counts  # S005 lines count as detail records
    _expect(report, rule, copies, first)


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
def test_misplaced_headers_and_trailers_are_counted_exactly(tmp_path, block_size):
    header = b"H|TRANSACTIONS|20240301|20240302010203|01|CORE\n"
    path, first = _junk_file(tmp_path, "transactions", header + b"T|2|300\n")
    report = validate_file(path, block_size=block_size)
    assert set(report.errors) == {"S003"}
    assert report.errors["S003"].count == 2 * JUNK_COPIES
    assert report.errors["S003"].lines == list(range(first, first + 10))


def test_a_bom_in_the_middle_of_an_ascii_feed_is_f003(tmp_path):
    path, first = _junk_file(tmp_path, "account_summary", b"\xef\xbb\xbf" + b" " * 117 + b"\n", copies=3)
    report = validate_file(path)
    assert set(report.errors) == {"F003"} and report.errors["F003"].lines == [first]


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
def test_nul_after_junk_stops_reading_at_its_exact_line(tmp_path, block_size):
    path, first = _junk_file(tmp_path, "transactions", b"\n")
    data = path.read_bytes()
    at = data.index(b"D|B")
    path.write_bytes(data[:at] + b"\x00" + data[at:])
    report = validate_file(path, block_size=block_size)
    assert report.errors["F003"].lines == [first + JUNK_COPIES]
    assert report.size == len(data) + 1


def test_mixed_line_ends_are_valid(tmp_path):
    lines = txn_file([txn(f"T{i}", 100 + i) for i in range(30)])
    ends = [b"\n", b"\r\n"]
    path = tmp_path / "transactions_20240301.dat"
    path.write_bytes(b"".join(line.encode() + ends[i % 2] for i, line in enumerate(lines)))
    for block_size in (64, 256, 1 << 20):
        report = validate_file(path, block_size=block_size)
        assert report.valid and report.row_count == 30, report.errors


def test_a_lone_cr_inside_a_record_cuts_it_in_two(tmp_path):
    """As Spark's text reader would: the first half is a short detail record, the second an unknown type."""
    details = [txn("A", 100), txn("B", 200)]
    details[1] = details[1].replace("|ACME|", "|AC\rME|")
    path = write(tmp_path / "transactions_20240301.dat", txn_file(details, count=2, total=100))  # B is no record
    report = validate_file(path)
    assert report.rule_counts == {"S004": 1, "S005": 1}
    assert report.errors["S005"].lines == [3] and report.errors["S004"].lines == [4]


def test_junk_of_every_kind_at_once_keeps_exact_counts(tmp_path):
    junk = b"\n" + b"X\n" + b"D\n" + b"\r\n" + b"|||\n"
    path, _ = _junk_file(tmp_path, "transactions", junk)
    report = validate_file(path, block_size=4096)
    assert report.errors["S004"].count == 4 * JUNK_COPIES
    assert report.errors["S005"].count == JUNK_COPIES
    assert report.errors["S004"].lines == [3, 4, 6, 7, 8, 9, 11, 12, 13, 14]
    assert report.errors["S005"].lines == [5 + 5 * k for k in range(10)]
    assert report.row_count == 2 + JUNK_COPIES


@pytest.mark.parametrize(
    ("junk", "message", "hidden"),
    [
        (b"X|1\n", "unknown record type 'X'", None),
        (b"\x1b[2J|x\n", "unknown record type (not a short letter code)", "[2J"),
        (b"[b]|x\n", "unknown record type (not a short letter code)", "[b]"),
        (b"4111111111111111|x\n", "unknown record type (not a short letter code)", "4111"),
        (b"|x\n", "unknown record type (empty)", None),
    ],
)
def test_an_unknown_record_type_is_shown_only_when_it_looks_like_one(tmp_path, junk, message, hidden):
    path, _ = _junk_file(tmp_path, "transactions", junk, copies=2)
    report = validate_file(path)
    assert report.errors["S004"].message == message
    if hidden:
        assert hidden not in report.to_json()
