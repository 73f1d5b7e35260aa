"""Cancel, replace, mass cancel, order status, duplicate client order ids, self-trade prevention."""

from __future__ import annotations

from typing import Any

import pytest

from tradingfloor.exchange.engine.events import (
    Accepted,
    Cancelled,
    LevelChanged,
    OrderStatus,
    Rejected,
    Replaced,
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
    STPMode,
    STPScope,
    TimeInForce,
)

BUY, SELL = Side.BUY, Side.SELL


def assert_rejected(h, out, code: int, command: str, order_id: int = 0) -> Rejected:
    assert out.types() == ["Rejected"], list(out)
    rej = out.one(Rejected)
    assert (rej.code, rej.text, rej.command, rej.order_id) == (
        code,
        Reject(code).text,
        command,
        order_id,
    )
    return rej


# ====================================================================== cancel


def test_cancel_by_order_id(h):
    oid = h.rest(BUY, 10, 100, cl_ord_id="b1")
    out = h.cancel(oid, cl_ord_id="x1")
    ev = out.one(Cancelled)
    assert (ev.order_id, ev.member, ev.cl_ord_id, ev.orig_cl_ord_id) == (oid, "M1", "x1", "b1")
    assert (ev.cancelled_qty, ev.leaves_qty, ev.reason) == (10, 0, CancelReason.USER)
    lvl = out.one(LevelChanged)
    assert (lvl.side, lvl.price, lvl.qty, lvl.orders) == (BUY, 100, 0, 0)
    assert h.live() == []
    assert h.l3() == ([], [])


def test_cancel_by_orig_cl_ord_id(h):
    oid = h.rest(SELL, 10, 100, cl_ord_id="s1")
    out = h.cancel(orig_cl_ord_id="s1")
    assert out.one(Cancelled).order_id == oid
    assert h.live() == []


def test_cancel_partially_filled_cancels_the_leaves(h):
    oid = h.rest(SELL, 10, 100)
    h.buy(4, 100, member="M2")
    assert h.cancel(oid).one(Cancelled).cancelled_qty == 6


def test_cancel_pending_stop(h):
    h.trade_at(100)
    sid = h.buy(5, ord_type=OrdType.STOP, stop_price=110).order_id
    out = h.cancel(sid)
    assert out.one(Cancelled).order_id == sid
    assert not out.has(LevelChanged)
    assert h.live() == []
    assert not h.trade_at(110).has(Triggered)


@pytest.mark.parametrize("fields", [{"hidden": True}, {"aon": True}])
def test_cancel_undisplayed_order_changes_no_level(h, fields):
    h.rest(SELL, 5, 100, member="M2")
    oid = h.rest(BUY, 50, 99, **fields)
    out = h.cancel(oid)
    assert out.types() == ["Cancelled"]
    assert h.l2() == ([], [(100, 5, 1)])


def test_cancel_keeps_the_others_queue(h):
    a = h.rest(BUY, 10, 100, member="M2")
    b = h.rest(BUY, 10, 100)
    c = h.rest(BUY, 10, 100, member="M3")
    h.cancel(b)
    assert h.bid_ids() == [a, c]
    assert h.l2()[0] == [(100, 20, 2)]


def test_cancel_of_another_members_order_is_rejected(h):
    oid = h.rest(BUY, 10, 100, member="M2")
    before = h.state()
    out = h.cancel(oid, member="M1")
    rej = assert_rejected(h, out, Reject.NOT_OWNER, "cancel", oid)
    assert rej.member == "M1"
    assert h.state() == before


def test_cancel_by_someone_elses_cl_ord_id_finds_nothing(h):
    h.rest(BUY, 10, 100, member="M2", cl_ord_id="same")
    out = h.cancel(orig_cl_ord_id="same", member="M1")
    assert_rejected(h, out, Reject.UNKNOWN_ORDER, "cancel")
    assert len(h.live()) == 1


@pytest.mark.parametrize("how", ["unknown", "cancelled", "filled", "other-symbol", "bad-clid"])
def test_cancel_of_unknown_or_dead_order(h, how):
    h.add_instrument("OTHER")
    oid = h.rest(BUY, 10, 100, cl_ord_id="b1")
    kw = {}
    if how == "unknown":
        oid = 999
    elif how == "cancelled":
        h.cancel(oid)
    elif how == "filled":
        h.sell(10, 100, member="M2")
    elif how == "other-symbol":
        kw["symbol"] = "OTHER"
    else:
        oid, kw["orig_cl_ord_id"] = 0, "nope"
    before = h.state()
    out = h.cancel(oid, **kw)
    assert_rejected(h, out, Reject.UNKNOWN_ORDER, "cancel", oid)
    assert h.state() == before


