"""Fixtures for the AWS area: tiny throwaway handlers (not the project's real ones)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest


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
            '''
        )
    )
    return folder
