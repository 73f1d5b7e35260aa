"""Configuration of a running venue: listed instruments, FIX members and their credentials.

Loaded from a TOML file (``examples/venue.toml`` is the default and documents every key) and
checked on load; a bad file raises ``ConfigError`` naming the key, before anything starts.
"""

from __future__ import annotations

import hashlib
import hmac
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

import msgspec

from tradingfloor.exchange.engine.commands import AddInstrument

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ConfigError",
    "LogonLimits",
    "MemberConfig",
    "VenueConfig",
    "hash_password",
    "load_config",
]

DEFAULT_CONFIG_PATH: Final = Path(__file__).resolve().parent / "default_venue.toml"
MAX_THROTTLE: Final = 100_000
_PBKDF2_ROUNDS: Final = 100_000


class ConfigError(ValueError):
    """The venue configuration is invalid; the message names the offending key."""


def hash_password(password: str, salt: str) -> str:
    """PBKDF2-SHA256 of a member password, hex: what a config file may store instead of it."""
    raw = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), _PBKDF2_ROUNDS)
    return raw.hex()


@dataclass(frozen=True, slots=True)
class MemberConfig:
    """One FIX member session: who may log on, as which engine member, with which limits."""

    comp_id: str  # the member's SenderCompID (the gateway's TargetCompID for it)
    member: str  # member id in the engine (owner of orders, scope of mass cancel)
    password: str = ""  # plain text (development), or ...
    password_pbkdf2: str = ""  # ... hash_password(password, salt=comp_id), hex
    cancel_on_disconnect: bool = True
    throttle_per_second: int = 1000  # inbound application messages per rolling second

    def check_password(self, password: str) -> bool:
        """Constant-time password check against whichever form the config holds."""
        if self.password_pbkdf2:
            given = hash_password(password, self.comp_id)
            return hmac.compare_digest(given, self.password_pbkdf2)
        return hmac.compare_digest(password.encode(), self.password.encode())


@dataclass(frozen=True, slots=True)
class LogonLimits:
    """Brute-force protection of FIX logons (``[fix_logon]`` in the venue TOML).

    Attempts are throttled per claimed CompID and per source address; consecutive failed
    logons lock the CompID (and, at a higher count, the address) out for ``lockout_seconds``.
    """

    attempts_per_minute: int = 10  # logon attempts per CompID per minute (bursts up to that)
    address_attempts_per_minute: int = 60  # ... and per source address (IPv6: per /64)
    lockout_threshold: int = 5  # consecutive failures that lock the CompID ...
    address_lockout_threshold: int = 20  # ... and those that lock the source address
    lockout_seconds: int = 900  # for this long


@dataclass(frozen=True, slots=True)
class VenueConfig:
    """Everything ``tradingfloor serve`` needs besides ports and the data directory."""

    name: str = "TFEX"  # the gateway's SenderCompID
    instruments: tuple[AddInstrument, ...] = ()
    members: tuple[MemberConfig, ...] = ()
    heartbeat_seconds: int = 30  # accepted HeartBtInt range is 1..heartbeat_max_seconds
    heartbeat_max_seconds: int = 300
    logon: LogonLimits = LogonLimits()
    _by_comp_id: Mapping[str, MemberConfig] = field(default_factory=dict, repr=False)

    def member(self, comp_id: str) -> MemberConfig | None:
        return self._by_comp_id.get(comp_id)

    def tick_sizes(self) -> dict[str, Decimal]:
        return {i.symbol: Decimal(i.tick_size) for i in self.instruments}


def _str(table: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}.{key}: expected a non-empty string, got {value!r}")
    return value


