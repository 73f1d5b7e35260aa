"""The broker's view of the venue's trailing stops (``broker/oms/trailing.py``) where the
differential walk in ``test_oms.py`` does not go: stops accepted before any trade (the venue
trails from the reference price; the broker infers the mark from the accepted stop), and the
one-tick floors. docs/broker.md: the API's ``hwm`` and ``stop_price`` follow the venue's rule.
Written for the surviving mutants of a mutmut run over ``trailing.py`` (docs/testing.md)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.stack import broker_stack, trailing_stops
from tradingfloor.broker.oms.orders import OrderStatus
from tradingfloor.broker.oms.trailing import TrailTracker
from tradingfloor.core.limits import MAX_PRICE_TICKS, MAX_TRAIL_BPS, MAX_TRAIL_TICKS
from tradingfloor.exchange.engine.commands import SetReferencePrice
from tradingfloor.exchange.engine.types import Side


@pytest.mark.parametrize("reference", [10_000, 10_001, 9_973])
async def test_stops_accepted_before_any_trade_match_the_venues(
    tmp_path: Path, reference: int
) -> None:
    """No trade yet, only a reference price: the venue trails from the reference, and the
    broker, which has no last price, infers the mark from the stop the venue accepted. Its mark
    is the reference (to within a tick for a percentage, by integer division), its stop is the
    venue's, and both keep matching once trades move the price."""
    async with broker_stack(tmp_path) as s:
        acct_id = await s.funded_account(account_type="margin")
        await s.venue.submit(SetReferencePrice(symbol="AAPL", price=reference))
        await s.counterparty("AAPL", Side.SELL, reference + 50, 100)  # quotes, no trade
        await s.counterparty("AAPL", Side.BUY, reference - 50, 100)
        assert s.broker.last_price.get("AAPL") is None
        orders = [await s.broker.submit_order(acct_id, req) for req in trailing_stops()]
        engine = s.venue._pipeline.engine  # the venue's own state, read for comparison only
        for order in orders:
            assert order.status == OrderStatus.NEW, order.reject_reason
            trail = s.broker.trails.get(order.venue_order_id)
            assert trail is not None
            assert trail.stop == engine.orders[order.venue_order_id].stop_price
            assert type(trail.ref) is int
            if order.trail_price is not None:
                assert trail.ref == reference
            else:
                assert abs(trail.ref - reference) <= 1
        rng = random.Random(reference)
        price, checked = reference, 0
        for step in range(20):
            price += rng.choice((-90, -40, 35, 80))
            await s.counterparty("AAPL", Side.SELL, price, 1, member=f"S{step}")
            await s.counterparty("AAPL", Side.BUY, price, 1, member=f"B{step}")
            for order in orders:
                if order.status != OrderStatus.NEW:
                    continue
                trail = s.broker.trails.get(order.venue_order_id)
                assert trail is not None
                assert trail.stop == engine.orders[order.venue_order_id].stop_price, step
                checked += 1
        assert checked >= 20


def test_a_last_price_of_one_tick_is_the_reference() -> None:
    """A last trade at 1 tick is a price like any other (the mark starts there); only no last
    price makes the tracker infer the mark from the accepted stop."""
    tracker = TrailTracker()
    # a sell: the venue's stop is floored at 1 tick, so it says nothing of the mark
    tracker.start(7, "AAPL", is_buy=False, amount=350, bps=0, last_price=1, accepted_stop=1)
    trail = tracker.get(7)
    assert trail is not None and (trail.ref, trail.stop) == (1, 1)


def test_an_inferred_mark_is_at_least_one_tick() -> None:
    """A buy by percentage accepted at 1 tick (reference 1, offset 1 * bps // 10_000 = 0):
    the inverse division gives 0, and the mark is floored at 1 tick, as the venue's is."""
    tracker = TrailTracker()
    tracker.start(8, "AAPL", is_buy=True, amount=0, bps=275, last_price=None, accepted_stop=1)
    trail = tracker.get(8)
    assert trail is not None and (trail.ref, trail.stop) == (1, 1)


def _venue_stop(ref: int, amount: int, bps: int, *, is_buy: bool) -> int:
    """docs/engine.md: ``ref + trail`` (buy) or ``ref - trail``, at least 1 (sell)."""
    trail = amount or ref * bps // 10_000
    return ref + trail if is_buy else max(ref - trail, 1)


@given(
    ref=st.integers(1, MAX_PRICE_TICKS // 2),
    bps=st.integers(1, MAX_TRAIL_BPS),
    amount=st.one_of(st.just(0), st.integers(1, MAX_TRAIL_TICKS // 2)),
    is_buy=st.booleans(),
)
def test_a_mark_inferred_from_the_accepted_stop_gives_the_venues_stop(
    ref: int, bps: int, amount: int, is_buy: bool
) -> None:
    """Whatever reference the venue trailed from, the tracker's stop is the venue's, and a
    buy's mark is the venue's reference (a sell's may be another that gives the same stop)."""
    stop = _venue_stop(ref, amount, bps, is_buy=is_buy)
    tracker = TrailTracker()
    tracker.start(
        1, "AAPL", is_buy=is_buy, amount=amount, bps=bps, last_price=None, accepted_stop=stop
    )
    trail = tracker.get(1)
    assert trail is not None and trail.stop == stop
    if is_buy:
        assert trail.ref == ref
