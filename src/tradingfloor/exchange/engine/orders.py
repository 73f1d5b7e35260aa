"""Member order handlers: new orders and their validation, cancel, replace, mass cancel,
status and the kill switch."""

from __future__ import annotations

from tradingfloor.core.limits import MAX_PEG_OFFSET_TICKS, MAX_TRAIL_BPS, MAX_TRAIL_TICKS
from tradingfloor.exchange.engine.commands import (
    CancelOrder,
    MassCancel,
    NewOrder,
    OrderStatusRequest,
    ReplaceOrder,
    SetKillSwitch,
)
from tradingfloor.exchange.engine.core import (
    AUCTION_TIF,
    IMMEDIATE,
    MAX_ORDER_QTY,
    MAX_PRICE_TICKS,
    NEEDS_LIMIT,
    NO_LIMIT,
    PLAIN_TIF,
    STOP_TYPES,
    TRAILING,
    EngineInvariantError,
    Rejection,
)
from tradingfloor.exchange.engine.events import (
    KillSwitchChanged,
    OrderStatus,
    Replaced,
)
from tradingfloor.exchange.engine.instrument import Instrument
from tradingfloor.exchange.engine.order import (
    LOC_AUCTION,
    LOC_BOOK,
    LOC_HELD,
    LOC_STOP,
    Order,
)
from tradingfloor.exchange.engine.reasons import Reject
from tradingfloor.exchange.engine.sessions import Sessions
from tradingfloor.exchange.engine.types import (
    BAND_REJECT,
    CR_KILL_SWITCH,
    CR_MASS_CANCEL,
    CR_USER,
    OT_LIMIT,
    OT_MARKET,
    OT_MARKET_TO_LIMIT,
    OT_PEGGED,
    OT_TRAILING_STOP,
    PEG_NONE,
    PH_CLOSED,
    PH_CLOSING_AUCTION,
    PH_CONTINUOUS,
    PH_HALTED,
    PH_OPENING_AUCTION,
    PH_PRE_OPEN,
    PO_NONE,
    PO_REJECT,
    SIDE_BUY,
    TIF_CLS,
    TIF_GTC,
    TIF_GTD,
    TIF_OPG,
)

__all__ = ["OrderHandlers"]


