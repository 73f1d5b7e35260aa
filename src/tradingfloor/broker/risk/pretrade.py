"""Pre-trade risk of one customer order: the checks, the buying power, and the hold to reserve.

Pure functions over immutable snapshots (:class:`AccountRisk`, :class:`SymbolRisk`) taken by the
caller; no clock, no I/O, no float. Prices are integer ticks of the instrument, quantities
integer shares, cash integer minor units; ``notional = qty * price_ticks * tick_minor``.

:func:`check_order` runs the checks in this fixed, documented order and raises
:class:`~tradingfloor.broker.risk.codes.RiskReject` with the **first** one that fails:

1. KYC approved (``KYC_NOT_APPROVED``)
2. trading not blocked (``TRADING_BLOCKED``)
3. symbol not restricted (``RESTRICTED_SYMBOL``)
4. quantity at most ``max_order_qty`` (``MAX_ORDER_QTY``)
5. limit and stop prices within ``collar_bps`` of the last trade, skipped without a last trade
   (``PRICE_COLLAR``)
6. short rules: in a cash account a sell may not exceed the long position less the shares
   already committed to open sells (``INSUFFICIENT_QTY`` when there is a long position,
   ``SHORT_NOT_ALLOWED`` when there is none)
7. position limit: position + open orders on the order's side + this order stays within
   ``max_position_qty`` shares on that side (``POSITION_LIMIT``)
8. notional at most ``max_order_notional`` (``MAX_ORDER_NOTIONAL``; an order with no price to
   value it against is rejected here with ``NO_REFERENCE_PRICE``)
9. pattern day trader protection (``PATTERN_DAY_TRADER``): only with ``pdt_enabled``, in a
   margin account with equity below ``pdt_min_equity``, for an order that reduces shares opened
   today, when the account already has ``pdt_max_day_trades`` day trades in the window
10. the hold fits in the buying power (``INSUFFICIENT_BUYING_POWER``)

Price basis of an order (the highest price it can be expected to execute at):

* buy limit / stop-limit: the limit price (a buy never executes above it);
* sell limit: the higher of the limit price and the best bid; sell stop-limit: the higher of
  the limit and the stop price;
* stop and trailing stop: the stop price (a trailing stop without one: the reference price),
  with the market-order buffer;
* market: the reference price with the market-order buffer; the reference is the best ask for
  a buy and the best bid for a sell, else the last trade.

The hold reserves the notional at the price basis (buffer applied, rounded up to a whole minor
unit) for the part of the order that opens or increases a position; the part that closes an
existing position (a sell of a long, a buy covering a short; shares not already being closed by
open orders on the same side) reserves nothing, since closing frees buying power.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tradingfloor.broker.risk.codes import RiskCode, RiskReject

__all__ = [
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

BPS = 10_000
"""Basis points in one (100%)."""

ACCOUNT_TYPES = frozenset({"cash", "margin"})
KYC_STATUSES = frozenset({"pending", "approved", "rejected"})
SIDES = frozenset({"buy", "sell"})
ORDER_TYPES = frozenset({"market", "limit", "stop", "stop_limit", "trailing_stop"})
_NEEDS_LIMIT = frozenset({"limit", "stop_limit"})
_NEEDS_STOP = frozenset({"stop", "stop_limit"})
_MINOR_DIGITS = 2  # minor units per major unit = 10**2 (cents) in messages


def _money(minor: int) -> str:
    return f"{Decimal(minor).scaleb(-_MINOR_DIGITS):.{_MINOR_DIGITS}f}"


def _percent(bps: int) -> str:
    return f"{Decimal(bps).scaleb(-2):.2f}"


def _require_non_negative(owner: object, **values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{type(owner).__name__}.{name} must be an int >= 0, got {value!r}")


def _require_price(owner: object, name: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
        raise ValueError(f"{type(owner).__name__}.{name} must be a positive int, got {value!r}")


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The broker's limits for one account (defaults are the house limits)."""

    max_position_qty: int = 5_000
    max_order_qty: int = 10_000
    max_order_notional: int = 100_000_000
    collar_bps: int = 1_000
    market_order_buffer_bps: int = 500
    margin_multiplier_bps: int = 20_000
    pdt_enabled: bool = False
    pdt_min_equity: int = 2_500_000
    pdt_max_day_trades: int = 3

    def __post_init__(self) -> None:
        _require_non_negative(
            self,
            max_position_qty=self.max_position_qty,
            max_order_qty=self.max_order_qty,
            max_order_notional=self.max_order_notional,
            collar_bps=self.collar_bps,
            market_order_buffer_bps=self.market_order_buffer_bps,
            margin_multiplier_bps=self.margin_multiplier_bps,
            pdt_min_equity=self.pdt_min_equity,
            pdt_max_day_trades=self.pdt_max_day_trades,
        )
        if self.margin_multiplier_bps == 0:
            raise ValueError("RiskLimits.margin_multiplier_bps must be positive")


