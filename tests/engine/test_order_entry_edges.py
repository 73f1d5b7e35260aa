"""Edges of order entry that mutation testing of orders.py found untested (docs/testing.md):
every field limit accepted at its boundary and refused one step past it, the order id a rejected
cancel or replace names, post-only on a replace (both sides, both modes), the full ``replaced``
and ``order_status`` events, and what a replace does to stops, held on-close orders and pegs."""

from __future__ import annotations

from typing import Any

import pytest

from tradingfloor.core.limits import (
    MAX_ORDER_QTY,
    MAX_PEG_OFFSET_TICKS,
    MAX_PRICE_TICKS,
    MAX_TRAIL_BPS,
    MAX_TRAIL_TICKS,
)
from tradingfloor.exchange.engine.commands import SetPhase
from tradingfloor.exchange.engine.events import (
    Accepted,
    OrderStatus,
    Rejected,
    Replaced,
    Repriced,
    Triggered,
)
from tradingfloor.exchange.engine.reasons import Reject
from tradingfloor.exchange.engine.types import (
    OrdType,
    PegType,
    Phase,
    PostOnly,
    Side,
    TimeInForce,
)

BUY, SELL = Side.BUY, Side.SELL
IOC, OPG, CLS = TimeInForce.IOC, TimeInForce.OPG, TimeInForce.CLS
SYMBOL = "ACME"  # the harness's instrument (conftest.py)
TOP = MAX_PRICE_TICKS - 1  # the highest accepted price


def accepted(out) -> bool:  # type: ignore[no-untyped-def]
    return out.has(Accepted) and not out.has(Rejected)


# ------------------------------------------------------------------ field limits of a new order


def _with_book(h) -> None:  # type: ignore[no-untyped-def]
    h.trade_at(100)  # a last price, for trailing stops
    h.rest(BUY, 1, 100, member="M2")
    h.rest(SELL, 1, 200, member="M2")


AT_THE_LIMIT: list[tuple[str, Side, int, int, dict[str, Any]]] = [
    ("largest-qty", BUY, MAX_ORDER_QTY, 50, {}),
    ("price-1-not-plain", SELL, 1, 1, {"hidden": True}),
    ("top-price-not-plain", BUY, 1, TOP, {"hidden": True}),
    ("top-peg-cap", BUY, 1, TOP, {"ord_type": OrdType.PEGGED, "peg": PegType.PRIMARY}),
    ("top-stop", BUY, 1, 0, {"ord_type": OrdType.STOP, "stop_price": TOP}),
    (
        "largest-trail",
        SELL,
        1,
        0,
        {"ord_type": OrdType.TRAILING_STOP, "trail_amount": MAX_TRAIL_TICKS},
    ),
    ("smallest-trail-bps", SELL, 1, 0, {"ord_type": OrdType.TRAILING_STOP, "trail_bps": 1}),
    (
        "largest-trail-bps",
        SELL,
        1,
        0,
        {"ord_type": OrdType.TRAILING_STOP, "trail_bps": MAX_TRAIL_BPS},
    ),
    (
        "largest-limit-offset",
        BUY,
        1,
        0,
        {
            "ord_type": OrdType.TRAILING_STOP_LIMIT,
            "trail_amount": 1,
            "limit_offset": MAX_PEG_OFFSET_TICKS,
        },
    ),
    (
        "largest-peg-offset",
        BUY,
        1,
        0,
        {"ord_type": OrdType.PEGGED, "peg": PegType.PRIMARY, "peg_offset": MAX_PEG_OFFSET_TICKS},
    ),
    ("min-qty-1", BUY, 10, 150, {"min_qty": 1, "tif": IOC}),
    ("min-qty-equal-qty", SELL, 1, 100, {"min_qty": 1}),
]


@pytest.mark.parametrize(
    ("side", "qty", "price", "kw"), [c[1:] for c in AT_THE_LIMIT], ids=[c[0] for c in AT_THE_LIMIT]
)
def test_a_new_order_at_each_limit_is_accepted(h, side, qty, price, kw) -> None:
    _with_book(h)
    out = h.new(side, qty, price, **kw)
    assert accepted(out), list(out)


