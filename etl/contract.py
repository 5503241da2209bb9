"""Feed contracts: the typed model of ``etl/feeds/*.yml`` and the registry that finds a file's feed.

The contract is the single source of truth: parser, validator, both transform engines, stage writer,
loader and notebooks all read it. A broken contract fails at load time with the file and field named.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from etl.errors import ConfigError

FEEDS_PACKAGE = "etl.feeds"
CARD_RUN_MIN_CHARS = 13  # the shortest card number (etl.core.card_runs.MIN_DIGITS)
LINEAGE_COLUMNS = ("business_date", "source_file", "execution_name", "loaded_at")


class ContractError(ConfigError, ValueError):
    """A feed contract is missing or malformed; the message names the file and the field."""


# Patterns mean exactly what they say, in ASCII (docs/design.md §3): ``\d`` is ``[0-9]`` and ``\w`` is
# ``[A-Za-z0-9_]`` (never a full-width or Arabic-Indic digit), and the pattern must match the WHOLE text, so
# ``$`` cannot match before a trailing newline. Python: ``re.ASCII`` + ``fullmatch``. RE2 (Arrow, for columns):
# its Perl classes are ASCII and ``etl.core.checks`` anchors with ``\A(?:...)\z``; a pattern RE2 cannot run is
# a contract error at load time.


@cache
def name_regex(pattern: str) -> re.Pattern[str]:
    """A file-name pattern compiled for ``fullmatch`` with ASCII classes."""
    try:
        return re.compile(pattern, re.ASCII)
    except re.error as exc:
        raise ValueError(f"pattern does not compile: {exc}") from exc


_CASE_FOLD = re.compile(r"\(\?[a-zA-Z]*i[a-zA-Z-]*[:)]")


@cache
def field_regex(pattern: str) -> re.Pattern[str]:
    """A field pattern compiled for ``fullmatch`` with ASCII classes; RE2 must accept it too (the validator
    runs it on whole columns with Arrow)."""
    import pyarrow.compute as pc

    regex = name_regex(pattern)
    if _CASE_FOLD.search(pattern):  # RE2 folds case in Unicode ("k" matches the Kelvin sign), Python in ASCII
        raise ValueError("case-insensitive patterns ((?i)) are not allowed: list both cases, e.g. [A-Za-z]")
    try:
        pc.match_substring_regex(pa.array([""], pa.string()), pattern)  # compiled on the first value
    except pa.ArrowInvalid as exc:
        raise ValueError(f"pattern is not valid RE2 syntax: {exc}") from exc
    return regex


class FieldType(StrEnum):
    string = "string"
    integer = "integer"
    decimal = "decimal"
    date = "date"
    timestamp = "timestamp"


class Pii(StrEnum):
    """What a field may hold of a card number, and what happens to one found there (docs/design.md §4, §5).

    - ``card_number``: the card field itself, replaced by ``card_last4`` and ``card_token``.
    - ``free_text``: text such as a merchant name; a card number inside it (``etl.core.card_runs``) is
      masked in the staged value, the record is kept.
    - ``none`` (the default): no card number belongs here; a text value holding one rejects its record
      (R007). The safe default: a field nobody thought about can never store a number in clear, and a
      rejected record is seen in the report instead of being silently altered.
    """

    none = "none"
    card_number = "card_number"
    free_text = "free_text"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Model):
    """One field of a record: where it sits in the line, its type and the rules its raw text must meet."""

    name: str
    index: int | None = None  # delimited: 0-based field index in the record
    position: tuple[int, int] | None = None  # fixed width: 1-based inclusive [start, end]
    type: FieldType = FieldType.string
    required: bool = False
    allowed: tuple[str, ...] | None = None
    pattern: str | None = None
    max_length: int | None = None
    implied_decimals: int = 0
    sign_field: str | None = None
    luhn: bool = False
    pii: Pii = Pii.none

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            field_regex(value)
        return value

    @model_validator(mode="after")
    def _located(self) -> FieldSpec:
        if (self.index is None) == (self.position is None):
            raise ValueError("exactly one of 'index' (delimited) or 'position' (fixed width) is required")
        if self.position is not None and not 1 <= self.position[0] <= self.position[1]:
            raise ValueError(f"position {list(self.position)} must be 1-based with start <= end")
        if self.implied_decimals and self.type is not FieldType.decimal:
            raise ValueError("implied_decimals is only meaningful for type 'decimal'")
        if self.pii is not Pii.none and self.type is not FieldType.string:
            raise ValueError(f"{self.name}: pii: {self.pii.value} needs a field of type 'string'")
        return self

    def matches(self, value: str) -> bool:
        """The whole of ``value`` matches ``pattern`` (ASCII classes; no pattern: True). For single values
        (header, trailer); columns go through ``etl.core.checks.matches``, which gives the same answers."""
        return self.pattern is None or field_regex(self.pattern).fullmatch(value) is not None

    @property
    def may_hold_card_run(self) -> bool:
        """A text field long enough for a card number that is not the card field: checked for card-number
        runs (R007 for ``pii: none``, masked for ``pii: free_text``). Typed fields are values, not text."""
        longest = self.width or self.max_length
        if self.allowed is not None:  # any other value breaks R003 first
            longest = max((len(value) for value in self.allowed), default=0)
        fits = longest is None or longest >= CARD_RUN_MIN_CHARS
        return self.type is FieldType.string and self.pii is not Pii.card_number and fits

    @property
    def width(self) -> int | None:
        """Fixed-width span in characters, or None for delimited fields."""
        return None if self.position is None else self.position[1] - self.position[0] + 1

    @property
    def digits(self) -> int:
        """Largest number of digits the raw value can carry (for decimal precision)."""
        if self.width is not None:
            return self.width
        return self.max_length or 18


class RecordTypes(_Model):
    header: str = "H"
    detail: str = "D"
    trailer: str = "T"


class ActionSpec(_Model):
    field: str
    upsert: tuple[str, ...]
    delete: tuple[str, ...]


class Bucket(_Model):
    label: str
    max: int | None = None  # inclusive upper bound; None for the open last bucket


class NegateIf(_Model):
    """``source`` negated when ``when_field`` equals ``equals`` (signed amounts from a D/C flag)."""

    name: str
    kind: Literal["negate_if"]
    source: str
    when_field: str
    equals: str


class NotEqual(_Model):
    """Boolean: ``source`` differs from ``value``."""

    name: str
    kind: Literal["not_equal"]
    source: str
    value: str


class Ratio(_Model):
    """``numerator / denominator`` rounded half away from zero to ``scale``; null when the denominator is 0."""

    name: str
    kind: Literal["ratio"]
    numerator: str
    denominator: str
    scale: int = 4


class BucketDerivation(_Model):
    """Label of the first bucket whose ``max`` is >= ``source``."""

    name: str
    kind: Literal["bucket"]
    source: str
    buckets: tuple[Bucket, ...]

    @field_validator("buckets")
    @classmethod
    def _ordered(cls, buckets: tuple[Bucket, ...]) -> tuple[Bucket, ...]:
        bounds = [b.max for b in buckets]
        if not bounds or bounds[-1] is not None or None in bounds[:-1] or bounds[:-1] != sorted(bounds[:-1]):
            raise ValueError("buckets need ascending 'max' bounds and one open last bucket")
        return buckets


Derivation = Annotated[NegateIf | NotEqual | Ratio | BucketDerivation, Field(discriminator="kind")]


class TrailerCheck(_Model):
    trailer_field: str
    sum_of: str | None = None
    sign_field: str | None = None
    implied_decimals: int = 0


class Checks(_Model):
    record_count: TrailerCheck
    control_total: TrailerCheck


class TargetTable(_Model):
    schema_: str = Field(alias="schema")
    name: str


class Contract(_Model):
    """A whole feed: layout, rules, derivations, key and destination."""

    feed: str
    description: str = ""
    file_pattern: str
    format: Literal["delimited", "fixed_width"]
    delimiter: str | None = None
    record_length: int | None = None
    encoding: Literal["utf-8", "ascii"] = "utf-8"
    record_types: RecordTypes = RecordTypes()
    header: tuple[FieldSpec, ...]
    trailer: tuple[FieldSpec, ...]
    fields: tuple[FieldSpec, ...]
    primary_key: tuple[str, ...]
    action: ActionSpec | None = None
    derived: tuple[Derivation, ...] = ()
    drop: tuple[str, ...] = ()
    partition_column: str = "business_date"
    target_table: TargetTable
    checks: Checks
    reject_threshold: float = Field(default=0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _consistent(self) -> Contract:
        if self.format == "delimited" and (not self.delimiter or len(self.delimiter) != 1):
            raise ValueError("delimited feeds need a one-character 'delimiter'")
        if self.format == "fixed_width" and not self.record_length:
            raise ValueError("fixed_width feeds need 'record_length'")
        for part in ("header", "trailer", "fields"):
            self._check_layout(part, getattr(self, part))
        names = {f.name for f in self.fields}
        known = names | set(LINEAGE_COLUMNS)
        for key in self.primary_key:
            if key not in known:
                raise ValueError(f"primary_key: unknown field {key!r}")
        if self.action and self.action.field not in names:
            raise ValueError(f"action.field: unknown field {self.action.field!r}")
        for spec in self.fields:
            if spec.sign_field and spec.sign_field not in names:
                raise ValueError(f"fields.{spec.name}.sign_field: unknown field {spec.sign_field!r}")
        for name in self.drop:
            if name not in names:
                raise ValueError(f"drop: unknown field {name!r}")
        for d in self.derived:
            for ref in _references(d):
                if ref not in names:
                    raise ValueError(f"derived.{d.name}: unknown field {ref!r}")
        trailer = {f.name: f for f in self.trailer}
        for check_name, check in (
            ("record_count", self.checks.record_count),
            ("control_total", self.checks.control_total),
        ):
            if check.trailer_field not in trailer:
                raise ValueError(f"checks.{check_name}.trailer_field: unknown field {check.trailer_field!r}")
            _check_trailer_number(f"checks.{check_name}", trailer[check.trailer_field], check)
            if check.sum_of and check.sum_of not in names:
                raise ValueError(f"checks.{check_name}.sum_of: unknown field {check.sum_of!r}")
            if check.sign_field and check.sign_field not in trailer:
                raise ValueError(f"checks.{check_name}.sign_field: unknown trailer field {check.sign_field!r}")
        return self

    def _check_layout(self, part: str, specs: tuple[FieldSpec, ...]) -> None:
        seen: set[str] = set()
        for spec in specs:
            if spec.name in seen:
                raise ValueError(f"{part}.{spec.name}: duplicate field name")
            seen.add(spec.name)
            if self.format == "delimited" and spec.index is None:
                raise ValueError(f"{part}.{spec.name}: delimited feeds locate fields by 'index'")
            if self.format == "fixed_width":
                if spec.position is None:
                    raise ValueError(f"{part}.{spec.name}: fixed_width feeds locate fields by 'position'")
                if self.record_length and spec.position[1] > self.record_length:
                    raise ValueError(f"{part}.{spec.name}: position ends past record_length")
        if self.format == "delimited":
            indexes = sorted(s.index for s in specs if s.index is not None)
            if indexes != list(range(len(specs))):
                raise ValueError(f"{part}: field indexes must be 0..{len(specs) - 1} without gaps")

    # --- derived views every step uses ---------------------------------------------------------------

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(f"{self.feed}: no field {name!r}")

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @field_validator("file_pattern")
    @classmethod
    def _file_pattern_compiles(cls, value: str) -> str:
        name_regex(value)
        return value

    def match_file(self, file_name: str) -> re.Match[str] | None:
        """The match of the WHOLE name against ``file_pattern`` (ASCII classes, see ``name_regex``)."""
        return name_regex(self.file_pattern).fullmatch(file_name)

    def file_business_date(self, file_name: str) -> dt.date | None:
        """The business date the file name carries, or None when the name is not this feed's."""
        match = self.match_file(file_name)
        if not match:
            return None
        try:
            return dt.datetime.strptime(match.group("date"), "%Y%m%d").date()
        except ValueError:
            return None


