"""The one pass of ``etl run`` and the step-by-step path (the Lambda's) judge structure, header and trailer
the same way: same rules, same exact counts, and the file is REJECTED with nothing loaded."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from etl.config import get_settings
from etl.contract import load_contract
from etl.core.validate import Report
from etl.generate import corruptible_rules, generate
from etl.pipeline import steps
from etl.pipeline.context import Context
from etl.pipeline.run import run_file
from tests.pipeline.conftest import Pipeline
from tests.pipeline.expected import TABLES

DAY1 = dt.date(2024, 3, 1)
FIELD_RULES = ("H004", "H005", "T003")
CASES = [
    (feed, rule)
    for feed in ("transactions", "account_summary")
    for rule in FIELD_RULES
    if rule in corruptible_rules(load_contract(feed))
]


def step_by_step(path: Path) -> Report:
    with Context(get_settings()) as ctx:
        ref = steps.land_to_raw(ctx, steps.accept_local(ctx, path))
        return steps.validate(ctx, ref).report


def assert_same_verdict(pipeline: Pipeline, feed: str, one: Path, other: Path) -> dict[str, int]:
    with Context(get_settings()) as ctx:
        outcome = run_file(ctx, one)
    report = step_by_step(other)
    assert outcome.status == "FAILURE" and not report.valid
    assert outcome.errors == report.rule_counts
    assert [row["status"] for row in pipeline.ledger()] == ["REJECTED"]
    assert pipeline.query(f"SELECT count(*) AS n FROM {TABLES[feed]}") == [{"n": 0}]
    return report.rule_counts


@pytest.mark.parametrize(("feed", "rule"), CASES)
def test_header_and_trailer_fields_in_both_paths(pipeline: Pipeline, feed: str, rule: str) -> None:
    one, other = (
        generate(feed, DAY1, rows=300, seed=34, corrupt=rule, out_dir=pipeline.src / where) for where in ("a", "b")
    )
    assert assert_same_verdict(pipeline, feed, one, other) == {rule: 1}


def test_junk_lines_in_both_paths(pipeline: Pipeline) -> None:
    """100,000 blank and unknown lines in a file bigger than a parse block: exact counts in either path."""
    paths = []
    for where in ("a", "b"):
        path = generate("transactions", DAY1, rows=40_000, seed=35, out_dir=pipeline.src / where)
        lines = path.read_bytes().split(b"\n")
        lines[20_000:20_000] = [b"", b"X|junk"] * 50_000
        path.write_bytes(b"\n".join(lines))
        paths.append(path)
    assert assert_same_verdict(pipeline, "transactions", *paths) == {"S004": 100_000}
