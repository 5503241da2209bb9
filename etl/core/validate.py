"""File validation (docs/design.md §4): one streaming pass, a JSON-serialisable report.

The report never carries the text of a line, so it can never leak a card number: only rule ids, exact counts,
the first line numbers, and messages that name a field and what is wrong with it. A header or trailer number
or date appears only once it has passed its format (digits of bounded width, a real date). Findings are
tallies (``etl.core.findings``), so a file with millions of bad lines gives a report of the same size.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, PrivateAttr

from etl.contract import Contract, FieldSpec, FieldType, Pii, contract_for_file
from etl.core import checks
from etl.core.card_runs import card_run_rows, redact
from etl.core.findings import Findings
from etl.core.parse import DEFAULT_BLOCK_SIZE, DatReader, FatalParseError, open_dat
from etl.core.rules import Rule
from etl.names import holds_card_number, name_text
from etl.streams import prefetched


class RuleErrors(BaseModel):
    """One rule's findings: how many, the first line numbers, and what the rule means."""

    count: int
    lines: list[int]
    message: str


class Report(BaseModel):
    """The outcome of validating one file."""

    file: str
    feed: str | None = None
    valid: bool = False
    business_date: dt.date | None = None
    row_count: int = 0
    rows_rejected: int = 0
    size: int = 0
    sha256: str | None = None
    control_total: Decimal | None = None
    trailer_record_count: int | None = None
    trailer_control_total: Decimal | None = None
    errors: dict[str, RuleErrors] = {}
    _rejected_lines: np.ndarray = PrivateAttr(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def rule_counts(self) -> dict[str, int]:
        return {rule: e.count for rule, e in sorted(self.errors.items())}

    @property
    def rejected_lines(self) -> np.ndarray:
        """Line numbers of records dropped under the contract's reject threshold (empty when none)."""
        return self._rejected_lines

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


@dataclass
class _KeyIndex:
    """64-bit hashes of every primary key seen, to find duplicates without holding the keys."""

    hashes: list[np.ndarray] = field(default_factory=list)

    def add(self, keys: pa.Array) -> None:
        self.hashes.append(checks.hash64(keys))

    def candidates(self) -> np.ndarray:
        if not self.hashes:
            return np.zeros(0, dtype=np.uint64)
        allh = np.concatenate(self.hashes)
        self.hashes.clear()
        allh.sort()
        return np.unique(allh[1:][allh[1:] == allh[:-1]])


Flag = Callable[[Rule, np.ndarray, np.ndarray, str], None]  # (rule, failing rows, their line numbers, message)
HEADER_OWNED = ("record_type", "feed_name", "business_date")  # classified, H001, H002/H003
TRAILER_OWNED = ("record_type",)
RECORD_NAMES = {Rule.H004: "header", Rule.T003: "trailer"}


class Validator:
    """Checks one file against its contract; ``run`` returns the report."""

    def __init__(self, contract: Contract, file_name: str, *, today: dt.date | None = None) -> None:
        self.contract = contract
        self.file_name = file_name
        self.today = today or dt.date.today()
        self.findings = Findings()
        self.record_lines: list[np.ndarray] = []  # lines of records broken by an R-rule (reject threshold)
        self.keys = _KeyIndex()
        self.total_units = 0  # control total in the smallest unit (e.g. cents)
        self.key_fields = [k for k in contract.primary_key if k in contract.field_names]

    def run(self, open_source: Callable[[], BinaryIO], block_size: int = DEFAULT_BLOCK_SIZE) -> Report:
        with open_source() as stream:
            reader = open_dat(stream, self.contract, block_size=block_size)
            for _batch in self.checked(reader):
                pass
        return self.finish(reader, open_source, block_size)

    def checked(self, reader: DatReader) -> Iterator[pa.RecordBatch]:
        """The reader's detail batches, each checked on its way through: a pass that also transforms and
        loads them validates the file at the same time (``finish`` gives the verdict once it is read). However
        the iteration ends, the reader thread is joined before it returns."""
        with closing(prefetched(reader.batches())) as batches:
            for batch in batches:
                self._check_batch(batch)
                yield batch

    def finish(self, reader: DatReader, open_source: Callable[[], BinaryIO], block_size: int) -> Report:
        """The report, once ``checked`` has gone through the whole file (file-level rules, duplicates)."""
        self.findings.update(reader.findings)
        if reader.size == 0 or (reader.detail_records == 0 and not reader.fatal):
            self.findings.add(Rule.F001, [0], "empty file" if reader.size == 0 else "no detail records")
        business_date = self._check_header(reader.header, reader.header_line or 1)
        trailer_count, trailer_total = self._check_trailer(
            reader.trailer, reader.trailer_line or 0, reader.detail_records
        )
        if not reader.fatal:
            self._check_duplicates(open_source, block_size)
        return self._report(reader, business_date, trailer_count, trailer_total)

    # --- records ------------------------------------------------------------------------------------

    def _check_batch(self, batch: pa.RecordBatch) -> None:
        lines = batch.column("_line").to_numpy()
        failed: dict[str, np.ndarray] = {}
        for spec in self.contract.fields:
            if spec.name == "record_type":
                continue
            failed[spec.name] = self._check_field(spec, self._value(batch, spec), lines)
        self._add_total(batch, failed)
        if self.key_fields:
            clean = ~np.logical_or.reduce([failed[k] for k in self.key_fields])
            self.keys.add(pc.filter(self._key(batch), pa.array(clean)))

    def _value(self, batch: pa.RecordBatch, spec: FieldSpec) -> pa.Array:
        return self._trim(batch.column(spec.name))

    def _trim(self, raw: pa.Array) -> pa.Array:
        """Fixed-width values without their space padding (delimited values are taken as they are)."""
        return pc.utf8_rtrim(raw, characters=" ") if self.contract.format == "fixed_width" else raw

    def _check_field(self, spec: FieldSpec, value: pa.Array, lines: np.ndarray, flag: Flag | None = None) -> np.ndarray:
        """Flag each row once, with the first rule it breaks; returns the rows that failed.

        ``flag`` receives (rule, rows, line numbers, message); by default the rows are tallied as record
        errors, the header and trailer checks pass their own to turn them into H and T findings."""
        flag = flag or self._flag
        empty = checks.to_mask(pc.equal(value, ""))
        failed = empty.copy() if spec.required else np.zeros(len(value), dtype=bool)
        flag(Rule.R001, failed, lines, f"{spec.name}: required value missing")
        pending = ~empty

        def step(rule: Rule, bad: np.ndarray, message: str) -> None:
            nonlocal pending
            hit = bad & pending
            flag(rule, hit, lines, message)
            failed[hit] = True
            pending = pending & ~hit

        if spec.max_length is not None:
            step(
                Rule.R004,
                pc.utf8_length(value).to_numpy(zero_copy_only=False) > spec.max_length,
                f"{spec.name}: longer than {spec.max_length} characters",
            )
        if spec.pattern is not None:
            step(Rule.R004, ~checks.matches(value, spec.pattern), f"{spec.name}: does not match {spec.pattern}")
        if spec.allowed is not None:
            step(
                Rule.R003,
                ~checks.to_mask(pc.is_in(value, pa.array(spec.allowed))),
                f"{spec.name}: not one of {', '.join(spec.allowed)}",
            )
        parse_check = {
            FieldType.date: checks.bad_date,
            FieldType.timestamp: checks.bad_timestamp,
            FieldType.integer: checks.bad_digits,
            FieldType.decimal: checks.bad_digits,
        }.get(spec.type)
        if parse_check is not None and pending.any():
            step(Rule.R002, parse_check(value), f"{spec.name}: not a valid {spec.type.value}")
        if spec.luhn and pending.any():
            step(Rule.R006, checks.luhn_fails(value), f"{spec.name}: fails the Luhn check")
        if spec.may_hold_card_run and spec.pii is Pii.none and pending.any():
            step(Rule.R007, card_run_rows(value), f"{spec.name}: holds a card number, and is not the card field")
        return failed

    def _flag(self, rule: Rule, mask: np.ndarray, lines: np.ndarray, message: str) -> None:
        if mask.any():
            self.findings.add(rule, lines[mask], message)
            self.record_lines.append(lines[mask])

    def _add_total(self, batch: pa.RecordBatch, failed: dict[str, np.ndarray]) -> None:
        check = self.contract.checks.control_total
        if not check.sum_of:
            return
        spec = self.contract.field(check.sum_of)
        ok = ~failed[spec.name]
        units = checks.digits_value(pc.filter(self._value(batch, spec), pa.array(ok)))
        if spec.sign_field:
            signs = pc.filter(self._value(batch, self.contract.field(spec.sign_field)), pa.array(ok))
            units = np.where(checks.to_mask(pc.equal(signs, "-")), -units, units)
        self.total_units += int(units.sum())  # per batch int64 is safe; Python int across batches is exact

    def _key(self, batch: pa.RecordBatch) -> pa.Array:
        columns = [self._value(batch, self.contract.field(k)) for k in self.key_fields]
        if len(columns) == 1:
            return columns[0]
        return pc.binary_join_element_wise(*columns, "\x1f")

    def _check_duplicates(self, open_source: Callable[[], BinaryIO], block_size: int) -> None:
        """Hash candidates are confirmed by a second, targeted pass that compares the keys exactly."""
        candidates = self.keys.candidates()
        if not len(candidates):
            return
        seen: dict[str, list[int]] = {}
        with open_source() as stream:
            reader = open_dat(stream, self.contract, block_size=block_size)
            try:
                for batch in reader.batches():
                    keys = self._key(batch)
                    hit = np.isin(checks.hash64(keys), candidates)
                    if hit.any():
                        rows = np.flatnonzero(hit)
                        lines = batch.column("_line").to_numpy()[rows]
                        for key, line in zip(keys.take(pa.array(rows)).to_pylist(), lines.tolist(), strict=True):
                            if key:
                                seen.setdefault(key, []).append(line)
            except FatalParseError:  # pragma: no cover - the first pass would have failed first
                return
        duplicates = np.array(sorted(line for lines in seen.values() if len(lines) > 1 for line in lines), np.int64)
        self._flag(
            Rule.R005, np.ones(len(duplicates), dtype=bool), duplicates, f"duplicate {', '.join(self.key_fields)}"
        )

    # --- header and trailer -------------------------------------------------------------------------

    def _check_record(
        self, record: dict[str, str], specs: tuple[FieldSpec, ...], line: int, rule: Rule, owned: tuple[str, ...]
    ) -> set[str]:
        """Every field of a header or trailer against its contract spec, with the detail fields' own checks;
        a broken field is one ``rule`` finding whose message names the field and what is wrong, never its
        value. Fields in ``owned`` have rules of their own. Returns the names of the broken fields."""
        broken: set[str] = set()
        at = np.array([line], dtype=np.int64)
        for spec in specs:
            if spec.name in owned:
                continue

            def flag(_rule: Rule, mask: np.ndarray, _lines: np.ndarray, message: str, name: str = spec.name) -> None:
                if mask.any():
                    self.findings.add(rule, at, f"{RECORD_NAMES[rule]} {message}")
                    broken.add(name)

            self._check_field(spec, self._trim(pa.array([record[spec.name]], pa.string())), at, flag)
        return broken

    def _field_text(self, record: dict[str, str], name: str) -> str:
        return self._trim(pa.array([record.get(name, "")], pa.string()))[0].as_py()

    def _check_header(self, header: dict[str, str] | None, line: int) -> dt.date | None:
        name_date = self.contract.file_business_date(self.file_name)
        if header is None:
            return name_date
        at = [line]
        broken = self._check_record(header, self.contract.header, line, Rule.H004, HEADER_OWNED)
        if self._field_text(header, "feed_name") != self.contract.feed.upper():
            self.findings.add(Rule.H001, at, f"header names another feed than {self.contract.feed.upper()!r}")
        name_sequence = self._name_group("sequence")
        if "sequence" in header and "sequence" not in broken and name_sequence is not None:
            sequence = self._field_text(header, "sequence")
            if sequence != name_sequence:
                self.findings.add(
                    Rule.H005, at, f"header sequence {sequence} differs from file name sequence {name_sequence}"
                )
        raw = pa.array([self._field_text(header, "business_date")], pa.string())
        if checks.bad_date(raw)[0]:
            self.findings.add(Rule.H003, at, "header business date is not a valid YYYYMMDD date")
            return name_date
        text = raw[0].as_py()
        header_date = dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        if header_date > self.today:
            self.findings.add(Rule.H003, at, f"header business date {header_date} lies in the future")
        if name_date is not None and header_date != name_date:
            self.findings.add(
                Rule.H002, at, f"header business date {header_date} differs from file name date {name_date}"
            )
        return header_date

    def _name_group(self, group: str) -> str | None:
        """A named part of the file name (e.g. its ``_NN`` sequence), or None when the name has none."""
        match = self.contract.match_file(self.file_name)
        return match.groupdict().get(group) if match else None

    def _check_trailer(
        self, trailer: dict[str, str] | None, line: int, details: int
    ) -> tuple[int | None, Decimal | None]:
        """T003 for a field not in its format; T001 and T002 compare only well-formed numbers (so a count or
        total is shown only once it is known to be digits of a bounded width)."""
        if trailer is None:
            return None, None
        at = [line]
        broken = self._check_record(trailer, self.contract.trailer, line, Rule.T003, TRAILER_OWNED)
        count_check, total_check = self.contract.checks.record_count, self.contract.checks.control_total
        count = None
        if count_check.trailer_field not in broken:
            count = int(self._field_text(trailer, count_check.trailer_field))
            if count != details:
                self.findings.add(Rule.T001, at, f"trailer counts {count} records, file has {details}")
        total = None
        if not broken & {total_check.trailer_field, total_check.sign_field}:
            total_text = self._field_text(trailer, total_check.trailer_field)
            if _card_number(total_text):  # a card number is neither kept in the report nor shown unmasked
                self.findings.add(
                    Rule.T002, at, f"trailer control total {_quoted(total_text)}, computed {self.control_total}"
                )
                return count, None
            units = int(total_text)
            if total_check.sign_field and self._field_text(trailer, total_check.sign_field) == "-":
                units = -units
            total = Decimal(units).scaleb(-total_check.implied_decimals)
            if total != self.control_total:
                self.findings.add(Rule.T002, at, f"trailer control total {total}, computed {self.control_total}")
        return count, total

    @property
    def control_total(self) -> Decimal:
        return Decimal(self.total_units).scaleb(-self.contract.checks.control_total.implied_decimals)

    # --- verdict ------------------------------------------------------------------------------------

    def _report(self, reader, business_date, trailer_count, trailer_total) -> Report:
        errors = {
            rule: RuleErrors(count=f.count, lines=f.lines, message=f.message or Rule(rule).meaning)
            for rule, f in self.findings
        }
        record_lines = (
            np.unique(np.concatenate(self.record_lines)) if self.record_lines else np.zeros(0, dtype=np.int64)
        )
        file_level = [rule for rule in errors if not Rule(rule).record_rule]
        rejected_share = len(record_lines) / reader.detail_records if reader.detail_records else 1.0
        tolerated = bool(len(record_lines)) and rejected_share <= self.contract.reject_threshold
        valid = not file_level and (not len(record_lines) or tolerated)
        report = Report(
            file=name_text(self.file_name),
            feed=self.contract.feed,
            valid=valid,
            business_date=business_date,
            row_count=reader.detail_records,
            rows_rejected=len(record_lines),
            size=reader.size,
            sha256=reader.sha256,
            control_total=self.control_total,
            trailer_record_count=trailer_count,
            trailer_control_total=trailer_total,
            errors=errors,
        )
        report._rejected_lines = record_lines if valid else np.zeros(0, dtype=np.int64)
        return report


def _card_number(number: str) -> bool:
    """A trailer number that is a card number. Leading zeros are padding (a card number has none), so a
    zero-padded total is never taken for one."""
    trimmed = number.lstrip("0")
    return redact(trimmed) != trimmed


def _quoted(number: str) -> str:
    """A trailer number for a message: at most 20 characters, masked if it is a card number."""
    return repr((redact(number.lstrip("0")) if _card_number(number) else number)[:20])


def validate_file(
    path: str | Path,
    contract: Contract | None = None,
    *,
    file_name: str | None = None,
    today: dt.date | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> Report:
    """Validate a local file. ``file_name`` overrides the name checked against the feed's pattern."""
    path = Path(path)
    return validate_stream(
        lambda: path.open("rb"), file_name or path.name, contract, today=today, block_size=block_size
    )


def validate_stream(
    open_source: Callable[[], BinaryIO],
    file_name: str,
    contract: Contract | None = None,
    *,
    today: dt.date | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> Report:
    """Validate a file given a way to open it (local, S3, ...); it may be opened twice to confirm duplicates.

    The name is checked first: a name holding a card number is F005 whatever else it matches (its report,
    like every record of it, shows it masked), one that matches no feed is F002; neither file is read.
    """
    if holds_card_number(file_name):
        return card_name_report(file_name)
    contract = contract or contract_for_file(file_name)
    if contract is None or not contract.match_file(Path(file_name).name):
        text = name_text(file_name)
        return name_rejected(file_name, Rule.F002, f"{text!r} matches no feed's file pattern", contract)
    return Validator(contract, Path(file_name).name, today=today).run(open_source, block_size)


def card_name_report(file_name: str) -> Report:
    """F005: the name holds (or, masked, held) a card number; the file is not read."""
    return name_rejected(file_name, Rule.F005, "the file name holds a card number (shown masked)")


def name_rejected(file_name: str, rule: Rule, message: str, contract: Contract | None = None) -> Report:
    """The report of a file rejected for its name alone (F002, F005): the file is not read."""
    return Report(
        file=name_text(file_name),
        feed=contract.feed if contract else None,
        errors={rule: RuleErrors(count=1, lines=[0], message=message)},
    )