@dataclass(frozen=True, slots=True)
class AccountRisk:
    """What risk needs to know about the account (cash amounts in minor units).

    ``short_market_value`` is absolute; ``held`` is buying power already reserved by open
    orders; ``day_trade_count`` is the number of day trades in the PDT window (5 trading days).
    """

    account_type: str
    kyc_status: str
    trading_blocked: bool
    cash: int
    settled_cash: int
    equity: int
    long_market_value: int
    short_market_value: int
    held: int
    day_trade_count: int

    def __post_init__(self) -> None:
        if self.account_type not in ACCOUNT_TYPES:
            raise ValueError(f"account_type must be 'cash' or 'margin', got {self.account_type!r}")
        if self.kyc_status not in KYC_STATUSES:
            raise ValueError(f"unknown kyc_status {self.kyc_status!r}")
        _require_non_negative(
            self,
            long_market_value=self.long_market_value,
            short_market_value=self.short_market_value,
            held=self.held,
            day_trade_count=self.day_trade_count,
        )


@dataclass(frozen=True, slots=True)
class SymbolRisk:
    """What risk needs to know about the symbol and the account's exposure to it.

    Prices are ticks (``None`` when unknown); ``position_qty`` is signed; ``open_buy_qty`` and
    ``open_sell_qty`` are the unfilled shares of the account's open orders; ``opened_today_qty``
    is how many shares of the current position (on its side, so ``<= |position_qty|``) were
    opened in the current trading day.
    """

    symbol: str
    tick_minor: int
    last_price: int | None
    best_bid: int | None
    best_ask: int | None
    position_qty: int
    open_buy_qty: int
    open_sell_qty: int
    restricted: bool
    opened_today_qty: int

    def __post_init__(self) -> None:
        if not isinstance(self.tick_minor, int) or self.tick_minor <= 0:
            raise ValueError(f"tick_minor must be a positive int, got {self.tick_minor!r}")
        for name in ("last_price", "best_bid", "best_ask"):
            _require_price(self, name, getattr(self, name))
        _require_non_negative(
            self,
            open_buy_qty=self.open_buy_qty,
            open_sell_qty=self.open_sell_qty,
            opened_today_qty=self.opened_today_qty,
        )
        if self.opened_today_qty > abs(self.position_qty):
            raise ValueError("opened_today_qty cannot exceed the position's size")


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """The order to check: side, quantity, type and its prices (ticks).

    A limit or stop-limit order needs ``limit_price``; a stop or stop-limit order needs
    ``stop_price``; a trailing stop may give its current trigger as ``stop_price``.
    """

    side: str
    qty: int
    order_type: str
    limit_price: int | None = None
    stop_price: int | None = None

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise ValueError(f"side must be 'buy' or 'sell', got {self.side!r}")
        if not isinstance(self.qty, int) or isinstance(self.qty, bool) or self.qty <= 0:
            raise ValueError(f"qty must be a positive int, got {self.qty!r}")
        if self.order_type not in ORDER_TYPES:
            raise ValueError(f"unknown order_type {self.order_type!r}")
        _require_price(self, "limit_price", self.limit_price)
        _require_price(self, "stop_price", self.stop_price)
        if self.order_type in _NEEDS_LIMIT and self.limit_price is None:
            raise ValueError(f"{self.order_type} order needs a limit_price")
        if self.order_type not in _NEEDS_LIMIT and self.limit_price is not None:
            raise ValueError(f"{self.order_type} order takes no limit_price")
        if self.order_type in _NEEDS_STOP and self.stop_price is None:
            raise ValueError(f"{self.order_type} order needs a stop_price")
        if self.order_type in ("market", "limit") and self.stop_price is not None:
            raise ValueError(f"{self.order_type} order takes no stop_price")


