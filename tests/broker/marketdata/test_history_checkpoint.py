"""The market history's checkpoint (``broker.history``): a history restored from the checkpoint
after step ``k`` and fed the rest answers every query, and publishes every update, as the one
that was fed everything; unusable bytes are refused and leave the history fresh."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradingfloor.broker.market.history import BarUpdate, MarketHistory, MarketUpdate
from tradingfloor.broker.market.history_state import HISTORY_STATE_VERSION
from tradingfloor.exchange.checkpoint import CheckpointError
from tradingfloor.exchange.engine.commands import AddInstrument, CancelOrder, Command, SetPhase
from tradingfloor.exchange.engine.engine import Engine
from tradingfloor.exchange.engine.events import Accepted
from tradingfloor.exchange.engine.types import Phase, Side

from .support import DAY, LISTED_AT, MINUTE, market, order

Step = tuple[str, Any]  # ("events", [Event, ...]) or ("clock", ts) for close_until
CAPS = {"max_trades": 12, "max_quotes": 15, "max_minute_bars": 6, "max_daily_bars": 3}
SYMBOLS = ("AAA", "BBB")

actions = st.one_of(
    st.tuples(
        st.just("limit"),
        st.sampled_from(SYMBOLS),
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(1, 20),
        st.integers(95, 105),
    ),
    st.tuples(
        st.just("market"),
        st.sampled_from(SYMBOLS),
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(1, 20),
    ),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("phase"), st.sampled_from(SYMBOLS), st.sampled_from(list(Phase))),
    st.tuples(st.just("list"), st.sampled_from(["CCC", "DDD"])),
    st.tuples(st.just("clock"), st.integers(1, 3 * MINUTE)),
)
waits = st.sampled_from([1_000, 20 * 10**9, 59 * 10**9, MINUTE, 7 * MINUTE, DAY])


def _steps(plan: list[tuple[tuple[Any, ...], int]]) -> list[Step]:
    """The events of a real engine running the plan (and the clock's close_until calls)."""
    engine = Engine()
    seq, ts = 0, LISTED_AT
    steps: list[Step] = []
    live: list[tuple[str, int]] = []  # (symbol, order id) of accepted orders
    listed: set[str] = set()

    def run(command: Command) -> None:
        nonlocal seq
        seq += 1
        events = engine.apply(seq, ts, command)
        live.extend((e.symbol, e.order_id) for e in events if isinstance(e, Accepted))
        steps.append(("events", events))

    for symbol in SYMBOLS:
        run(AddInstrument(symbol=symbol, tick_size="0.05" if symbol == "BBB" else "0.01"))
        listed.add(symbol)
    for i, (action, wait) in enumerate(plan):
        ts += wait
        kind = action[0]
        if kind == "limit":
            _, symbol, side, qty, price = action
            run(order(symbol, side, qty, price, f"m{i % 3}"))
        elif kind == "market":
            _, symbol, side, qty = action
            run(market(symbol, side, qty, f"m{i % 3}"))
        elif kind == "cancel" and live:
            symbol, oid = live[action[1] % len(live)]
            run(CancelOrder(symbol=symbol, member="ops", order_id=oid))
        elif kind == "phase":
            run(SetPhase(symbol=action[1], phase=action[2]))
        elif kind == "list" and action[1] not in listed:
            listed.add(action[1])
            run(AddInstrument(symbol=action[1], collar_bps=10_000))
        elif kind == "clock":
            steps.append(("clock", ts + action[1]))
    return steps


def _feed(history: MarketHistory, steps: Sequence[Step]) -> None:
    for kind, value in steps:
        if kind == "events":
            history.on_events(value)
        else:
            history.close_until(value)


def _answers(history: MarketHistory) -> list[Any]:
    """Every query the data API asks, for every symbol."""
    out: list[Any] = [history.symbols(), history.now]
    for symbol in history.symbols():
        out.append(
            [
                history.trades(symbol),
                history.trades(symbol, ascending=False, limit=3),
                history.quotes(symbol),
                history.bars(symbol),
                history.bars(symbol, 5 * MINUTE),
                history.bars(symbol, DAY),
                history.latest_trade(symbol),
                history.latest_quote(symbol),
                history.latest_bar(symbol),
                history.daily_bar(symbol),
                history.previous_daily_bar(symbol),
                history.l1(symbol),
                history.tick_size(symbol),
            ]
        )
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(actions, waits), max_size=70), st.data())
def test_a_restored_history_answers_and_publishes_as_one_fed_everything(
    plan: list[tuple[tuple[Any, ...], int]], data: st.DataObject
) -> None:
    steps = _steps(plan)
    k = data.draw(st.integers(0, len(steps)), label="k")
    a, b, c = MarketHistory(**CAPS), MarketHistory(**CAPS), MarketHistory(**CAPS)
    _feed(a, steps[:k])
    _feed(b, steps[:k])
    saved = b.checkpoint()
    c.restore_checkpoint(saved)
    assert c.checkpoint() == saved  # the restored history saves the same bytes
    published_a: list[MarketUpdate] = []
    published_c: list[MarketUpdate] = []
    a.add_listener(published_a.extend)
    c.add_listener(published_c.extend)
    _feed(a, steps[k:])
    _feed(c, steps[k:])
    assert c.state_hash() == a.state_hash()
    assert _answers(c) == _answers(a)
    assert published_c == published_a
    assert c.checkpoint() == a.checkpoint()


