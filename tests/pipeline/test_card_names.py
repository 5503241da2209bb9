"""``etl run`` (a real process, a real PostgreSQL) on files whose NAME holds a card number: each is rejected
(F005) and ends in the error zone under its masked name, with its report and its exact name as the bytes of a
``.name`` sidecar; the number is nowhere else — not in the CLI's output or notifications, the ledger, any
table, any other file under ETL_HOME, nor the PostgreSQL server log. A card number in the caller's folder
does not stop a valid file; names that only hold many digits are shown as they are."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

from etl.generate import generate
from etl.names import name_text
from etl.pipeline.steps import NAME_SUFFIX
from tests.core.test_card_names import HOSTILE, luhn_complete
from tests.pipeline.card_search import database_text, found_in, server_log_since
from tests.pipeline.conftest import Pipeline, notifications

DAY = dt.date(2024, 3, 1)
NAMES = {name: card for name, card in HOSTILE.items() if "/" not in name and "\n" not in name and "\udcff" not in name}
# Two different card numbers with the same last four: their names mask alike and must not collide.
TWIN_A = "4111111111111111.dat"
TWIN_B = "5200828282871111.dat"
FOLDER_CARD = "6011111111111117"
NOT_A_CARD = "transactions_1234567812345678.dat"  # 16 digits, Luhn fails: F002, shown as it is


def test_a_card_number_in_a_file_name_never_leaves_the_zones(pipeline: Pipeline, pg_server_log: Path) -> None:
    assert luhn_complete(TWIN_B[:15]) == TWIN_B[:16] and TWIN_B[12:16] == TWIN_A[12:16] and TWIN_A != TWIN_B
    log_start = pg_server_log.stat().st_size
    valid = generate("transactions", DAY, rows=40, seed=5, out_dir=pipeline.src / "gen")
    bad_names = {**NAMES, TWIN_A: TWIN_A[:16], TWIN_B: TWIN_B[:16]}
    sources = []
    for name in bad_names:
        sources.append(pipeline.src / "in" / name)
        sources[-1].parent.mkdir(exist_ok=True)
        shutil.copyfile(valid, sources[-1])
    shutil.copyfile(valid, pipeline.src / "in" / NOT_A_CARD)
    in_card_folder = pipeline.src / FOLDER_CARD / valid.name
    in_card_folder.parent.mkdir()
    shutil.copyfile(valid, in_card_folder)
    numbers = {*bad_names.values(), FOLDER_CARD}

    run = pipeline.subprocess("run", "--json", in_card_folder, *sources, pipeline.src / "in" / NOT_A_CARD)
    stdout, stderr = run.communicate(timeout=600)
    assert run.returncode == 1, (stdout, stderr)
    assert not found_in(stdout + stderr, numbers), (stdout, stderr)

    messages = {m["file"]: m for m in notifications(stdout)}
    assert messages[valid.name]["status"] == "SUCCESS"  # the caller's folder is not the file's name
    assert messages[NOT_A_CARD]["errors"] == {"F002": 1}
    error = pipeline.zone("error")
    masked = {name: name_text(name) for name in bad_names}
    assert len(set(masked.values())) == len(masked) - 1  # the twins mask alike
    seen_locations = set()
    for name, shown in masked.items():
        if name in (TWIN_A, TWIN_B):
            continue
        message = messages[shown]
        assert (message["status"], message["errors"], message.get("feed")) == ("FAILURE", {"F005": 1}, None)
        location = Path(message["location"])
        assert location.parent == error / "unknown" / "undated" and location.name == shown
        seen_locations.add(location)
        assert location.read_bytes() == valid.read_bytes()  # nothing lost: the bytes, and the exact name
        assert location.with_name(location.name + NAME_SUFFIX).read_bytes() == name.encode()
        report = json.loads(location.with_name(location.name + ".report.json").read_text())
        assert report["file"] == shown and set(report["errors"]) == {"F005"}
    twins = [m for m in notifications(stdout) if m["file"] == masked[TWIN_A]]
    assert len(twins) == 2 and len({m["location"] for m in twins}) == 2
    assert {Path(m["location"]).with_name(Path(m["location"]).name + NAME_SUFFIX).read_bytes() for m in twins} == {
        TWIN_A.encode(),
        TWIN_B.encode(),
    }
    assert pipeline.files("raw") == pipeline.files("landing") == []

    ledger = pipeline.ledger()
    rejected = [row for row in ledger if row["error"] == "F005×1"]
    assert sorted(row["file_name"] for row in rejected) == sorted(masked.values())
    assert {row["status"] for row in rejected} == {"REJECTED"}
    assert {row["sha256"] for row in rejected} == {next(r["sha256"] for r in ledger if r["status"] == "LOADED")}
    assert [row["file_name"] for row in ledger if row["error"] == "F002×1"] == [NOT_A_CARD]

    # no number in any file under ETL_HOME but the original bytes and the exact names beside them, in the zones
    originals, exact_names = {valid.read_bytes()}, {name.encode() for name in bad_names}
    checked = 0
    for path in sorted(p for p in pipeline.home.rglob("*") if p.is_file()):
        zone = path.relative_to(pipeline.home).parts[0]
        assert not found_in(path.relative_to(pipeline.home).as_posix(), numbers - {FOLDER_CARD}), path
        data = path.read_bytes()
        if zone in ("raw", "archive", "error") and (data in originals or data in exact_names):
            continue
        if zone == "pgdata":
            continue  # the server's own files: its log is read below
        assert not found_in(data.decode("utf-8", "replace"), numbers), path
        checked += 1
    assert checked >= len(bad_names)  # the reports at least

    text = database_text(pipeline)
    assert masked[TWIN_A] in text and valid.name in text  # the rows are there and searched
    assert not found_in(text, numbers)

    server_log = server_log_since(pipeline.db_url, pg_server_log, log_start)
    assert not found_in(server_log, numbers)


def test_the_text_output_and_status_show_masked_names(pipeline: Pipeline) -> None:
    name = "refund-5555-5555-5555-4444_20240301_01.dat"
    source = generate("transactions", DAY, rows=5, seed=2, out_dir=pipeline.src)
    hostile = source.with_name(name)
    source.rename(hostile)
    run = pipeline.subprocess("run", hostile)
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 1 and "F005" in stdout
    assert "refund-****-****-****-****_******01_01.dat" in stdout
    status = pipeline.subprocess("status")
    shown, errors = status.communicate(timeout=120)
    assert status.returncode == 0, errors
    for text in (stdout, stderr, shown, errors):
        assert not found_in(text, {"5555555555554444"})
    assert hostile.exists()  # the caller's file is left where it was
