"""Dummy ``transactions`` records (docs/design.md §3.1), one chunk of rows at a time.

A chunk is generated from its own random generator keyed by (seed, business date, sequence, chunk), and
transaction ids are hashes of (seed, date, sequence, row), so any row of any earlier file can be rebuilt
exactly: that is how a "next day" file re-sends day-1 ids with action U or D.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.generate import _vec as v
from etl.generate._ids import account_ids, account_of_card

CHUNK = 65_536
ID_TAG, ROW_TAG, CARD_TAG, BAND_TAG, UPDATE_TAG = 0x7101, 0x7102, 0x7103, 0x7104, 0x7105
_PHI = 0.6180339887498949

CHANNELS = ("POS", "ECOM", "ATM", "ACH", "P2P")
STATUSES = ("POSTED", "PENDING", "REVERSED")
ACTIONS = ("A", "U", "D")
DEBIT_CREDIT = ("D", "C")
CURRENCIES = ("USD", "EUR", "GBP", "CAD", "MXN", "JPY", "CHF", "AUD", "INR")
_CURRENCY_P = (0.92, 0.025, 0.015, 0.012, 0.01, 0.006, 0.004, 0.004, 0.004)
POSTED, PENDING, REVERSED = 0, 1, 2
ACTION_A, ACTION_U, ACTION_D = 0, 1, 2

# name, mcc ("" = none), kind, weight. Kinds: store (POS or ECOM), online, atm, ach_in, ach_out, p2p.
MERCHANTS: tuple[tuple[str, str, str, float], ...] = (
    ("WALMART SUPERCENTER", "5411", "store", 8),
    ("KROGER", "5411", "store", 5),
    ("WHOLE FOODS MARKET", "5411", "store", 3),
    ("TRADER JOE'S", "5411", "store", 3),
    ("COSTCO WHSE", "5300", "store", 3),
    ("TARGET", "5310", "store", 5),
    ("CVS/PHARMACY", "5912", "store", 3),
    ("WALGREENS", "5912", "store", 3),
    ("SHELL OIL", "5541", "store", 4),
    ("CHEVRON", "5541", "store", 3),
    ("EXXONMOBIL", "5542", "store", 2),
    ("STARBUCKS", "5814", "store", 6),
    ("MCDONALD'S", "5814", "store", 5),
    ("CHIPOTLE", "5814", "store", 3),
    ("DUNKIN", "5814", "store", 2),
    ("OLIVE GARDEN", "5812", "store", 1),
    ("THE HOME DEPOT", "5200", "store", 3),
    ("LOWE'S", "5200", "store", 2),
    ("BEST BUY", "5732", "store", 2),
    ("IKEA", "5712", "store", 1),
    ("DELTA AIR LINES", "3058", "store", 1),
    ("MARRIOTT HOTELS", "3509", "store", 1),
    ("HERTZ RENT-A-CAR", "3357", "store", 1),
    ("CAFÉ DE FLORE PARIS", "5814", "store", 0.5),
    ("BÄCKEREI MÜLLER", "5462", "store", 0.3),
    ("TACOS EL GÜERO", "5812", "store", 0.3),
    ("AMAZON.COM", "5942", "online", 9),
    ("AMAZON MKTPLACE PMTS", "5999", "online", 5),
    ("NETFLIX.COM", "4899", "online", 2),
    ("SPOTIFY USA", "5815", "online", 2),
    ("APPLE.COM/BILL", "5818", "online", 3),
    ("UBER TRIP", "4121", "online", 3),
    ("LYFT RIDE", "4121", "online", 1),
    ("DOORDASH", "5812", "online", 2),
    ("EBAY O*", "5999", "online", 1),
    ("ETSY.COM", "5999", "online", 1),
    ("STEAMGAMES.COM", "5816", "online", 1),
    ("ATM WITHDRAWAL", "6011", "atm", 5),
    ("ATM CHASE BANK", "6011", "atm", 2),
    ("PAYROLL ACME CORP", "", "ach_in", 2),
    ("IRS TREAS 310 TAX REF", "", "ach_in", 0.3),
    ("CITY WATER UTILITY", "4900", "ach_out", 1),
    ("PG&E WEB ONLINE", "4900", "ach_out", 1),
    ("STATE FARM INSURANCE", "6300", "ach_out", 1),
    ("MORTGAGE PMT WELLS", "", "ach_out", 1),
    ("ZELLE PAYMENT", "4829", "p2p", 2),
    ("VENMO", "4829", "p2p", 2),
    ("", "", "p2p", 1),
)
_NAMES = v.text_table([m[0] for m in MERCHANTS])
_MCCS = v.text_table([m[1] for m in MERCHANTS])
_KIND = np.array([m[2] for m in MERCHANTS])
_MERCHANT_P = np.array([m[3] for m in MERCHANTS]) / sum(m[3] for m in MERCHANTS)
_CHANNEL_OF_KIND = {"online": 1, "atm": 2, "ach_in": 3, "ach_out": 3, "p2p": 4}
_CHANNELS, _STATUSES, _ACTIONS, _DC, _CURRENCIES = map(
    v.text_table, (CHANNELS, STATUSES, ACTIONS, DEBIT_CREDIT, CURRENCIES)
)


@dataclass(frozen=True)
class BaseFile:
    """An earlier transactions file of the same seed whose ids a later file updates or deletes."""

    business_date: dt.date
    rows: int
    sequence: int | None = None


@dataclass
class Rows:
    """One chunk of transactions as typed numpy columns (formatted to text only at the end)."""

    id_key: np.ndarray  # uint64 file key per row (ids hash this with the row number)
    row: np.ndarray
    card: np.ndarray
    ts_day: np.ndarray
    ts_sec: np.ndarray
    posted_day: np.ndarray
    amount: np.ndarray  # cents, int64, >= 0
    debit_credit: np.ndarray
    currency: np.ndarray
    merchant: np.ndarray
    store: np.ndarray  # store number, 0 = none
    no_mcc: np.ndarray
    channel: np.ndarray
    status: np.ndarray
    action: np.ndarray

    def __len__(self) -> int:
        return len(self.row)

    def take(self, index: np.ndarray) -> Rows:
        return Rows(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def file_key(seed: int, business_date: dt.date, sequence: int | None) -> int:
    return v.mix_int(seed, ID_TAG, v.day_number(business_date), sequence or 0)


def card_pool(rows: int) -> int:
    """Distinct cards a file of ``rows`` records draws from: about one card per 20 transactions."""
    return max(1, -(-rows // 20))


def fresh_chunks(seed: int, business_date: dt.date, sequence: int | None, rows: int) -> Iterator[Rows]:
    """The rows of a new file in chunks; the same arguments always give the same rows."""
    pool = card_pool(rows)
    for chunk, start in enumerate(range(0, rows, CHUNK)):
        yield _fresh(seed, business_date, sequence, chunk, np.arange(start, min(rows, start + CHUNK)), pool)


def _fresh(seed: int, day: dt.date, sequence: int | None, chunk: int, row: np.ndarray, pool: int) -> Rows:
    day_n = v.day_number(day)
    g = v.rng(seed, ROW_TAG, day_n, sequence or 0, chunk)
    n = len(row)
    merchant = g.choice(len(MERCHANTS), size=n, p=_MERCHANT_P)
    kind = _KIND[merchant]
    store_like = kind == "store"
    channel = np.where(store_like, np.where(g.random(n) < 0.8, 0, 1), 0)
    for name, code in _CHANNEL_OF_KIND.items():
        channel = np.where(kind == name, code, channel)
    ts_back = g.choice(3, size=n, p=(0.93, 0.06, 0.01))
    seconds = (g.normal(14.5, 4.5, n) * 3600).astype(np.int64) % 86_400
    return Rows(
        id_key=np.full(n, file_key(seed, day, sequence), dtype=np.uint64),
        row=row.astype(np.int64),
        card=(pool * g.random(n) ** 1.3).astype(np.int64),
        ts_day=day_n - ts_back,
        ts_sec=seconds,
        posted_day=np.full(n, day_n, dtype=np.int64),
        amount=_amounts(g, kind),
        debit_credit=_debit_credit(g, kind),
        currency=np.where(
            np.isin(kind, ["store", "online", "atm"]), g.choice(len(CURRENCIES), size=n, p=_CURRENCY_P), 0
        ),
        merchant=merchant,
        store=np.where(store_like & (g.random(n) < 0.6), g.integers(1, 10_000, n), 0),
        no_mcc=g.random(n) < 0.03,
        channel=channel,
        status=g.choice(3, size=n, p=(0.85, 0.12, 0.03)),
        action=g.choice(3, size=n, p=(0.96, 0.03, 0.01)),
    )


def _amounts(g: np.random.Generator, kind: np.ndarray) -> np.ndarray:
    """Cents: card spend lognormal, ATM in twenties, payroll credits, some zero, a few very large."""
    n = len(kind)
    cents = (np.exp(g.normal(3.3, 1.1, n)) * 100).astype(np.int64)
    cents = np.where(kind == "atm", g.integers(1, 21, n) * 2_000, cents)
    cents = np.where(kind == "ach_in", g.integers(80_000, 600_000, n), cents)
    cents = np.where(kind == "ach_out", (np.exp(g.normal(4.8, 0.8, n)) * 100).astype(np.int64), cents)
    cents = np.where(g.random(n) < 0.01, 0, cents)
    cents = np.where(g.random(n) < 0.002, g.integers(1_000_000, 250_000_000, n), cents)
    return np.clip(cents, 0, 999_999_999_999)


def _debit_credit(g: np.random.Generator, kind: np.ndarray) -> np.ndarray:
    r = g.random(len(kind))
    credit = np.where(kind == "p2p", r < 0.5, r < 0.03)
    return np.where(kind == "ach_in", 1, np.where(kind == "ach_out", 0, credit.astype(np.int64)))


def derived_chunks(
    seed: int, base: BaseFile, day: dt.date, update_fraction: float, delete_fraction: float
) -> Iterator[Rows]:
    """Rows of ``base`` re-sent on ``day``: a fraction as updates (U), a fraction as deletes (D).

    Each base row has a fixed point ``u`` in [0, 1) (golden-ratio sequence: near-exact fractions, spread
    over the file). Updates take ``u >= 1 - update_fraction``; a file ``k`` days after its base deletes
    ``(k-1)*d <= u < k*d``, so later days never update or re-delete what an earlier day deleted.
    """
    age = (day - base.business_date).days
    if age < 1:
        raise ValueError(f"base file {base.business_date} must be before {day}")
    low, high = (age - 1) * delete_fraction, age * delete_fraction
    if high > 1 - update_fraction:
        raise ValueError("update and delete fractions overlap for this base age; use smaller fractions")
    offset = v.mix_int(seed, BAND_TAG, v.day_number(base.business_date), base.sequence or 0) / 2.0**64
    for chunk, rows in enumerate(fresh_chunks(seed, base.business_date, base.sequence, base.rows)):
        u = (rows.row * _PHI + offset) % 1.0
        alive = rows.action != ACTION_D
        delete = alive & (u >= low) & (u < high)
        update = alive & (u >= 1 - update_fraction)
        picked = rows.take(np.flatnonzero(delete | update))
        if len(picked):
            g = v.rng(seed, UPDATE_TAG, v.day_number(day), v.day_number(base.business_date), chunk)
            yield _as_updates(picked, delete[delete | update], g, v.day_number(day))


def _as_updates(rows: Rows, delete: np.ndarray, g: np.random.Generator, day_n: int) -> Rows:
    """Settle pending rows, reverse a few, adjust some amounts; deletes re-send the row unchanged."""
    n = len(rows)
    settle = np.where(g.random(n) < 0.85, POSTED, REVERSED)
    status = np.where(
        rows.status == PENDING, settle, np.where((rows.status == POSTED) & (g.random(n) < 0.1), REVERSED, rows.status)
    )
    factor = np.where(g.random(n) < 0.4, g.uniform(0.8, 1.25, n), 1.0)
    amount = np.clip(np.rint(rows.amount * factor).astype(np.int64), 0, 999_999_999_999)
    return replace(
        rows,
        status=np.where(delete, rows.status, status),
        amount=np.where(delete, rows.amount, amount),
        posted_day=np.where(delete, rows.posted_day, day_n),
        action=np.where(delete, ACTION_D, ACTION_U),
    )


def card_numbers(seed: int, card: np.ndarray) -> pa.StringArray:
    """Luhn-valid card numbers for card indexes: mostly 16 digits (Visa, Mastercard, Discover), Amex 15,
    some 13 and 19; a pure function of (seed, card index), so a card keeps its number across files."""
    key = v.mix_int(seed, CARD_TAG)
    h1 = v.mix(card, key)
    h2 = v.mix(h1, key ^ 0xA5A5)
    brand = (h1 % np.uint64(100)).astype(np.int64)
    length = np.select([brand < 80, brand < 88, brand < 93, brand < 96], [16, 15, 16, 13], 19)
    payload = v.digits(h2 % np.uint64(10**18), 18) - ord("0")  # 18 payload digits, right-aligned
    first = 18 - (length - 1)  # column of the first digit
    cols = np.arange(18)
    payload[cols[None, :] < first[:, None]] = 0
    rows = np.arange(len(card))
    mc, amex, discover = (brand >= 55) & (brand < 80), (brand >= 80) & (brand < 88), (brand >= 88) & (brand < 93)
    payload[rows, first] = np.select([mc, amex, discover], [5, 3, 6], 4)
    bits = (h1 >> np.uint64(8)).astype(np.int64)
    second = np.select([mc, amex, discover], [1 + bits % 5, np.where(bits % 2 == 1, 7, 4), 0], payload[rows, first + 1])
    payload[rows, first + 1] = second
    payload[discover, first[discover] + 2] = 1
    payload[discover, first[discover] + 3] = 1
    full = np.concatenate([payload, v.luhn_complete(payload)[:, None]], axis=1).astype(np.uint8) + ord("0")
    keep = np.arange(19)[None, :] >= (19 - length)[:, None]
    return v.ragged_strings(full, keep)


@dataclass(frozen=True)
class CardBook:
    """Card numbers and account ids of cards ``0..size-1``, formatted once per file, not once per row."""

    numbers: pa.StringArray
    accounts: pa.StringArray

    @classmethod
    def build(cls, seed: int, size: int) -> CardBook:
        numbers, accounts = [], []
        for start in range(0, size, CHUNK):  # blockwise: the digit matrices stay chunk-sized
            card = np.arange(start, min(size, start + CHUNK))
            numbers.append(card_numbers(seed, card))
            accounts.append(v.fixed_strings(v.digits(account_ids(seed, account_of_card(card)), 12)))
        return cls(pa.concat_arrays(numbers), pa.concat_arrays(accounts))


def format_lines(book: CardBook, rows: Rows) -> pa.StringArray:
    """Detail lines (with their LF) for a chunk."""
    amount = v.fixed_strings(v.digits(rows.amount, 12))
    store = v.fixed_strings(v.digits(rows.store, 4))
    suffix = pc.if_else(pc.greater(pa.array(rows.store), 0), pc.binary_join_element_wise(" #", store, ""), "")
    merchant = pc.binary_join_element_wise(_NAMES.take(rows.merchant), suffix, "")
    mcc = pc.if_else(pa.array(rows.no_mcc), "", _MCCS.take(rows.merchant))
    ts = (
        v.yyyymmdd(rows.ts_day) * 1_000_000
        + (rows.ts_sec // 3600) * 10_000
        + (rows.ts_sec // 60 % 60) * 100
        + rows.ts_sec % 60
    )
    card = pa.array(rows.card)
    columns = [
        "D",
        v.fixed_strings(v.uuid_matrix_keys(rows.id_key, rows.row)),
        book.accounts.take(card),
        book.numbers.take(card),
        v.fixed_strings(v.digits(ts, 14)),
        v.fixed_strings(v.digits(v.yyyymmdd(rows.posted_day), 8)),
        amount,
        _DC.take(rows.debit_credit),
        _CURRENCIES.take(rows.currency),
        merchant,
        mcc,
        _CHANNELS.take(rows.channel),
        _STATUSES.take(rows.status),
        _ACTIONS.take(rows.action),
    ]
    line = pc.binary_join_element_wise(*columns, "|")
    return pc.binary_join_element_wise(line, "\n", "")


def transaction_ids(seed: int, business_date: dt.date, sequence: int | None, row: Sequence[int]) -> list[str]:
    """The ids rows of a generated file carry (for tests and for tools that reference earlier files)."""
    rows = np.asarray(row, dtype=np.int64)
    keys = np.full(len(rows), file_key(seed, business_date, sequence), dtype=np.uint64)
    return v.fixed_strings(v.uuid_matrix_keys(keys, rows)).to_pylist()
