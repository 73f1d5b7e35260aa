"""Edges of continuous matching that mutation testing of matching.py found untested
(docs/testing.md): the market collar's arithmetic, bounds of the price band, all-or-none makers
skipped while counting and matching, the executable quantity of a sell, self-trade prevention
stopping the incoming order, the whole effect of STP ``decrement``, and cumulative quantities."""

from __future__ import annotations

from tradingfloor.exchange.engine.commands import SetPriceBand
from tradingfloor.exchange.engine.events import (
    Cancelled,
    LevelChanged,
    OrderStatus,
    PhaseChanged,
)
from tradingfloor.exchange.engine.types import (
    BandAction,
    CancelReason,
    OrdType,
    Phase,
    Side,
    STPMode,
    TimeInForce,
)

BUY, SELL = Side.BUY, Side.SELL
FOK, IOC = TimeInForce.FOK, TimeInForce.IOC
SYMBOL = "ACME"  # the harness's instrument (conftest.py)


def cancels(out) -> list[tuple[int, int, int, CancelReason]]:  # type: ignore[no-untyped-def]
    """(order id, cancelled qty, leaves, reason) of every cancel, in order."""
    return [(c.order_id, c.cancelled_qty, c.leaves_qty, c.reason) for c in out.of(Cancelled)]


def banded(make_harness, action: BandAction = BandAction.REJECT):  # type: ignore[no-untyped-def]
    """A harness whose band is [9900, 10100] (reference 10000, 100 bps), set after the book is
    built so that orders outside it can rest; returns (harness, a function setting the band)."""
    h = make_harness(reference_price=10_000)

    def set_band() -> None:
        h.apply(SetPriceBand(symbol=SYMBOL, band_bps=100, band_action=action))

    return h, set_band


# ------------------------------------------------------------------ market collar


def test_the_market_collar_is_integer_basis_points_of_the_best_price(make_harness) -> None:
    h = make_harness(collar_bps=500)
    a1 = h.rest(SELL, 1, 10_000, member="M2")
    a2 = h.rest(SELL, 1, 10_500, member="M2")  # 10000 * 500 / 10000 = 500 exactly: inside
    h.rest(SELL, 1, 10_501, member="M2")
    out = h.buy(3, ord_type=OrdType.MARKET)
    assert out.fills() == [(a1, 10_000, 1), (a2, 10_500, 1)]
    assert cancels(out) == [(out.order_id, 1, 0, CancelReason.MARKET_REMAINDER)]


def test_a_market_sell_reaches_a_bid_of_one_tick(h) -> None:
    bid = h.rest(BUY, 2, 1, member="M2")  # the collar rounds to 0 ticks; the floor is 1 tick
    out = h.sell(2, ord_type=OrdType.MARKET)
    assert out.fills() == [(bid, 1, 2)]


# ------------------------------------------------------------------ min_qty after a replace


def test_min_qty_is_not_checked_again_when_a_replace_re_enters_matching(h) -> None:
    h.rest(SELL, 5, 100, member="M2")
    out = h.buy(10, 100, min_qty=5)
    assert [q for _, _, q in out.fills()] == [5]
    bid = out.order_id
    ask = h.rest(SELL, 2, 101, member="M2")  # less than min_qty
    out = h.replace(bid, 10, 101)
    assert out.fills() == [(ask, 101, 2)]
    assert not out.has(Cancelled)
    assert h.leaves(bid) == 3


# ------------------------------------------------------------------ price bands


def test_a_reject_band_cancels_the_remainder_that_meets_a_price_outside_it(make_harness) -> None:
    h, set_band = banded(make_harness)
    h.rest(BUY, 10, 10_150, member="M2")  # placed before the band exists, above it now
    set_band()
    out = h.sell(5, 10_000)
    assert not out.trades
    assert cancels(out) == [(out.order_id, 5, 0, CancelReason.PRICE_BAND)]
    assert h.l2() == ([(10_150, 10, 1)], [])  # the sell did not rest: the book is not crossed


def test_band_edges_are_inside_the_band(make_harness) -> None:
    h, set_band = banded(make_harness)
    set_band()
    bid = h.rest(BUY, 5, 9_900, member="M2")
    ask = h.rest(SELL, 5, 10_100, member="M2")
    out = h.sell(5, 9_900)
    assert out.fills() == [(bid, 9_900, 5)]
    out = h.buy(5, 10_100)
    assert out.fills() == [(ask, 10_100, 5)]
    assert not out.has(Cancelled)


