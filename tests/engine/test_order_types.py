"""Order types of the matching engine in continuous trading, one behaviour per test.

Members: ``M1`` is the order under test unless said otherwise, ``M2``/``M3``/... provide
liquidity, ``XS``/``XB`` only print trades to move the last price (``h.trade_at``).
"""

from __future__ import annotations

import pytest

from tradingfloor.exchange.engine.commands import Halt, SetKillSwitch, SetPhase
from tradingfloor.exchange.engine.engine import MAX_ORDER_QTY, MAX_PRICE_TICKS
from tradingfloor.exchange.engine.events import (
    Accepted,
    Cancelled,
    Expired,
    LevelChanged,
    OrderStatus,
    Rejected,
    Replaced,
    Repriced,
    Trade,
    Triggered,
)
from tradingfloor.exchange.engine.reasons import Reject
from tradingfloor.exchange.engine.types import (
    CancelReason,
    OrdType,
    PegType,
    Phase,
    PostOnly,
    Side,
    TimeInForce,
)

BUY, SELL = Side.BUY, Side.SELL
MARKET, LIMIT = OrdType.MARKET, OrdType.LIMIT
STOP, STOP_LIMIT = OrdType.STOP, OrdType.STOP_LIMIT
MTL, PEGGED = OrdType.MARKET_TO_LIMIT, OrdType.PEGGED
MIT, LIT = OrdType.MARKET_IF_TOUCHED, OrdType.LIMIT_IF_TOUCHED
TRAIL, TRAIL_LIMIT = OrdType.TRAILING_STOP, OrdType.TRAILING_STOP_LIMIT
IOC, FOK, GTC, GTD, DAY = (
    TimeInForce.IOC,
    TimeInForce.FOK,
    TimeInForce.GTC,
    TimeInForce.GTD,
    TimeInForce.DAY,
)


def cancelled(out, reason: CancelReason) -> Cancelled:
    ev = out.one(Cancelled)
    assert ev.reason == reason
    return ev


# ====================================================================== limit orders


def test_limit_rests_when_nothing_crosses(h):
    out = h.buy(10, 100, cl_ord_id="b1")
    acc = out.one(Accepted)
    assert (acc.order_id, acc.cl_ord_id, acc.side, acc.ord_type, acc.qty, acc.price) == (
        out.order_id,
        "b1",
        BUY,
        LIMIT,
        10,
        100,
    )
    lvl = out.one(LevelChanged)
    assert (lvl.side, lvl.price, lvl.qty, lvl.orders) == (BUY, 100, 10, 1)
    assert not out.trades
    assert h.l2() == ([(100, 10, 1)], [])
    assert h.e.l1("ACME") == (100, 10, 0, 0)


def test_limit_full_fill_leaves_nothing(h):
    sell = h.rest(SELL, 10, 100, member="M2")
    out = h.buy(10, 100)
    (t,) = out.trades
    assert (t.price, t.qty, t.aggressor, t.maker_order_id, t.taker_order_id) == (
        100,
        10,
        "buy",
        sell,
        out.order_id,
    )
    assert (t.buy_order_id, t.sell_order_id, t.maker_leaves, t.taker_leaves) == (
        out.order_id,
        sell,
        0,
        0,
    )
    assert (t.maker_member, t.taker_member) == ("M2", "M1")
    assert h.live() == []
    assert h.l2() == ([], [])
    assert h.e.last_trade_price("ACME") == 100


def test_limit_partial_fill_rests_remainder(h):
    sell = h.rest(SELL, 4, 100, member="M2")
    out = h.buy(10, 100)
    assert out.fills() == [(sell, 100, 4)]
    assert out.trades[0].taker_leaves == 6
    assert h.l3() == ([(100, 6, out.order_id, "M1")], [])
    o = h.e.orders[out.order_id]
    assert (o.cum_qty, o.leaves) == (4, 6)


def test_better_price_first_and_trades_at_maker_price(h):
    a = h.rest(SELL, 5, 102, member="M2")
    b = h.rest(SELL, 5, 100, member="M3")
    c = h.rest(SELL, 5, 101, member="M4")
    out = h.buy(12, 105)
    assert out.fills() == [(b, 100, 5), (c, 101, 5), (a, 102, 2)]
    assert h.l3() == ([], [(102, 3, a, "M2")])
    assert h.e.last_trade_price("ACME") == 102


def test_fifo_within_a_price_level(h):
    a = h.rest(SELL, 3, 100, member="M2")
    b = h.rest(SELL, 4, 100, member="M3")
    c = h.rest(SELL, 5, 100, member="M2")
    out = h.buy(8, 100)
    assert out.fills() == [(a, 100, 3), (b, 100, 4), (c, 100, 1)]
    assert h.l3()[1] == [(100, 4, c, "M2")]


def test_sell_aggressor_takes_highest_bids_first(h):
    a = h.rest(BUY, 10, 99, member="M2")
    b = h.rest(BUY, 10, 100, member="M3")
    out = h.sell(15, 99)
    assert out.fills() == [(b, 100, 10), (a, 99, 5)]
    assert {t.aggressor for t in out.trades} == {"sell"}
    assert [(t.buy_order_id, t.sell_order_id) for t in out.trades] == [
        (b, out.order_id),
        (a, out.order_id),
    ]
    assert h.l3() == ([(99, 5, a, "M2")], [])


def test_limit_never_trades_through_its_price(h):
    a = h.rest(SELL, 5, 100, member="M2")
    b = h.rest(SELL, 5, 102, member="M2")
    out = h.buy(10, 101)
    assert out.fills() == [(a, 100, 5)]
    assert h.l3() == ([(101, 5, out.order_id, "M1")], [(102, 5, b, "M2")])


def test_level_changed_events_cover_every_touched_level(h):
    h.rest(SELL, 5, 100, member="M2")
    h.rest(SELL, 5, 101, member="M2")
    out = h.buy(12, 101)
    levels = {(ev.side, ev.price): (ev.qty, ev.orders) for ev in out.of(LevelChanged)}
    assert levels == {(SELL, 100): (0, 0), (SELL, 101): (0, 0), (BUY, 101): (2, 1)}


# ====================================================================== market orders


def test_market_buy_stops_at_collar_and_cancels_remainder(h):
    a = h.rest(SELL, 10, 100, member="M2")
    b = h.rest(SELL, 10, 104, member="M2")
    c = h.rest(SELL, 10, 106, member="M2")  # beyond 100 * 1.05
    out = h.buy(30, ord_type=MARKET)
    assert out.one(Accepted).price == 0
    assert out.fills() == [(a, 100, 10), (b, 104, 10)]
    ev = cancelled(out, CancelReason.MARKET_REMAINDER)
    assert (ev.order_id, ev.cancelled_qty, ev.leaves_qty) == (out.order_id, 10, 0)
    assert h.l3() == ([], [(106, 10, c, "M2")])


