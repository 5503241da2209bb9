"""Card numbers outside the card field: the vectorised finder against a plain-Python reference, the shapes an
attacker uses, no false alarm on real ids, masking, the contract setting, R007 and the report's silence."""

from __future__ import annotations

import datetime as dt
import re
from importlib import resources

import numpy as np
import pyarrow as pa
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.contract import ContractError, load_contract, parse_contract
from etl.core.card_runs import card_run_rows, mask_card_runs, redact
from etl.core.validate import validate_file
from etl.generate.transactions import transaction_ids
from tests.builders import luhn_complete, luhn_ok, txn, txn_file, write

CARD = "4000056655665556"
AMEX = "378282246310005"
TODAY = dt.date(2024, 6, 1)


# --- a slow, obvious reference of the definition (etl.core.card_runs docstring) -----------------------------


def any_window(digits: str) -> bool:
    return any(luhn_ok(digits[s : s + w]) for w in range(13, 20) for s in range(0, len(digits) - w + 1))


def reference(text: str | None, loose: bool) -> bool:
    if text is None:
        return False
    if loose:
        return any(any_window(re.sub(r"[ -]+", "", m)) for m in re.findall(r"[0-9](?:[ -]*[0-9])*", text))
    if any(any_window(run) for run in re.findall(r"[0-9]{13,}", text)):
        return True
    for chain in re.findall(r"(?<![A-Za-z0-9])[0-9]{1,6}(?:[ -]+[0-9]{1,6})+(?![A-Za-z0-9])", text):
        groups = re.split(r"[ -]+", chain)
        for i in range(len(groups)):
            for j in range(i + 1, len(groups) + 1):
                digits = "".join(groups[i:j])
                if 13 <= len(digits) <= 19 and luhn_ok(digits):
                    return True
    return False


def card(g: np.random.Generator, length: int) -> str:
    return luhn_complete("".join(str(x) for x in g.integers(0, 10, length - 1)))


# --- shapes --------------------------------------------------------------------------------------------------

STRICT_HITS = [
    CARD,
    f"REFUND {CARD}",
    f"TX{CARD}",  # glued to letters
    f"9999{CARD}0000",  # inside a longer digit string
    "4000 0566 5566 5556",
    "4000-0566-5566-5556",
    "4000 - 0566 - 5566 - 5556",
    "REF:4000-0566-5566-5556.",
    "3782 822463 10005",  # Amex 4-6-5
    "12345678 4000 0566 5566 5556",  # after a long group
    "4222222222222",  # 13 digits
    "6011000990139424 ",
    "4000 0566 5566 5556 ok 12",
]
MISSES = [
    "",
    "STARBUCKS #0042",
    "4000 0566 5566 5557"[:-4],  # 12 digits
    "1234567890123",  # fails Luhn
    "1234 5678 9012 3",
    "+1 (555) 123-4567",
    "2024-03-01 12:00",
    "550e8400-e29b-41d4-a716-446655440000",
]


@pytest.mark.parametrize("text", STRICT_HITS)
def test_card_numbers_in_any_shape_are_found(text):
    values = pa.array([text, "nothing here"])
    assert card_run_rows(values).tolist() == [True, False]
    assert card_run_rows(values, loose=True).tolist() == [True, False]
    masked = mask_card_runs(values)[0].as_py()
    assert len(masked) == len(text)
    assert re.sub(r"[^0-9]", "", masked) == re.sub(r"[^0-9]", "", text)[-4:]


@pytest.mark.parametrize("text", MISSES)
def test_text_without_a_card_number_is_left_alone(text):
    values = pa.array([text])
    assert card_run_rows(values).tolist() == [False]
    assert mask_card_runs(values)[0].as_py() == text


def test_glued_formatted_numbers_are_masked_in_free_text_only():
    values = pa.array(["x4000-0566-5566-5556", "4000-0566-5566-5556y"])
    assert card_run_rows(values).tolist() == [False, False]  # ids: hex-glued groups are how UUIDs look
    assert card_run_rows(values, loose=True).tolist() == [True, True]
    assert mask_card_runs(values, loose=True).to_pylist() == ["x****-****-****-5556", "****-****-****-5556y"]


def test_generated_transaction_ids_never_look_like_card_numbers():
    """The generator's UUID-shaped ids (and random v4 UUIDs' statistics): no false R007 in 400k ids."""
    ids = pa.array(transaction_ids(7, dt.date(2024, 3, 1), None, range(400_000)))
    assert card_run_rows(ids).sum() == 0
    numeric = [i for i in ids.to_pylist() if sum(c.isdigit() for c in i) >= 20][:5]
    assert numeric  # ids with many digits were among them


