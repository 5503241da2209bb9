"""No full card number anywhere under ETL_HOME, in the database or in the CLI's output — except inside the
original ``.dat`` bytes in raw, archive or error (DESIGN 5: the number never leaves the transform)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql

from etl.generate import derive_update_file, generate
from tests.pipeline.conftest import Pipeline, notifications
from tests.pipeline.expected import card_numbers

DAY1, DAY2, DAY3 = dt.date(2024, 3, 1), dt.date(2024, 3, 2), dt.date(2024, 3, 3)


def found_in(text: str, numbers: set[str]) -> set[str]:
    return {n for n in numbers if n in text}


def parquet_strings(path: Path) -> str:
    """Every string value of a parquet file, decompressed and decoded, one per line."""
    table = pq.read_table(path)
    values = []
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            values += [v for v in column.to_pylist() if v is not None]
    return "\n".join(values)


def database_text(pipeline: Pipeline) -> str:
    """Every row of every user table, as PostgreSQL's text of the whole row."""
    tables = pipeline.query(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
        "AND table_schema NOT IN ('pg_catalog', 'information_schema')"
    )
    assert {("fintech", "transactions"), ("etl", "file_ledger")} <= {
        (t["table_schema"], t["table_name"]) for t in tables
    }
    texts = []
    for t in tables:
        query = sql.SQL("SELECT t::text AS row FROM {} AS t").format(sql.Identifier(t["table_schema"], t["table_name"]))
        texts += [r["row"] for r in pipeline.query(query)]
    return "\n".join(texts)


def test_no_card_number_outside_the_original_files(pipeline: Pipeline) -> None:
    bad = pipeline.src / "bad"
    sources = [
        generate("transactions", DAY1, rows=1500, seed=31, out_dir=pipeline.src),
        generate("account_summary", DAY1, rows=300, seed=31, out_dir=pipeline.src),
        derive_update_file(DAY1, DAY2, base_rows=1500, rows=300, seed=31, out_dir=pipeline.src),
        generate("transactions", DAY3, rows=500, seed=32, corrupt="R006", out_dir=bad / "r006"),
        generate("transactions", DAY3, rows=500, seed=33, corrupt="S005", out_dir=bad / "s005"),
        generate("transactions", DAY3, rows=500, seed=34, corrupt="F002", out_dir=bad / "f002"),
    ]
    numbers = set().union(*(card_numbers(p) for p in sources if p.name.startswith("transactions")))
    assert len(numbers) > 50
    originals = {p.read_bytes() for p in sources}
    assert all(found_in(data.decode("utf-8"), numbers) for data in originals if b"|" in data)  # the search works

    outputs = []
    for extra in ((), ("--json",)):
        run = pipeline.subprocess("run", *extra, *sources)
        outputs.append(run.communicate(timeout=300))
        assert run.returncode == 1, outputs[-1]
    for stdout, stderr in outputs:
        assert not found_in(stdout + stderr, numbers)
    messages = notifications(outputs[0][0])
    assert sorted(m["status"] for m in messages) == ["FAILURE"] * 3 + ["SUCCESS"] * 3
    assert "R006" in next(m for m in messages if m["file"].startswith("transactions_20240303"))["errors"]

    checked = []
    for path in sorted(p for p in pipeline.home.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if data in originals:
            assert path.suffix == ".dat" and path.relative_to(pipeline.home).parts[0] in ("raw", "archive", "error")
            continue
        text = parquet_strings(path) if path.suffix == ".parquet" else ""
        assert path.suffix != ".parquet" or path.stem in text  # values decoded, source_file among them
        assert not found_in(text + "\n" + data.decode("utf-8", "replace"), numbers), path
        checked.append(path.relative_to(pipeline.home).parts[0] + path.suffix)
    assert {"stage.parquet", "archive.json", "error.json"} <= set(checked)

    text = database_text(pipeline)
    ids = {line.split("|")[1] for line in sources[0].read_text().splitlines() if line.startswith("D|")}
    assert found_in(text, ids)  # the rows are there and searched
    assert not found_in(text, numbers)


def test_database_password_is_never_printed_or_stored(pipeline: Pipeline, monkeypatch) -> None:
    secret = "s3cret-Pa55word"
    monkeypatch.setenv("ETL_DATABASE_URL", pipeline.db_url.replace("postgres@", f"postgres:{secret}@"))
    good = generate("transactions", DAY1, rows=200, seed=35, out_dir=pipeline.src)
    bad = generate("transactions", DAY2, rows=200, seed=35, corrupt="T001", out_dir=pipeline.src / "bad")
    result = pipeline.cli("run", good, bad)
    assert result.exit_code == 1, result.output + result.stderr
    assert "127.0.0.1" in result.stderr  # where the database is, is said
    assert secret not in result.stdout + result.stderr
    for path in pipeline.home.rglob("*"):
        assert not path.is_file() or secret.encode() not in path.read_bytes(), path
    assert secret not in database_text(pipeline)
