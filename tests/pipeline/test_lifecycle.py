"""``etl run`` end to end on a real database: day 1, day 2 with updates and deletes, duplicates, rejects."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow.parquet as pq
import pytest

from etl.generate import derive_update_file, generate
from tests.pipeline.conftest import Pipeline, notifications
from tests.pipeline.expected import KEYS, Counts, Table, execution_name, records

DAY1, DAY2 = dt.date(2024, 3, 1), dt.date(2024, 3, 2)
ROWS = 600
ORIGINAL_KEYS = ("msg", "executionname", "status")


def _key(feed: str, row: dict) -> tuple:
    return tuple(row[k] for k in KEYS[feed])


def assert_table(pipeline: Pipeline, expected: Table) -> None:
    """The feed's table holds exactly the expected rows, every data and lineage column equal."""
    actual = {_key(expected.feed, row): row for row in pipeline.table(expected.feed)}
    assert actual.keys() == expected.rows.keys()
    for key, want in expected.rows.items():
        got = {c: actual[key][c] for c in want}
        assert got == want, key


def ledger_counts(row: dict) -> Counts:
    """A ledger row's counts (``rows_in``, then ``rows_<count>``), checked to account for every record."""
    counts = Counts(**{name: row[name if name == "rows_in" else f"rows_{name}"] for name in vars(Counts())})
    assert counts.accounted, counts
    return counts


@pytest.mark.parametrize("etl_env", ["superuser", "etl-role"], indirect=True)
def test_day_one_loads_both_feeds(pipeline: Pipeline) -> None:
    files = [
        generate(feed, DAY1, rows=ROWS, seed=11, out_dir=pipeline.src) for feed in ("transactions", "account_summary")
    ]
    result = pipeline.cli("run", *files)
    assert result.exit_code == 0, result.output + result.stderr

    messages = notifications(result.stdout)
    assert [m["status"] for m in messages] == ["SUCCESS", "SUCCESS"]
    ledger = pipeline.ledger()
    assert [(r["file_name"], r["status"]) for r in ledger] == [(f.name, "LOADED") for f in files]
    for path, message, row in zip(files, messages, ledger, strict=True):
        feed = row["feed"]
        data = path.read_bytes()
        name = execution_name(feed, DAY1, data)
        assert {k: message[k] for k in ORIGINAL_KEYS} == {
            "msg": f"File uploaded to RDS and moved to archive: {feed}",
            "executionname": name,
            "status": "SUCCESS",
        }
        assert list(message)[:3] == list(ORIGINAL_KEYS)
        table = Table(feed)
        counts = table.apply(path, pipeline.pan_key)
        assert counts.inserted and counts.rows_in == ROWS
        assert ledger_counts(row) == counts
        assert (row["business_date"], row["execution_name"], row["rows_rejected"]) == (DAY1, name, 0)
        assert message["rows"] == vars(counts)
        assert_table(pipeline, table)

        archived = pipeline.zone("archive") / feed / "2024-03-01" / path.name
        assert archived.read_bytes() == data
        report = json.loads(archived.with_name(path.name + ".report.json").read_text())
        assert report["valid"] and report["row_count"] == ROWS and report["errors"] == {}

        staged = pipeline.zone("stage") / feed / "business_date=2024-03-01" / f"{path.stem}.parquet"
        parquet = pq.ParquetFile(staged)
        assert parquet.metadata.num_rows == ROWS  # every record, D actions included
        assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
        assert "card_number" not in parquet.schema_arrow.names and "business_date" not in parquet.schema_arrow.names
    assert pipeline.files("landing") == pipeline.files("raw") == pipeline.files("error") == []
    assert all(f.exists() for f in files)  # the caller's files are left where they were


