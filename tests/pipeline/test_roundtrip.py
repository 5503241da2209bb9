"""Both feeds round-trip: database and stage values equal the generated source values exactly."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow.parquet as pq
import pytest

from etl.generate import generate
from tests.pipeline.conftest import Pipeline
from tests.pipeline.expected import DATA, KEYS, LINEAGE, Table, card_token, records

DAY = dt.date(2024, 3, 1)


def _exact(value: object) -> object:
    """Decimals compared with their scale (``str``): 12.30 is not 12.3 when the column holds cents."""
    return str(value) if isinstance(value, Decimal) else value


@pytest.mark.parametrize("feed", ["transactions", "account_summary"])
def test_database_and_stage_equal_the_source(pipeline: Pipeline, feed: str) -> None:
    path = generate(feed, DAY, rows=2000, seed=41, out_dir=pipeline.src)
    result = pipeline.cli("run", path)
    assert result.exit_code == 0, result.output + result.stderr
    expected = Table(feed)
    expected.apply(path, pipeline.pan_key)
    columns = (*DATA[feed], *LINEAGE)

    db = {tuple(r[k] for k in KEYS[feed]): r for r in pipeline.table(feed)}
    assert db.keys() == expected.rows.keys()
    for key, want in expected.rows.items():
        assert {c: _exact(db[key][c]) for c in columns} == {c: _exact(want[c]) for c in columns}, key

    # stage: every record in file order (delete actions too), the partition column in the folder name
    staged = pq.read_table(pipeline.zone("stage") / feed / "business_date=2024-03-01" / f"{path.stem}.parquet")
    source = records(path, pipeline.pan_key)
    assert staged.num_rows == len(source)
    in_file = [c for c in columns if c != "business_date"]
    for row, record in zip(staged.to_pylist(), source, strict=True):
        assert {c: _exact(row[c]) for c in in_file} == {c: _exact(record.values[c]) for c in in_file}
        assert row.get("action", "A") == record.action
    loaded_at = {r["loaded_at"] for r in db.values()}
    assert len(loaded_at) == 1 and next(iter(loaded_at)).utcoffset() is not None

    rows = list(expected.rows.values())
    if feed == "transactions":
        # the sample holds what the transform has to get right
        assert any(r["signed_amount"] < 0 for r in rows) and any(r["signed_amount"] > 0 for r in rows)
        assert any(r["amount"] == 0 for r in rows) and any(r["is_international"] for r in rows)
        assert any(r["mcc"] is None for r in rows) and any(not (r["merchant_name"] or "").isascii() for r in rows)
        assert any(r["transaction_ts"].date() != r["posted_date"] for r in rows)
        assert all(r["transaction_ts"].tzinfo is not None for r in db.values())
        assert all(db[k]["transaction_ts"].utcoffset() is not None for k in db)
        by_id = {rec.key: rec.card_number for rec in records(path, pipeline.pan_key)}
        for key, row in db.items():
            assert row["card_last4"] == by_id[key][-4:]
            assert row["card_token"] == card_token(pipeline.pan_key, by_id[key])
        assert len({len(n) for n in by_id.values()}) > 1  # several card lengths
    else:
        assert any(r["current_balance"] < 0 for r in rows) and any(r["utilization"] is None for r in rows)
        assert any(r["utilization"] is not None and r["utilization"] < 0 for r in rows)
        assert any(r["payment_due_date"] is None for r in rows) and any(r["payment_due_date"] for r in rows)
        assert {r["delinquency_bucket"] for r in rows} == {"current", "1-29", "30-59", "60-89", "90+"}


def test_utc_timestamps_do_not_depend_on_the_session_time_zone(pipeline: Pipeline) -> None:
    path = generate("transactions", DAY, rows=200, seed=42, out_dir=pipeline.src)
    assert pipeline.cli("run", path).exit_code == 0
    first = next(r for r in records(path, pipeline.pan_key) if r.action != "D")
    raw = next(line for line in path.read_text().splitlines() if line.startswith(f"D|{first.key[0]}|"))
    rows = pipeline.query(
        "SELECT to_char(transaction_ts AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISS') AS ts FROM fintech.transactions "
        "WHERE transaction_id = %s",
        first.key,
    )
    assert rows == [{"ts": raw.split("|")[4]}]
