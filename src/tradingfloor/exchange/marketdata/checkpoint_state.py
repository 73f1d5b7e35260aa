"""Checkpoint formats of the market-data projections: what ``MarketDataFeed`` and ``BinaryFeed``
save at a snapshot's seq (``exchange.checkpoint``) and how those bytes are read back.

Each projection's part is one msgpack value: a versioned, ``array_like`` struct whose first
element is ``version``, so a part written by another format version is refused by number
(``CheckpointError``) before its layout is trusted. Every price is integer ticks, every size
shares, every time nanoseconds since the epoch; tick sizes are the decimal strings the engine
listed them with.

- ``FeedState`` (part ``marketdata``): the ``MarketDataBook`` (per symbol, in listing order: tick
  size, phase, L2 levels, L3 queues in time priority, order members, last, volume, the three
  view timestamps, recent trades; and the last event seq), the ``BarBuilder`` (built intervals,
  ``now``, open bars, closed-bar history) and the channel sequence numbers. Caches derived from
  these (best bid/ask, top-of-book windows, order locations, the bars' hot path) are rebuilt on
  restore; subscribers and what was last sent to them are not state.
- ``ItchFeedState`` (part ``itch``): the ``ItchTranslator`` (listings with their locate, stock
  directory fields and phase; the displayed book in global time priority) and the ``ts`` of the
  last event seen. The MoldUDP64 session and its sequence numbers are not state: every run of the
  venue opens a new session (``binaryfeed``).

Encoding hands the projections' own containers to msgspec (no copies on the event loop);
decoding validates types here and consistency in the projection's ``restore_state``, which
changes nothing unless all of it is usable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import msgspec

from tradingfloor.exchange.checkpoint import CheckpointError, decode_versioned
from tradingfloor.exchange.engine.types import Phase

if TYPE_CHECKING:  # the projections import the structs below: no import cycle at run time
    from tradingfloor.exchange.marketdata.bars import BarBuilder
    from tradingfloor.exchange.marketdata.messages import ChannelSequencer
    from tradingfloor.exchange.marketdata.views import MarketDataBook

__all__ = [
    "FEED_STATE_VERSION",
    "ITCH_STATE_VERSION",
    "BarHistoryState",
    "BarsState",
    "BookState",
    "FeedState",
    "InstrumentState",
    "ItchFeedState",
    "ListingState",
    "OpenBarState",
    "ShownOrder",
    "TranslatorState",
    "encode_state",
    "feed_checkpoint",
    "restore_feed",
]

FEED_STATE_VERSION: Final = 1
ITCH_STATE_VERSION: Final = 1

Level = tuple[int, int, int]  # (price, displayed size, displayed orders), as views.Level
Tick = tuple[int, int, int, int, str]  # views.TradeTick: (trade id, ts, price, qty, aggressor)
BarFields = tuple[int, int, int, int, int, int]  # (start, open, high, low, close, volume)

_CFG: Final = {"array_like": True, "frozen": True, "forbid_unknown_fields": True}


class InstrumentState(msgspec.Struct, **_CFG):
    """One symbol of the ``MarketDataBook``."""

    symbol: str
    tick_size: str
    phase: Phase
    bids: dict[int, Level]  # price -> level (any order; the book sorts)
    asks: dict[int, Level]
    l3_bids: dict[int, dict[int, int]]  # price -> {order id: displayed qty} in time priority
    l3_asks: dict[int, dict[int, int]]
    members: dict[int, str]  # order id -> member, for every order in the L3 queues
    last: int
    volume: int
    l1_ts: int
    l2_ts: int
    l3_ts: int
    trades: list[Tick]  # oldest first, at most views.MAX_TRADES


class BookState(msgspec.Struct, **_CFG):
    last_seq: int
    instruments: list[InstrumentState]  # listing order


class OpenBarState(msgspec.Struct, **_CFG):
    symbol: str
    interval: str
    bar: BarFields


class BarHistoryState(msgspec.Struct, **_CFG):
    symbol: str
    interval: str
    bars: list[BarFields]  # oldest first, at most bars.MAX_BAR_HISTORY


class BarsState(msgspec.Struct, **_CFG):
    intervals: list[str]  # must equal the restoring builder's
    now: int
    open: list[OpenBarState]
    history: list[BarHistoryState]


class FeedState(msgspec.Struct, **_CFG):
    version: int
    book: BookState
    bars: BarsState
    channels: list[tuple[str, str, int]]  # (channel, symbol, last update number), n > 0


class ListingState(msgspec.Struct, **_CFG):
    """A symbol as the ITCH translator listed it: its 'R' message fields and its phase."""

    symbol: str
    locate: int
    ts: int
    tick_mantissa: int
    tick_exponent: int
    lot_size: int
    currency: str
    phase: Phase


class ShownOrder(msgspec.Struct, array_like=True, gc=False):
    """A displayed order as ITCH consumers see it: the ``ItchTranslator``'s own (mutable)
    record, so that its book is encoded without a copy."""

    locate: int
    side: str  # "B" / "S"
    price: int
    shown: int


class TranslatorState(msgspec.Struct, **_CFG):
    listings: list[ListingState]  # listing order
    book: dict[int, ShownOrder]  # order ref -> order, in global time priority


class ItchFeedState(msgspec.Struct, **_CFG):
    version: int
    translator: TranslatorState
    last_ts: int


_encoder: Final = msgspec.msgpack.Encoder()


def encode_state(state: msgspec.Struct) -> bytes:
    """The msgpack bytes of a checkpoint part."""
    return _encoder.encode(state)


# --------------------------------------------------------------------------- the JSON feed


def feed_checkpoint(book: MarketDataBook, bars: BarBuilder, numbers: ChannelSequencer) -> bytes:
    """``MarketDataFeed.checkpoint``: its book, bars and channel numbers as one part."""
    state = FeedState(
        FEED_STATE_VERSION, book.export_state(), bars.export_state(), numbers.numbers()
    )
    return encode_state(state)


def restore_feed(
    data: bytes, book: MarketDataBook, bars: BarBuilder, numbers: ChannelSequencer
) -> None:
    """``MarketDataFeed.restore_checkpoint``: all three restored from ``data``, or (with a
    ``CheckpointError``) none changed."""
    state = decode_versioned(data, FeedState, FEED_STATE_VERSION, "marketdata")
    symbols = {i.symbol for i in state.book.instruments}
    for channel, symbol, _n in state.channels:
        if symbol not in symbols:
            raise CheckpointError(f"marketdata checkpoint: channel {channel} of unlisted {symbol}")
    for o in state.bars.open:
        if o.symbol not in symbols:
            raise CheckpointError(f"marketdata checkpoint: bars of unlisted {o.symbol}")
    for h in state.bars.history:
        if h.symbol not in symbols:
            raise CheckpointError(f"marketdata checkpoint: bars of unlisted {h.symbol}")
    try:
        numbers.restore(state.channels)  # checks them all before it changes anything
    except ValueError as exc:
        raise CheckpointError(f"marketdata checkpoint: {exc}") from None
    try:
        book.restore_state(state.book)
        bars.restore_state(state.bars)
    except CheckpointError as exc:
        book.restore_state(BookState(0, []))
        numbers.restore([])
        raise CheckpointError(f"marketdata checkpoint: {exc}") from None
