"""Streaming ``.dat`` reader: bytes in, header / Arrow detail batches / trailer out.

The file is read once in blocks of a few MiB (memory stays flat whatever the file size). Each block is cut at
its last newline, checked for NUL bytes and for the contract's encoding, split into lines with numpy, and the
detail records are sliced into one text column per contract field with Arrow compute — no Python per row.
Structural problems (S001–S005, F003) are collected with exact 1-based line numbers for the validator.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from etl.contract import Contract, FieldSpec
from etl.schema import raw_schema

BOM = b"\xef\xbb\xbf"
DEFAULT_BLOCK_SIZE = 3 << 20  # bigger blocks are barely faster but retain more memory (benchmarks)
MAX_RECORD_BYTES = 1 << 20  # a "line" longer than this is not a record of any feed


@dataclass(frozen=True)
class Problem:
    """A structural finding: rule id, 1-based line number (0 for the whole file) and a PII-free message."""

    rule: str
    line: int
    message: str


class FatalParseError(Exception):
    """Reading cannot go on (undecodable bytes, NUL, a runaway line); the problem is already recorded."""


@dataclass
class _Pending:
    """A trailer candidate: only the last non-blank record of the file is the trailer."""

    line: int
    text: str


@dataclass
class DatReader:
    """Iterate ``batches()`` once; ``header``, ``trailer`` and checksums are complete after that."""

    source: BinaryIO
    contract: Contract
    block_size: int = DEFAULT_BLOCK_SIZE
    header: dict[str, str] | None = None
    header_line: int | None = None
    trailer: dict[str, str] | None = None
    trailer_line: int | None = None
    problems: list[Problem] = field(default_factory=list)
    detail_records: int = 0  # every record typed as detail, well-formed or not
    lines: int = 0
    size: int = 0
    _hash: hashlib._Hash = field(default_factory=hashlib.sha256)
    _pending_trailer: _Pending | None = None
    _last_nonblank: int = 0
    _blank_lines: list[int] = field(default_factory=list)
    _consumed: bool = False

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    @property
    def schema(self) -> pa.Schema:
        return raw_schema(self.contract)

    # --- block loop ---------------------------------------------------------------------------------

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Detail records as text batches in ``raw_schema(contract)``; structural problems are recorded."""
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
            cut = data.rfind(b"\n")
            if cut < 0:
                if len(data) > MAX_RECORD_BYTES:
                    self._fatal("S005", self.lines + 1, f"record longer than {MAX_RECORD_BYTES} bytes")
                carry = data
                continue
            carry = data[cut + 1 :]
            yield data[: cut + 1], False

    def _drain(self) -> None:
        """Hash the rest of the file after a fatal problem so ``sha256`` and ``size`` stay whole-file."""
        while chunk := self.source.read(self.block_size):
            self._hash.update(chunk)
            self.size += len(chunk)

    def _fatal(self, rule: str, line: int, message: str) -> None:
        self.problems.append(Problem(rule, line, message))
        raise FatalParseError(message)

    # --- one block ----------------------------------------------------------------------------------

    def _check_bytes(self, block: bytes) -> None:
        nul = block.find(b"\x00")
        if nul >= 0:
            self._fatal("F003", self.lines + block.count(b"\n", 0, nul) + 1, "NUL byte in file")
        if self.contract.encoding == "ascii":
            if not block.isascii():
                bad = next(i for i, b in enumerate(block) if b > 127)
                self._fatal("F003", self.lines + block.count(b"\n", 0, bad) + 1, "byte is not ASCII")
        elif not block.isascii():
            try:
                block.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = self.lines + block.count(b"\n", 0, exc.start) + 1
                self._fatal("F003", line, "bytes are not valid UTF-8")

    def _split_lines(self, block: bytes, final: bool) -> tuple[pa.StringArray, np.ndarray]:
        """Lines without their terminators, and each line's start offset in the block (plus the block end)."""
        buf = np.frombuffer(block, dtype=np.uint8)
        ends = np.flatnonzero(buf == 10)
        if final and (not len(ends) or ends[-1] != len(buf) - 1):
            ends = np.append(ends, len(buf))  # no final newline
        offsets = np.empty(len(ends) + 1, dtype=np.int32)
        offsets[0] = 0
        offsets[1:] = ends + 1
        offsets[-1] = min(offsets[-1], len(buf))
        raw = pa.StringArray.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(block))
        return pc.utf8_rtrim(raw, characters="\r\n"), offsets

    def _parse_block(self, block: bytes, final: bool) -> pa.RecordBatch | None:
        self._check_bytes(block)
        lines, offsets = self._split_lines(block, final)
        base = self.lines
        self.lines += len(lines)
        if self.contract.format == "delimited":
            return self._parse_delimited(block, lines, offsets, base)
        return self._parse_fixed(lines, base)

    def _parse_delimited(
        self, block: bytes, lines: pa.StringArray, offsets: np.ndarray, base: int
    ) -> pa.RecordBatch | None:
        """Detail lines go through pyarrow's CSV reader (fast, C++); a block it refuses is split exactly instead."""
        prefix = (self.contract.record_types.detail + self.contract.delimiter).encode()
        buf = np.frombuffer(block, dtype=np.uint8)
        starts = offsets[:-1]
        is_detail = np.ones(len(starts), dtype=bool)
        for k, byte in enumerate(prefix):
            at = np.minimum(starts + k, len(buf) - 1) if len(buf) else starts
            is_detail &= (starts + k < offsets[1:]) & (buf[at] == byte if len(buf) else False)
        rows = np.flatnonzero(is_detail)
        self._classify(lines, lambda row: lines[row].as_py().split(self.contract.delimiter)[0], is_detail, base)
        if not len(rows):
            return None
        columns = self._csv_columns(block, buf, offsets, rows, is_detail)
        if columns is None:
            return self._split_exact(lines, rows, base)
        return self._batch(columns, rows, base)

    def _csv_columns(
        self, block: bytes, buf: np.ndarray, offsets: np.ndarray, rows: np.ndarray, is_detail: np.ndarray
    ) -> list[pa.Array] | None:
        if rows[-1] - rows[0] + 1 == len(rows):  # one contiguous run: no copy
            body = block[offsets[rows[0]] : offsets[rows[-1] + 1]]
        else:
            body = buf[np.repeat(is_detail, np.diff(offsets))].tobytes()
        if not body.endswith(b"\n"):
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
            return None  # wrong field counts or a stray CR: the exact path finds and reports them
        if table.num_rows != len(rows):
            return None
        return [table.column(name).combine_chunks() for name in names]

    def _split_exact(self, lines: pa.StringArray, rows: np.ndarray, base: int) -> pa.RecordBatch | None:
        """Slow but exact: split every detail line and report those with the wrong number of fields (S005)."""
        parts = pc.split_pattern(lines.take(pa.array(rows)), self.contract.delimiter)
        counts = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
        ncols = len(self.contract.fields)
        good = counts == ncols
        for row, found in zip(rows[~good].tolist(), counts[~good].tolist(), strict=True):
            self.problems.append(Problem("S005", base + row + 1, f"expected {ncols} fields, found {found}"))
        if not good.any():
            return None
        starts = parts.offsets.to_numpy()[:-1][good]
        values = parts.values
        columns = [values.take(pa.array(starts + spec.index)) for spec in self.contract.fields]
        return self._batch(columns, rows[good], base)

    def _parse_fixed(self, lines: pa.StringArray, base: int) -> pa.RecordBatch | None:
        kind = self.contract.record_types.detail
        rtype = pc.utf8_slice_codeunits(lines, 0, len(kind))
        is_detail = pc.equal(rtype, kind).to_numpy(zero_copy_only=False)
        self._classify(lines, lambda row: rtype[row].as_py(), is_detail, base)
        lengths = pc.utf8_length(lines).to_numpy(zero_copy_only=False)
        good = is_detail & (lengths == self.contract.record_length)
        expected = self.contract.record_length
        for row in np.flatnonzero(is_detail & ~good).tolist():
            self.problems.append(
                Problem("S005", base + row + 1, f"expected {expected} characters, found {lengths[row]}")
            )
        rows = np.flatnonzero(good)
        if not len(rows):
            return None
        details = lines.take(pa.array(rows))
        columns = [_slice(details, spec) for spec in self.contract.fields]
        return self._batch(columns, rows, base)

    def _batch(self, columns: list[pa.Array], rows: np.ndarray, base: int) -> pa.RecordBatch:
        numbers = rows.astype(np.int64) + base + 1
        line_numbers = pa.Array.from_buffers(pa.int64(), len(numbers), [None, pa.py_buffer(numbers)])
        return pa.RecordBatch.from_arrays([*columns, line_numbers], schema=self.schema)

    # --- record types -------------------------------------------------------------------------------

    def _classify(
        self, lines: pa.StringArray, kind_of: Callable[[int], str | None], is_detail: np.ndarray, base: int
    ) -> None:
        """Handle the (rare) non-detail lines one by one: header, trailer, blank or unknown.

        Runs of detail lines between them are accounted for as ranges, so the cost is per odd line, not per row.
        """
        self.detail_records += int(is_detail.sum())
        detail_rows = np.flatnonzero(is_detail)
        kinds = self.contract.record_types
        done = 0  # detail rows already accounted for
        for row in np.flatnonzero(~is_detail).tolist():
            upto = int(np.searchsorted(detail_rows, row))
            if upto > done:
                self._seen(base + int(detail_rows[done]) + 1, base + int(detail_rows[upto - 1]) + 1)
                done = upto
            line_no = base + row + 1
            text = lines[row].as_py()
            if text == "":
                self._blank_lines.append(line_no)
                continue
            kind = kind_of(row)
            if kind == kinds.header:
                first = self._last_nonblank == 0
                self._seen(line_no, line_no, header=True)
                self._on_header(text, line_no, first)
                continue
            self._seen(line_no, line_no)
            if kind == kinds.trailer:
                self._pending_trailer = _Pending(line_no, text)
            else:
                self.problems.append(Problem("S004", line_no, f"unknown record type {_shown(kind)}"))
        if done < len(detail_rows):
            self._seen(base + int(detail_rows[done]) + 1, base + int(detail_rows[-1]) + 1)

    def _seen(self, first: int, last: int, *, header: bool = False) -> None:
        """Non-blank lines ``first..last`` follow everything seen so far."""
        if self._pending_trailer is not None:
            self.problems.append(Problem("S003", self._pending_trailer.line, "trailer before the end of file"))
            self._pending_trailer = None
        for blank in self._blank_lines:
            self.problems.append(Problem("S004", blank, "blank line inside the file"))
        self._blank_lines.clear()
        if self._last_nonblank == 0 and not header:
            self.problems.append(Problem("S001", first, "first record is not a header"))
        self._last_nonblank = last

    def _on_header(self, text: str, line_no: int, first: bool) -> None:
        if not first or self.header_line is not None:
            self.problems.append(Problem("S003", line_no, "header after the first record"))
            return
        self.header_line = line_no
        self.header = self._layout(text, self.contract.header, line_no, "header")

    def _layout(self, text: str, specs: tuple[FieldSpec, ...], line_no: int, what: str) -> dict[str, str] | None:
        if self.contract.format == "delimited":
            parts = text.split(self.contract.delimiter)
            if len(parts) != len(specs):
                self.problems.append(
                    Problem("S005", line_no, f"{what}: expected {len(specs)} fields, found {len(parts)}")
                )
                return None
            return {spec.name: parts[spec.index] for spec in specs}
        if len(text) != self.contract.record_length:
            self.problems.append(
                Problem(
                    "S005", line_no, f"{what}: expected {self.contract.record_length} characters, found {len(text)}"
                )
            )
            return None
        return {spec.name: text[spec.position[0] - 1 : spec.position[1]] for spec in specs}

    def _finish(self) -> None:
        pending = self._pending_trailer
        if pending is not None:
            self.trailer_line = pending.line
            self.trailer = self._layout(pending.text, self.contract.trailer, pending.line, "trailer")
        elif self._last_nonblank:
            self.problems.append(Problem("S002", self._last_nonblank, "last record is not a trailer (truncated file?)"))


def _slice(lines: pa.StringArray, spec: FieldSpec) -> pa.Array:
    start, end = spec.position
    return pc.utf8_slice_codeunits(lines, start - 1, end)


def _shown(kind: str | None) -> str:
    """A record type for a message: short and never more than a few characters of the line."""
    return repr((kind or "")[:3])


def open_dat(source: str | Path | BinaryIO, contract: Contract, *, block_size: int = DEFAULT_BLOCK_SIZE) -> DatReader:
    """A reader over a path or an open binary stream (the caller closes a stream it passed in)."""
    stream = open(source, "rb") if isinstance(source, str | Path) else source  # noqa: SIM115
    return DatReader(stream, contract, block_size)
