"""Edges of stops, trailing stops and pegs that mutation testing of triggers.py found untested
(docs/testing.md): the whole ``triggered`` and ``repriced`` events, the floor of a sell trailing
stop limit's price, several trailing stops following one print, a fired trailing stop leaving the
engine, and the rounding of a sell midpoint peg on an even spread."""

from __future__ import annotations

from tradingfloor.exchange.engine.events import OrderStatus, Repriced, Triggered
from tradingfloor.exchange.engine.types import BandAction, OrdType, PegType, Phase, Side

BUY, SELL = Side.BUY, Side.SELL
SYMBOL = "ACME"  # the harness's instrument (conftest.py)


def test_a_triggered_event_names_the_order_fully(h) -> None:
    h.trade_at(100)
    h.rest(SELL, 10, 103, member="M2")
    sid = h.buy(5, 104, ord_type=OrdType.STOP_LIMIT, stop_price=102, cl_ord_id="stop-1").order_id
    trig = h.trade_at(102).one(Triggered)
    assert (trig.symbol, trig.order_id, trig.member, trig.cl_ord_id) == (
        SYMBOL,
        sid,
        "M1",
        "stop-1",
    )
    assert (trig.trigger_price, trig.price, trig.ts) == (102, 104, h.ts)


def test_a_sell_trailing_stop_limit_price_is_at_least_one_tick(h) -> None:
    h.trade_at(3)
    out = h.sell(5, ord_type=OrdType.TRAILING_STOP_LIMIT, trail_amount=1, limit_offset=5)
    trig = h.trade_at(2).one(Triggered)
    assert (trig.order_id, trig.trigger_price, trig.price) == (out.order_id, 2, 1)


def test_trailing_stops_follow_one_print_together_and_a_fired_one_leaves(h) -> None:
    h.trade_at(100)
    a = h.sell(5, ord_type=OrdType.TRAILING_STOP, trail_amount=5, member="M3").order_id
    b = h.sell(5, ord_type=OrdType.TRAILING_STOP, trail_amount=2, member="M4").order_id
    h.trade_at(110)  # both references move up to 110
    assert (h.e.orders[a].stop_price, h.e.orders[b].stop_price) == (105, 108)
    bid = h.rest(BUY, 20, 107, member="M2")  # b's sale at 107 does not reach a's 105
    out = h.trade_at(108)  # fires b only
    assert [ev.order_id for ev in out.of(Triggered)] == [b]
    assert b not in h.e.orders
    h.trade_at(120)  # later prints move the one left, and nothing else
    assert h.e.orders[a].stop_price == 115
    out = h.trade_at(115)
    assert [ev.order_id for ev in out.of(Triggered)] == [a]
    assert h.live() == [bid]


def test_a_sell_midpoint_peg_on_an_even_spread_and_its_repriced_event(h) -> None:
    h.rest(BUY, 10, 99, member="M2")
    ask = h.rest(SELL, 10, 101, member="M3")
    out = h.sell(5, ord_type=OrdType.PEGGED, peg=PegType.MIDPOINT, cl_ord_id="peg-1")
    peg = out.order_id
    assert h.e.orders[peg].price == 100  # the midpoint exactly, an integer
    assert type(h.e.orders[peg].price) is int
    h.cancel(ask, member="M3")
    out = h.sell(10, 105, member="M3")  # ask 105: mid of 99 and 105 is 102
    rep = out.one(Repriced)
    assert (rep.symbol, rep.order_id, rep.member, rep.cl_ord_id, rep.price) == (
        SYMBOL,
        peg,
        "M1",
        "peg-1",
        102,
    )


def test_stops_fired_together_wait_again_when_the_first_one_pauses_trading(make_harness) -> None:
    # docs/testing.md, triggers.py's open gap: a halt in the middle of a stop cascade. The band
    # is [9900, 10100] in pause mode; the first stop's buy reaches the ask outside it.
    h = make_harness(reference_price=10_000, band_bps=100, band_action=BandAction.PAUSE)
    h.trade_at(10_000)
    a1 = h.rest(SELL, 10, 10_050, member="M2")
    h.rest(SELL, 10, 10_200, member="M2")
    s1 = h.buy(20, 10_200, ord_type=OrdType.STOP_LIMIT, stop_price=10_010).order_id
    s2 = h.buy(5, 10_100, ord_type=OrdType.STOP_LIMIT, stop_price=10_010).order_id
    out = h.trade_at(10_010)  # fires both; s1 enters first (lower order id)
    assert [ev.order_id for ev in out.of(Triggered)] == [s1]
    assert (a1, 10_050, 10) in out.fills()
    assert h.e.phase(SYMBOL) == Phase.HALTED
    status = h.status(s2).one(OrderStatus)
    assert (status.status, status.leaves_qty) == ("pending_trigger", 5)


