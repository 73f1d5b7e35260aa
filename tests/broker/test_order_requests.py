"""The order-request checks of ``broker.oms.requests`` called directly: each rule and each shared
range limit (core.limits) at its boundary, accepted on one side and rejected on the other with
its own message. Written from the surviving mutants of a mutmut run (docs/testing.md)."""

from __future__ import annotations

from typing import Any

import pytest

from tradingfloor.broker.errors import BrokerError, ErrorCode
from tradingfloor.broker.oms.requests import (
    MAX_CLIENT_ORDER_ID,
    OrderRequest,
    ReplaceRequest,
    validate_order,
    validate_replace,
)
from tradingfloor.core.limits import MAX_ORDER_QTY, MAX_PRICE_TICKS, MAX_TRAIL_BPS, MAX_TRAIL_TICKS

PRICE_MAX = MAX_PRICE_TICKS - 1  # the largest price the engine accepts


def req(**kw: Any) -> OrderRequest:
    """A buy limit order for one share at 10,000 ticks, with ``kw`` changed."""
    fields: dict[str, Any] = {
        "symbol": "AAPL",
        "side": "buy",
        "qty": 1,
        "order_type": "limit",
        "limit_price": 10_000,
    }
    fields.update(kw)
    return OrderRequest(**fields)


MARKET: dict[str, Any] = {"order_type": "market", "limit_price": None}
BRACKET: dict[str, Any] = {
    "order_class": "bracket",
    "take_profit_limit": 11_000,
    "stop_loss_stop": 9_000,
}
SELL_BRACKET: dict[str, Any] = {
    "side": "sell",
    "order_class": "bracket",
    "take_profit_limit": 9_000,
    "stop_loss_stop": 11_000,
}

ACCEPTED: dict[str, dict[str, Any]] = {
    "buy limit": {},
    "sell limit": {"side": "sell"},
    "market": MARKET,
    "largest qty": {"qty": MAX_ORDER_QTY},
    "smallest price": {"limit_price": 1},
    "largest price": {"limit_price": PRICE_MAX},
    "stop at the largest price": {**MARKET, "order_type": "stop", "stop_price": PRICE_MAX},
    "stop limit": {"order_type": "stop_limit", "stop_price": 10_100},
    "smallest trail": {**MARKET, "order_type": "trailing_stop", "trail_price": 1},
    "largest trail in ticks": {
        **MARKET,
        "order_type": "trailing_stop",
        "trail_price": MAX_TRAIL_TICKS,
    },
    "largest trail in bps": {
        **MARKET,
        "order_type": "trailing_stop",
        "trail_percent_bps": MAX_TRAIL_BPS,
    },
    "shortest client_order_id": {"client_order_id": "a"},
    "longest client_order_id": {"client_order_id": "a" * MAX_CLIENT_ORDER_ID},
    "extended hours day limit": {"extended_hours": True},
    **{
        f"time_in_force {tif}": {"time_in_force": tif}
        for tif in ("day", "gtc", "opg", "cls", "ioc", "fok")
    },
    "buy bracket, limit entry": BRACKET,
    "buy bracket, gtc": {**BRACKET, "time_in_force": "gtc"},
    "buy bracket, exits one tick beyond the entry": {
        **BRACKET,
        "take_profit_limit": 10_001,
        "stop_loss_stop": 9_999,
    },
    "buy bracket, market entry, take profit one tick above the stop": {
        **BRACKET,
        **MARKET,
        "take_profit_limit": 9_001,
    },
    "buy bracket with a stop-loss limit": {**BRACKET, "stop_loss_limit": 8_900},
    "buy bracket, exits at the price limits": {
        **BRACKET,
        "take_profit_limit": PRICE_MAX,
        "stop_loss_stop": 1,
        "stop_loss_limit": PRICE_MAX,
    },
    "sell bracket": SELL_BRACKET,
    "sell bracket, exits one tick beyond the entry": {
        **SELL_BRACKET,
        "take_profit_limit": 9_999,
        "stop_loss_stop": 10_001,
    },
    "sell bracket, market entry, take profit one tick below the stop": {
        **SELL_BRACKET,
        **MARKET,
        "take_profit_limit": 10_999,
    },
    "buy oto, take profit": {"order_class": "oto", "take_profit_limit": 10_001},
    "buy oto, stop loss": {"order_class": "oto", "stop_loss_stop": 9_999},
    "sell oto, take profit": {"side": "sell", "order_class": "oto", "take_profit_limit": 9_999},
    "sell oto, stop loss": {"side": "sell", "order_class": "oto", "stop_loss_stop": 10_001},
    "market oto": {**MARKET, "order_class": "oto", "stop_loss_stop": 9_000},
    # an oco is the exit pair of a position: a sell exits a long (take profit above the stop)
    "sell oco": {
        "side": "sell",
        "order_class": "oco",
        "limit_price": None,
        "take_profit_limit": 11_000,
        "stop_loss_stop": 10_999,
        "stop_loss_limit": 10_900,
    },
    "buy oco": {"order_class": "oco", "take_profit_limit": 9_000, "stop_loss_stop": 9_001},
}


