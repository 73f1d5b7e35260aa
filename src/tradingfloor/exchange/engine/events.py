"""Events the matching engine emits: immutable msgspec structs, each with its own sequence number.

``seq`` numbers every event of one engine without gaps; ``ts`` is the sequencer time of the
command that caused it. Prices are ticks and quantities shares, as in commands.
"""

from __future__ import annotations

import msgspec

from tradingfloor.exchange.engine.types import (
    BandAction,
    CancelReason,
    OrdType,
    Phase,
    Side,
    TimeInForce,
)

__all__ = [
    "Accepted",
    "AuctionUncrossed",
    "Cancelled",
    "Event",
    "Expired",
    "InstrumentAdded",
    "InstrumentUpdated",
    "KillSwitchChanged",
    "LevelChanged",
    "OrderBooked",
    "OrderStatus",
    "OrderUnbooked",
    "PhaseChanged",
    "Rejected",
    "Replaced",
    "Repriced",
    "Trade",
    "Triggered",
]

_CFG = {"frozen": True, "gc": False}


class InstrumentAdded(msgspec.Struct, tag="instrument_added", **_CFG):
    seq: int
    ts: int
    symbol: str
    tick_size: str
    lot_size: int
    currency: str
    phase: Phase


class InstrumentUpdated(msgspec.Struct, tag="instrument_updated", **_CFG):
    seq: int
    ts: int
    symbol: str
    reference_price: int
    band_bps: int
    band_action: BandAction
    pause_ns: int


class Accepted(msgspec.Struct, tag="accepted", **_CFG):
    seq: int
    ts: int
    symbol: str
    order_id: int
    member: str
    account: str
    cl_ord_id: str
    side: Side
    ord_type: OrdType
    tif: TimeInForce
    qty: int
    price: int  # current limit price in ticks (0 for market / untriggered stop)
    stop_price: int


class Rejected(msgspec.Struct, tag="rejected", **_CFG):
    seq: int
    ts: int
    command: str  # the rejected command's type tag
    symbol: str
    member: str
    cl_ord_id: str
    order_id: int  # the referenced order, 0 if none
    code: int
    text: str


class Trade(msgspec.Struct, tag="trade", **_CFG):
    seq: int
    ts: int
    symbol: str
    trade_id: int
    price: int  # the maker's price (the uncross price in an auction)
    qty: int
    aggressor: str  # "buy" / "sell"; "" for auction trades
    maker_order_id: int
    taker_order_id: int
    maker_member: str
    taker_member: str
    maker_cl_ord_id: str
    taker_cl_ord_id: str
    maker_leaves: int
    taker_leaves: int
    buy_order_id: int
    sell_order_id: int


class Cancelled(msgspec.Struct, tag="cancelled", **_CFG):
    seq: int
    ts: int
    symbol: str
    order_id: int
    member: str
    cl_ord_id: str  # of the cancel request when a member cancelled, else of the order
    orig_cl_ord_id: str  # the order's own client order id
    cancelled_qty: int
    leaves_qty: int  # still live after this (only self-trade "decrement" leaves a remainder)
    reason: CancelReason


class Expired(msgspec.Struct, tag="expired", **_CFG):
    seq: int
    ts: int
    symbol: str
    order_id: int
    member: str
    cl_ord_id: str
    expired_qty: int


class Replaced(msgspec.Struct, tag="replaced", **_CFG):
    seq: int
    ts: int
    symbol: str
    order_id: int
    member: str
    cl_ord_id: str
    orig_cl_ord_id: str
    qty: int
    leaves_qty: int
    price: int
    stop_price: int
    priority_kept: bool


class Repriced(msgspec.Struct, tag="repriced", **_CFG):
    """A pegged order moved to a new price after the BBO moved (and lost time priority)."""

    seq: int
    ts: int
    symbol: str
    order_id: int
    member: str
    cl_ord_id: str
    price: int


class Triggered(msgspec.Struct, tag="triggered", **_CFG):
    """A stop / if-touched order was triggered and entered the book as market or limit."""

    seq: int
    ts: int
    symbol: str
    order_id: int
    member: str
    cl_ord_id: str
    trigger_price: int
    price: int  # limit price after triggering, 0 for market


class OrderBooked(msgspec.Struct, tag="booked", **_CFG):
    """A displayed slice of an order joined the back of its price level's queue.

    Sent when an order rests (new, re-queued by a replace or reprice, released into the closing
    call) and on every iceberg refill. Hidden and all-or-none orders are never booked. With
    ``Trade``, ``Cancelled``, ``Expired``, ``Replaced``, ``Repriced`` and ``OrderUnbooked`` it
    lets a consumer rebuild the order-by-order (L3) book from events alone.
    """

    seq: int
    ts: int
    symbol: str
    order_id: int
    member: str
    side: Side
    price: int
    qty: int  # displayed quantity


class OrderUnbooked(msgspec.Struct, tag="unbooked", **_CFG):
    """A displayed order left the book with no trade, cancel or expiry to say so.

    Sent when an on-close order returns to hold because the closing call ended early.
    """

    seq: int
    ts: int
    symbol: str
    order_id: int


class LevelChanged(msgspec.Struct, tag="level", **_CFG):
    """Aggregated displayed size at one price after a command; qty 0 removes the level."""

    seq: int
    ts: int
    symbol: str
    side: Side
    price: int
    qty: int
    orders: int


class PhaseChanged(msgspec.Struct, tag="phase", **_CFG):
    seq: int
    ts: int
    symbol: str
    phase: Phase
    reason: str


class AuctionUncrossed(msgspec.Struct, tag="auction", **_CFG):
    seq: int
    ts: int
    symbol: str
    price: int  # 0 when nothing crossed
    qty: int
    imbalance: int  # unmatched quantity at the uncross price (positive buy, negative sell)


class KillSwitchChanged(msgspec.Struct, tag="kill_switch", **_CFG):
    seq: int
    ts: int
    member: str
    active: bool


class OrderStatus(msgspec.Struct, tag="order_status", **_CFG):
    seq: int
    ts: int
    symbol: str
    order_id: int
    member: str
    cl_ord_id: str
    side: Side
    ord_type: OrdType
    qty: int
    cum_qty: int
    leaves_qty: int
    price: int
    stop_price: int
    status: str  # "new", "partially_filled", "pending_trigger", "pending_auction"


Event = (
    InstrumentAdded
    | InstrumentUpdated
    | Accepted
    | Rejected
    | Trade
    | Cancelled
    | Expired
    | Replaced
    | Repriced
    | Triggered
    | OrderBooked
    | OrderUnbooked
    | LevelChanged
    | PhaseChanged
    | AuctionUncrossed
    | KillSwitchChanged
    | OrderStatus
)
