"""Instruments as the broker lists them (Alpaca's "assets"), learnt from the venue's events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

__all__ = ["ASSET_NAMESPACE", "Instrument", "minor_units_per_tick"]

ASSET_NAMESPACE: Final = uuid.UUID("6f1d3c2e-7a7b-4f43-9d1e-2b7f3c1a9e55")
_MINOR_UNIT: Final = Decimal("0.01")


def minor_units_per_tick(tick_size: Decimal) -> int:
    """Cents per tick; 0 when the tick is not a whole number of cents (not tradable here)."""
    ratio = tick_size / _MINOR_UNIT
    return int(ratio) if ratio == ratio.to_integral_value() and ratio > 0 else 0


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    tick_size: Decimal
    lot_size: int
    currency: str
    venue: str

    tick_minor: int = 0  # cents per tick, from tick_size (0: not tradable here)
    asset_id: str = ""  # Alpaca's asset id: a UUID derived from venue and symbol

    def __post_init__(self) -> None:
        object.__setattr__(self, "tick_minor", minor_units_per_tick(self.tick_size))
        asset = uuid.uuid5(ASSET_NAMESPACE, f"{self.venue}:{self.symbol}")
        object.__setattr__(self, "asset_id", str(asset))

    @property
    def tradable(self) -> bool:
        return self.tick_minor > 0 and self.currency == "USD"
