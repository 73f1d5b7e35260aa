"""Continuous matching: price-time priority, fills, self-trade prevention, all-or-none."""

from __future__ import annotations

from abc import ABC, abstractmethod

from tradingfloor.exchange.engine.book import BookSide, Level
from tradingfloor.exchange.engine.core import (
    EngineCore,
    EngineInvariantError,
)
from tradingfloor.exchange.engine.events import (
    Cancelled,
    Trade,
)
from tradingfloor.exchange.engine.instrument import Instrument
from tradingfloor.exchange.engine.order import (
    LOC_AUCTION,
    LOC_BOOK,
    Order,
)
from tradingfloor.exchange.engine.types import (
    BAND_PAUSE,
    BAND_REJECT,
    CR_FOK,
    CR_IOC,
    CR_MARKET_REMAINDER,
    CR_MIN_QTY,
    CR_NO_LIQUIDITY,
    CR_PRICE_BAND,
    CR_STP,
    OT_LIMIT,
    OT_MARKET,
    OT_MARKET_TO_LIMIT,
    PH_CONTINUOUS,
    SCOPE_MEMBER,
    STP_CANCEL_BOTH,
    STP_CANCEL_NEWEST,
    STP_CANCEL_OLDEST,
    STP_DECREMENT,
    STP_NONE,
    TIF_FOK,
    TIF_IOC,
)

__all__ = ["Matching"]


class Matching(EngineCore, ABC):
    """Continuous matching: price-time priority, fills, self-trade prevention, all-or-none."""

    def _enter(self, inst: Instrument, o: Order, first_entry: bool) -> None:
        """Match ``o`` as an aggressor (continuous) or queue it for the auction (call phase)."""
        ot = o.ord_type
        is_market = ot == OT_MARKET or (ot == OT_MARKET_TO_LIMIT and not o.price)
        if inst.phase != PH_CONTINUOUS:
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
                self._kill(inst, o, CR_NO_LIQUIDITY)
                return
            if ot == OT_MARKET_TO_LIMIT:
                limit = best
            else:
                collar = best * inst.collar_bps // 10_000
                limit = best + collar if o.is_buy else max(best - collar, 1)
        else:
            limit = o.price
        # Matching never goes past the band in reject mode (pause mode halts at the band).
        in_band = min(limit, inst.band_hi) if o.is_buy else max(limit, inst.band_lo)
        if inst.band_action == BAND_REJECT:
            limit = in_band

        if o.aon or o.tif == TIF_FOK or (first_entry and o.min_qty):
            all_or_none = o.aon or o.tif == TIF_FOK
            need = o.leaves if all_or_none else o.min_qty
            if self._available(opp, o, in_band, need) < need:
                if o.tif == TIF_FOK:
                    self._kill(inst, o, CR_FOK)
                elif not all_or_none:
                    self._kill(inst, o, CR_MIN_QTY)
                elif is_market:
                    self._kill(inst, o, CR_MARKET_REMAINDER)
                elif o.tif == TIF_IOC:
                    self._kill(inst, o, CR_IOC)
                else:
                    self._rest(inst, o)  # an all-or-none order waits, undisplayed, for a match
                return

        first_trade = self.trade_seq + 1
        band_blocked = self._match(inst, o, opp, limit)
        if o.leaves == 0 or o.order_id not in self.orders:
            return  # filled, or cancelled by self-trade prevention
        if band_blocked:
            self._kill(inst, o, CR_PRICE_BAND)
        elif o.tif == TIF_IOC:
            self._kill(inst, o, CR_IOC)
        elif o.tif == TIF_FOK:
            self._kill(inst, o, CR_FOK)
        elif ot == OT_MARKET_TO_LIMIT and self.trade_seq >= first_trade:
            # The remainder becomes a limit order at the first execution price.
            o.price = self._first_trade_price(first_trade)
            o.ord_type = OT_LIMIT
            self._rest(inst, o)
        elif is_market:
            self._kill(inst, o, CR_MARKET_REMAINDER)
        else:
            self._rest(inst, o)

    def _first_trade_price(self, trade_id: int) -> int:
        for ev in self._out:
            if type(ev) is Trade and ev.trade_id == trade_id:
                return ev.price
        raise EngineInvariantError(f"trade {trade_id} not found in this command's events")

    def _stp_hit(self, taker: Order, maker: Order) -> bool:
        return maker.member == taker.member and (
            taker.stp_scope == SCOPE_MEMBER or maker.account == taker.account
        )

    def _available(self, opp: BookSide, o: Order, limit: int, need: int) -> int:
        """Quantity ``o`` could execute now within ``limit``, counted up to ``need``."""
        total = 0
        stp = o.stp
        blocking = stp in (STP_CANCEL_NEWEST, STP_CANCEL_BOTH, STP_DECREMENT)
        for level in opp.iter_levels():
            if (level.price > limit) if o.is_buy else (level.price < limit):
                break
            for m in level.orders():
                if m.aon and m.leaves > o.leaves - total:
                    continue  # as in matching: an all-or-none maker needs our whole remainder
                if stp != STP_NONE and self._stp_hit(o, m):
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
        prices = opp.prices
        rank = 0
        while o.leaves > 0:
            if rank >= len(prices):
                break
            price = prices[rank] if is_buy else prices[-1 - rank]  # opposite side's best first
            if price > limit if is_buy else price < limit:
                break
            if not inst.band_lo <= price <= inst.band_hi:
                if inst.band_action == BAND_PAUSE:
                    self._pause(inst)
                    break
                return True
            level = opp.levels[price]
            stopped = self._match_level(inst, o, opp, level)
            if level.empty():
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
                if stp != STP_NONE and self._stp_hit(o, m):
                    if stp == STP_CANCEL_NEWEST:
                        self._kill(inst, o, CR_STP)
                        return True
                    if stp == STP_CANCEL_OLDEST:
                        self._kill(inst, m, CR_STP)
                    elif stp == STP_CANCEL_BOTH:
                        self._kill(inst, m, CR_STP)
                        self._kill(inst, o, CR_STP)
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
                self._kill(inst, victim, CR_STP)
                continue
            victim.leaves -= d
            victim.qty -= d  # decrement cancels part of the order: its quantity shrinks
            level = victim.level
            if victim.loc == LOC_BOOK and victim.shows and level is not None:
                shown = min(victim.visible, victim.leaves)  # shrinks; never refills
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
                    CR_STP,
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
        # The trade is announced before any refill, so an L3 consumer applies it to the slice
        # that traded, not to the fresh one.
        self._print_trade(inst, price, qty, str(taker.side), maker, taker)
        if maker.leaves == 0:
            side.remove(maker)
            self._forget(maker)
        elif maker.shows and maker.visible == 0:
            # Iceberg refill: a fresh display slice joins the back of the displayed queue.
            level.unlink(maker)
            level.append(maker)
            self._booked(maker)
            refilled = True
        if taker.leaves == 0:
            self._forget(taker)
        if inst.stops_up or inst.stops_down or inst.pegs:
            self._touched[inst.symbol] = inst  # stops follow the last price, pegs the BBO
        return refilled

    @abstractmethod
    def _pause(self, inst: Instrument) -> None:
        """Halt ``inst`` after a price-band breach (implemented by the session layer)."""
