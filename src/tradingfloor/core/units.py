"""Fixed-point conversions between Decimal values at the edges and integer ticks/lots inside.

Prices inside the system are integer multiples of an instrument's tick size and quantities are
integer shares; these helpers are the only place where the two worlds meet.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

__all__ = ["UnitError", "from_ticks", "parse_decimal", "to_ticks"]


class UnitError(ValueError):
    """A value at the edge cannot be represented exactly in integer units."""


def parse_decimal(value: object) -> Decimal:
    """Parse a price/quantity given as str or int (never float) into a finite Decimal."""
    if isinstance(value, bool | float):
        raise UnitError(f"{value!r}: give decimal values as strings or integers, not floats")
    if not isinstance(value, str | int | Decimal):
        raise UnitError(f"{value!r}: not a decimal value")
    try:
        result = Decimal(value)
    except InvalidOperation as exc:
        raise UnitError(f"{value!r}: not a decimal value") from exc
    if not result.is_finite():
        raise UnitError(f"{value!r}: not a finite decimal value")
    return result


def to_ticks(value: object, tick_size: Decimal) -> int:
    """Convert a decimal price to integer ticks; reject values that are not a tick multiple."""
    price = parse_decimal(value)
    ticks, remainder = divmod(price, tick_size)
    if remainder != 0:
        raise UnitError(f"{price} is not a multiple of the tick size {tick_size}")
    return int(ticks)


def from_ticks(ticks: int, tick_size: Decimal) -> Decimal:
    """Convert integer ticks back to a Decimal price, normalised to the tick size's exponent."""
    return (tick_size * ticks).quantize(tick_size)
