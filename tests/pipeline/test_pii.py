"""No full card number anywhere under ETL_HOME, in the database, in the PostgreSQL server log or in the CLI's
output (text and JSON notifications) — except inside the original ``.dat`` bytes in raw, archive or error
(docs/design.md §5: the number never leaves the transform). That includes card numbers where no card number
belongs: in a merchant name (masked), as a transaction id (R007), in the header or trailer, written with
spaces or dashes, or inside a longer digit string."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from etl.generate import derive_update_file, generate
from tests.builders import luhn_complete
from tests.pipeline.card_search import database_text, found_in, server_log_since
from tests.pipeline.conftest import Pipeline, notifications
from tests.pipeline.expected import card_numbers

DAY1, DAY2, DAY3 = dt.date(2024, 3, 1), dt.date(2024, 3, 2), dt.date(2024, 3, 3)


# card numbers where no card number belongs (not the generator's: they must be found by their own search)
HOSTILE = {
    "visa": "4000056655665556",
    "mastercard": "5200828282828210",
    "amex": "378282246310005",
    "discover": "6011000990139424",
    "visa13": "4222222222222",
    "jcb": "3530111333300000",
    "nineteen": luhn_complete("627598000000000000"),
    "in_id": "4111111111111111",
    "in_id_dashed": "5555555555554444",
    "in_header": "4012888888881881",
    "in_trailer": "6011111111111117",
}
MERCHANTS = [
    f"REFUND {HOSTILE['visa']}",
    "5200 8282 8282 8210",
    "AMEX 3782-822463-10005",
    f"X{HOSTILE['discover']}Y",
    f"9999{HOSTILE['visa13']}000",  # inside a longer digit string
    "3530-1113-3330-0000 REF",
    f"CARD {HOSTILE['nineteen'][:10]} {HOSTILE['nineteen'][10:]}",
]


def with_fields(path: Path, out: Path, edit) -> Path:
    """A copy of a generated transactions file with detail lines edited (``edit(index, fields)``)."""
    lines = path.read_text().splitlines()
    details = [i for i, line in enumerate(lines) if line.startswith("D|")]
    for n, i in enumerate(details):
        fields = lines[i].split("|")
        edit(n, fields)
        lines[i] = "|".join(fields)
    out.mkdir(parents=True, exist_ok=True)
    target = out / path.name
    target.write_text("\n".join(lines) + "\n")
    return target


def hostile_sources(src: Path) -> list[Path]:
    """Card numbers outside the card field: merchant names (loaded, masked), ids, header, trailer (rejected)."""
    day = dt.date(2024, 3, 4)

    def merchants(n: int, fields: list[str]) -> None:
        if n < len(MERCHANTS):
            fields[9] = MERCHANTS[n]

    def ids(n: int, fields: list[str]) -> None:
        if n == 3:
            fields[1] = HOSTILE["in_id"]
        if n == 7:
            fields[1] = "-".join(HOSTILE["in_id_dashed"][k : k + 4] for k in range(0, 16, 4))

    base = generate("transactions", day, rows=200, seed=41, out_dir=src / "base-merchants")
    loaded = with_fields(base, src / "merchants", merchants)
    base = generate("transactions", day + dt.timedelta(days=1), rows=200, seed=42, out_dir=src / "base-ids")
    rejected = with_fields(base, src / "ids", ids)
    corrupt_r007 = generate(
        "transactions", day + dt.timedelta(days=2), rows=200, seed=43, corrupt="R007", out_dir=src / "r007"
    )
    header = generate("transactions", day + dt.timedelta(days=3), rows=50, seed=44, out_dir=src / "header")
    lines = header.read_text().splitlines()
    lines[0] = lines[0].replace("|TRANSACTIONS|", f"|{HOSTILE['in_header']}|")
    lines[-1] = f"T|{HOSTILE['in_trailer']}|{HOSTILE['in_trailer']}"
    header.write_text("\n".join(lines) + "\n")
    return [loaded, rejected, corrupt_r007, header]


def parquet_strings(path: Path) -> str:
    """Every string value of a parquet file, decompressed and decoded, one per line."""
    table = pq.read_table(path)
    values = []
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            values += [v for v in column.to_pylist() if v is not None]
    return "\n".join(values)


def test_no_card_number_outside_the_original_files(pipeline: Pipeline, pg_server_log: Path) -> None:
    bad = pipeline.src / "bad"
    log_start = pg_server_log.stat().st_size
    sources = [
        generate("transactions", DAY1, rows=1500, seed=31, out_dir=pipeline.src),
        generate("account_summary", DAY1, rows=300, seed=31, out_dir=pipeline.src),
        derive_update_file(DAY1, DAY2, base_rows=1500, rows=300, seed=31, out_dir=pipeline.src),
        generate("transactions", DAY3, rows=500, seed=32, corrupt="R006", out_dir=bad / "r006"),
        generate("transactions", DAY3, rows=500, seed=33, corrupt="S005", out_dir=bad / "s005"),
        generate("transactions", DAY3, rows=500, seed=34, corrupt="F002", out_dir=bad / "f002"),
        *hostile_sources(pipeline.src / "hostile"),
    ]
    numbers = set().union(*(card_numbers(p) for p in sources if p.name.startswith("transactions")))
    assert len(numbers) > 50 and not numbers & set(HOSTILE.values())
    numbers |= set(HOSTILE.values())
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
    assert sorted(m["status"] for m in messages) == ["FAILURE"] * 6 + ["SUCCESS"] * 4
    assert "R006" in next(m for m in messages if m["file"].startswith("transactions_20240303"))["errors"]
    by_file = {m["file"]: m for m in messages}
    assert by_file["transactions_20240304.dat"]["status"] == "SUCCESS"  # merchant names masked, rows kept
    assert by_file["transactions_20240305.dat"]["errors"] == {"R007": 2}
    assert by_file["transactions_20240306.dat"]["errors"] == {"R007": 2}
    assert {"H001", "T002", "T003"} <= set(by_file["transactions_20240307.dat"]["errors"])

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
    assert "REFUND ************5556" in text and "****-******-*0005" in text  # masked merchant names stored
    assert not found_in(text, numbers)

    server_log = server_log_since(pipeline.db_url, pg_server_log, log_start)
    assert not found_in(server_log, numbers)


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
