"""JSON market-data messages for apps, and per-channel sequencing of a snapshot-then-updates feed.

Builders turn the views of ``views``/``bars`` into plain dicts in the design's shapes: prices
are decimal strings (ticks times the instrument's tick size, via ``core.units.from_ticks``),
sizes and volumes integer shares, timestamps integer nanoseconds, a missing price ``null``.
Keys come in a fixed order, so ``encode`` (msgspec JSON) gives the same bytes for the same data.

A channel is a message ``type`` ("l1", "l2", "l3", "trade", "bar") for one symbol.
``ChannelSequencer`` numbers each channel's updates 1, 2, 3, ... and wraps them as
``{"seq": n, "snapshot": false, ...}``; a snapshot carries the number of the last update it
already contains (``{"seq": n, "snapshot": true, ...}``, 0 before any update) and consumes no
number, so one numbered stream can be fanned out to every subscriber while a newcomer or a
client that missed a number gets a snapshot first. ``ChannelTracker`` is the client side: it
says whether to apply a message, ignore it (already seen) or resynchronise from a snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Final

import msgspec

from tradingfloor.core.units import from_ticks
from tradingfloor.exchange.engine.events import LevelChanged, Trade
from tradingfloor.exchange.engine.types import Side
from tradingfloor.exchange.marketdata.bars import Bar
from tradingfloor.exchange.marketdata.views import L1, L3, Level, TradeTick

__all__ = [
    "CHANNELS",
    "ChannelSequencer",
    "ChannelTracker",
    "Message",
    "Sync",
    "bar_message",
    "decode",
    "encode",
    "l1_message",
    "l2_message",
    "l2_update_message",
    "l3_message",
    "price_text",
    "trade_message",
    "trades_snapshot_message",
]

CHANNELS: Final = ("l1", "l2", "l3", "trade", "bar")

Message = dict[str, object]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(dict[str, object])


def encode(message: Mapping[str, object]) -> bytes:
    """Compact JSON, keys in the order the builders put them."""
    return _encoder.encode(message)


def decode(data: bytes | str) -> Message:
    """Parse one JSON message (a JSON object) back into a dict."""
    return _decoder.decode(data)


# Rendered prices per tick-size object: id(tick size) -> (the tick size, ticks -> text). The
# tick size is held so that its id cannot be reused while cached; keyed by identity, not
# value, because Decimal("0.01") == Decimal("0.010") but they render differently. Bounded:
# cleared when either level grows past its limit.
_PRICE_TEXTS: dict[int, tuple[Decimal, dict[int, str]]] = {}
_MAX_TICK_SIZES: Final = 256
_MAX_PRICES_PER_TICK: Final = 65_536


def price_text(ticks: int, tick_size: Decimal) -> str:
    """Ticks as a plain decimal string with the tick size's decimals (never exponent form)."""
    entry = _PRICE_TEXTS.get(id(tick_size))
    if entry is None:
        if len(_PRICE_TEXTS) >= _MAX_TICK_SIZES:
            _PRICE_TEXTS.clear()
        entry = _PRICE_TEXTS[id(tick_size)] = (tick_size, {})
    texts = entry[1]
    text = texts.get(ticks)
    if text is None:
        if len(texts) >= _MAX_PRICES_PER_TICK:
            texts.clear()
        text = texts[ticks] = format(from_ticks(ticks, tick_size), "f")
    return text


def _price_or_null(ticks: int, tick_size: Decimal) -> str | None:
    return price_text(ticks, tick_size) if ticks else None


def _rows(levels: Iterable[Level], tick_size: Decimal) -> list[list[object]]:
    return [[price_text(price, tick_size), size, orders] for price, size, orders in levels]


def l1_message(symbol: str, l1: L1, tick_size: Decimal) -> Message:
    """``{"type": "l1", ...}``: ``null`` price and size for an empty side, ``null`` last."""
    return {
        "type": "l1",
        "symbol": symbol,
        "bid": _price_or_null(l1.bid, tick_size),
        "bidSize": l1.bid_size if l1.bid else None,
        "ask": _price_or_null(l1.ask, tick_size),
        "askSize": l1.ask_size if l1.ask else None,
        "last": _price_or_null(l1.last, tick_size),
        "volume": l1.volume,
        "timestamp": l1.ts,
    }


def l2_message(
    symbol: str, bids: Sequence[Level], asks: Sequence[Level], ts: int, tick_size: Decimal
) -> Message:
    """``{"type": "l2", ...}`` with levels as ``[price, size, num_orders]``, best first.

    As a snapshot it holds the top levels (``views.DEFAULT_DEPTH``); as an update only the
    levels that changed, size 0 meaning the level is gone (see ``l2_update_message``).
    """
    return {
        "type": "l2",
        "symbol": symbol,
        "bids": _rows(bids, tick_size),
        "asks": _rows(asks, tick_size),
        "timestamp": ts,
    }


