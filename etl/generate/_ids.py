"""Identities shared by both feeds, so generated transactions join to generated account summaries.

Account ``i`` of a seed has the same 12-digit id in every file of that seed; card ``k`` belongs to account
``k * 2 // 3`` (about 1.5 cards per account). Ids are affine permutations modulo a prime, so distinct
indexes give distinct ids (no accidental duplicate keys) without keeping a table in memory.
"""

from __future__ import annotations

import numpy as np

from etl.generate._vec import mix_int

_ACCOUNT_PRIME = 899_999_999_981  # largest prime below 9e11: ids 100000000000..999999999980
_CUSTOMER_PRIME = 8_999_999_993  # largest prime below 9e9: ids 1000000000..9999999992
_ACCOUNT_STEP = 982_451_653
_CUSTOMER_STEP = 15_485_863
ACCOUNT_TAG = 0xACC0
CUSTOMER_TAG = 0xC057


def account_ids(seed: int, index: np.ndarray) -> np.ndarray:
    """12-digit account ids (int64) for account indexes (distinct for indexes < 9e11)."""
    offset = mix_int(seed, ACCOUNT_TAG) % _ACCOUNT_PRIME
    return 100_000_000_000 + (offset + index.astype(np.int64) * _ACCOUNT_STEP) % _ACCOUNT_PRIME


def customer_ids(seed: int, index: np.ndarray) -> np.ndarray:
    """10-digit customer ids (int64) for customer indexes."""
    offset = mix_int(seed, CUSTOMER_TAG) % _CUSTOMER_PRIME
    return 1_000_000_000 + (offset + index.astype(np.int64) * _CUSTOMER_STEP) % _CUSTOMER_PRIME


def account_of_card(card: np.ndarray) -> np.ndarray:
    return card.astype(np.int64) * 2 // 3


def customer_of_account(account: np.ndarray) -> np.ndarray:
    return account.astype(np.int64) * 4 // 5