def test_market_sell_stops_at_collar(h):
    a = h.rest(BUY, 10, 100, member="M2")
    b = h.rest(BUY, 10, 96, member="M2")
    c = h.rest(BUY, 10, 94, member="M2")  # below 100 * 0.95
    out = h.sell(30, ord_type=MARKET)
    assert out.fills() == [(a, 100, 10), (b, 96, 10)]
    assert cancelled(out, CancelReason.MARKET_REMAINDER).cancelled_qty == 10
    assert h.bid_ids() == [c]


def test_market_collar_is_per_instrument(make_harness):
    h = make_harness(collar_bps=0)
    a = h.rest(SELL, 10, 100, member="M2")
    h.rest(SELL, 10, 101, member="M2")
    out = h.buy(15, ord_type=MARKET)
    assert out.fills() == [(a, 100, 10)]
    assert cancelled(out, CancelReason.MARKET_REMAINDER).cancelled_qty == 5


def test_market_full_fill_has_no_cancel(h):
    a = h.rest(SELL, 10, 100, member="M2")
    out = h.buy(10, ord_type=MARKET)
    assert out.fills() == [(a, 100, 10)]
    assert not out.has(Cancelled)
    assert h.live() == []


@pytest.mark.parametrize("side", [BUY, SELL])
def test_market_without_opposite_liquidity_is_rejected(h, side):
    h.rest(side, 10, 100, member="M2")  # same side only
    before = h.book_view()
    out = h.new(side, 5, ord_type=MARKET)
    assert out.reject_code() == Reject.NO_LIQUIDITY
    assert out.types() == ["Rejected"]
    assert h.book_view() == before


# ====================================================================== market-to-limit


def test_market_to_limit_fills_best_level_only_and_rests_at_that_price(h):
    a = h.rest(SELL, 10, 101, member="M2")
    b = h.rest(SELL, 10, 102, member="M2")
    out = h.buy(25, ord_type=MTL)
    assert out.one(Accepted).price == 0
    assert out.fills() == [(a, 101, 10)]
    assert not out.has(Cancelled)
    assert h.l3() == ([(101, 15, out.order_id, "M1")], [(102, 10, b, "M2")])
    assert h.e.orders[out.order_id].price == 101


def test_market_to_limit_sell(h):
    a = h.rest(BUY, 10, 99, member="M2")
    h.rest(BUY, 10, 98, member="M2")
    out = h.sell(12, ord_type=MTL)
    assert out.fills() == [(a, 99, 10)]
    assert h.l3()[1] == [(99, 2, out.order_id, "M1")]


def test_market_to_limit_full_fill(h):
    a = h.rest(SELL, 10, 101, member="M2")
    out = h.buy(10, ord_type=MTL)
    assert out.fills() == [(a, 101, 10)]
    assert h.live() == []


def test_market_to_limit_without_liquidity_is_rejected(h):
    out = h.buy(10, ord_type=MTL)
    assert out.reject_code() == Reject.NO_LIQUIDITY
    assert h.live() == []


def test_market_to_limit_remainder_can_be_repriced_like_a_limit(h):
    h.rest(SELL, 10, 101, member="M2")
    oid = h.buy(25, ord_type=MTL).order_id
    out = h.replace(oid, 25, 100)
    assert out.one(Replaced).price == 100
    assert h.l3()[0] == [(100, 15, oid, "M1")]


def test_market_to_limit_ioc_cancels_remainder(h):
    a = h.rest(SELL, 10, 101, member="M2")
    out = h.buy(30, ord_type=MTL, tif=IOC)
    assert out.fills() == [(a, 101, 10)]
    assert cancelled(out, CancelReason.IOC).cancelled_qty == 20
    assert h.l3() == ([], [])
    assert h.live() == []


# ====================================================================== stop / stop-limit


def test_buy_stop_waits_then_triggers_as_market(h):
    h.trade_at(100)
    ask = h.rest(SELL, 10, 103, member="M2")
    out = h.buy(5, ord_type=STOP, stop_price=102)
    sid = out.order_id
    assert out.types() == ["Accepted"]
    assert out.one(Accepted).stop_price == 102
    assert h.bid_ids() == []
    assert h.status(sid).one(OrderStatus).status == "pending_trigger"

    out = h.trade_at(101)
    assert not out.has(Triggered)
    out = h.trade_at(102)
    trig = out.one(Triggered)
    assert (trig.order_id, trig.trigger_price, trig.price) == (sid, 102, 0)
    assert [(t.maker_order_id, t.taker_order_id, t.price, t.qty) for t in out.trades[1:]] == [
        (ask, sid, 103, 5)
    ]
    assert sid not in h.e.orders
    assert h.leaves(ask) == 5


def test_sell_stop_waits_then_triggers_as_market(h):
    h.trade_at(100)
    bid = h.rest(BUY, 10, 97, member="M2")
    sid = h.sell(5, ord_type=STOP, stop_price=98).order_id
    assert not h.trade_at(99).has(Triggered)
    assert not h.trade_at(101).has(Triggered)
    out = h.trade_at(98)
    assert out.one(Triggered).order_id == sid
    assert out.fills()[1:] == [(bid, 97, 5)]


def test_buy_stop_limit_triggers_as_limit_and_rests_remainder(h):
    h.trade_at(100)
    a = h.rest(SELL, 3, 103, member="M2")
    h.rest(SELL, 10, 105, member="M2")
    sid = h.buy(10, 103, ord_type=STOP_LIMIT, stop_price=102).order_id
    out = h.trade_at(102)
    trig = out.one(Triggered)
    assert (trig.trigger_price, trig.price) == (102, 103)
    assert out.fills()[1:] == [(a, 103, 3)]
    assert h.bid_ids() == [sid]
    assert h.l3()[0] == [(103, 7, sid, "M1")]
    assert h.e.orders[sid].ord_type == LIMIT


def test_sell_stop_limit_triggers_as_limit(h):
    h.trade_at(100)
    h.rest(BUY, 10, 95, member="M2")
    sid = h.sell(10, 97, ord_type=STOP_LIMIT, stop_price=98).order_id
    out = h.trade_at(98)
    assert out.one(Triggered).price == 97
    assert len(out.trades) == 1  # the limit at 97 does not reach the 95 bid
    assert h.l3()[1] == [(97, 10, sid, "M1")]


@pytest.mark.parametrize(
    ("side", "stop", "resting_side", "resting_price"),
    [(BUY, 99, SELL, 101), (SELL, 101, BUY, 99), (BUY, 100, SELL, 101), (SELL, 100, BUY, 99)],
)
def test_stop_already_reached_triggers_on_entry(h, side, stop, resting_side, resting_price):
    h.trade_at(100)
    maker = h.rest(resting_side, 10, resting_price, member="M2")
    out = h.new(side, 4, ord_type=STOP, stop_price=stop)
    assert out.types()[:3] == ["Accepted", "Triggered", "Trade"]
    assert out.fills() == [(maker, resting_price, 4)]


def test_stop_without_any_last_price_waits(h):
    h.rest(SELL, 10, 101, member="M2")
    sid = h.buy(5, ord_type=STOP, stop_price=1).order_id
    assert h.status(sid).one(OrderStatus).status == "pending_trigger"