def test_cancel_on_unknown_symbol(h):
    oid = h.rest(BUY, 10, 100)
    out = h.cancel(oid, symbol="NOPE")
    assert_rejected(h, out, Reject.UNKNOWN_SYMBOL, "cancel", oid)
    assert h.live() == [oid]


# ====================================================================== replace


def test_replace_qty_down_keeps_priority(h):
    a = h.rest(BUY, 10, 100, cl_ord_id="a1")
    b = h.rest(BUY, 10, 100, member="M2")
    out = h.replace(a, 6, cl_ord_id="a2")
    rep = out.one(Replaced)
    assert (rep.order_id, rep.cl_ord_id, rep.orig_cl_ord_id) == (a, "a2", "a1")
    assert (rep.qty, rep.leaves_qty, rep.price, rep.priority_kept) == (6, 6, 100, True)
    assert out.one(LevelChanged).qty == 16
    assert h.l3()[0] == [(100, 6, a, "M1"), (100, 10, b, "M2")]
    assert h.sell(6, 100, member="M3").fills() == [(a, 100, 6)]


def test_replace_with_same_qty_and_price_keeps_priority(h):
    a = h.rest(BUY, 10, 100)
    b = h.rest(BUY, 10, 100, member="M2")
    assert h.replace(a, 10).one(Replaced).priority_kept
    assert h.bid_ids() == [a, b]


def test_replace_qty_up_loses_priority(h):
    a = h.rest(BUY, 10, 100)
    b = h.rest(BUY, 10, 100, member="M2")
    rep = h.replace(a, 12).one(Replaced)
    assert (rep.qty, rep.leaves_qty, rep.priority_kept) == (12, 12, False)
    assert h.l3()[0] == [(100, 10, b, "M2"), (100, 12, a, "M1")]


@pytest.mark.parametrize("qty", [10, 5])
def test_replace_price_change_loses_priority(h, qty):
    a = h.rest(BUY, 10, 100)
    b = h.rest(BUY, 10, 100, member="M2")
    rep = h.replace(a, qty, 101).one(Replaced)
    assert (rep.price, rep.priority_kept) == (101, False)
    h.replace(a, qty, 100)
    assert h.l3()[0] == [(100, 10, b, "M2"), (100, qty, a, "M1")]


def test_replace_that_crosses_matches(h):
    a = h.rest(BUY, 10, 99)
    ask = h.rest(SELL, 4, 101, member="M2")
    out = h.replace(a, 10, 101)
    assert out.types()[0] == "Replaced"
    (t,) = out.trades
    assert (t.maker_order_id, t.taker_order_id, t.price, t.qty, t.aggressor) == (
        ask,
        a,
        101,
        4,
        "buy",
    )
    assert h.l3() == ([(101, 6, a, "M1")], [])


def test_replace_that_crosses_can_fill_completely(h):
    a = h.rest(SELL, 5, 102)
    bid = h.rest(BUY, 10, 100, member="M2")
    out = h.replace(a, 5, 100)
    assert out.fills() == [(bid, 100, 5)]
    assert a not in h.e.orders


def test_replace_after_partial_fill_counts_the_filled_part(h):
    a = h.rest(BUY, 10, 100)
    h.sell(4, 100, member="M2")
    rep = h.replace(a, 8).one(Replaced)
    assert (rep.qty, rep.leaves_qty, rep.priority_kept) == (8, 4, True)
    rep = h.replace(a, 15).one(Replaced)
    assert (rep.qty, rep.leaves_qty, rep.priority_kept) == (15, 11, False)
    o = h.e.orders[a]
    assert (o.qty, o.cum_qty, o.leaves) == (15, 4, 11)


@pytest.mark.parametrize("qty", [4, 3])
def test_replace_qty_not_above_filled_is_rejected(h, qty):
    a = h.rest(BUY, 10, 100)
    h.sell(4, 100, member="M2")
    before = h.state()
    out = h.replace(a, qty)
    assert_rejected(h, out, Reject.REPLACE_QTY_TOO_LOW, "replace", a)
    assert h.state() == before


