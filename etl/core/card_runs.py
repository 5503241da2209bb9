"""Card numbers hiding outside the card field: found in whole text columns at once, masked or reported.

A card number can arrive in any text field (``REFUND 4000056655665556`` as a merchant name, a card number
sent as a transaction id). The contract says per field what happens (``pii`` in ``etl/feeds/*.yml``):
free text (``pii: free_text``) is masked, any other text field (``pii: none``, the default) rejects the
record with R007 (docs/design.md §4, §5). This module only finds and masks; it never prints a value.

A **card-number run** in a text is either

1. a window of 13–19 consecutive ASCII digits that passes the Luhn check, wherever it sits: alone, glued to
   letters (``TX4000056655665556``) or inside a longer digit string; or
2. a *formatted* number: consecutive groups of 1–6 digits joined by spaces or dashes
   (``4000 0566 5566 5556``, ``4000-0566-5566-5556``, ``3782 822463 10005``) whose digits, 13–19 of them,
   pass the Luhn check. The window is made of whole groups, the first not preceded and the last not
   followed by an ASCII letter. That keeps hexadecimal ids such as UUIDs
   (``8-4-4-4-12``, groups glued to hex letters or longer than 6) from ever matching by chance.

In free text (``loose``) any digits joined by spaces or dashes form one run and every 13-19 digit window
of it is checked: ``x4000-0566-5566-5556`` is masked there, while as an id it is not rejected.

Masking a free-text value that holds a run turns EVERY digit of the value into ``*`` except its last four
digits, keeping the length: ``REFUND ************5556``. Coarse on purpose: what remains can never
rebuild the number, and the PySpark engine (``etl.spark.columns``) gives the same text byte for byte.

Everything is numpy over the Arrow buffers of a whole column: no Python loop per row. Rows are scanned in
one pass over their bytes; only the rare groups long enough to hold a card number are checked further.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MIN_DIGITS, MAX_DIGITS = 13, 19  # ISO/IEC 7812 primary account numbers
MAX_GROUP = 6  # longest digit group of a printed card number (Amex 4-6-5)
SEPARATORS = b" -"
MASK = ord("*")
KEEP_LAST = 4
PREFILTER = rf"[0-9](?:[ -]*[0-9]){{{MIN_DIGITS - 1}}}"
_DOUBLED = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.int64)


def _buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Row offsets (rebased to 0) and the data bytes of a string array, without copying the data."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    offset_type = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(values.buffers()[1], dtype=offset_type)[values.offset : values.offset + len(values) + 1]
    data_buffer = values.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    data = data[offsets[0] : offsets[-1]] if len(offsets) else data[:0]
    return (offsets - offsets[0]).astype(np.int64), data


def _luhn_ok(digits: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Luhn check of the windows ``digits[starts[i]:ends[i]]`` (digit values 0-9), all at once.

    The check digit (last) is not doubled, the one before it is, and so on leftwards: with prefix sums of
    "doubled at odd positions" and "doubled at even positions", each window is two subtractions.
    """
    if not len(starts):
        return np.zeros(0, dtype=bool)
    position = np.arange(len(digits))
    odd = (position & 1).astype(bool)
    plain, doubled = digits.astype(np.int64), _DOUBLED[digits]
    zero = np.zeros(1, dtype=np.int64)
    sum_odd_doubled = np.concatenate([zero, np.cumsum(np.where(odd, doubled, plain))])
    sum_even_doubled = np.concatenate([zero, np.cumsum(np.where(odd, plain, doubled))])
    last_is_even = ((ends - 1) & 1) == 0  # the last digit is never doubled: the other parity is
    total = np.where(
        last_is_even,
        sum_odd_doubled[ends] - sum_odd_doubled[starts],
        sum_even_doubled[ends] - sum_even_doubled[starts],
    )
    return total % 10 == 0


