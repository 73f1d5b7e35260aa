"""Day-trade bookkeeping of one account, for pattern-day-trader (PDT) protection.

A **day trade** is a fill that closes shares of a position opened in the same trading day
(buy then sell, or sell short then buy to cover). Closing fills take today's shares first
(last in, first out), so a fill that reduces a position while it still holds shares opened
today is a day trade, and each closing fill counts as at most one day trade. Selling shares
held overnight and buying them back the same day is not a day trade.

Days are trading days as integers ``YYYYMMDD`` (``MarketCalendar.day_number``) and only move
forward per symbol. The state is a plain, JSON-ready dict (:meth:`DayTradeTracker.to_dict`,
:meth:`DayTradeTracker.from_dict`) and has a hash (:meth:`DayTradeTracker.state_hash`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["DayTradeTracker"]

STATE_VERSION = 1


def _check_int(name: str, value: object, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


class DayTradeTracker:
    """Per-account record of shares opened today per symbol and of day trades per day."""

    __slots__ = ("_opened", "_trades")

    def __init__(self) -> None:
        # symbol -> (day, signed shares of the current position opened on that day)
        self._opened: dict[str, tuple[int, int]] = {}
        # day -> symbols of that day's day trades, one entry per day trade, in fill order
        self._trades: dict[int, list[str]] = {}

    def on_fill(self, day: int, symbol: str, side: str, qty: int, position_before: int) -> bool:
        """Record a fill; return True if it is a day trade (it closes shares opened on ``day``).

        ``position_before`` is the account's signed position in ``symbol`` before this fill.
        Raises ``ValueError`` for a bad side or quantity, or for a day before the day of the
        symbol's shares still counted as opened (days only move forward).
        """
        _check_int("day", day, 1)
        _check_int("qty", qty, 1)
        if not isinstance(position_before, int) or isinstance(position_before, bool):
            raise ValueError(f"position_before must be an int, got {position_before!r}")
        if side not in ("buy", "sell"):
            raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
        delta = qty if side == "buy" else -qty
        after = position_before + delta
        opened = self._opened_signed(day, symbol)
        # keep only what agrees with the position given (its side and size)
        if position_before == 0 or (opened > 0) != (position_before > 0):
            opened = 0
        elif abs(opened) > abs(position_before):
            opened = position_before
        if position_before == 0 or (position_before > 0) == (delta > 0):
            day_trade = False
            opened += delta
        else:
            day_trade = opened != 0
            if abs(delta) >= abs(position_before):  # closed out, or flipped: all shares are new
                opened = after
            elif opened > 0:
                opened = max(0, opened - qty)
            else:
                opened = min(0, opened + qty)
        if opened:
            self._opened[symbol] = (day, opened)
        else:
            self._opened.pop(symbol, None)
        if day_trade:
            self._trades.setdefault(day, []).append(symbol)
        return day_trade

    def _opened_signed(self, day: int, symbol: str) -> int:
        entry = self._opened.get(symbol)
        if entry is None:
            return 0
        entry_day, opened = entry
        if day < entry_day:
            raise ValueError(f"{symbol}: day {day} is before the last fill's day {entry_day}")
        return opened if entry_day == day else 0

    def opened_today(self, day: int, symbol: str) -> int:
        """Shares (>= 0) of the current position in ``symbol`` opened on ``day``."""
        entry = self._opened.get(symbol)
        if entry is None or entry[0] != day:
            return 0
        return abs(entry[1])

    def count(self, window_days: Sequence[int]) -> int:
        """Number of day trades made on the given trading days (e.g. the last 5 of them)."""
        return sum(len(self._trades.get(day, ())) for day in set(window_days))

    def day_trades(self, day: int) -> tuple[str, ...]:
        """Symbols of the day trades made on ``day``, one entry per day trade, in fill order."""
        return tuple(self._trades.get(day, ()))

    def prune(self, before_day: int) -> None:
        """Forget day trades and opened shares of days before ``before_day``."""
        self._trades = {d: s for d, s in self._trades.items() if d >= before_day}
        self._opened = {k: v for k, v in self._opened.items() if v[0] >= before_day}

    def to_dict(self) -> dict[str, Any]:
        """The state as a plain dict of str, int and lists (JSON-ready, canonical order)."""
        return {
            "version": STATE_VERSION,
            "opened": {sym: [d, q] for sym, (d, q) in sorted(self._opened.items())},
            "day_trades": {str(d): list(s) for d, s in sorted(self._trades.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DayTradeTracker:
        """Rebuild a tracker from :meth:`to_dict` output; raises ``ValueError`` if malformed."""
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported day-trade state version {data.get('version')!r}")
        tracker = cls()
        try:
            opened, trades = data["opened"], data["day_trades"]
            if not isinstance(opened, Mapping) or not isinstance(trades, Mapping):
                raise ValueError("'opened' and 'day_trades' must be mappings")
            for sym, (d, q) in opened.items():
                if not isinstance(sym, str):
                    raise ValueError(f"symbol must be a str, got {sym!r}")
                _check_int("day", d, 1)
                if not isinstance(q, int) or isinstance(q, bool) or q == 0:
                    raise ValueError(f"opened qty must be a non-zero int, got {q!r}")
                tracker._opened[sym] = (d, q)
            for key, symbols in trades.items():
                if not isinstance(key, str) or not key.isdigit():
                    raise ValueError(f"day keys must be YYYYMMDD strings, got {key!r}")
                day = _check_int("day", int(key), 1)
                tracker._trades[day] = _symbols(symbols)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed day-trade state: {exc}") from exc
        return tracker

    def state_hash(self) -> str:
        """SHA-256 (hex) of the canonical JSON of the state."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DayTradeTracker):
            return NotImplemented
        return self._opened == other._opened and self._trades == other._trades

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"DayTradeTracker({self.to_dict()!r})"


def _symbols(values: Iterable[object]) -> list[str]:
    out: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise ValueError(f"symbol must be a str, got {value!r}")
        out.append(value)
    if not out:
        raise ValueError("a day with no day trades is not stored")
    return out
