"""A card number in an S3 key, through the real handlers and state machine on emulated AWS (IAM enforced):
a file NAMED with one is rejected (F005) and ends in the error bucket under its masked name, its exact name in
the ``.name`` sidecar; a card number in a FOLDER of the landing key does not stop a valid file. Either way
the number is in no execution name, execution input or history, notification, ledger row or log line."""

from __future__ import annotations

import json
import logging
import shutil

import psycopg
import pytest

from etl.names import name_text
from etl.package_data import samples_dir
from etl.pipeline.steps import CARD_NAME_FOLDER, NAME_SUFFIX
from tests.aws.test_pipeline_emulated import REJECT_PATH, SUCCESS_PATH, keys, read
from tests.pipeline.card_search import found_in

SAMPLE = samples_dir() / "transactions_20240301.dat"
CASES = {
    # landing key -> (card number, the run's status)
    "partner/refund-4111-1111-1111-1111.dat": ("4111111111111111", "FAILURE"),
    "partner/TX4000056655665556.dat": ("4000056655665556", "FAILURE"),
    "in 2024/378282246310005.dat": ("378282246310005", "FAILURE"),  # a space: URL-encoded in the event
    "incoming/6011111111111117/transactions_20240301.dat": ("6011111111111117", "SUCCESS"),
}


def everything_the_run_left(sim, run) -> str:
    """The execution's name, input, output and whole history, and every notification, as one text."""
    sfn = sim.aws.client("stepfunctions")
    arns = [e["executionArn"] for e in sfn.list_executions(stateMachineArn=sim.machine_arn)["executions"]]
    texts = [run.execution_name or "", json.dumps(run.to_dict(), default=str)]
    for arn in arns:
        texts.append(arn)
        texts.append(json.dumps(sfn.describe_execution(executionArn=arn), default=str))
        texts.append(json.dumps(sfn.get_execution_history(executionArn=arn, maxResults=1000), default=str))
    texts += [json.dumps(n) for n in sim.notifications()]
    return "\n".join(texts)


@pytest.mark.parametrize("landing_key", CASES)
def test_a_card_number_in_an_s3_key_stays_in_the_zones(sim, etl_env, tmp_path, caplog, invocation_log, landing_key):
    card, status = CASES[landing_key]
    name = landing_key.rsplit("/", 1)[1]
    source = tmp_path / "upload.dat"
    shutil.copyfile(SAMPLE, source)
    with caplog.at_level(logging.INFO):  # what a function logs at its level (INFO); botocore DEBUG is off
        run = sim.run_file(source, key=landing_key)
    assert (run.status, run.denied) == (status, []), run
    assert run.states == (REJECT_PATH if status == "FAILURE" else SUCCESS_PATH)

    left = everything_the_run_left(sim, run)
    assert run.execution_name in left and "ValidateFile" in left  # what is searched is there
    assert not found_in(left, {card}), left
    assert "s*:" not in left  # masking keeps a URI's scheme
    lines = invocation_log()  # the handlers' own JSON lines (Powertools), beside every other logger's
    assert len(lines) >= 4 and all(line["keys"] for line in lines[1:])  # trigger(s), then each state
    assert not found_in(json.dumps(lines) + caplog.text, {card})
    with psycopg.connect(etl_env.db_url) as conn:
        ledger = conn.execute("SELECT file_name, status, error FROM etl.file_ledger").fetchall()
    assert keys(sim, "landing") == keys(sim, "raw") == []
    if status == "SUCCESS":
        assert ledger == [(name, "LOADED", None)]
        assert keys(sim, "error") == []
        return
    masked = name_text(name)
    assert ledger == [(masked, "REJECTED", "F005×1")]
    where = f"unknown/undated/{masked}"
    assert keys(sim, "error") == sorted([where, where + NAME_SUFFIX, where + ".report.json"])
    assert read(sim, "error", where) == SAMPLE.read_bytes()  # nothing lost: the bytes and the exact name
    assert read(sim, "error", where + NAME_SUFFIX) == name.encode()
    report = json.loads(read(sim, "error", where + ".report.json"))
    assert report["file"] == masked and set(report["errors"]) == {"F005"}
    [message] = sim.notifications()
    assert message["file"] == masked and message["errors"] == {"F005": 1}
    assert message["location"] == f"s3://{sim.buckets['error']}/{where}"
    execution_input = json.loads(
        sim.aws.client("stepfunctions").describe_execution(
            executionArn=sim.aws.client("stepfunctions").list_executions(stateMachineArn=sim.machine_arn)["executions"][
                0
            ]["executionArn"]
        )["input"]
    )
    assert execution_input["file"]["key"] == f"{CARD_NAME_FOLDER}/{masked}"  # the raw key past landing


def test_an_exception_leaving_a_handler_has_its_card_numbers_masked(invocation_log) -> None:
    """The runtime logs a failed invocation's message and Step Functions keeps it as the error's cause."""
    from types import SimpleNamespace

    from etl.aws.invocation import logged

    def fails(event):
        try:
            raise FileNotFoundError(2, "No such file", "/landing/incoming/4111111111111111.dat")
        except OSError as exc:
            raise RuntimeError("landing key refund-4000-0566-5566-5556.dat could not be moved") from exc

    event = {"file": {"bucket": "b", "key": "in/6011111111111117/x.dat"}}  # a state's file pointer
    context = SimpleNamespace(function_name="lz_to_raw", aws_request_id="r-1")
    with pytest.raises(RuntimeError) as raised:
        logged(fails)(event, context)
    [line] = invocation_log()
    assert str(raised.value) == "landing key refund-****-****-****-5556.dat could not be moved"
    assert str(raised.value.__cause__) == "[Errno 2] No such file: '/landing/incoming/************1111.dat'"
    assert line["keys"] == ["in/************1117/x.dat"]
    assert line["reason"] == "landing key refund-****-****-****-5556.dat could not be moved"
    cards = {"4111111111111111", "4000056655665556", "6011111111111117"}
    assert not found_in(json.dumps(line) + str(raised.value), cards)
