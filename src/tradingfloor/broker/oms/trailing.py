"""Where the venue's trailing stops are: their high-water mark (Alpaca's ``hwm``) and stop.

The venue trails a trailing stop itself and reports only its trigger, so the broker follows
the same rule from the public trades. At acceptance the reference is the last trade price
(or, before any trade, what the accepted stop implies). When a venue command's trades move the
last price in the order's favour (up for a sell, down for a buy), the reference becomes that
price once the command is done (an aggressor and the stops it sets off move the price one
way, so the last price is the extreme one). The stop is the reference minus the trail for a
sell, plus it for a buy, the trail being an amount of ticks or ``reference * bps // 10_000``.
This is the engine's rule (``exchange/engine/triggers.py``) applied to the same events.

Entries are keyed by the venue's order id, which a replacement keeps; they live in memory
and are rebuilt from the venue's events at start-up (the broker reads the venue's events for
market state: all of them, or those after the checkpoint its market view was restored from,
``broker/market/venue_view.py``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

__all__ = ["Trail", "TrailTracker"]


@dataclass(slots=True)
class Trail:
    symbol: str
    is_buy: bool
    amount: int  # ticks, or 0 when the trail is a percentage
    bps: int
    ref: int  # the high-water mark of a sell (low of a buy), ticks

    @property
    def stop(self) -> int:
        offset = self.amount or self.ref * self.bps // 10_000
        return self.ref + offset if self.is_buy else max(self.ref - offset, 1)


class TrailTracker:
    """See module docstring."""

    def __init__(self) -> None:
        self._trails: dict[int, Trail] = {}

    def start(
        self,
        venue_order_id: int,
        symbol: str,
        *,
        is_buy: bool,
        amount: int,
        bps: int,
        last_price: int | None,
        accepted_stop: int,
    ) -> None:
        """A trailing stop the venue accepted with trigger ``accepted_stop``."""
        if last_price is None or last_price <= 0:
            if amount:
                ref = accepted_stop - amount if is_buy else accepted_stop + amount
            else:  # invert stop = ref -/+ ref * bps // 10_000 (see _inverse_bps)
                ref = _inverse_bps(accepted_stop, bps, is_buy=is_buy)
            last_price = max(ref, 1)
        self._trails[venue_order_id] = Trail(symbol, is_buy, amount, bps, last_price)

    def on_last_price(self, symbol: str, price: int) -> None:
        """The last price after a venue command (only commands that traded move it)."""
        for trail in self._trails.values():
            if trail.symbol == symbol and (
                price < trail.ref if trail.is_buy else price > trail.ref
            ):
                trail.ref = price

    def get(self, venue_order_id: int | None) -> Trail | None:
        return self._trails.get(venue_order_id) if venue_order_id is not None else None

    def stop(self, venue_order_id: int | None) -> None:
        """The order left the venue (filled, cancelled, expired, rejected)."""
        if venue_order_id is not None:
            self._trails.pop(venue_order_id, None)

    def items(self) -> list[tuple[int, Trail]]:
        """Every followed trailing stop as (venue order id, trail), in venue order id order."""
        return sorted(self._trails.items())

    def load(self, items: Iterable[tuple[int, Trail]]) -> None:
        """Replace every entry (a restored checkpoint)."""
        self._trails = dict(items)

    def retain(self, venue_order_ids: Collection[int]) -> int:
        """Forget the stops whose order is not among ``venue_order_ids`` (no longer open);
        return how many were forgotten."""
        gone = [oid for oid in self._trails if oid not in venue_order_ids]
        for oid in gone:
            del self._trails[oid]
        return len(gone)


def _inverse_bps(stop: int, bps: int, *, is_buy: bool) -> int:
    """A reference whose percentage trail gives exactly ``stop``.

    For a buy, ``ref + ref * bps // 10_000`` grows by at least a tick per tick of ``ref``, so
    one reference gives ``stop``: the division ``stop * 10_000 // (10_000 + bps)`` or the tick
    above it (the floor of the offset makes the division fall short by up to a tick). For a
    sell, ``ref - ref * bps // 10_000`` may give one stop for two references; the division
    gives the higher one, whose stop is exactly ``stop``. Either way the tracked stop equals
    the venue's, and so does every stop after it (a reference between two that give one stop
    gives that stop too); the mark is the venue's to within a tick.
    """
    if not is_buy:
        return stop * 10_000 // (10_000 - bps)
    ref = stop * 10_000 // (10_000 + bps)
    above = ref + 1
    return above if above + above * bps // 10_000 == stop else ref
