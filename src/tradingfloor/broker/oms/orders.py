"""The broker's order record and the vocabulary of its lifecycle (Alpaca's statuses and types).

A ``BrokerOrder`` is one row of the ``orders`` table kept in memory while it is open. Its fields
are named exactly like the table's columns, so persisting it is ``row()``. Prices are integer
ticks of the instrument, quantities integer shares, holds integer minor units.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "CLOSED_STATUSES",
    "BrokerOrder",
    "LegRole",
    "OrderClass",
    "OrderStatus",
    "OrderType",
    "TimeInForce",
]


class OrderStatus(StrEnum):
    PENDING_NEW = "pending_new"  # recorded by the broker, not yet acknowledged by the venue
    HELD = "held"  # a contingent leg waiting for its trigger (e.g. a bracket's exits)
    NEW = "new"  # working at the venue
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    PENDING_REPLACE = "pending_replace"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REPLACED = "replaced"
    REJECTED = "rejected"


CLOSED_STATUSES = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.EXPIRED,
        OrderStatus.REPLACED,
        OrderStatus.REJECTED,
    }
)


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    TRAILING_STOP = "trailing_stop"


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    OPG = "opg"
    CLS = "cls"
    IOC = "ioc"
    FOK = "fok"


class OrderClass(StrEnum):
    SIMPLE = "simple"
    BRACKET = "bracket"
    OCO = "oco"
    OTO = "oto"


class LegRole(StrEnum):
    NONE = ""
    TAKE_PROFIT = "take_profit"
    STOP_LOSS = "stop_loss"


@dataclass(slots=True)
class BrokerOrder:
    id: str
    account_id: str
    client_order_id: str
    symbol: str
    side: str
    order_type: str
    time_in_force: str
    order_class: str
    qty: int
    status: str
    created_at: int
    updated_at: int
    leg_role: str = ""
    parent_id: str | None = None
    filled_qty: int = 0
    filled_notional: int = 0  # sum of fill qty * price, in ticks
    limit_price: int | None = None
    stop_price: int | None = None
    trail_price: int | None = None
    trail_percent_bps: int | None = None
    extended_hours: bool = False
    hold: int = 0
    venue_order_id: int | None = None
    replaces: str | None = None
    replaced_by: str | None = None
    reject_code: int | None = None
    reject_reason: str | None = None
    submitted_at: int | None = None
    filled_at: int | None = None
    canceled_at: int | None = None
    expired_at: int | None = None
    failed_at: int | None = None
    replaced_at: int | None = None

    @property
    def leaves_qty(self) -> int:
        return self.qty - self.filled_qty if self.is_open else 0

    @property
    def is_open(self) -> bool:
        return self.status not in CLOSED_STATUSES

    @property
    def is_working(self) -> bool:
        """At the venue (or about to be): its remaining quantity can still trade."""
        return self.is_open and self.status != OrderStatus.HELD

    def row(self) -> dict[str, Any]:
        """The ``orders`` table row (a shallow copy: every field is immutable)."""
        return {name: getattr(self, name) for name in _FIELDS}

    @classmethod
    def from_row(cls, row: Any) -> BrokerOrder:
        mapping = row._mapping if hasattr(row, "_mapping") else row
        return cls(**{name: mapping[name] for name in _FIELDS})


_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(BrokerOrder))
