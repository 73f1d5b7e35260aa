"""MarketView: the book, trades, band and phase that participants see, from engine events."""

from __future__ import annotations

from decimal import Decimal

from sim.helpers import AAPL, Bench, level, listed, trade
from tradingfloor.exchange.engine.commands import Halt, NewOrder
from tradingfloor.exchange.engine.types import Side
from tradingfloor.sim.market import MarketView, div_toward_zero


def test_band_book_and_trades_follow_the_events() -> None:
    market = MarketView()
    listed(market, reference=19_000, band_bps=1_000)
    view = market.get("AAPL")
    assert view is not None
    assert (view.band_lo, view.band_hi) == (17_100, 20_900)
    assert view.clamp(30_000) == 20_900 and view.clamp(5) == 17_100
    assert view.best_bid() == view.best_ask() == view.mid() == 0
    assert view.fair_price() == 19_000  # the reference until there is a book
    market.on_events([level(Side.BUY, 18_990, 300), level(Side.BUY, 18_995, 100)])
    market.on_events([level(Side.SELL, 19_010, 200)])
    assert (view.best_bid(), view.bid_size(), view.best_ask(), view.ask_size()) == (
        18_995,
        100,
        19_010,
        200,
    )
    assert view.mid() == 19_002 and view.spread() == 15
    market.on_events([level(Side.BUY, 18_995, 0), trade(19_010, 50), trade(19_000, 150)])
    assert view.best_bid() == 18_990
    assert (view.last_price, view.volume, view.notional, view.trades) == (19_000, 200, 3_800_500, 2)
    assert (view.high, view.low) == (19_010, 19_000)
    assert view.average_price(view.notional, view.volume) == Decimal("190.0250")
    assert view.tradable


def test_the_view_matches_the_engine_and_sees_a_halt() -> None:
    bench = Bench([])
    for i, (side, price) in enumerate([(Side.BUY, 18_900), (Side.SELL, 19_100)]):
        bench.apply(
            NewOrder(symbol="AAPL", member="M", cl_ord_id=str(i), side=side, qty=10, price=price)
        )
    view = bench.market.get("AAPL")
    assert view is not None
    bid, bid_size, ask, ask_size = bench.engine.l1(AAPL.symbol)
    assert (view.best_bid(), view.bid_size(), view.best_ask(), view.ask_size()) == (
        bid,
        bid_size,
        ask,
        ask_size,
    )
    bench.apply(Halt(symbol="AAPL"))
    assert not view.tradable


def test_division_toward_zero_is_symmetric() -> None:
    assert div_toward_zero(7, 2) == 3 and div_toward_zero(-7, 2) == -3
    assert div_toward_zero(7, -2) == -3 and div_toward_zero(-7, -2) == 3
    assert div_toward_zero(-1, 100) == 0
