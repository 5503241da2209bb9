"""Streaming ``.dat`` reader: bytes in, header / Arrow detail batches / trailer out.

The file is read once in blocks of a few MiB (memory stays flat whatever the file size). Each block is cut at
its last line end, checked for NUL bytes and for the contract's encoding, split into lines with numpy, and every
line is classified (blank, header, detail, trailer, unknown) by comparing its first bytes, all lines at once.
The detail records are sliced into one text column per contract field with Arrow compute. Structural problems
(S001–S005, F003) are tallied per rule — exact counts, the first line numbers — with whole-block array
operations, so a file of millions of junk lines costs what a file of millions of records costs, and its
findings take the same few bytes as a file with one bad line.

A line ends at LF, CRLF or a lone CR: the same three line ends Spark's text reader (the Glue engine) and
pyarrow's CSV reader know, so every engine cuts a file into the same lines and a stray CR can never hide
inside a field that one engine sees and the other does not.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from etl.contract import Contract, FieldSpec
from etl.core.findings import MAX_LINES_SHOWN, Finding, Findings
from etl.core.rules import Rule
from etl.errors import EtlError
from etl.schema import raw_schema

BOM = b"\xef\xbb\xbf"
DEFAULT_BLOCK_SIZE = 3 << 20  # bigger blocks are barely faster but retain more memory (benchmarks)
MAX_RECORD_BYTES = 1 << 20  # a "line" longer than this is not a record of any feed
LF, CR = 10, 13
BLANK_INSIDE = "blank line inside the file"


class Kind(IntEnum):
    """What a line is, by its record type (the first field, or the first characters of a fixed-width line)."""

    BLANK = 0
    DETAIL = 1
    HEADER = 2
    TRAILER = 3
    UNKNOWN = 4


class FatalParseError(EtlError):
    """Reading cannot go on (undecodable bytes, NUL, a runaway line); the problem is already recorded."""


@dataclass(frozen=True)
class _Lines:
    """One block cut into lines: each line's text without its line end, and where it starts in the block."""

    text: pa.StringArray
    starts: np.ndarray  # byte offset of each line in the block
    lengths: np.ndarray  # bytes of each line, line end excluded
    ascii: bool
    head: list[np.ndarray]  # the first bytes of each line, one array per position (see ``_head``)

    def __len__(self) -> int:
        return len(self.starts)


@dataclass
class _Pending:
    """A trailer candidate: only the last non-blank record of the file is the trailer."""

    line: int
    text: str


