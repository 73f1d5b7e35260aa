"""Alpaca Trading API v2 JSON shapes of the broker's objects (orders, account, positions, assets).

Numbers are strings of exact decimals, as Alpaca sends them; times are RFC 3339 in UTC with
nanoseconds. Our venue is not in Alpaca's list of exchange codes, which its SDK enforces, so
assets and positions report ``ASSET_EXCHANGE`` and name the real venue in ``venue``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from tradingfloor.broker.accounts.state import AccountState
from tradingfloor.broker.instruments import ASSET_NAMESPACE, Instrument
from tradingfloor.broker.oms.orders import BrokerOrder, OrderClass, OrderType
from tradingfloor.broker.portfolio.position import Position
from tradingfloor.broker.risk.pretrade import (
    non_marginable_buying_power,
    regt_buying_power,
)
from tradingfloor.broker.service import Broker, TradeUpdate
from tradingfloor.core.units import from_ticks

__all__ = [
    "ASSET_EXCHANGE",
    "account_json",
    "asset_json",
    "iso",
    "money",
    "order_json",
    "position_json",
    "trade_update_json",
]

ASSET_EXCHANGE: Final = "OTC"
_CENT: Final = Decimal("0.01")


def _plain(value: Decimal) -> str:
    """At most four decimals, trailing zeros dropped, never in exponent form ("190", "1.5")."""
    return format(value.quantize(Decimal("0.0001")).normalize(), "f")


def iso(ns: int | None) -> str | None:
    """RFC 3339 in UTC with nanoseconds; the date-and-second part is formatted once a second."""
    if ns is None:
        return None
    seconds, rest = divmod(ns, 1_000_000_000)
    stamp = _seconds.get(seconds)
    if stamp is None:
        if len(_seconds) > 256:
            _seconds.clear()
        stamp = _seconds[seconds] = datetime.fromtimestamp(seconds, UTC).strftime(
            "%Y-%m-%dT%H:%M:%S"
        )
    return f"{stamp}.{rest:09d}Z"


_seconds: dict[int, str] = {}


def money(minor: int) -> str:
    return str((Decimal(minor) * _CENT).quantize(_CENT))


def _price(ticks: int | None, inst: Instrument | None) -> str | None:
    if ticks is None:
        return None
    tick = inst.tick_size if inst else _CENT
    return str(from_ticks(ticks, tick))


def _avg(notional_ticks: int, qty: int, inst: Instrument | None) -> str | None:
    if qty == 0:
        return None
    tick = inst.tick_size if inst else _CENT
    value = Decimal(notional_ticks) * tick / qty
    return _plain(value)


def order_json(broker: Broker, order: BrokerOrder, *, nested: bool = True) -> dict[str, Any]:
    inst = broker.instruments.get(order.symbol)
    legs: list[dict[str, Any]] | None = None
    if nested and order.order_class != OrderClass.SIMPLE and order.parent_id is None:
        found = broker.legs_of(order)
        legs = [order_json(broker, leg, nested=False) for leg in found] or None
    trail_percent = str(Decimal(order.trail_percent_bps) / 100) if order.trail_percent_bps else None
    stop_price, hwm = order.stop_price, None
    if order.order_type == OrderType.TRAILING_STOP and order.is_open:
        trail = broker.trails.get(order.venue_order_id)  # where the venue's stop is now
        if trail is not None:
            stop_price, hwm = trail.stop, trail.ref
    return {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "created_at": iso(order.created_at),
        "updated_at": iso(order.updated_at),
        "submitted_at": iso(order.submitted_at or order.created_at),
        "filled_at": iso(order.filled_at),
        "expired_at": iso(order.expired_at),
        "canceled_at": iso(order.canceled_at),
        "failed_at": iso(order.failed_at),
        "replaced_at": iso(order.replaced_at),
        "replaced_by": order.replaced_by,
        "replaces": order.replaces,
        "asset_id": inst.asset_id if inst else None,
        "symbol": order.symbol,
        "asset_class": "us_equity",
        "notional": None,
        "qty": str(order.qty),
        "filled_qty": str(order.filled_qty),
        "filled_avg_price": _avg(order.filled_notional, order.filled_qty, inst),
        "order_class": order.order_class,
        "order_type": order.order_type,
        "type": order.order_type,
        "side": order.side,
        "time_in_force": order.time_in_force,
        "limit_price": _price(order.limit_price, inst),
        "stop_price": _price(stop_price, inst),
        "status": order.status,
        "extended_hours": order.extended_hours,
        "legs": legs,
        "trail_percent": trail_percent,
        "trail_price": _price(order.trail_price, inst),
        "hwm": _price(hwm, inst),
        "reject_code": order.reject_code,
        "reject_reason": order.reject_reason,
    }


def account_json(broker: Broker, acct: AccountState, now: int) -> dict[str, Any]:
    risk = broker.account_risk(acct, now)
    equity = risk.equity
    bp = broker.buying_power(acct, now)
    margin = acct.account_type == "margin"
    status = {"approved": "ACTIVE", "pending": "APPROVAL_PENDING", "rejected": "REJECTED"}
    gross = risk.long_market_value + risk.short_market_value
    return {
        "id": acct.id,
        "account_number": acct.account_number,
        "status": status[acct.kyc_status] if acct.status == "ACTIVE" else acct.status,
        "crypto_status": "INACTIVE",
        "currency": acct.currency,
        "buying_power": money(bp),
        "regt_buying_power": money(regt_buying_power(risk, broker.limits)),
        "daytrading_buying_power": money(bp if margin else 0),
        "non_marginable_buying_power": money(non_marginable_buying_power(risk, broker.limits)),
        "cash": money(acct.cash),
        "settled_cash": money(risk.settled_cash),
        "accrued_fees": "0.00",
        "pending_transfer_out": "0.00",
        "pending_transfer_in": "0.00",
        "portfolio_value": money(equity),
        "pattern_day_trader": acct.pattern_day_trader,
        "trading_blocked": risk.trading_blocked,
        "transfers_blocked": False,
        "account_blocked": acct.status != "ACTIVE",
        "created_at": iso(acct.created_at),
        "trade_suspended_by_user": False,
        "multiplier": str(broker.limits.margin_multiplier_bps // 10_000) if margin else "1",
        "shorting_enabled": margin,
        "equity": money(equity),
        "last_equity": money(broker.last_equity(acct)),
        "long_market_value": money(risk.long_market_value),
        "short_market_value": money(-risk.short_market_value),
        "initial_margin": money(gross // 2 if margin else 0),
        "maintenance_margin": money(gross // 4 if margin else 0),
        "last_maintenance_margin": "0.00",
        "sma": "0.00",
        "daytrade_count": risk.day_trade_count,
        "held_for_orders": money(acct.held),
        "account_type": acct.account_type,
        "kyc_status": acct.kyc_status,
    }


def asset_json(inst: Instrument, *, restricted: bool = False) -> dict[str, Any]:
    return {
        "id": inst.asset_id,
        "class": "us_equity",
        "exchange": ASSET_EXCHANGE,
        "venue": inst.venue,
        "symbol": inst.symbol,
        "name": inst.symbol,
        "status": "active",
        "tradable": inst.tradable and not restricted,
        "marginable": True,
        "shortable": True,
        "easy_to_borrow": True,
        "fractionable": False,
        "min_order_size": str(inst.lot_size),
        "min_trade_increment": str(inst.lot_size),
        "price_increment": str(inst.tick_size),
        "maintenance_margin_requirement": 25,
        "attributes": [],
    }


def _pct(numerator: Decimal, denominator: Decimal) -> str:
    if denominator == 0:
        return "0"
    return str((numerator / denominator).quantize(Decimal("0.0000001")))


def _avg_entry(pos: Position, tick: Decimal) -> str:
    avg = pos.avg_entry_price()
    if not pos.qty:
        return "0"
    value = Decimal(avg.numerator) / Decimal(avg.denominator) * tick
    return _plain(value)


def position_json(broker: Broker, acct: AccountState, pos: Position) -> dict[str, Any]:
    inst = broker.instruments.get(pos.symbol)
    tick = inst.tick_size if inst else _CENT
    price = broker.mark_price(pos.symbol)
    current = price if price is not None else 0
    lastday = broker.prior_close.get(pos.symbol, current)
    held = sum(
        o.leaves_qty
        for o in broker.open_orders(acct.id)
        if o.symbol == pos.symbol and o.is_working and (o.side == "sell") == (pos.qty > 0)
    )
    value = Decimal(pos.market_value(current)) * tick
    cost = Decimal(pos.cost_basis) * tick
    unrealized = Decimal(pos.unrealized_pnl(current)) * tick
    intraday = Decimal(pos.intraday_pnl(current)) * tick
    day_basis = Decimal(pos.day_cost_basis) * tick
    return {
        "asset_id": inst.asset_id if inst else None,
        "symbol": pos.symbol,
        "exchange": ASSET_EXCHANGE,
        "asset_class": "us_equity",
        "asset_marginable": True,
        "avg_entry_price": _avg_entry(pos, tick),
        "qty": str(pos.qty),
        "qty_available": str(max(abs(pos.qty) - held, 0) * (1 if pos.qty > 0 else -1)),
        "side": "long" if pos.qty > 0 else "short",
        "market_value": str(value),
        "cost_basis": str(cost),
        "unrealized_pl": str(unrealized),
        "unrealized_plpc": _pct(unrealized, abs(cost)),
        "unrealized_intraday_pl": str(intraday),
        "unrealized_intraday_plpc": _pct(intraday, abs(day_basis)),
        "current_price": str(from_ticks(current, tick)),
        "lastday_price": str(from_ticks(lastday, tick)),
        "change_today": _pct(Decimal(current - lastday), Decimal(lastday)),
        "realized_pl": str(Decimal(pos.realized_pnl) * tick),
    }


def trade_update_json(broker: Broker, update: TradeUpdate) -> dict[str, Any]:
    inst = broker.instruments.get(update.order.symbol)
    data: dict[str, Any] = {
        "event": update.event,
        "order": order_json(broker, update.order, nested=False),
        "timestamp": iso(update.timestamp),
    }
    if update.execution_id is not None:  # Alpaca's execution ids are UUIDs
        data["execution_id"] = str(uuid.uuid5(ASSET_NAMESPACE, update.execution_id))
    if update.price is not None:
        data["price"] = _price(update.price, inst)
    if update.qty is not None:
        data["qty"] = str(update.qty)
    if update.position_qty is not None:
        data["position_qty"] = str(update.position_qty)
    return {"stream": "trade_updates", "data": data}