@pytest.mark.parametrize("etl_env", ["superuser", "etl-role"], indirect=True)
def test_day_two_applies_updates_and_deletes_exactly(pipeline: Pipeline) -> None:
    day1 = generate("transactions", DAY1, rows=ROWS, seed=3, out_dir=pipeline.src)
    day2 = derive_update_file(
        DAY1, DAY2, base_rows=ROWS, rows=150, seed=3, out_dir=pipeline.src, update_fraction=0.3, delete_fraction=0.05
    )
    actions = [r.action for r in records(day2, pipeline.pan_key)]
    assert {"A", "U", "D"} <= set(actions)
    table = Table("transactions")
    expected = [table.apply(day1, pipeline.pan_key), table.apply(day2, pipeline.pan_key)]
    assert expected[1].updated and expected[1].deleted and expected[1].inserted == 150

    for path in (day1, day2):
        result = pipeline.cli("run", path)
        assert result.exit_code == 0, result.output + result.stderr
    assert [ledger_counts(r) for r in pipeline.ledger()] == expected
    assert_table(pipeline, table)


def test_unchanged_rows_are_counted_and_keep_their_lineage(pipeline: Pipeline) -> None:
    """A second file of the same day re-sending day-1 rows, some changed, some deleted, some new."""
    day1 = generate("transactions", DAY1, rows=ROWS, seed=4, out_dir=pipeline.src)
    lines = day1.read_text().splitlines()
    details = [line.split("|") for line in lines[1:-1]]
    resent = []
    for i, f in enumerate(details[:300]):
        if f[13] == "D":
            continue
        if i % 10 == 0:
            f = [*f[:12], "REVERSED", "U"]  # changed
        elif i % 10 == 1:
            f = [*f[:13], "D"]  # deleted
        resent.append(f)
    resent.append(["D", "NEW-ROW-1", *details[0][2:13], "A"])
    header = lines[0].split("|")
    header[4] = "02"
    body = ["|".join(header)] + ["|".join(f) for f in resent]
    total = sum(int(f[6]) for f in resent)
    second = pipeline.src / "transactions_20240301_02.dat"
    second.write_text("\n".join([*body, f"T|{len(resent)}|{total}"]) + "\n")

    table = Table("transactions")
    table.apply(day1, pipeline.pan_key)
    counts = table.apply(second, pipeline.pan_key)
    assert counts.unchanged and counts.updated and counts.deleted and counts.inserted == 1
    for path in (day1, second):
        result = pipeline.cli("run", path)
        assert result.exit_code == 0, result.output + result.stderr
    assert ledger_counts(pipeline.ledger()[-1]) == counts
    assert_table(pipeline, table)
    sources = {r["source_file"] for r in pipeline.table("transactions")}
    assert sources == {day1.name, second.name}


@pytest.mark.parametrize("etl_env", ["superuser", "etl-role"], indirect=True)
def test_same_file_again_is_skipped_and_changes_nothing(pipeline: Pipeline) -> None:
    path = generate("transactions", DAY1, rows=ROWS, seed=5, out_dir=pipeline.src)
    assert pipeline.cli("run", path).exit_code == 0
    before = pipeline.checksum()
    stage = pipeline.files("stage")

    again = pipeline.cli("run", path)
    assert again.exit_code == 0, again.output + again.stderr
    (message,) = notifications(again.stdout)
    assert message["status"] == "SKIPPED" and message["executionname"] == execution_name(
        "transactions", DAY1, path.read_bytes()
    )
    assert pipeline.checksum() == before
    assert [r["status"] for r in pipeline.ledger()] == ["LOADED", "SKIPPED"]
    skipped = pipeline.ledger()[1]
    assert skipped["sha256"] == pipeline.ledger()[0]["sha256"] and skipped["rows_inserted"] == 0
    expected_skip = Table("transactions").skip(path, pipeline.pan_key)
    assert ledger_counts(skipped) == expected_skip and expected_skip.rows_in == ROWS  # every record: skipped
    assert message["rows"] == vars(expected_skip)
    assert pipeline.files("archive") == [
        "transactions/2024-03-01/transactions_20240301.1.dat",
        "transactions/2024-03-01/transactions_20240301.1.dat.report.json",
        "transactions/2024-03-01/transactions_20240301.dat",
        "transactions/2024-03-01/transactions_20240301.dat.report.json",
    ]
    assert pipeline.files("stage") == stage
    assert pipeline.files("raw") == pipeline.files("landing") == pipeline.files("error") == []


