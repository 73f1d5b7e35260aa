"""Unit tests of the FIX logon guard (throttle, lockout per CompID and address) and its config."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradingfloor.exchange.config import ConfigError, LogonLimits, parse_config
from tradingfloor.exchange.fix.logon_guard import (
    ADDRESS_LOCKED,
    COMP_ID_LOCKED,
    LOGON_THROTTLED,
    LogonGuard,
)

S = 1_000_000_000
T0 = 1_704_164_645 * S


def test_defaults_and_config_table() -> None:
    assert parse_config({}).logon == LogonLimits(10, 60, 5, 20, 900)
    limits = parse_config({"fix_logon": {"lockout_threshold": 3, "lockout_seconds": 60}}).logon
    assert (limits.lockout_threshold, limits.lockout_seconds, limits.attempts_per_minute) == (
        3,
        60,
        10,
    )
    for bad in ({"lockout_threshold": 0}, {"nope": 1}, {"lockout_seconds": True}):
        with pytest.raises(ConfigError, match="fix_logon"):
            parse_config({"fix_logon": bad})


def test_success_clears_the_failures_of_comp_id_and_address() -> None:
    guard = LogonGuard(LogonLimits(lockout_threshold=3, address_lockout_threshold=3))
    for _ in range(2):
        assert guard.admit("M1", "10.0.0.1", T0) is None
        assert guard.failed("M1", "10.0.0.1", T0) is None
    guard.succeeded("M1", "10.0.0.1")
    for _ in range(2):
        assert guard.failed("M1", "10.0.0.1", T0) is None  # a new series
    assert (guard.failed("M1", "10.0.0.1", T0) or "").startswith(ADDRESS_LOCKED)
    assert guard.admit("M1", "10.0.0.2", T0) == f"{COMP_ID_LOCKED}, retry in 900 s"
    assert guard.admit("M1", "10.0.0.1", T0 + 899 * S) == f"{ADDRESS_LOCKED}, retry in 1 s"
    assert guard.admit("M1", "10.0.0.1", T0 + 900 * S) is None


def test_a_throttled_attempt_counts_as_no_failure() -> None:
    guard = LogonGuard(LogonLimits(attempts_per_minute=1, lockout_threshold=2))
    assert guard.admit("M1", "a", T0) is None
    assert guard.failed("M1", "a", T0) is None
    for _ in range(10):
        assert guard.admit("M1", "a", T0) == f"{LOGON_THROTTLED}, retry in 60 s"
    assert guard.admit("M1", "a", T0 + 60 * S) is None  # throttled attempts did not lock


def test_ipv6_addresses_share_a_slash_64() -> None:
    guard = LogonGuard(LogonLimits(address_lockout_threshold=2, lockout_threshold=100))
    guard.failed("A", "2001:db8::1", T0)
    guard.failed("B", "2001:db8::2", T0)
    assert (guard.admit("C", "2001:db8::3", T0) or "").startswith(ADDRESS_LOCKED)
    assert guard.admit("C", "2001:db8:0:1::3", T0) is None


def test_locks_and_counts_survive_a_restart_in_their_file(tmp_path: Path) -> None:
    path = tmp_path / "logon-lockouts"
    limits = LogonLimits(lockout_threshold=3, address_lockout_threshold=100)
    guard = LogonGuard(limits, path=path)
    for _ in range(2):
        assert guard.admit("MEMBER1", "198.51.100.4", 1) is None
        guard.failed("MEMBER1", "198.51.100.4", 1)
    restarted = LogonGuard(limits, path=path)  # the venue restarted: the count goes on
    assert restarted.admit("MEMBER1", "198.51.100.4", 2) is None
    locked = restarted.failed("MEMBER1", "198.51.100.4", 2)
    assert locked is not None and locked.startswith(COMP_ID_LOCKED)
    again = LogonGuard(limits, path=path)  # and the lock holds after the next restart
    refusal = again.admit("MEMBER1", "198.51.100.9", 3)
    assert refusal is not None and refusal.startswith(COMP_ID_LOCKED)
    # once the lock has run out, a success clears the count for good
    later = 3 + limits.lockout_seconds * 1_000_000_000
    assert again.admit("MEMBER1", "198.51.100.9", later) is None
    again.succeeded("MEMBER1", "198.51.100.9")
    assert LogonGuard(limits, path=path).admit("MEMBER1", "198.51.100.4", later) is None


def test_a_damaged_lockout_file_is_set_aside_and_counting_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "logon-lockouts"
    path.write_bytes(b"\x93not msgpack of lockouts")
    guard = LogonGuard(LogonLimits(lockout_threshold=1), path=path)
    assert guard.admit("MEMBER1", "198.51.100.4", 1) is None
    assert (tmp_path / "logon-lockouts.damaged").read_bytes().startswith(b"\x93not")
    guard.failed("MEMBER1", "198.51.100.4", 1)
    assert path.is_file()  # written anew
