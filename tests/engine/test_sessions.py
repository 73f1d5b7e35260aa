"""Trading sessions and controls of the matching engine.

Call auctions (opening, closing, re-opening), the schedule, halts, price bands, the kill switch,
instrument validation and snapshot/restore in the middle of all of that.
"""

from __future__ import annotations

from typing import Any

import pytest

from tradingfloor.exchange.engine.commands import (
    AddInstrument,
    CancelOrder,
    Command,
    Halt,
    MassCancel,
    NewOrder,
    OrderStatusRequest,
    ReplaceOrder,
    Resume,
    Schedule,
    SetKillSwitch,
    SetPhase,
    SetPriceBand,
    SetReferencePrice,
    Tick,
)
from tradingfloor.exchange.engine.engine import Engine
from tradingfloor.exchange.engine.events import (
    Accepted,
    AuctionUncrossed,
    Cancelled,
    Event,
    Expired,
    InstrumentAdded,
    InstrumentUpdated,
    KillSwitchChanged,
    LevelChanged,
    OrderStatus,
    PhaseChanged,
    Rejected,
    Trade,
    Triggered,
)
from tradingfloor.exchange.engine.instrument import NS_PER_DAY
from tradingfloor.exchange.engine.reasons import Reject
from tradingfloor.exchange.engine.types import (
    BandAction,
    CancelReason,
    OrdType,
    PegType,
    Phase,
    Side,
    TimeInForce,
)

SYM = "ACME"
BUY, SELL = Side.BUY, Side.SELL
HOUR = 3_600_000_000_000
DAY0 = 20_000 * NS_PER_DAY  # some midnight UTC
SCHEDULE = Schedule(
    pre_open=7 * HOUR, open_call=8 * HOUR, open=9 * HOUR, close_call=16 * HOUR, close=17 * HOUR
)


class Sim:
    """A tiny driver: stamps seq 1, 2, 3, ... and keeps time; order ids are command seqs."""

    def __init__(self, engine: Engine | None = None, seq: int = 0, ts: int = 0) -> None:
        self.e = engine or Engine()
        self.seq = seq
        self.ts = ts
        self.n = 0
        self.events: list[Event] = []

    def run(self, cmd: Command, ts: int | None = None) -> list[Event]:
        self.seq += 1
        if ts is not None:
            self.ts = ts
        self.events = self.e.apply(self.seq, self.ts, cmd)
        return self.events

    def add(self, symbol: str = SYM, **kw: Any) -> list[Event]:
        return self.run(AddInstrument(symbol=symbol, **kw))

    def order(
        self,
        side: Side,
        qty: int,
        price: int = 0,
        member: str = "m1",
        symbol: str = SYM,
        ts: int | None = None,
        **kw: Any,
    ) -> int:
        """Send a NewOrder; returns its order id (= its seq). Events are in ``self.events``."""
        self.n += 1
        kw.setdefault("cl_ord_id", f"c{self.n}")
        if price == 0 and "ord_type" not in kw:
            kw["ord_type"] = OrdType.MARKET
        self.run(NewOrder(symbol=symbol, member=member, side=side, qty=qty, price=price, **kw), ts)
        return self.seq

    def phase(self, phase: Phase, symbol: str = SYM, ts: int | None = None) -> list[Event]:
        return self.run(SetPhase(symbol=symbol, phase=phase), ts)

    def book(self, symbol: str = SYM) -> tuple[list[Any], list[Any]]:
        return self.e.l2(symbol, 50)


def of(events: list[Event], kind: type) -> list[Any]:
    return [ev for ev in events if isinstance(ev, kind)]


def rejected(events: list[Event]) -> int:
    """The code of the single Rejected event, after checking it is the only event."""
    assert len(events) == 1 and isinstance(events[0], Rejected), events
    return events[0].code


def trades(events: list[Event]) -> list[tuple[int, int, int, int]]:
    """(price, qty, buy order id, sell order id) of each trade."""
    return [(t.price, t.qty, t.buy_order_id, t.sell_order_id) for t in of(events, Trade)]


def cancels(events: list[Event]) -> list[tuple[int, int, CancelReason]]:
    return [(c.order_id, c.cancelled_qty, c.reason) for c in of(events, Cancelled)]


def phases(events: list[Event]) -> list[tuple[Phase, str]]:
    return [(p.phase, p.reason) for p in of(events, PhaseChanged)]


def uncrossed(events: list[Event]) -> tuple[int, int, int]:
    (a,) = of(events, AuctionUncrossed)
    return a.price, a.qty, a.imbalance


def assert_not_crossed(sim: Sim, symbol: str = SYM) -> None:
    bid, _, ask, _ = sim.e.l1(symbol)
    assert not (bid and ask and bid >= ask), sim.e.l1(symbol)


def book_state(e: Engine) -> tuple[Any, ...]:
    """Everything observable of the books and orders (the snapshot minus seq/ts counters)."""
    return (
        {s: (e.l3(s), e.phase(s), e.last_trade_price(s)) for s in e.instruments},
        {oid: (o.leaves, o.price, o.loc, o.cl_ord_id) for oid, o in e.orders.items()},
        sorted(e.killed),
    )


def pre_open(sim: Sim, **kw: Any) -> None:
    kw.setdefault("reference_price", 100)
    sim.add(phase=Phase.PRE_OPEN, **kw)


# ================================================================== opening call


def test_orders_rest_crossed_in_pre_open_without_trading() -> None:
    sim = Sim()
    pre_open(sim)
    b = sim.order(BUY, 10, 102, member="b")
    assert of(sim.events, Accepted)[0].order_id == b
    sim.order(SELL, 10, 99, member="s")
    assert not of(sim.events, Trade)
    assert sim.book() == ([(102, 10, 1)], [(99, 10, 1)])
    assert sim.e.phase(SYM) == Phase.PRE_OPEN
    sim.phase(Phase.OPENING_AUCTION)
    assert phases(sim.events) == [(Phase.OPENING_AUCTION, "operator")]
    assert not of(sim.events, Trade) and not of(sim.events, AuctionUncrossed)
    sim.order(BUY, 5, 103, member="b")
    assert not of(sim.events, Trade)
    assert sim.book()[0] == [(103, 5, 1), (102, 10, 1)]


def _opening_book(sim: Sim) -> dict[str, int]:
    pre_open(sim)
    ids = {
        "b1": sim.order(BUY, 10, 102, member="b1"),
        "s1": sim.order(SELL, 15, 100, member="s1"),
        "b2": sim.order(BUY, 10, 101, member="b2"),
        "s2": sim.order(SELL, 10, 101, member="s2"),
        "b3": sim.order(BUY, 8, 101, member="b3"),
        "s3": sim.order(SELL, 5, 103, member="s3"),
        "b4": sim.order(BUY, 4, 99, member="b4"),
    }
    assert not of(sim.events, Trade)
    return ids


def test_open_uncrosses_at_the_max_volume_price_with_price_time_allocation() -> None:
    # 100: buy 28 / sell 15; 101: buy 28 / sell 25 (volume 25, +3); 102: buy 10 / sell 25.
    sim = Sim()
    ids = _opening_book(sim)
    ev = sim.phase(Phase.CONTINUOUS)
    assert uncrossed(ev) == (101, 25, 3)
    b1, b2, b3, s1, s2 = ids["b1"], ids["b2"], ids["b3"], ids["s1"], ids["s2"]
    # Buys in price then time order (b1 @102, b2 @101, b3 @101) meet sells (s1 @100, s2 @101).
    assert trades(ev) == [
        (101, 10, b1, s1),
        (101, 5, b2, s1),
        (101, 5, b2, s2),
        (101, 5, b3, s2),
    ]
    for t in of(ev, Trade):
        assert t.aggressor == ""
        assert t.maker_order_id == min(t.buy_order_id, t.sell_order_id)
        assert t.taker_order_id == max(t.buy_order_id, t.sell_order_id)
    assert [t.trade_id for t in of(ev, Trade)] == [1, 2, 3, 4]
    # b3 keeps 3 at 101; the book is no longer crossed.
    assert sim.book() == ([(101, 3, 1), (99, 4, 1)], [(103, 5, 1)])
    assert sim.e.orders[b3].leaves == 3
    assert_not_crossed(sim)
    assert sim.e.phase(SYM) == Phase.CONTINUOUS
    assert phases(ev) == [(Phase.CONTINUOUS, "operator")]
    # Event order: auction, trades, reference update, phase change, then levels.
    kinds = [type(x) for x in ev]
    assert kinds.index(AuctionUncrossed) < kinds.index(Trade)
    assert kinds.index(InstrumentUpdated) > max(i for i, k in enumerate(kinds) if k is Trade)
    assert kinds.index(PhaseChanged) > kinds.index(InstrumentUpdated)
    assert all(k is LevelChanged for k in kinds[kinds.index(PhaseChanged) + 1 :])
    assert [x.seq for x in ev] == list(range(ev[0].seq, ev[0].seq + len(ev)))


