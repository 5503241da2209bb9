"""Deterministic dummy ``.dat`` files for every feed, valid or broken on purpose (``etl generate``).

Same arguments, same bytes: every random draw comes from a generator keyed by (seed, date, sequence,
chunk), never from global state. Files are written chunk by chunk (65,536 rows), so size is bounded by
disk, not memory. A transactions file can re-send rows of earlier files of the same seed as updates and
deletes (``updates_of``), which is what load tests of a second day need.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from etl.contract import Contract, load_contract
from etl.core.rules import Rule
from etl.generate import _layout as lay
from etl.generate import _vec as v
from etl.generate import account_summary, transactions
from etl.generate.corrupt import CORRUPTIBLE_RULES, corruptible_rules, edits_lines
from etl.generate.corrupt import check_rule as _check_rule
from etl.generate.corrupt import dates as _dates
from etl.generate.corrupt import edit_header as _edit_header
from etl.generate.corrupt import edit_lines as _edit_lines
from etl.generate.corrupt import edit_trailer as _edit_trailer
from etl.generate.corrupt import file_name as _file_name
from etl.generate.transactions import BaseFile

__all__ = ["CORRUPTIBLE_RULES", "BaseFile", "corruptible_rules", "derive_update_file", "generate"]

SOURCE_SYSTEM = "CARDHUB"
Chunk = tuple[bytes, int, int]  # detail bytes (LF-terminated lines), record count, control total


def generate(
    feed: str,
    business_date: dt.date,
    *,
    rows: int = 1000,
    seed: int = 0,
    corrupt: str | None = None,
    out_dir: Path | str,
    sequence: int | None = None,
    updates_of: BaseFile | Sequence[BaseFile] = (),
    update_fraction: float = 0.25,
    delete_fraction: float = 0.01,
) -> Path:
    """Write ``<feed>_YYYYMMDD[_NN].dat`` into ``out_dir`` and return its path.

    ``rows`` new records (all action ``A`` when ``updates_of`` is given, else mostly ``A`` with a few ``U``
    and ``D``); ``updates_of`` (transactions only) also re-sends earlier files' ids: ``update_fraction`` of
    each as ``U`` with settled status / adjusted amount, ``delete_fraction`` as ``D``. ``corrupt`` names the
    one rule the file must break (see ``etl.generate.corrupt``). ValueError for impossible arguments.
    """
    contract = load_contract(feed)
    bases = (updates_of,) if isinstance(updates_of, BaseFile) else tuple(updates_of)
    _check_arguments(contract, rows, seed, sequence, corrupt, bases, update_fraction, delete_fraction)
    if corrupt == Rule.F001:
        rows, bases = 0, ()
    name_date, header_date = _dates(corrupt, business_date)
    header = _header(contract, header_date, sequence, seed)
    chunks = _chunks(contract, business_date, rows, seed, sequence, bases, update_fraction, delete_fraction)
    if edits_lines(contract, corrupt):
        chunks = _corrupt_first(contract, chunks, corrupt, header, seed, business_date)
    path = Path(out_dir) / _file_name(corrupt, feed, name_date, sequence)
    _write(contract, path, _edit_header(corrupt, contract, header), chunks, corrupt)
    return path


def derive_update_file(
    base_date: dt.date,
    business_date: dt.date,
    *,
    base_rows: int,
    rows: int = 0,
    seed: int = 0,
    out_dir: Path | str,
    update_fraction: float = 0.25,
    delete_fraction: float = 0.01,
) -> Path:
    """A "next day" transactions file: updates and deletes of the ``base_date`` file plus ``rows`` new adds."""
    return generate(
        "transactions",
        business_date,
        rows=rows,
        seed=seed,
        out_dir=out_dir,
        updates_of=BaseFile(base_date, base_rows),
        update_fraction=update_fraction,
        delete_fraction=delete_fraction,
    )


def _check_arguments(
    contract: Contract,
    rows: int,
    seed: int,
    sequence: int | None,
    corrupt: str | None,
    bases: tuple[BaseFile, ...],
    update_fraction: float,
    delete_fraction: float,
) -> None:
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if sequence is not None and not 1 <= sequence <= 99:
        raise ValueError(f"sequence must be 1..99, got {sequence}")
    if bases and contract.feed != "transactions":
        raise ValueError(f"updates_of applies to transactions only, not {contract.feed!r}")
    if not (0 <= update_fraction <= 1 and 0 <= delete_fraction <= 1):
        raise ValueError("update_fraction and delete_fraction must be within 0..1")
    if corrupt is not None:
        _check_rule(contract, corrupt, rows + sum(b.rows for b in bases))


def _header(contract: Contract, day: dt.date, sequence: int | None, seed: int) -> bytes:
    """Header record; created early next morning, at a seed-dependent but fixed minute."""
    created = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(2, 0)) + dt.timedelta(
        seconds=v.mix_int(seed, 0xC4EA7E) % 3600
    )
    values = {
        "record_type": contract.record_types.header,
        "feed_name": contract.feed.upper(),
        "business_date": f"{day:%Y%m%d}",
        "created_at": f"{created:%Y%m%d%H%M%S}",
        "sequence": f"{sequence or 1:02d}",
        "source_system": SOURCE_SYSTEM,
    }
    return lay.build_record(contract, contract.header, values)


def _chunks(
    contract: Contract,
    day: dt.date,
    rows: int,
    seed: int,
    sequence: int | None,
    bases: tuple[BaseFile, ...],
    update_fraction: float,
    delete_fraction: float,
) -> Iterator[Chunk]:
    if contract.feed == "account_summary":
        for accounts in account_summary.chunks(seed, day, sequence, rows):
            body = account_summary.format_records(seed, accounts).tobytes()
            yield body, len(accounts.index), int(accounts.balance.sum())
        return
    if contract.feed != "transactions":
        raise ValueError(f"no generator for feed {contract.feed!r}")
    parts: list[Iterable[transactions.Rows]] = [
        transactions.derived_chunks(seed, base, day, update_fraction, delete_fraction) for base in bases
    ]
    parts.append(
        _all_adds(transactions.fresh_chunks(seed, day, sequence, rows))
        if bases
        else transactions.fresh_chunks(seed, day, sequence, rows)
    )
    book = transactions.CardBook.build(seed, max(transactions.card_pool(n) for n in [rows, *(b.rows for b in bases)]))
    for part in parts:
        for chunk in part:
            body = v.string_buffer(transactions.format_lines(book, chunk))
            yield body, len(chunk), int(chunk.amount.sum())


def _all_adds(chunks: Iterator[transactions.Rows]) -> Iterator[transactions.Rows]:
    for chunk in chunks:
        chunk.action = np.zeros(len(chunk), dtype=np.int64)
        yield chunk


def _corrupt_first(
    contract: Contract, chunks: Iterator[Chunk], rule: str, header: bytes, seed: int, day: dt.date
) -> Iterator[Chunk]:
    """Apply a line rule to the first chunk, then recount it so the trailer stays consistent."""
    first = next(chunks, None)
    if first is not None:
        lines = first[0].split(b"\n")[:-1]
        lines = _edit_lines(rule, contract, lines, header, seed=seed, business_date=day)
        count, total = lay.count_and_total(contract, lines)
        yield b"".join(line + b"\n" for line in lines), count, total
    yield from chunks


def _write(contract: Contract, path: Path, header: bytes | None, chunks: Iterable[Chunk], corrupt: str | None) -> None:
    """Stream to a temporary name, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    count = total = 0
    try:
        with open(partial, "wb") as out:
            if header is not None:
                out.write(header + b"\n")
            for body, n, amount in chunks:
                out.write(body)
                count, total = count + n, total + amount
            trailer = _edit_trailer(corrupt, contract, count, total)
            if trailer is not None:
                out.write(trailer + b"\n")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
