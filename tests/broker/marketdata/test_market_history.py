"""MarketHistory: trades, quotes on L1 changes, minute/daily bars, bounds, listeners."""

from __future__ import annotations

import tracemalloc
from collections import defaultdict
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradingfloor.broker.market.history import (
    NS_PER_MINUTE,
    BarRecord,
    BarUpdate,
    MarketHistory,
    MarketUpdate,
    QuoteRecord,
    QuoteUpdate,
    TradeUpdate,
)
from tradingfloor.exchange.engine.commands import AddInstrument, CancelOrder, SetPhase
from tradingfloor.exchange.engine.types import Phase, Side
from tradingfloor.exchange.marketdata.views import MarketDataError

from .support import DAY, M0, MINUTE, T0, Driver, S, cross, market, order


def listed(history: MarketHistory | None = None) -> Driver:
    driver = Driver(history if history is not None else MarketHistory())
    driver.run(AddInstrument(symbol="AAA", collar_bps=10_000))
    driver.run(AddInstrument(symbol="BBB", tick_size="0.05", collar_bps=10_000))
    return driver


def test_trades_are_kept_with_id_price_size_time_and_taker_side() -> None:
    d = listed()
    d.run(order("AAA", Side.SELL, 5, 101, "s1"))
    d.run(order("AAA", Side.SELL, 5, 102, "s2"))
    d.run(order("AAA", Side.BUY, 7, 102, "b1"))  # sweeps 101 x5 then 102 x2
    trades = d.history.trades("AAA")
    assert [(t.price, t.size, t.taker_side, t.phase) for t in trades] == [
        (101, 5, "buy", Phase.CONTINUOUS),
        (102, 2, "buy", Phase.CONTINUOUS),
    ]
    assert trades[0].trade_id < trades[1].trade_id and trades[0].ts == trades[1].ts == d.ts
    assert d.history.latest_trade("AAA") == trades[-1]
    assert d.history.trades("BBB") == [] and d.history.latest_trade("BBB") is None
    with pytest.raises(KeyError):
        d.history.trades("ZZZ")


def test_minute_bars_roll_on_the_trade_time() -> None:
    d = listed()
    for at, price, qty in ((M0 + 1, 100, 2), (M0 + 30 * S, 104, 1), (M0 + MINUTE - 1, 99, 3)):
        for cmd in cross("AAA", price, qty):
            d.run(cmd, at=at)
    for cmd in cross("AAA", 101, 4):
        d.run(cmd, at=M0 + MINUTE)  # the first nanosecond of the next minute
    bars = d.history.bars("AAA")
    assert bars == [
        BarRecord(M0, 100, 104, 99, 99, 6, 3, 100 * 2 + 104 + 99 * 3),
        BarRecord(M0 + MINUTE, 101, 101, 101, 101, 4, 1, 404),
    ]
    assert bars[0].vwap == Fraction(601, 6)
    assert d.history.vwap("AAA", bars[0]) == Decimal("1.001667")  # 100.1666.. ticks of 0.01
    assert d.history.latest_bar("AAA") == bars[1]
    assert d.history.bars("AAA", ascending=False) == bars[::-1]
    assert d.history.bars("AAA", after=M0) == bars[1:]
    assert d.history.bars("AAA", ascending=False, after=M0 + MINUTE) == bars[:1]
    assert d.history.bars("AAA", start_ns=M0 + 1) == bars[1:]
    assert d.history.bars("AAA", end_ns=M0 + MINUTE) == bars[:1]
    assert d.history.bars("AAA", limit=1, ascending=False) == bars[1:]


