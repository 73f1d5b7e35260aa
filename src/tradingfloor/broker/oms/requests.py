"""A customer's order request in integer units, and the checks that make it well formed.

The API edge turns JSON (Decimal prices) into an ``OrderRequest`` of ticks and shares; the
checks here enforce Alpaca's rules for which fields each order type and class needs, before
any risk check or state change. Failures raise ``BrokerError`` with code 42210000.
"""

from __future__ import annotations

from dataclasses import dataclass

from tradingfloor.broker.errors import BrokerError, ErrorCode
from tradingfloor.broker.oms.orders import OrderClass, OrderType, TimeInForce
from tradingfloor.core.limits import MAX_ORDER_QTY, MAX_PRICE_TICKS, MAX_TRAIL_BPS, MAX_TRAIL_TICKS

__all__ = [
    "MAX_CLIENT_ORDER_ID",
    "OrderRequest",
    "ReplaceRequest",
    "validate_order",
    "validate_replace",
]

MAX_CLIENT_ORDER_ID = 128


@dataclass(frozen=True, slots=True)
class OrderRequest:
    symbol: str
    side: str
    qty: int
    order_type: str = OrderType.MARKET
    time_in_force: str = TimeInForce.DAY
    limit_price: int | None = None
    stop_price: int | None = None
    trail_price: int | None = None
    trail_percent_bps: int | None = None
    extended_hours: bool = False
    client_order_id: str | None = None
    order_class: str = OrderClass.SIMPLE
    take_profit_limit: int | None = None
    stop_loss_stop: int | None = None
    stop_loss_limit: int | None = None


@dataclass(frozen=True, slots=True)
class ReplaceRequest:
    qty: int | None = None
    time_in_force: str | None = None
    limit_price: int | None = None
    stop_price: int | None = None
    trail: int | None = None  # new trail_price (ticks) or trail_percent (bps), by order
    client_order_id: str | None = None


def _invalid(message: str) -> BrokerError:
    return BrokerError(ErrorCode.INVALID, message)


def _positive(name: str, value: int | None) -> None:
    if value is not None and value <= 0:
        raise _invalid(f"{name} must be positive")


# The shared limits (core.limits) of each integer field, inclusive: checked on every order and
# every leg before anything is stored or routed.
_PRICE_FIELDS = (
    "limit_price",
    "stop_price",
    "take_profit_limit",
    "stop_loss_stop",
    "stop_loss_limit",
)
_LARGEST = {
    **dict.fromkeys(_PRICE_FIELDS, MAX_PRICE_TICKS - 1),
    "qty": MAX_ORDER_QTY,
    "trail_price": MAX_TRAIL_TICKS,
    "trail_percent_bps": MAX_TRAIL_BPS,
}


