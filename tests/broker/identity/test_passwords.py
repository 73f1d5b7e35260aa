"""Tests of argon2id password hashing and the password policy."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, extract_parameters
from argon2 import Type as Argon2Type

from tradingfloor.broker.identity.passwords import (
    MAX_PASSWORD_LENGTH,
    MEMORY_COST_KIB,
    MIN_PASSWORD_LENGTH,
    PARALLELISM,
    TIME_COST,
    check_password_policy,
    default_hasher,
    hash_password,
    make_hasher,
    needs_rehash,
    verify_password,
)

GOOD = "correct horse battery"


@pytest.fixture(scope="module")
def cheap() -> PasswordHasher:
    """Minimal argon2id parameters: the suite tests behaviour, not cost."""
    return make_hasher(time_cost=1, memory_cost_kib=64, parallelism=1)


def test_production_parameters_produce_argon2id() -> None:
    assert (TIME_COST, MEMORY_COST_KIB, PARALLELISM) == (2, 19_456, 1)
    stored = hash_password(GOOD)
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    params = extract_parameters(stored)
    assert params.type is Argon2Type.ID
    assert verify_password(stored, GOOD)
    assert not needs_rehash(stored)
    assert default_hasher().memory_cost == MEMORY_COST_KIB


def test_round_trip(cheap: PasswordHasher) -> None:
    stored = hash_password(GOOD, hasher=cheap)
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, GOOD, hasher=cheap)
    assert not verify_password(stored, GOOD + "!", hasher=cheap)
    assert not verify_password(stored, "", hasher=cheap)


def test_salted(cheap: PasswordHasher) -> None:
    assert hash_password(GOOD, hasher=cheap) != hash_password(GOOD, hasher=cheap)


def test_verify_uses_parameters_from_the_hash(cheap: PasswordHasher) -> None:
    stored = hash_password(GOOD, hasher=cheap)
    assert verify_password(stored, GOOD)  # the default hasher verifies a cheap hash


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not a hash",
        "$argon2id$v=19$m=x",
        "$2b$12$abcdefghijklmnopqrstuu",
        "$argon2id$" + "A" * 50,
    ],
)
def test_malformed_hash_is_false_not_an_exception(stored: str, cheap: PasswordHasher) -> None:
    assert verify_password(stored, GOOD, hasher=cheap) is False
    assert needs_rehash(stored, hasher=cheap) is True


def test_tampered_hash_is_false(cheap: PasswordHasher) -> None:
    stored = hash_password(GOOD, hasher=cheap)
    last = "A" if stored[-1] != "A" else "B"
    assert not verify_password(stored[:-1] + last, GOOD, hasher=cheap)


def test_lone_surrogate_password_is_false(cheap: PasswordHasher) -> None:
    stored = hash_password(GOOD, hasher=cheap)
    assert verify_password(stored, "\ud800" * 12, hasher=cheap) is False


def test_overlong_password_never_matches(cheap: PasswordHasher) -> None:
    long_pw = "aB1" * 100
    stored = cheap.hash(long_pw)  # bypasses the policy on purpose
    assert not verify_password(stored, long_pw, hasher=cheap)


def test_needs_rehash_when_parameters_change(cheap: PasswordHasher) -> None:
    stored = hash_password(GOOD, hasher=cheap)
    assert not needs_rehash(stored, hasher=cheap)
    assert needs_rehash(stored)  # production parameters are stronger
    argon2i = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1, type=Argon2Type.I)
    assert needs_rehash(argon2i.hash(GOOD), hasher=cheap)


@pytest.mark.parametrize(
    ("password", "accepted"),
    [
        ("Abcdefgh1", False),  # 9 characters
        ("Abcdefghi1", True),  # 10 characters, three classes
        ("abcdefghij", False),  # one class
        ("ABCDEFGHIJ", False),
        ("1234567890", False),
        ("!!!!!!!!!!", False),
        ("abcdefghi ", True),  # lower + other
        ("abcdefghi1", True),  # lower + digit
        ("пароль-пароль", True),  # non-ASCII lower + other
        ("a" * MAX_PASSWORD_LENGTH + "1", False),
        ("a" * (MAX_PASSWORD_LENGTH - 1) + "1", True),
        ("\ud800abcdefghi1", False),
    ],
)
def test_policy(password: str, accepted: bool) -> None:
    message = check_password_policy(password)
    assert (message is None) == accepted
    if message is not None:
        assert message.startswith("password")


def test_policy_messages() -> None:
    assert check_password_policy("Ab1") == (
        f"password must have at least {MIN_PASSWORD_LENGTH} characters"
    )
    assert check_password_policy("x" * 300) == (
        f"password must have at most {MAX_PASSWORD_LENGTH} characters"
    )


def test_policy_refuses_the_username() -> None:
    assert check_password_policy("Alice-2024-xyz", username="alice") is not None
    assert check_password_policy("Alice-2024-xyz", username="bob") is None
    assert check_password_policy("Alice-2024-xyz", username="") is None
