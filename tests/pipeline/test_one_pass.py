"""``etl run`` validates, transforms, stages and loads a file in one pass; files that pass cannot take go
step by step and end the same way."""

from __future__ import annotations

import datetime as dt
import gc
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest

import etl.contract
from etl.config import get_settings
from etl.contract import Contract, load_contract
from etl.db import load
from etl.db.ledger import set_counts
from etl.generate import corruptible_rules, generate
from etl.io import stage
from etl.pipeline import one_pass, steps
from etl.pipeline.context import Context
from etl.pipeline.run import Outcome, run_file
from tests.pipeline.conftest import Pipeline
from tests.pipeline.expected import TABLES, Counts, Table
from tests.pipeline.test_lifecycle import assert_table, ledger_counts

DAY1 = dt.date(2024, 3, 1)


def run_counting_passes(path: object) -> tuple[Outcome, int]:
    passes: list[int] = []
    with Context(get_settings()) as ctx:
        ctx.on_pass = lambda: passes.append(1)
        outcome = run_file(ctx, path)  # type: ignore[arg-type]
    return outcome, len(passes)


def test_a_valid_file_is_parsed_once(pipeline: Pipeline) -> None:
    path = generate("transactions", DAY1, rows=500, seed=31, out_dir=pipeline.src)
    outcome, passes = run_counting_passes(path)
    assert (outcome.status, passes) == ("SUCCESS", 1)
    expected = Table("transactions")
    counts = expected.apply(path, pipeline.pan_key)
    assert outcome.rows["inserted"] == counts.inserted
    assert_table(pipeline, expected)
    report = pipeline.zone("archive") / "transactions" / "2024-03-01" / f"{path.name}.report.json"
    assert report.exists()  # the one pass still writes the report beside the file


@pytest.fixture
def tolerant_transactions(monkeypatch: pytest.MonkeyPatch) -> Contract:
    """The transactions contract with half of the records allowed to be rejected (the packaged one: 0)."""
    original = etl.contract.load_contract
    tolerant = original("transactions").model_copy(update={"reject_threshold": 0.5})

    def patched(feed: str) -> Contract:
        return tolerant if feed == "transactions" else original(feed)

    monkeypatch.setattr(etl.contract, "load_contract", patched)
    monkeypatch.setattr(steps, "load_contract", patched)
    return tolerant


def test_tolerated_rejects_are_left_out_by_a_second_pass(pipeline: Pipeline, tolerant_transactions: Contract) -> None:
    path = generate("transactions", DAY1, rows=500, seed=32, corrupt="R006", out_dir=pipeline.src)
    outcome, passes = run_counting_passes(path)
    assert outcome.status == "SUCCESS" and passes >= 2  # the one pass rolled back, the step-by-step one loaded
    rejected = outcome.rows["rejected"]
    assert rejected >= 1 and outcome.rows["rows_in"] == 500  # every record, the rejected ones included
    (ledger,) = pipeline.ledger()
    assert (ledger["status"], ledger["rows_rejected"], ledger["rows_in"]) == ("LOADED", rejected, 500)
    assert ledger_counts(ledger) == Counts(**outcome.rows) and Counts(**outcome.rows).accounted
    count = pipeline.query("SELECT count(*) AS n FROM fintech.transactions")[0]["n"]
    assert count == outcome.rows["inserted"]
    (stage,) = pipeline.files("stage")
    assert pq.read_metadata(pipeline.zone("stage") / stage).num_rows == 500 - rejected
    day_dir = pipeline.zone("archive") / "transactions" / "2024-03-01"
    assert (day_dir / f"{path.name}.rejects.dat").read_text().split()  # the rejected line numbers


FEEDS = ("transactions", "account_summary")
BROKEN = [(feed, rule) for feed in FEEDS for rule in corruptible_rules(load_contract(feed))]


@pytest.mark.parametrize(("feed", "rule"), BROKEN)
def test_every_broken_file_is_rejected_not_failed(pipeline: Pipeline, feed: str, rule: str) -> None:
    """Bad values reach the one pass's COPY and parquet before the verdict (a blank required date, an amount
    too long): whatever breaks there, the file still ends REJECTED with its report, nothing loaded or staged."""
    path = generate(feed, DAY1, rows=300, seed=33, corrupt=rule, out_dir=pipeline.src)
    with Context(get_settings()) as ctx:
        outcome = run_file(ctx, path)
    assert outcome.status == "FAILURE" and rule in outcome.errors, (outcome.error, outcome.errors)
    assert [row["status"] for row in pipeline.ledger()] == ["REJECTED"]
    assert pipeline.query(f"SELECT count(*) AS n FROM {TABLES[feed]}") == [{"n": 0}]
    assert pipeline.files("stage") == [] and pipeline.files("archive") == []
    reports = [name for name in pipeline.files("error") if name.endswith(".report.json")]
    assert len(reports) == 1