@dataclass
class DatReader:
    """Iterate ``batches()`` once; ``header``, ``trailer``, ``findings`` and checksums are complete after that."""

    source: BinaryIO
    contract: Contract
    block_size: int = DEFAULT_BLOCK_SIZE
    header: dict[str, str] | None = None
    header_line: int | None = None
    trailer: dict[str, str] | None = None
    trailer_line: int | None = None
    findings: Findings = field(default_factory=Findings)
    fatal: bool = False  # reading stopped early (F003, a runaway line): counts cover the file up to there
    detail_records: int = 0  # every record typed as detail, well-formed or not
    lines: int = 0
    size: int = 0
    _hash: hashlib._Hash = field(default_factory=hashlib.sha256)
    _pending_trailer: _Pending | None = None
    _last_nonblank: int = 0
    _blank_tail: Finding = field(default_factory=Finding)  # blank lines after the last record so far
    _consumed: bool = False

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    @property
    def schema(self) -> pa.Schema:
        return raw_schema(self.contract)

    # --- block loop ---------------------------------------------------------------------------------

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Detail records as text batches in ``raw_schema(contract)``; structural problems are tallied."""
        if self._consumed:
            raise RuntimeError("a DatReader can be iterated once")
        self._consumed = True
        try:
            for block, final in self._blocks():
                batch = self._parse_block(block, final)
                if batch is not None and batch.num_rows:
                    yield batch
        except FatalParseError:
            self._drain()
            return
        self._finish()

    def _blocks(self) -> Iterator[tuple[bytes, bool]]:
        carry = b""
        first = True
        while True:
            chunk = self.source.read(self.block_size)
            if chunk:
                self._hash.update(chunk)
                self.size += len(chunk)
            if first:
                first = False
                if chunk.startswith(BOM):
                    chunk = chunk[len(BOM) :]
            data = carry + chunk
            if not chunk:
                if data:
                    yield data, True
                return
            # the last line end whose kind is known: a CR as the very last byte may be the first half of a CRLF
            cut = max(data.rfind(b"\n"), data.rfind(b"\r", 0, len(data) - 1))
            if cut < 0:
                if len(data) > MAX_RECORD_BYTES:
                    self._fatal(Rule.S005, self.lines + 1, f"record longer than {MAX_RECORD_BYTES} bytes")
                carry = data
                continue
            carry = data[cut + 1 :]
            yield data[: cut + 1], False

    def _drain(self) -> None:
        """Hash the rest of the file after a fatal problem so ``sha256`` and ``size`` stay whole-file."""
        while chunk := self.source.read(self.block_size):
            self._hash.update(chunk)
            self.size += len(chunk)

    def _fatal(self, rule: Rule, line: int, message: str) -> None:
        self.findings.add(rule, [line], message)
        self.fatal = True
        raise FatalParseError(message)

    # --- one block ----------------------------------------------------------------------------------

    def _check_bytes(self, block: bytes, buf: np.ndarray) -> bool:
        """F003 (fatal) for a NUL byte or bytes outside the contract's encoding; whether the block is ASCII."""
        nul = block.find(b"\x00")
        if nul >= 0:
            self._fatal(Rule.F003, self.lines + block.count(b"\n", 0, nul) + 1, "NUL byte in file")
        if block.isascii():
            return True
        if self.contract.encoding == "ascii":
            bad = int(np.argmax(buf > 127))
            self._fatal(Rule.F003, self.lines + block.count(b"\n", 0, bad) + 1, "byte is not ASCII")
        try:
            block.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._fatal(Rule.F003, self.lines + block.count(b"\n", 0, exc.start) + 1, "bytes are not valid UTF-8")
        return False

    def _split_lines(self, block: bytes, buf: np.ndarray, final: bool, ascii_only: bool) -> _Lines:
        """Cut at LF, CRLF and lone CR, vectorised; a lone CR is looked for only when the block has one."""
        has_cr = b"\r" in block
        if not has_cr or block.count(b"\r") == block.count(b"\r\n"):  # LF / CRLF only: C-speed tests
            ends = np.flatnonzero(buf == LF)
        else:
            is_lf = buf == LF
            lone_cr = buf == CR
            lone_cr[:-1] &= ~is_lf[1:]
            ends = np.flatnonzero(is_lf | lone_cr)
        if final and (not len(ends) or ends[-1] != len(buf) - 1):
            ends = np.append(ends, len(buf))  # no final line end
        stops = ends.astype(np.int32)  # where each line's text stops: at its line end ...
        del ends
        offsets = np.empty(len(stops) + 1, dtype=np.int32)
        offsets[0] = 0
        np.minimum(stops + 1, len(buf), out=offsets[1:])
        starts = offsets[:-1]
        if has_cr and len(stops):
            crlf = (buf[np.minimum(stops, len(buf) - 1)] == LF) & (stops > starts)
            crlf &= buf[np.maximum(stops - 1, 0)] == CR
            stops -= crlf  # ... or at the CR of a CRLF
        raw = pa.StringArray.from_buffers(len(stops), pa.py_buffer(offsets), pa.py_buffer(block))
        # a line's text never holds a CR or LF (each would have ended it), so this strips exactly the line end
        text = pc.utf8_rtrim(raw, characters="\r\n")
        lengths = stops - starts
        return _Lines(text, starts, lengths, ascii_only, _head(buf, starts, lengths, self._head_width))

    def _parse_block(self, block: bytes, final: bool) -> pa.RecordBatch | None:
        buf = np.frombuffer(block, dtype=np.uint8)
        ascii_only = self._check_bytes(block, buf)
        lines = self._split_lines(block, buf, final, ascii_only)
        base = self.lines
        self.lines += len(lines)
        kinds = self._kinds(lines)
        self._structure(kinds, lines, base)
        is_detail = kinds == Kind.DETAIL
        self.detail_records += int(is_detail.sum())
        if not is_detail.any():
            return None
        if self.contract.format == "delimited":
            return self._parse_delimited(block, buf, lines, is_detail, base)
        return self._parse_fixed(lines, is_detail, base)

    # --- record types -------------------------------------------------------------------------------

    @property
    def _head_width(self) -> int:
        """How many leading bytes decide a line's record type (delimited: the type and the delimiter after it)."""
        longest = max(len(t.encode()) for t in self.contract.record_types.model_dump().values())
        return longest + (self.contract.format == "delimited")

    def _kinds(self, lines: _Lines) -> np.ndarray:
        """Every line's ``Kind`` from its first bytes; detail wins if a contract's types overlap."""
        kinds = np.full(len(lines), Kind.UNKNOWN, dtype=np.uint8)
        kinds[lines.lengths == 0] = Kind.BLANK
        types = self.contract.record_types
        for kind, text in ((Kind.TRAILER, types.trailer), (Kind.HEADER, types.header), (Kind.DETAIL, types.detail)):
            kinds[self._typed(lines.head, text.encode())] = kind
        return kinds

    def _typed(self, head: list[np.ndarray], record_type: bytes) -> np.ndarray:
        """Lines whose record type is ``record_type``: delimited, the whole first field; fixed width, the first
        characters (a byte prefix of UTF-8 text is a character prefix)."""
        ok = head[0] == record_type[0]
        for k in range(1, len(record_type)):
            ok &= head[k] == record_type[k]
        if self.contract.format == "delimited":  # then the delimiter, or the end of the line
            after = head[len(record_type)]
            ok &= (after == ord(self.contract.delimiter)) | (after == 0)
        return ok

    def _record_type_of(self, text: str) -> str:
        if self.contract.format == "delimited":
            return text.split(self.contract.delimiter, 1)[0]
        return text[: len(self.contract.record_types.detail)]

    def _structure(self, kinds: np.ndarray, lines: _Lines, base: int) -> None:
        """S001–S004 for one block, with whole-array operations; only the state between blocks is scalar:
        the last record seen, a trailer candidate, and a tally of the blank lines after the last record."""
        blank = np.flatnonzero(kinds == Kind.BLANK)
        nonblank = np.flatnonzero(kinds != Kind.BLANK)
        if not len(nonblank):
            self._blank_tail.add(blank[:MAX_LINES_SHOWN] + base + 1, count=len(blank))
            return
        first, last = int(nonblank[0]), int(nonblank[-1])
        # what waited for a later record: a trailer that was not the last record, blank lines that were inside
        if self._pending_trailer is not None:
            self.findings.add(Rule.S003, [self._pending_trailer.line], "trailer before the end of file")
            self._pending_trailer = None
        self.findings.merge(Rule.S004, self._blank_tail, BLANK_INSIDE)
        self._blank_tail = Finding()
        inner = blank[: np.searchsorted(blank, last)]
        self.findings.add(Rule.S004, inner[:MAX_LINES_SHOWN] + base + 1, BLANK_INSIDE, count=len(inner))
        tail = blank[len(inner) :]
        self._blank_tail.add(tail[:MAX_LINES_SHOWN] + base + 1, count=len(tail))

        headers = np.flatnonzero(kinds == Kind.HEADER)
        if self._last_nonblank == 0:  # this block holds the file's first record
            if kinds[first] == Kind.HEADER:
                self.header_line = base + first + 1
                self.header = self._layout(lines.text[first].as_py(), self.contract.header, self.header_line, "header")
                headers = headers[1:]
            else:
                self.findings.add(Rule.S001, [base + first + 1], "first record is not a header")
        self.findings.add(
            Rule.S003, headers[:MAX_LINES_SHOWN] + base + 1, "header after the first record", count=len(headers)
        )
        trailers = np.flatnonzero(kinds == Kind.TRAILER)
        if kinds[last] == Kind.TRAILER:
            self._pending_trailer = _Pending(base + last + 1, lines.text[last].as_py())
            trailers = trailers[:-1]
        self.findings.add(
            Rule.S003, trailers[:MAX_LINES_SHOWN] + base + 1, "trailer before the end of file", count=len(trailers)
        )
        unknown = np.flatnonzero(kinds == Kind.UNKNOWN)
        if len(unknown):
            kind = self._record_type_of(lines.text[int(unknown[0])].as_py())
            self.findings.add(
                Rule.S004,
                unknown[:MAX_LINES_SHOWN] + base + 1,
                f"unknown record type {_shown(kind)}",
                count=len(unknown),
            )
        self._last_nonblank = base + last + 1

    # --- detail records -----------------------------------------------------------------------------

    def _parse_delimited(
        self, block: bytes, buf: np.ndarray, lines: _Lines, is_detail: np.ndarray, base: int
    ) -> pa.RecordBatch | None:
        """Detail lines go through pyarrow's CSV reader (fast, C++); a block it refuses is split exactly instead."""
        rows = np.flatnonzero(is_detail)
        columns = self._csv_columns(block, buf, lines, rows, is_detail)
        if columns is None:
            return self._split_exact(lines, rows, base)
        return self._batch(columns, rows, base)

    def _csv_columns(
        self, block: bytes, buf: np.ndarray, lines: _Lines, rows: np.ndarray, is_detail: np.ndarray
    ) -> list[pa.Array] | None:
        ends = np.append(lines.starts[1:], len(buf))  # each line with its line end: the bytes the reader sees
        if rows[-1] - rows[0] + 1 == len(rows):  # one contiguous run: no copy
            body = block[int(lines.starts[rows[0]]) : int(ends[rows[-1]])]
        else:
            body = buf[np.repeat(is_detail, ends - lines.starts)].tobytes()
        if not body.endswith((b"\n", b"\r")):
            body += b"\n"
        names = [spec.name for spec in self.contract.fields]
        try:
            table = pacsv.read_csv(
                pa.BufferReader(body),
                read_options=pacsv.ReadOptions(column_names=names, use_threads=False, block_size=len(body) + 1),
                parse_options=pacsv.ParseOptions(
                    delimiter=self.contract.delimiter,
                    quote_char=False,
                    double_quote=False,
                    escape_char=False,
                    newlines_in_values=False,
                    ignore_empty_lines=False,
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.string()),
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                    check_utf8=False,
                ),
            )
        except pa.ArrowInvalid:
            return None  # wrong field counts: the exact path finds and tallies them
        if table.num_rows != len(rows):  # pragma: no cover - both cut at the same line ends
            return None
        return [table.column(name).combine_chunks() for name in names]

    def _split_exact(self, lines: _Lines, rows: np.ndarray, base: int) -> pa.RecordBatch | None:
        """Count every detail line's fields (vectorised), tally those with the wrong number (S005), and split
        only the good ones."""
        details = lines.text.take(pa.array(rows))
        ncols = len(self.contract.fields)
        counts = pc.count_substring(details, self.contract.delimiter).to_numpy(zero_copy_only=False) + 1
        good = counts == ncols
        bad = np.flatnonzero(~good)
        if len(bad):
            self.findings.add(
                Rule.S005,
                rows[bad[:MAX_LINES_SHOWN]] + base + 1,
                f"expected {ncols} fields, found {int(counts[bad[0]])}",
                count=len(bad),
            )
        if not len(bad) < len(rows):
            return None
        if len(bad):
            details = details.filter(pa.array(good))
        parts = pc.split_pattern(details, self.contract.delimiter)
        starts = parts.offsets.to_numpy()[:-1]
        values = parts.values
        columns = [values.take(pa.array(starts + spec.index)) for spec in self.contract.fields]
        return self._batch(columns, rows[good], base)

    def _parse_fixed(self, lines: _Lines, is_detail: np.ndarray, base: int) -> pa.RecordBatch | None:
        lengths = lines.lengths if lines.ascii else pc.utf8_length(lines.text).to_numpy(zero_copy_only=False)
        expected = self.contract.record_length
        good = is_detail & (lengths == expected)
        bad = np.flatnonzero(is_detail & ~good)
        if len(bad):
            self.findings.add(
                Rule.S005,
                bad[:MAX_LINES_SHOWN] + base + 1,
                f"expected {expected} characters, found {int(lengths[bad[0]])}",
                count=len(bad),
            )
        rows = np.flatnonzero(good)
        if not len(rows):
            return None
        details = lines.text.take(pa.array(rows))
        columns = [_slice(details, spec) for spec in self.contract.fields]
        return self._batch(columns, rows, base)

    def _batch(self, columns: list[pa.Array], rows: np.ndarray, base: int) -> pa.RecordBatch:
        numbers = rows.astype(np.int64) + base + 1
        line_numbers = pa.Array.from_buffers(pa.int64(), len(numbers), [None, pa.py_buffer(numbers)])
        return pa.RecordBatch.from_arrays([*columns, line_numbers], schema=self.schema)

    # --- header and trailer -------------------------------------------------------------------------

    def _layout(self, text: str, specs: tuple[FieldSpec, ...], line_no: int, what: str) -> dict[str, str] | None:
        if self.contract.format == "delimited":
            parts = text.split(self.contract.delimiter)
            if len(parts) != len(specs):
                self.findings.add(Rule.S005, [line_no], f"{what}: expected {len(specs)} fields, found {len(parts)}")
                return None
            return {spec.name: parts[spec.index] for spec in specs}
        if len(text) != self.contract.record_length:
            self.findings.add(
                Rule.S005, [line_no], f"{what}: expected {self.contract.record_length} characters, found {len(text)}"
            )
            return None
        return {spec.name: text[spec.position[0] - 1 : spec.position[1]] for spec in specs}

    def _finish(self) -> None:
        pending = self._pending_trailer
        if pending is not None:
            self.trailer_line = pending.line
            self.trailer = self._layout(pending.text, self.contract.trailer, pending.line, "trailer")
        elif self._last_nonblank:
            self.findings.add(Rule.S002, [self._last_nonblank], "last record is not a trailer (truncated file?)")
        # blank lines after the last record are the file's tail, not an error


