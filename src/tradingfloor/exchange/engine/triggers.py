"""Stop, if-touched and trailing triggers, and pegged-order repricing after each command."""

from __future__ import annotations

from tradingfloor.exchange.engine.core import (
    MAX_CASCADE,
    MAX_PRICE_TICKS,
    EngineInvariantError,
)
from tradingfloor.exchange.engine.events import (
    Repriced,
    Triggered,
)
from tradingfloor.exchange.engine.instrument import Instrument
from tradingfloor.exchange.engine.matching import Matching
from tradingfloor.exchange.engine.order import (
    LOC_BOOK,
    LOC_DEAD,
    Order,
)
from tradingfloor.exchange.engine.types import (
    OT_LIMIT,
    OT_MARKET,
    OT_MARKET_IF_TOUCHED,
    OT_STOP,
    OT_TRAILING_STOP,
    OT_TRAILING_STOP_LIMIT,
    PEG_MARKET,
    PEG_NONE,
    PEG_PRIMARY,
    PH_CONTINUOUS,
    PegType,
)

__all__ = ["Triggers"]


class Triggers(Matching):
    """Stop, if-touched and trailing triggers, and pegged-order repricing after each command."""

    def _trigger(self, inst: Instrument, o: Order) -> None:
        """Turn a fired stop / if-touched order into a market or limit order and enter it."""
        ot = o.ord_type
        if ot == OT_TRAILING_STOP_LIMIT:
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
        if ot in (OT_STOP, OT_TRAILING_STOP, OT_MARKET_IF_TOUCHED):
            o.ord_type = OT_MARKET
        else:
            o.ord_type = OT_LIMIT
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
            if o.order_id in self.orders and inst.phase == PH_CONTINUOUS:
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
                if any(m.peg == PEG_NONE and m.shows for m in level.orders()):
                    best = level.price
                    break
            out.append(best)
        return out[0], out[1]

    def _peg_price_for(
        self, inst: Instrument, is_buy: bool, peg: PegType, offset: int, cap: int
    ) -> int:
        bid, ask = self._peg_reference(inst)
        if peg == PEG_PRIMARY:
            ref = bid if is_buy else ask
        elif peg == PEG_MARKET:
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
                if inst.phase != PH_CONTINUOUS:
                    continue
                if inst.stops_up or inst.stops_down:
                    changed |= self._fire_stops(inst)
                if inst.pegs:
                    changed |= self._reprice_pegs(inst)
            if not changed:
                self._touched = {}
                return
        raise EngineInvariantError("stop/peg cascade did not settle")
