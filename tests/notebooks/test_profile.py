"""What the profile notebook asks of the package: one day's measures from the raw file or the stage, with
the contract's conformance and no card data, and a clear answer for a day without data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from etl.notebooks import profile
from etl.notebooks.samples import SAMPLES_DIR, build_stage, data_path


def test_a_raw_profile_measures_the_card_field_without_showing_it(tmp_path: Path) -> None:
    measured = profile.measure("transactions", "2024-03-02", "raw")
    card = measured.fields.set_index("field").loc["card_number"]
    assert card["null_rate"] == 0 and card["pattern_ok"] == 1.0 and card["distinct"] > 0
    assert card[["min", "max"]].isna().all()
    profile.write(measured, str(tmp_path))
    written = (tmp_path / "transactions_20240302.profile.json").read_text()
    raw = (data_path(SAMPLES_DIR) / "transactions_20240302.dat").read_text().splitlines()
    cards = {line.split("|")[3] for line in raw if line.startswith("D|")}
    assert json.loads(written)["rows"] == 224 and len(cards) > 1
    assert not [card for card in cards if card in written]


def test_a_stage_profile_shows_no_card_stand_ins(tmp_path: Path) -> None:
    stage = build_stage("transactions", SAMPLES_DIR, str(tmp_path / "stage"))
    fields = profile.measure("transactions", "2024-03-02", "stage", stage_uri=stage).fields.set_index("field")
    assert fields.loc[list(profile.CARD_COLUMNS), ["min", "max"]].isna().all().all()
    assert fields.loc["amount", "min"] is not None  # other columns keep theirs
    assert fields["null_rate"].dtype == float and "execution_name" not in fields.index


def test_a_day_without_data_is_an_error_unless_missing_is_allowed() -> None:
    with pytest.raises(FileNotFoundError, match="no transactions data for 2024-02-29 in the raw source"):
        profile.measure("transactions", "2024-02-29", "raw")
    assert profile.measure("transactions", "2024-02-29", "raw", missing_ok=True) is None
