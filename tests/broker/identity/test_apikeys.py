"""Tests of Alpaca-style API key generation, hashing and shape checks."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tradingfloor.broker.identity.apikeys import (
    DEFAULT_KEY_RATE_LIMIT_PER_MINUTE,
    hash_api_secret,
    looks_like_key_id,
    looks_like_secret,
    new_api_key,
    verify_api_secret,
)


def test_shapes() -> None:
    key_id, secret = new_api_key()
    assert re.fullmatch(r"PK[A-Z0-9]{18}", key_id)
    assert re.fullmatch(r"[A-Za-z0-9]{40}", secret)
    assert looks_like_key_id(key_id)
    assert looks_like_secret(secret)
    assert not looks_like_key_id(secret)
    assert not looks_like_secret(key_id)


def test_keys_are_unique() -> None:
    pairs = [new_api_key() for _ in range(200)]
    assert len({k for k, _ in pairs}) == len({s for _, s in pairs}) == 200


def test_hash_is_sha256_hex() -> None:
    assert hash_api_secret("abc") == hashlib.sha256(b"abc").hexdigest()


def test_verify() -> None:
    _, secret = new_api_key()
    stored = hash_api_secret(secret)
    assert verify_api_secret(stored, secret)
    assert not verify_api_secret(stored, secret[:-1])
    assert not verify_api_secret(stored, "")
    assert not verify_api_secret("", secret)
    assert not verify_api_secret("ü" * 64, secret)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "PK",
        "PK" + "A" * 17,
        "PK" + "A" * 19,
        "AK" + "A" * 18,
        "pk" + "A" * 18,
        "PK" + "a" * 18,
        "PK" + "A" * 17 + "-",
        "PK" + "A" * 18 + "\n",
        "PK" + "\uff21" * 18,  # fullwidth A
    ],
)
def test_not_a_key_id(value: str) -> None:
    assert not looks_like_key_id(value)


def test_default_rate_limit() -> None:
    assert DEFAULT_KEY_RATE_LIMIT_PER_MINUTE == 200


@given(st.text(max_size=80), st.text(max_size=80))
def test_verify_only_the_same_secret(a: str, b: str) -> None:
    assert verify_api_secret(hash_api_secret(a), a)
    assume(a != b)
    assert not verify_api_secret(hash_api_secret(a), b)