def test_longer_bars_are_aggregated_in_epoch_aligned_buckets() -> None:
    d = listed()
    h0 = M0 - M0 % (60 * MINUTE)  # 22:00
    for minute, price in ((0, 100), (3, 90), (4, 95), (5, 120), (61, 80)):
        for cmd in cross("AAA", price, minute + 1):
            d.run(cmd, at=h0 + minute * MINUTE + 5 * S)
    five = d.history.bars("AAA", 5 * MINUTE)
    assert [(b.start, b.open, b.high, b.low, b.close, b.volume, b.trade_count) for b in five] == [
        (h0, 100, 100, 90, 95, 1 + 4 + 5, 3),
        (h0 + 5 * MINUTE, 120, 120, 120, 120, 6, 1),
        (h0 + 60 * MINUTE, 80, 80, 80, 80, 62, 1),
    ]
    assert five[0].notional == 100 * 1 + 90 * 4 + 95 * 5
    assert d.history.bars("AAA", 5 * MINUTE, ascending=False) == five[::-1]
    assert d.history.bars("AAA", 5 * MINUTE, limit=2, ascending=False) == five[:0:-1]
    assert d.history.bars("AAA", 5 * MINUTE, after=h0) == five[1:]
    assert d.history.bars("AAA", 5 * MINUTE, ascending=False, after=h0 + 5 * MINUTE) == five[:1]
    # A bucket belongs to the range by its start; one starting before start_ns is left out.
    assert d.history.bars("AAA", 5 * MINUTE, start_ns=h0 + 1) == five[1:]
    assert d.history.bars("AAA", 5 * MINUTE, end_ns=h0 + 5 * MINUTE) == five[:1]
    hours = d.history.bars("AAA", 60 * MINUTE)
    assert [(b.start, b.volume, b.high, b.low, b.close) for b in hours] == [
        (h0, 16, 120, 90, 120),
        (h0 + 60 * MINUTE, 62, 80, 80, 80),
    ]
    with pytest.raises(ValueError, match="whole number of minutes"):
        d.history.bars("AAA", 90 * S)


def test_daily_bars_follow_the_utc_day() -> None:
    d = listed()
    day0 = T0 - T0 % DAY
    for at, price in (
        (day0 + 1, 100),
        (day0 + DAY - 1, 110),
        (day0 + DAY, 90),
        (day0 + 3 * DAY, 95),
    ):
        for cmd in cross("AAA", price, 1):
            d.run(cmd, at=at)
    days = d.history.bars("AAA", DAY)
    assert [(b.start, b.open, b.close, b.volume) for b in days] == [
        (day0, 100, 110, 2),
        (day0 + DAY, 90, 90, 1),
        (day0 + 3 * DAY, 95, 95, 1),
    ]
    assert d.history.daily_bar("AAA") == days[-1]
    assert d.history.previous_daily_bar("AAA") == days[-2]
    assert d.history.previous_daily_bar("BBB") is None


def test_quotes_are_recorded_when_the_top_of_book_changes() -> None:
    d = listed()
    d.run(order("AAA", Side.BUY, 10, 100, "b1"))
    d.run(order("AAA", Side.BUY, 10, 99, "b2"))  # below the best bid: no new quote
    d.run(order("AAA", Side.SELL, 3, 105, "s1"))
    d.run(order("AAA", Side.BUY, 5, 100, "b3"))  # joins the best bid: its size changes
    d.run(order("AAA", Side.SELL, 3, 105, "s2"))
    d.run(market("AAA", Side.SELL, 15))  # takes the whole 100 level: 99 becomes the best bid
    quotes = d.history.quotes("AAA")
    assert [(q.key, q.bid, q.bid_size, q.ask, q.ask_size) for q in quotes] == [
        (1, 100, 10, 0, 0),
        (2, 100, 10, 105, 3),
        (3, 100, 15, 105, 3),
        (4, 100, 15, 105, 6),
        (5, 99, 10, 105, 6),
    ]
    assert quotes[-1].ts == d.ts
    assert d.history.latest_quote("AAA") == quotes[-1]
    assert d.history.quotes("AAA", after=3) == quotes[3:]
    assert d.history.quotes("AAA", ascending=False, limit=2) == quotes[:2:-1]
    assert d.history.latest_quote("BBB") is None
    l1 = d.history.l1("AAA")
    assert (l1.bid, l1.bid_size, l1.ask, l1.ask_size) == (99, 10, 105, 6)