def test_replaced_order_is_known_by_its_new_cl_ord_id(h):
    a = h.rest(BUY, 10, 100, cl_ord_id="v1")
    h.replace(a, 8, cl_ord_id="v2")
    out = h.cancel(orig_cl_ord_id="v1")
    assert_rejected(h, out, Reject.UNKNOWN_ORDER, "cancel")
    rep = h.replace(0, 7, orig_cl_ord_id="v2", cl_ord_id="v3").one(Replaced)
    assert (rep.order_id, rep.orig_cl_ord_id, rep.cl_ord_id) == (a, "v2", "v3")
    ev = h.cancel(orig_cl_ord_id="v3").one(Cancelled)
    assert (ev.order_id, ev.orig_cl_ord_id) == (a, "v3")


def test_replace_iceberg_qty_down_keeps_priority_and_slice(h):
    ice = h.rest(SELL, 30, 100, display_qty=10)
    other = h.rest(SELL, 10, 100, member="M2")
    rep = h.replace(ice, 20).one(Replaced)
    assert rep.priority_kept
    assert h.l3()[1] == [(100, 10, ice, "M1"), (100, 10, other, "M2")]
    assert h.leaves(ice) == 20
    assert h.buy(25, 100, member="M3").fills() == [(ice, 100, 10), (other, 100, 10), (ice, 100, 5)]


def test_replace_hidden_order(h):
    hid = h.rest(SELL, 10, 100, hidden=True)
    out = h.replace(hid, 4)
    assert out.one(Replaced).priority_kept
    assert h.l3() == ([], [])
    assert h.buy(10, 100, member="M2").fills() == [(hid, 100, 4)]


def test_replace_stop_changes_its_trigger(h):
    h.trade_at(100)
    ask = h.rest(SELL, 10, 110, member="M2")
    sid = h.buy(5, ord_type=OrdType.STOP, stop_price=105).order_id
    rep = h.replace(sid, 5, stop_price=103).one(Replaced)
    assert (rep.stop_price, rep.price) == (103, 0)
    st = h.status(sid).one(OrderStatus)
    assert (st.status, st.stop_price) == ("pending_trigger", 103)
    out = h.trade_at(103)
    assert out.one(Triggered).trigger_price == 103
    assert out.fills()[1:] == [(ask, 110, 5)]


def test_replace_pending_stop_qty_stays_pending(h):
    h.trade_at(100)
    sid = h.buy(5, ord_type=OrdType.STOP, stop_price=105).order_id
    rep = h.replace(sid, 3).one(Replaced)
    assert (rep.qty, rep.leaves_qty, rep.stop_price) == (3, 3, 105)
    st = h.status(sid).one(OrderStatus)
    assert (st.status, st.leaves_qty) == ("pending_trigger", 3)


def test_replace_stop_to_an_already_reached_trigger_fires_it(h):
    h.trade_at(100)
    ask = h.rest(SELL, 10, 101, member="M2")
    sid = h.buy(5, ord_type=OrdType.STOP, stop_price=105).order_id
    out = h.replace(sid, 5, stop_price=99)
    assert out.types()[:2] == ["Replaced", "Triggered"]
    assert out.fills() == [(ask, 101, 5)]


def test_replace_stop_limit_price_while_pending(h):
    h.trade_at(100)
    sid = h.buy(5, 103, ord_type=OrdType.STOP_LIMIT, stop_price=102).order_id
    rep = h.replace(sid, 6, 104).one(Replaced)
    assert (rep.qty, rep.price, rep.stop_price) == (6, 104, 102)
    assert h.trade_at(102).one(Triggered).price == 104
    assert h.l3()[0] == [(104, 6, sid, "M1")]


def test_replace_pegged_qty(h):
    h.rest(BUY, 10, 99, member="M2")
    h.rest(SELL, 10, 102, member="M3")
    peg = h.buy(5, ord_type=OrdType.PEGGED, peg=PegType.PRIMARY).order_id
    rep = h.replace(peg, 3).one(Replaced)
    assert (rep.price, rep.priority_kept) == (99, True)