def _sample() -> bytes:
    history = MarketHistory(**CAPS)
    plan: list[tuple[tuple[Any, ...], int]] = [
        (("limit", "AAA", Side.SELL, 5, 100 + i % 3), 20 * 10**9) for i in range(6)
    ]
    plan += [(("market", "AAA", Side.BUY, 2), 30 * 10**9) for _ in range(4)]
    plan += [(("limit", "BBB", Side.BUY, 3, 99), 1_000), (("market", "BBB", Side.SELL, 1), 1_000)]
    _feed(history, _steps(plan))
    assert history.bars("AAA") and history.quotes("BBB")
    return history.checkpoint()


SAMPLE = _sample()


def _assert_refused(data: bytes) -> None:
    history = MarketHistory(**CAPS)
    fresh = history.checkpoint()
    with pytest.raises(CheckpointError):
        history.restore_checkpoint(data)
    assert history.checkpoint() == fresh
    assert history.state_hash() == MarketHistory(**CAPS).state_hash()
    assert history.symbols() == []


@given(st.binary(max_size=300))
def test_garbage_is_refused_and_the_history_stays_fresh(data: bytes) -> None:
    _assert_refused(data)


@given(st.integers(0, len(SAMPLE) - 1))
def test_a_truncated_checkpoint_is_refused(cut: int) -> None:
    _assert_refused(SAMPLE[:cut])


def _changed(path: Sequence[int], value: Any) -> bytes:
    state: list[Any] = msgspec.msgpack.decode(SAMPLE)
    target = state
    for index in path[:-1]:
        target = target[index]
    target[path[-1]] = value
    return msgspec.msgpack.encode(state)


# HistoryState: [version, book, now, unpublished, symbols]; SymbolState: [symbol, trades,
# quotes, minutes, days, last_quote, quote_key, published_minute]
@pytest.mark.parametrize(
    ("path", "value"),
    [
        ((0,), HISTORY_STATE_VERSION + 1),
        ((0,), 0),
        ((2,), -1),
        ((3,), [["ZZZ", 0]]),
        ((3,), [["AAA", 1]]),
        ((4, 0, 0), "ZZZ"),  # a symbol the book does not list
        ((4, 0, 1), [[2, 10, 100, 1, "buy", "continuous"], [1, 9, 100, 1, "buy", "continuous"]]),
        ((4, 0, 1), [[1, 10, 100, 1, "up", "continuous"]]),
        ((4, 0, 1), [[1, 10, 100, 1, "buy", "lunch"]]),
        ((4, 0, 3), [[MINUTE + 1, 100, 100, 100, 100, 1, 1, 100]]),
        ((4, 0, 3), [[MINUTE, 100, 99, 100, 100, 1, 1, 100]]),
        ((4, 0, 3), [[2 * MINUTE, 1, 1, 1, 1, 1, 1, 1], [MINUTE, 1, 1, 1, 1, 1, 1, 1]]),
        ((4, 0, 6), 10**6),  # a quote number that is not the last quote's
        ((4, 0, 5), [1, 2, 3, 4]),  # a top of book that is not the last quote's
    ],
)
def test_a_checkpoint_of_another_version_or_with_impossible_values_is_refused(
    path: tuple[int, ...], value: Any
) -> None:
    _assert_refused(_changed(path, value))


def test_extra_fields_and_a_missing_symbol_are_refused() -> None:
    state: list[Any] = msgspec.msgpack.decode(SAMPLE)
    _assert_refused(msgspec.msgpack.encode([*state, 1]))
    state[4] = state[4][:1]
    _assert_refused(msgspec.msgpack.encode(state))


def test_only_a_fresh_history_restores_and_smaller_bounds_keep_the_newest() -> None:
    history = MarketHistory(**CAPS)
    history.restore_checkpoint(SAMPLE)
    with pytest.raises(CheckpointError):
        history.restore_checkpoint(SAMPLE)
    smaller = MarketHistory(max_trades=2, max_quotes=2, max_minute_bars=1, max_daily_bars=1)
    smaller.restore_checkpoint(SAMPLE)
    assert smaller.trades("AAA") == history.trades("AAA")[-2:]
    assert smaller.quotes("BBB") == history.quotes("BBB")[-2:]
    assert smaller.bars("AAA") == history.bars("AAA")[-1:]


def test_a_late_trade_after_a_restore_republishes_its_published_minute() -> None:
    """``close_until`` ahead of the venue published a minute; a trade in that minute after the
    restart publishes it again as ``updated_bar``, as it would have without a restart."""
    first = [(("limit", "AAA", Side.SELL, 5, 100), 1_000), (("market", "AAA", Side.BUY, 1), 1_000)]
    steps = _steps([*first, (("clock", MINUTE), 1_000), (("market", "AAA", Side.BUY, 1), 1_000)])
    assert steps[-2][0] == "clock"
    a, c = MarketHistory(**CAPS), MarketHistory(**CAPS)
    _feed(a, steps[:-1])
    c.restore_checkpoint(a.checkpoint())
    published_a: list[MarketUpdate] = []
    published_c: list[MarketUpdate] = []
    a.add_listener(published_a.extend)
    c.add_listener(published_c.extend)
    _feed(a, steps[-1:])
    _feed(c, steps[-1:])
    assert [u.kind for u in published_a if isinstance(u, BarUpdate)] == [
        "updated_bar",
        "daily_bar",
    ]
    assert published_c == published_a
