"""Trading phases, schedules, halts, price-band pauses, call auctions and instrument set-up."""

from __future__ import annotations

import heapq
from decimal import Decimal, InvalidOperation

from tradingfloor.exchange.engine.auction import uncross_price
from tradingfloor.exchange.engine.commands import (
    AddInstrument,
    Halt,
    Resume,
    SetPhase,
    SetPriceBand,
    SetReferencePrice,
    Tick,
)
from tradingfloor.exchange.engine.core import (
    AUCTION_TIF,
    MAX_PRICE_TICKS,
    SCHEDULE_STEPS,
    EngineInvariantError,
    Rejection,
    sched_times,
)
from tradingfloor.exchange.engine.events import (
    AuctionUncrossed,
    InstrumentAdded,
    OrderUnbooked,
    PhaseChanged,
)
from tradingfloor.exchange.engine.instrument import MAX_BAND_BPS, NO_TIMER, NS_PER_DAY, Instrument
from tradingfloor.exchange.engine.order import (
    LOC_AUCTION,
    LOC_BOOK,
    LOC_DEAD,
    LOC_HELD,
    Order,
)
from tradingfloor.exchange.engine.reasons import Reject
from tradingfloor.exchange.engine.triggers import Triggers
from tradingfloor.exchange.engine.types import (
    CR_AUCTION_REMAINDER,
    PH_CLOSED,
    PH_CLOSING_AUCTION,
    PH_CONTINUOUS,
    PH_HALTED,
    PH_OPENING_AUCTION,
    PH_PRE_OPEN,
    TIF_CLS,
    TIF_DAY,
    TIF_GTD,
    TIF_OPG,
    Phase,
)

__all__ = ["Sessions"]


