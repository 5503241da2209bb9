"""A value the validator has not passed never reaches the database, so no server error (and no server log line)
can quote it: a card number in a narrow column, or any broken record, in the first, a middle or the last
batch of the one pass, for both feeds. The file still ends REJECTED with its report, nothing loaded or staged.

These tests run on a cluster of their own, whose server log they read (``<cluster>/log``), with blocks of
64 KiB so a small file has several batches.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest

from etl.config import get_settings
from etl.contract import load_contract
from etl.db import load as loader
from etl.db import migrate
from etl.generate import _layout as lay
from etl.generate import generate
from etl.generate.corrupt import FIELD_EDITS
from etl.pipeline.context import Context
from etl.pipeline.run import run_file
from tests import pg
from tests.pipeline.card_search import database_text
from tests.pipeline.conftest import REPO, Pipeline
from tests.pipeline.expected import TABLES

CARD = b"4000056655665556"  # Luhn-valid
DAY = dt.date(2024, 3, 1)
BLOCK = 64 << 10
ROWS = {"transactions": 1500, "account_summary": 2000}  # 3-4 blocks each
# Fields a card number is written over. Not transaction_id nor merchant_name: a card number there passes
# the record rules (it is a valid id / free text); what happens to it is the card-masking rule's business.
CARD_FIELDS = {
    "transactions": (
        "account_id",
        "transaction_ts",
        "posted_date",
        "amount",
        "debit_credit",
        "currency",
        "mcc",
        "channel",
        "status",
        "action",
    ),
    "account_summary": ("customer_id", "product_code", "open_date", "account_status", "apr"),
}
WHERE = ("first", "middle", "last")


@pytest.fixture(scope="module")
def cluster() -> Iterator[pg.Cluster]:
    with pg.running_cluster() as running:
        yield running


@pytest.fixture
def logged(cluster: pg.Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    name = pg.create_database(cluster.url())
    url = pg.database_url(cluster.url(), name)
    with psycopg.connect(url, autocommit=True) as conn:
        migrate.upgrade(conn)
    home, src = tmp_path / "home", tmp_path / "src"
    src.mkdir()
    logged = Pipeline(home, url, src=src)
    logged.apply(monkeypatch)
    monkeypatch.setenv("ETL_BLOCK_SIZE", str(BLOCK))
    yield logged
    pg.drop_database(cluster.url(), name)


def _line_index(lines: list[bytes], where: str) -> int:
    """Index of the first, a middle or the last detail line (line 0 is the header, the last the trailer)."""
    return {"first": 1, "middle": len(lines) // 2, "last": len(lines) - 3}[where]


def poisoned(feed: str, src: Path, where: str, field: str | None = None, rule: str | None = None) -> Path:
    """A valid file with one detail line broken: a card number over ``field``, or the edit that breaks ``rule``."""
    contract = load_contract(feed)
    path = generate(feed, DAY, rows=ROWS[feed], seed=7, out_dir=src)
    lines = path.read_bytes().split(b"\n")  # ends with b"" after the final newline
    i = _line_index(lines, where)
    if rule is not None:
        name, edit = FIELD_EDITS[feed][rule]
        old = lay.get_field(contract, contract.fields, lines[i], name)
        lines[i] = lay.set_field(contract, contract.fields, lines[i], name, edit(old, DAY))
    elif contract.format == "fixed_width":  # the card's 16 bytes over the field and the ones after it
        start = contract.field(field or "").position[0] - 1  # type: ignore[index]
        lines[i] = lines[i][:start] + CARD + lines[i][start + len(CARD) :]
    else:
        lines[i] = lay.set_field(contract, contract.fields, lines[i], field or "", CARD)
    path.write_bytes(b"\n".join(lines))
    assert len(path.read_bytes()) > 3 * BLOCK  # several batches
    return path


@pytest.fixture
def copied(monkeypatch: pytest.MonkeyPatch) -> list[pa.RecordBatch]:
    """Every batch the loader encodes for the COPY."""
    seen: list[pa.RecordBatch] = []
    original = loader.CopyTarget.encode

    def spy(self: loader.CopyTarget, batch: pa.RecordBatch) -> bytes:
        seen.append(batch)
        return original(self, batch)

    monkeypatch.setattr(loader.CopyTarget, "encode", spy)
    return seen


def server_log(cluster: pg.Cluster) -> bytes:
    return (cluster.root / "log").read_bytes()


def assert_rejected_and_nowhere(pipeline: Pipeline, cluster: pg.Cluster, feed: str, outcome_status: str) -> None:
    assert outcome_status == "FAILURE"
    assert [r["status"] for r in pipeline.ledger()] == ["REJECTED"]
    assert pipeline.query(f"SELECT count(*) AS n FROM {TABLES[feed]}") == [{"n": 0}]
    assert pipeline.files("stage") == [] and pipeline.files("archive") == []
    assert [n for n in pipeline.files("error") if n.endswith(".report.json")]
    assert CARD not in server_log(cluster)
    assert CARD.decode() not in database_text(pipeline)
    for path in pipeline.home.rglob("*"):
        if path.is_file() and not path.name.endswith(".dat"):
            assert CARD not in path.read_bytes(), path


def _run(pipeline: Pipeline, path: Path) -> str:
    with Context(get_settings()) as ctx:
        return run_file(ctx, path).status


CARD_CASES = [(feed, field, where) for feed, fields in CARD_FIELDS.items() for field in fields for where in WHERE]


@pytest.mark.parametrize(("feed", "field", "where"), CARD_CASES)
def test_a_card_number_in_any_field_never_reaches_the_copy(
    logged: Pipeline,
    cluster: pg.Cluster,
    copied: list[pa.RecordBatch],
    capsys: pytest.CaptureFixture[str],
    feed: str,
    field: str,
    where: str,
) -> None:
    path = poisoned(feed, logged.src, where, field=field)
    status = _run(logged, path)
    assert_rejected_and_nowhere(logged, cluster, feed, status)
    for batch in copied:  # the batches that did reach the COPY hold no card number in any column
        for column in batch.columns:
            if pa.types.is_string(column.type):
                assert CARD.decode() not in column.to_pylist()
    if where == "first":
        assert copied == []  # the first batch failed: the COPY got nothing
    out = capsys.readouterr()
    assert CARD.decode() not in out.out + out.err


RULE_CASES = [(feed, rule, where) for feed, edits in FIELD_EDITS.items() for rule in edits for where in WHERE]


@pytest.mark.parametrize(("feed", "rule", "where"), RULE_CASES)
def test_a_broken_record_stops_the_copy_before_its_batch(
    logged: Pipeline, cluster: pg.Cluster, copied: list[pa.RecordBatch], feed: str, rule: str, where: str
) -> None:
    path = poisoned(feed, logged.src, where, rule=rule)
    status = _run(logged, path)
    assert_rejected_and_nowhere(logged, cluster, feed, status)
    (report,) = [n for n in logged.files("error") if n.endswith(".report.json")]
    assert rule in (logged.zone("error") / report).read_text()
    reached = sum(b.num_rows for b in copied)
    assert reached < ROWS[feed] - 1  # the COPY stopped at the broken record's batch, not at the end
    if where == "first":
        assert reached == 0


@pytest.mark.parametrize("feed", ["transactions", "account_summary"])
@pytest.mark.parametrize("where", WHERE)
def test_etl_run_prints_no_card_number(logged: Pipeline, cluster: pg.Cluster, feed: str, where: str) -> None:
    """The whole command as a process: stdout, stderr and the server log hold no card number."""
    field = CARD_FIELDS[feed][0]
    path = poisoned(feed, logged.src, where, field=field)
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "etl", "run", str(path)], env=env, cwd=logged.src, capture_output=True, timeout=300
    )
    assert done.returncode == 1, done.stderr.decode(errors="replace")
    assert CARD not in done.stdout and CARD not in done.stderr
    assert_rejected_and_nowhere(logged, cluster, feed, "FAILURE")