def _windows(lengths: np.ndarray, low: int, high: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every window of ``low..high`` consecutive items inside segments of ``lengths`` items laid end to end:
    (segment index, start, end) with start/end as item positions in the concatenation."""
    segment_start = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    owners, starts, ends = [], [], []
    for width in range(low, high + 1):  # at most seven widths: a loop over window sizes, not rows
        count = np.maximum(lengths - width + 1, 0)
        if not count.any():
            continue
        owner = np.repeat(np.arange(len(lengths)), count)
        first = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        start = segment_start[owner] + first
        owners.append(owner)
        starts.append(start)
        ends.append(start + width)
    if not owners:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(owners), np.concatenate(starts), np.concatenate(ends)


def card_run_rows(values: pa.Array | pa.ChunkedArray, *, loose: bool = False) -> np.ndarray:
    """Rows of a string array whose text holds a card-number run (see the module docstring); nulls: False.

    ``loose`` (free text) drops the formatting conditions: digits joined by spaces or dashes in any
    grouping count as one run, so ``x4000-0566-5566-5556`` is found too. Masking free text too eagerly
    costs nothing; rejecting an id does, so ids use the strict definition.

    RE2 first keeps the rows with 13 digits in one stretch of digits, spaces and dashes (a superset of
    both kinds of run: 0.07 s per million UUIDs, ~2% of them kept); only those are scanned in full.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    flagged = np.zeros(len(values), dtype=bool)
    if not len(values):
        return flagged
    maybe = np.flatnonzero(
        pc.fill_null(pc.match_substring_regex(values, PREFILTER), False).to_numpy(zero_copy_only=False)
    )
    if len(maybe):
        flagged[maybe] = _scan(values.take(pa.array(maybe)) if len(maybe) < len(values) else values, loose)
    return flagged


def _scan(values: pa.Array, loose: bool) -> np.ndarray:
    """``card_run_rows`` without the prefilter: the whole definition, on every byte."""
    offsets, data = _buffers(values)
    rows = len(offsets) - 1
    flagged = np.zeros(max(rows, 0), dtype=bool)
    if rows <= 0 or len(data) < MIN_DIGITS:
        return flagged
    is_digit = (data >= 48) & (data <= 57)
    if int(is_digit.sum()) < MIN_DIGITS:
        return flagged
    row_start = np.zeros(len(data), dtype=bool)
    row_start[offsets[:-1][offsets[:-1] < len(data)]] = True

    # digit groups: maximal runs of digits inside one row
    begins = is_digit & (row_start | ~np.concatenate([[False], is_digit[:-1]]))
    last = is_digit & (np.concatenate([row_start[1:], [True]]) | ~np.concatenate([is_digit[1:], [False]]))
    group_begin, group_end = np.flatnonzero(begins), np.flatnonzero(last) + 1
    if not len(group_begin):
        return flagged
    group_len = group_end - group_begin
    group_row = np.searchsorted(offsets, group_begin, side="right") - 1

    # a group links to the next when only separators (at least one) lie between them in the same row
    is_separator = np.isin(data, np.frombuffer(SEPARATORS, dtype=np.uint8))
    separators_before = np.concatenate([[0], np.cumsum(is_separator)])
    gap = group_begin[1:] - group_end[:-1]
    joined = (
        (group_row[1:] == group_row[:-1])
        & (gap > 0)
        & (separators_before[group_begin[1:]] - separators_before[group_end[:-1]] == gap)
    )

    # 1. windows of 13-19 consecutive digits inside a long group (free text: inside joined groups)
    run_id = np.concatenate([[0], np.cumsum(~joined)]) if loose else np.arange(len(group_begin))
    run_digits = np.bincount(run_id, weights=group_len).astype(np.int64)
    long_groups = np.flatnonzero(run_digits[run_id] >= MIN_DIGITS)
    if len(long_groups):
        run_of = run_id[long_groups]
        run_starts = np.flatnonzero(np.concatenate([[True], run_of[1:] != run_of[:-1]]))
        lengths = group_len[long_groups]
        positions = np.repeat(group_begin[long_groups], lengths) + (
            np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        )
        digits_per_run = np.add.reduceat(lengths, run_starts)
        owner, start, end = _windows(digits_per_run, MIN_DIGITS, MAX_DIGITS)
        ok = _luhn_ok(data[positions] - 48, start, end)
        flagged[group_row[long_groups[run_starts[owner[ok]]]]] = True
        if loose:  # rule 2 finds nothing the joined windows have not found
            return flagged

    # 2. formatted numbers: short groups joined by separators, windows of whole groups
    short = group_len <= MAX_GROUP
    is_letter = ((data | 32) >= 97) & ((data | 32) <= 122)
    before = group_begin - 1
    glued_before = (before >= 0) & ~row_start[group_begin] & is_letter[np.maximum(before, 0)]
    after = group_end
    glued_after = (
        (after < len(data)) & ~row_start[np.minimum(after, len(data) - 1)] & is_letter[np.minimum(after, len(data) - 1)]
    )
    linked = joined & short[1:] & short[:-1]
    # segments: maximal chains of linked short groups; only those with 13+ digits can hold a number
    segment_id = np.concatenate([[0], np.cumsum(~linked)])
    digits_in_segment = np.bincount(segment_id, weights=np.where(short, group_len, 0))
    candidate = short & (digits_in_segment[segment_id] >= MIN_DIGITS)
    if candidate.any():
        groups = np.flatnonzero(candidate)
        seg = segment_id[groups]
        starts_of_segments = np.flatnonzero(np.concatenate([[True], seg[1:] != seg[:-1]]))
        seg_lengths = np.diff(np.concatenate([starts_of_segments, [len(groups)]]))
        # windows of whole groups: 3..19 groups (13+ digits in groups of at most 6)
        owner, first, stop = _windows(seg_lengths, -(-MIN_DIGITS // MAX_GROUP), MAX_DIGITS)
        digits_before = np.concatenate([[0], np.cumsum(group_len[groups])])
        count = digits_before[stop] - digits_before[first]
        keep = (count >= MIN_DIGITS) & (count <= MAX_DIGITS)
        keep &= ~glued_before[groups[first]] & ~glued_after[groups[stop - 1]]
        first, stop = first[keep], stop[keep]
        if len(first):
            lengths = group_len[groups]
            positions = np.repeat(group_begin[groups], lengths) + (
                np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            )
            ok = _luhn_ok(data[positions] - 48, digits_before[first], digits_before[stop])
            flagged[group_row[groups[first[ok]]]] = True
    return flagged


def mask_card_runs(values: pa.Array | pa.ChunkedArray, *, loose: bool = False) -> pa.Array:
    """``values`` with every digit of a row that holds a card-number run turned into ``*``, except its last
    four digits (same length, same nulls); rows without a run are returned unchanged."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    flagged = card_run_rows(values, loose=loose)
    if not flagged.any():
        return values
    offsets, data = _buffers(values)
    masked = data.copy()
    is_digit = (data >= 48) & (data <= 57)
    row_of_byte = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    in_flagged = flagged[row_of_byte] & is_digit
    # digits counted from the end of their row: the last four stay
    digits_through = np.cumsum(is_digit)
    row_total = np.concatenate([[0], digits_through])[offsets[1:]]
    from_end = row_total[row_of_byte] - digits_through  # digits after this byte, in its row
    masked[in_flagged & (from_end >= KEEP_LAST)] = MASK
    validity = values.buffers()[0]
    if validity is not None and values.offset:
        validity = pc.is_valid(values).buffers()[1]  # rebased with the data (offset 0)
    return pa.Array.from_buffers(
        values.type,
        len(values),
        [
            validity,
            pa.py_buffer(offsets.astype(np.int64 if pa.types.is_large_string(values.type) else np.int32)),
            pa.py_buffer(masked),
        ],
        null_count=values.null_count,
    )


def redact(text: str) -> str:
    """One text (a header or trailer value quoted in a report message) with any card-number run masked."""
    return mask_card_runs(pa.array([text], pa.string()), loose=True)[0].as_py()