def test_open_moves_the_reference_price_to_the_uncross_price() -> None:
    sim = Sim()
    _opening_book(sim)
    ev = sim.phase(Phase.CONTINUOUS)
    (upd,) = of(ev, InstrumentUpdated)
    assert upd.reference_price == 101
    assert sim.e.instrument(SYM).reference_price == 101
    assert sim.e.last_trade_price(SYM) == 101


def test_continuous_trading_after_the_open_matches_normally() -> None:
    sim = Sim()
    ids = _opening_book(sim)
    sim.phase(Phase.CONTINUOUS)
    s = sim.order(SELL, 5, 99, member="s9")
    t = of(sim.events, Trade)
    assert [(x.price, x.qty, x.maker_order_id, x.aggressor) for x in t] == [
        (101, 3, ids["b3"], "sell"),
        (99, 2, ids["b4"], "sell"),
    ]
    assert s not in sim.e.orders


def test_on_open_leftovers_are_cancelled_after_the_open_day_orders_stay() -> None:
    sim = Sim()
    pre_open(sim)
    opg_buy = sim.order(BUY, 10, 101, member="b", tif=TimeInForce.OPG)
    day_buy = sim.order(BUY, 10, 101, member="b")
    sell = sim.order(SELL, 12, 101, member="s")
    opg_far = sim.order(SELL, 7, 110, member="s", tif=TimeInForce.OPG)
    ev = sim.phase(Phase.CONTINUOUS)
    assert uncrossed(ev) == (101, 12, 8)
    assert trades(ev) == [(101, 10, opg_buy, sell), (101, 2, day_buy, sell)]
    assert cancels(ev) == [(opg_far, 7, CancelReason.AUCTION_REMAINDER)]
    assert sim.e.orders[day_buy].leaves == 8
    assert sim.book() == ([(101, 8, 1)], [])
    # Cancels come after the trades, before the phase change.
    kinds = [type(x) for x in ev]
    assert kinds.index(Cancelled) < kinds.index(PhaseChanged)


def test_partially_filled_on_open_order_is_cancelled() -> None:
    sim = Sim()
    pre_open(sim)
    opg = sim.order(BUY, 10, 101, member="b", tif=TimeInForce.OPG)
    sim.order(SELL, 4, 100, member="s")
    ev = sim.phase(Phase.CONTINUOUS)
    # 100 and 101 both trade 4 with a buy surplus of 6; 100 is the reference.
    assert uncrossed(ev) == (100, 4, 6)
    assert cancels(ev) == [(opg, 6, CancelReason.AUCTION_REMAINDER)]
    assert sim.book() == ([], [])


def test_market_orders_in_the_call_execute_at_the_uncross_price_leftovers_cancelled() -> None:
    sim = Sim()
    pre_open(sim)
    mkt = sim.order(BUY, 30, member="b")
    a1 = sim.order(SELL, 10, 100, member="s")
    a2 = sim.order(SELL, 10, 101, member="s")
    sim.order(BUY, 5, 99, member="b2")
    # Market orders wait outside the book.
    assert sim.book() == ([(99, 5, 1)], [(100, 10, 1), (101, 10, 1)])
    sim.run(OrderStatusRequest(symbol=SYM, member="b", order_id=mkt))
    (st,) = of(sim.events, OrderStatus)
    assert st.status == "pending_auction"
    ev = sim.phase(Phase.CONTINUOUS)
    # 100: buy 30 / sell 10; 101: buy 30 / sell 20 (the 99 bid is below both).
    assert uncrossed(ev) == (101, 20, 10)
    assert trades(ev) == [(101, 10, mkt, a1), (101, 10, mkt, a2)]
    assert cancels(ev) == [(mkt, 10, CancelReason.AUCTION_REMAINDER)]
    assert mkt not in sim.e.orders
    assert sim.book() == ([(99, 5, 1)], [])


def test_market_orders_only_on_both_sides_trade_at_the_reference_price() -> None:
    sim = Sim()
    pre_open(sim, reference_price=250)
    b = sim.order(BUY, 30, member="b")
    s = sim.order(SELL, 20, member="s")
    ev = sim.phase(Phase.CONTINUOUS)
    assert uncrossed(ev) == (250, 20, 10)
    assert trades(ev) == [(250, 20, b, s)]
    assert cancels(ev) == [(b, 10, CancelReason.AUCTION_REMAINDER)]


def test_market_orders_only_without_a_reference_do_not_trade() -> None:
    sim = Sim()
    pre_open(sim, reference_price=0)
    b = sim.order(BUY, 30, member="b")
    s = sim.order(SELL, 20, member="s")
    ev = sim.phase(Phase.CONTINUOUS)
    assert uncrossed(ev) == (0, 0, 0)
    assert not of(ev, Trade)
    assert cancels(ev) == [
        (b, 30, CancelReason.AUCTION_REMAINDER),
        (s, 20, CancelReason.AUCTION_REMAINDER),
    ]


def test_nothing_crosses_at_the_open() -> None:
    sim = Sim()
    pre_open(sim)
    sim.order(BUY, 10, 99, member="b")
    opg = sim.order(SELL, 10, 101, member="s", tif=TimeInForce.OPG)
    ev = sim.phase(Phase.CONTINUOUS)
    assert uncrossed(ev) == (0, 0, 0)
    assert not of(ev, Trade) and not of(ev, InstrumentUpdated)
    assert sim.e.instrument(SYM).reference_price == 100
    assert cancels(ev) == [(opg, 10, CancelReason.AUCTION_REMAINDER)]
    assert sim.book() == ([(99, 10, 1)], [])


def test_uncross_allocates_iceberg_and_hidden_quantity() -> None:
    sim = Sim()
    pre_open(sim)
    ice = sim.order(SELL, 30, 100, member="s", display_qty=5)
    hid = sim.order(SELL, 10, 100, member="s", hidden=True)
    buy = sim.order(BUY, 38, 100, member="b")
    assert sim.book() == ([(100, 38, 1)], [(100, 5, 1)])
    ev = sim.phase(Phase.CONTINUOUS)
    assert uncrossed(ev) == (100, 38, -2)
    assert trades(ev) == [(100, 30, buy, ice), (100, 8, buy, hid)]
    assert sim.e.orders[hid].leaves == 2
    assert sim.book() == ([], [])


def test_stop_entered_in_the_call_waits_and_fires_after_the_open() -> None:
    sim = Sim()
    pre_open(sim)
    sim.order(BUY, 10, 101, member="b")
    sim.order(SELL, 10, 101, member="s")
    ask = sim.order(SELL, 10, 105, member="s")
    stop = sim.order(BUY, 3, member="t", ord_type=OrdType.STOP, stop_price=101)
    assert not of(sim.events, Triggered)
    ev = sim.phase(Phase.CONTINUOUS)
    (trig,) = of(ev, Triggered)
    assert trig.order_id == stop
    # The triggered market buy takes the 105 ask in continuous trading, after the phase change.
    assert trades(ev)[-1] == (105, 3, stop, ask)
    assert of(ev, Trade)[-1].aggressor == "buy"
    kinds = [type(x) for x in ev]
    assert kinds.index(PhaseChanged) < kinds.index(Triggered)


