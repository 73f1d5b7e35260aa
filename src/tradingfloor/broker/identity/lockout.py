"""Login lockout after repeated failures (pure state transitions) and a login attempt throttle.

Login flow: ``LoginThrottle.check`` (429 with Retry-After if it returns > 0); load the user's
`LoginState`; if `is_locked`, refuse without checking the password (`retry_after_s` says for how
long); otherwise verify the password and store `after_failure(state, now_ns)` or
`after_success()`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from tradingfloor.broker.identity.ratelimit import RateLimiter

__all__ = [
    "IPV6_PREFIX_LENGTH",
    "LOCKOUT_SECONDS",
    "LOCKOUT_THRESHOLD",
    "LOGIN_ATTEMPTS_PER_MINUTE",
    "UNLOCKED",
    "LoginState",
    "LoginThrottle",
    "after_failure",
    "after_success",
    "is_locked",
    "retry_after_s",
]

#: Consecutive failed logins that lock the account ...
LOCKOUT_THRESHOLD = 5
#: ... for this long.
LOCKOUT_SECONDS = 15 * 60
#: Login attempts per minute allowed per username and, separately, per client address.
LOGIN_ATTEMPTS_PER_MINUTE = 10
#: IPv6 clients are throttled per /64 network (one host usually owns a whole /64).
IPV6_PREFIX_LENGTH = 64

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class LoginState:
    """Failed logins since the last success or lock, and the end of the current lock (0: none)."""

    failed: int
    locked_until_ns: int

    def __post_init__(self) -> None:
        if self.failed < 0 or self.locked_until_ns < 0:
            raise ValueError("LoginState fields must not be negative")


#: The state of a user with no recent failures.
UNLOCKED = LoginState(failed=0, locked_until_ns=0)


def is_locked(state: LoginState, now_ns: int) -> bool:
    """True while ``now_ns < state.locked_until_ns``."""
    return now_ns < state.locked_until_ns


def retry_after_s(state: LoginState, now_ns: int) -> int:
    """Whole seconds (rounded up) until the lock ends; 0 if not locked."""
    if not is_locked(state, now_ns):
        return 0
    return -(-(state.locked_until_ns - now_ns) // _NS_PER_S)


def after_failure(state: LoginState, now_ns: int) -> LoginState:
    """The state after a failed login at `now_ns`.

    The `LOCKOUT_THRESHOLD`-th consecutive failure locks the account for `LOCKOUT_SECONDS` and
    resets the count (after the lock, another full series of failures is needed). Failures
    while locked change nothing: they neither extend the lock nor count, so an attacker cannot
    keep a victim locked out for longer than one lock at a time.
    """
    if is_locked(state, now_ns):
        return state
    failed = state.failed + 1
    if failed >= LOCKOUT_THRESHOLD:
        return LoginState(failed=0, locked_until_ns=now_ns + LOCKOUT_SECONDS * _NS_PER_S)
    return LoginState(failed=failed, locked_until_ns=state.locked_until_ns)


def after_success() -> LoginState:
    """The state after a successful login: no failures, no lock."""
    return UNLOCKED


def _address_key(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX_LENGTH), strict=False))
    return str(ip)


class LoginThrottle:
    """Limits login attempts per username and per client address (independent buckets).

    Usernames are compared case-insensitively; IPv6 addresses are grouped per /64 network.
    """

    def __init__(self, per_minute: int = LOGIN_ATTEMPTS_PER_MINUTE) -> None:
        self._by_user = RateLimiter(per_minute)
        self._by_address = RateLimiter(per_minute)

    def check(self, username: str, client_address: str, now: float) -> float:
        """0.0 if the attempt may go ahead (and counts it in both buckets), else Retry-After s.

        A refused attempt counts in neither bucket.
        """
        user_key = username.casefold()
        address_key = _address_key(client_address)
        wait = max(self._by_user.peek(user_key, now), self._by_address.peek(address_key, now))
        if wait > 0:
            return wait
        self._by_user.check(user_key, now)
        self._by_address.check(address_key, now)
        return 0.0