def _head(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray, width: int) -> list[np.ndarray]:
    """The first ``width`` bytes of every line, one array per position; 0 past a line's end (a NUL byte cannot
    be in the text: F003 stops reading first)."""
    head = []
    last = max(len(buf) - 1, 0)
    for k in range(width):
        column = buf[np.minimum(starts + k, last)] if len(buf) else np.zeros(len(starts), dtype=np.uint8)
        column[lengths <= k] = 0
        head.append(column)
    return head


def _slice(lines: pa.StringArray, spec: FieldSpec) -> pa.Array:
    start, end = spec.position
    return pc.utf8_slice_codeunits(lines, start - 1, end)


def _shown(kind: str) -> str:
    """A record type for a message: shown only when it looks like one (one to three letters), so a report never
    echoes the text of a line, nor a control character or markup a terminal would act on."""
    if re.fullmatch(r"[A-Za-z]{1,3}", kind):
        return repr(kind)
    return "(empty)" if not kind else "(not a short letter code)"


def open_dat(source: str | Path | BinaryIO, contract: Contract, *, block_size: int = DEFAULT_BLOCK_SIZE) -> DatReader:
    """A reader over a path or an open binary stream (the caller closes a stream it passed in)."""
    stream = open(source, "rb") if isinstance(source, str | Path) else source  # noqa: SIM115
    return DatReader(stream, contract, block_size)
