"""File names as the pipeline shows and stores them: the exact name, made safe for each place it goes.

A file's identity is its exact name (``os.fsdecode`` of its bytes; a byte that is not UTF-8 arrives as a lone
surrogate ``\\udcXX``). Two renderings, each in one place:

- :func:`name_text` — for text stores (the ledger, reports, notifications, lineage columns), which take only
  valid Unicode: a UTF-8 name is kept exactly; each byte that is not UTF-8, and NUL, is written ``\\xNN``
  (Python's ``backslashreplace``), so the row and the report exist for every file and still say which bytes it had.
- :func:`terminal_text` — for a terminal: control and format characters (escape sequences, NUL, newlines,
  bidi overrides) are written as ``\\xNN``/``\\uNNNN`` escapes, so a name can neither move the cursor nor clear
  the screen nor hide part of itself. Rich markup is a separate concern of the CLI (``etl.cli.common``).
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import PurePath

# Cc control, Cf format (bidi overrides, zero-width), Cs surrogate (a non-UTF-8 byte), Co private use,
# Cn unassigned, Zl/Zp line and paragraph separators: none may reach a terminal as is.
_UNSAFE = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))


def name_text(name: str | PurePath) -> str:
    """The name as valid Unicode: exact when it is UTF-8, each other byte as ``\\xNN``."""
    text = os.fspath(name)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text.replace("\0", "\\x00")  # PostgreSQL text cannot hold NUL (an S3 key can)


def _escape(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\x{code:02x}")
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def terminal_text(text: object) -> str:
    """``text`` (a name, a path, a message) with every character that could act on a terminal escaped."""
    value = os.fspath(text) if isinstance(text, PurePath) else str(text)
    if value.isprintable() and value.isascii():
        return value
    return "".join(_escape(c) if unicodedata.category(c) in _UNSAFE else c for c in value)
