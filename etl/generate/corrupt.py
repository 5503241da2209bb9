"""Corruptions that break exactly one validation rule of docs/design.md §4 (all but F004).

Each rule changes the valid file in one place and keeps everything else consistent: the trailer count and
control total are recomputed after any edit of detail lines (only T001/T002 break them on purpose); record
edits touch fields that do not feed the control total; date edits keep the other date checks quiet.

Choices, by rule (R-rules edit one or two detail lines of the first chunk; R005 one pair):

======  ===================================================================================================
F001    header and trailer (count 0, total 0), no detail records
F002    file name ``<feed>-YYYYMMDD.dat`` (hyphen): matches no feed pattern; content valid
F003    utf-8 feeds: byte 0xFF inside ``merchant_name`` (optional text); ascii feeds: byte 0xE9 in the
        header's padding (position 100); F003 stops reading before any field is checked
F005    file name ``<feed>_YYYYMMDD_4000056655665556.dat``: a card number after the date; content valid
S001    header removed
S002    trailer removed (a file cut cleanly after a detail line)
S003    a copy of the header inserted in the middle of the detail records
S004    an extra record of type ``X`` (a copy of the first detail line with its type changed), not counted
S005    one detail line with the control field set to zero, then: delimited, an extra field ``|EXTRA``;
        fixed width, the last filler character cut (119 characters). Still counted as a detail record
H001    header feed name ``PAYMENTS``
H002    header business date one day before the file name's date
H003    business date in the year 2999 in both the file name and the header
H004    header ``created_at`` = ``NOTATIME`` (not a timestamp)
H005    file name with sequence ``_NN`` (``--sequence``, else 01), header sequence the next one; feeds whose
        header has a ``sequence`` field only
T001    trailer record count one more than the detail records
T002    trailer control total one unit (0.01) more than the sum
T003    trailer control total not in its format: with a sign field (account_summary) the sign ``X``;
        without (transactions) the right total written with a decimal point (``…123.45``)
R001    transactions ``channel`` empty; account_summary ``customer_id`` blank (two lines)
R002    transactions ``posted_date`` / account_summary ``open_date`` = February 30 of the business year
R003    transactions ``channel`` = ``WIRE``; account_summary ``product_code`` = ``MTGE``
R004    transactions ``mcc`` = ``54A1``; account_summary ``customer_id`` = ``12345ABCDE``
R005    the primary key (``transaction_id`` / ``account_id``) of one line copied onto another line
R006    transactions ``card_number`` with its last (check) digit changed; not applicable to account_summary
R007    transactions ``transaction_id`` = the line's own card number, on one line as digits, on the other in
        dashed groups of four (``4000-0566-5566-5556``); not applicable to account_summary (no text field
        there can hold 13 digits and pass its pattern)
======  ===================================================================================================
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np

from etl.contract import Contract, Pii
from etl.core.rules import Rule
from etl.generate import _layout as lay

CORRUPTIBLE_RULES = (
    Rule.F001,
    Rule.F002,
    Rule.F003,
    Rule.F005,
    Rule.S001,
    Rule.S002,
    Rule.S003,
    Rule.S004,
    Rule.S005,
    Rule.H001,
    Rule.H002,
    Rule.H003,
    Rule.H004,
    Rule.H005,
    Rule.T001,
    Rule.T002,
    Rule.T003,
    Rule.R001,
    Rule.R002,
    Rule.R003,
    Rule.R004,
    Rule.R005,
    Rule.R006,
    Rule.R007,
)
_LINE_RULES = (Rule.S003, Rule.S004, Rule.S005, Rule.R005, Rule.R007)
FUTURE_YEAR = 2999
OTHER_FEED_NAME = "PAYMENTS"
CARD_IN_NAME = "4000056655665556"  # a Luhn-valid test card number, put in the file name for F005
NOT_A_TIMESTAMP = b"NOTATIME"

Edit = Callable[[bytes, dt.date], bytes]


def _feb30(_: bytes, day: dt.date) -> bytes:
    return f"{day.year}0230".encode()


def _flip_check_digit(value: bytes, _: dt.date) -> bytes:
    return value[:-1] + str((int(value[-1:]) + 1) % 10).encode()


def _const(value: bytes) -> Edit:
    return lambda _old, _day: value


FIELD_EDITS: dict[str, dict[Rule, tuple[str, Edit]]] = {
    "transactions": {
        Rule.F003: ("merchant_name", _const(b"CAF\xff ROMA")),
        Rule.R001: ("channel", _const(b"")),
        Rule.R002: ("posted_date", _feb30),
        Rule.R003: ("channel", _const(b"WIRE")),
        Rule.R004: ("mcc", _const(b"54A1")),
        Rule.R006: ("card_number", _flip_check_digit),
    },
    "account_summary": {
        Rule.R001: ("customer_id", _const(b"")),
        Rule.R002: ("open_date", _feb30),
        Rule.R003: ("product_code", _const(b"MTGE")),
        Rule.R004: ("customer_id", _const(b"12345ABCDE")),
    },
}


# the identifier field that receives a card number for R007
CARD_IN_FIELD = {"transactions": "transaction_id"}


def _not_applicable(contract: Contract) -> dict[Rule, str]:
    """Rules this feed's contract gives no way to break, and why."""
    missing = {}
    if not any(f.luhn for f in contract.fields):
        missing[Rule.R006] = "no field with a Luhn check"
    if "created_at" not in {f.name for f in contract.header}:
        missing[Rule.H004] = "no header field created_at"
    if "sequence" not in {f.name for f in contract.header} or "(?P<sequence>" not in contract.file_pattern:
        missing[Rule.H005] = "it needs a sequence field in the header and a sequence in the file name"
    if contract.feed not in CARD_IN_FIELD:
        missing[Rule.R007] = "no text field that can take a card number past its pattern"
    return missing