@pytest.mark.parametrize("phase", [Phase.PRE_OPEN, Phase.OPENING_AUCTION, Phase.CLOSING_AUCTION])
@pytest.mark.parametrize(
    "kw",
    [
        {"tif": TimeInForce.IOC},
        {"tif": TimeInForce.FOK},
        {"tif": TimeInForce.IOC, "ord_type": OrdType.MARKET, "price": 0},
        {"ord_type": OrdType.MARKET_TO_LIMIT, "price": 0},
        {"ord_type": OrdType.PEGGED, "peg": PegType.PRIMARY, "price": 0},
    ],
)
def test_immediate_pegged_and_mtl_orders_are_rejected_in_a_call(
    phase: Phase, kw: dict[str, Any]
) -> None:
    sim = Sim()
    sim.add(reference_price=100)
    sim.order(BUY, 10, 99, member="b")
    sim.order(SELL, 10, 101, member="s")
    sim.phase(phase)
    before = book_state(sim.e)
    kw = dict(kw)
    price = kw.pop("price", 100)
    sim.order(BUY, 5, price, **kw)
    assert rejected(sim.events) == Reject.WRONG_PHASE_FOR_TIF == 1005
    assert book_state(sim.e) == before


@pytest.mark.parametrize("phase", [Phase.CONTINUOUS, Phase.CLOSING_AUCTION])
def test_on_open_orders_are_rejected_outside_the_opening_phases(phase: Phase) -> None:
    sim = Sim()
    sim.add(reference_price=100)
    sim.phase(phase)
    sim.order(BUY, 5, 100, tif=TimeInForce.OPG)
    assert rejected(sim.events) == 1005
    sim.order(BUY, 5, tif=TimeInForce.OPG)
    assert rejected(sim.events) == 1005


def test_on_open_orders_are_accepted_in_both_opening_phases() -> None:
    sim = Sim()
    pre_open(sim)
    sim.order(BUY, 5, 100, tif=TimeInForce.OPG)
    assert of(sim.events, Accepted)
    sim.phase(Phase.OPENING_AUCTION)
    sim.order(BUY, 5, tif=TimeInForce.OPG)
    assert of(sim.events, Accepted)


def test_on_open_orders_are_frozen_in_the_opening_auction() -> None:
    sim = Sim()
    pre_open(sim)
    opg1 = sim.order(BUY, 5, 100, member="b", tif=TimeInForce.OPG)
    opg2 = sim.order(BUY, 5, 100, member="b", tif=TimeInForce.OPG)
    day = sim.order(BUY, 5, 100, member="b")
    # Still changeable in PRE_OPEN.
    sim.run(CancelOrder(symbol=SYM, member="b", order_id=opg2, cl_ord_id="x1"))
    assert cancels(sim.events) == [(opg2, 5, CancelReason.USER)]
    sim.phase(Phase.OPENING_AUCTION)
    before = book_state(sim.e)
    sim.run(CancelOrder(symbol=SYM, member="b", order_id=opg1))
    assert rejected(sim.events) == Reject.AUCTION_FROZEN == 1006
    assert sim.events[0].order_id == opg1
    sim.run(ReplaceOrder(symbol=SYM, member="b", cl_ord_id="x2", order_id=opg1, qty=3))
    assert rejected(sim.events) == 1006
    assert book_state(sim.e) == before
    # A mass cancel skips the frozen order; a day order stays cancellable.
    sim.run(MassCancel(member="b"))
    assert cancels(sim.events) == [(day, 5, CancelReason.MASS_CANCEL)]
    assert opg1 in sim.e.orders
    sim.run(MassCancel(member="b"))
    assert rejected(sim.events) == Reject.NOTHING_TO_CANCEL


def test_opening_auction_accepts_day_orders_that_do_not_match() -> None:
    sim = Sim()
    pre_open(sim)
    sim.phase(Phase.OPENING_AUCTION)
    sim.order(SELL, 5, 100, member="s")
    sim.order(BUY, 5, 100, member="b")
    assert not of(sim.events, Trade)
    assert sim.book() == ([(100, 5, 1)], [(100, 5, 1)])


# ================================================================== closing call


def _closing_setup(sim: Sim) -> dict[str, int]:
    sim.add(reference_price=100)
    ids = {
        "cls_buy": sim.order(BUY, 10, 101, member="b", tif=TimeInForce.CLS),
        "cls_mkt": sim.order(SELL, 4, member="s", tif=TimeInForce.CLS),
        "day_sell": sim.order(SELL, 10, 100, member="s"),
        "gtc_sell": sim.order(SELL, 5, 105, member="s", tif=TimeInForce.GTC),
        "day_buy": sim.order(BUY, 5, 90, member="b"),
        "gtc_buy": sim.order(BUY, 5, 91, member="b", tif=TimeInForce.GTC),
    }
    return ids


def test_on_close_orders_are_held_during_continuous_trading() -> None:
    sim = Sim()
    ids = _closing_setup(sim)
    # Neither CLS order is displayed; the crossing CLS buy did not trade with the 100 ask.
    assert sim.book() == ([(91, 5, 1), (90, 5, 1)], [(100, 10, 1), (105, 5, 1)])
    assert sim.e.last_trade_price(SYM) == 0
    for oid, member in ((ids["cls_buy"], "b"), (ids["cls_mkt"], "s")):
        sim.run(OrderStatusRequest(symbol=SYM, member=member, order_id=oid))
        assert of(sim.events, OrderStatus)[0].status == "pending_auction"
    # A continuous sell does not meet the held CLS buy either.
    sim.order(SELL, 1, 91, member="x")
    assert trades(sim.events) == [(91, 1, ids["gtc_buy"], sim.seq)]


def test_on_close_market_order_needs_no_liquidity_while_held() -> None:
    sim = Sim()
    sim.add(reference_price=100)
    sim.order(BUY, 10, member="b", tif=TimeInForce.CLS)
    assert of(sim.events, Accepted)
    sim.order(BUY, 10, member="b")  # a plain market order without liquidity is refused
    assert rejected(sim.events) == Reject.NO_LIQUIDITY


def test_on_close_orders_enter_the_book_at_the_closing_call() -> None:
    sim = Sim()
    ids = _closing_setup(sim)
    ev = sim.phase(Phase.CLOSING_AUCTION)
    assert phases(ev) == [(Phase.CLOSING_AUCTION, "operator")]
    assert not of(ev, Trade)
    assert [(x.side, x.price, x.qty) for x in of(ev, LevelChanged)] == [(BUY, 101, 10)]
    assert sim.book() == ([(101, 10, 1), (91, 5, 1), (90, 5, 1)], [(100, 10, 1), (105, 5, 1)])
    # Frozen now; a day order can still be cancelled.
    sim.run(CancelOrder(symbol=SYM, member="b", order_id=ids["cls_buy"]))
    assert rejected(sim.events) == 1006
    sim.run(CancelOrder(symbol=SYM, member="s", order_id=ids["cls_mkt"]))
    assert rejected(sim.events) == 1006
    sim.run(CancelOrder(symbol=SYM, member="b", order_id=ids["day_buy"]))
    assert cancels(sim.events) == [(ids["day_buy"], 5, CancelReason.USER)]


def test_on_close_orders_are_held_through_the_open() -> None:
    sim = Sim()
    pre_open(sim)
    cls = sim.order(BUY, 10, 101, member="b", tif=TimeInForce.CLS)
    sim.order(SELL, 10, 100, member="s")
    ev = sim.phase(Phase.CONTINUOUS)
    assert not of(ev, Trade) and not of(ev, Cancelled)
    assert cls in sim.e.instrument(SYM).held
    assert sim.book() == ([], [(100, 10, 1)])


def test_market_on_open_order_executes_in_the_opening_auction() -> None:
    sim = Sim()
    pre_open(sim)
    moo = sim.order(SELL, 10, member="s", tif=TimeInForce.OPG)
    b = sim.order(BUY, 6, 99, member="b")
    ev = sim.phase(Phase.CONTINUOUS)
    assert uncrossed(ev) == (99, 6, -4)
    assert trades(ev) == [(99, 6, b, moo)]
    assert cancels(ev) == [(moo, 4, CancelReason.AUCTION_REMAINDER)]


