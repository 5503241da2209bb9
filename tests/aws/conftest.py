"""Fixtures for the AWS area: tiny throwaway handlers, and the real pipeline on emulated AWS."""

from __future__ import annotations

import contextlib
import textwrap
from pathlib import Path

import pytest

from tests.environment import EtlEnv


@pytest.fixture
def lambda_dir(tmp_path: Path) -> Path:
    """A folder of tiny handlers."""
    folder = tmp_path / "lambda"
    folder.mkdir()
    (folder / "tiny.py").write_text(
        textwrap.dedent(
            '''
            import os


            class BadFile(Exception):
                """A handler-defined error the state machine catches by name."""


            def double(event, context):
                return {"doubled": event["x"] * 2, "flavour": os.environ.get("FLAVOUR"),
                        "function": context.function_name}


            def reject(event, context):
                raise BadFile(f"bad file {event['x']}")


            def environment(event, context):
                return {name: os.environ.get(name) for name in event["names"]}


            def put(event, context):
                import boto3

                boto3.client("s3").put_object(Bucket=event["bucket"], Key=event["key"], Body=b"x")
                return {"put": event["key"]}
            '''
        )
    )
    return folder


# --- the real pipeline on emulated AWS (tests/aws/test_pipeline_emulated.py, test_sim_cli.py) ---------------


@pytest.fixture
def open_sim(etl_env: EtlEnv):
    """``open_sim(threshold=None, spark=None, without=())``: a deployed simulation on ``etl_env`` (its database is
    the test's ``db_url``). Pass the session's ``spark`` when the Glue step will run, so the suite keeps one
    SparkSession; ``without`` leaves (role, Sid) statements out of the deployed policies."""
    from etl.aws.sim import simulation

    def no_spark():
        raise AssertionError("this test routed a file to Glue without passing the spark fixture")

    with contextlib.ExitStack() as stack:

        def _open(threshold: int | None = None, spark=None, without=()):
            factory = (lambda: spark) if spark is not None else no_spark
            return stack.enter_context(simulation(threshold=threshold, spark=factory, without=without))

        yield _open


@pytest.fixture
def sim(open_sim):
    return open_sim()


@pytest.fixture
def invocation_log():
    """``invocation_log()``: the JSON lines the handlers' Powertools logger wrote during the test, formatted
    by its own formatter (a second handler beside the one writing to stderr)."""
    import io
    import json
    import logging

    from etl.aws import invocation

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(invocation.logger.registered_formatter)
    invocation.logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    invocation.logger.removeHandler(handler)