def test_stop_cascade(h):
    h.trade_at(100)
    a = h.rest(SELL, 10, 101, member="M2")
    b = h.rest(SELL, 10, 102, member="M2")
    c = h.rest(SELL, 10, 103, member="M2")
    s1 = h.buy(10, ord_type=STOP, stop_price=101, member="M3").order_id
    s2 = h.buy(10, ord_type=STOP, stop_price=102, member="M4").order_id
    s3 = h.buy(10, ord_type=STOP, stop_price=104, member="M5").order_id
    out = h.buy(5, 101, member="M6")
    assert [ev.order_id for ev in out.of(Triggered)] == [s1, s2]
    assert [(t.taker_order_id, t.maker_order_id, t.price, t.qty) for t in out.trades] == [
        (out.order_id, a, 101, 5),
        (s1, a, 101, 5),
        (s1, b, 102, 5),
        (s2, b, 102, 5),
        (s2, c, 103, 5),
    ]
    assert h.live() == [c, s3]
    assert h.e.last_trade_price("ACME") == 103


def test_stops_with_same_trigger_fire_in_arrival_order(h):
    h.trade_at(100)
    h.rest(SELL, 10, 102, member="M2")
    s1 = h.buy(3, ord_type=STOP, stop_price=101, member="M3").order_id
    s2 = h.buy(3, ord_type=STOP, stop_price=101, member="M4").order_id
    out = h.trade_at(101)
    assert [ev.order_id for ev in out.of(Triggered)] == [s1, s2]


def test_stops_fired_by_one_print_enter_in_order_id_order_not_trigger_order(h):
    """docs/engine.md: orders fired together enter in ``order_id`` order.

    The stop stores are kept by trigger price, so the older stop at the farther trigger would
    come second without the ``order_id`` sort; its triggered market order must trade first.
    """
    h.trade_at(100)
    ask = h.rest(SELL, 10, 104, member="M2")
    up_old = h.buy(4, ord_type=STOP, stop_price=103, member="M3").order_id
    up_new = h.buy(4, ord_type=STOP, stop_price=101, member="M4").order_id
    bid = h.rest(BUY, 10, 96, member="M2")
    down_old = h.sell(4, ord_type=STOP, stop_price=97, member="M5").order_id
    down_new = h.sell(4, ord_type=STOP, stop_price=99, member="M6").order_id

    out = h.trade_at(103)
    assert [ev.order_id for ev in out.of(Triggered)] == [up_old, up_new]
    assert [t.taker_order_id for t in out.trades[1:]] == [up_old, up_new]
    assert h.leaves(ask) == 2

    out = h.trade_at(97)
    assert [ev.order_id for ev in out.of(Triggered)] == [down_old, down_new]
    assert [t.taker_order_id for t in out.trades[1:]] == [down_old, down_new]
    assert h.leaves(bid) == 2


def test_buy_and_sell_stops_fired_by_the_first_print_enter_in_order_id_order(h):
    """Stops waiting for a first last price: a print at both triggers fires a sell stop and a
    buy stop together; the older (the sell) enters first, though buy stops are checked first."""
    h.rest(SELL, 10, 105, member="M2")
    h.rest(BUY, 10, 95, member="M2")
    sell_stop = h.sell(2, ord_type=STOP, stop_price=100, member="M3").order_id
    buy_stop = h.buy(2, ord_type=STOP, stop_price=100, member="M4").order_id
    out = h.trade_at(100)
    assert [ev.order_id for ev in out.of(Triggered)] == [sell_stop, buy_stop]
    assert [t.taker_order_id for t in out.trades[1:]] == [sell_stop, buy_stop]


def test_triggered_stop_without_liquidity_is_cancelled(h):
    h.trade_at(100)
    sid = h.buy(5, ord_type=STOP, stop_price=101).order_id
    out = h.trade_at(101)
    assert out.one(Triggered).order_id == sid
    ev = cancelled(out, CancelReason.NO_LIQUIDITY)
    assert ev.order_id == sid
    assert sid not in h.e.orders


# ====================================================================== if-touched


def test_buy_market_if_touched_fires_when_price_falls_to_trigger(h):
    h.trade_at(100)
    mid = h.buy(5, ord_type=MIT, stop_price=98).order_id
    assert not h.trade_at(101).has(Triggered)  # a buy stop would have fired here
    assert not h.trade_at(99).has(Triggered)
    ask = h.rest(SELL, 10, 99, member="M2")
    out = h.trade_at(98)
    trig = out.one(Triggered)
    assert (trig.order_id, trig.trigger_price, trig.price) == (mid, 98, 0)
    assert out.fills()[1:] == [(ask, 99, 5)]


def test_sell_market_if_touched_fires_when_price_rises_to_trigger(h):
    h.trade_at(100)
    mid = h.sell(5, ord_type=MIT, stop_price=102).order_id
    assert not h.trade_at(99).has(Triggered)
    assert not h.trade_at(101).has(Triggered)
    bid = h.rest(BUY, 10, 101, member="M2")
    out = h.trade_at(102)
    assert out.one(Triggered).order_id == mid
    assert out.fills()[1:] == [(bid, 101, 5)]


def test_limit_if_touched_enters_as_limit(h):
    h.trade_at(100)
    h.rest(SELL, 10, 99, member="M2")
    lid = h.buy(5, 97, ord_type=LIT, stop_price=98).order_id
    out = h.trade_at(98)
    assert out.one(Triggered).price == 97
    assert len(out.trades) == 1
    assert h.l3()[0] == [(97, 5, lid, "M1")]


def test_if_touched_already_reached_fires_on_entry(h):
    h.trade_at(100)
    ask = h.rest(SELL, 10, 101, member="M2")
    out = h.buy(5, ord_type=MIT, stop_price=101)
    assert out.has(Triggered)
    assert out.fills() == [(ask, 101, 5)]


# ====================================================================== trailing stops


def test_sell_trailing_stop_amount_follows_the_high(h):
    h.trade_at(100)
    out = h.sell(5, ord_type=TRAIL, trail_amount=5)
    tid = out.order_id
    assert out.one(Accepted).stop_price == 95
    assert h.e.orders[tid].stop_price == 95
    h.trade_at(110)
    assert h.e.orders[tid].stop_price == 105
    assert not h.trade_at(106).has(Triggered)
    assert h.e.orders[tid].stop_price == 105  # the trigger never moves back down
    bid = h.rest(BUY, 10, 104, member="M2")
    out = h.trade_at(105)
    trig = out.one(Triggered)
    assert (trig.order_id, trig.trigger_price) == (tid, 105)
    assert out.fills()[1:] == [(bid, 104, 5)]


