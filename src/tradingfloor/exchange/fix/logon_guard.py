"""Brute-force protection of FIX logons: throttle and lockout per CompID and per source address.

Sans-IO (the caller passes the time in). The acceptor asks ``admit`` before it looks at a
Logon's password and reports the outcome with ``failed`` or ``succeeded``; nothing here
touches a session store, so an unauthenticated peer cannot change a member's session state.
Built on the limiter and lockout rules the broker's REST login uses (``core.ratelimit``,
``core.lockout``); the states live in memory and start empty when the venue starts.
"""

from __future__ import annotations

from typing import Final

from tradingfloor.core.lockout import LockoutBook, LoginThrottle, address_key, is_locked
from tradingfloor.exchange.config import LogonLimits

__all__ = [
    "ADDRESS_LOCKED",
    "COMP_ID_LOCKED",
    "LOGON_THROTTLED",
    "LogonGuard",
]

_NS: Final = 1_000_000_000
COMP_ID_LOCKED: Final = "logon rejected: CompID locked out after failed logons"
"""Text (followed by ``, retry in N s``) of the Logout refusing a locked-out CompID."""
ADDRESS_LOCKED: Final = "logon rejected: source address locked out after failed logons"
"""Text (followed by ``, retry in N s``) of the Logout refusing a locked-out address."""
LOGON_THROTTLED: Final = "logon rejected: too many logon attempts"
"""Text (followed by ``, retry in N s``) of the Logout refusing a throttled attempt."""


class LogonGuard:
    """Decides whether a logon attempt may be checked at all, and counts its outcome.

    Order: a locked-out address, then a locked-out CompID, then the attempt throttle (per
    CompID and per address; a refused attempt counts in neither). Only an admitted attempt's
    password is checked; a failure counts towards both lockouts, and the failure that reaches
    a threshold is answered with the lockout text. A success clears both counts.
    """

    def __init__(self, limits: LogonLimits) -> None:
        self._limits = limits
        self._throttle = LoginThrottle(
            limits.attempts_per_minute, per_minute_per_address=limits.address_attempts_per_minute
        )
        self._comp_ids = LockoutBook(limits.lockout_threshold, limits.lockout_seconds)
        self._addresses = LockoutBook(limits.address_lockout_threshold, limits.lockout_seconds)

    @property
    def limits(self) -> LogonLimits:
        return self._limits

    def admit(self, comp_id: str, address: str, now_ns: int) -> str | None:
        """None if the attempt may go ahead (it is counted), else the refusal's Text."""
        addr = address_key(address)
        wait_s = self._addresses.retry_after_s(addr, now_ns)
        if wait_s:
            return f"{ADDRESS_LOCKED}, retry in {wait_s} s"
        wait_s = self._comp_ids.retry_after_s(comp_id, now_ns)
        if wait_s:
            return f"{COMP_ID_LOCKED}, retry in {wait_s} s"
        wait_ns = self._throttle.check_ns(comp_id, addr, now_ns)
        if wait_ns:
            return f"{LOGON_THROTTLED}, retry in {-(-wait_ns // _NS)} s"
        return None

    def failed(self, comp_id: str, address: str, now_ns: int) -> str | None:
        """Count a failed logon; the lockout Text if this failure locked the CompID or address."""
        addr = address_key(address)
        addr_state = self._addresses.failure(addr, now_ns)
        comp_state = self._comp_ids.failure(comp_id, now_ns)
        if is_locked(addr_state, now_ns):
            return f"{ADDRESS_LOCKED}, retry in {self._addresses.retry_after_s(addr, now_ns)} s"
        if is_locked(comp_state, now_ns):
            return f"{COMP_ID_LOCKED}, retry in {self._comp_ids.retry_after_s(comp_id, now_ns)} s"
        return None

    def succeeded(self, comp_id: str, address: str) -> None:
        """An authenticated logon: forget the CompID's and the address's failures."""
        self._comp_ids.success(comp_id)
        self._addresses.success(address_key(address))
