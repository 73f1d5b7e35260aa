"""Tests of the pre-trade checks, the buying power and the holds."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import pytest
from hypothesis import event, given, settings, target
from hypothesis import strategies as st

import tradingfloor.broker.risk.pretrade as pretrade_mod
from tradingfloor.broker.risk.codes import RiskCode, RiskReject
from tradingfloor.broker.risk.pretrade import (
    BPS,
    AccountRisk,
    OrderIntent,
    RiskLimits,
    SymbolRisk,
    buying_power,
    check_order,
    non_marginable_buying_power,
    order_hold,
    order_notional,
    regt_buying_power,
)

LIMITS = RiskLimits()
PDT_LIMITS = RiskLimits(pdt_enabled=True)

MARGIN = AccountRisk(
    account_type="margin",
    kyc_status="approved",
    trading_blocked=False,
    cash=10_000_000,
    settled_cash=10_000_000,
    equity=10_000_000,
    long_market_value=0,
    short_market_value=0,
    held=0,
    day_trade_count=0,
)
CASH = dataclasses.replace(MARGIN, account_type="cash")
RICH = dataclasses.replace(MARGIN, cash=10**10, settled_cash=10**10, equity=10**10)

# $100.00 stock with a one-cent tick: prices are cents
ACME = SymbolRisk(
    symbol="ACME",
    tick_minor=1,
    last_price=10_000,
    best_bid=9_990,
    best_ask=10_010,
    position_qty=0,
    open_buy_qty=0,
    open_sell_qty=0,
    restricted=False,
    opened_today_qty=0,
)


def buy(qty: int = 10, order_type: str = "limit", **kw: Any) -> OrderIntent:
    if order_type in ("limit", "stop_limit"):
        kw.setdefault("limit_price", 10_000)
    if order_type in ("stop", "stop_limit"):
        kw.setdefault("stop_price", 10_100)
    return OrderIntent("buy", qty, order_type, **kw)


def sell(qty: int = 10, order_type: str = "limit", **kw: Any) -> OrderIntent:
    if order_type in ("limit", "stop_limit"):
        kw.setdefault("limit_price", 10_000)
    if order_type in ("stop", "stop_limit"):
        kw.setdefault("stop_price", 9_900)
    return OrderIntent("sell", qty, order_type, **kw)


def reject_code(
    order: OrderIntent,
    account: AccountRisk = MARGIN,
    sym: SymbolRisk = ACME,
    limits: RiskLimits = LIMITS,
) -> RiskCode:
    with pytest.raises(RiskReject) as info:
        check_order(order, account, sym, limits)
    return RiskCode(info.value.code)


def test_public_api() -> None:
    assert sorted(pretrade_mod.__all__) == [
        "AccountRisk",
        "OrderIntent",
        "RiskLimits",
        "SymbolRisk",
        "buying_power",
        "check_collar",
        "check_order",
        "non_marginable_buying_power",
        "order_hold",
        "order_notional",
        "regt_buying_power",
    ]


def test_default_limits() -> None:
    defaults = RiskLimits(
        max_position_qty=5_000,
        max_order_qty=10_000,
        max_order_notional=100_000_000,
        collar_bps=1_000,
        market_order_buffer_bps=500,
        margin_multiplier_bps=20_000,
        pdt_enabled=False,
        pdt_min_equity=2_500_000,
        pdt_max_day_trades=3,
    )
    assert defaults == LIMITS


# -- passing orders -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order", "account", "sym", "hold"),
    [
        (buy(10), MARGIN, ACME, 100_000),
        (buy(10), CASH, ACME, 100_000),
        (buy(3, "market"), CASH, ACME, 31_532),  # 3 * 10_010 * 1.05 = 31_531.5, rounded up
        (buy(2, "stop"), MARGIN, ACME, 21_210),  # 2 * 10_100 * 1.05
        (buy(2, "stop_limit"), MARGIN, ACME, 20_000),  # at the limit
        (buy(2, "trailing_stop", stop_price=10_200), MARGIN, ACME, 21_420),
        (buy(2, "trailing_stop"), MARGIN, ACME, 21_021),  # no trigger yet: at the ask
        (sell(10), CASH, dataclasses.replace(ACME, position_qty=10), 0),
        (sell(10, "market"), CASH, dataclasses.replace(ACME, position_qty=10), 0),
        (sell(10), MARGIN, ACME, 100_000),  # a short sale in a margin account
        (sell(10, limit_price=9_500), MARGIN, ACME, 99_900),  # marketable: valued at the bid
        (sell(5, "stop_limit", limit_price=9_800), MARGIN, ACME, 49_500),  # at the stop
        (sell(4, "market"), MARGIN, ACME, 41_958),  # 4 * 9_990 * 1.05
        (buy(10), MARGIN, dataclasses.replace(ACME, position_qty=-10), 0),  # buy to cover
        (buy(5_000), RICH, ACME, 50_000_000),  # at the position limit exactly
        (buy(1, limit_price=11_000), MARGIN, ACME, 11_000),  # at the collar exactly
        (buy(1, limit_price=9_000), MARGIN, ACME, 9_000),
        (buy(1), CASH, dataclasses.replace(ACME, last_price=None), 10_000),  # no collar
    ],
)
def test_passing_orders_return_their_hold(
    order: OrderIntent, account: AccountRisk, sym: SymbolRisk, hold: int
) -> None:
    assert check_order(order, account, sym, LIMITS) == hold
    assert order_hold(order, sym, LIMITS) == hold


# -- one test per reject code ---------------------------------------------------------------------


@pytest.mark.parametrize("status", ["pending", "rejected"])
def test_kyc_not_approved(status: str) -> None:
    account = dataclasses.replace(MARGIN, kyc_status=status)
    assert reject_code(buy(), account) is RiskCode.KYC_NOT_APPROVED


def test_trading_blocked() -> None:
    account = dataclasses.replace(MARGIN, trading_blocked=True)
    assert reject_code(sell(), account) is RiskCode.TRADING_BLOCKED


def test_restricted_symbol() -> None:
    sym = dataclasses.replace(ACME, restricted=True, position_qty=10)
    assert reject_code(sell(10), MARGIN, sym) is RiskCode.RESTRICTED_SYMBOL


def test_max_order_qty() -> None:
    limits = RiskLimits(max_position_qty=1_000_000, collar_bps=10_000)
    assert check_order(buy(10_000, limit_price=1), MARGIN, ACME, limits) == 10_000
    assert reject_code(buy(10_001), limits=limits) is RiskCode.MAX_ORDER_QTY


@pytest.mark.parametrize(
    "order",
    [
        buy(1, limit_price=11_001),
        buy(1, limit_price=8_999),
        buy(1, "stop", stop_price=11_001),
        sell(1, "stop_limit", stop_price=8_999, limit_price=9_000),
        sell(1, "trailing_stop", stop_price=8_000),
    ],
)
def test_price_collar(order: OrderIntent) -> None:
    assert reject_code(order) is RiskCode.PRICE_COLLAR


def test_price_collar_message_shows_prices() -> None:
    with pytest.raises(RiskReject) as info:
        check_order(buy(1, limit_price=11_001), MARGIN, ACME, LIMITS)
    assert info.value.message == (
        "price is too far from the last trade: limit 110.01 vs last 100.00, allowed +/-10.00%"
    )


def test_short_not_allowed_in_a_cash_account() -> None:
    assert reject_code(sell(1), CASH) is RiskCode.SHORT_NOT_ALLOWED
    short = dataclasses.replace(ACME, position_qty=-5, opened_today_qty=0)
    assert reject_code(sell(1), CASH, short) is RiskCode.SHORT_NOT_ALLOWED


def test_insufficient_qty_in_a_cash_account() -> None:
    sym = dataclasses.replace(ACME, position_qty=100, open_sell_qty=50)
    assert check_order(sell(50), CASH, sym, LIMITS) == 0
    with pytest.raises(RiskReject) as info:
        check_order(sell(51), CASH, sym, LIMITS)
    assert info.value.code is RiskCode.INSUFFICIENT_QTY
    assert info.value.message == (
        "insufficient qty available for order: requested: 51, available: 50"
    )
    committed = dataclasses.replace(ACME, position_qty=100, open_sell_qty=100)
    assert reject_code(sell(1), CASH, committed) is RiskCode.INSUFFICIENT_QTY


@pytest.mark.parametrize(
    ("order", "sym"),
    [
        (buy(5_001), ACME),
        (buy(1), dataclasses.replace(ACME, position_qty=4_000, open_buy_qty=1_000)),
        (sell(5_001), ACME),
        (sell(1), dataclasses.replace(ACME, position_qty=-4_990, open_sell_qty=10)),
        (sell(10_000, limit_price=9_000), dataclasses.replace(ACME, position_qty=4_999)),
    ],
)
def test_position_limit(order: OrderIntent, sym: SymbolRisk) -> None:
    assert reject_code(order, MARGIN, sym) is RiskCode.POSITION_LIMIT


def test_position_limit_lets_a_reducing_order_through() -> None:
    over = dataclasses.replace(ACME, position_qty=6_000)
    assert reject_code(buy(1), MARGIN, over) is RiskCode.POSITION_LIMIT
    assert check_order(sell(1_000), MARGIN, over, LIMITS) == 0


def test_max_order_notional() -> None:
    sym = dataclasses.replace(ACME, last_price=30_000, best_bid=None, best_ask=None)
    rich = RICH
    assert check_order(buy(3_333, limit_price=30_000), rich, sym, LIMITS) == 99_990_000
    with pytest.raises(RiskReject) as info:
        check_order(buy(3_334, limit_price=30_000), rich, sym, LIMITS)
    assert info.value.code is RiskCode.MAX_ORDER_NOTIONAL
    assert info.value.message.endswith(": 1000200.00 > 1000000.00")
    # the notional of a market order is valued at the reference, without the buffer
    assert order_notional(buy(3_333, "market"), sym) == 99_990_000
    assert check_order(buy(3_333, "market"), rich, sym, LIMITS) == 104_989_500


def test_max_order_notional_uses_minor_units() -> None:
    sym = dataclasses.replace(ACME, tick_minor=5)  # a $0.05 tick: 10_000 ticks = $500.00
    assert reject_code(buy(2_001), MARGIN, sym) is RiskCode.MAX_ORDER_NOTIONAL


DAY_TRADER = dataclasses.replace(MARGIN, equity=1_000_000, cash=1_000_000, day_trade_count=3)
BOUGHT_TODAY = dataclasses.replace(ACME, position_qty=100, opened_today_qty=40)
SHORTED_TODAY = dataclasses.replace(ACME, position_qty=-100, opened_today_qty=100)


def test_pattern_day_trader() -> None:
    pdt = RiskCode.PATTERN_DAY_TRADER
    assert reject_code(sell(10), DAY_TRADER, BOUGHT_TODAY, PDT_LIMITS) is pdt
    assert reject_code(buy(1), DAY_TRADER, SHORTED_TODAY, PDT_LIMITS) is pdt


@pytest.mark.parametrize(
    ("account", "sym", "order", "limits"),
    [
        (DAY_TRADER, BOUGHT_TODAY, sell(10), LIMITS),  # protection off
        (dataclasses.replace(DAY_TRADER, day_trade_count=2), BOUGHT_TODAY, sell(10), PDT_LIMITS),
        (dataclasses.replace(DAY_TRADER, equity=2_500_000), BOUGHT_TODAY, sell(10), PDT_LIMITS),
        (dataclasses.replace(DAY_TRADER, account_type="cash"), BOUGHT_TODAY, sell(10), PDT_LIMITS),
        (DAY_TRADER, dataclasses.replace(BOUGHT_TODAY, opened_today_qty=0), sell(10), PDT_LIMITS),
        (DAY_TRADER, BOUGHT_TODAY, buy(1), PDT_LIMITS),  # adds to the position
    ],
)
def test_pattern_day_trader_passes_otherwise(
    account: AccountRisk, sym: SymbolRisk, order: OrderIntent, limits: RiskLimits
) -> None:
    check_order(order, account, sym, limits)


@pytest.mark.parametrize(
    "order",
    [buy(1, "market"), sell(1, "market"), buy(1, "trailing_stop"), sell(1, "trailing_stop")],
)
def test_no_reference_price(order: OrderIntent) -> None:
    sym = dataclasses.replace(ACME, last_price=None, best_bid=None, best_ask=None)
    assert reject_code(order, MARGIN, sym) is RiskCode.NO_REFERENCE_PRICE
    with pytest.raises(RiskReject) as info:
        order_hold(order, sym, LIMITS)
    assert info.value.code is RiskCode.NO_REFERENCE_PRICE


def test_market_order_falls_back_to_the_last_trade() -> None:
    no_quotes = dataclasses.replace(ACME, best_bid=None, best_ask=None)
    assert order_hold(buy(1, "market"), no_quotes, LIMITS) == 10_500
    assert order_hold(sell(1, "market"), no_quotes, LIMITS) == 10_500


def test_closing_market_sell_needs_no_hold_but_still_a_price() -> None:
    sym = dataclasses.replace(ACME, last_price=None, best_bid=None, best_ask=None, position_qty=10)
    assert order_hold(sell(10, "market"), sym, LIMITS) == 0
    assert reject_code(sell(10, "market"), CASH, sym) is RiskCode.NO_REFERENCE_PRICE


def test_insufficient_buying_power() -> None:
    poor = dataclasses.replace(CASH, settled_cash=100_000, cash=150_000)
    assert check_order(buy(10), poor, ACME, LIMITS) == 100_000
    with pytest.raises(RiskReject) as info:
        check_order(buy(11), poor, ACME, LIMITS)
    assert info.value.code is RiskCode.INSUFFICIENT_BUYING_POWER
    assert info.value.message == "insufficient buying power: needs 1100.00, has 1000.00"
    held = dataclasses.replace(poor, held=1)
    assert reject_code(buy(10), held) is RiskCode.INSUFFICIENT_BUYING_POWER


def test_margin_short_sale_needs_buying_power() -> None:
    account = dataclasses.replace(MARGIN, equity=100_000, cash=100_000)  # BP 200_000
    assert check_order(sell(20), account, ACME, LIMITS) == 200_000
    assert reject_code(sell(21), account) is RiskCode.INSUFFICIENT_BUYING_POWER


def test_checks_run_in_the_documented_order() -> None:
    """An order failing every check reports each check in turn as the earlier ones are fixed."""
    account = dataclasses.replace(
        DAY_TRADER, kyc_status="pending", trading_blocked=True, settled_cash=0, cash=0, equity=0
    )
    sym = dataclasses.replace(BOUGHT_TODAY, restricted=True, position_qty=5, opened_today_qty=5)
    limits = dataclasses.replace(PDT_LIMITS, max_order_qty=5, max_order_notional=10)
    order = sell(6, limit_price=20_000)
    steps: list[tuple[RiskCode, dict[str, Any], dict[str, Any], dict[str, Any], Any]] = [
        (RiskCode.KYC_NOT_APPROVED, {"kyc_status": "approved"}, {}, {}, None),
        (RiskCode.TRADING_BLOCKED, {"trading_blocked": False}, {}, {}, None),
        (RiskCode.RESTRICTED_SYMBOL, {}, {"restricted": False}, {}, None),
        (RiskCode.MAX_ORDER_QTY, {}, {}, {"max_order_qty": 10_000}, None),
        (RiskCode.PRICE_COLLAR, {}, {}, {}, sell(6, limit_price=10_000)),
        (RiskCode.INSUFFICIENT_QTY, {"account_type": "margin"}, {}, {}, None),
        (RiskCode.POSITION_LIMIT, {}, {}, {"max_position_qty": 1}, None),
        (RiskCode.MAX_ORDER_NOTIONAL, {}, {}, {"max_order_notional": 10**9}, None),
        (RiskCode.PATTERN_DAY_TRADER, {"day_trade_count": 0}, {}, {}, None),
        (RiskCode.INSUFFICIENT_BUYING_POWER, {"equity": 10**9}, {}, {}, None),
    ]
    limits = dataclasses.replace(limits, max_position_qty=0)
    account = dataclasses.replace(account, account_type="cash")
    for expected, account_fix, sym_fix, limits_fix, new_order in steps:
        assert reject_code(order, account, sym, limits) is expected
        account = dataclasses.replace(account, **account_fix)
        sym = dataclasses.replace(sym, **sym_fix)
        limits = dataclasses.replace(limits, **limits_fix)
        order = new_order or order
    assert check_order(order, account, sym, limits) == 10_000


# -- buying power ---------------------------------------------------------------------------------


def test_cash_buying_power_is_settled_cash_less_holds() -> None:
    account = dataclasses.replace(CASH, cash=500, settled_cash=300, held=100, equity=10**9)
    assert buying_power(account, LIMITS) == 200
    assert regt_buying_power(account, LIMITS) == 200
    assert non_marginable_buying_power(account, LIMITS) == 200
    assert buying_power(dataclasses.replace(account, held=301), LIMITS) == 0


def test_margin_buying_power_is_reg_t() -> None:
    account = dataclasses.replace(
        MARGIN, equity=1_001, long_market_value=600, short_market_value=200, held=100
    )
    assert buying_power(account, LIMITS) == 2_002 - 800 - 100
    assert regt_buying_power(account, LIMITS) == 1_102
    assert non_marginable_buying_power(account, LIMITS) == 551
    quarter = RiskLimits(margin_multiplier_bps=15_000)  # 1.5 x 1001 = 1501.5, floored
    assert buying_power(account, quarter) == 1_501 - 900
    assert buying_power(dataclasses.replace(account, equity=-5), LIMITS) == 0


# -- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: OrderIntent("short", 1, "market"),
        lambda: OrderIntent("buy", 0, "market"),
        lambda: OrderIntent("buy", 1, "iceberg"),
        lambda: OrderIntent("buy", 1, "limit"),
        lambda: OrderIntent("buy", 1, "limit", limit_price=0),
        lambda: OrderIntent("buy", 1, "market", limit_price=1),
        lambda: OrderIntent("buy", 1, "market", stop_price=1),
        lambda: OrderIntent("buy", 1, "stop"),
        lambda: OrderIntent("buy", 1, "stop_limit", limit_price=1),
        lambda: OrderIntent("buy", 1, "stop", stop_price=1, limit_price=1),
        lambda: dataclasses.replace(MARGIN, account_type="ira"),
        lambda: dataclasses.replace(MARGIN, kyc_status="ok"),
        lambda: dataclasses.replace(MARGIN, held=-1),
        lambda: dataclasses.replace(ACME, tick_minor=0),
        lambda: dataclasses.replace(ACME, best_bid=0),
        lambda: dataclasses.replace(ACME, open_sell_qty=-1),
        lambda: dataclasses.replace(ACME, position_qty=5, opened_today_qty=6),
        lambda: RiskLimits(max_order_qty=-1),
        lambda: RiskLimits(margin_multiplier_bps=0),
    ],
)
def test_malformed_inputs_raise(make: Any) -> None:
    with pytest.raises(ValueError):
        make()


# -- properties -----------------------------------------------------------------------------------
#
# The strategies draw one market (last trade, quotes, tick), the limits, then an order priced
# around the last trade (mostly inside the collar), a quantity sized to the notional limit, a
# position and an account that can mostly afford it, so that most examples are accepted and reach
# the buying-power invariant; the rest exercise each reject. Each property counts the examples
# that reach its checked branch and asserts at the end that at least half did.

REACHED_AT_LEAST = 0.5  # share of the examples that must reach the checked branch


def _rare(draw: st.DrawFn, odds: int = 25) -> bool:
    """True about once in ``odds`` draws (integers(1, odds) == 1 would be far more often:
    Hypothesis favours the ends of a range)."""
    return draw(st.sampled_from([False] * (odds - 1) + [True]))


@st.composite
def limit_sets(draw: st.DrawFn) -> RiskLimits:
    return RiskLimits(
        collar_bps=draw(st.sampled_from([0]) | st.integers(50, 20_000)),
        market_order_buffer_bps=draw(st.integers(0, 2_000)),
        margin_multiplier_bps=draw(st.integers(10_000, 40_000)),
        pdt_enabled=draw(st.booleans()),
    )


@st.composite
def markets(draw: st.DrawFn) -> SymbolRisk:
    """A symbol's last trade and quotes (each sometimes missing); position fields are zero."""
    last = None if _rare(draw, 10) else draw(st.integers(100, 20_000))
    centre = last if last is not None else draw(st.integers(100, 20_000))
    half_spread = draw(st.integers(0, max(1, centre // 100)))
    bid = None if _rare(draw, 10) else max(1, centre - half_spread)
    ask = None if _rare(draw, 10) else centre + half_spread
    return dataclasses.replace(
        ACME,
        tick_minor=draw(st.sampled_from([1, 5, 100])),
        last_price=last,
        best_bid=bid,
        best_ask=ask,
        restricted=_rare(draw),
    )


def _price_near(draw: st.DrawFn, sym: SymbolRisk, limits: RiskLimits) -> int:
    """A price inside the collar around the last trade, or (rarely) anywhere."""
    centre = sym.last_price or sym.best_ask or sym.best_bid or 10_000
    if _rare(draw, 10):
        return draw(st.integers(1, 3 * centre))
    room = centre * limits.collar_bps // BPS
    return draw(st.integers(max(1, centre - room), centre + room))


@st.composite
def scenarios(
    draw: st.DrawFn, account_type: str | None = None, limits: RiskLimits | None = None
) -> tuple[OrderIntent, AccountRisk, SymbolRisk, RiskLimits]:
    limits = limits or draw(limit_sets())
    sym = draw(markets())
    order_type = draw(st.sampled_from(["market", "limit", "stop", "stop_limit", "trailing_stop"]))
    side = draw(st.sampled_from(["buy", "sell"]))
    limit = _price_near(draw, sym, limits) if order_type in ("limit", "stop_limit") else None
    stop: int | None = None
    if order_type in ("stop", "stop_limit") or (
        order_type == "trailing_stop" and draw(st.booleans())
    ):
        stop = _price_near(draw, sym, limits)
    # a quantity whose notional mostly fits max_order_notional (with room for the buffer), and
    # half the position limit
    unit = (limit or stop or sym.last_price or 10_000) * sym.tick_minor * 2
    fits = max(1, min(limits.max_position_qty // 2, limits.max_order_notional // unit))
    if _rare(draw, 20):  # above the quantity limit
        qty = draw(st.integers(limits.max_order_qty + 1, limits.max_order_qty + 100))
    elif _rare(draw, 20):  # above the notional limit, where the quantity limit allows it
        qty = min(limits.max_order_qty, 2 * fits + draw(st.integers(1, fits)))
    else:
        qty = draw(st.integers(1, fits))
    order = OrderIntent(side, qty, order_type, limit, stop)
    # a position mostly within the limit; in a cash account a sell mostly has the shares
    kind = account_type or draw(st.sampled_from(["cash", "margin"]))
    shape = draw(st.sampled_from(["usual"] * 16 + ["position edge"] * 2 + ["anywhere"] * 2))
    if shape == "position edge":  # at or beyond the position limit on the order's side
        edge = limits.max_position_qty - qty
        position = draw(st.integers(edge - 10, edge + 10)) * (1 if side == "buy" else -1)
        open_sell = 0
    elif shape == "usual" and kind == "cash" and side == "sell":  # a covered sale
        position = draw(st.integers(qty, limits.max_position_qty + qty))
        open_sell = draw(st.integers(0, position - qty))
    else:
        quarter = limits.max_position_qty // 4
        position = draw(st.integers(-quarter, quarter))
        open_sell = draw(st.integers(0, 500))
    sym = dataclasses.replace(
        sym,
        position_qty=position,
        open_buy_qty=draw(st.integers(0, 500)),
        open_sell_qty=open_sell,
        opened_today_qty=draw(st.integers(0, abs(position))),
    )
    # money mostly well above what the order needs, sometimes around it or below, and sometimes
    # (cash accounts) exactly at the order's hold, give or take a minor unit
    need = order.qty * unit
    held = draw(st.integers(0, need // 2))
    money = draw(st.sampled_from(["plenty"] * 5 + ["tight"] + ["edge"] * 2))
    if money == "plenty":
        cash = draw(st.integers(3 * need, 3 * need + 10**10))
    else:
        cash = draw(st.integers(-need, 4 * need))
    settled = cash - draw(st.integers(0, need // 2))
    if money == "edge" and kind == "cash":
        with contextlib.suppress(RiskReject):  # no price to value it: keep the money drawn
            settled = held + order_hold(order, sym, limits) + draw(st.integers(-1, 1))
    account = AccountRisk(
        account_type=kind,
        kyc_status="pending" if _rare(draw) else "approved",
        trading_blocked=_rare(draw),
        cash=max(cash, settled),
        settled_cash=settled,
        equity=cash,
        long_market_value=draw(st.integers(0, need // 2)),
        short_market_value=draw(st.integers(0, need // 2)),
        held=held,
        day_trade_count=draw(st.integers(0, 5)),
    )
    return order, account, sym, limits


def _beyond_collar(order: OrderIntent, sym: SymbolRisk, limits: RiskLimits) -> bool:
    last = sym.last_price
    return last is not None and any(
        p is not None and abs(p - last) * BPS > limits.collar_bps * last
        for p in (order.limit_price, order.stop_price)
    )


def _no_reference(order: OrderIntent, sym: SymbolRisk) -> bool:
    if order.limit_price is not None or order.stop_price is not None:
        return False
    quote = sym.best_ask if order.side == "buy" else sym.best_bid
    return quote is None and sym.last_price is None


def _failing_checks(
    order: OrderIntent, account: AccountRisk, sym: SymbolRisk, limits: RiskLimits
) -> list[set[RiskCode]]:
    """Each check of the documented order, as the codes it may give when it fails (empty when it
    passes): written from docs/broker.md, independently of check_order's branches."""
    cash_sell = account.account_type == "cash" and order.side == "sell"
    short = cash_sell and order.qty > max(0, sym.position_qty - sym.open_sell_qty)
    if order.side == "buy":
        beyond_position = sym.position_qty + sym.open_buy_qty + order.qty > limits.max_position_qty
    else:
        projected = sym.position_qty - sym.open_sell_qty - order.qty
        beyond_position = -projected > limits.max_position_qty
    no_ref = _no_reference(order, sym)
    day_trade = sym.opened_today_qty > 0 and (
        (sym.position_qty > 0 and order.side == "sell")
        or (sym.position_qty < 0 and order.side == "buy")
    )
    pdt = (
        limits.pdt_enabled
        and account.account_type == "margin"
        and account.equity < limits.pdt_min_equity
        and day_trade
        and account.day_trade_count >= limits.pdt_max_day_trades
    )

    def check(failed: bool, *codes: RiskCode) -> set[RiskCode]:
        return set(codes) if failed else set()

    return [
        check(account.kyc_status != "approved", RiskCode.KYC_NOT_APPROVED),
        check(account.trading_blocked, RiskCode.TRADING_BLOCKED),
        check(sym.restricted, RiskCode.RESTRICTED_SYMBOL),
        check(order.qty > limits.max_order_qty, RiskCode.MAX_ORDER_QTY),
        check(_beyond_collar(order, sym, limits), RiskCode.PRICE_COLLAR),
        check(
            short,
            RiskCode.INSUFFICIENT_QTY if sym.position_qty > 0 else RiskCode.SHORT_NOT_ALLOWED,
        ),
        check(beyond_position, RiskCode.POSITION_LIMIT),
        check(no_ref, RiskCode.NO_REFERENCE_PRICE)
        or check(
            order_notional(order, sym) > limits.max_order_notional, RiskCode.MAX_ORDER_NOTIONAL
        ),
        check(pdt, RiskCode.PATTERN_DAY_TRADER),
        check(
            not no_ref and order_hold(order, sym, limits) > buying_power(account, limits),
            RiskCode.INSUFFICIENT_BUYING_POWER,
        ),
    ]


def test_an_accepted_order_never_holds_more_than_the_buying_power() -> None:
    """Accepted: the hold fits the buying power and the limits. Rejected: the reported code is
    the first check that fails in the documented order."""
    seen = {"examples": 0, "accepted": 0}

    @settings(max_examples=250, deadline=None)
    @given(scenarios())
    def run(scenario: tuple[OrderIntent, AccountRisk, SymbolRisk, RiskLimits]) -> None:
        order, account, sym, limits = scenario
        seen["examples"] += 1
        try:
            hold = check_order(order, account, sym, limits)
        except RiskReject as exc:
            event(f"rejected {RiskCode(exc.code).name}")
            first = next(codes for codes in _failing_checks(order, account, sym, limits) if codes)
            assert exc.code in first, (exc.code, first)
            return
        event("accepted")
        seen["accepted"] += 1
        assert not any(_failing_checks(order, account, sym, limits))
        available = buying_power(account, limits)
        assert 0 <= hold <= available
        target(hold * 1_000 // max(1, available), label="hold per mille of the buying power")
        assert hold == order_hold(order, sym, limits)
        assert order.qty <= limits.max_order_qty
        assert order_notional(order, sym) <= limits.max_order_notional

    run()
    assert seen["accepted"] >= REACHED_AT_LEAST * seen["examples"], seen


def test_cash_account_holds_never_exceed_settled_cash() -> None:
    """Orders accepted one after another in a cash account never hold more than its settled
    cash. Counted as reaching the check: orders accepted or refused for buying power."""
    seen = {"orders": 0, "reached": 0, "accepted": 0}

    @settings(max_examples=60, deadline=None)
    @given(
        st.integers(0, 10**8),
        st.lists(scenarios("cash", limits=LIMITS), min_size=1, max_size=25),
    )
    def run(
        settled: int, batch: list[tuple[OrderIntent, AccountRisk, SymbolRisk, RiskLimits]]
    ) -> None:
        account = dataclasses.replace(CASH, cash=settled, settled_cash=settled, equity=settled)
        for order, _account, sym, _limits in batch:
            seen["orders"] += 1
            try:
                hold = check_order(
                    order, account, dataclasses.replace(sym, restricted=False), LIMITS
                )
            except RiskReject as exc:
                event(f"rejected {RiskCode(exc.code).name}")
                seen["reached"] += exc.code == RiskCode.INSUFFICIENT_BUYING_POWER
                continue
            event("accepted")
            seen["reached"] += 1
            seen["accepted"] += 1
            account = dataclasses.replace(account, held=account.held + hold)
            assert account.held <= settled

    run()
    assert seen["reached"] >= REACHED_AT_LEAST * seen["orders"], seen
    assert seen["accepted"] > 0, seen