@pytest.mark.parametrize("etl_env", ["superuser", "etl-role"], indirect=True)
@pytest.mark.parametrize(
    ("feed", "rule"), [("transactions", "T002"), ("transactions", "R006"), ("account_summary", "R002")]
)
def test_rejected_file_leaves_the_database_untouched(pipeline: Pipeline, feed: str, rule: str) -> None:
    good = generate(feed, DAY1, rows=ROWS, seed=6, out_dir=pipeline.src)
    assert pipeline.cli("run", good).exit_code == 0
    before = pipeline.checksum()
    bad_dir = pipeline.src / "bad"
    bad = generate(feed, DAY2, rows=ROWS, seed=6, corrupt=rule, out_dir=bad_dir)

    result = pipeline.cli("run", bad)
    assert result.exit_code == 1, result.output + result.stderr
    (message,) = notifications(result.stdout)
    assert {k: message[k] for k in ORIGINAL_KEYS} == {
        "msg": f"File moved to error: {feed}",
        "executionname": execution_name(feed, DAY2, bad.read_bytes()),
        "status": "FAILURE",
    }
    assert rule in message["errors"] and message["errors"][rule] >= 1
    assert pipeline.checksum() == before
    last = pipeline.ledger()[-1]
    assert (last["file_name"], last["status"], last["rows_inserted"]) == (bad.name, "REJECTED", 0)
    assert rule in last["error"]

    day_dir = pipeline.zone("error") / feed / "2024-03-02"
    assert (day_dir / bad.name).read_bytes() == bad.read_bytes()
    report = json.loads((day_dir / f"{bad.name}.report.json").read_text())
    assert not report["valid"] and rule in report["errors"] and report["errors"][rule]["count"] >= 1
    assert pipeline.files("stage") == [f"{feed}/business_date=2024-03-01/{good.stem}.parquet"]
    assert pipeline.files("raw") == pipeline.files("landing") == []


def test_exit_codes(pipeline: Pipeline) -> None:
    good = generate("transactions", DAY1, rows=200, seed=7, out_dir=pipeline.src)
    bad = generate("transactions", DAY2, rows=200, seed=7, corrupt="S002", out_dir=pipeline.src / "bad")
    missing = pipeline.src / "transactions_20240309.dat"

    assert pipeline.cli("run", good).exit_code == 0
    assert pipeline.cli("run", good).exit_code == 0  # skipped duplicate
    assert pipeline.cli("run", bad).exit_code == 1
    assert pipeline.cli("run", good, bad).exit_code == 1  # one bad file fails the run
    before = pipeline.ledger()
    result = pipeline.cli("run", good, missing)
    assert result.exit_code == 2 and "no such file" in result.stderr
    assert pipeline.cli("run", pipeline.src).exit_code == 2  # a folder is not a file
    assert pipeline.ledger() == before  # a usage error processes nothing


def test_status_shows_the_ledger(pipeline: Pipeline) -> None:
    good = generate("account_summary", DAY1, rows=200, seed=8, out_dir=pipeline.src)
    bad = generate("account_summary", DAY2, rows=200, seed=8, corrupt="T001", out_dir=pipeline.src / "bad")
    pipeline.cli("run", good, bad)
    pipeline.cli("run", good)

    as_json = pipeline.cli("status", "--json")
    assert as_json.exit_code == 0, as_json.output
    files = json.loads(as_json.stdout)["files"]
    assert [(f["file_name"], f["status"]) for f in files] == [
        (good.name, "SKIPPED"),
        (bad.name, "REJECTED"),
        (good.name, "LOADED"),
    ]
    assert files[2]["rows_inserted"] == 200 and files[2]["business_date"] == "2024-03-01"
    table = pipeline.cli("status")
    assert table.exit_code == 0
    for text in (good.name, bad.name, "LOADED", "SKIPPED", "REJECTED"):
        assert text in table.stdout


