"""``etl run`` on files with hostile names: each gets its ledger row, its report and its exact identity; nothing
reaches the terminal unescaped; a name that is not exactly the contract's pattern (in ASCII) is F002."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from etl.generate import generate
from etl.io.zones import NAME_MAX, sidecar_key
from etl.names import name_text
from tests.pipeline.conftest import Pipeline, notifications

DAY = dt.date(2024, 3, 1)
GOOD = "transactions_20240301.dat"
FULL_WIDTH = "transactions_２０２４０３０１.dat"
ARABIC_INDIC = "transactions_٢٠٢٤٠٣٠١.dat"

HOSTILE = {
    "full-width digits": FULL_WIDTH,
    "arabic-indic digits": ARABIC_INDIC,
    "trailing newline": GOOD + "\n",
    "trailing CR": GOOD + "\r",
    "escape sequence": "transactions_20240301\x1b[2J.dat",
    "bell and backspace": "transactions_2024\x07\x0803 01.dat",
    "bidi override": "transactions_20240301\u202etad.dat",
    "rich markup": "[bold]transactions_20240301.dat",
    "rich style": "[on red]transactions_20240301.dat",
    "non-UTF-8 byte": os.fsdecode(b"transactions_\xff20240301.dat"),
    "latin-1 name": os.fsdecode("transactions_20240301_é.dat".encode("latin-1")),
    "250-byte name": "transactions_20240301_" + "x" * (250 - len("transactions_20240301_.dat")) + ".dat",
    "255-byte multibyte name": "transactions_" + "é" * 119 + ".dat",
    "backslash": "sub\\" + GOOD,
    "dotdot backslash": "..\\..\\" + GOOD,
    "leading dot": "." + GOOD,
    "space before suffix": "transactions_20240301 .dat",
}


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


@pytest.fixture
def valid_bytes(pipeline: Pipeline) -> bytes:
    folder = pipeline.src / "gen"
    folder.mkdir()
    return generate("transactions", DAY, rows=50, seed=5, out_dir=folder).read_bytes()


@pytest.mark.parametrize("name", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_name_is_rejected_with_its_report_and_ledger_row(
    pipeline: Pipeline, valid_bytes: bytes, name: str
) -> None:
    assert len(os.fsencode(name)) <= NAME_MAX
    path = _write(pipeline.src, name, valid_bytes)
    result = pipeline.cli("run", path)
    output = result.stdout + result.stderr
    assert result.exit_code == 1, output
    assert "Traceback" not in output

    # the exact name, escaped for the terminal: no control or format character reaches it
    assert not any(c in output for c in "\x1b\x07\x08\r\u202e"), output
    (message,) = notifications(result.stdout)
    assert message["status"] == "FAILURE" and message["errors"] == {"F002": 1}
    assert message["file"] == name_text(name)

    # its ledger row (REJECTED, F002) and its report beside it in the error zone, under the exact name
    (row,) = pipeline.ledger()
    assert (row["status"], row["file_name"], row["error"]) == ("REJECTED", name_text(name), "F002×1")
    location = Path(message["location"])
    assert location.name == name and location.read_bytes() == valid_bytes
    report = location.with_name(sidecar_key(location.name))
    assert len(os.fsencode(report.name)) <= NAME_MAX
    assert json.loads(report.read_text())["file"] == name_text(name)
    assert path.read_bytes() == valid_bytes  # the caller's file is never touched
    assert pipeline.files("landing") == [] and pipeline.files("raw") == []


def test_printed_names_are_exact_with_markup_and_escapes_shown(pipeline: Pipeline, valid_bytes: bytes) -> None:
    names = [HOSTILE["rich markup"], HOSTILE["escape sequence"], HOSTILE["non-UTF-8 byte"]]
    paths = [_write(pipeline.src, name, valid_bytes) for name in names]
    result = pipeline.cli("run", *paths)
    assert result.exit_code == 1
    error_zone = pipeline.zone("error")
    # the summary's "name → location" lines print exactly what is on disk, escapes spelled out
    assert f"[bold]{GOOD} → {error_zone}/unknown/undated/[bold]{GOOD}" in result.stdout
    assert "transactions_20240301\\x1b[2J.dat → " in result.stdout
    assert "transactions_\\xff20240301.dat → " in result.stdout
    assert sorted(r["file_name"] for r in pipeline.ledger()) == sorted(name_text(n) for n in names)
    # the ledger and the validation report print the same names, escaped
    status = pipeline.cli("status")
    assert status.exit_code == 0 and "\x1b" not in status.stdout
    assert "transactions_20240301\\x1b[2J.dat" in status.stdout and f"[bold]{GOOD}" in status.stdout
    checked = pipeline.cli("validate", *paths)
    assert checked.exit_code == 1 and "\x1b" not in checked.stdout
    assert "transactions_\\xff20240301.dat" in checked.stdout and f"[bold]{GOOD}" in checked.stdout


def test_a_backslash_name_reads_its_own_file_not_the_one_in_a_folder(pipeline: Pipeline, valid_bytes: bytes) -> None:
    (pipeline.src / "sub").mkdir()
    other = _write(pipeline.src / "sub", GOOD, valid_bytes)
    mine = _write(pipeline.src, "sub\\" + GOOD, b"not the other file\n")
    result = pipeline.cli("run", mine)
    assert result.exit_code == 1, result.output + result.stderr
    (message,) = notifications(result.stdout)
    location = Path(message["location"])
    assert location.name == "sub\\" + GOOD
    assert location.read_bytes() == b"not the other file\n"
    assert other.read_bytes() == valid_bytes
    (row,) = pipeline.ledger()
    assert row["file_name"] == "sub\\" + GOOD


def test_the_contract_name_still_loads(pipeline: Pipeline, valid_bytes: bytes) -> None:
    """The control case: the same bytes under the contract's exact ASCII name load with SUCCESS."""
    result = pipeline.cli("run", _write(pipeline.src, GOOD, valid_bytes))
    assert result.exit_code == 0, result.output + result.stderr
    assert [r["status"] for r in pipeline.ledger()] == ["LOADED"]


