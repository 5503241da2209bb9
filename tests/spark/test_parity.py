"""Parity: the PySpark engine and the pyarrow engine give the same rows with the same Arrow types.

Both engines transform the same hand-written files (both feeds, edge values, CRLF/BOM variants); the Spark
side is read back from the parquet it wrote, the pyarrow side comes straight from ``transform_batch``.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import (
    BUSINESS_DATE,
    EXECUTION,
    LOADED_AT,
    PAN_KEY,
    TRANSACTIONS,
    account_lines,
    lineage,
    transactions_lines,
)

from etl.contract import load_contract
from etl.schema import stage_schema
from etl.spark.engine import transform_file, write_stage
from tests.builders import write

VARIANTS = {
    "lf": {},
    "bom-crlf-no-final-newline": {"newline": "\r\n", "bom": True, "final": False},
    "lone-cr": {"newline": "\r"},  # old Mac line ends: a line end to Spark's text reader, so to the parser too
}
LINES = {"transactions": transactions_lines, "account_summary": account_lines}


def pyarrow_engine(path: Path, feed: str) -> pa.Table:
    """The pyarrow engine's stage rows (imported here so each test names what is missing before a merge)."""
    from etl.core.mask import CardMasker
    from etl.core.parse import open_dat
    from etl.core.transform import Lineage, transform_batch

    contract = load_contract(feed)
    lin = Lineage(business_date=BUSINESS_DATE, source_file=path.name, execution_name=EXECUTION, loaded_at=LOADED_AT)
    masker = CardMasker(PAN_KEY)
    batches = [transform_batch(batch, contract, lin, masker) for batch in open_dat(path, contract).batches()]
    return pa.Table.from_batches(batches, schema=batches[0].schema if batches else stage_schema(contract))


def spark_engine(spark, path: Path, feed: str, stage_dir: Path) -> pa.Table:
    contract = load_contract(feed)
    df = transform_file(spark, str(path), contract, lineage(path.name), PAN_KEY)
    # the file itself: pyarrow <= 20 would add its business_date= folder as a partition column
    return pq.read_table(write_stage(df, str(stage_dir), contract, BUSINESS_DATE, path.stem), partitioning=None)


def sorted_rows(table: pa.Table, key: list[str]) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda row: [row[k] for k in key])


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("feed", ["transactions", "account_summary"])
def test_spark_and_pyarrow_engines_agree(spark, tmp_path, feed, variant):
    contract = load_contract(feed)
    path = write(tmp_path / f"{feed}_20240301.dat", LINES[feed](), **VARIANTS[variant])
    arrow = pyarrow_engine(path, feed)
    sparked = spark_engine(spark, path, feed, tmp_path / "stage")

    partition = contract.partition_column
    assert set(arrow.column(partition).to_pylist()) == {BUSINESS_DATE}
    arrow = arrow.drop_columns([partition])
    assert sparked.schema.names == arrow.schema.names
    assert [(f.name, f.type) for f in sparked.schema] == [(f.name, f.type) for f in arrow.schema]
    key = [k for k in contract.primary_key if k != partition]
    assert sorted_rows(sparked, key) == sorted_rows(arrow, key)
    assert sparked.num_rows == arrow.num_rows == len(LINES[feed]()) - 2


@pytest.mark.parametrize("feed", ["transactions", "account_summary"])
def test_both_engines_cut_a_file_at_the_same_line_ends(spark, tmp_path, feed):
    """LF, CRLF and a lone CR end a line for the parser exactly as for Spark's text reader, in any mix, so a CR
    inside a record cuts it in two for both: the validator then rejects what Spark would have read apart."""
    from etl.core.parse import open_dat
    from etl.spark.engine import read_detail_lines

    contract = load_contract(feed)
    lines = LINES[feed]()
    ends = ["\n", "\r\n", "\r", "\r\r\n", "\n\r"]
    detail = lines[1]
    cut = detail[:30] + "\r" + detail[30:]  # one record cut by a CR: a short detail line and an unknown line
    text = "".join(line + ends[i % len(ends)] for i, line in enumerate([lines[0], cut, *lines[1:]]))
    path = tmp_path / f"{feed}_20240301.dat"
    path.write_bytes(text.encode())

    reader = open_dat(path, contract)
    parsed = [line for batch in reader.batches() for line in batch.column("_line").to_pylist()]
    assert read_detail_lines(spark, str(path), contract).count() == reader.detail_records == len(lines) - 1
    assert len(parsed) == len(lines) - 2  # every well-formed record, none lost or merged
    assert reader.findings.counts()["S005"] == 1  # the first half of the cut record
    assert {"S004"} <= set(reader.findings.counts())  # its second half, and the blank lines of CR CR LF


# Card numbers outside the card field: free text masked, an id holding one masked too (the validator rejects
# such a record; the transform still never stages it in clear). Both engines must give the same text.
CARD_RUN_MERCHANTS = [
    "REFUND 4000056655665556",
    "4000 0566 5566 5556",
    "REF 4000-0566-5566-5556 X",
    "99994000056655665556000",
    "Café 3782 822463 10005",
    "x4000-0566-5566-5556",
    "1234 5678 9012 3",  # fails Luhn: kept
    "STORE #0042 4111111111111111 1234",
    "1234567890123",  # fails Luhn: kept
]
CARD_RUN_IDS = ["4000056655665556", "4000-0566-5566-5556", "TX4111111111111111", "3782-822463-10005"]


def card_run_rows() -> list[list[str]]:
    base = TRANSACTIONS[0]
    rows = [[f"C-{i:04d}", *base[1:8], text, *base[9:]] for i, text in enumerate(CARD_RUN_MERCHANTS)]
    return rows + [[ident, *base[1:8], f"ID {i}", *base[9:]] for i, ident in enumerate(CARD_RUN_IDS)]


def test_engines_agree_on_card_numbers_outside_the_card_field(spark, tmp_path):
    path = write(tmp_path / "transactions_20240301.dat", transactions_lines([*TRANSACTIONS, *card_run_rows()]))
    arrow = pyarrow_engine(path, "transactions").drop_columns(["business_date"])
    sparked = spark_engine(spark, path, "transactions", tmp_path / "stage")
    assert sorted_rows(sparked, ["transaction_id"]) == sorted_rows(arrow, ["transaction_id"])

    ids, names = arrow.column("transaction_id").to_pylist(), arrow.column("merchant_name").to_pylist()
    merchant = dict(zip(ids, names, strict=True))
    assert merchant["C-0000"] == "REFUND ************5556"
    assert merchant["C-0001"] == "**** **** **** 5556"
    assert merchant["C-0005"] == "x****-****-****-5556"
    assert merchant["C-0006"] == "1234 5678 9012 3"
    assert merchant["C-0007"] == "STORE #**** **************** 1234"
    ids = {v for v in arrow.column("transaction_id").to_pylist() if not v.startswith(("C-", "T-"))}
    assert ids == {"************5556", "****-****-****-5556", "TX************1111", "****-******-*0005"}
    staged = "\n".join(str(v) for column in arrow.columns for v in column.to_pylist())
    for number in ("4000056655665556", "378282246310005", "4111111111111111"):
        assert number not in staged.replace(" ", "").replace("-", "")