# ---- Update bodies built as text (the publisher's hot path; internal to the package, so not
# in ``__all__``). Each ``*_body`` is exactly
# ``encode(<builder>(...)).decode()`` without its opening ``{``, so that a publisher can put the
# numbering keys in front; ``symbol_json`` is ``json_string(symbol)``. Prices are ``price_text``
# (digits, ``-`` and ``.`` only: no escaping) and integers render as msgspec renders them.

_NULLABLE_TEXT: Final[dict[str, str]] = {"buy": '"buy"', "sell": '"sell"', "": "null"}


def json_string(text: str) -> str:
    """``text`` as a JSON string literal, exactly as ``encode`` writes it."""
    return _encoder.encode(text).decode()


def trade_body(symbol_json: str, trade: TradeTick | Trade, tick_size: Decimal) -> str:
    """``trade_message`` as text (see the note above)."""
    aggressor = _NULLABLE_TEXT.get(trade.aggressor)
    if aggressor is None:
        aggressor = json_string(trade.aggressor)
    return (
        f'"type":"trade","symbol":{symbol_json},"price":"{price_text(trade.price, tick_size)}",'
        f'"size":{trade.qty},"aggressor":{aggressor},"timestamp":{trade.ts},'
        f'"tradeId":{trade.trade_id}}}'
    )


def l1_body(symbol_json: str, l1: L1, tick_size: Decimal) -> str:
    """``l1_message`` as text (see the note above)."""
    bid, bid_size, ask, ask_size, last, volume, ts = l1
    bid_text = (
        f'"{price_text(bid, tick_size)}","bidSize":{bid_size}' if bid else 'null,"bidSize":null'
    )
    ask_text = (
        f'"{price_text(ask, tick_size)}","askSize":{ask_size}' if ask else 'null,"askSize":null'
    )
    last_text = f'"{price_text(last, tick_size)}"' if last else "null"
    return (
        f'"type":"l1","symbol":{symbol_json},"bid":{bid_text},"ask":{ask_text},'
        f'"last":{last_text},"volume":{volume},"timestamp":{ts}}}'
    )


def l2_body(
    symbol_json: str, bids: Sequence[Level], asks: Sequence[Level], ts: int, tick_size: Decimal
) -> str:
    """``l2_message`` as text (see the note above)."""
    bid_rows = (
        ",".join([f'["{price_text(p, tick_size)}",{size},{n}]' for p, size, n in bids])
        if bids
        else ""
    )
    ask_rows = (
        ",".join([f'["{price_text(p, tick_size)}",{size},{n}]' for p, size, n in asks])
        if asks
        else ""
    )
    return (
        f'"type":"l2","symbol":{symbol_json},"bids":[{bid_rows}],"asks":[{ask_rows}],'
        f'"timestamp":{ts}}}'
    )


def l2_update_message(changes: Sequence[LevelChanged], tick_size: Decimal) -> Message:
    """An L2 update from ``level`` events of one symbol (a later change of a price wins)."""
    if not changes:
        raise ValueError("an L2 update needs at least one level change")
    symbol = changes[0].symbol
    bids: dict[int, Level] = {}
    asks: dict[int, Level] = {}
    for ev in changes:
        if ev.symbol != symbol:
            raise ValueError(f"level changes of {symbol!r} and {ev.symbol!r} in one update")
        (bids if ev.side == Side.BUY else asks)[ev.price] = (ev.price, ev.qty, ev.orders)
    return l2_message(
        symbol,
        [bids[p] for p in sorted(bids, reverse=True)],
        [asks[p] for p in sorted(asks)],
        changes[-1].ts,
        tick_size,
    )


def l3_message(symbol: str, l3: L3, tick_size: Decimal) -> Message:
    """``{"type": "l3", ...}``: displayed orders as ``[price, size, order_id]`` in priority order.

    The member is left out: the public order-by-order feed is anonymous.
    """
    return {
        "type": "l3",
        "symbol": symbol,
        "bids": [[price_text(p, tick_size), q, oid] for p, q, oid, _member in l3.bids],
        "asks": [[price_text(p, tick_size), q, oid] for p, q, oid, _member in l3.asks],
        "timestamp": l3.ts,
    }


def _trade_fields(trade: TradeTick | Trade, tick_size: Decimal) -> Message:
    return {
        "price": price_text(trade.price, tick_size),
        "size": trade.qty,
        "aggressor": trade.aggressor or None,  # null for auction trades
        "timestamp": trade.ts,
        "tradeId": trade.trade_id,
    }


def trade_message(symbol: str, trade: TradeTick | Trade, tick_size: Decimal) -> Message:
    """``{"type": "trade", ...}`` for one trade; ``aggressor`` is ``null`` in an auction.

    ``trade`` is a ``TradeTick`` or the engine's ``Trade`` event (the same field names).
    """
    return {"type": "trade", "symbol": symbol, **_trade_fields(trade, tick_size)}