def test_a_filled_order_does_not_pause_at_a_price_outside_the_band_beyond_it(
    make_harness,
) -> None:
    h, set_band = banded(make_harness, BandAction.PAUSE)
    a1 = h.rest(SELL, 10, 10_050, member="M2")
    h.rest(SELL, 10, 10_200, member="M2")  # outside the band: the next level after a1's
    set_band()
    out = h.buy(10, 10_200)
    assert out.fills() == [(a1, 10_050, 10)]
    assert not out.has(PhaseChanged)
    assert h.e.phase(SYMBOL) == Phase.CONTINUOUS


def test_an_fok_that_meets_a_price_below_a_pause_band_is_cancelled_without_trading(
    make_harness,
) -> None:
    # The FOK check caps a buy only at the band's upper edge, so the ask left below the band
    # counts; matching then stops at it, pauses, and the FOK is cancelled as unfilled.
    h, set_band = banded(make_harness, BandAction.PAUSE)
    h.rest(SELL, 5, 9_800, member="M2")
    set_band()
    out = h.buy(5, 10_000, tif=FOK)
    assert not out.trades
    assert [(ev.phase, ev.reason) for ev in out.of(PhaseChanged)] == [(Phase.HALTED, "price band")]
    assert cancels(out) == [(out.order_id, 5, 0, CancelReason.FOK)]


# ------------------------------------------------------------------ all-or-none makers


def test_an_all_or_none_maker_trades_with_an_order_of_exactly_its_size(h) -> None:
    a1 = h.rest(SELL, 10, 100, member="M2", aon=True)
    out = h.buy(10, 100, tif=FOK)  # counted by the FOK check
    assert out.fills() == [(a1, 100, 10)]
    a2 = h.rest(SELL, 10, 100, member="M2", aon=True)
    out = h.buy(10, 100)  # met by matching
    assert out.fills() == [(a2, 100, 10)]


def test_a_skipped_all_or_none_maker_does_not_hide_the_orders_behind_it(h) -> None:
    h.rest(SELL, 20, 100, member="M2", aon=True)  # rests undisplayed: the hidden queue
    hid = h.rest(SELL, 10, 100, member="M3", hidden=True)  # behind it in that queue
    out = h.buy(10, 100, tif=FOK)
    assert out.fills() == [(hid, 100, 10)]
    hid = h.rest(SELL, 10, 100, member="M3", hidden=True)
    out = h.buy(10, 100)
    assert out.fills() == [(hid, 100, 10)]


def test_an_all_or_none_maker_larger_than_what_is_left_is_not_counted(h) -> None:
    h.rest(SELL, 5, 100, member="M2")
    h.rest(SELL, 8, 100, member="M3", aon=True)  # 8 > the 5 still needed after the first
    out = h.buy(10, 100, tif=FOK)
    assert not out.trades
    assert cancels(out) == [(out.order_id, 10, 0, CancelReason.FOK)]


def test_matching_walks_past_levels_holding_only_all_or_none_makers(h) -> None:
    # Two such levels in a row on the ask side, one on the bid side; the sell checks that the
    # bids are walked best first (the second-best bid, not the worst, comes next).
    h.rest(SELL, 50, 100, member="M2", aon=True)
    h.rest(SELL, 50, 101, member="M2", aon=True)
    a = h.rest(SELL, 5, 102, member="M3")
    h.rest(SELL, 5, 103, member="M3")
    out = h.buy(5, 103)
    assert out.fills() == [(a, 102, 5)]
    h.rest(BUY, 50, 99, member="M2", aon=True)
    b = h.rest(BUY, 5, 98, member="M3")
    h.rest(BUY, 5, 97, member="M3")
    h.rest(BUY, 5, 96, member="M3")
    out = h.sell(5, 96)
    assert out.fills() == [(b, 98, 5)]


# ------------------------------------------------------------------ executable quantity of a sell


def test_a_sell_fok_counts_bids_above_and_at_its_limit(h) -> None:
    b1 = h.rest(BUY, 3, 101, member="M2")
    b2 = h.rest(BUY, 2, 100, member="M2")
    h.rest(BUY, 9, 99, member="M2")
    out = h.sell(5, 100, tif=FOK)
    assert out.fills() == [(b1, 101, 3), (b2, 100, 2)]


