"""``etl backfill``: one notebook per business date, a summary, exit 1 naming a failed date, the rest still run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import nbformat
import psycopg
import pytest
from typer.testing import CliRunner

from etl.cli.main import app
from etl.generate import generate
from etl.notebooks.backfill import BackfillError, business_dates, coerce, day_parameters

FEED = "transactions"
DAYS = [dt.date(2024, 4, 1) + dt.timedelta(days=n) for n in range(5)]


def make_files(folder: Path, corrupt_day: dt.date | None = None) -> Path:
    folder.mkdir(parents=True)
    for day in DAYS:
        generate(FEED, day, rows=20, seed=11, out_dir=folder, corrupt="T002" if day == corrupt_day else None)
    return folder


def backfill(*args: str):
    return CliRunner().invoke(app, ["backfill", FEED, *args], catch_exceptions=False)


def test_dates_stay_iso_strings_and_parameters_follow_declared_types() -> None:
    assert business_dates("2024-02-28", "2024-03-01") == [
        dt.date(2024, 2, 28),
        dt.date(2024, 2, 29),
        dt.date(2024, 3, 1),
    ]
    declared = {"feed": "str", "business_date": "str", "dry_run": "bool"}
    assert day_parameters(declared, FEED, dt.date(2024, 3, 1), "/out") == {"feed": FEED, "business_date": "2024-03-01"}
    assert coerce("business_date", "20240301", "str") == "20240301"  # not the int YAML would make of it
    assert coerce("dry_run", "false", "bool") is False
    with pytest.raises(BackfillError):
        coerce("dry_run", "maybe", "bool")
    with pytest.raises(BackfillError):
        business_dates("2024-03-02", "2024-03-01")


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert backfill("--start", "2024-03-01", "--end", "2024-13-01").exit_code == 2
    assert backfill("--start", "2024-03-01", "--end", "2024-03-01", "--notebook", "nope").exit_code == 2
    result = backfill("--start", "2024-03-01", "--end", "2024-03-01", "-p", "no_such_param", "1")
    assert result.exit_code == 2 and "no parameter no_such_param" in result.output


def test_five_days_complete_then_a_corrupt_day_fails_alone(tmp_path: Path, nb_env: dict[str, str], monkeypatch) -> None:
    good = make_files(tmp_path / "good")
    out = tmp_path / "out"
    args = ["--start", DAYS[0].isoformat(), "--end", DAYS[-1].isoformat(), "--output", str(out)]
    result = backfill(*args, "-p", "samples_dir", str(good), "-p", "dry_run", "false")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [f"reprocess_{FEED}_{d.isoformat()}.ipynb" for d in DAYS]
    assert "etl backfill transactions" in result.output and result.output.count(" ok ") == 5
    injected = next(
        c
        for c in nbformat.read(out / f"reprocess_{FEED}_{DAYS[0]}.ipynb", 4).cells
        if "injected-parameters" in c.metadata.get("tags", [])
    )
    assert f'business_date = "{DAYS[0].isoformat()}"' in injected.source and "dry_run = False" in injected.source
    with psycopg.connect(nb_env["ETL_DATABASE_URL"]) as conn:
        assert conn.execute("SELECT count(*) FROM etl.file_ledger WHERE status = 'LOADED'").fetchone()[0] == 5

    monkeypatch.setenv("ETL_HOME", str(tmp_path / "second-home"))  # an archive that has none of these files yet
    broken = make_files(tmp_path / "broken", corrupt_day=DAYS[2])
    out2 = tmp_path / "out2"
    result = backfill(
        "--start",
        DAYS[1].isoformat(),
        "--end",
        DAYS[3].isoformat(),
        "--output",
        str(out2),
        "-p",
        "samples_dir",
        str(broken),
    )
    assert result.exit_code == 1, result.output
    failed = out2 / f"reprocess_{FEED}_{DAYS[2]}.ipynb"
    assert f"failed: {DAYS[2]}" in result.output and str(failed) in result.output.replace("\n", "")
    assert "T002" in result.output  # the reason, from the notebook's ReprocessError
    assert len(list(out2.iterdir())) == 3 and result.output.count(" ok ") == 2


def test_quality_history_over_a_range_accumulates_profiles(tmp_path: Path, nb_env: dict[str, str]) -> None:
    """``--notebook quality_history``: each date's history ends on that date; profiles land in ``--output``
    and a later date reads the earlier dates' profiles instead of computing them again."""
    files = make_files(tmp_path / "files")
    out = tmp_path / "out"
    args = ["--start", DAYS[2].isoformat(), "--end", DAYS[3].isoformat(), "--output", str(out)]
    result = backfill(
        *args, "--notebook", "quality_history", "-p", "samples_dir", str(files), "-p", "history_days", "3"
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.ipynb")) == [f"quality_history_{FEED}_{d}.ipynb" for d in DAYS[2:4]]
    # the first date seeded its empty range (DAYS[0..2]); the second found history there and seeded nothing
    assert sorted(p.name for p in out.glob("*.profile.json")) == [f"{FEED}_{d:%Y%m%d}.profile.json" for d in DAYS[:3]]
    last = nbformat.read(out / f"quality_history_{FEED}_{DAYS[3]}.ipynb", 4)
    shown = "\n".join(
        o.get("text", "") + o.get("data", {}).get("text/plain", "") for c in last.cells for o in c.get("outputs", [])
    )
    assert "seeded:" not in shown and f"{DAYS[2]}" in shown