@pytest.fixture
def book(h):
    """Resting orders of every kind the replace rejections refer to."""
    h.trade_at(100)
    ids = {
        "limit": h.rest(BUY, 10, 99),
        "other": h.rest(BUY, 10, 98, member="M2"),
        "ask": h.rest(SELL, 10, 101, member="M2"),
        "ice": h.rest(SELL, 30, 103, display_qty=10),
        "post": h.rest(BUY, 10, 96, post_only=PostOnly.REJECT),
        "stop": h.buy(5, ord_type=OrdType.STOP, stop_price=110).order_id,
        "trail": h.sell(5, ord_type=OrdType.TRAILING_STOP, trail_amount=5).order_id,
        "peg": h.buy(5, ord_type=OrdType.PEGGED, peg=PegType.PRIMARY).order_id,
    }
    h.ids = ids
    h.add_instrument("LOT", lot_size=100)
    h.add_instrument("BND", reference_price=100, band_bps=1000)
    h.add_instrument("PRE", phase=Phase.PRE_OPEN)
    ids["lot"] = h.rest(BUY, 200, 99, symbol="LOT")
    # A minimum-quantity order only rests untraded where it cannot match on entry: in a call.
    ids["minq"] = h.rest(BUY, 10, 97, min_qty=5, symbol="PRE", cl_ord_id="mq")
    ids["band"] = h.rest(BUY, 10, 100, symbol="BND")
    return h


BAD_REPLACES = [
    # (id, order, member, qty, price, fields, code)
    ("unknown", None, "M1", 10, 0, {}, Reject.UNKNOWN_ORDER),
    ("not-owner", "other", "M1", 5, 0, {}, Reject.NOT_OWNER),
    ("unknown-symbol", "limit", "M1", 5, 0, {"symbol": "NOPE"}, Reject.UNKNOWN_SYMBOL),
    ("wrong-symbol", "limit", "M1", 5, 0, {"symbol": "LOT"}, Reject.UNKNOWN_ORDER),
    ("trailing", "trail", "M1", 4, 0, {}, Reject.REPLACE_NOT_SUPPORTED),
    ("peg-price", "peg", "M1", 5, 100, {}, Reject.REPLACE_NOT_SUPPORTED),
    ("qty-zero", "limit", "M1", 0, 0, {}, Reject.INVALID_QUANTITY),
    ("qty-negative", "limit", "M1", -1, 0, {}, Reject.INVALID_QUANTITY),
    ("lot", "lot", "M1", 150, 0, {"symbol": "LOT"}, Reject.INVALID_LOT),
    ("display-ge-qty", "ice", "M1", 10, 0, {}, Reject.INVALID_DISPLAY_QTY),
    ("min-qty-above-qty", "minq", "M1", 4, 0, {"symbol": "PRE"}, Reject.INVALID_MIN_QTY),
    ("price-on-stop", "stop", "M1", 5, 100, {}, Reject.INVALID_ORDER_TYPE),
    ("stop-price-on-limit", "limit", "M1", 10, 0, {"stop_price": 95}, Reject.INVALID_ORDER_TYPE),
    ("negative-price", "limit", "M1", 10, -1, {}, Reject.INVALID_PRICE),
    ("negative-stop", "stop", "M1", 5, 0, {"stop_price": -1}, Reject.INVALID_STOP_PRICE),
    ("outside-band", "band", "M1", 10, 111, {"symbol": "BND"}, Reject.OUTSIDE_PRICE_BAND),
    ("post-only-crosses", "post", "M1", 10, 101, {}, Reject.POST_ONLY_WOULD_CROSS),
    ("duplicate-clid", "limit", "M1", 5, 0, {"cl_ord_id": "mq"}, Reject.DUPLICATE_CL_ORD_ID),
]


@pytest.mark.parametrize(
    ("order", "member", "qty", "price", "fields", "code"),
    [row[1:] for row in BAD_REPLACES],
    ids=[row[0] for row in BAD_REPLACES],
)
def test_bad_replace_is_rejected_without_state_change(
    book, order, member, qty, price, fields, code
):
    h = book
    oid = h.ids[order] if order else 999
    view, state = h.book_view(), h.state()
    out = h.replace(oid, qty, price, member=member, **fields)
    assert_rejected(h, out, code, "replace", oid)
    assert h.book_view() == view
    assert h.state() == state


def test_replace_with_the_orders_own_cl_ord_id_is_a_duplicate(h):
    a = h.rest(BUY, 10, 100, cl_ord_id="mine")
    out = h.replace(a, 5, cl_ord_id="mine")
    assert_rejected(h, out, Reject.DUPLICATE_CL_ORD_ID, "replace", a)