def test_buy_trailing_stop_bps_follows_the_low(h):
    h.trade_at(100)
    tid = h.buy(5, ord_type=TRAIL, trail_bps=500).order_id
    assert h.e.orders[tid].stop_price == 105  # 100 + 5%
    h.trade_at(80)
    assert h.e.orders[tid].stop_price == 84  # 80 + 5%
    assert not h.trade_at(83).has(Triggered)
    assert h.e.orders[tid].stop_price == 84
    ask = h.rest(SELL, 10, 90, member="M2")
    out = h.trade_at(84)
    assert out.one(Triggered).order_id == tid
    assert out.fills()[1:] == [(ask, 90, 5)]


@pytest.mark.parametrize(
    ("side", "trigger", "limit", "last"),
    [(SELL, 95, 93, 95), (BUY, 105, 107, 105)],
)
def test_trailing_stop_limit_limit_is_trigger_minus_or_plus_offset(h, side, trigger, limit, last):
    h.trade_at(100)
    tid = h.new(side, 5, ord_type=TRAIL_LIMIT, trail_amount=5, limit_offset=2).order_id
    assert h.e.orders[tid].stop_price == trigger
    out = h.trade_at(last)
    trig = out.one(Triggered)
    assert (trig.trigger_price, trig.price) == (trigger, limit)
    rows = h.l3()[0 if side == BUY else 1]
    assert rows == [(limit, 5, tid, "M1")]


def test_trailing_stop_limit_trades_up_to_its_limit(h):
    h.trade_at(100)
    a = h.rest(BUY, 3, 94, member="M2")
    h.rest(BUY, 10, 92, member="M2")
    tid = h.sell(5, ord_type=TRAIL_LIMIT, trail_amount=5, limit_offset=2).order_id
    out = h.trade_at(95)
    assert out.fills()[1:] == [(a, 94, 3)]
    assert h.l3()[1] == [(93, 2, tid, "M1")]


def test_trailing_stop_uses_reference_price_before_any_trade(make_harness):
    h = make_harness(reference_price=200)
    out = h.sell(5, ord_type=TRAIL, trail_amount=10)
    assert out.one(Accepted).stop_price == 190


# ====================================================================== iceberg


def test_iceberg_shows_only_its_display_slice(h):
    out = h.sell(30, 100, display_qty=10)
    assert out.one(LevelChanged).qty == 10
    assert h.l2() == ([], [(100, 10, 1)])
    assert h.l3()[1] == [(100, 10, out.order_id, "M1")]
    assert h.e.l1("ACME") == (0, 0, 100, 10)


def test_iceberg_refill_goes_behind_a_later_order(h):
    ice = h.rest(SELL, 30, 100, display_qty=10)
    plain = h.rest(SELL, 10, 100, member="M2")
    out = h.buy(10, 100, member="M3")
    assert out.fills() == [(ice, 100, 10)]
    assert h.l3()[1] == [(100, 10, plain, "M2"), (100, 10, ice, "M1")]
    assert h.leaves(ice) == 20
    out = h.buy(15, 100, member="M3")
    assert out.fills() == [(plain, 100, 10), (ice, 100, 5)]
    assert h.l3()[1] == [(100, 5, ice, "M1")]


def test_iceberg_large_taker_meets_each_refill_in_turn(h):
    ice = h.rest(SELL, 30, 100, display_qty=10)
    plain = h.rest(SELL, 10, 100, member="M2")
    out = h.buy(35, 100, member="M3")
    assert out.fills() == [(ice, 100, 10), (plain, 100, 10), (ice, 100, 10), (ice, 100, 5)]
    assert h.l2()[1] == [(100, 5, 1)]
    assert h.leaves(ice) == 5


def test_iceberg_last_slice_is_what_is_left(h):
    ice = h.rest(SELL, 25, 100, display_qty=10)
    h.buy(20, 100, member="M3")
    assert h.l3()[1] == [(100, 5, ice, "M1")]
    out = h.buy(10, 100, member="M3")
    assert out.fills() == [(ice, 100, 5)]
    assert h.live() == [out.order_id]


# ====================================================================== hidden


def test_hidden_order_is_not_displayed_and_matches_after_displayed(h):
    hid = h.rest(SELL, 10, 100, hidden=True)
    shown = h.rest(SELL, 10, 100, member="M2")
    assert h.l2() == ([], [(100, 10, 1)])
    assert h.l3()[1] == [(100, 10, shown, "M2")]
    out = h.buy(15, 100, member="M3")
    assert out.fills() == [(shown, 100, 10), (hid, 100, 5)]
    assert h.l2() == ([], [])
    assert h.leaves(hid) == 5


def test_hidden_only_level_is_invisible(h):
    out = h.sell(10, 100, hidden=True)
    assert not out.has(LevelChanged)
    assert h.e.l1("ACME") == (0, 0, 0, 0)
    assert h.l3() == ([], [])
    assert out.order_id in h.e.orders


def test_hidden_at_better_price_goes_first(h):
    hid = h.rest(SELL, 10, 99, hidden=True)
    shown = h.rest(SELL, 10, 100, member="M2")
    assert h.e.l1("ACME") == (0, 0, 100, 10)
    out = h.buy(15, 100, member="M3")
    assert out.fills() == [(hid, 99, 10), (shown, 100, 5)]


# ====================================================================== post-only


@pytest.mark.parametrize("price", [100, 101])
def test_post_only_reject_when_it_would_take(h, price):
    h.rest(SELL, 10, 100, member="M2")
    before = h.state()
    out = h.buy(5, price, post_only=PostOnly.REJECT)
    assert out.reject_code() == Reject.POST_ONLY_WOULD_CROSS
    assert h.state() == before


def test_post_only_rests_when_passive(h):
    h.rest(SELL, 10, 100, member="M2")
    out = h.buy(5, 99, post_only=PostOnly.REJECT)
    assert out.one(Accepted).price == 99
    assert h.bid_ids() == [out.order_id]


def test_post_only_reprice_buy_moves_one_tick_below_the_ask(h):
    h.rest(SELL, 10, 100, member="M2")
    out = h.buy(5, 102, post_only=PostOnly.REPRICE)
    assert not out.trades
    assert out.one(Accepted).price == 99
    assert h.l3()[0] == [(99, 5, out.order_id, "M1")]


def test_post_only_reprice_sell_moves_one_tick_above_the_bid(h):
    h.rest(BUY, 10, 100, member="M2")
    out = h.sell(5, 98, post_only=PostOnly.REPRICE)
    assert not out.trades
    assert h.l3()[1] == [(101, 5, out.order_id, "M1")]


def test_post_only_reprice_keeps_a_passive_price(h):
    h.rest(SELL, 10, 100, member="M2")
    out = h.buy(5, 97, post_only=PostOnly.REPRICE)
    assert h.l3()[0] == [(97, 5, out.order_id, "M1")]


# ====================================================================== pegged


@pytest.fixture
def bbo(h):
    """Bid 99 x 10 (M2), ask 102 x 10 (M3)."""
    h.bid = h.rest(BUY, 10, 99, member="M2")
    h.ask = h.rest(SELL, 10, 102, member="M3")
    return h