ONE_PAST: list[tuple[str, Side, int, int, dict[str, Any], int]] = [
    ("price-not-plain", BUY, 1, MAX_PRICE_TICKS, {"hidden": True}, Reject.INVALID_PRICE),
    (
        "peg-cap",
        BUY,
        1,
        MAX_PRICE_TICKS,
        {"ord_type": OrdType.PEGGED, "peg": PegType.PRIMARY},
        Reject.INVALID_PRICE,
    ),
    ("stop", BUY, 1, 0, {"ord_type": OrdType.STOP, "stop_price": MAX_PRICE_TICKS}, 3008),
    (
        "trail",
        SELL,
        1,
        0,
        {"ord_type": OrdType.TRAILING_STOP, "trail_amount": MAX_TRAIL_TICKS + 1},
        Reject.INVALID_TRAILING,
    ),
    (
        "trail-bps",
        SELL,
        1,
        0,
        {"ord_type": OrdType.TRAILING_STOP, "trail_bps": MAX_TRAIL_BPS + 1},
        Reject.INVALID_TRAILING,
    ),
]


@pytest.mark.parametrize(
    ("side", "qty", "price", "kw", "code"), [c[1:] for c in ONE_PAST], ids=[c[0] for c in ONE_PAST]
)
def test_a_new_order_one_step_past_a_limit_is_rejected(h, side, qty, price, kw, code) -> None:
    _with_book(h)
    out = h.new(side, qty, price, **kw)
    assert out.reject_code() == code


def test_a_pegged_order_may_rest_at_one_tick(h) -> None:
    h.rest(BUY, 1, 1, member="M2")
    out = h.buy(1, ord_type=OrdType.PEGGED, peg=PegType.PRIMARY)
    assert accepted(out)
    assert h.e.orders[out.order_id].price == 1


def test_post_only_on_arrival_at_the_edges(h) -> None:
    h.rest(BUY, 1, 100, member="M2")
    # a sell at the best bid would lock it
    assert h.sell(1, 100, post_only=PostOnly.REJECT).reject_code() == 3010
    h.mass_cancel("M2")
    h.rest(SELL, 1, 2, member="M3")
    out = h.buy(1, 5, post_only=PostOnly.REPRICE)  # slides to 1 tick: allowed
    assert accepted(out) and h.e.orders[out.order_id].price == 1
    h.mass_cancel("M1")
    h.mass_cancel("M3")
    h.rest(SELL, 1, 1, member="M3")
    assert h.buy(1, 5, post_only=PostOnly.REPRICE).reject_code() == 3010  # would slide to 0


# ------------------------------------------------ rejected cancel/replace name the order


def _rejected(out) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    ev = out.one(Rejected)
    return ev.code, ev.order_id


