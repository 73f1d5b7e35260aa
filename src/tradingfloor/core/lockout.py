"""Login lockout after repeated failures (pure state transitions) and a login attempt throttle.

Shared by every edge that checks a credential: the broker's REST login (which persists each
user's `LoginState` in its database) and the exchange's FIX logon (which keeps the states of
CompIDs and source addresses in memory, in a `LockoutBook`).

Login flow: ``LoginThrottle.check`` (refuse with a retry-after if it returns > 0); load the
principal's `LoginState`; if `is_locked`, refuse without checking the password
(`retry_after_s` says for how long); otherwise verify the password and store
`after_failure(state, now_ns)` or `after_success()`.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass

from tradingfloor.core.ratelimit import MAX_KEYS, RateLimiter

__all__ = [
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


def after_failure(
    state: LoginState,
    now_ns: int,
    *,
    threshold: int = LOCKOUT_THRESHOLD,
    lock_seconds: int = LOCKOUT_SECONDS,
) -> LoginState:
    """The state after a failed login at `now_ns`.

    The `threshold`-th consecutive failure locks the account for `lock_seconds` and resets
    the count (after the lock, another full series of failures is needed). Failures while
    locked change nothing: they neither extend the lock nor count, so an attacker cannot keep
    a victim locked out for longer than one lock at a time.
    """
    if threshold < 1 or lock_seconds < 1:
        raise ValueError("threshold and lock_seconds must be at least 1")
    if is_locked(state, now_ns):
        return state
    failed = state.failed + 1
    if failed >= threshold:
        return LoginState(failed=0, locked_until_ns=now_ns + lock_seconds * _NS_PER_S)
    return LoginState(failed=failed, locked_until_ns=state.locked_until_ns)


def after_success() -> LoginState:
    """The state after a successful login: no failures, no lock."""
    return UNLOCKED


def address_key(address: str) -> str:
    """The key a client address is throttled and locked under.

    IPv4-mapped IPv6 addresses count as their IPv4 address, other IPv6 addresses per /64
    network; anything that is not an IP address is used as it is.
    """
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

    Usernames are compared case-insensitively; addresses are grouped by `address_key`.
    ``per_minute_per_address`` defaults to ``per_minute``.
    """

    def __init__(
        self,
        per_minute: int = LOGIN_ATTEMPTS_PER_MINUTE,
        *,
        per_minute_per_address: int | None = None,
    ) -> None:
        self._by_user = RateLimiter(per_minute)
        self._by_address = RateLimiter(per_minute_per_address or per_minute)

    def check_ns(self, username: str, client_address: str, now_ns: int) -> int:
        """0 if the attempt may go ahead (and counts it in both buckets), else the wait in ns.

        A refused attempt counts in neither bucket.
        """
        user_key = username.casefold()
        addr_key = address_key(client_address)
        wait = max(
            self._by_user.peek_ns(user_key, now_ns), self._by_address.peek_ns(addr_key, now_ns)
        )
        if wait > 0:
            return wait
        self._by_user.check_ns(user_key, now_ns)
        self._by_address.check_ns(addr_key, now_ns)
        return 0

    def check(self, username: str, client_address: str, now: float) -> float:
        """0.0 if the attempt may go ahead (and counts it in both buckets), else Retry-After s.

        A refused attempt counts in neither bucket.
        """
        user_key = username.casefold()
        addr_key = address_key(client_address)
        wait = max(self._by_user.peek(user_key, now), self._by_address.peek(addr_key, now))
        if wait > 0:
            return wait
        self._by_user.check(user_key, now)
        self._by_address.check(addr_key, now)
        return 0.0


class LockoutBook:
    """The `LoginState` of many keys (CompIDs, addresses) in memory, for edges without a table.

    Keys with no failures and no lock are not kept; at most ``max_keys`` keys are remembered
    (the least recently failed goes first, so a flood of new keys can only shorten the memory
    of old failures, never lock anyone).
    """

    def __init__(self, threshold: int, lock_seconds: int, *, max_keys: int = MAX_KEYS) -> None:
        if threshold < 1 or lock_seconds < 1 or max_keys < 1:
            raise ValueError("threshold, lock_seconds and max_keys must be at least 1")
        self._threshold = threshold
        self._lock_seconds = lock_seconds
        self._max_keys = max_keys
        self._states: OrderedDict[str, LoginState] = OrderedDict()

    def __len__(self) -> int:
        """The number of keys remembered (with failures or a lock)."""
        return len(self._states)

    def state(self, key: str) -> LoginState:
        """The key's current state (`UNLOCKED` when unknown)."""
        return self._states.get(key, UNLOCKED)

    def retry_after_s(self, key: str, now_ns: int) -> int:
        """Whole seconds until the key's lock ends (0: not locked)."""
        return retry_after_s(self.state(key), now_ns)

    def failure(self, key: str, now_ns: int) -> LoginState:
        """Count a failed login of ``key``; returns its new state (locked at the threshold)."""
        state = after_failure(
            self.state(key), now_ns, threshold=self._threshold, lock_seconds=self._lock_seconds
        )
        self._states[key] = state
        self._states.move_to_end(key)
        while len(self._states) > self._max_keys:
            self._states.popitem(last=False)
        return state

    def success(self, key: str) -> bool:
        """A complete login of ``key``: forget its failures; whether there were any."""
        return self._states.pop(key, None) is not None

    def items(self) -> list[tuple[str, LoginState]]:
        """Every key remembered and its state, least recently failed first."""
        return list(self._states.items())

    def load(self, items: list[tuple[str, LoginState]]) -> None:
        """Remember ``items`` (as ``items()`` gave them), keeping the ``max_keys`` newest."""
        for key, state in items[-self._max_keys :]:
            self._states[key] = state
            self._states.move_to_end(key)