@pytest.mark.parametrize(
    ("side", "peg", "offset", "cap", "expected"),
    [
        (BUY, PegType.PRIMARY, 0, 0, 99),
        (BUY, PegType.PRIMARY, 1, 0, 100),
        (BUY, PegType.PRIMARY, 5, 0, 101),  # clamped one tick below the ask
        (BUY, PegType.PRIMARY, 2, 100, 100),  # capped by price
        (BUY, PegType.PRIMARY, -1, 0, 98),
        (SELL, PegType.PRIMARY, 0, 0, 102),
        (SELL, PegType.PRIMARY, 1, 0, 101),
        (SELL, PegType.PRIMARY, 5, 0, 100),  # clamped one tick above the bid
        (SELL, PegType.PRIMARY, 2, 101, 101),
        (BUY, PegType.MARKET, 0, 0, 101),
        (BUY, PegType.MARKET, -2, 0, 100),
        (SELL, PegType.MARKET, 0, 0, 100),
        (SELL, PegType.MARKET, -2, 0, 101),
        (BUY, PegType.MIDPOINT, 0, 0, 100),  # floor of 100.5
        (SELL, PegType.MIDPOINT, 0, 0, 101),  # ceil of 100.5
    ],
)
def test_pegged_price(bbo, side, peg, offset, cap, expected):
    h = bbo
    out = h.new(side, 5, cap, ord_type=PEGGED, peg=peg, peg_offset=offset, member="M1")
    assert not out.trades
    assert out.one(Accepted).price == expected
    assert h.e.orders[out.order_id].price == expected
    assert (expected, 5, out.order_id, "M1") in h.l3()[0 if side == BUY else 1]


def test_primary_peg_follows_the_bid_and_loses_priority(bbo):
    h = bbo
    peg = h.buy(5, ord_type=PEGGED, peg=PegType.PRIMARY).order_id
    assert h.l3()[0] == [(99, 10, h.bid, "M2"), (99, 5, peg, "M1")]
    out = h.buy(7, 100, member="M4")
    rep = out.one(Repriced)
    assert (rep.order_id, rep.price) == (peg, 100)
    assert h.l3()[0][:2] == [(100, 7, out.order_id, "M4"), (100, 5, peg, "M1")]
    out = h.cancel(out.order_id, member="M4")
    assert out.one(Repriced).price == 99
    assert h.l3()[0] == [(99, 10, h.bid, "M2"), (99, 5, peg, "M1")]


def test_midpoint_peg_reprices_when_the_ask_moves(bbo):
    h = bbo
    peg = h.buy(5, ord_type=PEGGED, peg=PegType.MIDPOINT).order_id
    assert h.e.orders[peg].price == 100
    out = h.sell(3, 104, member="M4")  # not the best ask: no change
    assert not out.has(Repriced)
    out = h.cancel(h.ask, member="M3")  # best ask now 104: mid floor(101.5) = 101
    assert out.one(Repriced).price == 101
    assert h.e.orders[peg].price == 101
    assert h.l3()[0][0] == (101, 5, peg, "M1")


def test_market_peg_follows_the_opposite_side(bbo):
    h = bbo
    peg = h.sell(5, ord_type=PEGGED, peg=PegType.MARKET, peg_offset=-3).order_id
    assert h.e.orders[peg].price == 102  # bid 99 + 3
    out = h.buy(1, 100, member="M4")
    assert out.one(Repriced).price == 103
    assert (103, 5, peg, "M1") in h.l3()[1]


def test_pegs_follow_only_non_pegged_orders(bbo):
    h = bbo
    p1 = h.buy(5, ord_type=PEGGED, peg=PegType.PRIMARY).order_id
    out = h.buy(5, ord_type=PEGGED, peg=PegType.PRIMARY, peg_offset=1, member="M4")
    assert out.one(Accepted).price == 100
    assert not out.has(Repriced)
    assert h.e.orders[p1].price == 99


@pytest.mark.parametrize(
    ("book", "side", "peg"),
    [
        ([], BUY, PegType.PRIMARY),
        ([], SELL, PegType.MIDPOINT),
        ([(SELL, 102)], BUY, PegType.PRIMARY),  # no bid to join
        ([(BUY, 99)], BUY, PegType.MARKET),  # no ask to follow
        ([(BUY, 99)], SELL, PegType.MIDPOINT),  # one-sided book
    ],
)
def test_pegged_without_reference_is_rejected(h, book, side, peg):
    for s, p in book:
        h.rest(s, 10, p, member="M2")
    before = h.state()
    out = h.new(side, 5, ord_type=PEGGED, peg=peg)
    assert out.reject_code() == Reject.INVALID_PEG
    assert h.state() == before


# ====================================================================== minimum quantity


def test_min_qty_available_executes_and_rests_remainder(h):
    a = h.rest(SELL, 10, 100, member="M2")
    b = h.rest(SELL, 10, 101, member="M2")
    out = h.buy(30, 101, min_qty=20)
    assert out.fills() == [(a, 100, 10), (b, 101, 10)]
    assert h.l3()[0] == [(101, 10, out.order_id, "M1")]


@pytest.mark.parametrize(("price", "min_qty"), [(101, 25), (100, 15)])
def test_min_qty_unavailable_cancels_without_trading(h, price, min_qty):
    h.rest(SELL, 10, 100, member="M2")
    h.rest(SELL, 10, 101, member="M2")
    before = h.book_view()
    out = h.buy(30, price, min_qty=min_qty)
    assert not out.trades
    ev = cancelled(out, CancelReason.MIN_QTY)
    assert (ev.cancelled_qty, ev.leaves_qty) == (30, 0)
    assert h.book_view() == before


def test_min_qty_applies_on_entry_only(h):
    h.rest(SELL, 20, 100, member="M2")
    oid = h.buy(30, 100, min_qty=20).order_id
    assert h.leaves(oid) == 10
    out = h.sell(1, 100, member="M3")
    assert out.fills() == [(oid, 100, 1)]


def test_min_qty_counts_a_resting_aon_the_order_can_fill(h):
    aon = h.rest(SELL, 50, 100, aon=True, member="M2")
    out = h.buy(100, 100, min_qty=10)
    assert out.fills() == [(aon, 100, 50)]
    assert h.l3()[0] == [(100, 50, out.order_id, "M1")]


def test_min_qty_with_ioc_cancels_what_is_left(h):
    a = h.rest(SELL, 10, 100, member="M2")
    out = h.buy(30, 100, min_qty=10, tif=IOC)
    assert out.fills() == [(a, 100, 10)]
    assert cancelled(out, CancelReason.IOC).cancelled_qty == 20


# ====================================================================== all-or-none


def test_aon_not_fillable_rests_undisplayed(h):
    h.rest(SELL, 30, 100, member="M2")
    out = h.buy(50, 100, aon=True)
    assert not out.trades
    assert not any(ev.side == BUY for ev in out.of(LevelChanged))
    assert h.l2()[0] == []
    assert h.l3()[0] == []
    assert h.status(out.order_id).one(OrderStatus).status == "new"


