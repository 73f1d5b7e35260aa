"""Tests of the risk rejection codes: stable numbers, texts, and the exception."""

from __future__ import annotations

import pickle

import pytest

import tradingfloor.broker.risk.codes as codes_mod
from tradingfloor.broker.errors import BrokerError
from tradingfloor.broker.risk.codes import MESSAGES, RiskCode, RiskReject

PUBLISHED = {
    "INSUFFICIENT_BUYING_POWER": (40310000, "insufficient buying power"),
    "KYC_NOT_APPROVED": (
        40310001,
        "account is not approved for trading (KYC pending or rejected)",
    ),
    "TRADING_BLOCKED": (40310002, "trading is blocked on this account"),
    "POSITION_LIMIT": (40310003, "order would exceed the position limit"),
    "MAX_ORDER_QTY": (40310004, "order quantity is above the maximum"),
    "MAX_ORDER_NOTIONAL": (40310005, "order notional is above the maximum"),
    "PRICE_COLLAR": (40310006, "price is too far from the last trade"),
    "RESTRICTED_SYMBOL": (40310007, "symbol is on the restricted list"),
    "SHORT_NOT_ALLOWED": (40310008, "short sales are only allowed in margin accounts"),
    "PATTERN_DAY_TRADER": (
        40310009,
        "pattern day trader protection: equity below the minimum",
    ),
    "NO_REFERENCE_PRICE": (40310010, "no price to value a market order against"),
    "INSUFFICIENT_QTY": (40310011, "insufficient qty available for order"),
}


def test_public_api() -> None:
    assert sorted(codes_mod.__all__) == ["MESSAGES", "RiskCode", "RiskReject"]


def test_codes_and_messages_are_the_published_ones() -> None:
    assert {c.name: (int(c), MESSAGES[c]) for c in RiskCode} == PUBLISHED
    assert all(c.text == MESSAGES[c] for c in RiskCode)
    with pytest.raises(TypeError):
        MESSAGES[RiskCode.POSITION_LIMIT] = "changed"  # type: ignore[index]


def test_reject_carries_code_message_detail_and_http_403() -> None:
    exc = RiskReject(RiskCode.INSUFFICIENT_BUYING_POWER, "needs 1234.56, has 1000.00")
    assert isinstance(exc, BrokerError)
    assert exc.code is RiskCode.INSUFFICIENT_BUYING_POWER
    assert int(exc.code) == 40310000
    assert exc.message == "insufficient buying power: needs 1234.56, has 1000.00"
    assert str(exc) == exc.message
    assert exc.status == 403
    assert exc.detail == "needs 1234.56, has 1000.00"
    assert "INSUFFICIENT_BUYING_POWER" in repr(exc)
    bare = RiskReject(RiskCode.TRADING_BLOCKED)
    assert bare.message == "trading is blocked on this account"


def test_reject_pickles() -> None:
    exc = RiskReject(RiskCode.INSUFFICIENT_QTY, "requested: 10, available: 5")
    copy = pickle.loads(pickle.dumps(exc))
    assert (copy.code, copy.message, copy.detail) == (exc.code, exc.message, exc.detail)


def test_reject_accepts_a_plain_int_code() -> None:
    assert RiskReject(40310007).code is RiskCode.RESTRICTED_SYMBOL  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        RiskReject(1)  # type: ignore[arg-type]