def buying_power(account: AccountRisk, limits: RiskLimits) -> int:
    """Buying power in minor units, floored at 0.

    Cash account: ``settled_cash - held`` (no margin; unsettled sale proceeds excluded).
    Margin account: ``equity * multiplier - (long_market_value + short_market_value) - held``,
    i.e. Reg T 50% initial margin at the default 2x multiplier (the product is floored).
    """
    if account.account_type == "cash":
        value = account.settled_cash - account.held
    else:
        value = (
            account.equity * limits.margin_multiplier_bps // BPS
            - account.long_market_value
            - account.short_market_value
            - account.held
        )
    return max(0, value)


def regt_buying_power(account: AccountRisk, limits: RiskLimits) -> int:
    """Alpaca's ``regt_buying_power``: here the same as :func:`buying_power` (no day-trading BP)."""
    return buying_power(account, limits)


def non_marginable_buying_power(account: AccountRisk, limits: RiskLimits) -> int:
    """Buying power for securities that cannot be bought on margin (paid in full).

    Cash account: the buying power. Margin account: the buying power divided by the multiplier
    (the excess equity), floored.
    """
    value = buying_power(account, limits)
    if account.account_type == "cash":
        return value
    return value * BPS // limits.margin_multiplier_bps


def _price_basis(order: OrderIntent, sym: SymbolRisk) -> tuple[int, bool]:
    """The price an order is valued at and whether the market-order buffer applies to it."""
    buy = order.side == "buy"
    limit, stop = order.limit_price, order.stop_price
    if limit is not None:  # limit or stop-limit (OrderIntent guarantees the fields)
        if buy:
            return limit, False
        if stop is not None:
            return max(limit, stop), False
        if sym.best_bid is not None:
            return max(limit, sym.best_bid), False
        return limit, False
    if stop is not None:  # stop, or a trailing stop with its current trigger
        return stop, True
    reference = sym.best_ask if buy else sym.best_bid
    if reference is None:
        reference = sym.last_price
    if reference is None:
        raise RiskReject(
            RiskCode.NO_REFERENCE_PRICE, f"{order.order_type} {order.side} {sym.symbol}"
        )
    return reference, True


def order_notional(order: OrderIntent, sym: SymbolRisk) -> int:
    """Notional of the whole order in minor units at its price basis (without the buffer).

    Raises ``RiskReject(NO_REFERENCE_PRICE)`` for a market order (or a trailing stop without a
    stop price) when there is neither a quote on the relevant side nor a last trade.
    """
    price, _ = _price_basis(order, sym)
    return order.qty * price * sym.tick_minor


def _closing_qty(order: OrderIntent, sym: SymbolRisk) -> int:
    """Shares of the order that close the existing position (not already closed by open orders)."""
    if order.side == "sell":
        available = sym.position_qty - sym.open_sell_qty
    else:
        available = -sym.position_qty - sym.open_buy_qty
    return max(0, min(order.qty, available))


