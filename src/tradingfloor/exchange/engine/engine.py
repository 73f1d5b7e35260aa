"""The matching engine: a pure state machine, ``apply(seq, ts, command) -> list[Event]``.

It reads no clock, draws no random number, does no I/O and uses no float: the sequencer's
``seq`` and ``ts`` are its only inputs besides the command, so replaying a journal reproduces
the same events byte for byte. Rules for every order type and phase are in docs/engine.md.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from tradingfloor.exchange.engine.auction import uncross_price
from tradingfloor.exchange.engine.book import BookSide, Level
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
from tradingfloor.exchange.engine.events import (
    Accepted,
    AuctionUncrossed,
    Cancelled,
    Event,
    Expired,
    InstrumentAdded,
    InstrumentUpdated,
    KillSwitchChanged,
    LevelChanged,
    OrderStatus,
    PhaseChanged,
    Rejected,
    Replaced,
    Repriced,
    Trade,
    Triggered,
)
from tradingfloor.exchange.engine.instrument import NO_TIMER, NS_PER_DAY, Instrument
from tradingfloor.exchange.engine.order import (
    LOC_AUCTION,
    LOC_BOOK,
    LOC_DEAD,
    LOC_HELD,
    LOC_STOP,
    Order,
)
from tradingfloor.exchange.engine.reasons import Reject
from tradingfloor.exchange.engine.types import (
    BandAction,
    CancelReason,
    OrdType,
    PegType,
    Phase,
    PostOnly,
    Side,
    STPMode,
    STPScope,
    TimeInForce,
)

__all__ = ["MAX_CASCADE", "MAX_ORDER_QTY", "MAX_PRICE_TICKS", "Engine", "EngineInvariantError"]

MAX_ORDER_QTY = 1_000_000_000  # shares in one order
MAX_PRICE_TICKS = 1 << 48  # upper bound for any price in ticks
MAX_CASCADE = 100_000  # stop-trigger / peg-reprice rounds after one command before we give up
SNAPSHOT_VERSION = 1

_STOP_TYPES = frozenset(
    {
        OrdType.STOP,
        OrdType.STOP_LIMIT,
        OrdType.TRAILING_STOP,
        OrdType.TRAILING_STOP_LIMIT,
        OrdType.MARKET_IF_TOUCHED,
        OrdType.LIMIT_IF_TOUCHED,
    }
)
_TRAILING = frozenset({OrdType.TRAILING_STOP, OrdType.TRAILING_STOP_LIMIT})
_TOUCHED = frozenset({OrdType.MARKET_IF_TOUCHED, OrdType.LIMIT_IF_TOUCHED})
_NEEDS_LIMIT = frozenset({OrdType.LIMIT, OrdType.STOP_LIMIT, OrdType.LIMIT_IF_TOUCHED})
_NO_LIMIT = frozenset(
    {
        OrdType.MARKET,
        OrdType.STOP,
        OrdType.TRAILING_STOP,
        OrdType.TRAILING_STOP_LIMIT,
        OrdType.MARKET_TO_LIMIT,
        OrdType.MARKET_IF_TOUCHED,
    }
)
_IMMEDIATE = frozenset({TimeInForce.IOC, TimeInForce.FOK})
_PLAIN_TIF = frozenset({TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK})
_AUCTION_TIF = frozenset({TimeInForce.OPG, TimeInForce.CLS})
_SCHEDULE_STEPS = (
    Phase.PRE_OPEN,
    Phase.OPENING_AUCTION,
    Phase.CONTINUOUS,
    Phase.CLOSING_AUCTION,
    Phase.CLOSED,
)


class EngineInvariantError(RuntimeError):
    """An internal invariant broke: the engine state can no longer be trusted."""


class _Rejection(Exception):
    """Raised inside a handler before any state change; turned into a Rejected event."""

    def __init__(self, code: Reject, order_id: int = 0) -> None:
        super().__init__(code.text)
        self.code = code
        self.order_id = order_id


def _sched_times(s: Schedule) -> tuple[int, int, int, int, int]:
    return (s.pre_open, s.open_call, s.open, s.close_call, s.close)


class Engine:
    """All instruments of one venue and their books. See module docstring."""

    def __init__(self) -> None:
        self.last_seq = 0
        self.event_seq = 0
        self.trade_seq = 0
        self.instruments: dict[str, Instrument] = {}
        self.orders: dict[int, Order] = {}
        self.by_clid: dict[tuple[str, str], Order] = {}
        self.used_clids: dict[str, set[str]] = {}
        self.killed: set[str] = set()
        self._expiries: list[tuple[int, int]] = []  # heap of (expire_ts, order_id)
        self._next_timer = NO_TIMER
        # Per-command scratch state.
        self._ts = 0
        self._out: list[Event] = []
        self._dirty: dict[tuple[str, bool, int], BookSide] = {}
        self._touched: dict[str, Instrument] = {}
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

    # ------------------------------------------------------------------ entry point

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
        except _Rejection as rej:
            self._reject(cmd, rej.code, rej.order_id)
        if self._touched:
            self._settle()
        if self._dirty:
            self._flush_levels()
        return out

    # ------------------------------------------------------------------ views

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

    # ------------------------------------------------------------------ event helpers

    def _seq(self) -> int:
        self.event_seq += 1
        return self.event_seq

    def _reject(self, cmd: Command, code: Reject, order_id: int) -> None:
        self._out.append(
            Rejected(
                self._seq(),
                self._ts,
                cmd.__struct_config__.tag or "",  # type: ignore[arg-type]
                getattr(cmd, "symbol", ""),
                getattr(cmd, "member", ""),
                getattr(cmd, "cl_ord_id", ""),
                order_id or getattr(cmd, "order_id", 0),
                int(code),
                code.text,
            )
        )

    def _accepted(self, o: Order) -> None:
        self._out.append(
            Accepted(
                self._seq(),
                self._ts,
                o.symbol,
                o.order_id,
                o.member,
                o.account,
                o.cl_ord_id,
                o.side,
                o.ord_type,
                o.tif,
                o.qty,
                o.price,
                o.stop_price,
            )
        )

    def _mark(self, inst: Instrument, side: BookSide, price: int) -> None:
        self._dirty[(inst.symbol, side.is_buy, price)] = side

    def _flush_levels(self) -> None:
        ts = self._ts
        out = self._out
        for (symbol, is_buy, price), side in self._dirty.items():
            level = side.levels.get(price)
            qty, count = (level.qty, level.count) if level is not None else (0, 0)
            out.append(
                LevelChanged(
                    self._seq(), ts, symbol, Side.BUY if is_buy else Side.SELL, price, qty, count
                )
            )
        self._dirty = {}

    # ------------------------------------------------------------------ order lifecycle

    def _register(self, o: Order) -> None:
        self.orders[o.order_id] = o
        self.by_clid[(o.member, o.cl_ord_id)] = o
        self.used_clids.setdefault(o.member, set()).add(o.cl_ord_id)
        if o.tif == TimeInForce.GTD:
            heapq.heappush(self._expiries, (o.expire_ts, o.order_id))
            if o.expire_ts < self._next_timer:
                self._next_timer = o.expire_ts

    def _forget(self, o: Order) -> None:
        """Drop a finished order from the indexes (it is already out of every store)."""
        del self.orders[o.order_id]
        key = (o.member, o.cl_ord_id)
        if self.by_clid.get(key) is o:
            del self.by_clid[key]
        if o.peg != PegType.NONE:
            self.instruments[o.symbol].pegs.pop(o.order_id, None)
        o.loc = LOC_DEAD

    def _unplace(self, inst: Instrument, o: Order) -> None:
        """Take a live order out of whichever store holds it."""
        loc = o.loc
        if loc == LOC_BOOK:
            side = inst.book.bids if o.is_buy else inst.book.asks
            if o.shows:
                self._mark(inst, side, o.price)
            side.remove(o)
        elif loc == LOC_STOP:
            self._unstop(inst, o)
        elif loc == LOC_HELD:
            del inst.held[o.order_id]
        elif loc == LOC_AUCTION:
            del inst.auction_orders[o.order_id]
        o.loc = LOC_DEAD

    def _kill(
        self,
        inst: Instrument,
        o: Order,
        reason: CancelReason,
        request_clid: str = "",
    ) -> None:
        """Cancel the whole open quantity of ``o``."""
        qty = o.leaves
        self._unplace(inst, o)
        self._forget(o)
        self._out.append(
            Cancelled(
                self._seq(),
                self._ts,
                o.symbol,
                o.order_id,
                o.member,
                request_clid or o.cl_ord_id,
                o.cl_ord_id,
                qty,
                0,
                reason,
            )
        )

    def _expire(self, inst: Instrument, o: Order) -> None:
        qty = o.leaves
        self._unplace(inst, o)
        self._forget(o)
        self._out.append(
            Expired(self._seq(), self._ts, o.symbol, o.order_id, o.member, o.cl_ord_id, qty)
        )

    def _rest(self, inst: Instrument, o: Order) -> None:
        side = inst.book.bids if o.is_buy else inst.book.asks
        side.add(o)
        if o.shows:
            self._mark(inst, side, o.price)

    # ------------------------------------------------------------------ reference data

    def _on_add_instrument(self, cmd: AddInstrument) -> None:
        if cmd.symbol in self.instruments:
            raise _Rejection(Reject.DUPLICATE_SYMBOL)
        try:
            tick = Decimal(cmd.tick_size)
        except InvalidOperation:
            raise _Rejection(Reject.INVALID_INSTRUMENT) from None
        if (
            not cmd.symbol
            or not tick.is_finite()
            or tick <= 0
            or cmd.lot_size <= 0
            or cmd.reference_price < 0
            or cmd.band_bps < 0
            or cmd.band_bps >= 10_000
            or cmd.collar_bps < 0
            or cmd.pause_ns < 0
        ):
            raise _Rejection(Reject.INVALID_INSTRUMENT)
        if cmd.schedule is not None:
            times = _sched_times(cmd.schedule)
            if any(not 0 <= t < NS_PER_DAY for t in times) or list(times) != sorted(set(times)):
                raise _Rejection(Reject.INVALID_INSTRUMENT)
        inst = Instrument(
            cmd.symbol,
            cmd.tick_size,
            cmd.lot_size,
            cmd.currency,
            cmd.collar_bps,
            cmd.phase,
            cmd.schedule,
        )
        inst.reference_price = cmd.reference_price
        inst.set_band(cmd.band_bps, cmd.band_action, cmd.pause_ns)
        self.instruments[cmd.symbol] = inst
        if cmd.schedule is not None:
            # With a schedule the starting phase is the one the schedule is in right now.
            self._schedule_next(inst, self._ts)
            step = inst.sched_step
            inst.phase = _SCHEDULE_STEPS[step - 1] if step else Phase.CLOSED
        self._out.append(
            InstrumentAdded(
                self._seq(),
                self._ts,
                inst.symbol,
                inst.tick_size,
                inst.lot_size,
                inst.currency,
                inst.phase,
            )
        )
        self._instrument_updated(inst)

    def _instrument_updated(self, inst: Instrument) -> None:
        self._out.append(
            InstrumentUpdated(
                self._seq(),
                self._ts,
                inst.symbol,
                inst.reference_price,
                inst.band_bps,
                inst.band_action,
                inst.pause_ns,
            )
        )

    def _on_price_band(self, cmd: SetPriceBand) -> None:
        inst = self._inst(cmd.symbol)
        if not 0 <= cmd.band_bps < 10_000 or cmd.pause_ns < 0:
            raise _Rejection(Reject.INVALID_INSTRUMENT)
        inst.set_band(cmd.band_bps, cmd.band_action, cmd.pause_ns)
        self._instrument_updated(inst)

    def _on_reference_price(self, cmd: SetReferencePrice) -> None:
        inst = self._inst(cmd.symbol)
        if not 0 < cmd.price < MAX_PRICE_TICKS:
            raise _Rejection(Reject.INVALID_PRICE)
        inst.reference_price = cmd.price
        inst.recompute_band()
        self._instrument_updated(inst)

    def _inst(self, symbol: str) -> Instrument:
        inst = self.instruments.get(symbol)
        if inst is None:
            raise _Rejection(Reject.UNKNOWN_SYMBOL)
        return inst

    # ------------------------------------------------------------------ new orders

    def _on_new_order(self, cmd: NewOrder) -> None:
        inst = self._inst(cmd.symbol)
        if cmd.member in self.killed:
            raise _Rejection(Reject.KILL_SWITCH_ACTIVE)
        phase = inst.phase
        if phase == Phase.CLOSED:
            raise _Rejection(Reject.MARKET_CLOSED)
        if phase == Phase.HALTED:
            raise _Rejection(Reject.INSTRUMENT_HALTED)
        self._validate_order(inst, cmd)
        if cmd.cl_ord_id in self.used_clids.get(cmd.member, ()):
            raise _Rejection(Reject.DUPLICATE_CL_ORD_ID)

        ot = cmd.ord_type
        tif = cmd.tif
        in_call = inst.in_call()
        if in_call and (tif in _IMMEDIATE or ot == OrdType.PEGGED or ot == OrdType.MARKET_TO_LIMIT):
            raise _Rejection(Reject.WRONG_PHASE_FOR_TIF)
        if tif == TimeInForce.OPG and phase not in (Phase.PRE_OPEN, Phase.OPENING_AUCTION):
            raise _Rejection(Reject.WRONG_PHASE_FOR_TIF)

        price = cmd.price
        book = inst.book
        opp = book.asks if cmd.side == Side.BUY else book.bids
        is_buy = cmd.side == Side.BUY
        if ot == OrdType.PEGGED:
            price = self._peg_price_for(inst, is_buy, cmd.peg, cmd.peg_offset, cmd.price)
            if price <= 0:
                raise _Rejection(Reject.INVALID_PEG)
        elif cmd.post_only != PostOnly.NONE and not in_call:
            best = opp.best()
            if best is not None and (price >= best if is_buy else price <= best):
                if cmd.post_only == PostOnly.REJECT:
                    raise _Rejection(Reject.POST_ONLY_WOULD_CROSS)
                price = best - 1 if is_buy else best + 1
                if price <= 0:
                    raise _Rejection(Reject.POST_ONLY_WOULD_CROSS)
        if (
            ot in _NEEDS_LIMIT
            and inst.band_action == BandAction.REJECT
            and not inst.band_lo <= price <= inst.band_hi
        ):
            raise _Rejection(Reject.OUTSIDE_PRICE_BAND)
        if (
            (ot == OrdType.MARKET or ot == OrdType.MARKET_TO_LIMIT)
            and not in_call
            and tif != TimeInForce.CLS
            and opp.best() is None
        ):
            raise _Rejection(Reject.NO_LIQUIDITY)
        trail_ref = 0
        if ot in _TRAILING:
            trail_ref = inst.last_price or inst.reference_price
            if not trail_ref:
                raise _Rejection(Reject.NO_REFERENCE_PRICE)

        # Validation done: from here on the command changes state.
        o = Order(
            self.last_seq,
            cmd.symbol,
            cmd.member,
            cmd.account,
            cmd.cl_ord_id,
            cmd.side,
            ot,
            tif,
            cmd.qty,
            price,
            cmd.stop_price,
        )
        o.display_qty = cmd.display_qty
        o.hidden = cmd.hidden
        o.post_only = cmd.post_only
        o.peg = cmd.peg
        o.peg_offset = cmd.peg_offset
        o.cap = cmd.price if ot == OrdType.PEGGED else 0
        o.trail_amount = cmd.trail_amount
        o.trail_bps = cmd.trail_bps
        o.limit_offset = cmd.limit_offset
        o.min_qty = cmd.min_qty
        o.aon = cmd.aon
        o.stp = cmd.stp
        o.stp_scope = cmd.stp_scope
        o.expire_ts = cmd.expire_ts
        if ot in _TRAILING:
            o.trail_ref = trail_ref
            o.stop_price = self._trail_trigger(o)
        self._register(o)
        self._accepted(o)
        if inst.pegs or inst.stops_up or inst.stops_down or o.peg != PegType.NONE:
            self._touched[inst.symbol] = inst  # pegs may follow a new best price

        if ot in _STOP_TYPES:
            if inst.last_price and not in_call and self._stop_fires(o, inst.last_price):
                self._trigger(inst, o)
            else:
                self._add_stop(inst, o)
            return
        if tif == TimeInForce.CLS and phase != Phase.CLOSING_AUCTION:
            o.loc = LOC_HELD
            inst.held[o.order_id] = o
            return
        if ot == OrdType.PEGGED:
            inst.pegs[o.order_id] = o
        self._enter(inst, o, first_entry=True)

    def _validate_order(self, inst: Instrument, cmd: NewOrder) -> None:
        """Field checks that need no book state; raise _Rejection on the first failure."""
        qty = cmd.qty
        if not 0 < qty <= MAX_ORDER_QTY:
            raise _Rejection(Reject.INVALID_QUANTITY)
        if qty % inst.lot_size:
            raise _Rejection(Reject.INVALID_LOT)
        if (
            cmd.ord_type == OrdType.LIMIT
            and cmd.tif in _PLAIN_TIF
            and not (
                cmd.display_qty
                or cmd.hidden
                or cmd.min_qty
                or cmd.aon
                or cmd.stop_price
                or cmd.expire_ts
                or cmd.trail_amount
                or cmd.trail_bps
                or cmd.limit_offset
                or cmd.peg_offset
            )
            and cmd.peg == PegType.NONE
            and cmd.post_only == PostOnly.NONE
        ):
            # Fast path: a plain limit order needs only its price checked.
            if not 0 < cmd.price < MAX_PRICE_TICKS:
                raise _Rejection(Reject.INVALID_PRICE)
            return
        ot = cmd.ord_type
        tif = cmd.tif
        if ot in _NEEDS_LIMIT:
            if not 0 < cmd.price < MAX_PRICE_TICKS:
                raise _Rejection(Reject.INVALID_PRICE)
        elif ot in _NO_LIMIT:
            if cmd.price != 0:
                raise _Rejection(Reject.INVALID_ORDER_TYPE)
        elif not 0 <= cmd.price < MAX_PRICE_TICKS:  # pegged: optional limit cap
            raise _Rejection(Reject.INVALID_PRICE)
        if ot in _STOP_TYPES and ot not in _TRAILING:
            if not 0 < cmd.stop_price < MAX_PRICE_TICKS:
                raise _Rejection(Reject.INVALID_STOP_PRICE)
        elif cmd.stop_price != 0:
            raise _Rejection(Reject.INVALID_ORDER_TYPE)
        if ot in _TRAILING:
            if (cmd.trail_amount > 0) == (cmd.trail_bps > 0) or min(
                cmd.trail_amount, cmd.trail_bps
            ) < 0:
                raise _Rejection(Reject.INVALID_TRAILING)
            if cmd.limit_offset < 0 or (ot == OrdType.TRAILING_STOP and cmd.limit_offset):
                raise _Rejection(Reject.INVALID_TRAILING)
        elif cmd.trail_amount or cmd.trail_bps or cmd.limit_offset:
            raise _Rejection(Reject.INVALID_TRAILING)
        if (ot == OrdType.PEGGED) != (cmd.peg != PegType.NONE):
            raise _Rejection(Reject.INVALID_PEG)
        if cmd.peg_offset and ot != OrdType.PEGGED:
            raise _Rejection(Reject.INVALID_PEG)
        # Time in force.
        if tif == TimeInForce.GTD:
            if cmd.expire_ts <= self._ts:
                raise _Rejection(Reject.INVALID_EXPIRY)
        elif cmd.expire_ts:
            raise _Rejection(Reject.INVALID_EXPIRY)
        if tif in _AUCTION_TIF and ot not in (OrdType.MARKET, OrdType.LIMIT):
            raise _Rejection(Reject.INVALID_TIF)
        if ot in (OrdType.MARKET, OrdType.MARKET_TO_LIMIT) and tif in (
            TimeInForce.GTC,
            TimeInForce.GTD,
        ):
            raise _Rejection(Reject.INVALID_TIF)
        if ot == OrdType.MARKET_TO_LIMIT and tif in _AUCTION_TIF:
            raise _Rejection(Reject.INVALID_TIF)
        # Display, post-only, min qty, all-or-none.
        disp = cmd.display_qty
        if disp:
            if not 0 < disp < qty or disp % inst.lot_size:
                raise _Rejection(Reject.INVALID_DISPLAY_QTY)
            if cmd.hidden or cmd.aon or ot in _NO_LIMIT or tif in _IMMEDIATE:
                raise _Rejection(Reject.INVALID_COMBINATION)
        if cmd.hidden and (ot in _NO_LIMIT or tif in _IMMEDIATE):
            raise _Rejection(Reject.INVALID_COMBINATION)
        if cmd.post_only != PostOnly.NONE and (
            ot != OrdType.LIMIT or tif in _IMMEDIATE or tif in _AUCTION_TIF or cmd.aon
        ):
            raise _Rejection(Reject.INVALID_COMBINATION)
        if cmd.min_qty:
            if not 0 < cmd.min_qty <= qty:
                raise _Rejection(Reject.INVALID_MIN_QTY)
            if ot not in (OrdType.LIMIT, OrdType.MARKET) or tif in _AUCTION_TIF or cmd.aon:
                raise _Rejection(Reject.INVALID_COMBINATION)
        if cmd.aon and (ot not in (OrdType.LIMIT, OrdType.MARKET) or tif in _AUCTION_TIF):
            raise _Rejection(Reject.INVALID_COMBINATION)

    def _enter(self, inst: Instrument, o: Order, first_entry: bool) -> None:
        """Match ``o`` as an aggressor (continuous) or queue it for the auction (call phase)."""
        ot = o.ord_type
        is_market = ot == OrdType.MARKET or (ot == OrdType.MARKET_TO_LIMIT and not o.price)
        if inst.phase != Phase.CONTINUOUS:
            if is_market:
                o.loc = LOC_AUCTION
                inst.auction_orders[o.order_id] = o
            else:
                self._rest(inst, o)
            return
        book = inst.book
        opp = book.asks if o.is_buy else book.bids
        if is_market:
            best = opp.best()
            if best is None:
                self._kill(inst, o, CancelReason.NO_LIQUIDITY)
                return
            if ot == OrdType.MARKET_TO_LIMIT:
                limit = best
            else:
                collar = best * inst.collar_bps // 10_000
                limit = best + collar if o.is_buy else max(best - collar, 1)
        else:
            limit = o.price
        # Matching never goes past the band in reject mode (pause mode halts at the band).
        in_band = min(limit, inst.band_hi) if o.is_buy else max(limit, inst.band_lo)
        if inst.band_action == BandAction.REJECT:
            limit = in_band

        if o.aon or o.tif == TimeInForce.FOK or (first_entry and o.min_qty):
            all_or_none = o.aon or o.tif == TimeInForce.FOK
            need = o.leaves if all_or_none else o.min_qty
            if self._available(opp, o, in_band, need) < need:
                if o.tif == TimeInForce.FOK:
                    self._kill(inst, o, CancelReason.FOK)
                elif not all_or_none:
                    self._kill(inst, o, CancelReason.MIN_QTY)
                elif is_market:
                    self._kill(inst, o, CancelReason.MARKET_REMAINDER)
                elif o.tif == TimeInForce.IOC:
                    self._kill(inst, o, CancelReason.IOC)
                else:
                    self._rest(inst, o)  # an all-or-none order waits, undisplayed, for a match
                return

        first_trade = self.trade_seq + 1
        band_blocked = self._match(inst, o, opp, limit)
        if o.leaves == 0 or o.order_id not in self.orders:
            return  # filled, or cancelled by self-trade prevention
        if band_blocked:
            self._kill(inst, o, CancelReason.PRICE_BAND)
        elif o.tif == TimeInForce.IOC:
            self._kill(inst, o, CancelReason.IOC)
        elif o.tif == TimeInForce.FOK:
            self._kill(inst, o, CancelReason.FOK)
        elif ot == OrdType.MARKET_TO_LIMIT and self.trade_seq >= first_trade:
            # The remainder becomes a limit order at the first execution price.
            o.price = self._first_trade_price(first_trade)
            o.ord_type = OrdType.LIMIT
            self._rest(inst, o)
        elif is_market:
            self._kill(inst, o, CancelReason.MARKET_REMAINDER)
        else:
            self._rest(inst, o)

    def _first_trade_price(self, trade_id: int) -> int:
        for ev in self._out:
            if type(ev) is Trade and ev.trade_id == trade_id:
                return ev.price
        raise EngineInvariantError(f"trade {trade_id} not found in this command's events")

    def _stp_hit(self, taker: Order, maker: Order) -> bool:
        return maker.member == taker.member and (
            taker.stp_scope == STPScope.MEMBER or maker.account == taker.account
        )

    def _available(self, opp: BookSide, o: Order, limit: int, need: int) -> int:
        """Quantity ``o`` could execute now within ``limit``, counted up to ``need``."""
        total = 0
        stp = o.stp
        blocking = stp in (STPMode.CANCEL_NEWEST, STPMode.CANCEL_BOTH, STPMode.DECREMENT)
        for level in opp.iter_levels():
            if (level.price > limit) if o.is_buy else (level.price < limit):
                break
            for m in level.orders():
                if m.aon and m.leaves > o.leaves - total:
                    continue  # as in matching: an all-or-none maker needs our whole remainder
                if stp != STPMode.NONE and self._stp_hit(o, m):
                    if blocking:
                        return total
                    continue
                total += m.leaves
                if total >= need:
                    return total
        return total

    def _match(self, inst: Instrument, o: Order, opp: BookSide, limit: int) -> bool:
        """Execute ``o`` against ``opp`` in price-time priority up to ``limit``.

        Returns True when matching stopped at a price outside the band in reject mode (a
        resting order left outside a band that moved): the remainder must not rest.
        """
        is_buy = o.is_buy
        rank = 0
        while o.leaves > 0:
            price = opp.price_at(rank)
            if price is None or (price > limit if is_buy else price < limit):
                break
            if not inst.band_lo <= price <= inst.band_hi:
                if inst.band_action == BandAction.PAUSE:
                    self._pause(inst)
                    break
                return True
            level = opp.levels[price]
            stopped = self._match_level(inst, o, opp, level)
            if level.vis_head is None and level.hid_head is None:
                opp.drop_if_empty(level)
            else:
                rank += 1
            if stopped:
                break
        return False

    def _match_level(self, inst: Instrument, o: Order, opp: BookSide, level: Level) -> bool:
        """Fill ``o`` at one level; True when ``o`` was cancelled by self-trade prevention."""
        stp = o.stp
        for hidden_queue in (False, True):
            m = level.hid_head if hidden_queue else level.vis_head
            while m is not None and o.leaves > 0:
                nxt = m.next
                if m.aon and m.leaves > o.leaves:
                    m = nxt  # an all-or-none maker trades only with a large enough order
                    continue
                if stp != STPMode.NONE and self._stp_hit(o, m):
                    if stp == STPMode.CANCEL_NEWEST:
                        self._kill(inst, o, CancelReason.STP)
                        return True
                    if stp == STPMode.CANCEL_OLDEST:
                        self._kill(inst, m, CancelReason.STP)
                    elif stp == STPMode.CANCEL_BOTH:
                        self._kill(inst, m, CancelReason.STP)
                        self._kill(inst, o, CancelReason.STP)
                        return True
                    else:  # DECREMENT
                        if self._decrement(inst, o, m):
                            return True
                    m = nxt
                    continue
                if not hidden_queue:
                    qty = m.visible if m.visible < o.leaves else o.leaves
                else:
                    qty = m.leaves if m.leaves < o.leaves else o.leaves
                if self._fill(inst, o, m, level, opp, qty) and nxt is None:
                    nxt = m  # the refilled iceberg is now last in the queue: meet it again
                m = nxt
        return False

    def _decrement(self, inst: Instrument, o: Order, m: Order) -> bool:
        """Self-trade 'decrement': shrink both by the smaller size; True if ``o`` is done."""
        d = min(o.leaves, m.leaves)
        for victim in (m, o):
            if victim.leaves == d:
                self._kill(inst, victim, CancelReason.STP)
                continue
            victim.leaves -= d
            victim.qty -= d  # decrement cancels part of the order: its quantity shrinks
            level = victim.level
            if victim.loc == LOC_BOOK and victim.shows and level is not None:
                shown = victim.display_slice()
                level.qty += shown - victim.visible
                victim.visible = shown
                self._mark(inst, inst.book.side(victim.is_buy), victim.price)
            self._out.append(
                Cancelled(
                    self._seq(),
                    self._ts,
                    victim.symbol,
                    victim.order_id,
                    victim.member,
                    victim.cl_ord_id,
                    victim.cl_ord_id,
                    d,
                    victim.leaves,
                    CancelReason.STP,
                )
            )
        return o.order_id not in self.orders

    def _fill(
        self,
        inst: Instrument,
        taker: Order,
        maker: Order,
        level: Level,
        side: BookSide,
        qty: int,
    ) -> bool:
        """Execute ``qty`` at the maker's price; True if an iceberg maker was refilled."""
        price = level.price
        refilled = False
        maker.leaves -= qty
        maker.cum_qty += qty
        taker.leaves -= qty
        taker.cum_qty += qty
        if maker.shows:
            shown = qty if qty < maker.visible else maker.visible
            maker.visible -= shown
            level.qty -= shown
            self._mark(inst, side, price)
        if maker.leaves == 0:
            side.remove(maker)
            self._forget(maker)
        elif maker.shows and maker.visible == 0:
            # Iceberg refill: a fresh display slice joins the back of the displayed queue.
            level.unlink(maker)
            level.append(maker)
            refilled = True
        if taker.leaves == 0:
            self._forget(taker)
        inst.last_price = price
        inst.volume += qty
        self.trade_seq += 1
        buy, sell = (taker, maker) if taker.is_buy else (maker, taker)
        self._out.append(
            Trade(
                self._seq(),
                self._ts,
                inst.symbol,
                self.trade_seq,
                price,
                qty,
                str(taker.side),
                maker.order_id,
                taker.order_id,
                maker.member,
                taker.member,
                maker.cl_ord_id,
                taker.cl_ord_id,
                maker.leaves,
                taker.leaves,
                buy.order_id,
                sell.order_id,
            )
        )
        if inst.stops_up or inst.stops_down or inst.pegs:
            self._touched[inst.symbol] = inst  # stops follow the last price, pegs the BBO
        return refilled

    # ------------------------------------------------------------------ stops and pegs

    def _stop_fires(self, o: Order, last: int) -> bool:
        up = o.is_buy != (o.ord_type in _TOUCHED)  # buy stop / sell if-touched fire upward
        return last >= o.stop_price if up else last <= o.stop_price

    def _add_stop(self, inst: Instrument, o: Order) -> None:
        o.loc = LOC_STOP
        if o.is_buy != (o.ord_type in _TOUCHED):
            inst.stops_up.add((o.stop_price, o.order_id))
        else:
            inst.stops_down.add((-o.stop_price, o.order_id))
        if o.ord_type in _TRAILING:
            inst.trailing[o.order_id] = o

    def _unstop(self, inst: Instrument, o: Order) -> None:
        if o.is_buy != (o.ord_type in _TOUCHED):
            inst.stops_up.remove((o.stop_price, o.order_id))
        else:
            inst.stops_down.remove((-o.stop_price, o.order_id))
        inst.trailing.pop(o.order_id, None)

    def _trail_trigger(self, o: Order) -> int:
        ref = o.trail_ref
        offset = o.trail_amount or ref * o.trail_bps // 10_000
        return ref + offset if o.is_buy else max(ref - offset, 1)

    def _trigger(self, inst: Instrument, o: Order) -> None:
        """Turn a fired stop / if-touched order into a market or limit order and enter it."""
        ot = o.ord_type
        if ot == OrdType.TRAILING_STOP_LIMIT:
            o.price = (
                o.stop_price + o.limit_offset if o.is_buy else max(o.stop_price - o.limit_offset, 1)
            )
        o.loc = LOC_DEAD
        self._out.append(
            Triggered(
                self._seq(),
                self._ts,
                o.symbol,
                o.order_id,
                o.member,
                o.cl_ord_id,
                o.stop_price,
                o.price,
            )
        )
        if ot in (OrdType.STOP, OrdType.TRAILING_STOP, OrdType.MARKET_IF_TOUCHED):
            o.ord_type = OrdType.MARKET
        else:
            o.ord_type = OrdType.LIMIT
        self._enter(inst, o, first_entry=False)

    def _fire_stops(self, inst: Instrument) -> bool:
        """Trigger every stop the last price reached; True if any fired."""
        last = inst.last_price
        if not last:
            return False
        for o in sorted(inst.trailing.values(), key=lambda x: x.order_id):
            ref = o.trail_ref
            better = last < ref if o.is_buy else last > ref
            if better:
                self._unstop(inst, o)
                o.trail_ref = last
                o.stop_price = self._trail_trigger(o)
                self._add_stop(inst, o)
        fired: list[Order] = []
        up, down = inst.stops_up, inst.stops_down
        while up and up[0][0] <= last:
            fired.append(self.orders[up.pop(0)[1]])
        while down and -down[0][0] >= last:
            fired.append(self.orders[down.pop(0)[1]])
        if not fired:
            return False
        fired.sort(key=lambda x: x.order_id)
        for o in fired:
            inst.trailing.pop(o.order_id, None)
            o.loc = LOC_DEAD
        for o in fired:
            if o.order_id in self.orders and inst.phase == Phase.CONTINUOUS:
                self._trigger(inst, o)
            elif o.order_id in self.orders:
                self._add_stop(inst, o)  # trading stopped mid-cascade: wait for the next trade
        return True

    def _peg_reference(self, inst: Instrument) -> tuple[int, int]:
        """Best displayed bid/ask of non-pegged orders: what pegs follow.

        Pegs never chase pegs, and never reveal hidden or all-or-none interest.
        """
        out = []
        for side in (inst.book.bids, inst.book.asks):
            best = 0
            for level in side.iter_levels():
                if any(m.peg == PegType.NONE and m.shows for m in level.orders()):
                    best = level.price
                    break
            out.append(best)
        return out[0], out[1]

    def _peg_price_for(
        self, inst: Instrument, is_buy: bool, peg: PegType, offset: int, cap: int
    ) -> int:
        bid, ask = self._peg_reference(inst)
        if peg == PegType.PRIMARY:
            ref = bid if is_buy else ask
        elif peg == PegType.MARKET:
            ref = ask if is_buy else bid
        else:
            if not (bid and ask):
                return 0
            ref = (bid + ask) // 2 if is_buy else (bid + ask + 1) // 2
        if not ref:
            return 0
        price = ref + offset if is_buy else ref - offset
        opp = ask if is_buy else bid
        if opp:  # a peg stays passive against non-pegged interest
            price = min(price, opp - 1) if is_buy else max(price, opp + 1)
        if cap:
            price = min(price, cap) if is_buy else max(price, cap)
        return price if 0 < price < MAX_PRICE_TICKS else 0

    def _reprice_pegs(self, inst: Instrument) -> bool:
        ref = self._peg_reference(inst)
        if ref == inst.peg_ref:
            return False
        inst.peg_ref = ref
        moved = False
        for o in sorted(inst.pegs.values(), key=lambda x: x.order_id):
            if o.loc != LOC_BOOK:
                continue
            price = self._peg_price_for(inst, o.is_buy, o.peg, o.peg_offset, o.cap)
            if not price or price == o.price:
                continue
            self._unplace(inst, o)
            o.price = price
            self._out.append(
                Repriced(self._seq(), self._ts, o.symbol, o.order_id, o.member, o.cl_ord_id, price)
            )
            self._enter(inst, o, first_entry=False)
            moved = True
        return moved

    def _settle(self) -> None:
        """After a command: fire stops and reprice pegs until nothing moves."""
        for _ in range(MAX_CASCADE):
            changed = False
            for inst in list(self._touched.values()):
                if inst.phase != Phase.CONTINUOUS:
                    continue
                if inst.stops_up or inst.stops_down:
                    changed |= self._fire_stops(inst)
                if inst.pegs:
                    changed |= self._reprice_pegs(inst)
            if not changed:
                self._touched = {}
                return
        raise EngineInvariantError("stop/peg cascade did not settle")

    # ------------------------------------------------------------------ cancel, replace, status

    def _lookup(self, symbol: str, member: str, order_id: int, orig_cl_ord_id: str) -> Order:
        o = self.orders.get(order_id) if order_id else self.by_clid.get((member, orig_cl_ord_id))
        if o is None or o.symbol != symbol:
            raise _Rejection(Reject.UNKNOWN_ORDER)
        if o.member != member:
            raise _Rejection(Reject.NOT_OWNER, o.order_id)
        return o

    @staticmethod
    def _frozen(inst: Instrument, o: Order) -> bool:
        """On-open/on-close orders cannot change once their auction's call has begun."""
        return (o.tif == TimeInForce.OPG and inst.phase == Phase.OPENING_AUCTION) or (
            o.tif == TimeInForce.CLS and inst.phase == Phase.CLOSING_AUCTION
        )

    def _on_cancel(self, cmd: CancelOrder) -> None:
        inst = self._inst(cmd.symbol)
        o = self._lookup(cmd.symbol, cmd.member, cmd.order_id, cmd.orig_cl_ord_id)
        if self._frozen(inst, o):
            raise _Rejection(Reject.AUCTION_FROZEN, o.order_id)
        if inst.pegs:
            self._touched[inst.symbol] = inst
        self._kill(inst, o, CancelReason.USER, cmd.cl_ord_id)

    def _on_replace(self, cmd: ReplaceOrder) -> None:
        inst = self._inst(cmd.symbol)
        o = self._lookup(cmd.symbol, cmd.member, cmd.order_id, cmd.orig_cl_ord_id)
        oid = o.order_id
        if self._frozen(inst, o):
            raise _Rejection(Reject.AUCTION_FROZEN, oid)
        if o.loc == LOC_AUCTION or o.ord_type in _TRAILING or (o.peg != PegType.NONE and cmd.price):
            raise _Rejection(Reject.REPLACE_NOT_SUPPORTED, oid)
        if not 0 < cmd.qty <= MAX_ORDER_QTY:
            raise _Rejection(Reject.INVALID_QUANTITY, oid)
        if cmd.qty % inst.lot_size:
            raise _Rejection(Reject.INVALID_LOT, oid)
        if cmd.qty <= o.cum_qty:
            raise _Rejection(Reject.REPLACE_QTY_TOO_LOW, oid)
        if o.display_qty and o.display_qty >= cmd.qty:
            raise _Rejection(Reject.INVALID_DISPLAY_QTY, oid)
        if o.min_qty and o.min_qty > cmd.qty:
            raise _Rejection(Reject.INVALID_MIN_QTY, oid)
        has_limit = o.ord_type in _NEEDS_LIMIT
        if cmd.price and not has_limit:
            raise _Rejection(Reject.INVALID_ORDER_TYPE, oid)
        if not 0 <= cmd.price < MAX_PRICE_TICKS:
            raise _Rejection(Reject.INVALID_PRICE, oid)
        if cmd.stop_price and o.loc != LOC_STOP:
            raise _Rejection(Reject.INVALID_ORDER_TYPE, oid)
        if not 0 <= cmd.stop_price < MAX_PRICE_TICKS:
            raise _Rejection(Reject.INVALID_STOP_PRICE, oid)
        price = cmd.price or o.price
        if (
            has_limit
            and inst.band_action == BandAction.REJECT
            and not inst.band_lo <= price <= inst.band_hi
        ):
            raise _Rejection(Reject.OUTSIDE_PRICE_BAND, oid)
        if o.post_only != PostOnly.NONE and inst.phase == Phase.CONTINUOUS:
            best = inst.book.side(not o.is_buy).best()
            if best is not None and (price >= best if o.is_buy else price <= best):
                if o.post_only == PostOnly.REJECT:
                    raise _Rejection(Reject.POST_ONLY_WOULD_CROSS, oid)
                price = best - 1 if o.is_buy else best + 1
                if price <= 0:
                    raise _Rejection(Reject.POST_ONLY_WOULD_CROSS, oid)
        if cmd.cl_ord_id in self.used_clids.get(cmd.member, ()):
            raise _Rejection(Reject.DUPLICATE_CL_ORD_ID, oid)

        # Validation done: apply.
        if inst.pegs or inst.stops_up or inst.stops_down:
            self._touched[inst.symbol] = inst
        orig = o.cl_ord_id
        del self.by_clid[(o.member, orig)]
        o.cl_ord_id = cmd.cl_ord_id
        self.by_clid[(o.member, o.cl_ord_id)] = o
        self.used_clids[o.member].add(o.cl_ord_id)
        new_leaves = cmd.qty - o.cum_qty
        stop_price = cmd.stop_price or o.stop_price
        keep = o.loc == LOC_BOOK and price == o.price and new_leaves <= o.leaves
        if keep:
            level = o.level
            if level is None:
                raise EngineInvariantError(f"order {oid} in book without a level")
            if o.shows:
                shown = min(o.visible, new_leaves)
                level.qty -= o.visible - shown
                o.visible = shown
                self._mark(inst, inst.book.side(o.is_buy), o.price)
            o.leaves = new_leaves
            o.qty = cmd.qty
        else:
            self._unplace(inst, o)
            o.price = price
            o.stop_price = stop_price
            o.qty = cmd.qty
            o.leaves = new_leaves
        self._out.append(
            Replaced(
                self._seq(),
                self._ts,
                o.symbol,
                oid,
                o.member,
                o.cl_ord_id,
                orig,
                o.qty,
                o.leaves,
                o.price,
                o.stop_price,
                keep,
            )
        )
        if keep:
            return
        if o.ord_type in _STOP_TYPES:
            if (
                inst.last_price
                and inst.phase == Phase.CONTINUOUS
                and self._stop_fires(o, inst.last_price)
            ):
                self._trigger(inst, o)
            else:
                self._add_stop(inst, o)
        elif o.tif == TimeInForce.CLS and inst.phase != Phase.CLOSING_AUCTION:
            o.loc = LOC_HELD
            inst.held[oid] = o
        else:
            self._enter(inst, o, first_entry=False)

    def _on_mass_cancel(self, cmd: MassCancel) -> None:
        if cmd.symbol:
            self._inst(cmd.symbol)
        victims = [
            o
            for oid, o in sorted(self.orders.items())
            if o.member == cmd.member
            and (not cmd.account or o.account == cmd.account)
            and (not cmd.symbol or o.symbol == cmd.symbol)
            and not self._frozen(self.instruments[o.symbol], o)
        ]
        if not victims:
            raise _Rejection(Reject.NOTHING_TO_CANCEL)
        for o in victims:
            inst = self.instruments[o.symbol]
            self._touched[inst.symbol] = inst
            self._kill(inst, o, CancelReason.MASS_CANCEL, cmd.cl_ord_id)

    def _on_status(self, cmd: OrderStatusRequest) -> None:
        self._inst(cmd.symbol)
        o = self._lookup(cmd.symbol, cmd.member, cmd.order_id, cmd.orig_cl_ord_id)
        if o.loc == LOC_STOP:
            status = "pending_trigger"
        elif o.loc in (LOC_HELD, LOC_AUCTION):
            status = "pending_auction"
        else:
            status = "partially_filled" if o.cum_qty else "new"
        self._out.append(
            OrderStatus(
                self._seq(),
                self._ts,
                o.symbol,
                o.order_id,
                o.member,
                o.cl_ord_id,
                o.side,
                o.ord_type,
                o.qty,
                o.cum_qty,
                o.leaves,
                o.price,
                o.stop_price,
                status,
            )
        )

    def _on_kill_switch(self, cmd: SetKillSwitch) -> None:
        if not cmd.member:
            raise _Rejection(Reject.INVALID_COMBINATION)
        if cmd.active:
            self.killed.add(cmd.member)
        else:
            self.killed.discard(cmd.member)
        self._out.append(KillSwitchChanged(self._seq(), self._ts, cmd.member, cmd.active))
        if cmd.active:
            for _, o in sorted(self.orders.items()):
                if o.member == cmd.member:
                    inst = self.instruments[o.symbol]
                    self._touched[inst.symbol] = inst
                    self._kill(inst, o, CancelReason.KILL_SWITCH)

    # ------------------------------------------------------------------ sessions and auctions

    def _on_set_phase(self, cmd: SetPhase) -> None:
        inst = self._inst(cmd.symbol)
        if cmd.phase == Phase.HALTED:
            self._halt(inst, "operator")
            return
        if inst.phase == Phase.HALTED and cmd.phase not in (Phase.CONTINUOUS, Phase.CLOSED):
            raise _Rejection(Reject.INVALID_PHASE_CHANGE)
        inst.resume_at = NO_TIMER
        self._transition(inst, cmd.phase, "operator")

    def _on_halt(self, cmd: Halt) -> None:
        self._halt(self._inst(cmd.symbol), cmd.reason)

    def _halt(self, inst: Instrument, reason: str) -> None:
        if inst.phase == Phase.CLOSED or inst.phase == Phase.HALTED:
            raise _Rejection(Reject.INVALID_PHASE_CHANGE)
        inst.halted_from = inst.phase
        self._transition(inst, Phase.HALTED, reason)

    def _on_resume(self, cmd: Resume) -> None:
        inst = self._inst(cmd.symbol)
        if inst.phase != Phase.HALTED:
            raise _Rejection(Reject.NOT_HALTED)
        self._resume(inst, "resumed")

    def _resume(self, inst: Instrument, reason: str) -> None:
        """Leave a halt for the phase it interrupted (continuous re-opens by auction)."""
        inst.resume_at = NO_TIMER
        self._transition(inst, inst.halted_from, reason)

    def _on_tick(self, cmd: Tick) -> None:
        """Time already advanced in ``apply``; a tick carries nothing else."""

    def _pause(self, inst: Instrument) -> None:
        """A trade would print outside the price band: pause, then re-open by auction."""
        inst.halted_from = inst.phase
        self._transition(inst, Phase.HALTED, "price band")
        inst.resume_at = self._ts + inst.pause_ns
        self._next_timer = min(self._next_timer, inst.resume_at)

    def _transition(self, inst: Instrument, target: Phase, reason: str) -> None:
        prev = inst.phase
        if prev == target:
            return
        self._touched[inst.symbol] = inst
        if prev == Phase.CLOSED:
            if target == Phase.CONTINUOUS and self._crossed(inst):
                self._uncross(inst)  # orders replaced while closed may cross: auction first
        elif target in (Phase.CONTINUOUS, Phase.CLOSED) and prev != Phase.CONTINUOUS:
            self._uncross(inst)
        if prev == Phase.CLOSING_AUCTION and target not in (Phase.CLOSED, Phase.HALTED):
            # Leaving the closing call early: on-close orders wait again for the next one.
            for _, o in sorted(self.orders.items()):
                if o.symbol == inst.symbol and o.tif == TimeInForce.CLS and o.loc != LOC_HELD:
                    self._unplace(inst, o)
                    o.loc = LOC_HELD
                    inst.held[o.order_id] = o
        if target == Phase.CLOSING_AUCTION:
            for oid in sorted(inst.held):
                o = inst.held.pop(oid)
                o.loc = LOC_DEAD
                inst.phase = target
                self._enter(inst, o, first_entry=False)
        inst.phase = target
        if target == Phase.CLOSED:
            for _, o in sorted(self.orders.items()):
                if o.symbol != inst.symbol:
                    continue
                if o.tif in _AUCTION_TIF or o.loc == LOC_AUCTION:
                    self._kill(inst, o, CancelReason.AUCTION_REMAINDER)
                elif o.tif == TimeInForce.DAY:
                    self._expire(inst, o)
        self._out.append(PhaseChanged(self._seq(), self._ts, inst.symbol, target, reason))

    @staticmethod
    def _crossed(inst: Instrument) -> bool:
        bid, ask = inst.book.bids.best(), inst.book.asks.best()
        return bid is not None and ask is not None and bid >= ask

    def _uncross(self, inst: Instrument) -> None:
        """Run the call auction: one price, maximum volume, price-time priority allocation."""
        book = inst.book
        bids = [
            (lv.price, sum(o.leaves for o in lv.orders() if not o.aon))
            for lv in book.bids.iter_levels()
        ]
        asks = [
            (lv.price, sum(o.leaves for o in lv.orders() if not o.aon))
            for lv in book.asks.iter_levels()
        ]
        market = sorted(inst.auction_orders.items())
        mkt_buy = sum(o.leaves for _, o in market if o.is_buy)
        mkt_sell = sum(o.leaves for _, o in market if not o.is_buy)
        found = uncross_price(
            bids, asks, mkt_buy, mkt_sell, inst.reference_price or inst.last_price
        )
        if found is not None:
            price, volume, imbalance = found
            buys = [o for _, o in market if o.is_buy]
            sells = [o for _, o in market if not o.is_buy]
            for lv in book.bids.iter_levels():
                if lv.price < price:
                    break
                buys.extend(o for o in lv.orders() if not o.aon)
            for lv in book.asks.iter_levels():
                if lv.price > price:
                    break
                sells.extend(o for o in lv.orders() if not o.aon)
            self._out.append(
                AuctionUncrossed(self._seq(), self._ts, inst.symbol, price, volume, imbalance)
            )
            bi = si = 0
            left = volume
            while left > 0:
                b, s = buys[bi], sells[si]
                qty = min(b.leaves, s.leaves, left)
                self._auction_fill(inst, b, s, qty, price)
                left -= qty
                if b.leaves == 0:
                    bi += 1
                if s.leaves == 0:
                    si += 1
            inst.reference_price = price
            inst.recompute_band()
            self._instrument_updated(inst)
        else:
            self._out.append(AuctionUncrossed(self._seq(), self._ts, inst.symbol, 0, 0, 0))
        for _, o in sorted(self.orders.items()):
            if o.symbol == inst.symbol and (o.loc == LOC_AUCTION or o.tif == TimeInForce.OPG):
                self._kill(inst, o, CancelReason.AUCTION_REMAINDER)

    def _auction_fill(self, inst: Instrument, b: Order, s: Order, qty: int, price: int) -> None:
        for o in (b, s):
            o.leaves -= qty
            o.cum_qty += qty
            if o.loc == LOC_BOOK:
                side = inst.book.side(o.is_buy)
                level = o.level
                if level is None:
                    raise EngineInvariantError(f"order {o.order_id} in book without a level")
                if o.shows:
                    shown = min(qty, o.visible)
                    o.visible -= shown
                    level.qty -= shown
                    self._mark(inst, side, o.price)
                if o.leaves == 0:
                    side.remove(o)
                elif o.shows and o.visible == 0:
                    level.unlink(o)
                    level.append(o)
            elif o.leaves == 0:
                del inst.auction_orders[o.order_id]
            if o.leaves == 0:
                self._forget(o)
        maker, taker = (b, s) if b.order_id < s.order_id else (s, b)
        inst.last_price = price
        inst.volume += qty
        self.trade_seq += 1
        self._out.append(
            Trade(
                self._seq(),
                self._ts,
                inst.symbol,
                self.trade_seq,
                price,
                qty,
                "",
                maker.order_id,
                taker.order_id,
                maker.member,
                taker.member,
                maker.cl_ord_id,
                taker.cl_ord_id,
                maker.leaves,
                taker.leaves,
                b.order_id,
                s.order_id,
            )
        )

    # ------------------------------------------------------------------ timers

    def _schedule_next(self, inst: Instrument, ts: int) -> None:
        """Point the instrument's schedule at its first step strictly after ``ts``."""
        assert inst.schedule is not None
        times = _sched_times(inst.schedule)
        day = ts - ts % NS_PER_DAY
        tod = ts - day
        for step, t in enumerate(times):
            if t > tod:
                inst.sched_step, inst.sched_next = step, day + t
                break
        else:
            inst.sched_step, inst.sched_next = 0, day + NS_PER_DAY + times[0]
        self._next_timer = min(self._next_timer, inst.sched_next)

    def _fire_timers(self) -> None:
        ts = self._ts
        exp = self._expiries
        while exp and exp[0][0] <= ts:
            _, oid = heapq.heappop(exp)
            o = self.orders.get(oid)
            if o is not None and o.tif == TimeInForce.GTD and o.expire_ts <= ts:
                inst = self.instruments[o.symbol]
                self._touched[inst.symbol] = inst
                self._expire(inst, o)
        for inst in self.instruments.values():
            if inst.resume_at <= ts:
                inst.resume_at = NO_TIMER
                if inst.phase == Phase.HALTED:
                    self._resume(inst, "pause ended")
            while inst.sched_next <= ts:
                schedule = inst.schedule
                assert schedule is not None
                step = inst.sched_step
                target = _SCHEDULE_STEPS[step]
                at = inst.sched_next
                self._schedule_next(inst, at)
                if inst.phase != Phase.HALTED or target == Phase.CLOSED:
                    inst.resume_at = NO_TIMER
                    self._transition(inst, target, "schedule")
                else:
                    inst.halted_from = target  # resuming goes to where the schedule is now
        nxt = exp[0][0] if exp else NO_TIMER
        for inst in self.instruments.values():
            nxt = min(nxt, inst.resume_at, inst.sched_next)
        self._next_timer = nxt

    # ------------------------------------------------------------------ snapshots

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
                    "orders": [_order_state(o) for o in placed + others],
                }
            )
        state = {
            "version": SNAPSHOT_VERSION,
            "last_seq": self.last_seq,
            "event_seq": self.event_seq,
            "trade_seq": self.trade_seq,
            "ts": self._ts,
            "killed": sorted(self.killed),
            "used_clids": [[m, sorted(c)] for m, c in sorted(self.used_clids.items())],
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
        eng.used_clids = {m: set(c) for m, c in state["used_clids"]}
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
                o, loc, visible = _order_from_state(inst.symbol, row)
                eng.orders[o.order_id] = o
                eng.by_clid[(o.member, o.cl_ord_id)] = o
                if o.tif == TimeInForce.GTD:
                    heapq.heappush(eng._expiries, (o.expire_ts, o.order_id))
                if o.peg != PegType.NONE:
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


_ORDER_FIELDS = (
    "order_id",
    "member",
    "account",
    "cl_ord_id",
    "side",
    "ord_type",
    "tif",
    "qty",
    "cum_qty",
    "leaves",
    "price",
    "stop_price",
    "display_qty",
    "visible",
    "hidden",
    "post_only",
    "peg",
    "peg_offset",
    "cap",
    "trail_amount",
    "trail_bps",
    "trail_ref",
    "limit_offset",
    "min_qty",
    "aon",
    "stp",
    "stp_scope",
    "expire_ts",
    "loc",
)


def _order_state(o: Order) -> list[Any]:
    return [getattr(o, f) for f in _ORDER_FIELDS]


def _order_from_state(symbol: str, row: list[Any]) -> tuple[Order, int, int]:
    v = dict(zip(_ORDER_FIELDS, row, strict=True))
    o = Order(
        v["order_id"],
        symbol,
        v["member"],
        v["account"],
        v["cl_ord_id"],
        Side(v["side"]),
        OrdType(v["ord_type"]),
        TimeInForce(v["tif"]),
        v["qty"],
        v["price"],
        v["stop_price"],
    )
    o.cum_qty = v["cum_qty"]
    o.leaves = v["leaves"]
    o.display_qty = v["display_qty"]
    o.hidden = v["hidden"]
    o.post_only = PostOnly(v["post_only"])
    o.peg = PegType(v["peg"])
    o.peg_offset = v["peg_offset"]
    o.cap = v["cap"]
    o.trail_amount = v["trail_amount"]
    o.trail_bps = v["trail_bps"]
    o.trail_ref = v["trail_ref"]
    o.limit_offset = v["limit_offset"]
    o.min_qty = v["min_qty"]
    o.aon = v["aon"]
    o.stp = STPMode(v["stp"])
    o.stp_scope = STPScope(v["stp_scope"])
    o.expire_ts = v["expire_ts"]
    return o, v["loc"], v["visible"]