def test_nulls_slices_and_chunks():
    values = pa.array([None, f"A {CARD}", "B", None, "4000-0566-5566-5556"])
    assert card_run_rows(values).tolist() == [False, True, False, False, True]
    assert card_run_rows(values.slice(2)).tolist() == [False, False, True]
    assert mask_card_runs(values.slice(1, 3)).to_pylist() == ["A ************5556", "B", None]
    chunked = pa.chunked_array([values.slice(0, 2), values.slice(2)])
    assert card_run_rows(chunked).tolist() == [False, True, False, False, True]
    large = pa.array([f"x {CARD}"], pa.large_string())
    assert mask_card_runs(large).to_pylist() == ["x ************5556"]


def test_matches_the_reference_on_random_text():
    g = np.random.default_rng(5)
    alphabet = list("0123456789" * 4 + " -aZx#é")
    texts = ["".join(g.choice(alphabet, g.integers(0, 45))) for _ in range(3000)]
    for i in range(0, 3000, 3):  # plant real card numbers in a third of them, formatted or not
        number = card(g, int(g.integers(13, 20)))
        if i % 2:
            number = "-".join(number[k : k + 4] for k in range(0, len(number), 4))
        cut = int(g.integers(0, len(texts[i]) + 1))
        texts[i] = texts[i][:cut] + number + texts[i][cut:]
    values = pa.array(texts)
    for loose in (False, True):
        expected = [reference(t, loose) for t in texts]
        assert card_run_rows(values, loose=loose).tolist() == expected
        assert sum(expected) > 500


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet="0123456789 -aB.é", max_size=40)), max_size=20))
def test_property_equals_the_reference(texts):
    values = pa.array(texts, pa.string())
    for loose in (False, True):
        flagged = card_run_rows(values, loose=loose)
        assert flagged.tolist() == [reference(t, loose) for t in texts]
        masked = mask_card_runs(values, loose=loose).to_pylist()
        for text, hit, out in zip(texts, flagged, masked, strict=True):
            if not hit:
                assert out == text
            else:
                assert len(out) == len(text) and len(re.sub(r"[^0-9]", "", out)) == 4
                assert not reference(out, loose)


def test_redact_masks_a_quoted_value():
    assert redact(f"total {CARD}") == "total ************5556"
    assert redact("000000000012345") == "000000000012345"


# --- contract --------------------------------------------------------------------------------------------------


def test_contract_says_what_each_text_field_does():
    contract = load_contract("transactions")
    assert contract.field("merchant_name").pii.value == "free_text"
    assert contract.field("card_number").pii.value == "card_number"
    checked = {f.name for f in contract.fields if f.may_hold_card_run}
    assert checked == {"record_type", "transaction_id", "merchant_name"}  # the others: typed, short or a set
    assert [f.name for f in load_contract("account_summary").fields if f.may_hold_card_run] == ["filler"]


def test_free_text_is_only_for_text_fields():
    data = yaml.safe_load((resources.files("etl.feeds") / "transactions.yml").read_text())
    amount = next(f for f in data["fields"] if f["name"] == "amount")
    amount["pii"] = "free_text"
    with pytest.raises(ContractError, match=r"amount.*type 'string'"):
        parse_contract(yaml.safe_dump(data), "x.yml")


# --- validation ------------------------------------------------------------------------------------------------


def test_r007_rejects_a_card_number_in_an_id_and_the_report_never_shows_it(tmp_path):
    lines = txn_file(
        [
            txn(CARD),
            txn("4000-0566-5566-5556"),
            txn("TX" + AMEX),
            txn("OK1", merchant_name=f"REFUND {CARD}"),
            txn("OK2", merchant_name="4000 0566 5566 5556"),
            txn("550e8400-e29b-41d4-a716-446655440000"),
        ]
    )
    report = validate_file(write(tmp_path / "transactions_20240301.dat", lines), today=TODAY)
    assert report.rule_counts == {"R007": 3}
    assert report.errors["R007"].lines == [2, 3, 4]
    text = report.to_json()
    assert CARD not in text and AMEX not in text and "5566" not in text


def test_header_and_trailer_values_quoted_in_messages_are_masked(tmp_path):
    lines = txn_file([txn("A")], header=f"H|{CARD}|20240301|20240302010203|01|CORE")
    lines[-1] = f"T|{CARD}|{CARD}"
    report = validate_file(write(tmp_path / "transactions_20240301.dat", lines), today=TODAY)
    assert {"H001", "T002"} <= set(report.errors)  # the 16-digit count breaks its format (T003)
    assert CARD not in report.to_json()
    assert "************5556" in report.errors["T002"].message
