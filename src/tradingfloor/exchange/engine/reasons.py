"""Stable rejection codes of the matching engine, grouped by subsystem, each with its text.

1xxx instrument and session, 2xxx member controls and price protection, 3xxx order validation,
4xxx references to existing orders. Codes never change meaning once published (docs/engine.md).
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["Reject"]


class Reject(IntEnum):
    UNKNOWN_SYMBOL = 1001
    DUPLICATE_SYMBOL = 1002
    MARKET_CLOSED = 1003
    INSTRUMENT_HALTED = 1004
    WRONG_PHASE_FOR_TIF = 1005
    AUCTION_FROZEN = 1006
    INVALID_INSTRUMENT = 1007
    NOT_HALTED = 1008
    INVALID_PHASE_CHANGE = 1009

    KILL_SWITCH_ACTIVE = 2001
    OUTSIDE_PRICE_BAND = 2002
    NO_REFERENCE_PRICE = 2003

    INVALID_QUANTITY = 3001
    INVALID_PRICE = 3002
    INVALID_LOT = 3003
    DUPLICATE_CL_ORD_ID = 3004
    INVALID_ORDER_TYPE = 3005
    INVALID_TIF = 3006
    INVALID_DISPLAY_QTY = 3007
    INVALID_STOP_PRICE = 3008
    INVALID_EXPIRY = 3009
    POST_ONLY_WOULD_CROSS = 3010
    INVALID_PEG = 3012
    INVALID_TRAILING = 3013
    INVALID_MIN_QTY = 3014
    INVALID_COMBINATION = 3015
    NO_LIQUIDITY = 3016

    UNKNOWN_ORDER = 4001
    NOT_OWNER = 4002
    REPLACE_QTY_TOO_LOW = 4003
    REPLACE_NOT_SUPPORTED = 4004
    NOTHING_TO_CANCEL = 4005

    @property
    def text(self) -> str:
        return _TEXT[self]


_TEXT: dict[Reject, str] = {
    Reject.UNKNOWN_SYMBOL: "unknown symbol",
    Reject.DUPLICATE_SYMBOL: "symbol already listed",
    Reject.MARKET_CLOSED: "instrument is closed",
    Reject.INSTRUMENT_HALTED: "instrument is halted",
    Reject.WRONG_PHASE_FOR_TIF: "time in force not accepted in the current trading phase",
    Reject.AUCTION_FROZEN: "auction orders cannot be changed once the auction call has begun",
    Reject.INVALID_INSTRUMENT: "invalid instrument parameters",
    Reject.NOT_HALTED: "instrument is not halted",
    Reject.INVALID_PHASE_CHANGE: "this phase cannot be set from the current one",
    Reject.KILL_SWITCH_ACTIVE: "member kill switch is active",
    Reject.OUTSIDE_PRICE_BAND: "price outside the instrument's price band",
    Reject.NO_REFERENCE_PRICE: "no last or reference price to trail from",
    Reject.INVALID_QUANTITY: "quantity must be 1 to the maximum order size, in whole shares",
    Reject.INVALID_PRICE: "price must be a positive number of ticks below the maximum price",
    Reject.INVALID_LOT: "quantity is not a multiple of the lot size",
    Reject.DUPLICATE_CL_ORD_ID: "duplicate client order id",
    Reject.INVALID_ORDER_TYPE: "order type not valid with these fields",
    Reject.INVALID_TIF: "time in force not valid for this order type",
    Reject.INVALID_DISPLAY_QTY: "display quantity must be positive, lot-sized and below quantity",
    Reject.INVALID_STOP_PRICE: "stop/trigger price must be positive and below the maximum price",
    Reject.INVALID_EXPIRY: "GTD orders need an expiry time in the future",
    Reject.POST_ONLY_WOULD_CROSS: "post-only order would take liquidity",
    Reject.INVALID_PEG: "pegged order needs a peg type and a reference price",
    Reject.INVALID_TRAILING: "trailing stop needs exactly one of trail amount or bps, in range",
    Reject.INVALID_MIN_QTY: "minimum quantity must be between 1 and the order quantity",
    Reject.INVALID_COMBINATION: "these order options cannot be combined",
    Reject.NO_LIQUIDITY: "no liquidity on the opposite side",
    Reject.UNKNOWN_ORDER: "unknown or no longer live order",
    Reject.NOT_OWNER: "order belongs to another member",
    Reject.REPLACE_QTY_TOO_LOW: "new quantity must exceed the filled quantity",
    Reject.REPLACE_NOT_SUPPORTED: "this order cannot be replaced",
    Reject.NOTHING_TO_CANCEL: "no live orders matched the mass cancel",
}
