"""The streaming reader: line handling, record classification and exact line numbers."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest

from etl.contract import load_contract
from etl.core.parse import open_dat
from etl.schema import raw_schema
from etl.streams import StreamAborted, prefetched, tee
from tests.builders import acct, acct_file, txn, txn_file, write

TXN = load_contract("transactions")
ACCT = load_contract("account_summary")


def read_all(data: bytes, contract=TXN, block_size: int = 1 << 16):
    reader = open_dat(io.BytesIO(data), contract, block_size=block_size)
    table = pa.Table.from_batches(list(reader.batches()), schema=raw_schema(contract))
    return reader, table


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("final", [True, False])
@pytest.mark.parametrize("bom", [True, False])
def test_line_endings_bom_and_final_newline(tmp_path, newline, final, bom):
    lines = txn_file([txn("A1"), txn("A2", merchant_name="")])
    path = write(tmp_path / "transactions_20240301.dat", lines, newline=newline, final=final, bom=bom)
    reader, table = read_all(path.read_bytes())
    assert reader.findings.shown() == []
    assert table.column("transaction_id").to_pylist() == ["A1", "A2"]
    assert table.column("action").to_pylist() == ["A", "A"]  # no stray CR on the last field
    assert table.column("merchant_name").to_pylist() == ["ACME", ""]
    assert table.column("_line").to_pylist() == [2, 3]
    assert reader.header["business_date"] == "20240301"
    assert reader.trailer["record_count"] == "2"
    assert reader.size == len(path.read_bytes())


def test_blocks_smaller_than_the_file_keep_exact_line_numbers():
    details = [txn(f"T{i}") for i in range(500)]
    data = ("\n".join(txn_file(details)) + "\n").encode()
    reader, table = read_all(data, block_size=64 << 10)
    small_reader, small = read_all(data, block_size=1 << 10)
    assert table.equals(small)
    assert table.column("_line").to_pylist() == list(range(2, 502))
    assert reader.sha256 == small_reader.sha256


def test_trailing_empty_lines_are_ignored_but_inner_blank_lines_are_not():
    data = ("\n".join(txn_file([txn("A"), txn("B")])) + "\n\n\r\n\n").encode()
    reader, _ = read_all(data)
    assert reader.findings.shown() == []
    inner = txn_file([txn("A"), txn("B")])
    inner.insert(2, "")
    reader, _ = read_all("\n".join(inner).encode())
    assert reader.findings.shown() == [("S004", 3)]


def test_structure_problems_have_line_numbers():
    lines = txn_file([txn("A"), txn("B"), txn("C")])
    lines.insert(2, "X|what")  # unknown type
    lines.insert(3, "H|TRANSACTIONS|20240301|20240302010203|01|CORE")  # second header
    lines.insert(4, "D|short|row")  # wrong field count
    lines.insert(5, "T|3|0")  # trailer in the middle
    reader, table = read_all("\n".join(lines).encode())
    found = reader.findings.shown()
    assert found == [("S003", 4), ("S003", 6), ("S004", 3), ("S005", 5)]
    assert table.column("_line").to_pylist() == [2, 7, 8]
    assert reader.detail_records == 4


def test_missing_header_and_trailer():
    reader, _ = read_all("\n".join([txn("A"), txn("B")]).encode())
    assert list(reader.findings.counts()) == ["S001", "S002"]
    assert reader.header is None and reader.trailer is None


def test_nul_and_bad_utf8_stop_reading_with_f003():
    good = "\n".join(txn_file([txn("A"), txn("B")])).encode()
    reader, _ = read_all(good.replace(b"ACME", b"AC\x00E", 1))
    assert reader.findings.shown() == [("F003", 2)]
    reader, _ = read_all(good.replace(b"ACME", b"AC\xffE", 1))
    assert list(reader.findings.counts()) == ["F003"]
    assert reader.size == len(good)  # hashed to the end all the same


def test_fixed_width_slices_by_position_and_checks_length():
    lines = acct_file([acct("000000000001"), acct("000000000002", sign="-", due="")])
    lines.insert(2, "D123")
    reader, table = read_all("\r\n".join(lines).encode(), contract=ACCT)
    assert reader.findings.shown() == [("S005", 3)]
    assert table.column("account_id").to_pylist() == ["000000000001", "000000000002"]
    assert table.column("balance_sign").to_pylist() == ["+", "-"]
    assert table.column("payment_due_date").to_pylist() == ["20240325", " " * 8]
    assert table.column("_line").to_pylist() == [2, 4]
    assert reader.trailer["control_total_sign"] == "+"


def test_non_ascii_in_an_ascii_feed_is_f003():
    lines = acct_file([acct()])
    data = "\n".join(lines).encode().replace(b"CCPL", b"CC\xc3\xa9", 1)
    reader, _ = read_all(data, contract=ACCT)
    assert list(reader.findings.counts()) == ["F003"]


def test_a_reader_is_iterated_once():
    reader = open_dat(io.BytesIO(b""), TXN)
    list(reader.batches())
    with pytest.raises(RuntimeError):
        list(reader.batches())


def test_prefetched_passes_batches_and_errors_through():
    assert list(prefetched(iter([1, 2, 3]))) == [1, 2, 3]

    def broken():
        yield 1
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        list(prefetched(broken()))


def test_tee_hands_every_item_to_the_consumer_and_joins_it():
    seen: list[int] = []
    assert list(tee(iter(range(50)), lambda items: seen.extend(items))) == list(range(50))
    assert seen == list(range(50))


def test_tee_consumer_failure_stops_the_producer():
    def consumer(items):
        for item in items:
            if item == 3:
                raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        list(tee(iter(range(1000)), consumer))


def test_tee_aborted_early_tells_the_consumer():
    outcome: list[str] = []

    def consumer(items):
        try:
            list(items)
            outcome.append("published")
        except StreamAborted:
            outcome.append("discarded")
            raise

    stream = tee(iter(range(10)), consumer)
    next(stream)
    stream.close()
    assert outcome == ["discarded"]