def test_replace_post_only_reprice_moves_behind_the_opposite_best(h):
    h.rest(SELL, 10, 101, member="M2")
    a = h.rest(BUY, 10, 98, post_only=PostOnly.REPRICE)
    out = h.replace(a, 10, 102)
    assert out.one(Replaced).price == 100
    assert not out.trades
    assert h.l3()[0] == [(100, 10, a, "M1")]


# ====================================================================== mass cancel


@pytest.fixture
def members(h):
    """M1 on ACME (two accounts, plus a stop) and on OTHER; M2 on ACME."""
    h.add_instrument("OTHER")
    h.trade_at(100)
    h.m = {
        "a1": h.rest(BUY, 10, 99, account="A1"),
        "a2": h.rest(SELL, 10, 101, account="A2"),
        "stop": h.buy(5, ord_type=OrdType.STOP, stop_price=110, account="A1").order_id,
        "other": h.rest(BUY, 10, 50, symbol="OTHER", account="A1"),
        "m2": h.rest(BUY, 10, 99, member="M2", account="A1"),
    }
    return h


@pytest.mark.parametrize(
    ("fields", "victims"),
    [
        ({}, ["a1", "a2", "stop", "other"]),
        ({"account": "A1"}, ["a1", "stop", "other"]),
        ({"account": "A2"}, ["a2"]),
        ({"symbol": "ACME"}, ["a1", "a2", "stop"]),
        ({"symbol": "OTHER"}, ["other"]),
        ({"symbol": "ACME", "account": "A1"}, ["a1", "stop"]),
    ],
)
def test_mass_cancel_scope(members, fields, victims):
    h = members
    out = h.mass_cancel("M1", cl_ord_id="mc", **fields)
    evs = out.of(Cancelled)
    assert [ev.order_id for ev in evs] == [h.m[v] for v in victims]
    assert {(ev.reason, ev.cl_ord_id, ev.member) for ev in evs} == {
        (CancelReason.MASS_CANCEL, "mc", "M1")
    }
    assert h.live() == sorted(oid for name, oid in h.m.items() if name not in victims)


@pytest.mark.parametrize(
    ("member", "fields"),
    [("M9", {}), ("M1", {"account": "A9"}), ("M2", {"symbol": "OTHER"}), ("M2", {"account": "A2"})],
)
def test_mass_cancel_with_nothing_to_cancel(members, member, fields):
    h = members
    before = h.state()
    out = h.mass_cancel(member, **fields)
    assert_rejected(h, out, Reject.NOTHING_TO_CANCEL, "mass_cancel")
    assert h.state() == before


def test_mass_cancel_unknown_symbol(members):
    out = members.mass_cancel("M1", symbol="NOPE")
    assert_rejected(members, out, Reject.UNKNOWN_SYMBOL, "mass_cancel")


# ====================================================================== order status


def test_order_status_values(h):
    h.trade_at(100)
    new = h.rest(BUY, 10, 98, cl_ord_id="n1")
    part = h.rest(SELL, 10, 101)
    h.buy(3, 101, member="M2")
    stop = h.buy(5, ord_type=OrdType.STOP, stop_price=110).order_id
    held = h.rest(SELL, 7, 105, tif=TimeInForce.CLS)
    assert h.l3()[1] == [(101, 7, part, "M1")]  # the on-close order is not in the book

    st = h.status(new).one(OrderStatus)
    assert (st.order_id, st.cl_ord_id, st.side, st.ord_type) == (new, "n1", BUY, OrdType.LIMIT)
    assert (st.qty, st.cum_qty, st.leaves_qty, st.price, st.status) == (10, 0, 10, 98, "new")
    st = h.status(part).one(OrderStatus)
    assert (st.qty, st.cum_qty, st.leaves_qty, st.status) == (10, 3, 7, "partially_filled")
    st = h.status(stop).one(OrderStatus)
    assert (st.stop_price, st.status) == (110, "pending_trigger")
    assert h.status(held).one(OrderStatus).status == "pending_auction"
    assert h.status(orig_cl_ord_id="n1").one(OrderStatus).order_id == new


def test_order_status_rejections(h):
    oid = h.rest(BUY, 10, 100, member="M2")
    assert_rejected(h, h.status(oid, member="M1"), Reject.NOT_OWNER, "order_status", oid)
    assert_rejected(h, h.status(999), Reject.UNKNOWN_ORDER, "order_status", 999)
    assert_rejected(h, h.status(oid, symbol="NOPE"), Reject.UNKNOWN_SYMBOL, "order_status", oid)
    h.sell(10, 100, member="M3")
    assert_rejected(
        h, h.status(oid, member="M2"), Reject.UNKNOWN_ORDER, "order_status", oid
    )  # filled orders are no longer live


