"""Request bodies of the Alpaca-compatible trading API, and their conversion to integer units.

Decimal fields accept JSON strings or numbers (the SDK sends numbers); a price must be a whole
number of ticks and a quantity a whole number of shares, or the request is refused with 422.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tradingfloor.broker.errors import BrokerError, ErrorCode
from tradingfloor.broker.instruments import Instrument
from tradingfloor.broker.oms.requests import OrderRequest, ReplaceRequest
from tradingfloor.core.limits import MAX_ORDER_QTY, MAX_PRICE_TICKS, price_in_range
from tradingfloor.core.units import UnitError, to_ticks

__all__ = [
    "AccountConfigurationIn",
    "OrderIn",
    "ReplaceIn",
    "StopLossIn",
    "TakeProfitIn",
    "WatchlistIn",
    "WatchlistSymbolIn",
    "shares",
    "ticks",
    "to_order_request",
    "to_replace_request",
]

Num = Decimal | None


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TakeProfitIn(_Body):
    limit_price: Decimal


class StopLossIn(_Body):
    stop_price: Decimal
    limit_price: Num = None


class OrderIn(_Body):
    symbol: str = Field(min_length=1, max_length=16)
    qty: Num = None
    notional: Num = None
    side: Literal["buy", "sell"]
    type: Literal["market", "limit", "stop", "stop_limit", "trailing_stop"] = "market"
    time_in_force: Literal["day", "gtc", "opg", "cls", "ioc", "fok"] = "day"
    limit_price: Num = None
    stop_price: Num = None
    trail_price: Num = None
    trail_percent: Num = None
    extended_hours: bool = False
    client_order_id: str | None = Field(default=None, max_length=128)
    order_class: Literal["simple", "bracket", "oco", "oto", ""] = "simple"
    take_profit: TakeProfitIn | None = None
    stop_loss: StopLossIn | None = None


class ReplaceIn(_Body):
    qty: Num = None
    time_in_force: Literal["day", "gtc", "opg", "cls", "ioc", "fok"] | None = None
    limit_price: Num = None
    stop_price: Num = None
    trail: Num = None
    client_order_id: str | None = Field(default=None, max_length=128)


class AccountConfigurationIn(_Body):
    """PATCH /v2/account/configurations: the fields to change (null or absent: unchanged)."""

    dtbp_check: Literal["both", "entry", "exit"] | None = None
    fractional_trading: bool | None = None
    max_margin_multiplier: Literal["1", "2", "3", "4"] | None = None
    no_shorting: bool | None = None
    pdt_check: Literal["both", "entry", "exit"] | None = None
    suspend_trade: bool | None = None
    trade_confirm_email: Literal["all", "none"] | None = None
    ptp_no_exception_entry: bool | None = None
    max_options_trading_level: int | None = Field(default=None, ge=0, le=3)

    def changes(self) -> dict[str, object]:
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if v is not None}


class WatchlistIn(_Body):
    name: str = Field(min_length=1, max_length=64)
    symbols: list[str] | None = None


class WatchlistSymbolIn(_Body):
    symbol: str = Field(min_length=1, max_length=16)


def _invalid(message: str) -> BrokerError:
    return BrokerError(ErrorCode.INVALID, message)


def ticks(name: str, value: Decimal | None, inst: Instrument) -> int | None:
    if value is None:
        return None
    if not value.is_finite() or value <= 0:
        raise _invalid(f"{name} must be a positive price")
    if not price_in_range(value, inst.tick_size):
        largest = (MAX_PRICE_TICKS - 1) * inst.tick_size
        raise _invalid(f"{name} {value} is out of range (largest {largest})")
    try:
        return to_ticks(value, inst.tick_size)
    except UnitError:
        raise _invalid(
            f"{name} {value} is not a multiple of the tick size {inst.tick_size}"
        ) from None
    except ArithmeticError:
        raise _invalid(f"{name} {value} is out of range") from None


def shares(value: Decimal | None, inst: Instrument) -> int:
    if value is None:
        raise _invalid("qty is required (notional orders are not supported)")
    if not value.is_finite() or value <= 0:
        raise _invalid("qty must be a positive whole number of shares")
    if value > MAX_ORDER_QTY:
        raise _invalid(f"qty {value} is out of range (at most {MAX_ORDER_QTY})")
    if value != value.to_integral_value():
        raise _invalid("qty must be a positive whole number of shares")
    qty = int(value)
    if qty % inst.lot_size:
        raise _invalid(f"qty must be a multiple of the lot size {inst.lot_size}")
    return qty


def _percent_bps(value: Decimal | None) -> int | None:
    if value is None:
        return None
    if not value.is_finite() or value <= 0 or value >= 100:
        raise _invalid("trail_percent must be between 0 and 100")
    bps = value * 100
    if bps != bps.to_integral_value():
        raise _invalid("trail_percent has at most two decimals")
    return int(bps)


def to_order_request(body: OrderIn, inst: Instrument) -> OrderRequest:
    if body.notional is not None:
        raise _invalid("notional orders are not supported; give qty")
    return OrderRequest(
        symbol=inst.symbol,
        side=body.side,
        qty=shares(body.qty, inst),
        order_type=body.type,
        time_in_force=body.time_in_force,
        limit_price=ticks("limit_price", body.limit_price, inst),
        stop_price=ticks("stop_price", body.stop_price, inst),
        trail_price=ticks("trail_price", body.trail_price, inst),
        trail_percent_bps=_percent_bps(body.trail_percent),
        extended_hours=body.extended_hours,
        client_order_id=body.client_order_id or None,
        order_class=body.order_class or "simple",
        take_profit_limit=ticks(
            "take_profit.limit_price",
            body.take_profit.limit_price if body.take_profit else None,
            inst,
        ),
        stop_loss_stop=ticks(
            "stop_loss.stop_price", body.stop_loss.stop_price if body.stop_loss else None, inst
        ),
        stop_loss_limit=ticks(
            "stop_loss.limit_price", body.stop_loss.limit_price if body.stop_loss else None, inst
        ),
    )


def to_replace_request(
    body: ReplaceIn, inst: Instrument, *, trail_percent: bool = False
) -> ReplaceRequest:
    """``trail_percent``: the order trails by a percentage, so ``trail`` is one (in bps)."""
    trail = _percent_bps(body.trail) if trail_percent else ticks("trail", body.trail, inst)
    return ReplaceRequest(
        qty=shares(body.qty, inst) if body.qty is not None else None,
        time_in_force=body.time_in_force,
        limit_price=ticks("limit_price", body.limit_price, inst),
        stop_price=ticks("stop_price", body.stop_price, inst),
        trail=trail,
        client_order_id=body.client_order_id,
    )