def test_aon_fills_in_full_across_orders(h):
    a = h.rest(SELL, 10, 99, member="M2")
    b = h.rest(SELL, 25, 100, member="M3")
    out = h.buy(30, 100, aon=True)
    assert out.fills() == [(a, 99, 10), (b, 100, 20)]
    assert out.order_id not in h.e.orders


def test_resting_aon_is_skipped_by_smaller_orders_and_filled_by_a_large_one(h):
    aon = h.rest(SELL, 50, 100, aon=True, member="M2")
    plain = h.rest(SELL, 20, 100, member="M3")
    out = h.buy(20, 100, member="M4")
    assert out.fills() == [(plain, 100, 20)]
    out = h.buy(49, 100, member="M4", tif=IOC)
    assert not out.trades
    assert cancelled(out, CancelReason.IOC).cancelled_qty == 49
    out = h.buy(60, 100, member="M5")
    assert out.fills() == [(aon, 100, 50)]
    assert h.l3()[0] == [(100, 10, out.order_id, "M5")]


def test_aon_ioc_not_fillable_is_cancelled(h):
    h.rest(SELL, 10, 100, member="M2")
    out = h.buy(20, 100, aon=True, tif=IOC)
    assert not out.trades
    assert cancelled(out, CancelReason.IOC).cancelled_qty == 20


def test_aon_market_not_fillable_is_cancelled(h):
    h.rest(SELL, 10, 100, member="M2")
    out = h.buy(20, ord_type=MARKET, aon=True)
    assert not out.trades
    assert cancelled(out, CancelReason.MARKET_REMAINDER).cancelled_qty == 20


# ====================================================================== IOC / FOK


def test_ioc_fills_what_it_can_and_cancels_the_rest(h):
    a = h.rest(SELL, 10, 100, member="M2")
    out = h.buy(25, 100, tif=IOC)
    assert out.fills() == [(a, 100, 10)]
    ev = cancelled(out, CancelReason.IOC)
    assert (ev.cancelled_qty, ev.leaves_qty) == (15, 0)
    assert h.live() == []


def test_ioc_on_empty_book_is_cancelled(h):
    out = h.buy(25, 100, tif=IOC)
    assert out.types() == ["Accepted", "Cancelled"]
    assert cancelled(out, CancelReason.IOC).cancelled_qty == 25


@pytest.mark.parametrize(("qty", "price"), [(25, 101), (20, 100)])
def test_fok_without_enough_liquidity_does_not_trade(h, qty, price):
    h.rest(SELL, 10, 100, member="M2")
    h.rest(SELL, 10, 101, member="M3")
    before = h.book_view()
    out = h.buy(qty, price, tif=FOK)
    assert not out.trades
    ev = cancelled(out, CancelReason.FOK)
    assert ev.cancelled_qty == qty
    assert h.book_view() == before


def test_fok_fills_completely_when_it_can(h):
    a = h.rest(SELL, 10, 100, member="M2")
    b = h.rest(SELL, 10, 101, member="M3")
    out = h.buy(20, 101, tif=FOK)
    assert out.fills() == [(a, 100, 10), (b, 101, 10)]
    assert not out.has(Cancelled)


def test_fok_market(h):
    h.rest(SELL, 10, 100, member="M2")
    out = h.buy(11, ord_type=MARKET, tif=FOK)
    assert not out.trades
    assert cancelled(out, CancelReason.FOK).cancelled_qty == 11


# ====================================================================== GTD / DAY / GTC


def test_gtd_expires_at_first_command_at_or_after_expiry(h):
    expire = h.ts + 100
    oid = h.rest(BUY, 10, 100, tif=GTD, expire_ts=expire)
    assert h.tick(expire - 1) == []
    assert oid in h.e.orders
    out = h.tick(expire)
    ev = out.one(Expired)
    assert (ev.order_id, ev.expired_qty, ev.member) == (oid, 10, "M1")
    lvl = out.one(LevelChanged)
    assert (lvl.price, lvl.qty) == (100, 0)
    assert h.live() == []


def test_gtd_expiry_runs_before_the_command_that_passes_it(h):
    expire = h.ts + 50
    oid = h.rest(SELL, 10, 100, tif=GTD, expire_ts=expire)
    h.ts = expire + 10  # the next command comes later than the expiry
    out = h.buy(5, 100, member="M2")
    assert out.types()[0] == "Expired"
    assert not out.trades
    assert oid not in h.e.orders
    assert h.bid_ids() == [out.order_id]


def test_gtd_partially_filled_expires_its_remainder(h):
    expire = h.ts + 100
    oid = h.rest(SELL, 10, 100, tif=GTD, expire_ts=expire)
    h.buy(4, 100, member="M2")
    assert h.tick(expire).one(Expired).expired_qty == 6
    assert oid not in h.e.orders


def test_gtd_pending_stop_expires(h):
    h.trade_at(100)
    expire = h.ts + 100
    sid = h.buy(5, ord_type=STOP, stop_price=110, tif=GTD, expire_ts=expire).order_id
    assert h.tick(expire).one(Expired).order_id == sid
    assert h.live() == []


def test_gtd_expiry_must_be_after_the_command_time(h):
    out = h.buy(10, 100, tif=GTD, expire_ts=h.ts + 1)  # the command itself runs at h.ts + 1
    assert out.reject_code() == Reject.INVALID_EXPIRY
    assert h.buy(10, 100, tif=GTD, expire_ts=h.ts + 2).has(Accepted)


def test_day_expires_at_close_gtc_survives(h):
    day = h.rest(BUY, 10, 100)
    gtc = h.rest(BUY, 10, 99, tif=GTC)
    out = h.apply(SetPhase(symbol="ACME", phase=Phase.CLOSED))
    assert [ev.order_id for ev in out.of(Expired)] == [day]
    assert h.live() == [gtc]


# ====================================================================== rejections of bad orders


@pytest.fixture
def busy(h):
    """A populated book plus side instruments, so a reject has state to leave untouched."""
    h.trade_at(100)
    h.rest(BUY, 10, 99, member="M1", cl_ord_id="b99")
    h.rest(BUY, 10, 98, member="M2")
    h.rest(SELL, 10, 101, member="M2")
    h.rest(SELL, 5, 102, member="M1", hidden=True)
    h.rest(SELL, 30, 103, member="M1", display_qty=10)
    h.buy(5, ord_type=STOP, stop_price=110)
    h.sell(5, ord_type=TRAIL, trail_amount=5)
    h.buy(5, ord_type=PEGGED, peg=PegType.PRIMARY, member="M2")
    h.add_instrument("LOT", lot_size=100)
    h.add_instrument("BND", reference_price=100, band_bps=1000)
    h.add_instrument("SHUT", phase=Phase.CLOSED)
    h.add_instrument("PRE", phase=Phase.PRE_OPEN)
    h.add_instrument("HLT")
    h.add_instrument("EMPTY")
    h.apply(Halt(symbol="HLT"))
    h.apply(SetKillSwitch(member="K", active=True))
    return h