def test_on_close_orders_never_trade_in_continuous_trading() -> None:
    sim = Sim()
    sim.add(reference_price=100)
    cls = sim.order(BUY, 10, 101, member="b", tif=TimeInForce.CLS)
    sim.phase(Phase.CLOSING_AUCTION)
    sim.run(Halt(symbol=SYM))
    sim.run(Resume(symbol=SYM))
    assert sim.e.phase(SYM) == Phase.CLOSING_AUCTION  # back to the call the halt interrupted
    sim.phase(Phase.CONTINUOUS)  # an operator re-opens continuous trading before the close
    assert cls in sim.e.instrument(SYM).held  # the on-close order waits for the next close
    sim.order(SELL, 5, 101, member="s")
    assert not [t for t in of(sim.events, Trade) if cls in (t.buy_order_id, t.sell_order_id)]


def test_on_close_orders_can_be_cancelled_while_held() -> None:
    sim = Sim()
    ids = _closing_setup(sim)
    sim.run(CancelOrder(symbol=SYM, member="b", order_id=ids["cls_buy"]))
    assert cancels(sim.events) == [(ids["cls_buy"], 10, CancelReason.USER)]
    assert not of(sim.events, LevelChanged)


def test_close_uncrosses_cancels_on_close_leftovers_and_expires_day_orders() -> None:
    sim = Sim()
    ids = _closing_setup(sim)
    sim.phase(Phase.CLOSING_AUCTION)
    ev = sim.phase(Phase.CLOSED)
    # Buy: CLS 10 @101 (+ day 90/91 below). Sell: market 4, day 10 @100. 100 and 101 both give
    # volume 10 with sell surplus 4; 100 is nearer the reference.
    assert uncrossed(ev) == (100, 10, -4)
    assert trades(ev) == [
        (100, 4, ids["cls_buy"], ids["cls_mkt"]),
        (100, 6, ids["cls_buy"], ids["day_sell"]),
    ]
    assert all(t.aggressor == "" for t in of(ev, Trade))
    assert cancels(ev) == []  # the CLS orders filled completely
    assert [(x.order_id, x.expired_qty) for x in of(ev, Expired)] == [
        (ids["day_sell"], 4),
        (ids["day_buy"], 5),
    ]
    assert phases(ev) == [(Phase.CLOSED, "operator")]
    assert sim.book() == ([(91, 5, 1)], [(105, 5, 1)])
    assert set(sim.e.orders) == {ids["gtc_sell"], ids["gtc_buy"]}
    assert sim.e.instrument(SYM).reference_price == 100


def test_on_close_leftovers_are_cancelled_at_the_close() -> None:
    sim = Sim()
    sim.add(reference_price=100)
    cls_buy = sim.order(BUY, 10, 100, member="b", tif=TimeInForce.CLS)
    cls_sell = sim.order(SELL, 3, 100, member="s", tif=TimeInForce.CLS)
    cls_mkt = sim.order(BUY, 2, member="b", tif=TimeInForce.CLS)
    sim.phase(Phase.CLOSING_AUCTION)
    ev = sim.phase(Phase.CLOSED)
    assert uncrossed(ev) == (100, 3, 9)
    assert trades(ev) == [(100, 2, cls_mkt, cls_sell), (100, 1, cls_buy, cls_sell)]
    assert cancels(ev) == [(cls_buy, 9, CancelReason.AUCTION_REMAINDER)]
    assert not sim.e.orders


def test_closing_directly_from_continuous_cancels_held_on_close_orders() -> None:
    sim = Sim()
    sim.add(reference_price=100)
    cls = sim.order(BUY, 10, 100, member="b", tif=TimeInForce.CLS)
    day = sim.order(BUY, 10, 99, member="b")
    ev = sim.phase(Phase.CLOSED)
    assert not of(ev, AuctionUncrossed)
    assert cancels(ev) == [(cls, 10, CancelReason.AUCTION_REMAINDER)]
    assert [x.order_id for x in of(ev, Expired)] == [day]


def test_day_stops_expire_at_the_close_gtc_and_gtd_survive() -> None:
    sim = Sim()
    sim.add(reference_price=100)
    day_stop = sim.order(BUY, 1, member="b", ord_type=OrdType.STOP, stop_price=110)
    gtc = sim.order(BUY, 1, 95, member="b", tif=TimeInForce.GTC)
    gtd = sim.order(BUY, 1, 95, member="b", tif=TimeInForce.GTD, expire_ts=10**18)
    ev = sim.phase(Phase.CLOSED)
    assert [x.order_id for x in of(ev, Expired)] == [day_stop]
    assert set(sim.e.orders) == {gtc, gtd}


def test_closed_rejects_new_orders_but_allows_cancels() -> None:
    sim = Sim()
    sim.add(reference_price=100)
    gtc = sim.order(BUY, 5, 99, member="b", tif=TimeInForce.GTC)
    sim.phase(Phase.CLOSED)
    for kw in ({"price": 99}, {"price": 99, "tif": TimeInForce.GTC}, {"price": 0}):
        sim.order(BUY, 5, member="b", **kw)
        assert rejected(sim.events) == Reject.MARKET_CLOSED == 1003
    sim.run(CancelOrder(symbol=SYM, member="b", order_id=gtc))
    assert cancels(sim.events) == [(gtc, 5, CancelReason.USER)]


def test_continuous_trading_never_starts_with_a_crossed_book() -> None:
    sim = Sim()
    sim.add(reference_price=100)
    buy = sim.order(BUY, 10, 99, member="b", tif=TimeInForce.GTC)
    sim.order(SELL, 10, 101, member="s", tif=TimeInForce.GTC)
    sim.phase(Phase.CLOSED)
    sim.run(ReplaceOrder(symbol=SYM, member="b", cl_ord_id="r", order_id=buy, qty=10, price=102))
    sim.phase(Phase.CONTINUOUS)
    assert_not_crossed(sim)


# ================================================================== schedule


def _scheduled(sim: Sim, at: int = DAY0 + 6 * HOUR) -> None:
    sim.run(Tick(), ts=at)
    sim.add(phase=Phase.CLOSED, reference_price=100, schedule=SCHEDULE)


def test_the_schedule_drives_a_whole_trading_day() -> None:
    sim = Sim()
    _scheduled(sim)
    assert sim.e.phase(SYM) == Phase.CLOSED
    sim.order(BUY, 10, 101, member="b")
    assert rejected(sim.events) == 1003
    # One nanosecond before pre-open nothing happens.
    assert sim.run(Tick(), ts=DAY0 + SCHEDULE.pre_open - 1) == []
    # A command at exactly the step time runs after the step.
    opg = sim.order(BUY, 10, 101, member="b", tif=TimeInForce.OPG, ts=DAY0 + SCHEDULE.pre_open)
    assert phases(sim.events) == [(Phase.PRE_OPEN, "schedule")]
    assert isinstance(sim.events[0], PhaseChanged) and of(sim.events, Accepted)
    sell = sim.order(SELL, 6, 100, member="s")
    cls = sim.order(SELL, 3, member="s", tif=TimeInForce.CLS)
    ev = sim.run(Tick(), ts=DAY0 + SCHEDULE.open_call)
    assert phases(ev) == [(Phase.OPENING_AUCTION, "schedule")]
    ev = sim.run(Tick(), ts=DAY0 + SCHEDULE.open)
    assert uncrossed(ev) == (100, 6, 4)  # 100 and 101 tie; 100 is the reference
    assert trades(ev) == [(100, 6, opg, sell)]
    assert cancels(ev) == [(opg, 4, CancelReason.AUCTION_REMAINDER)]
    assert phases(ev) == [(Phase.CONTINUOUS, "schedule")]
    buy = sim.order(BUY, 3, 99, member="b")
    ev = sim.run(Tick(), ts=DAY0 + SCHEDULE.close_call)
    assert phases(ev) == [(Phase.CLOSING_AUCTION, "schedule")]
    assert cls in sim.e.instrument(SYM).auction_orders
    ev = sim.run(Tick(), ts=DAY0 + SCHEDULE.close)
    assert uncrossed(ev) == (99, 3, 0)
    assert trades(ev) == [(99, 3, buy, cls)]
    assert phases(ev) == [(Phase.CLOSED, "schedule")]
    assert not sim.e.orders
    # Next day.
    assert sim.run(Tick(), ts=DAY0 + NS_PER_DAY + SCHEDULE.pre_open - 1) == []
    ev = sim.run(Tick(), ts=DAY0 + NS_PER_DAY + SCHEDULE.pre_open)
    assert phases(ev) == [(Phase.PRE_OPEN, "schedule")]