def test_a_side_emptied_is_quoted_as_zero() -> None:
    d = listed()
    d.run(order("AAA", Side.BUY, 10, 100, "b1"))
    resting = d.engine.orders
    [(oid, live)] = list(resting.items())
    d.run(CancelOrder(symbol="AAA", member=live.member, order_id=oid))
    assert [tuple(q)[2:] for q in d.history.quotes("AAA")] == [(100, 10, 0, 0), (0, 0, 0, 0)]


def test_time_ranges_are_half_open() -> None:
    d = listed()
    for k in range(5):
        for cmd in cross("AAA", 100 + k, 1):
            d.run(cmd, at=T0 + k * S)
    ts = [t.ts for t in d.history.trades("AAA")]
    assert ts == [T0 + k * S for k in range(5)]
    assert [t.ts for t in d.history.trades("AAA", T0 + S, T0 + 3 * S)] == [T0 + S, T0 + 2 * S]
    assert d.history.trades("AAA", T0 + 3 * S, T0 + 3 * S) == []
    assert d.history.trades("AAA", limit=0) == []
    newest = d.history.trades("AAA", T0 + S, T0 + 4 * S, ascending=False, limit=2)
    assert [t.ts for t in newest] == [T0 + 3 * S, T0 + 2 * S]
    page2 = d.history.trades("AAA", T0 + S, ascending=False, after=newest[-1].trade_id)
    assert [t.ts for t in page2] == [T0 + S]