FAR = 10**18  # an expiry far in the future

BAD_ORDERS = [
    # (id, side, qty, price, fields, code)
    ("unknown-symbol", BUY, 10, 100, {"symbol": "NOPE"}, Reject.UNKNOWN_SYMBOL),
    ("closed", BUY, 10, 100, {"symbol": "SHUT"}, Reject.MARKET_CLOSED),
    ("halted", BUY, 10, 100, {"symbol": "HLT"}, Reject.INSTRUMENT_HALTED),
    ("ioc-in-call", BUY, 10, 100, {"symbol": "PRE", "tif": IOC}, Reject.WRONG_PHASE_FOR_TIF),
    ("fok-in-call", BUY, 10, 100, {"symbol": "PRE", "tif": FOK}, Reject.WRONG_PHASE_FOR_TIF),
    (
        "peg-in-call",
        BUY,
        10,
        0,
        {"symbol": "PRE", "ord_type": PEGGED, "peg": PegType.PRIMARY},
        Reject.WRONG_PHASE_FOR_TIF,
    ),
    ("mtl-in-call", BUY, 10, 0, {"symbol": "PRE", "ord_type": MTL}, Reject.WRONG_PHASE_FOR_TIF),
    ("opg-in-continuous", BUY, 10, 100, {"tif": TimeInForce.OPG}, Reject.WRONG_PHASE_FOR_TIF),
    ("kill-switch", BUY, 10, 100, {"member": "K"}, Reject.KILL_SWITCH_ACTIVE),
    ("above-band", BUY, 10, 111, {"symbol": "BND"}, Reject.OUTSIDE_PRICE_BAND),
    ("below-band", SELL, 10, 89, {"symbol": "BND"}, Reject.OUTSIDE_PRICE_BAND),
    (
        "trailing-no-reference",
        SELL,
        10,
        0,
        {"symbol": "EMPTY", "ord_type": TRAIL, "trail_amount": 5},
        Reject.NO_REFERENCE_PRICE,
    ),
    ("qty-zero", BUY, 0, 100, {}, Reject.INVALID_QUANTITY),
    ("qty-negative", BUY, -5, 100, {}, Reject.INVALID_QUANTITY),
    ("qty-too-big", BUY, MAX_ORDER_QTY + 1, 100, {}, Reject.INVALID_QUANTITY),
    ("lot", BUY, 150, 100, {"symbol": "LOT"}, Reject.INVALID_LOT),
    ("price-zero", BUY, 10, 0, {}, Reject.INVALID_PRICE),
    ("price-negative", SELL, 10, -1, {}, Reject.INVALID_PRICE),
    ("price-too-big", SELL, 10, MAX_PRICE_TICKS, {}, Reject.INVALID_PRICE),
    (
        "stop-limit-no-price",
        BUY,
        10,
        0,
        {"ord_type": STOP_LIMIT, "stop_price": 105},
        Reject.INVALID_PRICE,
    ),
    (
        "peg-negative-cap",
        BUY,
        10,
        -1,
        {"ord_type": PEGGED, "peg": PegType.PRIMARY},
        Reject.INVALID_PRICE,
    ),
    ("duplicate-clid", BUY, 10, 97, {"cl_ord_id": "b99"}, Reject.DUPLICATE_CL_ORD_ID),
    ("market-with-price", BUY, 10, 100, {"ord_type": MARKET}, Reject.INVALID_ORDER_TYPE),
    ("mtl-with-price", BUY, 10, 100, {"ord_type": MTL}, Reject.INVALID_ORDER_TYPE),
    (
        "stop-with-price",
        BUY,
        10,
        100,
        {"ord_type": STOP, "stop_price": 105},
        Reject.INVALID_ORDER_TYPE,
    ),
    ("limit-with-stop", BUY, 10, 100, {"stop_price": 105}, Reject.INVALID_ORDER_TYPE),
    (
        "peg-with-stop",
        BUY,
        10,
        0,
        {"ord_type": PEGGED, "peg": PegType.PRIMARY, "stop_price": 5},
        Reject.INVALID_ORDER_TYPE,
    ),
    (
        "opg-stop",
        BUY,
        10,
        0,
        {"symbol": "PRE", "ord_type": STOP, "stop_price": 5, "tif": TimeInForce.OPG},
        Reject.INVALID_TIF,
    ),
    ("market-gtc", BUY, 10, 0, {"ord_type": MARKET, "tif": GTC}, Reject.INVALID_TIF),
    (
        "market-gtd",
        BUY,
        10,
        0,
        {"ord_type": MARKET, "tif": GTD, "expire_ts": FAR},
        Reject.INVALID_TIF,
    ),
    ("mtl-gtc", BUY, 10, 0, {"ord_type": MTL, "tif": GTC}, Reject.INVALID_TIF),
    ("mtl-cls", BUY, 10, 0, {"ord_type": MTL, "tif": TimeInForce.CLS}, Reject.INVALID_TIF),
    (
        "stop-limit-cls",
        BUY,
        10,
        100,
        {"ord_type": STOP_LIMIT, "stop_price": 105, "tif": TimeInForce.CLS},
        Reject.INVALID_TIF,
    ),
    ("display-eq-qty", BUY, 10, 97, {"display_qty": 10}, Reject.INVALID_DISPLAY_QTY),
    ("display-gt-qty", BUY, 10, 97, {"display_qty": 11}, Reject.INVALID_DISPLAY_QTY),
    ("display-negative", BUY, 10, 97, {"display_qty": -1}, Reject.INVALID_DISPLAY_QTY),
    (
        "display-lot",
        BUY,
        300,
        97,
        {"symbol": "LOT", "display_qty": 150},
        Reject.INVALID_DISPLAY_QTY,
    ),
    ("stop-zero", BUY, 10, 0, {"ord_type": STOP}, Reject.INVALID_STOP_PRICE),
    (
        "stop-negative",
        BUY,
        10,
        100,
        {"ord_type": STOP_LIMIT, "stop_price": -1},
        Reject.INVALID_STOP_PRICE,
    ),
    ("mit-zero", SELL, 10, 0, {"ord_type": MIT}, Reject.INVALID_STOP_PRICE),
    ("gtd-past", BUY, 10, 97, {"tif": GTD, "expire_ts": 5}, Reject.INVALID_EXPIRY),
    ("gtd-no-expiry", BUY, 10, 97, {"tif": GTD}, Reject.INVALID_EXPIRY),
    ("day-with-expiry", BUY, 10, 97, {"expire_ts": FAR}, Reject.INVALID_EXPIRY),
    (
        "post-only-crosses",
        BUY,
        10,
        101,
        {"post_only": PostOnly.REJECT},
        Reject.POST_ONLY_WOULD_CROSS,
    ),
    ("pegged-without-peg", BUY, 10, 0, {"ord_type": PEGGED}, Reject.INVALID_PEG),
    ("limit-with-peg", BUY, 10, 97, {"peg": PegType.PRIMARY}, Reject.INVALID_PEG),
    ("limit-with-peg-offset", BUY, 10, 97, {"peg_offset": 1}, Reject.INVALID_PEG),
    (
        "peg-no-reference",
        BUY,
        10,
        0,
        {"symbol": "EMPTY", "ord_type": PEGGED, "peg": PegType.MIDPOINT},
        Reject.INVALID_PEG,
    ),
    (
        "trail-both",
        SELL,
        10,
        0,
        {"ord_type": TRAIL, "trail_amount": 5, "trail_bps": 100},
        Reject.INVALID_TRAILING,
    ),
    ("trail-neither", SELL, 10, 0, {"ord_type": TRAIL}, Reject.INVALID_TRAILING),
    (
        "trail-negative",
        SELL,
        10,
        0,
        {"ord_type": TRAIL, "trail_amount": -5},
        Reject.INVALID_TRAILING,
    ),
    (
        "trail-stop-with-limit-offset",
        SELL,
        10,
        0,
        {"ord_type": TRAIL, "trail_amount": 5, "limit_offset": 1},
        Reject.INVALID_TRAILING,
    ),
    (
        "trail-limit-negative-offset",
        SELL,
        10,
        0,
        {"ord_type": TRAIL_LIMIT, "trail_amount": 5, "limit_offset": -1},
        Reject.INVALID_TRAILING,
    ),
    ("limit-with-trail", BUY, 10, 97, {"trail_amount": 5}, Reject.INVALID_TRAILING),
    ("limit-with-limit-offset", BUY, 10, 97, {"limit_offset": 5}, Reject.INVALID_TRAILING),
    ("min-qty-above-qty", BUY, 10, 97, {"min_qty": 11}, Reject.INVALID_MIN_QTY),
    ("min-qty-negative", BUY, 10, 97, {"min_qty": -1}, Reject.INVALID_MIN_QTY),
    (
        "display-and-hidden",
        BUY,
        10,
        97,
        {"display_qty": 5, "hidden": True},
        Reject.INVALID_COMBINATION,
    ),
    ("display-and-aon", BUY, 10, 97, {"display_qty": 5, "aon": True}, Reject.INVALID_COMBINATION),
    ("display-ioc", BUY, 10, 97, {"display_qty": 5, "tif": IOC}, Reject.INVALID_COMBINATION),
    (
        "display-market",
        BUY,
        10,
        0,
        {"display_qty": 5, "ord_type": MARKET},
        Reject.INVALID_COMBINATION,
    ),
    ("hidden-market", BUY, 10, 0, {"hidden": True, "ord_type": MARKET}, Reject.INVALID_COMBINATION),
    ("hidden-fok", BUY, 10, 97, {"hidden": True, "tif": FOK}, Reject.INVALID_COMBINATION),
    (
        "post-only-ioc",
        BUY,
        10,
        97,
        {"post_only": PostOnly.REJECT, "tif": IOC},
        Reject.INVALID_COMBINATION,
    ),
    (
        "post-only-market",
        BUY,
        10,
        0,
        {"post_only": PostOnly.REPRICE, "ord_type": MARKET},
        Reject.INVALID_COMBINATION,
    ),
    (
        "post-only-aon",
        BUY,
        10,
        97,
        {"post_only": PostOnly.REJECT, "aon": True},
        Reject.INVALID_COMBINATION,
    ),
    ("min-qty-and-aon", BUY, 10, 97, {"min_qty": 5, "aon": True}, Reject.INVALID_COMBINATION),
    (
        "min-qty-on-stop",
        BUY,
        10,
        0,
        {"min_qty": 5, "ord_type": STOP, "stop_price": 105},
        Reject.INVALID_COMBINATION,
    ),
    (
        "aon-on-stop-limit",
        BUY,
        10,
        100,
        {"aon": True, "ord_type": STOP_LIMIT, "stop_price": 105},
        Reject.INVALID_COMBINATION,
    ),
    (
        "aon-on-open",
        BUY,
        10,
        97,
        {"aon": True, "symbol": "PRE", "tif": TimeInForce.OPG},
        Reject.INVALID_COMBINATION,
    ),
    ("market-no-liquidity", BUY, 10, 0, {"symbol": "EMPTY", "ord_type": MARKET}, 3016),
    ("mtl-no-liquidity", SELL, 10, 0, {"symbol": "EMPTY", "ord_type": MTL}, 3016),
]