def test_a_late_timestamp_runs_every_skipped_step_in_order() -> None:
    sim = Sim()
    _scheduled(sim)
    sim.run(Tick(), ts=DAY0 + SCHEDULE.pre_open)
    b = sim.order(BUY, 10, 101, member="b")
    s = sim.order(SELL, 10, 100, member="s")
    # The next command arrives after close_call: open_call, open and close_call all fire first.
    late = sim.order(BUY, 5, 150, member="x", ts=DAY0 + SCHEDULE.close_call + 1)
    ev = sim.events
    assert phases(ev) == [
        (Phase.OPENING_AUCTION, "schedule"),
        (Phase.CONTINUOUS, "schedule"),
        (Phase.CLOSING_AUCTION, "schedule"),
    ]
    assert uncrossed(ev) == (100, 10, 0)  # 100 and 101 tie; 100 is the reference
    assert trades(ev) == [(100, 10, b, s)]
    kinds = [type(x) for x in ev]
    assert kinds.index(Accepted) > max(i for i, k in enumerate(kinds) if k is PhaseChanged)
    assert sim.e.phase(SYM) == Phase.CLOSING_AUCTION
    assert late in sim.e.orders


def test_a_timestamp_a_day_later_closes_and_reopens() -> None:
    sim = Sim()
    _scheduled(sim)
    sim.run(Tick(), ts=DAY0 + SCHEDULE.open)
    day = sim.order(BUY, 5, 99, member="b")
    gtc = sim.order(SELL, 5, 105, member="s", tif=TimeInForce.GTC)
    ev = sim.run(Tick(), ts=DAY0 + NS_PER_DAY + SCHEDULE.open)
    assert [p for p, _ in phases(ev)] == [
        Phase.CLOSING_AUCTION,
        Phase.CLOSED,
        Phase.PRE_OPEN,
        Phase.OPENING_AUCTION,
        Phase.CONTINUOUS,
    ]
    assert [x.order_id for x in of(ev, Expired)] == [day]
    assert len(of(ev, AuctionUncrossed)) == 2
    assert set(sim.e.orders) == {gtc}
    assert sim.e.phase(SYM) == Phase.CONTINUOUS


def test_an_instrument_added_mid_day_waits_for_its_next_step() -> None:
    sim = Sim()
    sim.run(Tick(), ts=DAY0 + 12 * HOUR)
    sim.add(reference_price=100, schedule=SCHEDULE)  # phase defaults to CONTINUOUS
    assert sim.e.phase(SYM) == Phase.CONTINUOUS
    assert sim.run(Tick(), ts=DAY0 + SCHEDULE.close_call - 1) == []
    assert phases(sim.run(Tick(), ts=DAY0 + SCHEDULE.close_call)) == [
        (Phase.CLOSING_AUCTION, "schedule")
    ]


def test_a_halted_instrument_skips_schedule_steps_except_the_close() -> None:
    sim = Sim()
    _scheduled(sim)
    sim.run(Tick(), ts=DAY0 + SCHEDULE.open)
    sim.order(BUY, 5, 99, member="b")
    sim.run(Halt(symbol=SYM, reason="news"))
    assert sim.run(Tick(), ts=DAY0 + SCHEDULE.close_call) == []
    assert sim.e.phase(SYM) == Phase.HALTED
    ev = sim.run(Tick(), ts=DAY0 + SCHEDULE.close)
    assert uncrossed(ev) == (0, 0, 0)
    assert phases(ev) == [(Phase.CLOSED, "schedule")]
    assert len(of(ev, Expired)) == 1


def test_operator_phase_changes_override_between_steps() -> None:
    sim = Sim()
    _scheduled(sim)
    sim.phase(Phase.CONTINUOUS)  # from CLOSED: no uncross
    assert phases(sim.events) == [(Phase.CONTINUOUS, "operator")]
    assert not of(sim.events, AuctionUncrossed)
    # The schedule still fires its next step (pre_open) afterwards.
    assert phases(sim.run(Tick(), ts=DAY0 + SCHEDULE.pre_open)) == [(Phase.PRE_OPEN, "schedule")]
    # Setting the current phase again is a no-op.
    assert sim.phase(Phase.PRE_OPEN) == []


# ================================================================== halt and resume


def test_halt_rejects_new_orders_allows_cancels_and_resume_reopens() -> None:
    sim = Sim()
    sim.add(reference_price=100)
    bid = sim.order(BUY, 5, 99, member="b")
    ask = sim.order(SELL, 5, 101, member="s")
    ev = sim.run(Halt(symbol=SYM, reason="news"))
    assert phases(ev) == [(Phase.HALTED, "news")]
    assert sim.book() == ([(99, 5, 1)], [(101, 5, 1)])
    before = book_state(sim.e)
    sim.order(BUY, 5, 101, member="b")
    assert rejected(sim.events) == Reject.INSTRUMENT_HALTED == 1004
    sim.order(BUY, 5, member="b")
    assert rejected(sim.events) == 1004
    assert book_state(sim.e) == before
    sim.run(CancelOrder(symbol=SYM, member="b", order_id=bid))
    assert cancels(sim.events) == [(bid, 5, CancelReason.USER)]
    sim.run(Halt(symbol=SYM))
    assert rejected(sim.events) == Reject.INVALID_PHASE_CHANGE == 1009
    sim.phase(Phase.PRE_OPEN)
    assert rejected(sim.events) == 1009
    ev = sim.run(Resume(symbol=SYM))
    assert uncrossed(ev) == (0, 0, 0)
    assert phases(ev) == [(Phase.CONTINUOUS, "resumed")]
    assert set(sim.e.orders) == {ask}
    sim.order(BUY, 5, 101, member="b")
    assert trades(sim.events) == [(101, 5, sim.seq, ask)]


def test_resume_when_not_halted_is_rejected() -> None:
    sim = Sim()
    sim.add(reference_price=100)
    sim.run(Resume(symbol=SYM))
    assert rejected(sim.events) == Reject.NOT_HALTED == 1008
    sim.phase(Phase.PRE_OPEN)
    sim.run(Resume(symbol=SYM))
    assert rejected(sim.events) == 1008
    sim.run(Resume(symbol="NOPE"))
    assert rejected(sim.events) == Reject.UNKNOWN_SYMBOL


def test_halt_in_closed_is_rejected() -> None:
    sim = Sim()
    sim.add(phase=Phase.CLOSED)
    sim.run(Halt(symbol=SYM))
    assert rejected(sim.events) == 1009


def test_resume_after_a_halt_in_the_call_returns_to_the_call() -> None:
    sim = Sim()
    pre_open(sim)
    b = sim.order(BUY, 10, 102, member="b")
    s = sim.order(SELL, 10, 98, member="s")
    opg = sim.order(SELL, 5, 120, member="s", tif=TimeInForce.OPG)
    sim.run(Halt(symbol=SYM))
    assert not of(sim.events, Trade)
    ev = sim.run(Resume(symbol=SYM))
    # The halt interrupted the opening call: resuming goes back to it, without an uncross.
    assert phases(ev) == [(Phase.PRE_OPEN, "resumed")]
    assert not of(ev, AuctionUncrossed)
    ev = sim.phase(Phase.CONTINUOUS)
    assert uncrossed(ev) == (98, 10, 0)  # 98 and 102 tie, both 2 from 100: the lower wins
    assert trades(ev) == [(98, 10, b, s)]
    assert cancels(ev) == [(opg, 5, CancelReason.AUCTION_REMAINDER)]
    assert sim.e.instrument(SYM).reference_price == 98