def corruptible_rules(contract: Contract) -> tuple[Rule, ...]:
    """Rules a corrupt file of this feed can break (e.g. R006 only where a field has a Luhn check)."""
    missing = _not_applicable(contract)
    return tuple(r for r in CORRUPTIBLE_RULES if r not in missing)


def check_rule(contract: Contract, rule: str, rows: int) -> None:
    """ValueError with a one-line reason when ``rule`` cannot be produced for this feed and size."""
    if rule not in CORRUPTIBLE_RULES:
        raise ValueError(f"unknown rule {rule!r}; choose one of {', '.join(CORRUPTIBLE_RULES)}")
    missing = _not_applicable(contract)
    if rule in missing:
        raise ValueError(f"rule {rule} does not apply to feed {contract.feed!r} ({missing[rule]})")
    needed = 0 if rule == Rule.F001 else 2 if rule == Rule.R005 else 1
    if rows < needed:
        raise ValueError(f"rule {rule} needs at least {needed} detail row(s), got --rows {rows}")


def edits_lines(contract: Contract, rule: str | None) -> bool:
    """Whether ``rule`` damages detail lines (else only the header, trailer or name change)."""
    return rule in _LINE_RULES or rule in FIELD_EDITS.get(contract.feed, {})


def dates(rule: str | None, business_date: dt.date) -> tuple[dt.date, dt.date]:
    """(date in the file name, date in the header)."""
    if rule == Rule.H003:
        future = business_date.replace(year=FUTURE_YEAR, day=min(business_date.day, 28))
        return future, future
    if rule == Rule.H002:
        return business_date, business_date - dt.timedelta(days=1)
    return business_date, business_date


def file_name(rule: str | None, feed: str, name_date: dt.date, sequence: int | None) -> str:
    stem = f"{feed}{'-' if rule == Rule.F002 else '_'}{name_date:%Y%m%d}"
    if rule == Rule.H005:
        sequence = sequence or 1
    if rule == Rule.F005:
        stem = f"{stem}_{CARD_IN_NAME}"
    return f"{stem}_{sequence:02d}.dat" if sequence else f"{stem}.dat"


