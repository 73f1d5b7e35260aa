"""The checkpoint format of the broker's market history (part ``broker.history``): what
``MarketHistory.checkpoint`` saves at a venue snapshot's seq and the checks its bytes must pass
before ``MarketHistory.restore_checkpoint`` changes anything (``exchange.checkpoint``).

One msgpack value: a versioned struct whose first field is ``version`` (another version is
refused by number before its layout is trusted), holding

- the history's ``MarketDataBook`` (``exchange.marketdata.checkpoint_state.BookState``: it
  gives the quotes' best bid and ask, the trades' phase and each symbol's tick size);
- ``now`` and the symbols whose newest minute bar is not published yet (with the bar's end, in
  the order they will be published), so that bars are published after a restart as they would
  have been without one;
- per symbol, in listing order: its trades, quotes, minute and daily bars (oldest first), the
  last published top of book and quote number, and the newest minute published as complete.

Every price is integer ticks, every size shares, every time nanoseconds since the epoch. The
histories' bounds are configuration, not state: a restoring history keeps the newest entries
its own bounds allow. Listeners are not state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Final, TypeVar

import msgspec

from tradingfloor.broker.market.records import (
    NS_PER_DAY,
    NS_PER_MINUTE,
    BarRecord,
    QuoteRecord,
    TradeRecord,
)
from tradingfloor.exchange.checkpoint import CheckpointError, decode_versioned
from tradingfloor.exchange.marketdata.checkpoint_state import BookState

__all__ = [
    "HISTORY_CHECKPOINT",
    "HISTORY_STATE_VERSION",
    "HistoryState",
    "SymbolState",
    "decode_history",
    "encode_history",
]

HISTORY_CHECKPOINT: Final = "broker.history/1"
HISTORY_STATE_VERSION: Final = 1

_CFG: Final = {"array_like": True, "frozen": True, "forbid_unknown_fields": True}


class SymbolState(msgspec.Struct, **_CFG):
    symbol: str
    trades: list[TradeRecord]  # oldest first
    quotes: list[QuoteRecord]
    minutes: list[BarRecord]
    days: list[BarRecord]
    last_quote: tuple[int, int, int, int]  # bid, bid size, ask, ask size (0 when empty)
    quote_key: int  # the last quote's number
    published_minute: int  # start of the newest minute bar published as complete, or -1


class HistoryState(msgspec.Struct, **_CFG):
    version: int
    book: BookState
    now: int
    unpublished: list[tuple[str, int]]  # (symbol, end of its newest minute bar), in order
    symbols: list[SymbolState]  # listing order


_encoder: Final = msgspec.msgpack.Encoder()

_R = TypeVar("_R", TradeRecord, QuoteRecord, BarRecord)


def encode_history(state: HistoryState) -> bytes:
    return _encoder.encode(state)


def decode_history(data: bytes) -> HistoryState:
    """The state in ``data``; ``CheckpointError`` unless it is one this code can restore."""
    state = decode_versioned(data, HistoryState, HISTORY_STATE_VERSION, HISTORY_CHECKPOINT)
    _check(state)
    return state


def _fail(message: str) -> CheckpointError:
    return CheckpointError(f"{HISTORY_CHECKPOINT}: {message}")


def _check(state: HistoryState) -> None:
    """What the history relies on: listings match the book's, every range is sorted."""
    listed = [i.symbol for i in state.book.instruments]
    symbols = [s.symbol for s in state.symbols]
    if symbols != listed:
        raise _fail(f"symbols {symbols} are not the book's {listed}")
    if state.now < 0:
        raise _fail(f"now {state.now} < 0")
    by_symbol = {s.symbol: s for s in state.symbols}
    for sym in state.symbols:
        _check_symbol(sym)
    seen: set[str] = set()
    for symbol, end in state.unpublished:
        found = by_symbol.get(symbol)
        if found is None or symbol in seen:
            raise _fail(f"unpublished bar of {symbol!r}")
        seen.add(symbol)
        if not found.minutes or found.minutes[-1].start + NS_PER_MINUTE != end or not found.days:
            raise _fail(f"{symbol}: the unpublished bar ending {end} is not its newest")


def _check_symbol(sym: SymbolState) -> None:
    name = sym.symbol
    _sorted(name, "trades", sym.trades, lambda r: (r.ts, r.trade_id))
    _sorted(name, "quotes", sym.quotes, lambda r: (r.ts, r.key))
    for kind, bars, length in (
        ("minute", sym.minutes, NS_PER_MINUTE),
        ("day", sym.days, NS_PER_DAY),
    ):
        _sorted(name, f"{kind} bars", bars, lambda b: (b.start, b.start))
        for bar in bars:
            if (
                bar.start % length
                or bar.volume <= 0
                or bar.trade_count <= 0
                or not 0 < bar.low <= min(bar.open, bar.close)
                or max(bar.open, bar.close) > bar.high
            ):
                raise _fail(f"{name}: {kind} bar {tuple(bar)}")
    for trade in sym.trades:
        if trade.price <= 0 or trade.size <= 0 or trade.taker_side not in ("buy", "sell", ""):
            raise _fail(f"{name}: trade {tuple(trade)}")
    if sym.quote_key < 0 or (sym.quotes and sym.quotes[-1].key != sym.quote_key):
        raise _fail(f"{name}: quote number {sym.quote_key}")
    if sym.quotes and tuple(sym.quotes[-1][2:]) != sym.last_quote:
        raise _fail(f"{name}: the last quote is not the last published top of book")
    if min(sym.last_quote) < 0 or sym.published_minute < -1:
        raise _fail(f"{name}: top of book {sym.last_quote}, minute {sym.published_minute}")


def _sorted(
    symbol: str, what: str, records: Sequence[_R], key: Callable[[_R], tuple[int, int]]
) -> None:
    """Strictly increasing by ``key`` (time, then number): the ranges are found by bisection."""
    keys = [key(r) for r in records]
    if any(a >= b for a, b in pairwise(keys)):
        raise _fail(f"{symbol}: {what} are not in time order")