def test_set_phase_continuous_from_halted_also_reopens() -> None:
    sim = Sim()
    pre_open(sim)
    sim.order(BUY, 10, 101, member="b")
    sim.order(SELL, 10, 101, member="s")
    sim.phase(Phase.HALTED)
    assert phases(sim.events) == [(Phase.HALTED, "operator")]
    ev = sim.phase(Phase.CONTINUOUS)
    assert uncrossed(ev) == (101, 10, 0)


# ================================================================== price bands


def _banded(sim: Sim, action: BandAction = BandAction.REJECT, pause_ns: int = 60) -> None:
    # Reference 10000, 100 bps: the band is [9900, 10100].
    sim.add(reference_price=10_000, band_bps=100, band_action=action, pause_ns=pause_ns)


def test_reject_band_refuses_limit_prices_outside_it() -> None:
    sim = Sim()
    _banded(sim)
    for side, price in ((BUY, 10_101), (SELL, 9_899), (BUY, 9_899), (SELL, 10_101)):
        sim.order(side, 1, price)
        assert rejected(sim.events) == Reject.OUTSIDE_PRICE_BAND == 2002
    for side, price in ((BUY, 9_900), (SELL, 10_100)):
        sim.order(side, 1, price)
        assert of(sim.events, Accepted)
    sim.order(BUY, 1, 10_200, ord_type=OrdType.STOP_LIMIT, stop_price=10_050)
    assert rejected(sim.events) == 2002
    sim.order(BUY, 1, ord_type=OrdType.STOP, stop_price=10_500)  # no limit price: accepted
    assert of(sim.events, Accepted)


def test_reject_band_refuses_a_replace_outside_it() -> None:
    sim = Sim()
    _banded(sim)
    o = sim.order(BUY, 1, 10_000)
    sim.run(ReplaceOrder(symbol=SYM, member="m1", cl_ord_id="r", order_id=o, qty=1, price=10_101))
    assert rejected(sim.events) == 2002


def test_market_order_stops_at_the_reject_band() -> None:
    sim = Sim()
    sim.add(reference_price=10_000)
    a1 = sim.order(SELL, 10, 10_050, member="s")
    a2 = sim.order(SELL, 10, 10_100, member="s")
    a3 = sim.order(SELL, 10, 10_150, member="s")
    sim.run(SetPriceBand(symbol=SYM, band_bps=100))
    m = sim.order(BUY, 30, member="b")
    assert trades(sim.events) == [(10_050, 10, m, a1), (10_100, 10, m, a2)]
    assert cancels(sim.events) == [(m, 10, CancelReason.MARKET_REMAINDER)]
    assert a3 in sim.e.orders
    assert sim.e.phase(SYM) == Phase.CONTINUOUS


def test_market_sell_stops_at_the_lower_reject_band() -> None:
    sim = Sim()
    sim.add(reference_price=10_000)
    b1 = sim.order(BUY, 10, 9_950, member="b")
    b2 = sim.order(BUY, 10, 9_850, member="b")
    sim.run(SetPriceBand(symbol=SYM, band_bps=100))
    m = sim.order(SELL, 20, member="s")
    assert trades(sim.events) == [(9_950, 10, b1, m)]
    assert cancels(sim.events) == [(m, 10, CancelReason.MARKET_REMAINDER)]
    assert b2 in sim.e.orders
    # A limit sell at the band edge does not reach the bid below it either.
    s = sim.order(SELL, 10, 9_900, member="s")
    assert not of(sim.events, Trade)
    assert sim.e.orders[s].leaves == 10


def test_reject_band_never_prints_outside_the_band() -> None:
    sim = Sim()
    sim.add(reference_price=10_000)
    sim.order(BUY, 10, 10_150, member="b")  # placed before the band exists
    sim.run(SetPriceBand(symbol=SYM, band_bps=100))  # band [9900, 10100]
    sim.order(SELL, 5, 10_000, member="s")  # a limit inside the band
    prices = [t.price for t in of(sim.events, Trade)]
    assert all(9_900 <= p <= 10_100 for p in prices), prices


def test_the_band_follows_the_reference_price() -> None:
    sim = Sim()
    _banded(sim)
    sim.run(SetReferencePrice(symbol=SYM, price=20_000))
    assert of(sim.events, InstrumentUpdated)[0].reference_price == 20_000
    sim.order(BUY, 1, 10_000)
    assert rejected(sim.events) == 2002
    sim.order(BUY, 1, 20_200)
    assert of(sim.events, Accepted)
    # An auction moves the reference, and the band with it: 19900 +/- 199.
    sim.phase(Phase.PRE_OPEN)
    sim.order(SELL, 1, 19_900)
    ev = sim.phase(Phase.CONTINUOUS)
    assert uncrossed(ev) == (19_900, 1, 0)
    assert sim.e.instrument(SYM).reference_price == 19_900
    sim.order(BUY, 1, 20_100)
    assert rejected(sim.events) == 2002
    sim.order(BUY, 1, 20_099)
    assert of(sim.events, Accepted)
    sim.order(SELL, 1, 19_700)
    assert rejected(sim.events) == 2002


def test_pause_band_halts_rests_the_remainder_and_reopens_after_the_pause() -> None:
    sim = Sim()
    _banded(sim, BandAction.PAUSE, pause_ns=60)
    a1 = sim.order(SELL, 10, 10_050, member="s")
    a2 = sim.order(SELL, 10, 10_200, member="s")  # outside the band: accepted in pause mode
    assert of(sim.events, Accepted)
    b = sim.order(BUY, 20, 10_200, member="b", ts=1_000)
    ev = sim.events
    assert trades(ev) == [(10_050, 10, b, a1)]
    assert phases(ev) == [(Phase.HALTED, "price band")]
    assert sim.e.orders[b].leaves == 10
    assert sim.book() == ([(10_200, 10, 1)], [(10_200, 10, 1)])
    sim.order(BUY, 1, 10_000, member="x")
    assert rejected(sim.events) == 1004
    assert sim.run(Tick(), ts=1_059) == []
    assert sim.e.phase(SYM) == Phase.HALTED
    ev = sim.run(Tick(), ts=1_060)
    assert uncrossed(ev) == (10_200, 10, 0)
    assert trades(ev) == [(10_200, 10, b, a2)]
    assert phases(ev) == [(Phase.CONTINUOUS, "pause ended")]
    assert sim.e.instrument(SYM).reference_price == 10_200
    assert sim.book() == ([], [])


def test_pause_band_cancels_a_market_remainder() -> None:
    sim = Sim()
    _banded(sim, BandAction.PAUSE)
    a1 = sim.order(SELL, 10, 10_050, member="s")
    sim.order(SELL, 10, 10_200, member="s")
    m = sim.order(BUY, 20, member="b")
    assert trades(sim.events) == [(10_050, 10, m, a1)]
    assert cancels(sim.events) == [(m, 10, CancelReason.MARKET_REMAINDER)]
    assert sim.e.phase(SYM) == Phase.HALTED


def test_pause_band_with_the_first_level_outside_pauses_without_trading() -> None:
    sim = Sim()
    _banded(sim, BandAction.PAUSE)
    sim.order(BUY, 10, 9_800, member="b")
    s = sim.order(SELL, 4, 9_700, member="s", tif=TimeInForce.IOC)
    assert not of(sim.events, Trade)
    assert phases(sim.events) == [(Phase.HALTED, "price band")]
    assert cancels(sim.events) == [(s, 4, CancelReason.IOC)]


