"""File names as the pipeline shows and stores them: the exact name, made safe for each place it goes.

A file's identity is its exact name (``os.fsdecode`` of its bytes; a byte that is not UTF-8 arrives as a lone
surrogate ``\\udcXX``). Two renderings, each in one place:

- :func:`name_text` — for text stores (the ledger, reports, notifications, lineage columns), which take only
  valid Unicode: a UTF-8 name is kept exactly; each byte that is not UTF-8, and NUL, is written ``\\xNN``
  (Python's ``backslashreplace``), so the row and the report exist for every file and still say which bytes it had.
- :func:`terminal_text` — for a terminal: control and format characters (escape sequences, NUL, newlines,
  bidi overrides) are written as ``\\xNN``/``\\uNNNN`` escapes, so a name can neither move the cursor nor clear
  the screen nor hide part of itself. Rich markup is a separate concern of the CLI (``etl.cli.common``).

Both first mask any card number a name (or key, path, message) holds (:func:`without_card_numbers`): a file
named ``refund-4111-1111-1111-1111.dat`` is stored and shown as ``refund-****-****-****-1111.dat``. Only the
zones keep names with card numbers, and past landing not even they (docs/design.md §6): a name holding one is
rule F005 (docs/design.md §4).
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import PurePath

# Cc control, Cf format (bidi overrides, zero-width), Cs surrogate (a non-UTF-8 byte), Co private use,
# Cn unassigned, Zl/Zp line and paragraph separators: none may reach a terminal as is.
_UNSAFE = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))


# In names, ``_`` and ``.`` separate digit groups as spaces and dashes do in text: ``4111_1111_1111_1111.dat``
# is a card number written in a name. A date and a sequence (``_20240301_01``) never are: an 8-digit group is
# longer than any group of a printed card number, so it breaks the chain (``etl.core.card_runs``).
_NAME_SEPARATORS = str.maketrans("_.", "--")
_DIGITS = frozenset("0123456789")
# ``etl.core.card_runs.MIN_DIGITS``, not imported from there: that module loads pyarrow, and the CLI imports this
# one at start-up; the detector (and pyarrow) load only for a text with that many digits.
_FEWEST_CARD_DIGITS = 13
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def _probe(text: str) -> str:
    """``text`` for the card-run detector, one character for each of ``text``'s (so positions map back):
    name separators as dashes, every non-ASCII character (a lone surrogate included) as ``#``."""
    return "".join(c if c.isascii() else "#" for c in text).translate(_NAME_SEPARATORS)


def _may_hold_card_number(text: str) -> bool:
    return sum(c in _DIGITS for c in text) >= _FEWEST_CARD_DIGITS  # no card number in fewer digits: no detector


def holds_card_number(text: str | PurePath) -> bool:
    """Whether a name, key, path or message holds a card-number run (``etl.core.card_runs``, strict: a
    Luhn-valid 13-19 digit window alone, glued to letters or inside a longer digit run, or whole groups of
    1-6 digits joined by spaces, dashes, ``_`` or ``.``)."""
    value = os.fspath(text)
    if not _may_hold_card_number(value):
        return False
    import pyarrow as pa

    from etl.core.card_runs import card_run_rows

    return bool(card_run_rows(pa.array([_probe(value)], pa.string()))[0])


def without_card_numbers(text: str) -> str:
    """``text`` with every digit but the last four turned into ``*`` when it holds a card-number run (the
    masking of free text, ``etl.core.card_runs``); anything else is returned exactly as it is. A URI's scheme
    is kept (``s3://``)."""
    if not _may_hold_card_number(text):
        return text
    scheme = _SCHEME.match(text)
    if scheme:
        return scheme.group() + without_card_numbers(text[scheme.end() :])
    import pyarrow as pa

    from etl.core.card_runs import mask_card_runs

    probe = _probe(text)
    masked = mask_card_runs(pa.array([probe], pa.string()))[0].as_py()
    if masked == probe:
        return text
    return "".join("*" if m != p else c for c, p, m in zip(text, probe, masked, strict=True))


def name_text(name: str | PurePath) -> str:
    """The name as valid Unicode: exact when it is UTF-8, each other byte as ``\\xNN``; a card number masked."""
    text = without_card_numbers(os.fspath(name))
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
    """``text`` (a name, a path, a message) with every character that could act on a terminal escaped and
    any card number masked."""
    value = without_card_numbers(os.fspath(text) if isinstance(text, PurePath) else str(text))
    if value.isprintable() and value.isascii():
        return value
    return "".join(_escape(c) if unicodedata.category(c) in _UNSAFE else c for c in value)
