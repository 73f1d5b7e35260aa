"""Engine state and the bookkeeping every handler shares: events, order indexes, stop stores.

The handlers live in layers above it (matching, triggers, sessions, orders) and the public
``Engine`` in engine.py; all of them are one deterministic state machine.
"""

from __future__ import annotations

import heapq

from tradingfloor.core.limits import MAX_ORDER_QTY, MAX_PRICE_TICKS
from tradingfloor.exchange.engine.book import BookSide
from tradingfloor.exchange.engine.clids import ClOrdIdWindow
from tradingfloor.exchange.engine.commands import (
    Command,
    Schedule,
)
from tradingfloor.exchange.engine.events import (
    Accepted,
    Cancelled,
    Event,
    Expired,
    InstrumentUpdated,
    LevelChanged,
    OrderBooked,
    Rejected,
    Trade,
)
from tradingfloor.exchange.engine.instrument import NO_TIMER, Instrument
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
    OT_LIMIT,
    OT_LIMIT_IF_TOUCHED,
    OT_MARKET,
    OT_MARKET_IF_TOUCHED,
    OT_MARKET_TO_LIMIT,
    OT_STOP,
    OT_STOP_LIMIT,
    OT_TRAILING_STOP,
    OT_TRAILING_STOP_LIMIT,
    PEG_NONE,
    PH_CLOSED,
    PH_CLOSING_AUCTION,
    PH_CONTINUOUS,
    PH_OPENING_AUCTION,
    PH_PRE_OPEN,
    SIDE_BUY,
    SIDE_SELL,
    TIF_CLS,
    TIF_DAY,
    TIF_FOK,
    TIF_GTC,
    TIF_GTD,
    TIF_IOC,
    TIF_OPG,
    CancelReason,
)

__all__ = [
    "MAX_CASCADE",
    "MAX_ORDER_QTY",
    "MAX_PRICE_TICKS",
    "EngineCore",
    "EngineInvariantError",
    "Rejection",
]

MAX_CASCADE = 100_000  # stop-trigger / peg-reprice rounds after one command before we give up

STOP_TYPES = frozenset(
    {
        OT_STOP,
        OT_STOP_LIMIT,
        OT_TRAILING_STOP,
        OT_TRAILING_STOP_LIMIT,
        OT_MARKET_IF_TOUCHED,
        OT_LIMIT_IF_TOUCHED,
    }
)
TRAILING = frozenset({OT_TRAILING_STOP, OT_TRAILING_STOP_LIMIT})
TOUCHED = frozenset({OT_MARKET_IF_TOUCHED, OT_LIMIT_IF_TOUCHED})
NEEDS_LIMIT = frozenset({OT_LIMIT, OT_STOP_LIMIT, OT_LIMIT_IF_TOUCHED})
NO_LIMIT = frozenset(
    {
        OT_MARKET,
        OT_STOP,
        OT_TRAILING_STOP,
        OT_TRAILING_STOP_LIMIT,
        OT_MARKET_TO_LIMIT,
        OT_MARKET_IF_TOUCHED,
    }
)
IMMEDIATE = frozenset({TIF_IOC, TIF_FOK})
PLAIN_TIF = frozenset({TIF_DAY, TIF_GTC, TIF_IOC, TIF_FOK})
AUCTION_TIF = frozenset({TIF_OPG, TIF_CLS})
SCHEDULE_STEPS = (
    PH_PRE_OPEN,
    PH_OPENING_AUCTION,
    PH_CONTINUOUS,
    PH_CLOSING_AUCTION,
    PH_CLOSED,
)


class EngineInvariantError(RuntimeError):
    """An internal invariant broke: the engine state can no longer be trusted."""


class Rejection(Exception):
    """Raised inside a handler before any state change; turned into a Rejected event."""

    def __init__(self, code: Reject, order_id: int = 0) -> None:
        super().__init__(code.text)
        self.code = code
        self.order_id = order_id


def sched_times(s: Schedule) -> tuple[int, int, int, int, int]:
    return (s.pre_open, s.open_call, s.open, s.close_call, s.close)


