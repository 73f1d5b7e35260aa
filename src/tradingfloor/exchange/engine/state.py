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
        v["display_qty"],
        v["hidden"],
        PostOnly(v["post_only"]),
        PegType(v["peg"]),
        v["peg_offset"],
        v["cap"],
        v["trail_amount"],
        v["trail_bps"],
        v["limit_offset"],
        v["min_qty"],
        v["aon"],
        STPMode(v["stp"]),
        STPScope(v["stp_scope"]),
        v["expire_ts"],
    )
    o.cum_qty = v["cum_qty"]
    o.leaves = v["leaves"]
    o.trail_ref = v["trail_ref"]
    return o, v["loc"], v["visible"]