def trades_snapshot_message(
    symbol: str, trades: Iterable[TradeTick], tick_size: Decimal
) -> Message:
    """The trade channel's snapshot: recent trades, oldest first, without type/symbol each."""
    return {
        "type": "trade",
        "symbol": symbol,
        "trades": [_trade_fields(t, tick_size) for t in trades],
    }


def bar_message(bar: Bar, tick_size: Decimal) -> Message:
    """``{"type": "bar", ...}``; ``start`` is the bar's first nanosecond."""
    return {
        "type": "bar",
        "symbol": bar.symbol,
        "interval": bar.interval,
        "open": price_text(bar.open, tick_size),
        "high": price_text(bar.high, tick_size),
        "low": price_text(bar.low, tick_size),
        "close": price_text(bar.close, tick_size),
        "volume": bar.volume,
        "start": bar.start,
    }


def _channel(message: Mapping[str, object]) -> tuple[str, str]:
    channel, symbol = message.get("type"), message.get("symbol")
    if channel not in CHANNELS or not isinstance(symbol, str) or not symbol:
        raise ValueError(f"not a market-data message: type {channel!r}, symbol {symbol!r}")
    return str(channel), symbol


class ChannelSequencer:
    """Per-(channel, symbol) sequence numbers for one feed. See module docstring."""

    def __init__(self) -> None:
        self._seq: dict[tuple[str, str], int] = {}

    def seq(self, channel: str, symbol: str) -> int:
        """Number of the last update sent on the channel (0 if none)."""
        return self._seq.get((channel, symbol), 0)

    def update(self, message: Mapping[str, object]) -> Message:
        """Wrap an incremental message with the channel's next number."""
        key = _channel(message)
        n = self._seq.get(key, 0) + 1
        self._seq[key] = n
        return {"seq": n, "snapshot": False, **message}

    def advance(self, key: tuple[str, str]) -> int:
        """Consume and return the next update number of channel ``key`` = (type, symbol).

        For a publisher that wraps its own messages (no check of the message): the update is
        ``{"seq": n, "snapshot": false, ...}`` exactly as ``update`` would build it.
        """
        n = self._seq.get(key, 0) + 1
        self._seq[key] = n
        return n

    def snapshot(self, message: Mapping[str, object]) -> Message:
        """Wrap the channel's current state: the number of the last update it includes."""
        key = _channel(message)
        return {"seq": self._seq.get(key, 0), "snapshot": True, **message}

    def numbers(self) -> list[tuple[str, str, int]]:
        """Every channel that has sent an update: (channel, symbol, last number)."""
        return [(c, s, n) for (c, s), n in self._seq.items()]

    def restore(self, numbers: Iterable[tuple[str, str, int]]) -> None:
        """Continue from ``numbers`` (as ``numbers()`` gave them; none: start afresh).

        ``ValueError``, and nothing changed, for an unknown channel or a number below 1.
        """
        restored: dict[tuple[str, str], int] = {}
        for channel, symbol, n in numbers:
            if channel not in CHANNELS or not symbol or n < 1 or (channel, symbol) in restored:
                raise ValueError(f"channel number {channel!r} {symbol!r} {n}")
            restored[channel, symbol] = n
        self._seq.clear()  # the same dict: a publisher may hold it (MarketDataFeed does)
        self._seq.update(restored)


class Sync(StrEnum):
    """What a client does with a received message."""

    APPLY = "apply"
    IGNORE = "ignore"  # already applied (a duplicate or an older snapshot)
    RESYNC = "resync"  # a number was missed or no snapshot yet: drop it and get a snapshot


class ChannelTracker:
    """Client-side sequence check per (channel, symbol). See module docstring.

    Assumes messages of one channel arrive in the order sent (one WebSocket connection).
    """

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], int] = {}  # synchronised channels only

    def on_message(self, message: Mapping[str, object]) -> Sync:
        key = _channel(message)
        seq, snapshot = message.get("seq"), message.get("snapshot")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ValueError(f"bad seq {seq!r}")
        if not isinstance(snapshot, bool):
            raise ValueError(f"bad snapshot flag {snapshot!r}")
        last = self._last.get(key)
        if snapshot:
            if last is not None and seq < last:
                return Sync.IGNORE
            self._last[key] = seq
            return Sync.APPLY
        if last is None:
            return Sync.RESYNC
        if seq <= last:
            return Sync.IGNORE
        if seq != last + 1:
            del self._last[key]
            return Sync.RESYNC
        self._last[key] = seq
        return Sync.APPLY

    def needs_snapshot(self, channel: str, symbol: str) -> bool:
        """True until a snapshot arrived, and again after a missed number."""
        return (channel, symbol) not in self._last

    def last_seq(self, channel: str, symbol: str) -> int | None:
        """Number of the last message applied, None when a snapshot is needed."""
        return self._last.get((channel, symbol))