class Sessions(Triggers):
    """Trading phases, schedules, halts, price-band pauses, call auctions and instrument set-up."""

    def _on_add_instrument(self, cmd: AddInstrument) -> None:
        if cmd.symbol in self.instruments:
            raise Rejection(Reject.DUPLICATE_SYMBOL)
        try:
            tick = Decimal(cmd.tick_size)
        except InvalidOperation:
            raise Rejection(Reject.INVALID_INSTRUMENT) from None
        if (
            not cmd.symbol
            or not tick.is_finite()
            or tick <= 0
            or cmd.lot_size <= 0
            or cmd.reference_price < 0
            or cmd.band_bps < 0
            or cmd.band_bps > MAX_BAND_BPS
            or cmd.collar_bps < 0
            or cmd.pause_ns < 0
        ):
            raise Rejection(Reject.INVALID_INSTRUMENT)
        if cmd.schedule is not None:
            times = sched_times(cmd.schedule)
            if any(not 0 <= t < NS_PER_DAY for t in times) or list(times) != sorted(set(times)):
                raise Rejection(Reject.INVALID_INSTRUMENT)
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
            inst.phase = SCHEDULE_STEPS[step - 1] if step else PH_CLOSED
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

    def _on_price_band(self, cmd: SetPriceBand) -> None:
        inst = self._inst(cmd.symbol)
        if not 0 <= cmd.band_bps <= MAX_BAND_BPS or cmd.pause_ns < 0:
            raise Rejection(Reject.INVALID_INSTRUMENT)
        inst.set_band(cmd.band_bps, cmd.band_action, cmd.pause_ns)
        self._instrument_updated(inst)

    def _on_reference_price(self, cmd: SetReferencePrice) -> None:
        inst = self._inst(cmd.symbol)
        if not 0 < cmd.price < MAX_PRICE_TICKS:
            raise Rejection(Reject.INVALID_PRICE)
        inst.reference_price = cmd.price
        inst.recompute_band()
        self._instrument_updated(inst)

    def _on_set_phase(self, cmd: SetPhase) -> None:
        inst = self._inst(cmd.symbol)
        if cmd.phase == PH_HALTED:
            self._halt(inst, "operator")
            return
        if inst.phase == PH_HALTED and cmd.phase not in (PH_CONTINUOUS, PH_CLOSED):
            raise Rejection(Reject.INVALID_PHASE_CHANGE)
        inst.resume_at = NO_TIMER
        self._transition(inst, cmd.phase, "operator")

    def _on_halt(self, cmd: Halt) -> None:
        self._halt(self._inst(cmd.symbol), cmd.reason)

    def _halt(self, inst: Instrument, reason: str) -> None:
        if inst.phase == PH_CLOSED or inst.phase == PH_HALTED:
            raise Rejection(Reject.INVALID_PHASE_CHANGE)
        inst.halted_from = inst.phase
        self._transition(inst, PH_HALTED, reason)

    def _on_resume(self, cmd: Resume) -> None:
        inst = self._inst(cmd.symbol)
        if inst.phase != PH_HALTED:
            raise Rejection(Reject.NOT_HALTED)
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
        self._transition(inst, PH_HALTED, "price band")
        inst.resume_at = self._ts + inst.pause_ns
        self._next_timer = min(self._next_timer, inst.resume_at)

    def _transition(self, inst: Instrument, target: Phase, reason: str) -> None:
        prev = inst.phase
        if prev == target:
            return
        self._touched[inst.symbol] = inst
        if prev == PH_CLOSED:
            if target == PH_CONTINUOUS and self._crossed(inst):
                self._uncross(inst)  # orders replaced while closed may cross: auction first
        elif target in (PH_CONTINUOUS, PH_CLOSED) and prev != PH_CONTINUOUS:
            self._uncross(inst)
        if target in (PH_PRE_OPEN, PH_OPENING_AUCTION, PH_CONTINUOUS):
            # Left the closing call early (directly or through a halt): on-close orders that
            # did not trade wait again for the next closing call.
            for _, o in sorted(self.orders.items()):
                if o.symbol == inst.symbol and o.tif == TIF_CLS and o.loc != LOC_HELD:
                    if o.loc == LOC_BOOK and o.shows:
                        self._out.append(OrderUnbooked(self._seq(), self._ts, o.symbol, o.order_id))
                    self._unplace(inst, o)
                    o.loc = LOC_HELD
                    inst.held[o.order_id] = o
        if target == PH_CLOSING_AUCTION:
            for oid in sorted(inst.held):
                o = inst.held.pop(oid)
                o.loc = LOC_DEAD
                inst.phase = target
                self._enter(inst, o, first_entry=False)
        inst.phase = target
        if target == PH_CLOSED:
            for _, o in sorted(self.orders.items()):
                if o.symbol != inst.symbol:
                    continue
                if o.tif in AUCTION_TIF or o.loc == LOC_AUCTION:
                    self._kill(inst, o, CR_AUCTION_REMAINDER)
                elif o.tif == TIF_DAY:
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
        # All-or-none market orders never take part in an uncross (they cannot be sure of a
        # full fill); they are cancelled with the other auction leftovers.
        market = sorted((oid, o) for oid, o in inst.auction_orders.items() if not o.aon)
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
            if o.symbol == inst.symbol and (o.loc == LOC_AUCTION or o.tif == TIF_OPG):
                self._kill(inst, o, CR_AUCTION_REMAINDER)

    def _auction_fill(self, inst: Instrument, b: Order, s: Order, qty: int, price: int) -> None:
        for o in (b, s):
            o.leaves -= qty
            o.cum_qty += qty
        maker, taker = (b, s) if b.order_id < s.order_id else (s, b)
        self._print_trade(inst, price, qty, "", maker, taker)  # before any iceberg refill
        for o in (b, s):
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
                    self._booked(o)
            elif o.leaves == 0:
                del inst.auction_orders[o.order_id]
            if o.leaves == 0:
                self._forget(o)

    def _schedule_next(self, inst: Instrument, ts: int) -> None:
        """Point the instrument's schedule at its first step strictly after ``ts``."""
        if inst.schedule is None:
            raise EngineInvariantError(f"{inst.symbol} has no schedule to follow")
        times = sched_times(inst.schedule)
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
            if o is not None and o.tif == TIF_GTD and o.expire_ts <= ts:
                inst = self.instruments[o.symbol]
                self._touched[inst.symbol] = inst
                self._expire(inst, o)
        for inst in self.instruments.values():
            if inst.resume_at <= ts:
                inst.resume_at = NO_TIMER
                if inst.phase == PH_HALTED:
                    self._resume(inst, "pause ended")
            while inst.sched_next <= ts:
                step = inst.sched_step
                target = SCHEDULE_STEPS[step]
                at = inst.sched_next
                self._schedule_next(inst, at)
                if inst.phase != PH_HALTED or target == PH_CLOSED:
                    inst.resume_at = NO_TIMER
                    self._transition(inst, target, "schedule")
                else:
                    inst.halted_from = target  # resuming goes to where the schedule is now
        nxt = exp[0][0] if exp else NO_TIMER
        for inst in self.instruments.values():
            nxt = min(nxt, inst.resume_at, inst.sched_next)
        self._next_timer = nxt