# ====================================================================== duplicate client order ids


@pytest.mark.parametrize("fate", ["live", "cancelled", "filled", "ioc-cancelled"])
def test_duplicate_cl_ord_id_is_rejected_after_the_order_is_done(h, fate):
    if fate == "ioc-cancelled":
        h.buy(10, 100, cl_ord_id="dup", tif=TimeInForce.IOC)
    else:
        oid = h.rest(BUY, 10, 100, cl_ord_id="dup")
        if fate == "cancelled":
            h.cancel(oid)
        elif fate == "filled":
            h.sell(10, 100, member="M2")
    before = h.state()
    out = h.sell(5, 200, cl_ord_id="dup")
    assert_rejected(h, out, Reject.DUPLICATE_CL_ORD_ID, "new_order")
    assert h.state() == before


def test_cl_ord_ids_are_per_member(h):
    h.rest(BUY, 10, 100, cl_ord_id="same")
    out = h.buy(10, 100, cl_ord_id="same", member="M2")
    assert out.one(Accepted).cl_ord_id == "same"


def test_replace_uses_up_both_cl_ord_ids(h):
    a = h.rest(BUY, 10, 100, cl_ord_id="old")
    h.replace(a, 5, cl_ord_id="new")
    for clid in ("old", "new"):
        out = h.buy(1, 90, cl_ord_id=clid)
        assert out.reject_code() == Reject.DUPLICATE_CL_ORD_ID
    b = h.rest(BUY, 10, 90, cl_ord_id="b")
    assert h.replace(b, 5, cl_ord_id="old").reject_code() == Reject.DUPLICATE_CL_ORD_ID


def test_cancel_request_ids_are_not_order_ids(h):
    a = h.rest(BUY, 10, 100, cl_ord_id="a")
    h.cancel(a, cl_ord_id="x")
    assert h.buy(1, 90, cl_ord_id="x").has(Accepted)


# ====================================================================== self-trade prevention


def no_trade_between(out, x: int, y: int) -> bool:
    return not any({t.maker_order_id, t.taker_order_id} == {x, y} for t in out.of(Trade))


def stp_case(h, stp, scope, maker_account="A1", taker_account="A1", maker_qty=10, taker_qty=10):
    maker = h.rest(SELL, maker_qty, 100, account=maker_account)
    out = h.buy(taker_qty, 100, account=taker_account, stp=stp, stp_scope=scope)
    assert no_trade_between(out, maker, out.order_id)
    return maker, out


SCOPES_THAT_HIT = [
    (STPScope.MEMBER, "A1", "A1"),
    (STPScope.MEMBER, "A1", "A2"),
    (STPScope.ACCOUNT, "A1", "A1"),
]


@pytest.mark.parametrize(("scope", "ma", "ta"), SCOPES_THAT_HIT)
def test_stp_cancel_newest(h, scope, ma, ta):
    maker, out = stp_case(h, STPMode.CANCEL_NEWEST, scope, ma, ta)
    ev = out.one(Cancelled)
    assert (ev.order_id, ev.cancelled_qty, ev.leaves_qty, ev.reason) == (
        out.order_id,
        10,
        0,
        CancelReason.STP,
    )
    assert not out.trades
    assert h.live() == [maker]
    assert h.leaves(maker) == 10


@pytest.mark.parametrize(("scope", "ma", "ta"), SCOPES_THAT_HIT)
def test_stp_cancel_oldest_continues_with_the_next_maker(h, scope, ma, ta):
    maker = h.rest(SELL, 10, 100, account=ma)
    other = h.rest(SELL, 10, 100, member="M2")
    out = h.buy(15, 100, account=ta, stp=STPMode.CANCEL_OLDEST, stp_scope=scope)
    ev = out.one(Cancelled)
    assert (ev.order_id, ev.cancelled_qty, ev.reason) == (maker, 10, CancelReason.STP)
    assert out.fills() == [(other, 100, 10)]
    assert h.l3() == ([(100, 5, out.order_id, "M1")], [])


