"""The feed's text-built update bodies are byte for byte ``encode`` of the message builders."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tradingfloor.exchange.engine.events import InstrumentAdded, LevelChanged, Trade
from tradingfloor.exchange.engine.types import Phase, Side
from tradingfloor.exchange.marketdata.feed import MarketDataFeed
from tradingfloor.exchange.marketdata.messages import (
    ChannelSequencer,
    encode,
    json_string,
    l1_body,
    l1_message,
    l2_body,
    l2_message,
    trade_body,
    trade_message,
)
from tradingfloor.exchange.marketdata.views import L1, TradeTick

TICKS = ["0.01", "0.0001", "1", "0.5", "0.010", "25", "0.25", "1E+1"]
INT64 = st.integers(0, 2**63 - 1)
POSITIVE = st.integers(1, 2**63 - 1)
PRICE = st.one_of(st.integers(1, 100_000), POSITIVE)
SYMBOL = st.one_of(st.sampled_from(["ACME", "BENCH"]), st.text(min_size=1, max_size=12))
AGGRESSOR = st.one_of(st.sampled_from(["buy", "sell", ""]), st.text(max_size=6))
LEVELS = st.lists(st.tuples(PRICE, INT64, INT64), max_size=5)


def body_of(message: dict[str, object]) -> str:
    return encode(message).decode()[1:]


@settings(max_examples=300, deadline=None)
@given(
    symbol=SYMBOL,
    tick=st.sampled_from(TICKS),
    fields=st.tuples(POSITIVE, INT64, PRICE, POSITIVE),
    aggressor=AGGRESSOR,
)
def test_trade_body(
    symbol: str, tick: str, fields: tuple[int, int, int, int], aggressor: str
) -> None:
    trade_id, ts, price, qty = fields
    tick_size = Decimal(tick)
    trade = TradeTick(trade_id, ts, price, qty, aggressor)
    expected = body_of(trade_message(symbol, trade, tick_size))
    assert trade_body(json_string(symbol), trade, tick_size) == expected


@settings(max_examples=300, deadline=None)
@given(
    symbol=SYMBOL,
    tick=st.sampled_from(TICKS),
    sides=st.tuples(st.one_of(st.just(0), PRICE), INT64, st.one_of(st.just(0), PRICE), INT64),
    last=st.one_of(st.just(0), PRICE),
    volume=INT64,
    ts=INT64,
)
def test_l1_body(
    symbol: str, tick: str, sides: tuple[int, int, int, int], last: int, volume: int, ts: int
) -> None:
    tick_size = Decimal(tick)
    l1 = L1(*sides, last, volume, ts)
    expected = body_of(l1_message(symbol, l1, tick_size))
    assert l1_body(json_string(symbol), l1, tick_size) == expected


@settings(max_examples=300, deadline=None)
@given(symbol=SYMBOL, tick=st.sampled_from(TICKS), bids=LEVELS, asks=LEVELS, ts=INT64)
def test_l2_body(
    symbol: str,
    tick: str,
    bids: list[tuple[int, int, int]],
    asks: list[tuple[int, int, int]],
    ts: int,
) -> None:
    tick_size = Decimal(tick)
    expected = body_of(l2_message(symbol, bids, asks, ts, tick_size))
    assert l2_body(json_string(symbol), bids, asks, ts, tick_size) == expected


TRADE = st.tuples(PRICE, st.integers(1, 10_000), AGGRESSOR)


@settings(max_examples=100, deadline=None)
@given(
    symbol=SYMBOL,
    tick=st.sampled_from(TICKS),
    commands=st.lists(st.lists(TRADE, min_size=1, max_size=4), min_size=1, max_size=6),
)
def test_feed_publishes_the_encoded_builders(
    symbol: str, tick: str, commands: list[list[tuple[int, int, str]]]
) -> None:
    """Trades (with their L1 and L2 effects) through the feed: every update it queues is
    ``encode`` of the numbered builder message, in order."""
    feed = MarketDataFeed(intervals=["1m"])
    seq = 1
    feed.on_events([InstrumentAdded(seq, 0, symbol, tick, 1, "USD", Phase.CONTINUOUS)])
    sub = feed.connect("c")
    feed.handle(
        sub,
        encode({"op": "subscribe", "channels": ["trade", "l1", "l2"], "symbols": [symbol]}),
    )
    sub.drain()
    book, numbers = feed.book, ChannelSequencer()
    tick_size = book.tick_size(symbol)
    trade_id = 0
    for n, trades in enumerate(commands, 1):
        ts = n * 1_000_000_000
        events: list[Trade | LevelChanged] = []
        expected: list[dict[str, object]] = []
        for price, qty, aggressor in trades:
            seq += 1
            trade_id += 1
            trade = Trade(
                seq,
                ts,
                symbol,
                trade_id,
                price,
                qty,
                aggressor,
                1,
                2,
                "m",
                "t",
                "a",
                "b",
                0,
                0,
                1,
                2,
            )
            events.append(trade)
            expected.append(trade_message(symbol, trade, tick_size))
        seq += 1
        price = n  # a new bid level each command (the window holds them all)
        events.append(LevelChanged(seq, ts, symbol, Side.BUY, price, trades[-1][1], 1))
        before = book.l1(symbol)
        feed.on_events(events)
        if book.l1(symbol) != before:
            expected.append(l1_message(symbol, book.l1(symbol), tick_size))
        expected.append(l2_message(symbol, [(price, trades[-1][1], 1)], [], ts, tick_size))
        got = sub.drain()
        assert got == [encode(numbers.update(m)).decode() for m in expected]
