"""Tests of login lockout state transitions and the login attempt throttle."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradingfloor.core.lockout import (
    LOCKOUT_SECONDS,
    LOCKOUT_THRESHOLD,
    LOGIN_ATTEMPTS_PER_MINUTE,
    UNLOCKED,
    LockoutBook,
    LoginState,
    LoginThrottle,
    after_failure,
    after_success,
    is_locked,
    retry_after_s,
)

NS = 1_000_000_000
T0_NS = 1_750_000_000 * NS
T0 = 1_750_000_000.0


def test_constants() -> None:
    assert (LOCKOUT_THRESHOLD, LOCKOUT_SECONDS, LOGIN_ATTEMPTS_PER_MINUTE) == (5, 900, 10)


def test_fifth_failure_locks_for_fifteen_minutes() -> None:
    state = UNLOCKED
    for i in range(1, LOCKOUT_THRESHOLD):
        state = after_failure(state, T0_NS + i)
        assert state.failed == i
        assert not is_locked(state, T0_NS + i)
    state = after_failure(state, T0_NS)
    assert state == LoginState(failed=0, locked_until_ns=T0_NS + 900 * NS)
    assert is_locked(state, T0_NS)
    assert is_locked(state, T0_NS + 900 * NS - 1)
    assert not is_locked(state, T0_NS + 900 * NS)
    assert retry_after_s(state, T0_NS) == 900
    assert retry_after_s(state, T0_NS + 1) == 900  # rounded up
    assert retry_after_s(state, T0_NS + 899 * NS) == 1
    assert retry_after_s(state, T0_NS + 900 * NS) == 0


def test_failures_while_locked_do_not_extend_the_lock() -> None:
    locked = LoginState(failed=0, locked_until_ns=T0_NS + 10)
    assert after_failure(locked, T0_NS) == locked
    assert after_failure(locked, T0_NS + 9) == locked


def test_after_the_lock_a_new_series_is_needed() -> None:
    locked = LoginState(failed=0, locked_until_ns=T0_NS)
    state = after_failure(locked, T0_NS)
    assert state.failed == 1
    assert not is_locked(state, T0_NS)


def test_success_clears() -> None:
    assert after_success() == UNLOCKED == LoginState(0, 0)
    assert not is_locked(after_success(), 0)


def test_negative_fields_are_refused() -> None:
    with pytest.raises(ValueError):
        LoginState(failed=-1, locked_until_ns=0)
    with pytest.raises(ValueError):
        LoginState(failed=0, locked_until_ns=-1)


@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["fail", "ok", "check"]), st.integers(0, 2000 * NS)),
        max_size=60,
    )
)
def test_never_unlocked_before_locked_until(steps: list[tuple[str, int]]) -> None:
    """Only a success clears a lock; failures never shorten it; the count stays in range."""
    state = UNLOCKED
    now = T0_NS
    for action, gap in steps:
        now += gap
        before = state
        if action == "fail":
            state = after_failure(state, now)
            if is_locked(before, now):
                assert state == before
            else:
                assert state.locked_until_ns in (before.locked_until_ns, now + LOCKOUT_SECONDS * NS)
        elif action == "ok":
            if is_locked(state, now):
                continue  # the login flow never verifies a password while locked
            state = after_success()
        assert 0 <= state.failed < LOCKOUT_THRESHOLD
        assert state.locked_until_ns >= before.locked_until_ns or action == "ok"
        assert is_locked(state, now) == (now < state.locked_until_ns)


@given(gaps=st.lists(st.integers(0, 10 * NS), min_size=LOCKOUT_THRESHOLD, max_size=30))
def test_threshold_consecutive_failures_always_lock(gaps: list[int]) -> None:
    state = UNLOCKED
    now = T0_NS
    locks = 0
    for gap in gaps:
        now += gap
        was_locked = is_locked(state, now)
        state = after_failure(state, now)
        if not was_locked and is_locked(state, now):
            locks += 1
    assert locks >= 1


def test_throttle_per_username() -> None:
    throttle = LoginThrottle()
    for i in range(10):
        assert throttle.check("alice", f"10.0.0.{i}", T0) == 0.0
    wait = throttle.check("ALICE", "10.0.1.1", T0)  # same user, case-insensitively
    assert 0 < wait <= 6.0 + 1e-5
    assert throttle.check("bob", "10.0.1.1", T0) == 0.0
    assert throttle.check("alice", "10.0.1.1", T0 + wait) == 0.0


def test_throttle_per_address() -> None:
    throttle = LoginThrottle()
    for i in range(10):
        assert throttle.check(f"user{i}", "192.0.2.7", T0) == 0.0
    assert throttle.check("someone-else", "192.0.2.7", T0) > 0
    assert throttle.check("someone-else", "::ffff:192.0.2.7", T0) > 0  # IPv4-mapped
    assert throttle.check("someone-else", "192.0.2.8", T0) == 0.0


def test_throttle_groups_ipv6_per_slash_64() -> None:
    throttle = LoginThrottle()
    for i in range(10):
        assert throttle.check(f"user{i}", f"2001:db8:1:2::{i + 1:x}", T0) == 0.0
    assert throttle.check("x", "2001:db8:1:2:ffff::1", T0) > 0
    assert throttle.check("x", "2001:db8:1:3::1", T0) == 0.0


def test_refused_attempt_counts_in_neither_bucket() -> None:
    throttle = LoginThrottle(per_minute=1)
    assert throttle.check("alice", "a", T0) == 0.0
    # Refused because of the address: bob's bucket must stay untouched.
    for _ in range(5):
        assert throttle.check("bob", "a", T0) > 0
    assert throttle.check("bob", "b", T0) == 0.0


def test_unparseable_address_is_used_as_is() -> None:
    throttle = LoginThrottle(per_minute=1)
    assert throttle.check("u1", "unix:/tmp/sock", T0) == 0.0
    assert throttle.check("u2", "unix:/tmp/sock", T0) > 0


def test_public_surface() -> None:
    from tradingfloor.core import lockout, ratelimit

    assert set(lockout.__all__) == {
        "IPV6_PREFIX_LENGTH",
        "LOCKOUT_SECONDS",
        "LOCKOUT_THRESHOLD",
        "LOGIN_ATTEMPTS_PER_MINUTE",
        "UNLOCKED",
        "LockoutBook",
        "LoginState",
        "LoginThrottle",
        "address_key",
        "after_failure",
        "after_success",
        "is_locked",
        "retry_after_s",
    }
    assert set(ratelimit.__all__) == {"MAX_KEYS", "RateLimiter"}


def test_custom_threshold_and_lock_length() -> None:
    state = after_failure(UNLOCKED, T0_NS, threshold=2, lock_seconds=60)
    assert state == LoginState(failed=1, locked_until_ns=0)
    state = after_failure(state, T0_NS, threshold=2, lock_seconds=60)
    assert state == LoginState(failed=0, locked_until_ns=T0_NS + 60 * NS)
    with pytest.raises(ValueError):
        after_failure(UNLOCKED, T0_NS, threshold=0)


def test_lockout_book_locks_per_key_and_forgets_on_success() -> None:
    book = LockoutBook(threshold=3, lock_seconds=60)
    for _ in range(2):
        book.failure("M1", T0_NS)
    assert book.retry_after_s("M1", T0_NS) == 0
    book.failure("M2", T0_NS)
    book.success("M2")
    assert len(book) == 1  # M2 forgotten
    assert is_locked(book.failure("M1", T0_NS), T0_NS)
    assert book.retry_after_s("M1", T0_NS + NS) == 59
    assert book.retry_after_s("M1", T0_NS + 60 * NS) == 0
    assert book.state("M1").failed == 0
    assert book.retry_after_s("other", T0_NS) == 0


def test_lockout_book_is_bounded() -> None:
    book = LockoutBook(threshold=1, lock_seconds=60, max_keys=2)
    for key in ("a", "b", "c"):
        book.failure(key, T0_NS)
    assert len(book) == 2
    assert book.retry_after_s("a", T0_NS) == 0  # the oldest went first
    assert book.retry_after_s("c", T0_NS) == 60


def test_throttle_check_ns_matches_check() -> None:
    throttle = LoginThrottle(per_minute=2)
    assert throttle.check_ns("M1", "10.0.0.1", T0_NS) == 0
    assert throttle.check_ns("M1", "10.0.0.2", T0_NS) == 0
    wait = throttle.check_ns("m1", "10.0.0.3", T0_NS)
    assert wait == 30 * NS
    assert throttle.check_ns("M1", "10.0.0.3", T0_NS + wait) == 0


def test_throttle_with_its_own_address_rate() -> None:
    throttle = LoginThrottle(per_minute=1, per_minute_per_address=3)
    for i in range(3):
        assert throttle.check_ns(f"M{i}", "10.0.0.1", T0_NS) == 0
    assert throttle.check_ns("M9", "10.0.0.1", T0_NS) > 0
    assert throttle.check_ns("M0", "10.0.0.2", T0_NS) > 0  # per name: 1
