"""What every command shares: consoles, the one-line usage error (exit 2), and JSON output."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

console = Console()
err_console = Console(stderr=True)


def usage_error(message: str) -> NoReturn:
    """A one-line error on stderr and exit code 2 (usage or configuration problem, no traceback)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_USAGE)


def print_json(obj: Any) -> None:
    """One JSON document per line on stdout (machine-readable ``--json`` output)."""
    sys.stdout.write(json.dumps(obj, default=str, sort_keys=False) + "\n")
    sys.stdout.flush()