def edit_header(rule: str | None, contract: Contract, header: bytes) -> bytes | None:
    if rule == Rule.S001:
        return None
    if rule == Rule.H001:
        return lay.set_field(contract, contract.header, header, "feed_name", OTHER_FEED_NAME.encode())
    if rule == Rule.H004:
        return lay.set_field(contract, contract.header, header, "created_at", NOT_A_TIMESTAMP)
    if rule == Rule.H005:
        sequence = int(lay.get_field(contract, contract.header, header, "sequence"))
        return lay.set_field(contract, contract.header, header, "sequence", f"{sequence % 99 + 1:02d}".encode())
    if rule == Rule.F003 and contract.encoding == "ascii":
        return header[:99] + b"\xe9" + header[100:]
    return header


def edit_trailer(rule: str | None, contract: Contract, count: int, total: int) -> bytes | None:
    """The trailer record to write for the detail records' count and total, or None for no trailer."""
    if rule == Rule.S002:
        return None
    values = lay.trailer_values(contract, count + (rule == Rule.T001), total + (rule == Rule.T002))
    if rule == Rule.T003:
        check = contract.checks.control_total
        if check.sign_field:
            values[check.sign_field] = "X"
        else:
            digits = values[check.trailer_field]
            values[check.trailer_field] = f"{digits[:-2]}.{digits[-2:]}"
    return lay.build_record(contract, contract.trailer, values)


def edit_lines(
    rule: str, contract: Contract, lines: list[bytes], header: bytes, *, seed: int, business_date: dt.date
) -> list[bytes]:
    """The first chunk's detail lines (no line ends) with the rule's damage applied."""
    g = np.random.default_rng([seed, int.from_bytes(rule.encode(), "big")])
    picks = sorted(int(i) for i in g.choice(len(lines), size=min(2, len(lines)), replace=False))
    out = list(lines)
    edits = FIELD_EDITS.get(contract.feed, {})
    if rule in edits:
        name, edit = edits[rule]
        for i in picks:
            old = lay.get_field(contract, contract.fields, out[i], name)
            out[i] = lay.set_field(contract, contract.fields, out[i], name, edit(old, business_date))
    elif rule == Rule.R007:
        card = next(f.name for f in contract.fields if f.pii is Pii.card_number)
        target = CARD_IN_FIELD[contract.feed]
        for n, i in enumerate(picks):
            number = lay.get_field(contract, contract.fields, out[i], card)
            shown = number if n == 0 else b"-".join(number[k : k + 4] for k in range(0, len(number), 4))
            out[i] = lay.set_field(contract, contract.fields, out[i], target, shown)
    elif rule == Rule.R005:
        key = next(k for k in contract.primary_key if k in contract.field_names)
        first, second = picks
        value = lay.get_field(contract, contract.fields, out[first], key)
        out[second] = lay.set_field(contract, contract.fields, out[second], key, value)
    elif rule == Rule.S003:
        out.insert(len(out) // 2, header)
    elif rule == Rule.S004:
        out.insert(1, b"X" + out[0][1:])
    elif rule == Rule.S005:
        out[picks[0]] = _wrong_shape(contract, _zero_control(contract, out[picks[0]]))
    else:
        raise ValueError(f"rule {rule} has no line edit for feed {contract.feed!r}")
    return out


def _zero_control(contract: Contract, line: bytes) -> bytes:
    spec = contract.field(contract.checks.control_total.sum_of or "")
    width = len(lay.get_field(contract, contract.fields, line, spec.name))
    line = lay.set_field(contract, contract.fields, line, spec.name, b"0" * width)
    if spec.sign_field:
        line = lay.set_field(contract, contract.fields, line, spec.sign_field, b"+")
    return line


def _wrong_shape(contract: Contract, line: bytes) -> bytes:
    if contract.format == "delimited":
        return line + contract.delimiter.encode() + b"EXTRA"
    return line[:-1]