def test_a_pause_ended_early_by_resume_does_not_fire_again() -> None:
    sim = Sim()
    _banded(sim, BandAction.PAUSE, pause_ns=60)
    sim.order(SELL, 10, 10_200, member="s")
    sim.order(BUY, 5, 10_200, member="b", ts=1_000)
    assert sim.e.phase(SYM) == Phase.HALTED
    ev = sim.run(Resume(symbol=SYM), ts=1_010)
    assert uncrossed(ev) == (10_200, 5, -5)
    assert sim.run(Tick(), ts=1_100) == []
    assert sim.e.phase(SYM) == Phase.CONTINUOUS


# ================================================================== kill switch


def test_kill_switch_cancels_everything_of_the_member_and_blocks_new_orders() -> None:
    sim = Sim()
    sim.add(reference_price=100)
    sim.add("OTHER", reference_price=50)
    o1 = sim.order(BUY, 5, 99, member="k")
    other = sim.order(BUY, 5, 98, member="ok")
    o2 = sim.order(SELL, 5, 55, member="k", symbol="OTHER", tif=TimeInForce.GTC)
    o3 = sim.order(BUY, 5, member="k", ord_type=OrdType.STOP, stop_price=120)
    o4 = sim.order(SELL, 5, 100, member="k", tif=TimeInForce.CLS)
    o5 = sim.order(SELL, 5, 101, member="k", account="acc2", display_qty=1)
    ev = sim.run(SetKillSwitch(member="k", active=True))
    assert isinstance(ev[0], KillSwitchChanged) and ev[0].active and ev[0].member == "k"
    assert cancels(ev) == [(o, 5, CancelReason.KILL_SWITCH) for o in (o1, o2, o3, o4, o5)]
    assert set(sim.e.orders) == {other}
    assert sim.book() == ([(98, 5, 1)], [])
    assert sim.book("OTHER") == ([], [])
    for symbol in (SYM, "OTHER"):
        sim.order(BUY, 1, 50, member="k", symbol=symbol)
        assert rejected(sim.events) == Reject.KILL_SWITCH_ACTIVE == 2001
    sim.order(BUY, 1, 98, member="ok")
    assert of(sim.events, Accepted)
    # Clearing the switch allows new orders again.
    ev = sim.run(SetKillSwitch(member="k", active=False))
    assert ev == [KillSwitchChanged(ev[0].seq, sim.ts, "k", False)]
    sim.order(BUY, 1, 50, member="k", symbol="OTHER")
    assert of(sim.events, Accepted)


def test_kill_switch_takes_precedence_over_phase_rejections() -> None:
    sim = Sim()
    sim.add(phase=Phase.CLOSED)
    sim.run(SetKillSwitch(member="k", active=True))
    assert sim.events == [KillSwitchChanged(3, 0, "k", True)]
    sim.order(BUY, 1, 50, member="k")
    assert rejected(sim.events) == 2001


def test_kill_switch_cancels_frozen_auction_orders_too() -> None:
    sim = Sim()
    pre_open(sim)
    opg = sim.order(BUY, 5, 100, member="k", tif=TimeInForce.OPG)
    mkt = sim.order(BUY, 5, member="k")
    sim.phase(Phase.OPENING_AUCTION)
    ev = sim.run(SetKillSwitch(member="k", active=True))
    assert cancels(ev) == [(opg, 5, CancelReason.KILL_SWITCH), (mkt, 5, CancelReason.KILL_SWITCH)]


def test_kill_switch_needs_a_member() -> None:
    sim = Sim()
    sim.run(SetKillSwitch(member="", active=True))
    assert rejected(sim.events) == Reject.INVALID_COMBINATION


# ================================================================== instruments


def test_add_instrument_emits_added_and_updated() -> None:
    sim = Sim()
    ev = sim.add(tick_size="0.05", lot_size=100, currency="EUR", reference_price=10)
    assert ev[0] == InstrumentAdded(1, 0, SYM, "0.05", 100, "EUR", Phase.CONTINUOUS)
    assert ev[1] == InstrumentUpdated(2, 0, SYM, 10, 0, BandAction.REJECT, 300_000_000_000)
    assert len(ev) == 2


def test_duplicate_symbol_is_rejected_and_changes_nothing() -> None:
    sim = Sim()
    sim.add(reference_price=100, lot_size=10)
    ev = sim.add(reference_price=200, lot_size=1)
    assert rejected(ev) == Reject.DUPLICATE_SYMBOL == 1002
    assert ev[0].command == "add_instrument" and ev[0].symbol == SYM
    assert sim.e.instrument(SYM).lot_size == 10
    assert sim.e.instrument(SYM).reference_price == 100


@pytest.mark.parametrize(
    "kw",
    [
        {"tick_size": "0"},
        {"tick_size": "-0.01"},
        {"tick_size": "abc"},
        {"tick_size": ""},
        {"tick_size": "NaN"},
        {"tick_size": "Infinity"},
        {"lot_size": 0},
        {"lot_size": -100},
        {"reference_price": -1},
        {"band_bps": -1},
        {"band_bps": 10_000},
        {"collar_bps": -1},
        {"pause_ns": -1},
        {"schedule": Schedule(pre_open=5, open_call=5, open=6, close_call=7, close=8)},
        {"schedule": Schedule(pre_open=9, open_call=5, open=6, close_call=7, close=8)},
        {"schedule": Schedule(pre_open=1, open_call=2, open=3, close_call=4, close=NS_PER_DAY)},
        {"schedule": Schedule(pre_open=-1, open_call=2, open=3, close_call=4, close=5)},
    ],
)
def test_invalid_instrument_parameters_are_rejected(kw: dict[str, Any]) -> None:
    sim = Sim()
    assert rejected(sim.add(**kw)) == Reject.INVALID_INSTRUMENT == 1007
    assert SYM not in sim.e.instruments


def test_empty_symbol_is_invalid_and_unknown_symbol_is_refused() -> None:
    sim = Sim()
    assert rejected(sim.add("")) == 1007
    sim.order(BUY, 1, 1, symbol="NOPE")
    assert rejected(sim.events) == Reject.UNKNOWN_SYMBOL == 1001
    sim.phase(Phase.CLOSED, symbol="NOPE")
    assert rejected(sim.events) == 1001


def test_lot_size_is_enforced() -> None:
    sim = Sim()
    sim.add(lot_size=100)
    sim.order(BUY, 150, 10)
    assert rejected(sim.events) == Reject.INVALID_LOT
    sim.order(BUY, 200, 10)
    assert of(sim.events, Accepted)


def test_rejections_leave_the_state_unchanged() -> None:
    """A rejected command changes nothing but the command/time counters."""
    script: list[Command] = [
        AddInstrument(symbol=SYM, phase=Phase.PRE_OPEN, reference_price=100),
        NewOrder(symbol=SYM, member="a", cl_ord_id="1", side=BUY, qty=5, price=101),
        SetPhase(symbol=SYM, phase=Phase.OPENING_AUCTION),
    ]
    bad: list[Command] = [
        NewOrder(
            symbol=SYM, member="a", cl_ord_id="2", side=BUY, qty=5, price=101, tif=TimeInForce.IOC
        ),
        NewOrder(symbol=SYM, member="a", cl_ord_id="1", side=BUY, qty=5, price=101),
        Resume(symbol=SYM),
        AddInstrument(symbol=SYM),
        CancelOrder(symbol=SYM, member="b", order_id=2),
    ]
    for cmd in bad:
        a, b = Sim(), Sim()
        for c in script:
            a.run(c)
            b.run(c)
        ev = a.run(cmd)
        assert len(ev) == 1 and isinstance(ev[0], Rejected), (cmd, ev)
        b.run(Tick())
        assert a.e.state_hash() != b.e.state_hash()  # event_seq differs by the Rejected event
        b.e.event_seq += 1
        assert a.e.state_hash() == b.e.state_hash(), cmd


# ================================================================== snapshot / restore


