"""Tests of the pre-trade checks, the buying power and the holds."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tradingfloor.broker.risk.pretrade as pretrade_mod
from tradingfloor.broker.risk.codes import RiskCode, RiskReject
from tradingfloor.broker.risk.pretrade import (
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

# prices near each other so that most orders pass the collar, plus a few far ones
near = st.integers(min_value=9_000, max_value=11_500)
prices = st.none() | near | st.integers(min_value=1, max_value=50_000)


@st.composite
def orders(draw: st.DrawFn) -> OrderIntent:
    order_type = draw(st.sampled_from(["market", "limit", "stop", "stop_limit", "trailing_stop"]))
    limit = draw(near) if order_type in ("limit", "stop_limit") else None
    stop: int | None = None
    if order_type in ("stop", "stop_limit"):
        stop = draw(near)
    elif order_type == "trailing_stop":
        stop = draw(prices)
    return OrderIntent(
        draw(st.sampled_from(["buy", "sell"])),
        draw(st.integers(1, 3_000) | st.integers(1, 12_000)),
        order_type,
        limit,
        stop,
    )


@st.composite
def symbols(draw: st.DrawFn) -> SymbolRisk:
    position = draw(st.integers(-6_000, 6_000))
    return SymbolRisk(
        symbol="ACME",
        tick_minor=draw(st.sampled_from([1, 5, 100])),
        last_price=draw(prices),
        best_bid=draw(prices),
        best_ask=draw(prices),
        position_qty=position,
        open_buy_qty=draw(st.integers(0, 3_000)),
        open_sell_qty=draw(st.integers(0, 3_000)),
        restricted=draw(st.sampled_from([False] * 9 + [True])),
        opened_today_qty=draw(st.integers(0, abs(position))),
    )


@st.composite
def accounts(draw: st.DrawFn) -> AccountRisk:
    return AccountRisk(
        account_type=draw(st.sampled_from(["cash", "margin"])),
        kyc_status=draw(st.sampled_from(["approved"] * 9 + ["pending"])),
        trading_blocked=draw(st.sampled_from([False] * 9 + [True])),
        cash=draw(st.integers(-(10**8), 10**9)),
        settled_cash=draw(st.integers(-(10**8), 10**9)),
        equity=draw(st.integers(-(10**8), 10**9)),
        long_market_value=draw(st.integers(0, 10**8)),
        short_market_value=draw(st.integers(0, 10**8)),
        held=draw(st.integers(0, 10**8)),
        day_trade_count=draw(st.integers(0, 5)),
    )


limit_sets = st.builds(
    RiskLimits,
    collar_bps=st.integers(0, 20_000),
    market_order_buffer_bps=st.integers(0, 2_000),
    margin_multiplier_bps=st.integers(10_000, 40_000),
    pdt_enabled=st.booleans(),
)


@settings(max_examples=250, deadline=None)
@given(orders(), accounts(), symbols(), limit_sets)
def test_an_accepted_order_never_holds_more_than_the_buying_power(
    order: OrderIntent, account: AccountRisk, sym: SymbolRisk, limits: RiskLimits
) -> None:
    try:
        hold = check_order(order, account, sym, limits)
    except RiskReject as exc:
        assert exc.code in set(RiskCode)
        return
    assert 0 <= hold <= buying_power(account, limits)
    assert hold == order_hold(order, sym, limits)
    assert order.qty <= limits.max_order_qty
    assert order_notional(order, sym) <= limits.max_order_notional


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 10**8),
    st.lists(st.tuples(orders(), symbols()), max_size=25),
)
def test_cash_account_holds_never_exceed_settled_cash(
    settled: int, batch: list[tuple[OrderIntent, SymbolRisk]]
) -> None:
    account = dataclasses.replace(CASH, cash=settled, settled_cash=settled, equity=settled)
    for order, sym in batch:
        try:
            hold = check_order(order, account, dataclasses.replace(sym, restricted=False), LIMITS)
        except RiskReject:
            continue
        account = dataclasses.replace(account, held=account.held + hold)
        assert account.held <= settled