def _member(raw: Any, i: int) -> MemberConfig:
    where = f"members[{i}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table")
    unknown = set(raw) - {
        "comp_id",
        "member",
        "password",
        "password_pbkdf2",
        "cancel_on_disconnect",
        "throttle_per_second",
    }
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    comp_id = _str(raw, "comp_id", where)
    password = raw.get("password", "")
    hashed = raw.get("password_pbkdf2", "")
    if not isinstance(password, str) or not isinstance(hashed, str) or not (password or hashed):
        raise ConfigError(f"{where}: set password or password_pbkdf2")
    cod = raw.get("cancel_on_disconnect", True)
    if not isinstance(cod, bool):
        raise ConfigError(f"{where}.cancel_on_disconnect: expected true or false")
    throttle = raw.get("throttle_per_second", 1000)
    if (
        not isinstance(throttle, int)
        or isinstance(throttle, bool)
        or not 1 <= throttle <= MAX_THROTTLE
    ):
        raise ConfigError(f"{where}.throttle_per_second: expected 1..{MAX_THROTTLE}")
    return MemberConfig(
        comp_id=comp_id,
        member=_str(raw, "member", where, comp_id),
        password=password,
        password_pbkdf2=hashed,
        cancel_on_disconnect=cod,
        throttle_per_second=throttle,
    )


def _instrument(raw: Any, i: int) -> AddInstrument:
    where = f"instruments[{i}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table")
    try:
        inst = msgspec.convert({"type": "add_instrument", **raw}, AddInstrument)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    try:
        tick = Decimal(inst.tick_size)
    except InvalidOperation:
        raise ConfigError(f"{where}.tick_size: not a decimal: {inst.tick_size!r}") from None
    if not tick.is_finite() or tick <= 0:
        raise ConfigError(f"{where}.tick_size: must be positive")
    if inst.lot_size < 1:
        raise ConfigError(f"{where}.lot_size: must be at least 1")
    return inst


_LOGON_KEYS: Final = {
    "attempts_per_minute": 100_000,
    "address_attempts_per_minute": 100_000,
    "lockout_threshold": 1_000,
    "address_lockout_threshold": 100_000,
    "lockout_seconds": 86_400 * 365,
}


def _logon_limits(raw: Any) -> LogonLimits:
    if not isinstance(raw, dict):
        raise ConfigError("fix_logon: expected a table")
    unknown = set(raw) - set(_LOGON_KEYS)
    if unknown:
        raise ConfigError(f"fix_logon: unknown keys {sorted(unknown)}")
    for key, value in raw.items():
        top = _LOGON_KEYS[key]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= top:
            raise ConfigError(f"fix_logon.{key}: expected 1..{top}")
    return LogonLimits(**raw)


def parse_config(data: Mapping[str, Any]) -> VenueConfig:
    """Build a VenueConfig from a parsed TOML document."""
    unknown = set(data) - {"venue", "instruments", "members", "fix_logon"}
    if unknown:
        raise ConfigError(f"unknown top-level keys {sorted(unknown)}")
    venue = data.get("venue", {})
    if not isinstance(venue, dict):
        raise ConfigError("venue: expected a table")
    name = _str(venue, "name", "venue", "TFEX")
    hb = venue.get("heartbeat_seconds", 30)
    hb_max = venue.get("heartbeat_max_seconds", 300)
    if not isinstance(hb, int) or not isinstance(hb_max, int) or not 1 <= hb <= hb_max:
        raise ConfigError("venue.heartbeat_seconds: expected 1..heartbeat_max_seconds")
    instruments = tuple(_instrument(r, i) for i, r in enumerate(data.get("instruments", [])))
    members = tuple(_member(r, i) for i, r in enumerate(data.get("members", [])))
    symbols = [i.symbol for i in instruments]
    if len(set(symbols)) != len(symbols):
        raise ConfigError("instruments: a symbol is listed twice")
    by_comp = {m.comp_id: m for m in members}
    if len(by_comp) != len(members):
        raise ConfigError("members: a comp_id is listed twice")
    if name in by_comp:
        raise ConfigError("members: a member may not use the venue's own name as comp_id")
    return VenueConfig(
        name=name,
        instruments=instruments,
        members=members,
        heartbeat_seconds=hb,
        heartbeat_max_seconds=hb_max,
        logon=_logon_limits(data.get("fix_logon", {})),
        _by_comp_id=by_comp,
    )


def load_config(path: str | Path | None = None) -> VenueConfig:
    """Read and check a venue TOML file (the packaged default when ``path`` is None)."""
    p = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: {exc}") from None
    return parse_config(data)
