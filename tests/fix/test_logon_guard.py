"""Unit tests of the FIX logon guard (throttle, lockout per CompID and address) and its config."""

from __future__ import annotations

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
