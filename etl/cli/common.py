"""What every command shares: consoles, names shown safely, the one-line usage error (exit 2), JSON output."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from etl.config import Settings
from etl.errors import ConfigError
from etl.names import terminal_text, without_card_numbers
from etl.pipeline.notify import Status

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

console = Console()
err_console = Console(stderr=True)


def shown(value: object) -> str:
    """A name, path or message ready to sit inside rich markup: control characters escaped (a name cannot act
    on the terminal) and markup escaped (``[/]`` or ``[bold]`` in a name is printed, not interpreted), so what is
    printed is exactly the name, escaped. Every name or path a command prints goes through here."""
    return escape(terminal_text(value))


def error_line(message: str, *, label: str = "error") -> None:
    """One line on stderr: ``error: <message>``, the message shown as plain text (no markup, controls escaped)."""
    text = Text.assemble((f"{label}:", "bold red"), " ", terminal_text(message))  # a newline becomes "\n"
    err_console.print(text, highlight=False, soft_wrap=True)


def usage_error(message: str) -> NoReturn:
    """A one-line error on stderr and exit code 2 (usage or configuration problem, no traceback)."""
    raise ConfigError(message)


def check_inputs(paths: Iterable[Path]) -> None:
    """Every input names a regular file (a symbolic link to one counts), else a usage error (exit 2) before
    anything is touched. A name the file system cannot even look up (too long, ...) is said so, in one line."""
    for path in paths:
        try:
            if path.is_file():
                continue
            problem = "no such file" if not path.exists() else "not a regular file"
        except OSError as exc:
            problem = exc.strerror or type(exc).__name__
        usage_error(f"{path}: {problem}")


def card_token_key(settings: Settings) -> bytes:
    """The PAN key, resolved before any file moves: refused (one line, exit 2) when missing and the run is
    not all-local; the development key's warning as one line on stderr."""
    from etl.io.secrets import pan_key

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        key = pan_key(settings)  # MissingPanKeyError is a ConfigError: one line, exit 2
    for warning in caught:
        err_console.print(f"warning: {warning.message}", highlight=False, soft_wrap=True, markup=False)
    return key


def print_json(obj: Any) -> None:
    """One JSON document per line on stdout (machine-readable ``--json`` output). ``ensure_ascii``: a name's
    control characters and non-UTF-8 bytes (``\\udcXX``) come out as JSON escapes, exactly and reversibly;
    a card number in any text of it (a file name, a key, a detail) is masked (``etl.names``)."""
    sys.stdout.write(json.dumps(_without_card_numbers(obj), default=str, sort_keys=False) + "\n")
    sys.stdout.flush()


def _without_card_numbers(obj: Any) -> Any:
    """``obj`` with every string in it (keys and values, at any depth) through ``without_card_numbers``."""
    if isinstance(obj, str):
        return without_card_numbers(obj)
    if isinstance(obj, dict):
        return {_without_card_numbers(k): _without_card_numbers(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_without_card_numbers(v) for v in obj]
    return obj


#: How an outcome looks on a terminal (``etl run``, ``etl sim``, ``etl replay``): one map, one vocabulary.
STATUS_COLOURS: dict[str, str] = {Status.SUCCESS: "green", Status.SKIPPED: "yellow", Status.FAILURE: "red"}
