"""Brute-force protection of FIX logons: throttle and lockout per CompID and per source address.

Sans-IO (the caller passes the time in). The acceptor asks ``admit`` before it looks at a
Logon's password and reports the outcome with ``failed`` or ``succeeded``; nothing here
touches a session store, so an unauthenticated peer cannot change a member's session state.
Built on the limiter and lockout rules the broker's REST login uses (``core.ratelimit``,
``core.lockout``). The failure counts and locks (per CompID and per address) are kept in a
file when the guard is given one (the acceptor's ``<fix>/logon-lockouts``), rewritten
atomically after every change, so a restart of the venue neither clears a lock nor resets an
attacker's count (as the REST login's live in the users table); a damaged file is set aside
(``.damaged``) and counting starts over. The attempt throttle stays in memory.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Final

import msgspec

from tradingfloor.core.lockout import (
    LockoutBook,
    LoginState,
    LoginThrottle,
    address_key,
    is_locked,
)
from tradingfloor.exchange.config import LogonLimits

__all__ = [
    "ADDRESS_LOCKED",
    "COMP_ID_LOCKED",
    "LOCKOUTS_FILE",
    "LOGON_THROTTLED",
    "LogonGuard",
]

_NS: Final = 1_000_000_000
_log = logging.getLogger(__name__)
LOCKOUTS_VERSION: Final = 1
LOCKOUTS_FILE: Final = "logon-lockouts"
"""The acceptor's file of lockouts, next to its session stores' directory."""


class _Lockouts(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    version: int
    comp_ids: list[tuple[str, int, int]]  # key, failed, locked_until_ns
    addresses: list[tuple[str, int, int]]


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

    def __init__(self, limits: LogonLimits, *, path: Path | None = None) -> None:
        """``path``: the file the lockouts are kept in across restarts (None: memory only)."""
        self._limits = limits
        self._path = path
        self._throttle = LoginThrottle(
            limits.attempts_per_minute, per_minute_per_address=limits.address_attempts_per_minute
        )
        self._comp_ids = LockoutBook(limits.lockout_threshold, limits.lockout_seconds)
        self._addresses = LockoutBook(limits.address_lockout_threshold, limits.lockout_seconds)
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return
        try:
            state = msgspec.msgpack.decode(data, type=_Lockouts)
            if state.version != LOCKOUTS_VERSION:
                raise ValueError(f"version {state.version}")
            comp_ids = [(k, LoginState(f, u)) for k, f, u in state.comp_ids]
            addresses = [(k, LoginState(f, u)) for k, f, u in state.addresses]
        except ValueError as exc:  # msgspec's errors are ValueErrors too
            damaged = path.with_name(path.name + ".damaged")
            os.replace(path, damaged)
            _log.warning(
                "%s is damaged (%s): set aside as %s, counts start over", path, exc, damaged
            )
            return
        self._comp_ids.load(comp_ids)
        self._addresses.load(addresses)

    def _save(self) -> None:
        """Rewrite the file (atomic replace; not fsynced: a crash loses at most the last
        counts, never the file)."""
        if self._path is None:
            return
        state = _Lockouts(
            LOCKOUTS_VERSION,
            [(k, s.failed, s.locked_until_ns) for k, s in self._comp_ids.items()],
            [(k, s.failed, s.locked_until_ns) for k, s in self._addresses.items()],
        )
        tmp = self._path.with_name(self._path.name + ".tmp")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(msgspec.msgpack.encode(state))
            os.replace(tmp, self._path)
        except OSError:
            # the lockouts then hold in memory until the restart; logons go on being checked
            _log.exception("could not write the FIX logon lockouts to %s", self._path)

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
        self._save()
        if is_locked(addr_state, now_ns):
            return f"{ADDRESS_LOCKED}, retry in {self._addresses.retry_after_s(addr, now_ns)} s"
        if is_locked(comp_state, now_ns):
            return f"{COMP_ID_LOCKED}, retry in {self._comp_ids.retry_after_s(comp_id, now_ns)} s"
        return None

    def succeeded(self, comp_id: str, address: str) -> None:
        """An authenticated logon: forget the CompID's and the address's failures."""
        forgot_comp_id = self._comp_ids.success(comp_id)
        if self._addresses.success(address_key(address)) or forgot_comp_id:
            self._save()
