"""Enumerations shared by engine commands, events and state: sides, order types, TIFs, phases."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "BAND_PAUSE",
    "BAND_REJECT",
    "CR_AUCTION_REMAINDER",
    "CR_FOK",
    "CR_IOC",
    "CR_KILL_SWITCH",
    "CR_MARKET_REMAINDER",
    "CR_MASS_CANCEL",
    "CR_MIN_QTY",
    "CR_NO_LIQUIDITY",
    "CR_PRICE_BAND",
    "CR_STP",
    "CR_USER",
    "OT_LIMIT",
    "OT_LIMIT_IF_TOUCHED",
    "OT_MARKET",
    "OT_MARKET_IF_TOUCHED",
    "OT_MARKET_TO_LIMIT",
    "OT_PEGGED",
    "OT_STOP",
    "OT_STOP_LIMIT",
    "OT_TRAILING_STOP",
    "OT_TRAILING_STOP_LIMIT",
    "PEG_MARKET",
    "PEG_MIDPOINT",
    "PEG_NONE",
    "PEG_PRIMARY",
    "PH_CLOSED",
    "PH_CLOSING_AUCTION",
    "PH_CONTINUOUS",
    "PH_HALTED",
    "PH_OPENING_AUCTION",
    "PH_PRE_OPEN",
    "PO_NONE",
    "PO_REJECT",
    "PO_REPRICE",
    "SCOPE_ACCOUNT",
    "SCOPE_MEMBER",
    "SIDE_BUY",
    "SIDE_SELL",
    "STP_CANCEL_BOTH",
    "STP_CANCEL_NEWEST",
    "STP_CANCEL_OLDEST",
    "STP_DECREMENT",
    "STP_NONE",
    "TIF_CLS",
    "TIF_DAY",
    "TIF_FOK",
    "TIF_GTC",
    "TIF_GTD",
    "TIF_IOC",
    "TIF_OPG",
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


# Enum members as plain module constants: in CPython 3.11 reading ``Side.BUY`` goes through the
# enum metaclass (about 0.2 us), so the engine's hot paths use these names instead.
SIDE_BUY: Final = Side.BUY
SIDE_SELL: Final = Side.SELL
OT_MARKET: Final = OrdType.MARKET
OT_LIMIT: Final = OrdType.LIMIT
OT_STOP: Final = OrdType.STOP
OT_STOP_LIMIT: Final = OrdType.STOP_LIMIT
OT_TRAILING_STOP: Final = OrdType.TRAILING_STOP
OT_TRAILING_STOP_LIMIT: Final = OrdType.TRAILING_STOP_LIMIT
OT_MARKET_TO_LIMIT: Final = OrdType.MARKET_TO_LIMIT
OT_PEGGED: Final = OrdType.PEGGED
OT_MARKET_IF_TOUCHED: Final = OrdType.MARKET_IF_TOUCHED
OT_LIMIT_IF_TOUCHED: Final = OrdType.LIMIT_IF_TOUCHED
TIF_DAY: Final = TimeInForce.DAY
TIF_GTC: Final = TimeInForce.GTC
TIF_GTD: Final = TimeInForce.GTD
TIF_IOC: Final = TimeInForce.IOC
TIF_FOK: Final = TimeInForce.FOK
TIF_OPG: Final = TimeInForce.OPG
TIF_CLS: Final = TimeInForce.CLS
PH_CLOSED: Final = Phase.CLOSED
PH_PRE_OPEN: Final = Phase.PRE_OPEN
PH_OPENING_AUCTION: Final = Phase.OPENING_AUCTION
PH_CONTINUOUS: Final = Phase.CONTINUOUS
PH_CLOSING_AUCTION: Final = Phase.CLOSING_AUCTION
PH_HALTED: Final = Phase.HALTED
PEG_NONE: Final = PegType.NONE
PEG_PRIMARY: Final = PegType.PRIMARY
PEG_MARKET: Final = PegType.MARKET
PEG_MIDPOINT: Final = PegType.MIDPOINT
PO_NONE: Final = PostOnly.NONE
PO_REJECT: Final = PostOnly.REJECT
PO_REPRICE: Final = PostOnly.REPRICE
STP_NONE: Final = STPMode.NONE
STP_CANCEL_NEWEST: Final = STPMode.CANCEL_NEWEST
STP_CANCEL_OLDEST: Final = STPMode.CANCEL_OLDEST
STP_CANCEL_BOTH: Final = STPMode.CANCEL_BOTH
STP_DECREMENT: Final = STPMode.DECREMENT
SCOPE_MEMBER: Final = STPScope.MEMBER
SCOPE_ACCOUNT: Final = STPScope.ACCOUNT
BAND_REJECT: Final = BandAction.REJECT
BAND_PAUSE: Final = BandAction.PAUSE
CR_USER: Final = CancelReason.USER
CR_IOC: Final = CancelReason.IOC
CR_FOK: Final = CancelReason.FOK
CR_MARKET_REMAINDER: Final = CancelReason.MARKET_REMAINDER
CR_MIN_QTY: Final = CancelReason.MIN_QTY
CR_STP: Final = CancelReason.STP
CR_MASS_CANCEL: Final = CancelReason.MASS_CANCEL
CR_KILL_SWITCH: Final = CancelReason.KILL_SWITCH
CR_AUCTION_REMAINDER: Final = CancelReason.AUCTION_REMAINDER
CR_PRICE_BAND: Final = CancelReason.PRICE_BAND
CR_NO_LIQUIDITY: Final = CancelReason.NO_LIQUIDITY