def test_a_value_the_transform_cannot_take_still_means_rejected(pipeline: Pipeline) -> None:
    """A 13-digit amount does not fit numeric(12,2): the transform raises in the middle of the one pass,
    before the verdict. The file goes step by step then, and validation rejects it."""
    path = generate("transactions", DAY1, rows=300, seed=34, out_dir=pipeline.src)
    lines = path.read_bytes().split(b"\n")
    fields = lines[5].split(b"|")
    fields[6] = b"9" * 13  # amount
    lines[5] = b"|".join(fields)
    path.write_bytes(b"\n".join(lines))
    with Context(get_settings()) as ctx:
        outcome = run_file(ctx, path)
    assert outcome.status == "FAILURE" and outcome.errors, outcome.error
    assert [row["status"] for row in pipeline.ledger()] == ["REJECTED"]
    assert pipeline.files("stage") == [] and pipeline.files("archive") == []


# --- every early end of a pass joins the threads it started ---------------------------------------------------


def _bad_amount(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """A 13-digit amount on line 6: the transform cannot take it (numeric(12,2))."""
    lines = path.read_bytes().split(b"\n")
    fields = lines[5].split(b"|")
    fields[6] = b"9" * 13
    lines[5] = b"|".join(fields)
    path.write_bytes(b"\n".join(lines))


def _out_of_space(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """The stage writer fails on every second batch (a full disk), in the one pass and step by step alike."""
    real, written = stage._for_parquet, []

    def full(*args):
        written.append(1)
        if len(written) % 2 == 0:
            raise OSError(28, "No space left on device")
        return real(*args)

    monkeypatch.setattr(stage, "_for_parquet", full)


def _copy_fails(error: BaseException) -> Callable[[pytest.MonkeyPatch, Path], None]:
    """Encoding a COPY's second batch raises ``error`` (a KeyboardInterrupt stands for a signal)."""

    def inject(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
        real, encoded = load.CopyTarget.encode, []

        def encode(self, batch):
            encoded.append(1)
            if len(encoded) % 2 == 0:
                raise error
            return real(self, batch)

        monkeypatch.setattr(load.CopyTarget, "encode", encode)

    return inject


def _loaded_meanwhile(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Another run loads the same content between the pass's ledger check and its load's lock."""
    other = path.parent / "other" / path.name
    other.parent.mkdir()
    shutil.copyfile(path, other)
    with Context(get_settings()) as ctx:
        assert run_file(ctx, other).status == "SUCCESS"
    monkeypatch.setattr(one_pass, "ledger", SimpleNamespace(already_loaded=lambda *_: False, set_counts=set_counts))


EARLY_ENDS = {  # how a pass ends early -> (the rule the file breaks, what else breaks, how the file's run ends)
    "a finding stops the pass": ("R006", None, "FAILURE"),
    "a value the transform cannot take": (None, _bad_amount, "FAILURE"),
    "the stage writer fails": (None, _out_of_space, "FAILURE"),
    "the COPY fails": (None, _copy_fails(load.LoadError("injected")), "FAILURE"),
    "a signal in the COPY": (None, _copy_fails(KeyboardInterrupt()), "KeyboardInterrupt"),
    "another run loaded it meanwhile": (None, _loaded_meanwhile, "SKIPPED"),
}


@pytest.mark.parametrize("end", EARLY_ENDS)
def test_every_early_end_joins_the_threads_of_its_passes(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, end: str
) -> None:
    """Whatever ends a pass early, the reader, stage writer and COPY threads it started are gone when the
    file's run returns, with the cycle collector off: no thread waits for garbage collection to stop (a
    reader still at work while the interpreter exits can abort the process)."""
    rule, breaks, ending = EARLY_ENDS[end]
    monkeypatch.setenv("ETL_BLOCK_SIZE", str(64 << 10))  # many batches: the reader is ahead when the pass stops
    path = generate("transactions", DAY1, rows=20_000, seed=36, corrupt=rule, out_dir=pipeline.src)
    if breaks is not None:
        breaks(monkeypatch, path)
    before = set(threading.enumerate())
    gc.disable()
    try:
        with Context(get_settings()) as ctx:
            try:
                status = str(run_file(ctx, path).status)
            except KeyboardInterrupt:
                status = "KeyboardInterrupt"
        left = sorted(t.name for t in set(threading.enumerate()) - before)
    finally:
        gc.enable()
    assert (status, left) == (ending, [])