class EngineCore:
    """State of all instruments and orders, plus the helpers that keep indexes consistent."""

    def __init__(self) -> None:
        self.last_seq = 0
        self.event_seq = 0
        self.trade_seq = 0
        self.instruments: dict[str, Instrument] = {}
        self.orders: dict[int, Order] = {}
        self.by_clid: dict[tuple[str, str], Order] = {}
        # Each member's recently used client order ids, in first-use order (bounded: clids.py).
        self.used_clids = ClOrdIdWindow()
        self.killed: set[str] = set()
        self._expiries: list[tuple[int, int]] = []  # heap of (expire_ts, order_id)
        self._next_timer = NO_TIMER
        # Per-command scratch state.
        self._ts = 0
        self._out: list[Event] = []
        self._dirty: dict[tuple[str, bool, int], BookSide] = {}
        self._touched: dict[str, Instrument] = {}

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
                    self._seq(), ts, symbol, SIDE_BUY if is_buy else SIDE_SELL, price, qty, count
                )
            )
        self._dirty = {}

    def _register(self, o: Order) -> None:
        self.orders[o.order_id] = o
        self.by_clid[(o.member, o.cl_ord_id)] = o
        self.used_clids.add(o.member, o.cl_ord_id)
        if o.tif == TIF_GTD:
            heapq.heappush(self._expiries, (o.expire_ts, o.order_id))
            if o.expire_ts < self._next_timer:
                self._next_timer = o.expire_ts

    def _clid_taken(self, member: str, cl_ord_id: str) -> bool:
        """A new or replacing ``cl_ord_id`` the member may not use: one of its recent ids, or
        the current id of one of its live orders (however old)."""
        return self.used_clids.used(member, cl_ord_id) or (member, cl_ord_id) in self.by_clid

    def _forget(self, o: Order) -> None:
        """Drop a finished order from the indexes (it is already out of every store)."""
        del self.orders[o.order_id]
        key = (o.member, o.cl_ord_id)
        if self.by_clid.get(key) is o:
            del self.by_clid[key]
        if o.peg != PEG_NONE:
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
            self._booked(o)

    def _booked(self, o: Order) -> None:
        """Announce that ``o``'s displayed slice joined the back of its level."""
        self._out.append(
            OrderBooked(
                self._seq(), self._ts, o.symbol, o.order_id, o.member, o.side, o.price, o.visible
            )
        )

    def _inst(self, symbol: str) -> Instrument:
        inst = self.instruments.get(symbol)
        if inst is None:
            raise Rejection(Reject.UNKNOWN_SYMBOL)
        return inst

    def _lookup(self, symbol: str, member: str, order_id: int, orig_cl_ord_id: str) -> Order:
        o = self.orders.get(order_id) if order_id else self.by_clid.get((member, orig_cl_ord_id))
        if o is None or o.symbol != symbol:
            raise Rejection(Reject.UNKNOWN_ORDER)
        if o.member != member:
            raise Rejection(Reject.NOT_OWNER, o.order_id)
        return o

    @staticmethod
    def _frozen(inst: Instrument, o: Order) -> bool:
        """On-open/on-close orders cannot change once their auction's call has begun."""
        return (o.tif == TIF_OPG and inst.phase == PH_OPENING_AUCTION) or (
            o.tif == TIF_CLS and inst.phase == PH_CLOSING_AUCTION
        )

    def _stop_fires(self, o: Order, last: int) -> bool:
        up = o.is_buy != (o.ord_type in TOUCHED)  # buy stop / sell if-touched fire upward
        return last >= o.stop_price if up else last <= o.stop_price

    def _add_stop(self, inst: Instrument, o: Order) -> None:
        o.loc = LOC_STOP
        if o.is_buy != (o.ord_type in TOUCHED):
            inst.stops_up.add((o.stop_price, o.order_id))
        else:
            inst.stops_down.add((-o.stop_price, o.order_id))
        if o.ord_type in TRAILING:
            inst.trailing[o.order_id] = o

    def _unstop(self, inst: Instrument, o: Order) -> None:
        if o.is_buy != (o.ord_type in TOUCHED):
            inst.stops_up.remove((o.stop_price, o.order_id))
        else:
            inst.stops_down.remove((-o.stop_price, o.order_id))
        inst.trailing.pop(o.order_id, None)

    def _trail_trigger(self, o: Order) -> int:
        ref = o.trail_ref
        offset = o.trail_amount or ref * o.trail_bps // 10_000
        return ref + offset if o.is_buy else max(ref - offset, 1)

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

    def _print_trade(
        self, inst: Instrument, price: int, qty: int, aggressor: str, maker: Order, taker: Order
    ) -> None:
        """Record a trade of ``qty`` at ``price`` (both sides already updated) and emit it."""
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
                aggressor,
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