def test_a_symlinked_input_lands_the_target_bytes_under_the_link_name(pipeline: Pipeline, valid_bytes: bytes) -> None:
    target = _write(pipeline.src, "elsewhere.bin", valid_bytes)
    link = pipeline.src / GOOD
    link.symlink_to(target)
    result = pipeline.cli("run", link)
    assert result.exit_code == 0, result.output + result.stderr
    (archived,) = [pipeline.zone("archive") / key for key in pipeline.files("archive") if key.endswith(".dat")]
    assert archived.name == GOOD and not archived.is_symlink() and archived.read_bytes() == valid_bytes
    assert archived.stat().st_mode & 0o777 == 0o600
    assert link.is_symlink() and target.read_bytes() == valid_bytes


def test_a_link_planted_in_a_zone_is_never_followed(pipeline: Pipeline, valid_bytes: bytes, tmp_path: Path) -> None:
    """A symbolic link found in raw (planted between runs) is not read through: its target stays untouched and
    unread, and the planted name is not published anywhere as data."""
    secret = _write(tmp_path, "secret.txt", b"do not copy me\n")
    raw = pipeline.zone("raw") / "transactions"
    raw.mkdir(parents=True)
    (raw / GOOD).symlink_to(secret)
    result = pipeline.cli("run", _write(pipeline.src, GOOD, valid_bytes))
    assert result.exit_code == 0, result.output + result.stderr
    for zone in ("landing", "raw", "archive", "error", "stage"):
        for key in pipeline.files(zone):
            path = pipeline.zone(zone) / key
            assert path.is_symlink() or b"do not copy me" not in path.read_bytes()
    assert secret.read_bytes() == b"do not copy me\n"