def test_histories_are_bounded() -> None:
    h = MarketHistory(max_trades=3, max_quotes=4, max_minute_bars=2, max_daily_bars=2)
    d = listed(h)
    for k in range(10):
        for cmd in cross("AAA", 100 + k, 1):
            d.run(cmd, at=T0 + k * DAY // 2 + k)
    assert [t.price for t in h.trades("AAA")] == [107, 108, 109]
    assert len(h.quotes("AAA")) == 4 and h.quotes("AAA")[-1].key == 20
    assert [b.close for b in h.bars("AAA")] == [108, 109]
    assert [b.close for b in h.bars("AAA", DAY)] == [108, 109]  # days of 2 trades, then 1
    assert h.trades("AAA", ascending=False, limit=10)[0].price == 109
    with pytest.raises(ValueError, match=">= 1"):
        MarketHistory(max_trades=0)


def test_listeners_get_trades_quotes_and_bars_once_the_minute_is_over() -> None:
    h = MarketHistory()
    d = listed(h)
    got: list[list[MarketUpdate]] = []
    remove = h.add_listener(lambda updates: got.append(list(updates)))
    d.run(order("AAA", Side.SELL, 5, 101, "s1"), at=M0 + 10 * S)
    d.run(order("AAA", Side.BUY, 2, 101, "b1"), at=M0 + 20 * S)
    assert got[0] == [QuoteUpdate("AAA", QuoteRecord(1, M0 + 10 * S, 0, 0, 101, 5))]
    [trade, quote] = got[1]
    assert isinstance(trade, TradeUpdate) and trade.trade.price == 101 and trade.trade.size == 2
    assert isinstance(quote, QuoteUpdate) and quote.quote.ask_size == 3
    minute = BarRecord(M0, 101, 101, 101, 101, 2, 1, 202)
    # Time passes the minute's end with an event of another symbol: the bar is published.
    d.run(order("BBB", Side.BUY, 1, 10), at=M0 + MINUTE + 1)
    day_so_far = minute._replace(start=M0 - M0 % DAY)
    assert got[2][:2] == [
        BarUpdate("AAA", "bar", minute),
        BarUpdate("AAA", "daily_bar", day_so_far),
    ]
    got.clear()
    d.run(order("AAA", Side.BUY, 1, 101, "b2"), at=M0 + MINUTE + 2 * S)
    assert [type(u) for u in got[0]] == [TradeUpdate, QuoteUpdate]
    got.clear()
    h.close_until(M0 + MINUTE + 30 * S)  # not the end of the minute yet
    assert got == []
    h.close_until(M0 + 2 * MINUTE)
    bar2 = BarRecord(M0 + MINUTE, 101, 101, 101, 101, 1, 1, 101)
    day = BarRecord(M0 - M0 % DAY, 101, 101, 101, 101, 3, 2, 303)
    assert got == [[BarUpdate("AAA", "bar", bar2), BarUpdate("AAA", "daily_bar", day)]]
    got.clear()
    # A late trade (the venue's clock is behind the close_until time) updates the sent bar.
    d.run(order("AAA", Side.BUY, 1, 101, "b3"), at=M0 + MINUTE + 50 * S)
    updated = BarRecord(M0 + MINUTE, 101, 101, 101, 101, 2, 2, 202)
    assert got[0][1:3] == [
        BarUpdate("AAA", "updated_bar", updated),
        BarUpdate("AAA", "daily_bar", day._replace(volume=4, trade_count=3, notional=404)),
    ]
    remove()
    got.clear()
    d.run(order("AAA", Side.BUY, 1, 101, "b4"))
    assert got == []


def test_a_failing_listener_is_removed_and_the_others_go_on() -> None:
    h = MarketHistory()
    d = listed(h)
    got: list[int] = []

    def broken(_updates: object) -> None:
        raise RuntimeError("boom")

    h.add_listener(broken)
    h.add_listener(lambda updates: got.append(len(updates)))
    d.run(order("AAA", Side.BUY, 1, 100))
    d.run(order("AAA", Side.BUY, 1, 101))
    assert got == [1, 1] and h.listener_errors == 1


def test_replayed_events_are_ignored_and_gaps_raise() -> None:
    h = MarketHistory()
    d = listed(h)
    events = d.run(order("AAA", Side.SELL, 1, 100))
    events += d.run(order("AAA", Side.BUY, 1, 100))
    before = h.state_hash()
    h.on_events(events)
    assert h.state_hash() == before and len(h.trades("AAA")) == 1
    d.seq += 1
    d.engine.apply(d.seq, d.ts + 1, order("AAA", Side.BUY, 1, 99))  # never shown to h
    with pytest.raises(MarketDataError, match="missed"):
        d.run(order("AAA", Side.BUY, 1, 98))


def test_auction_trades_carry_the_phase() -> None:
    d = Driver(MarketHistory())
    d.run(AddInstrument(symbol="AAA", phase=Phase.OPENING_AUCTION))
    d.run(order("AAA", Side.BUY, 10, 100, "b"))
    d.run(order("AAA", Side.SELL, 4, 99, "s"))
    d.run(SetPhase(symbol="AAA", phase=Phase.CONTINUOUS))
    [trade] = d.history.trades("AAA")
    assert (trade.taker_side, trade.phase, trade.price, trade.size) == (
        "",
        Phase.OPENING_AUCTION,
        99,
        4,
    )


def test_prices_render_at_the_tick_size() -> None:
    d = listed()
    assert d.history.price("BBB", 2021) == Decimal("101.05")
    assert d.history.price("AAA", 0) == Decimal("0.00")
    assert d.history.tick_size("BBB") == Decimal("0.05")
    assert d.history.symbols() == ["AAA", "BBB"]
    bar = BarRecord(0, 1, 1, 1, 1, 3, 2, 4)  # vwap 4/3 ticks of 0.05
    assert d.history.vwap("BBB", bar) == Decimal("0.066667")


def test_the_state_hash_depends_on_the_events_only() -> None:
    a, b = MarketHistory(), MarketHistory()
    da, db = listed(a), listed(b)
    seen: list[object] = []
    b.add_listener(seen.append)
    for d in (da, db):
        for k in range(3):
            for cmd in cross("AAA", 100 + k, 2):
                d.run(cmd, at=T0 + k * MINUTE)
    b.close_until(T0 + 10 * MINUTE)  # publication only
    assert a.state_hash() == b.state_hash() and seen


# ----------------------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["AAA", "BBB"]),
            st.sampled_from([Side.BUY, Side.SELL]),
            st.integers(1, 20),  # qty
            st.integers(95, 105),  # price
            st.booleans(),  # market order
            st.integers(0, 3 * NS_PER_MINUTE // 2),  # time step
        ),
        max_size=60,
    ),
    st.sampled_from([1, 2, 5, 60]),
)
def test_minute_bars_add_up_to_the_trades(
    steps: list[tuple[str, Side, int, int, bool, int]], minutes: int
) -> None:
    h = MarketHistory()
    d = listed(h)
    published: list[MarketUpdate] = []
    h.add_listener(published.extend)
    for i, (symbol, side, qty, price, is_market, dt) in enumerate(steps):
        cmd = (
            market(symbol, side, qty, f"m{i % 3}")
            if is_market
            else order(symbol, side, qty, price, f"m{i % 3}")
        )
        d.run(cmd, at=d.ts + dt + 1)
    for symbol in ("AAA", "BBB"):
        trades = h.trades(symbol)
        bars = h.bars(symbol)
        assert (
            sum(b.volume for b in bars)
            == sum(t.size for t in trades)
            == d.history.l1(symbol).volume
        )
        by_minute: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for t in trades:
            by_minute[t.ts - t.ts % NS_PER_MINUTE].append((t.price, t.size))
        assert [b.start for b in bars] == sorted(by_minute)
        for b in bars:
            prices = [p for p, _ in by_minute[b.start]]
            assert (b.open, b.close) == (prices[0], prices[-1])
            assert (b.high, b.low) == (max(prices), min(prices))
            assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
            assert b.trade_count == len(prices)
            assert b.notional == sum(p * q for p, q in by_minute[b.start])
            assert b.low <= b.vwap <= b.high
        longer = h.bars(symbol, minutes * NS_PER_MINUTE)
        assert sum(b.volume for b in longer) == sum(b.volume for b in bars)
        assert h.bars(symbol, minutes * NS_PER_MINUTE, ascending=False) == longer[::-1]
        assert [
            t for t in (u for u in published if isinstance(u, TradeUpdate)) if t.symbol == symbol
        ] == [TradeUpdate(symbol, t) for t in trades]
        # Every minute bar but the newest (still open) was published once as complete.
        sent = [
            u.bar
            for u in published
            if isinstance(u, BarUpdate) and u.kind == "bar" and u.symbol == symbol
        ]
        assert sent == bars[:-1] or sent == bars


def test_records_that_fell_off_a_full_history_are_released() -> None:
    """A full history holds its bound plus at most 1/16 of it: the records that fell off are
    released in batches (they used to stay referenced until the bound fell off again, so a
    full history could hold twice its bound)."""
    cap = 640
    h = MarketHistory(max_trades=cap, max_quotes=cap)
    d = listed(h)
    # The records are named tuples: allocated in their generated __new__ ("<string>").
    records = [tracemalloc.Filter(True, "<string>")]

    def held() -> int:
        snapshot = tracemalloc.take_snapshot().filter_traces(records)
        return sum(stat.size for stat in snapshot.statistics("filename"))

    tracemalloc.start(1)
    try:
        for _ in range(2 * cap):  # fill both histories (a cross is one trade and two quotes)
            for cmd in cross("AAA", 100, 1):
                d.run(cmd)
        samples = []
        for k in range(2 * cap):
            for cmd in cross("AAA", 100, 1):
                d.run(cmd)
            if k % (cap // 4) == 0:
                samples.append(held())
    finally:
        tracemalloc.stop()
    assert len(h.trades("AAA", limit=10 * cap)) == cap
    assert max(samples) < 1.25 * min(samples), samples