@pytest.mark.parametrize(("scope", "ma", "ta"), SCOPES_THAT_HIT)
def test_stp_cancel_both(h, scope, ma, ta):
    maker, out = stp_case(h, STPMode.CANCEL_BOTH, scope, ma, ta)
    assert [ev.order_id for ev in out.of(Cancelled)] == [maker, out.order_id]
    assert {ev.reason for ev in out.of(Cancelled)} == {CancelReason.STP}
    assert not out.trades
    assert h.live() == []
    assert h.l3() == ([], [])


@pytest.mark.parametrize(("scope", "ma", "ta"), SCOPES_THAT_HIT)
def test_stp_decrement_smaller_taker(h, scope, ma, ta):
    maker, out = stp_case(h, STPMode.DECREMENT, scope, ma, ta, maker_qty=10, taker_qty=4)
    got = [(ev.order_id, ev.cancelled_qty, ev.leaves_qty, ev.reason) for ev in out.of(Cancelled)]
    assert got == [(maker, 4, 6, CancelReason.STP), (out.order_id, 4, 0, CancelReason.STP)]
    assert not out.trades
    assert h.live() == [maker]
    assert h.l3()[1] == [(100, 6, maker, "M1")]
    assert out.one(LevelChanged).qty == 6


@pytest.mark.parametrize(("scope", "ma", "ta"), SCOPES_THAT_HIT)
def test_stp_decrement_larger_taker_rests_the_rest(h, scope, ma, ta):
    maker, out = stp_case(h, STPMode.DECREMENT, scope, ma, ta, maker_qty=10, taker_qty=15)
    got = [(ev.order_id, ev.cancelled_qty, ev.leaves_qty) for ev in out.of(Cancelled)]
    assert got == [(maker, 10, 0), (out.order_id, 10, 5)]
    assert not out.trades
    assert h.l3() == ([(100, 5, out.order_id, "M1")], [])


def test_stp_decrement_equal_sizes_cancels_both(h):
    maker, out = stp_case(h, STPMode.DECREMENT, STPScope.MEMBER)
    got = [(ev.order_id, ev.cancelled_qty, ev.leaves_qty) for ev in out.of(Cancelled)]
    assert got == [(maker, 10, 0), (out.order_id, 10, 0)]
    assert h.live() == []


@pytest.mark.parametrize(
    "stp", [STPMode.CANCEL_NEWEST, STPMode.CANCEL_OLDEST, STPMode.CANCEL_BOTH, STPMode.DECREMENT]
)
def test_stp_account_scope_lets_other_accounts_trade(h, stp):
    maker = h.rest(SELL, 10, 100, account="A1")
    out = h.buy(10, 100, account="A2", stp=stp, stp_scope=STPScope.ACCOUNT)
    assert out.fills() == [(maker, 100, 10)]
    assert not out.has(Cancelled)


@pytest.mark.parametrize(
    "stp", [STPMode.CANCEL_NEWEST, STPMode.CANCEL_OLDEST, STPMode.CANCEL_BOTH, STPMode.DECREMENT]
)
def test_stp_ignores_other_members(h, stp):
    maker = h.rest(SELL, 10, 100, member="M2", account="A1")
    out = h.buy(10, 100, account="A1", stp=stp)
    assert out.fills() == [(maker, 100, 10)]


def test_without_stp_a_member_may_trade_with_itself(h):
    maker = h.rest(SELL, 10, 100)
    out = h.buy(10, 100)
    assert out.fills() == [(maker, 100, 10)]
    assert (out.trades[0].maker_member, out.trades[0].taker_member) == ("M1", "M1")


def test_stp_cancel_newest_after_trading_with_others(h):
    other = h.rest(SELL, 5, 99, member="M2")
    own = h.rest(SELL, 10, 100)
    out = h.buy(20, 100, stp=STPMode.CANCEL_NEWEST)
    assert out.fills() == [(other, 99, 5)]
    ev = out.one(Cancelled)
    assert (ev.order_id, ev.cancelled_qty) == (out.order_id, 15)
    assert h.live() == [own]


def test_stp_cancel_oldest_several_own_orders(h):
    own1 = h.rest(SELL, 5, 100)
    other = h.rest(SELL, 5, 100, member="M2")
    own2 = h.rest(SELL, 5, 101)
    far = h.rest(SELL, 5, 102, member="M3")
    out = h.buy(10, 102, stp=STPMode.CANCEL_OLDEST)
    assert [ev.order_id for ev in out.of(Cancelled)] == [own1, own2]
    assert out.fills() == [(other, 100, 5), (far, 102, 5)]
    assert h.live() == []