MAX_TRAILER_DIGITS = 38  # Decimal128's precision: a trailer number longer than this is no count or total


def _check_trailer_number(where: str, spec: FieldSpec, check: TrailerCheck) -> None:
    """A trailer count or total is only ever compared once its field passed its format (T003), so the format
    must make it a plain number of bounded width: typed integer/decimal, at most ``MAX_TRAILER_DIGITS`` wide."""
    if spec.type not in (FieldType.integer, FieldType.decimal):
        raise ValueError(f"{where}: trailer field {spec.name!r} must have type integer or decimal")
    width = spec.width or spec.max_length
    if width is None or width > MAX_TRAILER_DIGITS:
        raise ValueError(f"{where}: trailer field {spec.name!r} needs a width of at most {MAX_TRAILER_DIGITS}")
    if spec.implied_decimals != check.implied_decimals:
        raise ValueError(f"{where}: trailer field {spec.name!r} implied_decimals differs from the check's")


def _references(d: NegateIf | NotEqual | Ratio | BucketDerivation) -> list[str]:
    if isinstance(d, NegateIf):
        return [d.source, d.when_field]
    if isinstance(d, Ratio):
        return [d.numerator, d.denominator]
    return [d.source]


def parse_contract(text: str, source: str) -> Contract:
    """Parse and validate contract YAML; ``source`` names the file in every error."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContractError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ContractError(f"{source}: a contract is a YAML mapping")
    try:
        return Contract.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<contract>'}: {err['msg']}" for err in exc.errors()
        )
        raise ContractError(f"{source}: {problems}") from exc


def load_contract_file(path: str | Path) -> Contract:
    path = Path(path)
    return parse_contract(path.read_text(encoding="utf-8"), str(path))


@cache
def load_contract(feed: str) -> Contract:
    """The packaged contract of ``feed``."""
    resource = resources.files(FEEDS_PACKAGE) / f"{feed}.yml"
    if not resource.is_file():
        raise ContractError(f"unknown feed {feed!r}; known feeds: {', '.join(feed_names())}")
    contract = parse_contract(resource.read_text(encoding="utf-8"), f"etl/feeds/{feed}.yml")
    if contract.feed != feed:
        raise ContractError(f"etl/feeds/{feed}.yml: feed: must be {feed!r}, found {contract.feed!r}")
    return contract


def feed_names() -> list[str]:
    return sorted(p.name[:-4] for p in resources.files(FEEDS_PACKAGE).iterdir() if p.name.endswith(".yml"))


def all_contracts() -> list[Contract]:
    return [load_contract(name) for name in feed_names()]


def contract_for_file(file_name: str) -> Contract | None:
    """The contract whose file-name pattern matches ``file_name`` (a bare name, not a path)."""
    name = Path(file_name).name
    for contract in all_contracts():
        if contract.match_file(name):
            return contract
    return None
