"""Findings per rule: an exact count, the first few line numbers and one message — never one object per line.

A hostile file can break a rule on every one of millions of lines; what a report needs is how many, and where
to start looking. So memory is bounded by the number of rules, whatever the number of bad lines, and the
parser and the validator share this one tally.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from etl.core.rules import Rule

MAX_LINES_SHOWN = 10


@dataclass
class Finding:
    """One rule's tally: ``count`` lines broke it; ``lines`` are the smallest of them, sorted, at most
    ``MAX_LINES_SHOWN``; ``message`` is the first one given (a PII-free description)."""

    count: int = 0
    lines: list[int] = field(default_factory=list)
    message: str | None = None

    def add(self, lines: np.ndarray | list[int], message: str | None = None, *, count: int | None = None) -> None:
        """Count ``count`` findings (default: one per line number given); ``lines`` may be just a sample of
        them as long as it holds their smallest line numbers."""
        lines = np.asarray(lines, dtype=np.int64)
        count = len(lines) if count is None else count
        if not count:
            return
        self.count += count
        if len(lines) > MAX_LINES_SHOWN:
            lines = np.partition(lines, MAX_LINES_SHOWN - 1)[:MAX_LINES_SHOWN]
        if len(self.lines) < MAX_LINES_SHOWN or (len(lines) and int(lines.min()) < self.lines[-1]):
            self.lines = sorted({*self.lines, *(int(x) for x in lines)})[:MAX_LINES_SHOWN]
        if message and self.message is None:
            self.message = message


@dataclass
class Findings:
    """Findings by rule id."""

    by_rule: dict[Rule, Finding] = field(default_factory=dict)

    def add(
        self, rule: Rule, lines: np.ndarray | list[int], message: str | None = None, *, count: int | None = None
    ) -> None:
        if count == 0 or (count is None and not len(lines)):
            return
        self.by_rule.setdefault(rule, Finding()).add(lines, message, count=count)

    def merge(self, rule: Rule, finding: Finding, message: str | None = None) -> None:
        """Add another tally (e.g. lines held back until it was known they broke ``rule``)."""
        self.add(rule, finding.lines, message or finding.message, count=finding.count)

    def update(self, other: Findings) -> None:
        for rule, finding in other.by_rule.items():
            self.merge(rule, finding)

    def __contains__(self, rule: object) -> bool:
        return rule in self.by_rule

    def __iter__(self) -> Iterator[tuple[Rule, Finding]]:
        return iter(sorted(self.by_rule.items()))

    def counts(self) -> dict[Rule, int]:
        return {rule: f.count for rule, f in self}

    def shown(self) -> list[tuple[Rule, int]]:
        """``(rule, line)`` for every line number kept, in rule then line order (handy in tests)."""
        return [(rule, line) for rule, f in self for line in f.lines]