def test_stp_sees_hidden_own_orders(h):
    hid = h.rest(SELL, 10, 100, hidden=True)
    out = h.buy(10, 100, stp=STPMode.CANCEL_OLDEST)
    assert out.one(Cancelled).order_id == hid
    assert not out.trades
    assert h.l3() == ([(100, 10, out.order_id, "M1")], [])


def test_stp_decrement_iceberg_maker_keeps_its_slice(h):
    ice = h.rest(SELL, 30, 100, display_qty=10)
    out = h.buy(5, 100, stp=STPMode.DECREMENT)
    assert [(ev.order_id, ev.leaves_qty) for ev in out.of(Cancelled)] == [
        (ice, 25),
        (out.order_id, 0),
    ]
    assert h.l3()[1] == [(100, 10, ice, "M1")]
    assert h.leaves(ice) == 25


def test_stp_on_sell_side(h):
    bid = h.rest(BUY, 10, 100)
    other = h.rest(BUY, 10, 99, member="M2")
    out = h.sell(20, 99, stp=STPMode.CANCEL_OLDEST)
    assert out.one(Cancelled).order_id == bid
    assert out.fills() == [(other, 99, 10)]


def test_stp_fok_cancel_oldest_counts_the_liquidity_behind(h):
    own = h.rest(SELL, 10, 100)
    other = h.rest(SELL, 10, 100, member="M2")
    out = h.buy(10, 100, tif=TimeInForce.FOK, stp=STPMode.CANCEL_OLDEST)
    assert out.one(Cancelled).order_id == own
    assert out.fills() == [(other, 100, 10)]


def test_stp_applies_to_a_crossing_replace(h):
    own = h.rest(SELL, 10, 101)
    bid = h.rest(BUY, 10, 99, stp=STPMode.CANCEL_NEWEST)
    out = h.replace(bid, 10, 101)
    assert not out.trades
    ev = out.one(Cancelled)
    assert (ev.order_id, ev.reason) == (bid, CancelReason.STP)
    assert h.live() == [own]


def test_a_post_only_replace_is_band_checked_after_its_reprice_like_a_new_order() -> None:
    """After the band moved, a stale ask sits below it; a post-only buy replaced to cross that
    ask slides to one tick behind it, outside the band: rejected, as a new order would be."""
    from tradingfloor.exchange.engine.commands import (
        AddInstrument,
        NewOrder,
        ReplaceOrder,
        SetReferencePrice,
    )
    from tradingfloor.exchange.engine.engine import Engine
    from tradingfloor.exchange.engine.events import Accepted, Rejected
    from tradingfloor.exchange.engine.types import PostOnly

    engine = Engine()
    n = 0

    def apply(cmd: Any) -> list[Any]:
        nonlocal n
        n += 1
        return engine.apply(n * 100, n, cmd)

    apply(AddInstrument(symbol="BND", reference_price=10_000, band_bps=100))  # 99.00-101.00
    apply(NewOrder(symbol="BND", member="X", cl_ord_id="a", side=SELL, qty=10, price=9_950))
    buy = apply(
        NewOrder(
            symbol="BND",
            member="Y",
            cl_ord_id="b",
            side=BUY,
            qty=10,
            price=9_940,
            post_only=PostOnly.REPRICE,
        )
    )
    order_id = next(e.order_id for e in buy if isinstance(e, Accepted))
    apply(SetReferencePrice(symbol="BND", price=10_060))  # band now about 99.60-101.60
    replaced = apply(
        ReplaceOrder(
            symbol="BND", member="Y", cl_ord_id="c", orig_cl_ord_id="b", qty=10, price=9_965
        )
    )
    assert [(e.code, e.order_id) for e in replaced if isinstance(e, Rejected)] == [
        (Reject.OUTSIDE_PRICE_BAND, order_id)
    ]
    resting = engine.orders[order_id]
    assert (resting.price, resting.cl_ord_id) == (9_940, "b")  # unchanged
    new = apply(
        NewOrder(
            symbol="BND",
            member="Y",
            cl_ord_id="d",
            side=BUY,
            qty=10,
            price=9_965,
            post_only=PostOnly.REPRICE,
        )
    )
    assert [e.code for e in new if isinstance(e, Rejected)] == [Reject.OUTSIDE_PRICE_BAND]