def _named(h, oid: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Name an order by its client order id only: the rejection must then supply the id."""
    return {"order_id": 0, "orig_cl_ord_id": h.e.orders[oid].cl_ord_id}


def test_a_frozen_on_open_order_is_named_by_the_rejections(make_harness) -> None:
    h = make_harness(phase=Phase.PRE_OPEN)
    oid = h.buy(10, 100, tif=OPG).order_id
    h.apply(SetPhase(symbol=SYMBOL, phase=Phase.OPENING_AUCTION))
    assert _rejected(h.cancel(**_named(h, oid))) == (Reject.AUCTION_FROZEN, oid)
    assert _rejected(h.replace(qty=20, price=100, **_named(h, oid))) == (
        Reject.AUCTION_FROZEN,
        oid,
    )


def test_every_replace_rejection_names_the_order(make_harness) -> None:
    h = make_harness(lot_size=10)
    h.trade_at(100, 10)
    h.rest(SELL, 20, 105, member="M2")
    part = h.buy(30, 105).order_id  # 20 filled, 10 resting
    plain = h.rest(BUY, 30, 90)
    ice = h.rest(BUY, 30, 90, display_qty=10)
    stop = h.buy(10, ord_type=OrdType.STOP, stop_price=150).order_id
    trail = h.sell(10, ord_type=OrdType.TRAILING_STOP, trail_amount=5).order_id
    po = h.rest(BUY, 10, 90, post_only=PostOnly.REJECT)
    h.rest(SELL, 10, 120, member="M2")
    cases = [
        (h.replace(qty=10, **_named(h, trail)), Reject.REPLACE_NOT_SUPPORTED, trail),
        (h.replace(qty=0, price=90, **_named(h, plain)), Reject.INVALID_QUANTITY, plain),
        (h.replace(qty=15, price=90, **_named(h, plain)), Reject.INVALID_LOT, plain),
        (h.replace(qty=20, price=105, **_named(h, part)), Reject.REPLACE_QTY_TOO_LOW, part),
        (h.replace(qty=10, price=90, **_named(h, ice)), Reject.INVALID_DISPLAY_QTY, ice),
        (h.replace(qty=10, price=160, **_named(h, stop)), Reject.INVALID_ORDER_TYPE, stop),
        (h.replace(qty=30, price=MAX_PRICE_TICKS, **_named(h, plain)), Reject.INVALID_PRICE, plain),
        (
            h.replace(qty=30, price=90, stop_price=95, **_named(h, plain)),
            Reject.INVALID_ORDER_TYPE,
            plain,
        ),
        (
            h.replace(qty=10, stop_price=MAX_PRICE_TICKS, **_named(h, stop)),
            Reject.INVALID_STOP_PRICE,
            stop,
        ),
        (h.replace(qty=10, price=120, **_named(h, po)), Reject.POST_ONLY_WOULD_CROSS, po),
        (
            h.replace(qty=30, price=90, cl_ord_id=f"c{part}", **_named(h, plain)),
            Reject.DUPLICATE_CL_ORD_ID,
            plain,
        ),
    ]
    for out, code, oid in cases:
        assert _rejected(out) == (code, oid)
    # the largest price and quantity are accepted
    assert h.replace(plain, MAX_ORDER_QTY - MAX_ORDER_QTY % 10, 90).has(Replaced)
    assert h.replace(plain, 30, TOP - 100).has(Replaced)
    assert h.replace(stop, 10, stop_price=TOP).has(Replaced)


def test_min_qty_on_a_replace_at_and_below_the_minimum(make_harness) -> None:
    h = make_harness(phase=Phase.PRE_OPEN)  # min_qty is ignored on arrival in a call phase
    oid = h.buy(30, 100, min_qty=20).order_id
    assert _rejected(h.replace(qty=19, price=100, **_named(h, oid))) == (
        Reject.INVALID_MIN_QTY,
        oid,
    )
    assert h.replace(oid, 20, 100).has(Replaced)


def test_a_replace_is_checked_against_the_band_edges_inclusive(make_harness) -> None:
    h = make_harness(reference_price=10_000, band_bps=100)  # band [9900, 10100]
    oid = h.rest(BUY, 10, 9_950)
    assert h.replace(oid, 10, 9_900).has(Replaced)
    assert h.replace(oid, 10, 10_100).has(Replaced)
    assert _rejected(h.replace(oid, 10, 10_101)) == (Reject.OUTSIDE_PRICE_BAND, oid)


# ------------------------------------------------------------------ post-only on a replace


def test_post_only_reject_on_a_replace_looks_at_the_opposite_side(h) -> None:
    h.rest(BUY, 10, 100, member="M2")
    sell = h.rest(SELL, 10, 105, post_only=PostOnly.REJECT)
    assert h.replace(sell, 10, 101).has(Replaced)  # above the best bid: fine
    assert _rejected(h.replace(sell, 10, 100)) == (Reject.POST_ONLY_WOULD_CROSS, sell)
    buy = h.rest(BUY, 10, 90, post_only=PostOnly.REJECT, member="M3")
    h.mass_cancel("M1")
    assert h.replace(buy, 10, 95, member="M3").has(Replaced)  # no ask at all


def test_post_only_reprice_on_a_replace_slides_behind_the_opposite_best(h) -> None:
    h.rest(BUY, 10, 100, member="M2")
    sell = h.rest(SELL, 10, 105, post_only=PostOnly.REPRICE)
    out = h.replace(sell, 10, 99)
    assert out.one(Replaced).price == 101
    assert not out.trades
    h.mass_cancel("M2")
    h.mass_cancel("M1")
    buy = h.rest(BUY, 10, 1, post_only=PostOnly.REPRICE)
    # all-or-none asks larger than the buy rest undisplayed at or next to it
    h.rest(SELL, 50, 2, member="M2", aon=True)
    assert h.replace(buy, 10, 5).one(Replaced).price == 1  # one tick: allowed
    h.rest(SELL, 50, 1, member="M3", aon=True)
    out = h.replace(qty=10, price=5, **_named(h, buy))  # would slide to 0
    assert _rejected(out) == (Reject.POST_ONLY_WOULD_CROSS, buy)


# ------------------------------------------------------------------ whole events


def test_replaced_and_order_status_events_name_the_order_fully(h) -> None:
    oid = h.rest(BUY, 10, 100, cl_ord_id="a")
    rep = h.replace(oid, 12, 101, cl_ord_id="b").one(Replaced)
    assert (rep.symbol, rep.order_id, rep.member, rep.cl_ord_id, rep.orig_cl_ord_id) == (
        SYMBOL,
        oid,
        "M1",
        "b",
        "a",
    )
    st = h.status(oid).one(OrderStatus)
    assert (st.symbol, st.order_id, st.member, st.cl_ord_id, st.qty, st.price) == (
        SYMBOL,
        oid,
        "M1",
        "b",
        12,
        101,
    )


# ------------------------------------------------------------------ what a replace sets in motion


def test_a_stop_replaced_in_a_call_phase_waits_even_if_the_last_price_reached_it(h) -> None:
    h.trade_at(100)
    stop = h.buy(10, ord_type=OrdType.STOP, stop_price=150).order_id
    h.apply(SetPhase(symbol=SYMBOL, phase=Phase.PRE_OPEN))
    out = h.replace(stop, 10, stop_price=90)  # 100 >= 90: would fire in continuous trading
    assert not out.has(Triggered)
    assert h.status(stop).one(OrderStatus).status == "pending_trigger"


def test_a_held_on_close_order_stays_held_when_replaced(h) -> None:
    h.rest(SELL, 10, 100, member="M2")
    oid = h.buy(10, 90, tif=CLS).order_id
    out = h.replace(oid, 10, 100)  # would trade if it entered the book
    assert not out.trades
    assert h.status(oid).one(OrderStatus).status == "pending_auction"
    assert h.l2() == ([], [(100, 10, 1)])
    out = h.apply(SetPhase(symbol=SYMBOL, phase=Phase.CLOSING_AUCTION))
    assert h.l3()[0] == [(100, 10, oid, "M1")]  # released into the closing call


def test_a_replace_that_moves_the_best_bid_reprices_the_pegs(h) -> None:
    h.rest(SELL, 10, 110, member="M2")
    bid = h.rest(BUY, 10, 100, member="M2")
    peg = h.buy(5, ord_type=OrdType.PEGGED, peg=PegType.PRIMARY, member="M3").order_id
    assert h.e.orders[peg].price == 100
    out = h.replace(bid, 10, 104, member="M2")  # no trade: only the replace moves the bid
    assert not out.trades
    assert [(ev.order_id, ev.price) for ev in out.of(Repriced)] == [(peg, 104)]


def test_a_new_first_peg_takes_the_current_reference_as_its_last_seen_one(h) -> None:
    # The reference is remembered only while pegs exist: after the last peg left, the bid moved
    # from 101 to 100 unseen. A new peg must record 100, or a later move back to 101 would look
    # like no change and leave the peg behind.
    h.rest(SELL, 10, 110, member="M2")
    bid = h.rest(BUY, 10, 100, member="M2")
    p1 = h.buy(5, ord_type=OrdType.PEGGED, peg=PegType.PRIMARY, member="M3").order_id
    h.replace(bid, 10, 101, member="M2", cl_ord_id="b1")
    assert h.e.orders[p1].price == 101
    h.cancel(p1, member="M3")
    h.replace(bid, 10, 100, member="M2", cl_ord_id="b2")  # no peg sees this
    p2 = h.buy(5, ord_type=OrdType.PEGGED, peg=PegType.PRIMARY, member="M3").order_id
    assert h.e.orders[p2].price == 100
    out = h.replace(bid, 10, 101, member="M2", cl_ord_id="b3")
    assert [(ev.order_id, ev.price) for ev in out.of(Repriced)] == [(p2, 101)]
