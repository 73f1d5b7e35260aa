"""The simulated participants' part of a projection checkpoint: typed msgpack records and the
checks a record passes before anything is restored from it.

A record holds what a freshly built crowd would know after replaying the journal up to the
checkpoint (the market view, and per participant its accepted open orders, position, cash,
fill and reject counts, kill-switch state and highest client order id seen), never what only
a crowd that has been trading knows (random generator draws, orders still on their way,
a VWAP slicer's parent order, a momentum trader's price samples, send counters, turn times).
So restoring a record and replaying the journal after it gives the same participants as
replaying the whole journal, which is the restart behaviour without checkpoints. Prices and
quantities are integers (ticks, shares); the tick size is the instrument's decimal string.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from decimal import Decimal
from typing import Final

import msgspec

from tradingfloor.exchange.checkpoint import CheckpointError, decode_versioned
from tradingfloor.exchange.engine.types import Phase, Side, TimeInForce

__all__ = [
    "SIM_STATE_VERSION",
    "MarketRecord",
    "OrderRecord",
    "ParticipantRecord",
    "SimState",
    "SymbolRecord",
    "decode_sim_state",
    "encode_sim_state",
    "sim_checkpoint_name",
]

SIM_STATE_VERSION: Final = 1
_CROWD_KEY_HEX: Final = 12


def sim_checkpoint_name(crowd: Sequence[tuple[str, str]]) -> str:
    """The part's name for a crowd of ``(member, kind)`` in crowd order: ``sim/1/<key>``.

    It carries the format version (as ``fix/1`` does) and a key of the crowd, so that a
    checkpoint of another format or another crowd (the demo restarted with other instruments)
    lacks this part and is passed over (an older one or a full replay is used) instead of being
    refused after other projections restored theirs, which would stop the start-up.
    """
    text = "\n".join(f"{member}\t{kind}" for member, kind in crowd)
    key = hashlib.sha256(text.encode()).hexdigest()[:_CROWD_KEY_HEX]
    return f"sim/{SIM_STATE_VERSION}/{key}"


class OrderRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One accepted open order as the engine's events describe it."""

    order_id: int
    symbol: str
    side: Side
    cl_ord_id: str  # the current one (after replaces)
    price: int
    qty: int  # total, filled part included
    cum_qty: int
    leaves: int
    tif: TimeInForce


class ParticipantRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What one participant learned from the venue's commands and events."""

    member: str
    kind: str
    last_cl_ord_number: int  # highest ``s<n>`` id seen in its commands and events
    killed: bool
    position: dict[str, int]  # shares per symbol (symbol order)
    cash: dict[str, int]  # ticks x shares per symbol (symbol order)
    fills: int
    filled_qty: int
    rejects: int
    orders: list[OrderRecord]  # order id order


class SymbolRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One ``SymbolView``."""

    symbol: str
    tick_size: Decimal
    lot_size: int
    phase: Phase
    bids: list[tuple[int, int]]  # (price, displayed shares), price order
    asks: list[tuple[int, int]]
    reference_price: int
    band_bps: int
    band_lo: int
    band_hi: int
    last_price: int
    high: int
    low: int
    volume: int
    notional: int
    trades: int


class MarketRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The ``MarketView``: every listed symbol (listing order) and the last event's time."""

    last_ts: int
    symbols: list[SymbolRecord]


class SimState(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The crowd's checkpoint part; participants in crowd order."""

    version: int
    market: MarketRecord
    participants: list[ParticipantRecord]


_encoder = msgspec.msgpack.Encoder()


def encode_sim_state(state: SimState) -> bytes:
    """The bytes of ``state`` (equal states give equal bytes)."""
    return _encoder.encode(state)


def decode_sim_state(data: bytes) -> SimState:
    """Read and check a record; ``CheckpointError`` if it is not one this code can use."""
    state = decode_versioned(data, SimState, SIM_STATE_VERSION, "simulated participants'")
    _check_market(state.market)
    members: set[str] = set()
    for participant in state.participants:
        if participant.member in members:
            raise CheckpointError(f"member {participant.member!r} appears twice")
        members.add(participant.member)
        _check_participant(participant)
    return state


def _check_market(market: MarketRecord) -> None:
    if market.last_ts < 0:
        raise CheckpointError("market: negative event time")
    seen: set[str] = set()
    for view in market.symbols:
        where = f"market {view.symbol!r}"
        if not view.symbol or view.symbol in seen:
            raise CheckpointError(f"{where}: empty or repeated symbol")
        seen.add(view.symbol)
        if not view.tick_size.is_finite() or view.tick_size <= 0 or view.lot_size <= 0:
            raise CheckpointError(f"{where}: tick and lot size must be positive")
        if not 1 <= view.band_lo <= view.band_hi:
            raise CheckpointError(f"{where}: price band {view.band_lo}..{view.band_hi}")
        for side in (view.bids, view.asks):
            prices = [price for price, _qty in side]
            if prices != sorted(set(prices)) or any(p < 1 or q <= 0 for p, q in side):
                raise CheckpointError(f"{where}: book levels must be distinct, sorted, positive")
        counters = (view.reference_price, view.band_bps, view.last_price, view.high, view.low)
        if min(*counters, view.volume, view.notional, view.trades) < 0:
            raise CheckpointError(f"{where}: negative price or counter")


def _check_participant(p: ParticipantRecord) -> None:
    where = f"participant {p.member!r}"
    if not p.member or not p.kind:
        raise CheckpointError(f"{where}: member and kind must not be empty")
    if min(p.last_cl_ord_number, p.fills, p.filled_qty, p.rejects) < 0:
        raise CheckpointError(f"{where}: negative id or counter")
    previous = 0
    for order in p.orders:
        if order.order_id <= previous:
            raise CheckpointError(f"{where}: order ids must be positive, distinct and in order")
        previous = order.order_id
        if not order.symbol or not order.cl_ord_id:
            raise CheckpointError(f"{where}: order {order.order_id} lacks symbol or client id")
        if order.price < 1 or min(order.qty, order.cum_qty, order.leaves) < 0:
            raise CheckpointError(f"{where}: order {order.order_id} price or quantities")
