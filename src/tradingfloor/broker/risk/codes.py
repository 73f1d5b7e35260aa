"""Stable codes of the broker's pre-trade risk rejections, their texts, and the exception.

Codes follow the broker's eight-digit style (``broker.errors``): 4031xxxx, HTTP 403, like
Alpaca's ``40310000 insufficient buying power``. A code never changes meaning once published;
new checks get new numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from types import MappingProxyType

from tradingfloor.broker.errors import BrokerError

__all__ = ["MESSAGES", "RiskCode", "RiskReject"]


class RiskCode(IntEnum):
    INSUFFICIENT_BUYING_POWER = 40310000
    KYC_NOT_APPROVED = 40310001
    TRADING_BLOCKED = 40310002
    POSITION_LIMIT = 40310003
    MAX_ORDER_QTY = 40310004
    MAX_ORDER_NOTIONAL = 40310005
    PRICE_COLLAR = 40310006
    RESTRICTED_SYMBOL = 40310007
    SHORT_NOT_ALLOWED = 40310008
    PATTERN_DAY_TRADER = 40310009
    NO_REFERENCE_PRICE = 40310010
    INSUFFICIENT_QTY = 40310011

    @property
    def text(self) -> str:
        """The stable message of this code."""
        return MESSAGES[self]


MESSAGES: Mapping[RiskCode, str] = MappingProxyType(
    {
        RiskCode.INSUFFICIENT_BUYING_POWER: "insufficient buying power",
        RiskCode.KYC_NOT_APPROVED: "account is not approved for trading (KYC pending or rejected)",
        RiskCode.TRADING_BLOCKED: "trading is blocked on this account",
        RiskCode.POSITION_LIMIT: "order would exceed the position limit",
        RiskCode.MAX_ORDER_QTY: "order quantity is above the maximum",
        RiskCode.MAX_ORDER_NOTIONAL: "order notional is above the maximum",
        RiskCode.PRICE_COLLAR: "price is too far from the last trade",
        RiskCode.RESTRICTED_SYMBOL: "symbol is on the restricted list",
        RiskCode.SHORT_NOT_ALLOWED: "short sales are only allowed in margin accounts",
        RiskCode.PATTERN_DAY_TRADER: "pattern day trader protection: equity below the minimum",
        RiskCode.NO_REFERENCE_PRICE: "no price to value a market order against",
        RiskCode.INSUFFICIENT_QTY: "insufficient qty available for order",
    }
)


class RiskReject(BrokerError):
    """An order refused by a pre-trade risk check (HTTP 403).

    ``code`` is the :class:`RiskCode`; ``message`` is the code's stable text, followed by
    ``": " + detail`` when a detail is given (e.g. ``"needs 1234.56, has 1000.00"``).
    """

    def __init__(self, code: RiskCode, detail: str = "") -> None:
        code = RiskCode(code)
        message = f"{MESSAGES[code]}: {detail}" if detail else MESSAGES[code]
        super().__init__(code, message, status=403)
        self.code = code
        self.risk_code = code
        self.detail = detail

    def __reduce__(self) -> tuple[type[RiskReject], tuple[RiskCode, str]]:
        return (RiskReject, (self.risk_code, self.detail))

    def __repr__(self) -> str:
        return f"RiskReject({self.risk_code.name}, {self.message!r})"