def test_run_file_api_returns_the_outcome_and_prints_the_notification(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    from etl.pipeline.context import Context
    from etl.pipeline.run import run_file

    path = generate("account_summary", DAY1, rows=300, seed=9, out_dir=pipeline.src)
    steps_seen: list[str] = []
    with Context() as ctx:
        first = run_file(ctx, path, steps_seen.append)
        second = run_file(ctx, path)
    assert steps_seen == ["landing → raw", "validate → transform → stage + load", "archive", "notify"]
    assert (first.status, first.ok, second.status, second.ok) == ("SUCCESS", True, "SKIPPED", True)
    assert first.rows == {**vars(Counts()), "rows_in": 300, "inserted": 300}
    assert second.rows == {**vars(Counts()), "rows_in": 300, "skipped": 300}
    assert first.stage_uri == str(
        pipeline.zone("stage") / "account_summary/business_date=2024-03-01/account_summary_20240301.parquet"
    )
    assert first.location == str(pipeline.zone("archive") / "account_summary/2024-03-01/account_summary_20240301.dat")
    assert second.location and second.location.endswith("account_summary_20240301.1.dat")
    printed = notifications(capsys.readouterr().out)
    assert printed == [first.message, second.message]
    assert second.message["msg"] == "File already loaded, moved to archive: account_summary"


def test_the_same_file_twice_in_one_run_loads_once(pipeline: Pipeline) -> None:
    path = generate("transactions", DAY1, rows=200, seed=10, out_dir=pipeline.src)
    result = pipeline.cli("run", "--json", path, path)
    assert result.exit_code == 0, result.output + result.stderr
    assert [m["status"] for m in notifications(result.stdout)] == ["SUCCESS", "SKIPPED"]
    assert [r["status"] for r in pipeline.ledger()] == ["LOADED", "SKIPPED"]


def test_configuration_errors_exit_2_before_any_file_moves(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, aws_env: None
) -> None:
    from moto import mock_aws

    path = generate("transactions", DAY1, rows=200, seed=12, out_dir=pipeline.src)
    monkeypatch.setenv("ETL_BLOCK_SIZE", "12")
    result = pipeline.cli("run", path)
    assert result.exit_code == 2 and "ETL_BLOCK_SIZE" in result.stderr and "Traceback" not in result.output
    monkeypatch.delenv("ETL_BLOCK_SIZE")

    monkeypatch.delenv("ETL_DATABASE_URL")
    monkeypatch.setenv("ETL_DB_SECRET_ID", "fintech/no-such-secret")
    with mock_aws():
        for args in (("run", path), ("run", "--json", path)):
            result = pipeline.cli(*args)
            assert result.exit_code == 2, result.output + result.stderr
            assert "cannot locate the database" in result.stderr and "no-such-secret" in result.stderr
    assert not pipeline.home.exists()  # nothing landed


def test_notifications_go_to_sns_when_a_topic_is_set(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, aws_env: None
) -> None:
    import boto3
    from moto import mock_aws

    good = generate("transactions", DAY1, rows=200, seed=13, out_dir=pipeline.src)
    bad = generate("transactions", DAY2, rows=200, seed=13, corrupt="R003", out_dir=pipeline.src / "bad")
    with mock_aws():
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        topic = sns.create_topic(Name="etl-notifications")["TopicArn"]
        queue = sqs.create_queue(QueueName="etl-notifications")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
        monkeypatch.setenv("ETL_SNS_TOPIC_ARN", topic)
        result = pipeline.cli("run", good, bad)
        received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert result.exit_code == 1, result.output + result.stderr
    assert notifications(result.stdout) == []  # published, not printed
    bodies = sorted((json.loads(m["Body"]) for m in received), key=lambda b: b["status"])
    assert [(b["msg"], b["status"], b["file"]) for b in bodies] == [
        ("File moved to error: transactions", "FAILURE", bad.name),
        ("File uploaded to RDS and moved to archive: transactions", "SUCCESS", good.name),
    ]
    assert bodies[0]["errors"] == {"R003": 2} and bodies[1]["executionname"] == execution_name(
        "transactions", DAY1, good.read_bytes()
    )