# ------------------------------------------------------------------ self-trade prevention


def test_without_stp_an_fok_counts_and_trades_with_its_own_orders(h) -> None:
    own = h.rest(SELL, 5, 100)
    out = h.buy(5, 100, tif=FOK)  # stp none (the default), same member
    assert out.fills() == [(own, 100, 5)]


def test_cancel_newest_stops_an_fok_count_at_its_own_order(h) -> None:
    own = h.rest(SELL, 5, 100)
    h.rest(SELL, 10, 100, member="M2")  # enough behind it, but the own order comes first
    out = h.buy(10, 100, tif=FOK, stp=STPMode.CANCEL_NEWEST)
    assert not out.trades
    assert cancels(out) == [(out.order_id, 10, 0, CancelReason.FOK)]
    assert own in h.e.orders


def test_stp_that_cancels_the_incoming_order_ends_its_matching(h) -> None:
    for stp in (STPMode.CANCEL_NEWEST, STPMode.CANCEL_BOTH, STPMode.DECREMENT):
        h.mass_cancel("M1")
        h.mass_cancel("M2")
        own = h.rest(SELL, 10, 100)
        other = h.rest(SELL, 10, 101, member="M2")  # the next level, within the limit
        out = h.buy(5, 101, stp=stp)  # decrement: 5 < 10, the incoming order is used up
        assert not out.trades, stp
        assert (out.order_id, 5, 0, CancelReason.STP) in cancels(out), stp
        assert out.order_id not in h.e.orders, stp
        assert h.leaves(other) == 10, stp
        assert (own in h.e.orders) == (stp != STPMode.CANCEL_BOTH), stp


def test_decrement_shrinks_the_resting_order_and_says_so_in_full(h) -> None:
    own = h.rest(BUY, 10, 100, cl_ord_id="own")
    out = h.sell(4, 100, stp=STPMode.DECREMENT, cl_ord_id="in")
    first, second = out.of(Cancelled)
    assert (
        first.symbol,
        first.order_id,
        first.member,
        first.cl_ord_id,
        first.orig_cl_ord_id,
        first.cancelled_qty,
        first.leaves_qty,
        first.reason,
    ) == (SYMBOL, own, "M1", "own", "own", 4, 6, CancelReason.STP)
    assert (second.order_id, second.cl_ord_id, second.cancelled_qty, second.leaves_qty) == (
        out.order_id,
        "in",
        4,
        0,
    )
    levels = out.of(LevelChanged)
    assert [(lv.side, lv.price, lv.qty, lv.orders) for lv in levels] == [(BUY, 100, 6, 1)]
    status = h.status(own).one(OrderStatus)
    assert (status.qty, status.cum_qty, status.leaves_qty) == (6, 0, 6)


def test_decrement_against_a_hidden_order_changes_no_displayed_level(h) -> None:
    own = h.rest(BUY, 10, 100, hidden=True)
    out = h.sell(4, 100, stp=STPMode.DECREMENT)
    assert cancels(out) == [
        (own, 4, 6, CancelReason.STP),
        (out.order_id, 4, 0, CancelReason.STP),
    ]
    assert not out.has(LevelChanged)


def test_after_decrement_the_incoming_order_goes_on_matching(h) -> None:
    own = h.rest(SELL, 4, 100)
    other = h.rest(SELL, 10, 100, member="M2")
    out = h.buy(10, 100, stp=STPMode.DECREMENT)
    assert cancels(out) == [
        (own, 4, 0, CancelReason.STP),
        (out.order_id, 4, 6, CancelReason.STP),
    ]
    assert out.fills() == [(other, 100, 6)]
    assert out.order_id not in h.e.orders
    assert h.l2() == ([], [(100, 4, 1)])


# ------------------------------------------------------------------ cumulative quantities


def test_cumulative_quantity_adds_up_over_several_fills(h) -> None:
    h.rest(SELL, 3, 100, member="M2")
    h.rest(SELL, 3, 101, member="M2")
    taker = h.buy(10, 101).order_id  # two fills as the taker, then rests
    status = h.status(taker).one(OrderStatus)
    assert (status.cum_qty, status.leaves_qty, status.status) == (6, 4, "partially_filled")
    h.sell(1, 101, member="M3")
    h.sell(2, 101, member="M3")  # two more, as the maker
    status = h.status(taker).one(OrderStatus)
    assert (status.cum_qty, status.leaves_qty) == (9, 1)
