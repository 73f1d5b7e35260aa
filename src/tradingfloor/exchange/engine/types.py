"""Enumerations shared by engine commands, events and state: sides, order types, TIFs, phases."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "BandAction",
    "CancelReason",
    "OrdType",
    "PegType",
    "Phase",
    "PostOnly",
    "STPMode",
    "STPScope",
    "Side",
    "TimeInForce",
]


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrdType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    TRAILING_STOP = "trailing_stop"
    TRAILING_STOP_LIMIT = "trailing_stop_limit"
    MARKET_TO_LIMIT = "market_to_limit"
    PEGGED = "pegged"
    MARKET_IF_TOUCHED = "market_if_touched"
    LIMIT_IF_TOUCHED = "limit_if_touched"


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    GTD = "gtd"
    IOC = "ioc"
    FOK = "fok"
    OPG = "opg"  # at the opening auction (market-on-open / limit-on-open)
    CLS = "cls"  # at the closing auction (market-on-close / limit-on-close)


class PegType(StrEnum):
    NONE = "none"
    PRIMARY = "primary"  # same-side best (bid for a buy)
    MARKET = "market"  # opposite-side best (ask for a buy), kept passive
    MIDPOINT = "midpoint"


class PostOnly(StrEnum):
    NONE = "none"
    REJECT = "reject"  # reject if it would take liquidity on arrival
    REPRICE = "reprice"  # slide to one tick behind the opposite best


class STPMode(StrEnum):
    NONE = "none"
    CANCEL_NEWEST = "cancel_newest"
    CANCEL_OLDEST = "cancel_oldest"
    CANCEL_BOTH = "cancel_both"
    DECREMENT = "decrement"


class STPScope(StrEnum):
    MEMBER = "member"  # any two orders of the same member would self-trade
    ACCOUNT = "account"  # only orders of the same member and account


class Phase(StrEnum):
    CLOSED = "closed"
    PRE_OPEN = "pre_open"
    OPENING_AUCTION = "opening_auction"
    CONTINUOUS = "continuous"
    CLOSING_AUCTION = "closing_auction"
    HALTED = "halted"


class BandAction(StrEnum):
    REJECT = "reject"  # orders priced outside the band are rejected; matching stops at the band
    PAUSE = "pause"  # a trade outside the band pauses trading, then a re-opening auction


class CancelReason(StrEnum):
    USER = "user"
    IOC = "ioc_remainder"
    FOK = "fok_unfilled"
    MARKET_REMAINDER = "market_remainder"
    MIN_QTY = "min_qty_unavailable"
    STP = "self_trade_prevention"
    MASS_CANCEL = "mass_cancel"
    KILL_SWITCH = "kill_switch"
    AUCTION_REMAINDER = "auction_remainder"
    PRICE_BAND = "price_band"
    NO_LIQUIDITY = "no_liquidity"
