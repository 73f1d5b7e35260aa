"""The matching engine: a pure state machine, ``apply(seq, ts, command) -> list[Event]``.

It reads no clock, draws no random number, does no I/O and uses no float: the sequencer's
``seq`` and ``ts`` are its only inputs besides the command, so replaying a journal reproduces
the same events byte for byte. Rules for every order type and phase are in docs/engine.md.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable
from typing import Any

import msgspec

from tradingfloor.exchange.engine.clids import ClOrdIdWindow
from tradingfloor.exchange.engine.commands import (
    AddInstrument,
    CancelOrder,
    Command,
    Halt,
    MassCancel,
    NewOrder,
    OrderStatusRequest,
    ReplaceOrder,
    Resume,
    Schedule,
    SetKillSwitch,
    SetPhase,
    SetPriceBand,
    SetReferencePrice,
    Tick,
)
from tradingfloor.exchange.engine.core import (
    MAX_CASCADE,
    MAX_ORDER_QTY,
    MAX_PRICE_TICKS,
    EngineInvariantError,
    Rejection,
)
from tradingfloor.exchange.engine.events import (
    Event,
)
from tradingfloor.exchange.engine.instrument import NO_TIMER, Instrument
from tradingfloor.exchange.engine.order import (
    LOC_AUCTION,
    LOC_BOOK,
    LOC_HELD,
    LOC_STOP,
    Order,
)
from tradingfloor.exchange.engine.orders import OrderHandlers
from tradingfloor.exchange.engine.state import SNAPSHOT_VERSION, order_from_state, order_state
from tradingfloor.exchange.engine.types import (
    PEG_NONE,
    TIF_GTD,
    BandAction,
    Phase,
)

__all__ = ["MAX_CASCADE", "MAX_ORDER_QTY", "MAX_PRICE_TICKS", "Engine", "EngineInvariantError"]


class Engine(OrderHandlers):
    """All instruments of one venue and their books. See module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._handlers: dict[type[Any], Callable[[Any], None]] = {
            NewOrder: self._on_new_order,
            CancelOrder: self._on_cancel,
            ReplaceOrder: self._on_replace,
            MassCancel: self._on_mass_cancel,
            OrderStatusRequest: self._on_status,
            AddInstrument: self._on_add_instrument,
            SetPhase: self._on_set_phase,
            Halt: self._on_halt,
            Resume: self._on_resume,
            SetKillSwitch: self._on_kill_switch,
            SetPriceBand: self._on_price_band,
            SetReferencePrice: self._on_reference_price,
            Tick: self._on_tick,
        }

    def apply(self, seq: int, ts: int, cmd: Command) -> list[Event]:
        """Apply one sequenced command and return the events it caused, in order."""
        if seq <= self.last_seq:
            raise EngineInvariantError(f"command seq {seq} after {self.last_seq}")
        if ts < self._ts:
            raise EngineInvariantError(f"command ts {ts} before {self._ts}")
        self.last_seq = seq
        self._ts = ts
        out: list[Event] = []
        self._out = out
        if ts >= self._next_timer:
            self._fire_timers()
        try:
            self._handlers[type(cmd)](cmd)
        except Rejection as rej:
            self._reject(cmd, rej.code, rej.order_id)
        if self._touched:
            self._settle()
        if self._dirty:
            self._flush_levels()
        return out

    def instrument(self, symbol: str) -> Instrument:
        return self.instruments[symbol]

    def phase(self, symbol: str) -> Phase:
        return self.instruments[symbol].phase

    def last_trade_price(self, symbol: str) -> int:
        return self.instruments[symbol].last_price

    def l1(self, symbol: str) -> tuple[int, int, int, int]:
        """(bid, bid size, ask, ask size) of displayed interest; zeros for an empty side."""
        book = self.instruments[symbol].book
        bid, bid_size = book.bids.best_displayed()
        ask, ask_size = book.asks.best_displayed()
        return bid, bid_size, ask, ask_size

    def l2(
        self, symbol: str, depth: int = 20
    ) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        book = self.instruments[symbol].book
        return book.bids.depth(depth), book.asks.depth(depth)

    def l3(
        self, symbol: str
    ) -> tuple[list[tuple[int, int, int, str]], list[tuple[int, int, int, str]]]:
        book = self.instruments[symbol].book
        return book.l3(True), book.l3(False)

    def snapshot(self) -> bytes:
        """Canonical encoding of the complete state; equal states give equal bytes."""
        instruments = []
        for inst in self.instruments.values():
            placed: list[Order] = []
            for side in (inst.book.bids, inst.book.asks):
                for level in side.iter_levels():
                    placed.extend(level.orders())
            others = sorted(
                (o for o in self.orders.values() if o.symbol == inst.symbol and o.loc != LOC_BOOK),
                key=lambda o: o.order_id,
            )
            instruments.append(
                {
                    "symbol": inst.symbol,
                    "tick_size": inst.tick_size,
                    "lot_size": inst.lot_size,
                    "currency": inst.currency,
                    "collar_bps": inst.collar_bps,
                    "phase": inst.phase.value,
                    "schedule": inst.schedule,
                    "sched_next": inst.sched_next,
                    "sched_step": inst.sched_step,
                    "reference_price": inst.reference_price,
                    "band_bps": inst.band_bps,
                    "band_action": inst.band_action.value,
                    "pause_ns": inst.pause_ns,
                    "resume_at": inst.resume_at,
                    "halted_from": inst.halted_from.value,
                    "last_price": inst.last_price,
                    "volume": inst.volume,
                    "peg_ref": list(inst.peg_ref),
                    "orders": [order_state(o) for o in placed + others],
                }
            )
        state = {
            "version": SNAPSHOT_VERSION,
            "last_seq": self.last_seq,
            "event_seq": self.event_seq,
            "trade_seq": self.trade_seq,
            "ts": self._ts,
            "killed": sorted(self.killed),
            "used_clids": self.used_clids.state(),
            "instruments": instruments,
        }
        return msgspec.msgpack.encode(state)

    @classmethod
    def restore(cls, data: bytes) -> Engine:
        """Rebuild an engine from ``snapshot()`` bytes."""
        state = msgspec.msgpack.decode(data)
        if state.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported snapshot version {state.get('version')!r}")
        eng = cls()
        eng.last_seq = state["last_seq"]
        eng.event_seq = state["event_seq"]
        eng.trade_seq = state["trade_seq"]
        eng._ts = state["ts"]
        eng.killed = set(state["killed"])
        eng.used_clids = ClOrdIdWindow.restore(state["used_clids"])
        for st in state["instruments"]:
            schedule = msgspec.convert(st["schedule"], Schedule) if st["schedule"] else None
            inst = Instrument(
                st["symbol"],
                st["tick_size"],
                st["lot_size"],
                st["currency"],
                st["collar_bps"],
                Phase(st["phase"]),
                schedule,
            )
            inst.sched_next = st["sched_next"]
            inst.sched_step = st["sched_step"]
            inst.reference_price = st["reference_price"]
            inst.set_band(st["band_bps"], BandAction(st["band_action"]), st["pause_ns"])
            inst.resume_at = st["resume_at"]
            inst.halted_from = Phase(st["halted_from"])
            inst.last_price = st["last_price"]
            inst.volume = st["volume"]
            inst.peg_ref = (st["peg_ref"][0], st["peg_ref"][1])
            eng.instruments[inst.symbol] = inst
            for row in st["orders"]:
                o, loc, visible = order_from_state(inst.symbol, row)
                eng.orders[o.order_id] = o
                eng.by_clid[(o.member, o.cl_ord_id)] = o
                if o.tif == TIF_GTD:
                    heapq.heappush(eng._expiries, (o.expire_ts, o.order_id))
                if o.peg != PEG_NONE:
                    inst.pegs[o.order_id] = o
                if loc == LOC_BOOK:
                    level = inst.book.side(o.is_buy).add(o)
                    if o.shows:
                        level.qty += visible - o.visible
                        o.visible = visible
                elif loc == LOC_STOP:
                    eng._add_stop(inst, o)
                elif loc == LOC_HELD:
                    o.loc = LOC_HELD
                    inst.held[o.order_id] = o
                elif loc == LOC_AUCTION:
                    o.loc = LOC_AUCTION
                    inst.auction_orders[o.order_id] = o
                else:
                    raise ValueError(f"order {o.order_id}: bad location {loc}")
        nxt = eng._expiries[0][0] if eng._expiries else NO_TIMER
        for inst in eng.instruments.values():
            nxt = min(nxt, inst.resume_at, inst.sched_next)
        eng._next_timer = nxt
        return eng

    def state_hash(self) -> str:
        """SHA-256 of the canonical snapshot: equal hashes mean equal engine states."""
        return hashlib.sha256(self.snapshot()).hexdigest()