@pytest.mark.parametrize("fields", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_well_formed_orders_are_accepted(fields: dict[str, Any]) -> None:
    validate_order(req(**fields))


def range_message(name: str, value: int, largest: int) -> str:
    return f"{name} {value} is out of range (at most {largest})"


REJECTED: dict[str, tuple[dict[str, Any], str]] = {
    "side": ({"side": "hold"}, "side must be buy or sell"),
    "side in upper case": ({"side": "BUY"}, "side must be buy or sell"),
    "zero qty": ({"qty": 0}, "qty must be a positive whole number of shares"),
    "negative qty": ({"qty": -1}, "qty must be a positive whole number of shares"),
    "qty above the limit": (
        {"qty": MAX_ORDER_QTY + 1},
        range_message("qty", MAX_ORDER_QTY + 1, MAX_ORDER_QTY),
    ),
    "order type": ({"order_type": "peg"}, "unknown order type 'peg'"),
    "time_in_force": ({"time_in_force": "gtd"}, "unknown time_in_force 'gtd'"),
    "order_class": ({"order_class": "iceberg"}, "unknown order_class 'iceberg'"),
    "empty client_order_id": (
        {"client_order_id": ""},
        f"client_order_id must be 1 to {MAX_CLIENT_ORDER_ID} characters",
    ),
    "long client_order_id": (
        {"client_order_id": "a" * (MAX_CLIENT_ORDER_ID + 1)},
        f"client_order_id must be 1 to {MAX_CLIENT_ORDER_ID} characters",
    ),
    **{
        f"{sign} {name}": ({name: value}, f"{name} must be positive")
        for name in (
            "limit_price",
            "stop_price",
            "trail_price",
            "trail_percent_bps",
            "take_profit_limit",
            "stop_loss_stop",
            "stop_loss_limit",
        )
        for sign, value in (("zero", 0), ("negative", -1))
    },
    **{
        f"{name} above the limit": (
            {**BRACKET, **{name: MAX_PRICE_TICKS}},
            range_message(name, MAX_PRICE_TICKS, PRICE_MAX),
        )
        for name in ("limit_price", "take_profit_limit", "stop_loss_stop", "stop_loss_limit")
    },
    "stop_price above the limit": (
        {"order_type": "stop_limit", "stop_price": MAX_PRICE_TICKS},
        range_message("stop_price", MAX_PRICE_TICKS, PRICE_MAX),
    ),
    "trail_price above the limit": (
        {**MARKET, "order_type": "trailing_stop", "trail_price": MAX_TRAIL_TICKS + 1},
        range_message("trail_price", MAX_TRAIL_TICKS + 1, MAX_TRAIL_TICKS),
    ),
    "trail_percent above the limit": (
        {**MARKET, "order_type": "trailing_stop", "trail_percent_bps": MAX_TRAIL_BPS + 1},
        range_message("trail_percent_bps", MAX_TRAIL_BPS + 1, MAX_TRAIL_BPS),
    ),
    "limit without limit_price": (
        {"limit_price": None},
        "limit_price is required for limit and stop_limit orders",
    ),
    "stop_limit without limit_price": (
        {"order_type": "stop_limit", "limit_price": None, "stop_price": 10_000},
        "limit_price is required for limit and stop_limit orders",
    ),
    "market with limit_price": (
        {"order_type": "market"},
        "limit_price is not allowed for market orders",
    ),
    "stop without stop_price": (
        {**MARKET, "order_type": "stop"},
        "stop_price is required for stop and stop_limit orders",
    ),
    "stop_limit without stop_price": (
        {"order_type": "stop_limit"},
        "stop_price is required for stop and stop_limit orders",
    ),
    "limit with stop_price": ({"stop_price": 10_000}, "stop_price is not allowed for limit orders"),
    "trailing_stop without a trail": (
        {**MARKET, "order_type": "trailing_stop"},
        "trailing_stop orders need exactly one of trail_price and trail_percent",
    ),
    "trailing_stop with both trails": (
        {**MARKET, "order_type": "trailing_stop", "trail_price": 5, "trail_percent_bps": 5},
        "trailing_stop orders need exactly one of trail_price and trail_percent",
    ),
    "limit with trail_price": (
        {"trail_price": 5},
        "trail_price and trail_percent are only for trailing_stop orders",
    ),
    "limit with trail_percent": (
        {"trail_percent_bps": 5},
        "trail_price and trail_percent are only for trailing_stop orders",
    ),
    "extended hours market": (
        {**MARKET, "extended_hours": True},
        "extended_hours orders must be day limit orders",
    ),
    "extended hours gtc limit": (
        {"extended_hours": True, "time_in_force": "gtc"},
        "extended_hours orders must be day limit orders",
    ),
    "stop-loss limit without its stop": (
        {"stop_loss_limit": 9_000},
        "stop_loss.limit_price needs stop_loss.stop_price",
    ),
    "bracket stop-loss limit without its stop": (
        {**BRACKET, "stop_loss_stop": None, "stop_loss_limit": 9_000},
        "stop_loss.limit_price needs stop_loss.stop_price",
    ),
    "simple with take profit": (
        {"take_profit_limit": 11_000},
        "take_profit and stop_loss need order_class bracket, oco or oto",
    ),
    "simple with stop loss": (
        {"stop_loss_stop": 9_000},
        "take_profit and stop_loss need order_class bracket, oco or oto",
    ),
    "ioc bracket": ({**BRACKET, "time_in_force": "ioc"}, "bracket orders must be day or gtc"),
    "opg oto": (
        {"order_class": "oto", "stop_loss_stop": 9_000, "time_in_force": "opg"},
        "oto orders must be day or gtc",
    ),
    "extended hours bracket": (
        {**BRACKET, "extended_hours": True},
        "bracket orders cannot be extended_hours",
    ),
    "bracket without stop loss": (
        {**BRACKET, "stop_loss_stop": None},
        "bracket orders need both take_profit and stop_loss",
    ),
    "bracket without take profit": (
        {**BRACKET, "take_profit_limit": None},
        "bracket orders need both take_profit and stop_loss",
    ),
    "bracket with a stop_limit entry": (
        {**BRACKET, "order_type": "stop_limit", "stop_price": 10_100},
        "a bracket's entry must be a market or limit order",
    ),
    "oto with both exits": (
        {**BRACKET, "order_class": "oto"},
        "oto orders need exactly one of take_profit and stop_loss",
    ),
    "oto without an exit": (
        {"order_class": "oto"},
        "oto orders need exactly one of take_profit and stop_loss",
    ),
    "oto with a stop entry": (
        {
            **MARKET,
            "order_class": "oto",
            "order_type": "stop",
            "stop_price": 10_100,
            "stop_loss_stop": 9_000,
        },
        "an oto's entry must be a market or limit order",
    ),
    "oco without stop loss": (
        {"order_class": "oco", "take_profit_limit": 9_000},
        "oco orders need both take_profit and stop_loss",
    ),
    "oco without take profit": (
        {"order_class": "oco", "stop_loss_stop": 9_000},
        "oco orders need both take_profit and stop_loss",
    ),
    "market oco": (
        {**MARKET, "order_class": "oco", "take_profit_limit": 9_000, "stop_loss_stop": 11_000},
        "oco orders must have type limit",
    ),
    "buy bracket, take profit at the stop": (
        {**BRACKET, **MARKET, "take_profit_limit": 9_000},
        "take_profit.limit_price must be above stop_loss.stop_price",
    ),
    "sell bracket, take profit at the stop": (
        {**SELL_BRACKET, **MARKET, "take_profit_limit": 11_000},
        "take_profit.limit_price must be below stop_loss.stop_price",
    ),
    "sell oco, take profit at the stop": (
        {
            "side": "sell",
            "order_class": "oco",
            "take_profit_limit": 11_000,
            "stop_loss_stop": 11_000,
        },
        "take_profit.limit_price must be above stop_loss.stop_price",
    ),
    "buy oco, take profit at the stop": (
        {"order_class": "oco", "take_profit_limit": 9_000, "stop_loss_stop": 9_000},
        "take_profit.limit_price must be below stop_loss.stop_price",
    ),
    "buy bracket, take profit at the entry": (
        {**BRACKET, "take_profit_limit": 10_000},
        "take_profit.limit_price must be beyond the entry's limit_price",
    ),
    "buy bracket, stop loss at the entry": (
        {**BRACKET, "stop_loss_stop": 10_000},
        "stop_loss.stop_price must be beyond the entry's limit_price",
    ),
    "sell bracket, take profit above the entry": (
        {**SELL_BRACKET, "take_profit_limit": 10_001},
        "take_profit.limit_price must be beyond the entry's limit_price",
    ),
    "sell bracket, stop loss below the entry": (
        {**SELL_BRACKET, "stop_loss_stop": 9_999},
        "stop_loss.stop_price must be beyond the entry's limit_price",
    ),
    "buy oto, take profit at the entry": (
        {"order_class": "oto", "take_profit_limit": 10_000},
        "take_profit.limit_price must be beyond the entry's limit_price",
    ),
    "buy oto, stop loss at the entry": (
        {"order_class": "oto", "stop_loss_stop": 10_000},
        "stop_loss.stop_price must be beyond the entry's limit_price",
    ),
    "sell oto, stop loss below the entry": (
        {"side": "sell", "order_class": "oto", "stop_loss_stop": 9_999},
        "stop_loss.stop_price must be beyond the entry's limit_price",
    ),
}


@pytest.mark.parametrize(("fields", "message"), REJECTED.values(), ids=REJECTED.keys())
def test_malformed_orders_are_rejected_with_the_first_problem(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(BrokerError) as info:
        validate_order(req(**fields))
    assert info.value.code == ErrorCode.INVALID
    assert info.value.message == message


REPLACE_ACCEPTED: dict[str, tuple[ReplaceRequest, bool]] = {
    "nothing": (ReplaceRequest(), False),
    "smallest values": (ReplaceRequest(qty=1, limit_price=1, stop_price=1, trail=1), False),
    "largest qty": (ReplaceRequest(qty=MAX_ORDER_QTY), False),
    "largest prices": (ReplaceRequest(limit_price=PRICE_MAX, stop_price=PRICE_MAX), False),
    "largest trail in ticks": (ReplaceRequest(trail=MAX_TRAIL_TICKS), False),
    "a trail in ticks wider than any in bps": (ReplaceRequest(trail=MAX_TRAIL_BPS + 1), False),
    "largest trail in bps": (ReplaceRequest(trail=MAX_TRAIL_BPS), True),
    "client_order_id": (ReplaceRequest(client_order_id="new"), False),
}


@pytest.mark.parametrize(
    ("replace", "percent"), REPLACE_ACCEPTED.values(), ids=REPLACE_ACCEPTED.keys()
)
def test_replacements_within_the_limits_are_accepted(
    replace: ReplaceRequest, percent: bool
) -> None:
    validate_replace(replace, trail_percent=percent)


def replace_with(name: str, value: int) -> ReplaceRequest:
    fields: dict[str, Any] = {name: value}
    return ReplaceRequest(**fields)


REPLACE_REJECTED: dict[str, tuple[ReplaceRequest, bool, str]] = {
    **{
        f"{sign} {name}": (
            replace_with(name, value),
            False,
            f"{name} must be positive",
        )
        for name in ("qty", "limit_price", "stop_price", "trail")
        for sign, value in (("zero", 0), ("negative", -1))
    },
    "qty above the limit": (
        ReplaceRequest(qty=MAX_ORDER_QTY + 1),
        False,
        range_message("qty", MAX_ORDER_QTY + 1, MAX_ORDER_QTY),
    ),
    "limit_price above the limit": (
        ReplaceRequest(limit_price=MAX_PRICE_TICKS),
        False,
        range_message("limit_price", MAX_PRICE_TICKS, PRICE_MAX),
    ),
    "stop_price above the limit": (
        ReplaceRequest(stop_price=MAX_PRICE_TICKS),
        False,
        range_message("stop_price", MAX_PRICE_TICKS, PRICE_MAX),
    ),
    "trail in ticks above the limit": (
        ReplaceRequest(trail=MAX_TRAIL_TICKS + 1),
        False,
        range_message("trail", MAX_TRAIL_TICKS + 1, MAX_TRAIL_TICKS),
    ),
    "trail in bps above the limit": (
        ReplaceRequest(trail=MAX_TRAIL_BPS + 1),
        True,
        range_message("trail", MAX_TRAIL_BPS + 1, MAX_TRAIL_BPS),
    ),
}


@pytest.mark.parametrize(
    ("replace", "percent", "message"), REPLACE_REJECTED.values(), ids=REPLACE_REJECTED.keys()
)
def test_replacements_outside_the_limits_are_rejected(
    replace: ReplaceRequest, percent: bool, message: str
) -> None:
    with pytest.raises(BrokerError) as info:
        validate_replace(replace, trail_percent=percent)
    assert info.value.code == ErrorCode.INVALID
    assert info.value.message == message


# An exit at the entry's limit price is refused for sells as it is for buys (Alpaca refuses both:
# an exit must be at least a tick beyond the entry). The web ticket (validate.js) agrees; a
# mutmut run found the sell side accepted it (docs/testing.md).
SELL_EXIT_AT_ENTRY = {
    "sell bracket, take profit at the entry": {**SELL_BRACKET, "take_profit_limit": 10_000},
    "sell bracket, stop loss at the entry": {**SELL_BRACKET, "stop_loss_stop": 10_000},
    "sell oto, take profit at the entry": {
        "side": "sell",
        "order_class": "oto",
        "take_profit_limit": 10_000,
    },
}


@pytest.mark.parametrize("fields", SELL_EXIT_AT_ENTRY.values(), ids=SELL_EXIT_AT_ENTRY.keys())
def test_a_sell_exit_at_the_entry_price_is_refused_as_a_buy_exit_is(fields: dict[str, Any]) -> None:
    with pytest.raises(BrokerError, match="must be beyond the entry's limit_price"):
        validate_order(req(**fields))
