"""Canonical snapshot encoding of engine orders: field order and row (de)serialisation."""

from __future__ import annotations

from typing import Any

from tradingfloor.exchange.engine.order import (
    Order,
)
from tradingfloor.exchange.engine.types import (
    OrdType,
    PegType,
    PostOnly,
    Side,
    STPMode,
    STPScope,
    TimeInForce,
)

__all__ = ["SNAPSHOT_VERSION", "order_from_state", "order_state"]

SNAPSHOT_VERSION = 1


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


def order_state(o: Order) -> list[Any]:
    return [getattr(o, f) for f in _ORDER_FIELDS]


def order_from_state(symbol: str, row: list[Any]) -> tuple[Order, int, int]:
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
