"""The mutable engine-side order record, an intrusive list node so a cancel by id is O(1)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradingfloor.exchange.engine.types import (
    PEG_NONE,
    PO_NONE,
    SCOPE_MEMBER,
    SIDE_BUY,
    STP_NONE,
    OrdType,
    PegType,
    PostOnly,
    Side,
    STPMode,
    STPScope,
    TimeInForce,
)

if TYPE_CHECKING:
    from tradingfloor.exchange.engine.book import Level

__all__ = ["LOC_AUCTION", "LOC_BOOK", "LOC_DEAD", "LOC_HELD", "LOC_STOP", "Order"]

LOC_DEAD = 0  # not live (filled, cancelled, expired) or not yet placed
LOC_BOOK = 1  # resting in a price level
LOC_STOP = 2  # waiting for its trigger price
LOC_HELD = 3  # an on-close order held until the closing auction call
LOC_AUCTION = 4  # a market order waiting for the next auction uncross


class Order:
    """One live order. ``leaves`` is the open quantity; ``visible`` its displayed part in book."""

    __slots__ = (
        "account",
        "aon",
        "cap",
        "cl_ord_id",
        "cum_qty",
        "display_qty",
        "expire_ts",
        "hidden",
        "is_buy",
        "leaves",
        "level",
        "limit_offset",
        "loc",
        "member",
        "min_qty",
        "next",
        "ord_type",
        "order_id",
        "peg",
        "peg_offset",
        "post_only",
        "prev",
        "price",
        "qty",
        "shows",
        "side",
        "stop_price",
        "stp",
        "stp_scope",
        "symbol",
        "tif",
        "trail_amount",
        "trail_bps",
        "trail_ref",
        "visible",
    )

    def __init__(
        self,
        order_id: int,
        symbol: str,
        member: str,
        account: str,
        cl_ord_id: str,
        side: Side,
        ord_type: OrdType,
        tif: TimeInForce,
        qty: int,
        price: int,
        stop_price: int,
        display_qty: int = 0,
        hidden: bool = False,
        post_only: PostOnly = PO_NONE,
        peg: PegType = PEG_NONE,
        peg_offset: int = 0,
        cap: int = 0,
        trail_amount: int = 0,
        trail_bps: int = 0,
        limit_offset: int = 0,
        min_qty: int = 0,
        aon: bool = False,
        stp: STPMode = STP_NONE,
        stp_scope: STPScope = SCOPE_MEMBER,
        expire_ts: int = 0,
    ) -> None:
        self.order_id = order_id
        self.symbol = symbol
        self.member = member
        self.account = account
        self.cl_ord_id = cl_ord_id
        self.side = side
        self.is_buy = side == SIDE_BUY
        self.ord_type = ord_type
        self.tif = tif
        self.qty = qty
        self.cum_qty = 0
        self.leaves = qty
        self.price = price
        self.stop_price = stop_price
        self.display_qty = display_qty
        self.visible = 0
        self.hidden = hidden
        self.post_only = post_only
        self.peg = peg
        self.peg_offset = peg_offset
        self.cap = cap  # pegged orders: the optional limit price the peg may not pass
        self.trail_amount = trail_amount
        self.trail_bps = trail_bps
        self.trail_ref = 0
        self.limit_offset = limit_offset
        self.min_qty = min_qty
        self.aon = aon
        # Whether it sits in its level's displayed queue; hidden and all-or-none never show.
        self.shows = not (hidden or aon)
        self.stp = stp
        self.stp_scope = stp_scope
        self.expire_ts = expire_ts
        self.loc = LOC_DEAD
        self.level: Level | None = None
        self.prev: Order | None = None
        self.next: Order | None = None

    def display_slice(self) -> int:
        """The quantity to show after placement or an iceberg refill."""
        if self.display_qty and self.display_qty < self.leaves:
            return self.display_qty
        return self.leaves
