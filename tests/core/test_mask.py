"""Card masking: HMAC-SHA256 tokens equal to the reference ``hmac`` result, one HMAC per distinct number."""

from __future__ import annotations

import hashlib
import hmac
import re

import numpy as np
import pyarrow as pa
import pytest

from etl.core.mask import CardMasker

KEY = b"test-pan-key"
CARDS = ["4111111111111111", "5500005555555559", "340000000000009", "4111111111111111"]


def reference(key: bytes, number: str) -> str:
    return hmac.new(key, number.encode("utf-8"), hashlib.sha256).hexdigest()


def test_tokens_are_hmac_sha256_hex_and_last4_is_right() -> None:
    last4, token = CardMasker(KEY).mask(pa.array(CARDS))
    assert last4.to_pylist() == ["1111", "5559", "0009", "1111"]
    for number, value in zip(CARDS, token.to_pylist(), strict=True):
        assert re.fullmatch(r"[0-9a-f]{64}", value)
        assert value == reference(KEY, number)
        assert number not in value


def test_same_number_same_token_other_key_other_token() -> None:
    _, first = CardMasker(KEY).mask(pa.array(CARDS))
    _, other = CardMasker(b"another-key").mask(pa.array(CARDS))
    assert first[0] == first[3]
    assert first[0] != first[1]
    assert set(first.to_pylist()).isdisjoint(other.to_pylist())


@pytest.mark.parametrize("key", [b"k", b"x" * 64, b"long-key" * 20])
def test_any_key_length_matches_the_reference(key: bytes) -> None:
    assert CardMasker(key).token(CARDS[0]) == reference(key, CARDS[0])


def test_nulls_stay_null_and_chunked_input_works() -> None:
    chunked = pa.chunked_array([[CARDS[0], None], [CARDS[1]]])
    last4, token = CardMasker(KEY).mask(chunked)
    assert last4.to_pylist() == ["1111", None, "5559"]
    assert token.to_pylist() == [reference(KEY, CARDS[0]), None, reference(KEY, CARDS[1])]


def test_one_hmac_per_distinct_number() -> None:
    masker = CardMasker(KEY)
    calls: list[str] = []
    original = masker.digest
    masker.digest = lambda number: calls.append(number) or original(number)  # type: ignore[method-assign]
    _, token = masker.mask(pa.array(CARDS * 250))
    assert sorted(calls) == sorted(set(CARDS))
    assert len(token) == 1000 and token[0] == token[3]
    masker.mask(pa.array([*CARDS[:2], "6011000990139424"]))  # a later batch of the same file
    assert sorted(calls) == sorted({*CARDS, "6011000990139424"})


def test_cache_is_bounded_and_tokens_stay_right() -> None:
    masker = CardMasker(KEY, cache_size=3)
    for _ in range(3):
        _, token = masker.mask(pa.array([*CARDS, "6011000990139424"]))
        assert token.to_pylist() == [reference(KEY, n) for n in [*CARDS, "6011000990139424"]]
        assert len(masker._keys) <= 4  # the cap, plus at most one batch of distinct numbers


def test_empty_input_and_bad_key() -> None:
    last4, token = CardMasker(KEY).mask(pa.array([], pa.string()))
    assert len(last4) == len(token) == 0
    with pytest.raises(ValueError):
        CardMasker(b"")
    assert "test-pan-key" not in repr(CardMasker(KEY))


def test_values_that_are_not_card_shaped_are_hashed_not_cached() -> None:
    """Over 19 digits, a leading zero, a sign, non-ASCII: exact tokens, kept out of the numeric cache."""
    odd = ["41111111111111111111", "0411", "+411", "41111111111111é", "4111 "]
    masker = CardMasker(KEY)
    for _ in range(2):
        _, token = masker.mask(pa.array(odd))
        assert token.to_pylist() == [reference(KEY, n) for n in odd]
    _, token = masker.mask(pa.array(["411", "0411", "00411"]))  # one value, three texts, three tokens
    assert token.to_pylist() == [reference(KEY, n) for n in ["411", "0411", "00411"]]
    assert len(masker._keys) == 0


def test_cache_agrees_with_plain_hmac_over_many_batches() -> None:
    rng = np.random.default_rng(5)
    pool = np.array([f"{n:016d}" for n in rng.integers(10**15, 10**16, 3000)] + ["378282246310005", "4111"])
    masker = CardMasker(KEY, cache_size=2500)  # cleared on the way
    for _ in range(12):
        numbers = pool[rng.integers(0, len(pool), 700)].tolist()
        _, token = masker.mask(pa.array(numbers))
        assert token.to_pylist() == [reference(KEY, n) for n in numbers]