@pytest.mark.parametrize(
    ("side", "qty", "price", "fields", "code"),
    [row[1:] for row in BAD_ORDERS],
    ids=[row[0] for row in BAD_ORDERS],
)
def test_bad_order_is_rejected_without_state_change(busy, side, qty, price, fields, code):
    h = busy
    view, state = h.book_view(), h.state()
    fields = dict(fields)
    member = fields.pop("member", "M1")
    symbol = fields.pop("symbol", "ACME")
    cl_ord_id = fields.pop("cl_ord_id", "fresh")
    out = h.new(side, qty, price, member=member, symbol=symbol, cl_ord_id=cl_ord_id, **fields)
    assert out.types() == ["Rejected"], list(out)
    rej = out.one(Rejected)
    assert (rej.code, rej.text) == (code, Reject(code).text)
    assert (rej.command, rej.symbol, rej.member, rej.cl_ord_id, rej.order_id) == (
        "new_order",
        symbol,
        member,
        cl_ord_id,
        0,
    )
    assert h.book_view() == view
    assert h.state() == state


def test_every_new_order_reject_code_is_exercised():
    reachable = {int(row[-1]) for row in BAD_ORDERS}
    not_for_new_orders = {
        Reject.DUPLICATE_SYMBOL,
        Reject.AUCTION_FROZEN,
        Reject.INVALID_INSTRUMENT,
        Reject.NOT_HALTED,
        Reject.INVALID_PHASE_CHANGE,
        Reject.UNKNOWN_ORDER,
        Reject.NOT_OWNER,
        Reject.REPLACE_QTY_TOO_LOW,
        Reject.REPLACE_NOT_SUPPORTED,
        Reject.NOTHING_TO_CANCEL,
    }
    assert reachable == {int(c) for c in Reject} - {int(c) for c in not_for_new_orders}


def test_rejected_cl_ord_id_stays_free(h):
    assert h.buy(0, 100, cl_ord_id="again").reject_code() == Reject.INVALID_QUANTITY
    out = h.buy(10, 100, cl_ord_id="again")
    assert out.one(Accepted).cl_ord_id == "again"


def test_trade_events_report_both_sides(h):
    sell = h.rest(SELL, 10, 100, member="M2", cl_ord_id="s1")
    out = h.buy(4, 100, cl_ord_id="b1")
    t = out.one(Trade)
    assert (t.maker_cl_ord_id, t.taker_cl_ord_id, t.maker_leaves, t.taker_leaves) == (
        "s1",
        "b1",
        6,
        0,
    )
    assert t.trade_id == 1
    assert h.buy(1, 100).one(Trade).trade_id == 2
    assert h.leaves(sell) == 5
