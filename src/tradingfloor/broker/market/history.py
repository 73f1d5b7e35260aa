"""Market-data history for the broker's APIs: trades, quotes and bars per symbol, from venue events.

``MarketHistory.on_events(events)`` takes every event of one engine, once per acknowledged
command and in ``seq`` order (a venue listener: ``lambda _cmd, events: h.on_events(events)``;
replayed events whose ``seq`` was applied already are ignored). It keeps a ``MarketDataBook``
for the top of book and, per listed symbol, bounded histories (oldest entries fall off):

- trades (``MAX_TRADES_PER_SYMBOL``, 20,000): id, ts, price, size, taker side and the trading phase;
- quotes (``MAX_QUOTES_PER_SYMBOL``, 20,000): one entry each time a command changes the best
  bid, best ask or their sizes (an empty side is price 0, size 0), numbered 1, 2, ... per
  symbol;
- 1-minute bars (``MAX_MINUTE_BARS_PER_SYMBOL``) and daily bars by UTC day
  (``MAX_DAILY_BARS_PER_SYMBOL``): open/high/low/close, volume, trade count and the notional
  (sum of price x size) from which the VWAP is the exact fraction ``notional / volume``.
  A bucket without trades has no bar; the newest bar of a symbol may still be in progress.

Queries take a time range ``[start_ns, end_ns)``, a limit, a direction and an exclusive
pagination key (``after``: the trade id, the quote number or the bar start of the last item
of the previous page). Longer bars (n minutes, n hours, n days) are aggregated on the fly from
the 1-minute (or daily) bars in buckets aligned to the Unix epoch (UTC).

Listeners (``add_listener``) get the updates each command (or ``close_until``) produced, once,
as a list: new trades, changed quotes, and bars. A minute bar is published as ``bar`` once
time has passed its end: time is the largest ``ts`` of the events seen, or what the caller
gives ``close_until`` (the stream adapter feeds it the wall clock so that bars close in a quiet
market). A trade that lands in a minute already published (possible only after a
``close_until`` ahead of the venue's clock) publishes that minute's bar again as
``updated_bar``; each published minute bar is followed by its day's bar as ``daily_bar``.
Listeners run on the caller's thread inside ``on_events`` and must neither block nor raise;
one that raises is removed.

The history is a checkpointed projection (``checkpoint``/``restore_checkpoint``, part
``broker.history``; the format and its checks are in ``history_state.py``).

No clock, no randomness, no float: prices are integer ticks and sizes shares; ``price`` and
``vwap`` render them as ``Decimal`` at the edge.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from itertools import islice
from typing import Final, Generic, Literal, NamedTuple, TypeVar

import msgspec

from tradingfloor.broker.market.history_state import (
    HISTORY_CHECKPOINT,
    HISTORY_STATE_VERSION,
    HistoryState,
    SymbolState,
    decode_history,
    encode_history,
)
from tradingfloor.broker.market.records import (
    NS_PER_DAY,
    NS_PER_MINUTE,
    BarRecord,
    QuoteRecord,
    TradeRecord,
)
from tradingfloor.core.units import from_ticks
from tradingfloor.exchange.checkpoint import CheckpointError
from tradingfloor.exchange.engine.events import Event, InstrumentAdded, LevelChanged, Trade
from tradingfloor.exchange.marketdata.views import L1, MarketDataBook, MarketDataError

__all__ = [
    "MAX_DAILY_BARS_PER_SYMBOL",
    "MAX_LISTENERS",
    "MAX_MINUTE_BARS_PER_SYMBOL",
    "MAX_QUOTES_PER_SYMBOL",
    "MAX_TRADES_PER_SYMBOL",
    "NS_PER_DAY",
    "NS_PER_MINUTE",
    "VWAP_EXTRA_DIGITS",
    "BarKind",
    "BarRecord",
    "BarUpdate",
    "Listener",
    "MarketHistory",
    "MarketUpdate",
    "QuoteRecord",
    "QuoteUpdate",
    "TradeRecord",
    "TradeUpdate",
]

_log = logging.getLogger(__name__)

# Trades and quotes kept per symbol. Each record costs about 250 bytes of Python objects, so
# these bound the history's memory (about 50 MB for five symbols at the cap); the demo at
# --speed 10 fills them within its first hour, after which its memory stays flat (bench soak).
MAX_TRADES_PER_SYMBOL: Final = 20_000
MAX_QUOTES_PER_SYMBOL: Final = 20_000
MAX_MINUTE_BARS_PER_SYMBOL: Final = 7 * 24 * 60  # a week of minutes with trades
MAX_DAILY_BARS_PER_SYMBOL: Final = 1_000
MAX_LISTENERS: Final = 64
VWAP_EXTRA_DIGITS: Final = 4  # the VWAP is rendered with 4 more decimals than the tick size

_NO_QUOTE: Final = (0, 0, 0, 0)
_UNBOUNDED: Final = 1 << 126  # later than any ts


def _merge(start: int, bars: Sequence[BarRecord]) -> BarRecord:
    """One bar starting at ``start`` from consecutive bars, oldest first."""
    return BarRecord(
        start,
        bars[0].open,
        max(b.high for b in bars),
        min(b.low for b in bars),
        bars[-1].close,
        sum(b.volume for b in bars),
        sum(b.trade_count for b in bars),
        sum(b.notional for b in bars),
    )


BarKind = Literal["bar", "updated_bar", "daily_bar"]


class TradeUpdate(NamedTuple):
    symbol: str
    trade: TradeRecord


class QuoteUpdate(NamedTuple):
    symbol: str
    quote: QuoteRecord


class BarUpdate(NamedTuple):
    symbol: str
    kind: BarKind  # a completed minute, a completed minute again after a late trade, a day
    bar: BarRecord


MarketUpdate = TradeUpdate | QuoteUpdate | BarUpdate
Listener = Callable[[Sequence[MarketUpdate]], None]
"""Gets each batch of updates; runs inside the publisher: must neither block nor raise."""

_T = TypeVar("_T", TradeRecord, QuoteRecord, BarRecord)


def _ts(record: TradeRecord | QuoteRecord | BarRecord) -> int:
    return record[1] if not isinstance(record, BarRecord) else record.start


def _key(record: TradeRecord | QuoteRecord | BarRecord) -> int:
    return record[0]


_RING_SLACK: Final = 16
"""A ring's backing list holds at most ``cap + cap // _RING_SLACK`` records: the records that
fell off are dropped in one slice once there are that many (amortised O(_RING_SLACK) pointer
moves per append)."""


class _Ring(Generic[_T]):
    """The last ``cap`` records appended, in a list with a moving start (compacted lazily, so
    that at most ``cap // _RING_SLACK`` records that fell off are still held).

    Indices are absolute positions in the backing list, valid until the next ``append``.
    """

    __slots__ = ("_cap", "_items", "_lo")

    def __init__(self, cap: int) -> None:
        if cap < 1:
            raise ValueError(f"capacity {cap} < 1")
        self._cap = cap
        self._items: list[_T] = []
        self._lo = 0

    def __len__(self) -> int:
        return len(self._items) - self._lo

    def __iter__(self) -> Iterator[_T]:
        return islice(self._items, self._lo, None)

    @property
    def lo(self) -> int:
        return self._lo

    @property
    def hi(self) -> int:
        return len(self._items)

    def append(self, item: _T) -> None:
        items = self._items
        items.append(item)
        if len(items) - self._lo > self._cap:
            self._lo += 1
            if self._lo > self._cap // _RING_SLACK:
                del items[: self._lo]
                self._lo = 0

    def load(self, items: Sequence[_T]) -> None:
        """Hold the newest ``cap`` of ``items`` (oldest first) instead of what it held."""
        self._items = list(items[-self._cap :])
        self._lo = 0

    def last(self) -> _T | None:
        return self._items[-1] if len(self._items) > self._lo else None

    def before_last(self) -> _T | None:
        return self._items[-2] if len(self._items) - self._lo >= 2 else None

    def replace_last(self, item: _T) -> None:
        self._items[-1] = item

    def at(self, i: int) -> _T:
        return self._items[i]

    def slice(self, lo: int, hi: int) -> list[_T]:
        return self._items[lo:hi]

    def bisect_left(self, value: int, key: Callable[[_T], int]) -> int:
        return bisect.bisect_left(self._items, value, lo=self._lo, key=key)

    def bisect_right(self, value: int, key: Callable[[_T], int]) -> int:
        return bisect.bisect_right(self._items, value, lo=self._lo, key=key)


def _select(
    ring: _Ring[_T],
    start_ns: int | None,
    end_ns: int | None,
    limit: int,
    ascending: bool,
    after: int | None,
) -> list[_T]:
    """Records with ``start_ns <= ts < end_ns`` beyond ``after`` (a key), at most ``limit``."""
    lo = ring.lo if start_ns is None else ring.bisect_left(start_ns, _ts)
    hi = ring.hi if end_ns is None else ring.bisect_left(end_ns, _ts)
    if after is not None:
        if ascending:
            lo = max(lo, ring.bisect_right(after, _key))
        else:
            hi = min(hi, ring.bisect_left(after, _key))
    if hi <= lo or limit <= 0:
        return []
    if ascending:
        return ring.slice(lo, min(hi, lo + limit))
    out = ring.slice(max(lo, hi - limit), hi)
    out.reverse()
    return out


def _ceil(ts: int, length: int) -> int:
    return -(-ts // length) * length


def _aggregate(
    ring: _Ring[BarRecord],
    length: int,
    start_ns: int | None,
    end_ns: int | None,
    limit: int,
    ascending: bool,
    after: int | None,
) -> list[BarRecord]:
    """Bars of ``length`` ns (a multiple of the ring's) whose start is in the range."""
    # A bucket b holds the bars b <= start < b + length, so "b >= x" for an aligned x is
    # "start >= x" for its bars, and "b < y" is "start < y".
    first = None if start_ns is None else _ceil(start_ns, length)
    stop = None if end_ns is None else _ceil(end_ns, length)
    if after is not None:
        if ascending:
            floor = after - after % length + length
            first = floor if first is None else max(first, floor)
        else:
            ceil = _ceil(after, length)
            stop = ceil if stop is None else min(stop, ceil)
    lo = ring.lo if first is None else ring.bisect_left(first, _ts)
    hi = ring.hi if stop is None else ring.bisect_left(stop, _ts)
    out: list[BarRecord] = []
    if hi <= lo or limit <= 0:
        return out
    group: list[BarRecord] = []
    bucket = -1
    indices = range(lo, hi) if ascending else range(hi - 1, lo - 1, -1)
    for i in indices:
        bar = ring.at(i)
        b = bar.start - bar.start % length
        if b != bucket and group:
            out.append(_merge(bucket, group if ascending else group[::-1]))
            if len(out) >= limit:
                return out
            group = []
        bucket = b
        group.append(bar)
    if group:
        out.append(_merge(bucket, group if ascending else group[::-1]))
    return out


class _Symbol:
    """Everything kept for one symbol."""

    __slots__ = (
        "days",
        "last_quote",
        "minutes",
        "published_minute",
        "quote_key",
        "quotes",
        "tick",
        "trades",
    )

    def __init__(self, tick: Decimal, caps: tuple[int, int, int, int]) -> None:
        self.tick = tick
        self.trades: _Ring[TradeRecord] = _Ring(caps[0])
        self.quotes: _Ring[QuoteRecord] = _Ring(caps[1])
        self.minutes: _Ring[BarRecord] = _Ring(caps[2])
        self.days: _Ring[BarRecord] = _Ring(caps[3])
        self.last_quote: tuple[int, int, int, int] = _NO_QUOTE
        self.quote_key = 0
        self.published_minute = -1  # start of the newest minute bar published as complete


def _add_to(ring: _Ring[BarRecord], start: int, price: int, size: int) -> BarRecord:
    last = ring.last()
    if last is not None and last.start == start:
        bar = last.add(price, size)
        ring.replace_last(bar)
        return bar
    if last is not None and last.start > start:
        raise MarketDataError(f"trade at {start} after a bar starting {last.start}")
    bar = BarRecord.first(start, price, size)
    ring.append(bar)
    return bar


class MarketHistory:
    """Bounded trade, quote and bar histories of every symbol of one engine. See module doc."""

    def __init__(
        self,
        *,
        max_trades: int = MAX_TRADES_PER_SYMBOL,
        max_quotes: int = MAX_QUOTES_PER_SYMBOL,
        max_minute_bars: int = MAX_MINUTE_BARS_PER_SYMBOL,
        max_daily_bars: int = MAX_DAILY_BARS_PER_SYMBOL,
    ) -> None:
        caps = (max_trades, max_quotes, max_minute_bars, max_daily_bars)
        if min(caps) < 1:
            raise ValueError(f"history bounds must be >= 1, got {caps}")
        self._caps = caps
        self._book = MarketDataBook()
        self._symbols: dict[str, _Symbol] = {}
        self._listeners: list[Listener] = []
        self._now = 0  # the latest time seen (event ts or close_until)
        self._open: dict[str, int] = {}  # symbol -> end of its unpublished minute bar
        self._next_close = _UNBOUNDED  # min(self._open.values())
        self.listener_errors = 0

    # ------------------------------------------------------------------ feeding

    @property
    def book(self) -> MarketDataBook:
        """The L1/L2/L3 book this history keeps (read it; never apply events to it)."""
        return self._book

    @property
    def now(self) -> int:
        """The latest time seen: the largest event ts, or a later ``close_until``."""
        return self._now

    def on_events(self, events: Sequence[Event]) -> None:
        """Project the events of one command; then publish what it changed."""
        book = self._book
        updates: list[MarketUpdate] = []
        touched: dict[str, int] = {}  # symbols whose levels changed -> ts
        for ev in events:
            if not book.apply(ev):
                continue  # replayed
            if ev.ts > self._now:
                self._advance(ev.ts, updates)
            if isinstance(ev, LevelChanged):
                touched[ev.symbol] = ev.ts
            elif isinstance(ev, Trade):
                self._on_trade(ev, updates)
            elif isinstance(ev, InstrumentAdded):
                self._symbols[ev.symbol] = _Symbol(book.tick_size(ev.symbol), self._caps)
        for symbol, ts in touched.items():
            self._on_quote(symbol, ts, updates)
        if updates:
            self._publish(updates)

    def close_until(self, ts: int) -> None:
        """Time has reached ``ts`` (e.g. the wall clock): publish the minute bars it completes.

        Only publication depends on this; the histories are the same whenever it is called.
        """
        if ts <= self._now:
            return
        updates: list[MarketUpdate] = []
        self._advance(ts, updates)
        if updates:
            self._publish(updates)

    def _advance(self, ts: int, updates: list[MarketUpdate]) -> None:
        self._now = ts
        if ts < self._next_close:
            return
        still_open: dict[str, int] = {}
        for symbol, end in self._open.items():
            if end > ts:
                still_open[symbol] = end
                continue
            sym = self._symbols[symbol]
            bar = sym.minutes.last()
            day = sym.days.last()
            if bar is None or day is None:
                raise MarketDataError(f"{symbol}: an open minute bar that is not kept")
            sym.published_minute = bar.start
            updates.append(BarUpdate(symbol, "bar", bar))
            updates.append(BarUpdate(symbol, "daily_bar", day))
        self._open = still_open
        self._next_close = min(still_open.values(), default=_UNBOUNDED)

    def _on_trade(self, ev: Trade, updates: list[MarketUpdate]) -> None:
        symbol, ts, price, size = ev.symbol, ev.ts, ev.price, ev.qty
        sym = self._symbols.get(symbol)
        if sym is None:
            raise MarketDataError(f"trade for unlisted symbol {symbol!r}")
        record = TradeRecord(ev.trade_id, ts, price, size, ev.aggressor, self._book.phase(symbol))
        sym.trades.append(record)
        updates.append(TradeUpdate(symbol, record))
        minute = ts - ts % NS_PER_MINUTE
        bar = _add_to(sym.minutes, minute, price, size)
        day = _add_to(sym.days, ts - ts % NS_PER_DAY, price, size)
        end = minute + NS_PER_MINUTE
        if end > self._now:
            self._open[symbol] = end
            self._next_close = min(self._next_close, end)
            return
        # A late trade: its minute is complete already (close_until ran ahead of the venue).
        kind: BarKind = "updated_bar" if minute <= sym.published_minute else "bar"
        sym.published_minute = max(sym.published_minute, minute)
        updates.append(BarUpdate(symbol, kind, bar))
        updates.append(BarUpdate(symbol, "daily_bar", day))

    def _on_quote(self, symbol: str, ts: int, updates: list[MarketUpdate]) -> None:
        sym = self._symbols.get(symbol)
        if sym is None:
            raise MarketDataError(f"level change for unlisted symbol {symbol!r}")
        l1 = self._book.l1(symbol)
        top = (l1.bid, l1.bid_size, l1.ask, l1.ask_size)
        if top == sym.last_quote:
            return
        sym.last_quote = top
        sym.quote_key += 1
        record = QuoteRecord(sym.quote_key, ts, *top)
        sym.quotes.append(record)
        updates.append(QuoteUpdate(symbol, record))

    # ------------------------------------------------------------------ listeners

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Register ``listener`` for every later batch of updates; returns its remover."""
        if len(self._listeners) >= MAX_LISTENERS:
            raise ValueError(f"more than {MAX_LISTENERS} listeners")
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def _publish(self, updates: list[MarketUpdate]) -> None:
        for listener in list(self._listeners):
            try:
                listener(updates)
            except Exception:
                # A failing listener must not stop the projection or the other listeners.
                self.listener_errors += 1
                _log.exception("market history listener %r failed; removed", listener)
                if listener in self._listeners:
                    self._listeners.remove(listener)

    # ------------------------------------------------------------------ views

    def symbols(self) -> list[str]:
        """Listed symbols in listing order."""
        return list(self._symbols)

    def has_symbol(self, symbol: str) -> bool:
        return symbol in self._symbols

    def tick_size(self, symbol: str) -> Decimal:
        return self._get(symbol).tick

    def price(self, symbol: str, ticks: int) -> Decimal:
        """``ticks`` of ``symbol`` as a Decimal price (0 stays 0 at the tick's exponent)."""
        return from_ticks(ticks, self._get(symbol).tick)

    def vwap(self, symbol: str, bar: BarRecord) -> Decimal:
        """The bar's VWAP as a price, rounded half-even to ``VWAP_EXTRA_DIGITS`` more decimals
        than the tick size."""
        tick = self._get(symbol).tick
        exponent = min(int(tick.as_tuple().exponent), 0) - VWAP_EXTRA_DIGITS
        with localcontext() as ctx:
            ctx.prec = 60
            value = Decimal(bar.notional) * tick / Decimal(bar.volume)
            return value.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_EVEN)

    def l1(self, symbol: str) -> L1:
        self._get(symbol)
        return self._book.l1(symbol)

    def _get(self, symbol: str) -> _Symbol:
        sym = self._symbols.get(symbol)
        if sym is None:
            raise KeyError(symbol)
        return sym

    def trades(
        self,
        symbol: str,
        start_ns: int | None = None,
        end_ns: int | None = None,
        *,
        limit: int = MAX_TRADES_PER_SYMBOL,
        ascending: bool = True,
        after: int | None = None,
    ) -> list[TradeRecord]:
        """Trades with ``start_ns <= ts < end_ns`` (None: unbounded), by time then id.

        ``after`` is a trade id: only trades after it (before it when descending).
        Raises ``KeyError`` for an unlisted symbol.
        """
        return _select(self._get(symbol).trades, start_ns, end_ns, limit, ascending, after)

    def quotes(
        self,
        symbol: str,
        start_ns: int | None = None,
        end_ns: int | None = None,
        *,
        limit: int = MAX_QUOTES_PER_SYMBOL,
        ascending: bool = True,
        after: int | None = None,
    ) -> list[QuoteRecord]:
        """Quotes in the range, by time then number; ``after`` is a quote number (``key``)."""
        return _select(self._get(symbol).quotes, start_ns, end_ns, limit, ascending, after)

    def bars(
        self,
        symbol: str,
        length_ns: int = NS_PER_MINUTE,
        start_ns: int | None = None,
        end_ns: int | None = None,
        *,
        limit: int = MAX_MINUTE_BARS_PER_SYMBOL,
        ascending: bool = True,
        after: int | None = None,
    ) -> list[BarRecord]:
        """Bars of ``length_ns`` whose start is in the range; ``after`` is a bar start.

        ``length_ns`` is a whole number of days (built from the daily bars) or else of
        minutes (from the 1-minute bars); buckets are aligned to the Unix epoch (UTC).
        """
        sym = self._get(symbol)
        if length_ns <= 0 or length_ns % NS_PER_MINUTE:
            raise ValueError(f"bar length {length_ns} ns is not a whole number of minutes")
        if length_ns % NS_PER_DAY == 0:
            ring, base = sym.days, NS_PER_DAY
        else:
            ring, base = sym.minutes, NS_PER_MINUTE
        if length_ns == base:
            return _select(ring, start_ns, end_ns, limit, ascending, after)
        return _aggregate(ring, length_ns, start_ns, end_ns, limit, ascending, after)

    def latest_trade(self, symbol: str) -> TradeRecord | None:
        return self._get(symbol).trades.last()

    def latest_quote(self, symbol: str) -> QuoteRecord | None:
        return self._get(symbol).quotes.last()

    def latest_bar(self, symbol: str) -> BarRecord | None:
        """The newest 1-minute bar (possibly in progress)."""
        return self._get(symbol).minutes.last()

    def daily_bar(self, symbol: str) -> BarRecord | None:
        """The newest daily bar (possibly in progress)."""
        return self._get(symbol).days.last()

    def previous_daily_bar(self, symbol: str) -> BarRecord | None:
        """The daily bar before the newest one."""
        return self._get(symbol).days.before_last()

    # ------------------------------------------------------------------ checkpoint

    @property
    def checkpoint_name(self) -> str:
        return HISTORY_CHECKPOINT

    def checkpoint(self) -> bytes:
        """The history's state after the last command applied (``history_state.py``)."""
        return encode_history(
            HistoryState(
                HISTORY_STATE_VERSION,
                self._book.export_state(),
                self._now,
                list(self._open.items()),
                [
                    SymbolState(
                        symbol,
                        list(sym.trades),
                        list(sym.quotes),
                        list(sym.minutes),
                        list(sym.days),
                        sym.last_quote,
                        sym.quote_key,
                        sym.published_minute,
                    )
                    for symbol, sym in self._symbols.items()
                ],
            )
        )

    def restore_checkpoint(self, data: bytes) -> None:
        """Become the history ``checkpoint`` saved; ``CheckpointError``, and nothing changed,
        if the bytes are not usable or this history has applied events already."""
        if self._symbols or self._book.last_seq or self._now:
            raise CheckpointError(f"{HISTORY_CHECKPOINT}: restore into a history in use")
        state = decode_history(data)
        self._book.restore_state(state.book)  # checks the book; changes nothing on failure
        symbols: dict[str, _Symbol] = {}
        for part in state.symbols:
            sym = _Symbol(self._book.tick_size(part.symbol), self._caps)
            sym.trades.load(part.trades)
            sym.quotes.load(part.quotes)
            sym.minutes.load(part.minutes)
            sym.days.load(part.days)
            sym.last_quote = part.last_quote
            sym.quote_key = part.quote_key
            sym.published_minute = part.published_minute
            symbols[part.symbol] = sym
        self._symbols = symbols
        self._now = state.now
        self._open = dict(state.unpublished)
        self._next_close = min(self._open.values(), default=_UNBOUNDED)

    def state_hash(self) -> str:
        """SHA-256 of the histories and the book (not of what was published when)."""
        state = [
            self._book.state_hash(),
            [
                [
                    symbol,
                    str(sym.tick),
                    [list(t) for t in sym.trades],
                    [list(q) for q in sym.quotes],
                    [list(b) for b in sym.minutes],
                    [list(b) for b in sym.days],
                ]
                for symbol, sym in self._symbols.items()
            ],
        ]
        return hashlib.sha256(msgspec.msgpack.encode(state)).hexdigest()
