"""The one set of numeric and size limits every edge of tradingfloor checks before it stores.

Everything durable stores integers as signed 64-bit values: the journal (msgpack), SQLite's
INTEGER, PostgreSQL's BIGINT and a future native engine's i64. The limits below are sized so
that every value an order can carry, and every product the system forms from them (quantity x
price in ticks, quantity x price x ticks-to-minor-units), fits that width with room to spare.
Their relationships are checked here, at import, with explicit raises (``python -O`` strips
``assert``): a change that breaks one fails the first import, not a trade.

Edges (FIX, REST, WebSocket, JSON lines, the venue's command intake, the broker's contingent
legs) reject a value outside these limits with their own documented rejection before anything
is journaled or written; the matching engine checks them again as the last line.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_ACCOUNT_LEN",
    "MAX_CASH_MINOR",
    "MAX_CL_ORD_ID_LEN",
    "MAX_MEMBER_LEN",
    "MAX_NOTIONAL_MINOR",
    "MAX_ORDER_ID",
    "MAX_ORDER_QTY",
    "MAX_PEG_OFFSET_TICKS",
    "MAX_PRICE_TICKS",
    "MAX_SYMBOL_LEN",
    "MAX_TIMESTAMP_NS",
    "MAX_TRAIL_BPS",
    "MAX_TRAIL_TICKS",
    "fits_int64",
    "price_in_range",
]

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
"""The storage width shared by the journal, SQLite, PostgreSQL and the native engine."""

MAX_ORDER_QTY: Final = 1_000_000_000
"""Most shares in one order (and in its display and minimum quantities)."""
MAX_PRICE_TICKS: Final = 9_000_000_000
"""Prices in ticks are below this (the engine accepts 1 .. MAX_PRICE_TICKS - 1): $90,000,000
at a one-cent tick, $900,000 at a hundredth of a cent."""
MAX_TRAIL_TICKS: Final = MAX_PRICE_TICKS - 1
"""Largest trailing amount in ticks (a trail as wide as any price)."""
MAX_TRAIL_BPS: Final = 9_999
"""Largest trailing percentage, in basis points (a trail below 100% of the price)."""
MAX_PEG_OFFSET_TICKS: Final = MAX_PRICE_TICKS - 1
"""Largest peg or trailing-limit offset, in ticks, either sign."""
MAX_NOTIONAL_MINOR: Final = 10**17
"""Largest value of one order in minor units (quantity x price x minor units per tick): a
broker refuses an order worth more before any risk arithmetic or storage."""
MAX_CASH_MINOR: Final = 10**15
"""Largest cash amount (a deposit, a balance) in minor units: ten trillion dollars."""
MAX_TIMESTAMP_NS: Final = INT64_MAX
"""Latest nanosecond timestamp (the year 2262): GTD expiries and sequencer times."""
MAX_ORDER_ID: Final = INT64_MAX
"""Largest order id a client may name (the venue numbers orders from 1)."""

MAX_SYMBOL_LEN: Final = 16
MAX_CL_ORD_ID_LEN: Final = 128
MAX_MEMBER_LEN: Final = 64
MAX_ACCOUNT_LEN: Final = 64


def _require(condition: bool, relationship: str) -> None:
    if not condition:
        raise RuntimeError(f"tradingfloor.core.limits: {relationship} does not hold")


# Relationships the rest of the system relies on.
_require(
    MAX_ORDER_QTY * MAX_PRICE_TICKS <= INT64_MAX,
    "an order's notional in ticks (MAX_ORDER_QTY x MAX_PRICE_TICKS) fits a signed 64-bit int",
)
_require(
    MAX_CASH_MINOR + MAX_NOTIONAL_MINOR <= INT64_MAX // 2,
    "a balance plus an order's notional in minor units fits a signed 64-bit int, twice",
)
_require(
    2 * MAX_PRICE_TICKS + MAX_PEG_OFFSET_TICKS <= INT64_MAX,
    "a price moved by any offset or trail stays within a signed 64-bit int",
)
_require(MAX_TRAIL_TICKS < MAX_PRICE_TICKS, "a trail is narrower than the largest price")
_require(0 < MAX_TRAIL_BPS < 10_000, "a trailing percentage is below 100%")
_require(MAX_ORDER_QTY < 2**32, "a quantity fits ITCH's 32-bit share fields")
_require(MAX_ORDER_ID <= INT64_MAX, "order ids fit a signed 64-bit int")


def fits_int64(value: int) -> bool:
    """Whether ``value`` can be stored (journal, SQLite, PostgreSQL, native engine)."""
    return INT64_MIN <= value <= INT64_MAX


def price_in_range(value: Decimal, tick_size: Decimal) -> bool:
    """Whether a decimal price (or offset) is below the largest price in magnitude; edges
    check it before converting to ticks, so no arithmetic can overflow or lose digits."""
    if not value.is_finite():
        return False
    return abs(value) < MAX_PRICE_TICKS * tick_size
