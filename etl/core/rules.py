"""The validation rule catalogue (docs/design.md §4): ids, meanings and which ones reject a file.

``Rule`` is the one catalogue: code names a rule by its member (``Rule.R005``), reports and notifications
carry its id (``"R005"``: a ``StrEnum`` member is that string), and a finding without a message of its own
gets the rule's ``meaning``.
"""

from __future__ import annotations

from enum import StrEnum


class Rule(StrEnum):
    """A validation rule: its id is its value, ``meaning`` what breaking it means."""

    meaning: str

    def __new__(cls, rule_id: str, meaning: str) -> Rule:
        member = str.__new__(cls, rule_id)
        member._value_ = rule_id
        member.meaning = meaning
        return member

    F001 = "F001", "empty file, or no detail records"
    F002 = "F002", "file name does not match a feed's pattern"
    F003 = "F003", "not decodable in the contract's encoding, or contains NUL bytes"
    F004 = "F004", "duplicate: a file with the same SHA-256 was already loaded"
    F005 = "F005", "file name holds a card number"
    S001 = "S001", "first record is not a header"
    S002 = "S002", "last record is not a trailer (truncated file)"
    S003 = "S003", "more than one header or trailer, or one in the middle"
    S004 = "S004", "unknown record type"
    S005 = "S005", "wrong number of fields or wrong record length"
    H001 = "H001", "header feed name differs from the file's feed"
    H002 = "H002", "header business date differs from the file name's date"
    H003 = "H003", "header business date is not a valid date or lies in the future"
    H004 = "H004", "header field does not match its contract format (type, pattern, allowed values)"
    H005 = "H005", "header sequence differs from the file name's sequence"
    T001 = "T001", "trailer record count differs from the detail records counted"
    T002 = "T002", "trailer control total differs from the computed total"
    T003 = "T003", "trailer field does not match its contract format (type, pattern, allowed values)"
    R001 = "R001", "required field missing"
    R002 = "R002", "value does not parse as its type"
    R003 = "R003", "value not in the allowed set"
    R004 = "R004", "value does not match the field's pattern or length"
    R005 = "R005", "duplicate primary key inside the file"
    R006 = "R006", "card number fails the Luhn check"
    R007 = "R007", "card number in a non-card field"

    @property
    def record_rule(self) -> bool:
        """Record rules (R) may be tolerated up to a contract's reject threshold; the others reject the file."""
        return self.value.startswith("R")
