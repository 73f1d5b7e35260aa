"""MarketDataBook: the L1/L2/L3 books rebuilt from engine events equal the engine's own views."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradingfloor.exchange.engine.commands import (
    AddInstrument,
    CancelOrder,
    Command,
    MassCancel,
    NewOrder,
    ReplaceOrder,
    SetKillSwitch,
    SetPhase,
)
from tradingfloor.exchange.engine.engine import Engine
from tradingfloor.exchange.engine.events import Event, Trade
from tradingfloor.exchange.engine.types import OrdType, PegType, Phase, Side, STPMode, TimeInForce
from tradingfloor.exchange.marketdata.views import (
    DEFAULT_DEPTH,
    L1,
    MAX_TRADES,
    MarketDataBook,
    MarketDataError,
    TradeTick,
)

SYMBOLS = ("AAA", "BBB")
MEMBERS = ("m1", "m2", "m3")
PHASES = (
    [Phase.PRE_OPEN, Phase.OPENING_AUCTION, Phase.HALTED, Phase.CLOSED]
    + [Phase.CLOSING_AUCTION] * 2 + [Phase.CONTINUOUS] * 4
)  # fmt: skip
KINDS = (
    ["limit"] * 5 + ["market", "ioc", "iceberg", "iceberg", "hidden"]
    + ["peg", "peg", "cls", "stop", "fok"]
)  # fmt: skip


@st.composite
def order_fields(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(KINDS))
    qty = draw(st.integers(min_value=1, max_value=20))
    fields: dict[str, Any] = {
        "member": draw(st.sampled_from(MEMBERS)),
        "side": draw(st.sampled_from([Side.BUY, Side.SELL])),
        "qty": qty,
        "price": draw(st.integers(min_value=96, max_value=104)),
        "stp": draw(st.sampled_from([STPMode.NONE] * 3 + list(STPMode))),
    }
    if kind == "market":
        fields.update(ord_type=OrdType.MARKET, price=0)
    elif kind == "ioc":
        fields["tif"] = TimeInForce.IOC
    elif kind == "fok":
        fields["tif"] = TimeInForce.FOK
    elif kind == "iceberg":
        fields.update(qty=qty + 5, display_qty=draw(st.integers(min_value=1, max_value=qty + 4)))
    elif kind == "hidden":
        fields["hidden"] = True
    elif kind == "peg":
        fields.update(
            ord_type=OrdType.PEGGED, price=0, peg=draw(st.sampled_from(list(PegType)[1:]))
        )
    elif kind == "cls":
        fields["tif"] = TimeInForce.CLS
    elif kind == "stop":
        fields.update(ord_type=OrdType.STOP, price=0, stop_price=fields["price"])
    return fields


# Both instruments listed with a quote on each side, so pegs have a reference from the start.
PRELUDE: list[Command] = [
    AddInstrument(symbol="AAA", collar_bps=10_000),
    AddInstrument(symbol="BBB", tick_size="0.05", collar_bps=10_000),
    *(
        NewOrder(symbol=s, member="mm", cl_ord_id=f"q{s}{side}", side=side, qty=5, price=p)
        for s in SYMBOLS
        for side, p in ((Side.BUY, 99), (Side.SELL, 101))
    ),
]


def draw_command(data: st.DataObject, engine: Engine, i: int) -> Command:
    """Command ``i``, at random; cancels and replaces mostly aim at live orders of the engine."""
    draw = data.draw
    action = draw(st.sampled_from(["new"] * 6 + ["cancel", "replace"] * 2 + ["phase"] * 2 + ["x"]))
    symbol = draw(st.sampled_from(SYMBOLS))
    member = draw(st.sampled_from(MEMBERS))
    if action in ("cancel", "replace") and engine.orders and draw(st.integers(0, 9)):
        live = engine.orders[draw(st.sampled_from(sorted(engine.orders)))]
        symbol, member, target = live.symbol, live.member, live.order_id
    else:
        target = draw(st.integers(min_value=1, max_value=i - 1))  # maybe a dead order
    if action == "new":
        return NewOrder(symbol=symbol, cl_ord_id=f"c{i}", **draw(order_fields()))
    if action == "cancel":
        return CancelOrder(symbol=symbol, member=member, order_id=target)
    if action == "replace":
        return ReplaceOrder(
            symbol=symbol,
            member=member,
            cl_ord_id=f"r{i}",
            order_id=target,
            qty=draw(st.integers(min_value=1, max_value=30)),
            price=draw(st.sampled_from([0, 0, 96, 99, 100, 101, 104])),
        )
    if action == "phase":
        return SetPhase(symbol=symbol, phase=draw(st.sampled_from(PHASES)))
    resume, mass = (
        SetKillSwitch(member=member, active=False),
        MassCancel(member=member, symbol=symbol),
    )
    others: list[Command] = [SetKillSwitch(member=member, active=True), resume, mass, resume, mass]
    return draw(st.sampled_from(others))


def assert_same_views(engine: Engine, book: MarketDataBook, trades: dict[str, list[Trade]]) -> None:
    assert book.symbols() == list(engine.instruments)
    for symbol in engine.instruments:
        l1 = book.l1(symbol)
        assert l1[:4] == engine.l1(symbol)
        assert l1.last == engine.last_trade_price(symbol)
        assert l1.volume == engine.instrument(symbol).volume
        l2 = book.l2(symbol)
        assert (l2.bids, l2.asks) == engine.l2(symbol, DEFAULT_DEPTH)
        full = book.l2(symbol, 1000)
        assert (full.bids, full.asks) == engine.l2(symbol, 1000)
        l3 = book.l3(symbol)
        assert (l3.bids, l3.asks) == engine.l3(symbol)
        assert book.phase(symbol) == engine.phase(symbol)
        assert (
            book.trades(symbol)
            == [TradeTick(t.trade_id, t.ts, t.price, t.qty, t.aggressor) for t in trades[symbol]][
                -MAX_TRADES:
            ]
        )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.integers(min_value=1, max_value=60))
def test_projection_equals_engine_views_after_every_command(data: st.DataObject, n: int) -> None:
    engine = Engine()
    book = MarketDataBook()
    trades: dict[str, list[Trade]] = {s: [] for s in SYMBOLS}
    for seq in range(1, len(PRELUDE) + n + 1):
        cmd = PRELUDE[seq - 1] if seq <= len(PRELUDE) else draw_command(data, engine, seq)
        for ev in engine.apply(seq, 1_000 * seq, cmd):
            assert book.apply(ev)
            if isinstance(ev, Trade):
                trades[ev.symbol].append(ev)
        assert_same_views(engine, book, trades)
    assert book.last_seq == engine.event_seq


def feed(book: MarketDataBook, engine: Engine, cmds: list[Command], start: int = 1) -> list[Event]:
    out: list[Event] = []
    for seq, cmd in enumerate(cmds, start):
        for ev in engine.apply(seq, 1_000 * seq, cmd):
            book.apply(ev)
            out.append(ev)
    return out


def order(side: Side, qty: int, price: int, member: str = "m1", **kw: Any) -> NewOrder:
    clid = f"{member}-{side}-{qty}-{price}"
    return NewOrder(
        symbol="AAA", member=member, cl_ord_id=clid, side=side, qty=qty, price=price, **kw
    )


def test_l1_tracks_best_last_volume_and_the_time_of_the_last_change() -> None:
    engine, book = Engine(), MarketDataBook()
    feed(book, engine, [AddInstrument(symbol="AAA")])
    assert book.l1("AAA") == L1(0, 0, 0, 0, 0, 0, 1_000)
    feed(book, engine, [order(Side.BUY, 5, 100), order(Side.SELL, 7, 102)], start=2)
    assert book.l1("AAA") == L1(100, 5, 102, 7, 0, 0, 3_000)
    feed(book, engine, [order(Side.BUY, 1, 99)], start=4)  # behind the best: L1 unchanged
    assert book.l1("AAA").ts == 3_000
    assert book.l2("AAA").ts == 4_000
    feed(book, engine, [order(Side.BUY, 3, 102, member="m2")], start=5)
    assert book.l1("AAA") == L1(100, 5, 102, 4, 102, 3, 5_000)
    assert book.trades("AAA", 1) == [TradeTick(1, 5_000, 102, 3, "buy")]
    assert book.tick_size("AAA") == book.tick_size("AAA").__class__("0.01")


def test_duplicates_are_ignored_and_gaps_raise() -> None:
    engine, book = Engine(), MarketDataBook()
    events = feed(book, engine, [AddInstrument(symbol="AAA"), order(Side.BUY, 5, 100)])
    before = book.state_hash()
    assert not any(book.apply(ev) for ev in events)  # replayed: idempotent
    assert book.state_hash() == before
    more = engine.apply(3, 3_000, order(Side.SELL, 5, 101))
    with pytest.raises(MarketDataError, match="missed"):
        book.apply(more[1])
    assert book.state_hash() == before


def test_events_for_unlisted_symbols_raise() -> None:
    engine = Engine()
    engine.apply(1, 1, AddInstrument(symbol="AAA"))
    events = engine.apply(2, 2, order(Side.BUY, 5, 100))
    book = MarketDataBook()
    book.last_seq = events[0].seq - 1  # joined mid-stream, after the listing
    with pytest.raises(MarketDataError, match="unlisted"):
        for ev in events:
            book.apply(ev)


def test_trade_history_is_bounded_and_n_counts_from_the_newest() -> None:
    engine, book = Engine(), MarketDataBook()
    cmds: list[Command] = [AddInstrument(symbol="AAA")]
    for i in range(MAX_TRADES + 5):
        cmds.append(order(Side.SELL, 1, 100, member=f"s{i}"))
        cmds.append(order(Side.BUY, 1, 100, member=f"b{i}"))
    feed(book, engine, cmds)
    ticks = book.trades("AAA")
    assert len(ticks) == MAX_TRADES
    assert [t.trade_id for t in ticks] == list(range(6, MAX_TRADES + 6))
    assert book.trades("AAA", 2) == ticks[-2:]
    assert book.trades("AAA", 0) == []
    with pytest.raises(ValueError):
        book.trades("AAA", -1)


def test_state_hash_is_equal_for_equal_streams() -> None:
    cmds: list[Command] = [AddInstrument(symbol="AAA"), order(Side.BUY, 5, 100)]
    a, b = MarketDataBook(), MarketDataBook()
    feed(a, Engine(), cmds)
    feed(b, Engine(), cmds)
    assert a.state_hash() == b.state_hash()
    feed(b, Engine(), [], start=3)
    c = MarketDataBook()
    feed(c, Engine(), [*cmds, order(Side.BUY, 1, 99, member="m2")])
    assert c.state_hash() != a.state_hash()


def test_l3_follows_iceberg_refills_and_self_trade_decrements() -> None:
    engine, book = Engine(), MarketDataBook()
    feed(
        book,
        engine,
        [
            AddInstrument(symbol="AAA"),
            order(Side.SELL, 10, 100, display_qty=4),  # iceberg: 4 shown
            order(Side.SELL, 10, 100, member="m2"),
            order(Side.BUY, 5, 100, member="m3"),  # 4 from the slice (refill behind m2), 1 m2
            order(Side.BUY, 3, 100, member="m2", stp=STPMode.DECREMENT),  # m2's sell: 9 -> 6
        ],
    )
    bids, asks, _ts = book.l3("AAA")
    assert (bids, asks) == engine.l3("AAA")
    assert asks == [(100, 6, 3, "m2"), (100, 4, 2, "m1")]
    assert book.l2("AAA").asks == [(100, 10, 2)]