class OrderHandlers(Sessions):
    """Member order handlers: new orders and their validation, cancel, replace, mass cancel,"""

    def _on_new_order(self, cmd: NewOrder) -> None:
        inst = self._inst(cmd.symbol)
        if cmd.member in self.killed:
            raise Rejection(Reject.KILL_SWITCH_ACTIVE)
        phase = inst.phase
        if phase == PH_CLOSED:
            raise Rejection(Reject.MARKET_CLOSED)
        if phase == PH_HALTED:
            raise Rejection(Reject.INSTRUMENT_HALTED)
        self._validate_order(inst, cmd)
        if self._clid_taken(cmd.member, cmd.cl_ord_id):
            raise Rejection(Reject.DUPLICATE_CL_ORD_ID)

        ot = cmd.ord_type
        tif = cmd.tif
        in_call = inst.in_call()
        if in_call and (tif in IMMEDIATE or ot in (OT_PEGGED, OT_MARKET_TO_LIMIT)):
            raise Rejection(Reject.WRONG_PHASE_FOR_TIF)
        if tif == TIF_OPG and phase not in (PH_PRE_OPEN, PH_OPENING_AUCTION):
            raise Rejection(Reject.WRONG_PHASE_FOR_TIF)

        price = cmd.price
        book = inst.book
        opp = book.asks if cmd.side == SIDE_BUY else book.bids
        is_buy = cmd.side == SIDE_BUY
        if ot == OT_PEGGED:
            price = self._peg_price_for(inst, is_buy, cmd.peg, cmd.peg_offset, cmd.price)
            if price <= 0:
                raise Rejection(Reject.INVALID_PEG)
        elif cmd.post_only != PO_NONE and not in_call:
            best = opp.best()
            if best is not None and (price >= best if is_buy else price <= best):
                if cmd.post_only == PO_REJECT:
                    raise Rejection(Reject.POST_ONLY_WOULD_CROSS)
                price = best - 1 if is_buy else best + 1
                if price <= 0:
                    raise Rejection(Reject.POST_ONLY_WOULD_CROSS)
        if (
            ot in NEEDS_LIMIT
            and inst.band_action == BAND_REJECT
            and not inst.band_lo <= price <= inst.band_hi
        ):
            raise Rejection(Reject.OUTSIDE_PRICE_BAND)
        if (
            (ot in (OT_MARKET, OT_MARKET_TO_LIMIT))
            and not in_call
            and tif != TIF_CLS
            and opp.best() is None
        ):
            raise Rejection(Reject.NO_LIQUIDITY)
        trail_ref = 0
        if ot in TRAILING:
            trail_ref = inst.last_price or inst.reference_price
            if not trail_ref:
                raise Rejection(Reject.NO_REFERENCE_PRICE)

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
            cmd.display_qty,
            cmd.hidden,
            cmd.post_only,
            cmd.peg,
            cmd.peg_offset,
            cmd.price if ot == OT_PEGGED else 0,
            cmd.trail_amount,
            cmd.trail_bps,
            cmd.limit_offset,
            cmd.min_qty,
            cmd.aon,
            cmd.stp,
            cmd.stp_scope,
            cmd.expire_ts,
        )
        if ot in TRAILING:
            o.trail_ref = trail_ref
            o.stop_price = self._trail_trigger(o)
        self._register(o)
        self._accepted(o)
        if inst.pegs or inst.stops_up or inst.stops_down or o.peg != PEG_NONE:
            self._touched[inst.symbol] = inst  # pegs may follow a new best price

        if ot in STOP_TYPES:
            if inst.last_price and not in_call and self._stop_fires(o, inst.last_price):
                self._trigger(inst, o)
            else:
                self._add_stop(inst, o)
            return
        if tif == TIF_CLS and phase != PH_CLOSING_AUCTION:
            o.loc = LOC_HELD
            inst.held[o.order_id] = o
            return
        if ot == OT_PEGGED:
            inst.pegs[o.order_id] = o
        self._enter(inst, o, first_entry=True)

    def _validate_order(self, inst: Instrument, cmd: NewOrder) -> None:
        """Field checks that need no book state; raise Rejection on the first failure."""
        qty = cmd.qty
        if not 0 < qty <= MAX_ORDER_QTY:
            raise Rejection(Reject.INVALID_QUANTITY)
        if qty % inst.lot_size:
            raise Rejection(Reject.INVALID_LOT)
        if (
            cmd.ord_type == OT_LIMIT
            and cmd.tif in PLAIN_TIF
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
            and cmd.peg == PEG_NONE
            and cmd.post_only == PO_NONE
        ):
            # Fast path: a plain limit order needs only its price checked.
            if not 0 < cmd.price < MAX_PRICE_TICKS:
                raise Rejection(Reject.INVALID_PRICE)
            return
        ot = cmd.ord_type
        tif = cmd.tif
        if ot in NEEDS_LIMIT:
            if not 0 < cmd.price < MAX_PRICE_TICKS:
                raise Rejection(Reject.INVALID_PRICE)
        elif ot in NO_LIMIT:
            if cmd.price != 0:
                raise Rejection(Reject.INVALID_ORDER_TYPE)
        elif not 0 <= cmd.price < MAX_PRICE_TICKS:  # pegged: optional limit cap
            raise Rejection(Reject.INVALID_PRICE)
        if ot in STOP_TYPES and ot not in TRAILING:
            if not 0 < cmd.stop_price < MAX_PRICE_TICKS:
                raise Rejection(Reject.INVALID_STOP_PRICE)
        elif cmd.stop_price != 0:
            raise Rejection(Reject.INVALID_ORDER_TYPE)
        if ot in TRAILING:
            if (
                (cmd.trail_amount > 0) == (cmd.trail_bps > 0)
                or not 0 <= cmd.trail_amount <= MAX_TRAIL_TICKS
                or not 0 <= cmd.trail_bps <= MAX_TRAIL_BPS
            ):
                raise Rejection(Reject.INVALID_TRAILING)
            if not 0 <= cmd.limit_offset <= MAX_PEG_OFFSET_TICKS or (
                ot == OT_TRAILING_STOP and cmd.limit_offset
            ):
                raise Rejection(Reject.INVALID_TRAILING)
        elif cmd.trail_amount or cmd.trail_bps or cmd.limit_offset:
            raise Rejection(Reject.INVALID_TRAILING)
        if (ot == OT_PEGGED) != (cmd.peg != PEG_NONE):
            raise Rejection(Reject.INVALID_PEG)
        if (cmd.peg_offset and ot != OT_PEGGED) or abs(cmd.peg_offset) > MAX_PEG_OFFSET_TICKS:
            raise Rejection(Reject.INVALID_PEG)
        # Time in force.
        if tif == TIF_GTD:
            if cmd.expire_ts <= self._ts:
                raise Rejection(Reject.INVALID_EXPIRY)
        elif cmd.expire_ts:
            raise Rejection(Reject.INVALID_EXPIRY)
        if tif in AUCTION_TIF and ot not in (OT_MARKET, OT_LIMIT):
            raise Rejection(Reject.INVALID_TIF)
        if ot in (OT_MARKET, OT_MARKET_TO_LIMIT) and tif in (
            TIF_GTC,
            TIF_GTD,
        ):
            raise Rejection(Reject.INVALID_TIF)
        if ot == OT_MARKET_TO_LIMIT and tif in AUCTION_TIF:
            raise Rejection(Reject.INVALID_TIF)
        # Display, post-only, min qty, all-or-none.
        disp = cmd.display_qty
        if disp:
            if not 0 < disp < qty or disp % inst.lot_size:
                raise Rejection(Reject.INVALID_DISPLAY_QTY)
            if cmd.hidden or cmd.aon or ot in NO_LIMIT or tif in IMMEDIATE:
                raise Rejection(Reject.INVALID_COMBINATION)
        if cmd.hidden and (ot in NO_LIMIT or tif in IMMEDIATE):
            raise Rejection(Reject.INVALID_COMBINATION)
        if cmd.post_only != PO_NONE and (
            ot != OT_LIMIT or tif in IMMEDIATE or tif in AUCTION_TIF or cmd.aon
        ):
            raise Rejection(Reject.INVALID_COMBINATION)
        if cmd.min_qty:
            if not 0 < cmd.min_qty <= qty:
                raise Rejection(Reject.INVALID_MIN_QTY)
            if ot not in (OT_LIMIT, OT_MARKET) or tif in AUCTION_TIF or cmd.aon:
                raise Rejection(Reject.INVALID_COMBINATION)
        if cmd.aon and (ot not in (OT_LIMIT, OT_MARKET) or tif in AUCTION_TIF):
            raise Rejection(Reject.INVALID_COMBINATION)

    def _on_cancel(self, cmd: CancelOrder) -> None:
        inst = self._inst(cmd.symbol)
        o = self._lookup(cmd.symbol, cmd.member, cmd.order_id, cmd.orig_cl_ord_id)
        if self._frozen(inst, o):
            raise Rejection(Reject.AUCTION_FROZEN, o.order_id)
        if inst.pegs:
            self._touched[inst.symbol] = inst
        self._kill(inst, o, CR_USER, cmd.cl_ord_id)

    def _on_replace(self, cmd: ReplaceOrder) -> None:
        inst = self._inst(cmd.symbol)
        o = self._lookup(cmd.symbol, cmd.member, cmd.order_id, cmd.orig_cl_ord_id)
        oid = o.order_id
        if self._frozen(inst, o):
            raise Rejection(Reject.AUCTION_FROZEN, oid)
        if o.loc == LOC_AUCTION or o.ord_type in TRAILING or (o.peg != PEG_NONE and cmd.price):
            raise Rejection(Reject.REPLACE_NOT_SUPPORTED, oid)
        if not 0 < cmd.qty <= MAX_ORDER_QTY:
            raise Rejection(Reject.INVALID_QUANTITY, oid)
        if cmd.qty % inst.lot_size:
            raise Rejection(Reject.INVALID_LOT, oid)
        if cmd.qty <= o.cum_qty:
            raise Rejection(Reject.REPLACE_QTY_TOO_LOW, oid)
        if o.display_qty and o.display_qty >= cmd.qty:
            raise Rejection(Reject.INVALID_DISPLAY_QTY, oid)
        if o.min_qty and o.min_qty > cmd.qty:
            raise Rejection(Reject.INVALID_MIN_QTY, oid)
        has_limit = o.ord_type in NEEDS_LIMIT
        if cmd.price and not has_limit:
            raise Rejection(Reject.INVALID_ORDER_TYPE, oid)
        if not 0 <= cmd.price < MAX_PRICE_TICKS:
            raise Rejection(Reject.INVALID_PRICE, oid)
        if cmd.stop_price and o.loc != LOC_STOP:
            raise Rejection(Reject.INVALID_ORDER_TYPE, oid)
        if not 0 <= cmd.stop_price < MAX_PRICE_TICKS:
            raise Rejection(Reject.INVALID_STOP_PRICE, oid)
        price = cmd.price or o.price
        if o.post_only != PO_NONE and inst.phase == PH_CONTINUOUS:
            best = inst.book.side(not o.is_buy).best()
            if best is not None and (price >= best if o.is_buy else price <= best):
                if o.post_only == PO_REJECT:
                    raise Rejection(Reject.POST_ONLY_WOULD_CROSS, oid)
                price = best - 1 if o.is_buy else best + 1
                if price <= 0:
                    raise Rejection(Reject.POST_ONLY_WOULD_CROSS, oid)
        # after the post-only slide, as for a new order: the price that would rest is checked
        if (
            has_limit
            and inst.band_action == BAND_REJECT
            and not inst.band_lo <= price <= inst.band_hi
        ):
            raise Rejection(Reject.OUTSIDE_PRICE_BAND, oid)
        if self._clid_taken(cmd.member, cmd.cl_ord_id):
            raise Rejection(Reject.DUPLICATE_CL_ORD_ID, oid)

        # Validation done: apply.
        if inst.pegs or inst.stops_up or inst.stops_down:
            self._touched[inst.symbol] = inst
        orig = o.cl_ord_id
        del self.by_clid[(o.member, orig)]
        o.cl_ord_id = cmd.cl_ord_id
        self.by_clid[(o.member, o.cl_ord_id)] = o
        self.used_clids.add(o.member, o.cl_ord_id)
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
        if o.ord_type in STOP_TYPES:
            if (
                inst.last_price
                and inst.phase == PH_CONTINUOUS
                and self._stop_fires(o, inst.last_price)
            ):
                self._trigger(inst, o)
            else:
                self._add_stop(inst, o)
        elif o.tif == TIF_CLS and inst.phase != PH_CLOSING_AUCTION:
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
            raise Rejection(Reject.NOTHING_TO_CANCEL)
        for o in victims:
            inst = self.instruments[o.symbol]
            self._touched[inst.symbol] = inst
            self._kill(inst, o, CR_MASS_CANCEL, cmd.cl_ord_id)

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
            raise Rejection(Reject.INVALID_COMBINATION)
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
                    self._kill(inst, o, CR_KILL_SWITCH)