def test_a_stop_cascade_goes_on_while_pegs_stay_put(h) -> None:
    # _settle repeats while anything fired: a round where stops fired and pegs did not move must
    # be followed by another (the second stop is reached by the first one's trade).
    h.trade_at(100)
    h.rest(BUY, 10, 95, member="M2")
    peg = h.buy(5, ord_type=OrdType.PEGGED, peg=PegType.PRIMARY, member="M3").order_id
    h.rest(SELL, 1, 103, member="M4")
    h.rest(SELL, 5, 104, member="M4")
    s1 = h.buy(1, ord_type=OrdType.STOP, stop_price=101).order_id
    s2 = h.buy(1, ord_type=OrdType.STOP, stop_price=103).order_id
    out = h.trade_at(101)
    assert [ev.order_id for ev in out.of(Triggered)] == [s1, s2]
    assert [(t.taker_order_id, t.price) for t in out.trades[1:]] == [(s1, 103), (s2, 104)]
    assert h.e.orders[peg].price == 95


def test_settling_skips_an_instrument_in_a_call_phase_and_goes_on_to_the_next(
    make_harness,
) -> None:
    # A mass cancel touches both instruments, the one in pre_open first (lower order id); the
    # continuous one's peg must still follow the bid the cancel removed.
    h = make_harness(phase=Phase.PRE_OPEN)
    h.add_instrument("OTHER")
    h.rest(BUY, 10, 50)  # ACME, in pre_open
    h.rest(SELL, 10, 110, member="M2", symbol="OTHER")
    h.rest(BUY, 10, 100, member="M2", symbol="OTHER")
    h.rest(BUY, 10, 101, symbol="OTHER")
    peg = h.buy(
        5, ord_type=OrdType.PEGGED, peg=PegType.PRIMARY, member="M3", symbol="OTHER"
    ).order_id
    assert h.e.orders[peg].price == 101
    out = h.mass_cancel("M1")
    assert [(ev.order_id, ev.price) for ev in out.of(Repriced)] == [(peg, 100)]


def test_a_peg_that_stays_does_not_stop_the_next_peg_from_moving(h) -> None:
    h.rest(BUY, 10, 95, member="M2")
    h.rest(SELL, 10, 110, member="M2")
    p1 = h.buy(5, ord_type=OrdType.PEGGED, peg=PegType.PRIMARY, member="M3").order_id
    p2 = h.sell(5, ord_type=OrdType.PEGGED, peg=PegType.PRIMARY, member="M3").order_id
    out = h.sell(10, 108, member="M2")  # the ask moves, the bid does not
    assert [(ev.order_id, ev.price) for ev in out.of(Repriced)] == [(p2, 108)]
    assert h.e.orders[p1].price == 95


def test_a_repriced_peg_that_trades_fires_the_stops_its_trade_reaches(h) -> None:
    # The peg's new price meets a hidden ask (pegs follow displayed prices only); that trade is
    # a new last price, and the stop it reaches fires in the same command.
    h.trade_at(96)
    h.rest(BUY, 10, 95, member="M2")
    a2 = h.rest(SELL, 10, 110, member="M2")
    peg = h.buy(5, ord_type=OrdType.PEGGED, peg=PegType.PRIMARY, peg_offset=5, member="M3")
    assert h.e.orders[peg.order_id].price == 100
    hid = h.rest(SELL, 5, 103, member="M4", hidden=True)
    stop = h.buy(1, ord_type=OrdType.STOP, stop_price=103).order_id
    out = h.buy(10, 98, member="M2")  # the bid moves up: the peg to 103
    assert [(ev.order_id, ev.price) for ev in out.of(Repriced)] == [(peg.order_id, 103)]
    assert [ev.order_id for ev in out.of(Triggered)] == [stop]
    assert out.fills() == [(hid, 103, 5), (a2, 110, 1)]