def _rich_script() -> list[tuple[int, Command]]:
    """Commands through a call phase with stops, held CLS orders, a pause and a schedule."""

    def new(sym: str, member: str, clid: str, side: Side, qty: int, **kw: Any) -> NewOrder:
        return NewOrder(symbol=sym, member=member, cl_ord_id=clid, side=side, qty=qty, **kw)

    t0 = DAY0 + 10 * HOUR
    mkt = OrdType.MARKET
    return [
        (t0, AddInstrument(symbol="A", reference_price=100)),
        (
            t0,
            AddInstrument(
                symbol="B",
                reference_price=10_000,
                band_bps=100,
                band_action=BandAction.PAUSE,
                pause_ns=1_000,
            ),
        ),
        (t0, AddInstrument(symbol="C", reference_price=50, schedule=SCHEDULE)),
        # A: continuous trading sets a last price; stops and held on-close orders.
        (t0, new("A", "m1", "a1", BUY, 10, price=100)),
        (t0, new("A", "m2", "a2", SELL, 4, price=100)),
        (
            t0,
            new(
                "A",
                "m3",
                "a3",
                SELL,
                5,
                ord_type=OrdType.STOP_LIMIT,
                stop_price=95,
                price=94,
                tif=TimeInForce.GTC,
            ),
        ),
        (t0, new("A", "m4", "a4", SELL, 5, ord_type=OrdType.TRAILING_STOP, trail_amount=3)),
        (t0, new("A", "m4", "a5", BUY, 7, price=103, tif=TimeInForce.CLS)),
        (t0, new("A", "m5", "a6", SELL, 3, ord_type=mkt, tif=TimeInForce.CLS)),
        (t0, new("A", "m5", "a7", SELL, 20, price=104, display_qty=5)),
        (t0, new("A", "m1", "a8", BUY, 2, price=90, tif=TimeInForce.GTD, expire_ts=t0 + HOUR)),
        # A goes into a call: crossed limits, a waiting market order, a stop that must wait.
        (t0 + 1, SetPhase(symbol="A", phase=Phase.PRE_OPEN)),
        (t0 + 2, new("A", "m2", "a9", SELL, 8, price=99)),
        (t0 + 3, new("A", "m6", "a10", BUY, 6, price=103, tif=TimeInForce.OPG)),
        (t0 + 4, new("A", "m6", "a11", BUY, 4, ord_type=mkt)),
        (t0 + 5, new("A", "m7", "a12", SELL, 3, price=101, hidden=True)),
        (t0 + 5, new("A", "m3", "a13", BUY, 5, ord_type=OrdType.STOP, stop_price=100)),
        (t0 + 6, SetPhase(symbol="A", phase=Phase.OPENING_AUCTION)),
        # B: a trade outside the band pauses it until t0 + 1009.
        (t0 + 7, new("B", "m1", "b1", SELL, 5, price=10_050)),
        (t0 + 8, new("B", "m2", "b2", SELL, 5, price=10_300)),
        (t0 + 9, new("B", "m3", "b3", BUY, 8, price=10_300)),
        (t0 + 10, new("C", "m1", "c1", BUY, 5, price=49, tif=TimeInForce.GTC)),
        (
            t0 + 10,
            new("C", "m1", "c0", BUY, 1, price=40, tif=TimeInForce.GTD, expire_ts=t0 + HOUR),
        ),
        (t0 + 11, SetKillSwitch(member="m9", active=True)),
        # The rest runs on both the original and the restored engine.
        (t0 + 12, new("A", "m8", "a14", SELL, 2, price=100)),
        (t0 + 13, CancelOrder(symbol="A", member="m6", orig_cl_ord_id="a11")),
        (t0 + 500, Tick()),
        (t0 + 1_008, new("B", "m4", "b4", BUY, 1, price=10_000)),  # still halted: 1004
        (t0 + 1_009, Tick()),  # B's pause ends: re-opening auction
        (t0 + 1_011, SetPhase(symbol="A", phase=Phase.CONTINUOUS)),  # uncross, the stop fires
        (t0 + 1_012, new("A", "m8", "a15", SELL, 30, price=105)),
        (t0 + 1_013, new("A", "m9", "a16", SELL, 1, price=105)),  # kill switch: 2001
        (t0 + 1_014, SetKillSwitch(member="m9", active=False)),
        (t0 + 1_015, new("A", "m8", "a17", SELL, 6, ord_type=mkt)),  # the trailing stop fires
        (t0 + 2 * HOUR, Tick()),  # the GTD order expires
        (DAY0 + SCHEDULE.close_call, Tick()),  # C's closing call
        (DAY0 + SCHEDULE.close_call + 1, SetPhase(symbol="A", phase=Phase.CLOSING_AUCTION)),
        (DAY0 + SCHEDULE.close_call + 2, new("A", "m1", "a18", BUY, 3, price=110)),
        (DAY0 + SCHEDULE.close - 1, SetPhase(symbol="A", phase=Phase.CLOSED)),
        (DAY0 + SCHEDULE.close + 1, Tick()),
        (DAY0 + NS_PER_DAY + SCHEDULE.open, new("C", "m2", "c2", SELL, 5, price=49)),
    ]


RICH_PREFIX = 24  # commands up to the kill switch: the state the snapshot tests start from


def _run(sim: Sim, script: list[tuple[int, Command]]) -> list[Event]:
    out: list[Event] = []
    for ts, cmd in script:
        out.extend(sim.run(cmd, ts))
    return out


def test_the_rich_script_reaches_the_states_it_is_meant_to() -> None:
    script = _rich_script()
    sim = Sim()
    _run(sim, script[:RICH_PREFIX])
    a, b, c = (sim.e.instrument(s) for s in "ABC")
    assert a.phase == Phase.OPENING_AUCTION
    assert a.held and a.auction_orders and a.trailing and a.stops_up and a.stops_down
    assert b.phase == Phase.HALTED and b.resume_at < 1 << 62
    assert c.sched_next == DAY0 + SCHEDULE.close_call
    assert sim.e.killed == {"m9"}
    bid, _, ask, _ = sim.e.l1("A")
    assert bid >= ask  # crossed in the call
    events = _run(sim, script[RICH_PREFIX:])
    assert [r.code for r in of(events, Rejected)] == [1004, 2001]
    # B re-opens, A opens, A and C close, C opens the next day.
    assert [x.symbol for x in of(events, AuctionUncrossed)] == ["B", "A", "A", "C", "C"]
    assert len(of(events, Triggered)) == 3
    assert [x.symbol for x in of(events, Expired)] == ["C", "A", "A"]


@pytest.mark.parametrize("cut", range(3, len(_rich_script())))
def test_snapshot_restore_midway_gives_the_same_state_and_the_same_events(cut: int) -> None:
    script = _rich_script()
    original = Sim()
    _run(original, script[:cut])
    snap = original.e.snapshot()
    restored = Sim(Engine.restore(snap), seq=original.seq, ts=original.ts)
    assert restored.e.state_hash() == original.e.state_hash()
    assert restored.e.snapshot() == snap
    for sym in "ABC":
        assert restored.e.l3(sym) == original.e.l3(sym)
        assert restored.e.phase(sym) == original.e.phase(sym)
    rest = script[cut:]
    assert _run(restored, rest) == _run(original, rest)
    assert restored.e.state_hash() == original.e.state_hash()


def test_on_close_orders_go_back_on_hold_when_a_halted_close_reopens_continuous() -> None:
    sim = Sim()
    sim.add(reference_price=100)
    cls = sim.order(BUY, 10, 101, member="b", tif=TimeInForce.CLS)
    sim.phase(Phase.CLOSING_AUCTION)
    sim.run(Halt(symbol=SYM))
    sim.phase(Phase.CONTINUOUS)  # the operator ends the halt straight into continuous
    assert cls in sim.e.instrument(SYM).held
    sim.order(SELL, 5, 101, member="s")
    assert not of(sim.events, Trade)


def test_all_or_none_market_orders_sit_out_the_uncross() -> None:
    sim = Sim()
    pre_open(sim)
    aon = sim.order(BUY, 10, member="b", aon=True)
    sim.order(SELL, 4, 100, member="s")
    ev = sim.phase(Phase.CONTINUOUS)
    assert not of(ev, Trade)  # 4 shares cannot fill the all-or-none 10
    assert cancels(ev) == [(aon, 10, CancelReason.AUCTION_REMAINDER)]
