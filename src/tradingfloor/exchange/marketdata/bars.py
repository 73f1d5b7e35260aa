"""OHLCV bars (1m, 5m, 1h, 1d) built from trade events, per symbol and interval.

A bar covers ``[start, start + length)`` where ``start`` is a multiple of the interval's length
in nanoseconds since the Unix epoch (UTC), so daily bars run from midnight to midnight UTC. The
first trade in a bucket opens its bar; the bar closes when a trade of the same symbol falls in a
later bucket, or when ``close_until(ts)`` says time has reached the bar's end. A bucket without
trades has no bar. Closed bars are returned to the caller and kept, the last
``MAX_BAR_HISTORY`` per symbol and interval.

Time comes only from the events (and ``close_until``): it must never go backwards. Prices are
integer ticks and volumes shares; no clock, no randomness.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable
from typing import Final, NamedTuple

import msgspec

from tradingfloor.exchange.checkpoint import CheckpointError
from tradingfloor.exchange.engine.events import Event, Trade
from tradingfloor.exchange.marketdata.checkpoint_state import (
    BarHistoryState,
    BarsState,
    OpenBarState,
)
from tradingfloor.exchange.marketdata.views import MarketDataError

__all__ = ["INTERVALS", "MAX_BAR_HISTORY", "Bar", "BarBuilder", "bucket_start"]

_NS_PER_MINUTE: Final = 60 * 1_000_000_000

# Interval name -> length in nanoseconds, shortest first.
INTERVALS: Final[dict[str, int]] = {
    "1m": _NS_PER_MINUTE,
    "5m": 5 * _NS_PER_MINUTE,
    "1h": 60 * _NS_PER_MINUTE,
    "1d": 24 * 60 * _NS_PER_MINUTE,
}
MAX_BAR_HISTORY: Final = 1440  # closed bars kept per symbol and interval (a day of 1m bars)


class Bar(NamedTuple):
    symbol: str
    interval: str  # a key of INTERVALS
    start: int  # ns since the epoch, a multiple of the interval length
    open: int
    high: int
    low: int
    close: int
    volume: int


def bucket_start(ts: int, length: int) -> int:
    """Start of the interval of ``length`` ns that contains ``ts`` (aligned to the epoch)."""
    return ts - ts % length


class _OpenBar:
    __slots__ = ("close", "high", "low", "open", "start", "volume")

    def __init__(self, start: int, price: int, qty: int) -> None:
        self.start = start
        self.open = self.high = self.low = self.close = price
        self.volume = qty

    def add(self, price: int, qty: int) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.volume += qty

    def freeze(self, symbol: str, interval: str) -> Bar:
        return Bar(
            symbol, interval, self.start, self.open, self.high, self.low, self.close, self.volume
        )


def _check_bar(
    key: tuple[str, str],
    bar: tuple[int, int, int, int, int, int],
    lengths: dict[str, int],
    now: int,
) -> None:
    """``CheckpointError`` unless ``bar`` (start, open, high, low, close, volume) can be one."""
    start, open_, high, low, close, volume = bar
    length = lengths.get(key[1])
    if (
        length is None
        or start % length
        or start > now
        or not 0 < low <= min(open_, close) <= max(open_, close) <= high
        or volume <= 0
    ):
        raise CheckpointError(f"{key} bar {bar} is inconsistent")


class BarBuilder:
    """Open and recent closed bars for every symbol traded. See module docstring."""

    def __init__(self, intervals: Iterable[str] = tuple(INTERVALS)) -> None:
        names = list(dict.fromkeys(intervals))
        unknown = [n for n in names if n not in INTERVALS]
        if unknown or not names:
            raise ValueError(f"intervals must be among {list(INTERVALS)}, got {names}")
        self._intervals = [(n, INTERVALS[n]) for n in INTERVALS if n in names]
        self._order = {n: i for i, (n, _) in enumerate(self._intervals)}
        self._open: dict[tuple[str, str], _OpenBar] = {}
        # symbol -> (end of its shortest open bar, its open bars), set by add_trade when
        # every interval has an open bar containing the trade: until that end, a trade of
        # the symbol only updates those bars (lengths nest, so every bucket of a longer
        # interval is a union of buckets of a shorter one). Derived; dropped on any close.
        self._hot: dict[str, tuple[int, list[_OpenBar]]] = {}
        self._history: dict[tuple[str, str], deque[Bar]] = {}
        self.now = 0  # the latest ts seen (trade or close_until)

    @property
    def intervals(self) -> list[str]:
        return [n for n, _ in self._intervals]

    def _advance(self, ts: int) -> None:
        if ts < self.now:
            raise MarketDataError(f"time went backwards: {ts} < {self.now}")
        self.now = ts

    def _close(self, key: tuple[str, str], bar: _OpenBar) -> Bar:
        closed = bar.freeze(*key)
        history = self._history.get(key)
        if history is None:
            history = self._history[key] = deque(maxlen=MAX_BAR_HISTORY)
        history.append(closed)
        return closed

    def apply(self, event: Event) -> list[Bar]:
        """Feed any engine event; only trades count. Returns the bars the event closed."""
        if isinstance(event, Trade):
            return self.add_trade(event.symbol, event.ts, event.price, event.qty)
        return []

    def add_trade(self, symbol: str, ts: int, price: int, qty: int) -> list[Bar]:
        """Add one trade; returns the symbol's bars it closed, shortest interval first."""
        if price <= 0 or qty <= 0:
            raise MarketDataError(f"trade with price {price} and qty {qty}")
        self._advance(ts)
        hot = self._hot.get(symbol)
        if hot is not None and ts < hot[0]:
            for current in hot[1]:
                if price > current.high:
                    current.high = price
                elif price < current.low:
                    current.low = price
                current.close = price
                current.volume += qty
            return []
        closed: list[Bar] = []
        open_bars = self._open
        for name, length in self._intervals:
            key = (symbol, name)
            start = ts - ts % length  # bucket_start, inlined (hot path)
            bar = open_bars.get(key)
            if bar is not None and bar.start == start:
                if price > bar.high:
                    bar.high = price
                elif price < bar.low:
                    bar.low = price
                bar.close = price
                bar.volume += qty
                continue
            if bar is not None:
                closed.append(self._close(key, bar))
            open_bars[key] = _OpenBar(start, price, qty)
        shortest = self._intervals[0][1]
        self._hot[symbol] = (
            ts - ts % shortest + shortest,
            [open_bars[(symbol, name)] for name, _length in self._intervals],
        )
        return closed

    def close_until(self, ts: int) -> list[Bar]:
        """Time has reached ``ts``: close every open bar that ends at or before it.

        Returns them ordered by end time, then symbol, then interval.
        """
        self._advance(ts)
        self._hot.clear()
        lengths = dict(self._intervals)
        due = [key for key, bar in self._open.items() if bar.start + lengths[key[1]] <= ts]
        due.sort(key=lambda k: (self._open[k].start + lengths[k[1]], k[0], self._order[k[1]]))
        return [self._close(key, self._open.pop(key)) for key in due]

    def current(self, symbol: str, interval: str) -> Bar | None:
        """The open bar of ``symbol`` for ``interval``, if a trade opened one."""
        self._check(interval)
        bar = self._open.get((symbol, interval))
        return None if bar is None else bar.freeze(symbol, interval)

    def history(self, symbol: str, interval: str) -> list[Bar]:
        """Closed bars, oldest first (at most ``MAX_BAR_HISTORY``)."""
        self._check(interval)
        return list(self._history.get((symbol, interval), ()))

    def _check(self, interval: str) -> None:
        if interval not in self._order:
            raise KeyError(f"interval {interval!r} not built (built: {self.intervals})")

    def export_state(self) -> BarsState:
        """The open bars and the history (for ``checkpoint_state``)."""
        open_bars = [
            OpenBarState(s, i, (b.start, b.open, b.high, b.low, b.close, b.volume))
            for (s, i), b in self._open.items()
        ]
        history = [
            BarHistoryState(s, i, [bar[2:] for bar in h]) for (s, i), h in self._history.items()
        ]
        return BarsState(self.intervals, self.now, open_bars, history)

    def restore_state(self, state: BarsState) -> None:
        """Become the builder ``export_state`` described (no bars and ``now`` 0: fresh).

        ``CheckpointError``, and nothing changed, if it was built for other intervals or a bar
        is inconsistent.
        """
        if state.intervals != self.intervals:
            raise CheckpointError(f"bars of {state.intervals}, not {self.intervals}")
        if state.now < 0:
            raise CheckpointError(f"bar time {state.now} < 0")
        lengths = dict(self._intervals)
        open_bars: dict[tuple[str, str], _OpenBar] = {}
        for ob in state.open:
            key = (ob.symbol, ob.interval)
            _check_bar(key, ob.bar, lengths, state.now)
            if key in open_bars:
                raise CheckpointError(f"two open {key} bars")
            bar = open_bars[key] = _OpenBar(ob.bar[0], ob.bar[1], ob.bar[5])
            bar.high, bar.low, bar.close = ob.bar[2:5]
        history: dict[tuple[str, str], deque[Bar]] = {}
        for h in state.history:
            key = (h.symbol, h.interval)
            if key in history or len(h.bars) > MAX_BAR_HISTORY:
                raise CheckpointError(f"{key} history repeated or too long")
            for fields in h.bars:
                _check_bar(key, fields, lengths, state.now)
            history[key] = deque((Bar(*key, *f) for f in h.bars), maxlen=MAX_BAR_HISTORY)
        self._open, self._history, self.now = open_bars, history, state.now
        self._hot.clear()

    def state_hash(self) -> str:
        """SHA-256 of a canonical encoding of the open bars and the history."""
        open_bars = sorted([*k, *b.freeze(*k)[2:]] for k, b in self._open.items())
        history = sorted([*k, [list(b[2:]) for b in h]] for k, h in self._history.items())
        state = [self.now, self.intervals, open_bars, history]
        return hashlib.sha256(msgspec.msgpack.encode(state)).hexdigest()
