"""PCI masking: a card number becomes its last four digits and a keyed HMAC-SHA256 token.

The token lets analysts join and count cards without ever seeing a number. Masking is pure (Arrow in,
Arrow out); the key comes from ``etl.io.secrets.pan_key`` at the edge.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pyarrow.compute as pc

_BLOCK = 64  # SHA-256 block size in bytes (RFC 2104)


class CardMasker:
    """Masks card numbers with HMAC-SHA256 under one key.

    The inner and outer SHA-256 states are keyed once and copied per value: about twice as fast as
    ``hmac.new`` per value. Each distinct number is hashed once per array, so a card seen on many rows
    costs one HMAC; a bounded cache carries tokens across the batches of a file (cleared when full, so
    memory stays capped; it lives only in this process and is never written anywhere).
    """

    def __init__(self, key: bytes, cache_size: int = 262_144) -> None:
        if not key:
            raise ValueError("the PAN key must not be empty")
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
        self._known = pa.array([], pa.string())  # numbers seen in this process, and their tokens: memory only
        self._known_tokens = pa.array([], pa.string())
        self._cache_size = cache_size

    def __repr__(self) -> str:  # never show key material
        return "CardMasker(<key hidden>)"

    def token(self, card_number: str) -> str:
        """Lower-case hex HMAC-SHA256 of one number (the full number as ASCII; UTF-8 for anything else)."""
        inner = self._inner.copy()
        inner.update(card_number.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def mask(self, card_numbers: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
        """``(last4, token)`` string arrays for ``card_numbers``; nulls stay null in both."""
        if isinstance(card_numbers, pa.ChunkedArray):
            card_numbers = card_numbers.combine_chunks()
        last4 = pc.utf8_slice_codeunits(card_numbers, start=-4)
        encoded = card_numbers.dictionary_encode()
        distinct = self._tokens(encoded.dictionary)
        return last4, distinct.take(encoded.indices)

    def _tokens(self, numbers: pa.Array) -> pa.Array:
        """Tokens of distinct ``numbers``: looked up in Arrow against the numbers seen so far, HMAC for new ones."""
        if len(self._known) > self._cache_size:
            self._known, self._known_tokens = pa.array([], pa.string()), pa.array([], pa.string())
        position = pc.index_in(numbers, value_set=self._known)
        new = pc.filter(numbers, pc.is_null(position))
        if len(new):
            fresh = pa.array([self.token(n) for n in new.to_pylist()], pa.string())
            self._known = pa.concat_arrays([self._known, new.cast(pa.string())])
            self._known_tokens = pa.concat_arrays([self._known_tokens, fresh])
            position = pc.index_in(numbers, value_set=self._known)
        return self._known_tokens.take(position)