def order_hold(order: OrderIntent, sym: SymbolRisk, limits: RiskLimits) -> int:
    """Minor units of buying power to reserve for ``order`` (rounded up; 0 for a pure close).

    Only the part that opens or increases a position is reserved, at the price basis (see the
    module doc); stop, trailing-stop and market orders add ``market_order_buffer_bps``. Raises
    ``RiskReject(NO_REFERENCE_PRICE)`` when that part needs a reference price and has none.
    """
    opening = order.qty - _closing_qty(order, sym)
    if opening == 0:
        return 0
    price, buffered = _price_basis(order, sym)
    notional = opening * price * sym.tick_minor
    if not buffered:
        return notional
    return -(-notional * (BPS + limits.market_order_buffer_bps) // BPS)


def check_collar(order: OrderIntent, sym: SymbolRisk, limits: RiskLimits) -> None:
    """Raise ``PRICE_COLLAR`` when a limit or stop price is beyond the collar around the last
    trade (no check without one). ``check_order`` runs it; a contingent order's exit legs are
    held to it too, at submission."""
    last = sym.last_price
    if last is None:
        return
    for name, price in (("limit", order.limit_price), ("stop", order.stop_price)):
        if price is not None and abs(price - last) * BPS > limits.collar_bps * last:
            raise RiskReject(
                RiskCode.PRICE_COLLAR,
                f"{name} {_money(price * sym.tick_minor)} vs last {_money(last * sym.tick_minor)}"
                f", allowed +/-{_percent(limits.collar_bps)}%",
            )


def _check_short(order: OrderIntent, account: AccountRisk, sym: SymbolRisk) -> None:
    if order.side != "sell" or account.account_type != "cash":
        return
    available = max(0, sym.position_qty - sym.open_sell_qty)
    if order.qty <= available:
        return
    if sym.position_qty > 0:
        raise RiskReject(
            RiskCode.INSUFFICIENT_QTY, f"requested: {order.qty}, available: {available}"
        )
    raise RiskReject(RiskCode.SHORT_NOT_ALLOWED, f"no long position in {sym.symbol}")


def _check_position_limit(order: OrderIntent, sym: SymbolRisk, limits: RiskLimits) -> None:
    if order.side == "buy":
        projected = sym.position_qty + sym.open_buy_qty + order.qty
        exceeded = projected > limits.max_position_qty
    else:
        projected = sym.position_qty - sym.open_sell_qty - order.qty
        exceeded = -projected > limits.max_position_qty
    if exceeded:
        raise RiskReject(
            RiskCode.POSITION_LIMIT,
            f"would reach {projected} shares of {sym.symbol}, limit {limits.max_position_qty}",
        )


def _is_day_trade(order: OrderIntent, sym: SymbolRisk) -> bool:
    if sym.opened_today_qty <= 0:
        return False
    closes_long = sym.position_qty > 0 and order.side == "sell"
    closes_short = sym.position_qty < 0 and order.side == "buy"
    return closes_long or closes_short


def check_order(
    order: OrderIntent, account: AccountRisk, sym: SymbolRisk, limits: RiskLimits
) -> int:
    """Run the pre-trade checks in the documented order; return the hold in minor units.

    Raises :class:`RiskReject` with the first failing check (see the module doc).
    """
    if account.kyc_status != "approved":
        raise RiskReject(RiskCode.KYC_NOT_APPROVED, f"KYC status {account.kyc_status}")
    if account.trading_blocked:
        raise RiskReject(RiskCode.TRADING_BLOCKED)
    if sym.restricted:
        raise RiskReject(RiskCode.RESTRICTED_SYMBOL, sym.symbol)
    if order.qty > limits.max_order_qty:
        raise RiskReject(RiskCode.MAX_ORDER_QTY, f"{order.qty} > {limits.max_order_qty}")
    check_collar(order, sym, limits)
    _check_short(order, account, sym)
    _check_position_limit(order, sym, limits)
    notional = order_notional(order, sym)
    if notional > limits.max_order_notional:
        raise RiskReject(
            RiskCode.MAX_ORDER_NOTIONAL,
            f"{_money(notional)} > {_money(limits.max_order_notional)}",
        )
    if (
        limits.pdt_enabled
        and account.account_type == "margin"
        and account.equity < limits.pdt_min_equity
        and _is_day_trade(order, sym)
        and account.day_trade_count >= limits.pdt_max_day_trades
    ):
        raise RiskReject(
            RiskCode.PATTERN_DAY_TRADER,
            f"{account.day_trade_count} day trades in the window, equity "
            f"{_money(account.equity)} < {_money(limits.pdt_min_equity)}",
        )
    hold = order_hold(order, sym, limits)
    available = buying_power(account, limits)
    if hold > available:
        raise RiskReject(
            RiskCode.INSUFFICIENT_BUYING_POWER, f"needs {_money(hold)}, has {_money(available)}"
        )
    return hold
