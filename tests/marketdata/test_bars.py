"""BarBuilder: epoch-aligned OHLCV buckets, closing on later trades and on close_until."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradingfloor.exchange.engine.commands import AddInstrument, Command, NewOrder
from tradingfloor.exchange.engine.engine import Engine
from tradingfloor.exchange.engine.types import Side
from tradingfloor.exchange.marketdata.bars import (
    INTERVALS,
    MAX_BAR_HISTORY,
    Bar,
    BarBuilder,
    bucket_start,
)
from tradingfloor.exchange.marketdata.views import MarketDataError

S = 1_000_000_000
MIN = 60 * S
DAY = 24 * 60 * MIN
T0 = 1_700_000_000 * S  # 2023-11-14T22:13:20Z


def test_interval_lengths_and_alignment_to_the_epoch() -> None:
    assert INTERVALS == {"1m": MIN, "5m": 5 * MIN, "1h": 60 * MIN, "1d": DAY}
    assert bucket_start(T0, MIN) == 1_699_999_980 * S  # 22:13:00
    assert bucket_start(T0, 5 * MIN) == 1_699_999_800 * S  # 22:10:00
    assert bucket_start(T0, 60 * MIN) == 1_699_999_200 * S  # 22:00:00
    assert bucket_start(T0, DAY) == 1_699_920_000 * S  # 2023-11-14T00:00:00Z
    assert bucket_start(MIN, MIN) == MIN  # a bucket includes its first nanosecond
    assert bucket_start(MIN - 1, MIN) == 0


def test_ohlcv_of_one_bucket() -> None:
    b = BarBuilder(["1m"])
    for dt, price, qty in ((1, 100, 5), (2, 103, 1), (3, 98, 2), (4, 101, 7)):
        assert b.add_trade("AAA", T0 + dt * S, price, qty) == []
    assert b.current("AAA", "1m") == Bar("AAA", "1m", T0 - 20 * S, 100, 103, 98, 101, 15)
    assert b.current("BBB", "1m") is None
    assert b.history("AAA", "1m") == []


def test_a_later_trade_closes_the_bar_per_symbol_and_interval() -> None:
    b = BarBuilder()
    start = bucket_start(T0, MIN)
    b.add_trade("AAA", start, 100, 1)
    b.add_trade("BBB", start + 30 * S, 50, 1)
    assert b.current("AAA", "1m") is not None
    assert b.add_trade("BBB", start + MIN, 51, 1) != []  # another symbol: AAA's bar stays open
    assert b.current("AAA", "1m") == Bar("AAA", "1m", start, 100, 100, 100, 100, 1)
    closed = b.add_trade("AAA", start + MIN, 102, 4)  # first nanosecond of the next minute
    assert closed == [Bar("AAA", "1m", start, 100, 100, 100, 100, 1)]
    assert b.history("AAA", "1m") == closed
    assert b.current("AAA", "1m") == Bar("AAA", "1m", start + MIN, 102, 102, 102, 102, 4)
    assert b.current("AAA", "5m") == Bar(
        "AAA", "5m", bucket_start(T0, 5 * MIN), 100, 102, 100, 102, 5
    )
    # Jumping a day closes every interval, shortest first; empty buckets make no bars.
    closed = b.add_trade("AAA", start + DAY, 99, 1)
    assert [(c.interval, c.volume) for c in closed] == [("1m", 4), ("5m", 5), ("1h", 5), ("1d", 5)]
    assert len(b.history("AAA", "1m")) == 2


def test_close_until_closes_bars_whose_end_has_passed() -> None:
    b = BarBuilder(["1m", "5m"])
    start = bucket_start(T0, 5 * MIN)
    b.add_trade("BBB", start + 10 * S, 10, 1)
    b.add_trade("AAA", start + 30 * S, 20, 2)
    assert b.close_until(start + MIN - 1) == []
    assert b.close_until(start + MIN) == [
        Bar("AAA", "1m", start, 20, 20, 20, 20, 2),  # ordered by end, symbol, interval
        Bar("BBB", "1m", start, 10, 10, 10, 10, 1),
    ]
    assert b.current("AAA", "1m") is None
    assert b.current("AAA", "5m") is not None
    assert [(x.symbol, x.interval) for x in b.close_until(start + DAY)] == [
        ("AAA", "5m"),
        ("BBB", "5m"),
    ]
    assert b.close_until(start + DAY) == []
    b.add_trade("AAA", start + DAY, 21, 1)  # opens a fresh bar
    assert b.current("AAA", "1m") == Bar("AAA", "1m", start + DAY, 21, 21, 21, 21, 1)


def test_time_must_not_go_backwards_and_trades_must_be_positive() -> None:
    b = BarBuilder()
    b.close_until(T0)
    with pytest.raises(MarketDataError, match="backwards"):
        b.add_trade("AAA", T0 - 1, 100, 1)
    with pytest.raises(MarketDataError):
        b.add_trade("AAA", T0, 100, 0)
    with pytest.raises(ValueError):
        BarBuilder(["2m"])
    with pytest.raises(KeyError):
        BarBuilder(["1m"]).history("AAA", "5m")


def test_history_is_bounded() -> None:
    b = BarBuilder(["1m"])
    for i in range(MAX_BAR_HISTORY + 3):
        b.add_trade("AAA", i * MIN, 100 + i, 1)
    history = b.history("AAA", "1m")
    assert len(history) == MAX_BAR_HISTORY
    assert history[0].start == 2 * MIN  # the oldest two were dropped
    assert history[-1].start == (MAX_BAR_HISTORY + 1) * MIN


trade_steps = st.lists(
    st.tuples(
        st.sampled_from(["AAA", "BBB"]),
        st.integers(min_value=0, max_value=3 * 60 * MIN),  # time step
        st.integers(min_value=1, max_value=1_000),
        st.integers(min_value=1, max_value=100),
    ),
    max_size=80,
)


@settings(max_examples=100, deadline=None)
@given(trade_steps)
def test_bars_equal_a_naive_grouping(steps: list[tuple[str, int, int, int]]) -> None:
    b = BarBuilder()
    ts = T0
    trades = []
    emitted: list[Bar] = []
    for symbol, dt, price, qty in steps:
        ts += dt
        trades.append((symbol, ts, price, qty))
        emitted += b.add_trade(symbol, ts, price, qty)
    emitted += b.close_until(ts + DAY)
    for name, length in INTERVALS.items():
        groups: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
        for symbol, t, price, qty in trades:
            groups[(symbol, t - t % length)].append((price, qty))
        expected = sorted(
            Bar(s, name, start, g[0][0], max(p for p, _ in g), min(p for p, _ in g), g[-1][0],
                sum(q for _, q in g))
            for (s, start), g in groups.items()
        )  # fmt: skip
        got = sorted(bar for bar in emitted if bar.interval == name)
        assert got == expected
        for symbol in ("AAA", "BBB"):
            assert b.history(symbol, name) == [bar for bar in got if bar.symbol == symbol]


def test_bars_from_engine_trades() -> None:
    engine, b = Engine(), BarBuilder(["1m"])
    cmds: list[Command] = [
        AddInstrument(symbol="AAA"),
        NewOrder(symbol="AAA", member="s", cl_ord_id="s1", side=Side.SELL, qty=10, price=100),
        NewOrder(symbol="AAA", member="s", cl_ord_id="s2", side=Side.SELL, qty=10, price=101),
        NewOrder(symbol="AAA", member="b", cl_ord_id="b1", side=Side.BUY, qty=15, price=101),
        NewOrder(symbol="AAA", member="b", cl_ord_id="b2", side=Side.BUY, qty=2, price=101),
    ]
    closed: list[Bar] = []
    for seq, (cmd, ts) in enumerate(zip(cmds, (T0, T0, T0, T0 + S, T0 + MIN), strict=True), 1):
        for ev in engine.apply(seq, ts, cmd):
            closed += b.apply(ev)
    start = bucket_start(T0, MIN)
    assert closed == [Bar("AAA", "1m", start, 100, 101, 100, 101, 15)]
    assert b.current("AAA", "1m") == Bar("AAA", "1m", start + MIN, 101, 101, 101, 101, 2)


def test_state_hash_follows_the_content() -> None:
    a, c = BarBuilder(), BarBuilder()
    for b in (a, c):
        b.add_trade("AAA", T0, 100, 1)
        b.add_trade("AAA", T0 + MIN, 101, 1)
    assert a.state_hash() == c.state_hash()
    c.add_trade("AAA", T0 + MIN, 101, 1)
    assert a.state_hash() != c.state_hash()
