"""Commands the matching engine accepts: immutable msgspec structs, prices in ticks, qty in shares.

A command carries no sequence number or time of its own: the sequencer stamps both, and the
engine receives them as arguments of ``Engine.apply``.
"""

from __future__ import annotations

import msgspec

from tradingfloor.exchange.engine.types import (
    BandAction,
    OrdType,
    PegType,
    Phase,
    PostOnly,
    Side,
    STPMode,
    STPScope,
    TimeInForce,
)

__all__ = [
    "AddInstrument",
    "CancelOrder",
    "Command",
    "Halt",
    "MassCancel",
    "NewOrder",
    "OrderStatusRequest",
    "ReplaceOrder",
    "Resume",
    "Schedule",
    "SetKillSwitch",
    "SetPhase",
    "SetPriceBand",
    "SetReferencePrice",
    "Tick",
]

_CFG = {"frozen": True, "kw_only": True, "omit_defaults": True, "forbid_unknown_fields": True}


class Schedule(msgspec.Struct, **_CFG):
    """Trading-day schedule in nanoseconds after midnight UTC; each step must be later.

    pre_open: CLOSED -> PRE_OPEN; open_call: -> OPENING_AUCTION (on-open orders frozen);
    open: uncross -> CONTINUOUS; close_call: -> CLOSING_AUCTION; close: uncross -> CLOSED.
    """

    pre_open: int
    open_call: int
    open: int
    close_call: int
    close: int


class AddInstrument(msgspec.Struct, tag="add_instrument", **_CFG):
    symbol: str
    tick_size: str = "0.01"
    lot_size: int = 1
    currency: str = "USD"
    reference_price: int = 0
    band_bps: int = 0  # 0 disables price bands
    band_action: BandAction = BandAction.REJECT
    pause_ns: int = 300_000_000_000
    collar_bps: int = 500  # market order protection around the opposite best / reference
    phase: Phase = Phase.CONTINUOUS
    schedule: Schedule | None = None


class NewOrder(msgspec.Struct, tag="new_order", **_CFG):
    symbol: str
    member: str
    cl_ord_id: str
    side: Side
    qty: int
    ord_type: OrdType = OrdType.LIMIT
    price: int = 0  # limit price in ticks (limit-style types)
    stop_price: int = 0  # trigger price in ticks (stop / if-touched types)
    tif: TimeInForce = TimeInForce.DAY
    account: str = ""
    expire_ts: int = 0  # GTD expiry, ns since epoch
    display_qty: int = 0  # iceberg: shown part; 0 = all shown
    hidden: bool = False
    post_only: PostOnly = PostOnly.NONE
    peg: PegType = PegType.NONE
    peg_offset: int = 0  # ticks, added for buys' aggressiveness toward the opposite side
    trail_amount: int = 0  # ticks
    trail_bps: int = 0
    limit_offset: int = 0  # trailing stop-limit: limit = stop price -/+ offset (ticks)
    min_qty: int = 0
    aon: bool = False
    stp: STPMode = STPMode.NONE
    stp_scope: STPScope = STPScope.MEMBER


class CancelOrder(msgspec.Struct, tag="cancel", **_CFG):
    symbol: str
    member: str
    cl_ord_id: str = ""
    order_id: int = 0
    orig_cl_ord_id: str = ""


class ReplaceOrder(msgspec.Struct, tag="replace", **_CFG):
    symbol: str
    member: str
    cl_ord_id: str
    qty: int  # new total order quantity (filled part included), FIX OrderQty semantics
    order_id: int = 0
    orig_cl_ord_id: str = ""
    price: int = 0  # 0 keeps the current limit price
    stop_price: int = 0  # 0 keeps the current stop price


class MassCancel(msgspec.Struct, tag="mass_cancel", **_CFG):
    member: str
    cl_ord_id: str = ""
    account: str = ""  # "" = every account of the member
    symbol: str = ""  # "" = every symbol


class OrderStatusRequest(msgspec.Struct, tag="order_status", **_CFG):
    symbol: str
    member: str
    order_id: int = 0
    orig_cl_ord_id: str = ""


class SetPhase(msgspec.Struct, tag="set_phase", **_CFG):
    symbol: str
    phase: Phase


class Halt(msgspec.Struct, tag="halt", **_CFG):
    symbol: str
    reason: str = "operator"


class Resume(msgspec.Struct, tag="resume", **_CFG):
    """Ends a halt: back to the phase it interrupted (continuous re-opens by auction)."""

    symbol: str


class SetKillSwitch(msgspec.Struct, tag="kill_switch", **_CFG):
    member: str
    active: bool


class SetPriceBand(msgspec.Struct, tag="set_price_band", **_CFG):
    symbol: str
    band_bps: int
    band_action: BandAction = BandAction.REJECT
    pause_ns: int = 300_000_000_000


class SetReferencePrice(msgspec.Struct, tag="set_reference_price", **_CFG):
    symbol: str
    price: int


class Tick(msgspec.Struct, tag="tick", **_CFG):
    """Advances time only: fires schedule transitions, GTD expiries and pause ends."""


Command = (
    AddInstrument
    | NewOrder
    | CancelOrder
    | ReplaceOrder
    | MassCancel
    | OrderStatusRequest
    | SetPhase
    | Halt
    | Resume
    | SetKillSwitch
    | SetPriceBand
    | SetReferencePrice
    | Tick
)
