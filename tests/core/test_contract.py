"""Feed contracts: the packaged ones load, the registry finds a file's feed, and a broken contract is a clear
error that names the file and the field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from etl.contract import ContractError, contract_for_file, feed_names, load_contract, load_contract_file
from etl.schema import parquet_schema, stage_schema

FEEDS = Path(__file__).resolve().parents[2] / "etl" / "feeds"


def test_packaged_contracts_load_with_the_design_layouts() -> None:
    assert feed_names() == ["account_summary", "transactions"]
    txn = load_contract("transactions")
    assert (txn.format, txn.delimiter, len(txn.fields)) == ("delimited", "|", 14)
    assert txn.primary_key == ("transaction_id",) and txn.field("amount").implied_decimals == 2
    acct = load_contract("account_summary")
    assert (acct.format, acct.record_length) == ("fixed_width", 120)
    assert acct.field("current_balance").position == (38, 49) and acct.field("apr").position == (97, 101)
    assert acct.primary_key == ("account_id", "business_date")


@pytest.mark.parametrize(
    ("name", "feed", "day"),
    [
        ("transactions_20240301.dat", "transactions", dt.date(2024, 3, 1)),
        ("transactions_20240301_02.dat", "transactions", dt.date(2024, 3, 1)),
        ("account_summary_20241231.dat", "account_summary", dt.date(2024, 12, 31)),
        ("/some/where/account_summary_20240229_01.dat", "account_summary", dt.date(2024, 2, 29)),
    ],
)
def test_registry_finds_the_feed_and_date_from_the_name(name: str, feed: str, day: dt.date) -> None:
    contract = contract_for_file(name)
    assert contract is not None and contract.feed == feed
    assert contract.file_business_date(Path(name).name) == day


@pytest.mark.parametrize(
    "name",
    [
        "transactions-20240301.dat",
        "transactions_2024031.dat",
        "payments_20240301.dat",
        "transactions_20240301.txt",
        "transactions_20240301_2.dat",
    ],
)
def test_names_of_no_feed_match_nothing(name: str) -> None:
    assert contract_for_file(name) is None


def test_schemas_follow_the_contract() -> None:
    txn = load_contract("transactions")
    names = stage_schema(txn).names
    assert "card_number" not in names and {"card_last4", "card_token"} <= set(names)
    assert names[-4:] == ["business_date", "source_file", "execution_name", "loaded_at"]
    assert "business_date" not in parquet_schema(txn).names
    assert str(stage_schema(txn).field("amount").type) == "decimal128(12, 2)"


def _broken(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load((FEEDS / "transactions.yml").read_text())
    edit(data)
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (lambda d: d["fields"][2].update(pattern="(unclosed"), "fields.2.pattern"),
        (lambda d: d["fields"][3].pop("index"), "fields.3"),
        (lambda d: d["fields"][4].update(type="money"), "fields.4.type"),
        (lambda d: d.update(primary_key=["nope"]), "primary_key"),
        (lambda d: d.update(drop=["ghost"]), "drop"),
        (lambda d: d["derived"][0].update(source="ghost"), "derived.signed_amount"),
        (lambda d: d.update(format="xml"), "format"),
        (lambda d: d["fields"].append(dict(d["fields"][1])), "fields.transaction_id"),
        (lambda d: d.update(unexpected=1), "unexpected"),
        (lambda d: d.update(reject_threshold=2), "reject_threshold"),
        # a trailer count or total must be a typed number of bounded width (T001/T002 read it with int())
        (lambda d: d["trailer"][1].update(type="string"), "checks.record_count"),
        (lambda d: d["trailer"][1].pop("max_length"), "checks.record_count"),
        (lambda d: d["trailer"][2].update(max_length=39, pattern=r"^\d{1,39}$"), "checks.control_total"),
        (lambda d: d["trailer"][2].update(implied_decimals=3), "checks.control_total"),
        (lambda d: d["checks"]["control_total"].update(sign_field="ghost"), "checks.control_total.sign_field"),
    ],
)
def test_a_broken_contract_names_the_file_and_the_field(tmp_path: Path, edit, where: str) -> None:
    path = _broken(tmp_path, edit)
    with pytest.raises(ContractError) as caught:
        load_contract_file(path)
    message = str(caught.value)
    assert str(path) in message and where in message, message


def test_invalid_yaml_and_unknown_feed_are_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("feed: [unclosed\n")
    with pytest.raises(ContractError, match=r"bad\.yml: not valid YAML"):
        load_contract_file(path)
    with pytest.raises(ContractError, match="unknown feed 'payments'"):
        load_contract("payments")