def _in_limits(req: OrderRequest | ReplaceRequest, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(req, name)
        if value is not None and value > _LARGEST[name]:
            raise _invalid(f"{name} {value} is out of range (at most {_LARGEST[name]})")


def validate_replace(req: ReplaceRequest, *, trail_percent: bool) -> None:
    """Raise ``BrokerError`` (42210000) when a replacement's values are outside the limits.

    ``trail_percent``: the order trails by a percentage, so ``trail`` is in bps, not ticks.
    """
    for name in ("qty", "limit_price", "stop_price", "trail"):
        _positive(name, getattr(req, name))
    _in_limits(req, ("qty", "limit_price", "stop_price"))
    largest = MAX_TRAIL_BPS if trail_percent else MAX_TRAIL_TICKS
    if req.trail is not None and req.trail > largest:
        raise _invalid(f"trail {req.trail} is out of range (at most {largest})")


def validate_order(req: OrderRequest) -> None:
    """Raise ``BrokerError`` (42210000) naming the first problem with the request's shape."""
    if req.side not in ("buy", "sell"):
        raise _invalid("side must be buy or sell")
    if req.qty <= 0:
        raise _invalid("qty must be a positive whole number of shares")
    if req.order_type not in set(OrderType):
        raise _invalid(f"unknown order type {req.order_type!r}")
    if req.time_in_force not in set(TimeInForce):
        raise _invalid(f"unknown time_in_force {req.time_in_force!r}")
    if req.order_class not in set(OrderClass):
        raise _invalid(f"unknown order_class {req.order_class!r}")
    if req.client_order_id is not None and not 0 < len(req.client_order_id) <= MAX_CLIENT_ORDER_ID:
        raise _invalid(f"client_order_id must be 1 to {MAX_CLIENT_ORDER_ID} characters")
    for name in ("limit_price", "stop_price", "trail_price", "trail_percent_bps"):
        _positive(name, getattr(req, name))
    for name in ("take_profit_limit", "stop_loss_stop", "stop_loss_limit"):
        _positive(name, getattr(req, name))
    _in_limits(req, ("qty", *_PRICE_FIELDS, "trail_price", "trail_percent_bps"))
    kind = req.order_type
    needs_limit = kind in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    needs_stop = kind in (OrderType.STOP, OrderType.STOP_LIMIT)
    if req.order_class != OrderClass.OCO and needs_limit != (req.limit_price is not None):
        raise _invalid(
            "limit_price is required for limit and stop_limit orders"
            if needs_limit
            else f"limit_price is not allowed for {kind} orders"
        )
    if needs_stop != (req.stop_price is not None):
        raise _invalid(
            "stop_price is required for stop and stop_limit orders"
            if needs_stop
            else f"stop_price is not allowed for {kind} orders"
        )
    trails = (req.trail_price is not None) + (req.trail_percent_bps is not None)
    if kind == OrderType.TRAILING_STOP and trails != 1:
        raise _invalid("trailing_stop orders need exactly one of trail_price and trail_percent")
    if kind != OrderType.TRAILING_STOP and trails:
        raise _invalid("trail_price and trail_percent are only for trailing_stop orders")
    if req.extended_hours and (kind != OrderType.LIMIT or req.time_in_force != TimeInForce.DAY):
        raise _invalid("extended_hours orders must be day limit orders")
    _validate_class(req)


def _validate_class(req: OrderRequest) -> None:
    has_tp = req.take_profit_limit is not None
    has_sl = req.stop_loss_stop is not None
    if req.stop_loss_limit is not None and not has_sl:
        raise _invalid("stop_loss.limit_price needs stop_loss.stop_price")
    cls = req.order_class
    if cls == OrderClass.SIMPLE:
        if has_tp or has_sl:
            raise _invalid("take_profit and stop_loss need order_class bracket, oco or oto")
        return
    if req.time_in_force not in (TimeInForce.DAY, TimeInForce.GTC):
        raise _invalid(f"{cls} orders must be day or gtc")
    if req.extended_hours:
        raise _invalid(f"{cls} orders cannot be extended_hours")
    if cls == OrderClass.BRACKET:
        if not (has_tp and has_sl):
            raise _invalid("bracket orders need both take_profit and stop_loss")
        if req.order_type not in (OrderType.MARKET, OrderType.LIMIT):
            raise _invalid("a bracket's entry must be a market or limit order")
    elif cls == OrderClass.OTO:
        if has_tp == has_sl:
            raise _invalid("oto orders need exactly one of take_profit and stop_loss")
        if req.order_type not in (OrderType.MARKET, OrderType.LIMIT):
            raise _invalid("an oto's entry must be a market or limit order")
    else:  # OCO: an exit pair, take-profit limit + stop-loss
        if not (has_tp and has_sl):
            raise _invalid("oco orders need both take_profit and stop_loss")
        if req.order_type != OrderType.LIMIT:
            raise _invalid("oco orders must have type limit")
    if has_tp and has_sl:
        tp = req.take_profit_limit or 0
        sl = req.stop_loss_stop or 0
        # the exits sell after a buy (take profit above the stop) and buy after a sell
        exit_is_sell = (req.side == "buy") != (cls == OrderClass.OCO)
        if exit_is_sell and tp <= sl:
            raise _invalid("take_profit.limit_price must be above stop_loss.stop_price")
        if not exit_is_sell and tp >= sl:
            raise _invalid("take_profit.limit_price must be below stop_loss.stop_price")
    if cls in (OrderClass.BRACKET, OrderClass.OTO) and req.limit_price is not None:
        entry = req.limit_price
        # strictly beyond the entry on the exit's side (above it for a buy's take profit, below
        # for a sell's), so an exit at the entry price is refused for buys and sells alike
        toward = 1 if req.side == "buy" else -1
        if has_tp and ((req.take_profit_limit or 0) - entry) * toward <= 0:
            raise _invalid("take_profit.limit_price must be beyond the entry's limit_price")
        if has_sl and (entry - (req.stop_loss_stop or 0)) * toward <= 0:
            raise _invalid("stop_loss.stop_price must be beyond the entry's limit_price")
