"""One account's position in one symbol: signed quantity, average cost, realized P&L, day P&L.

All amounts are integers in *price ticks x shares* of the instrument (multiply by the
instrument's ``tick_minor`` for minor units of cash). Nothing here reads a clock or does I/O.

Two ledgers are kept with the same average-cost logic:

* the **life** ledger (``cost_basis``, ``realized_pnl``) since the position was first opened;
* the **day** ledger (``day_cost_basis``, ``day_realized``), restarted by :meth:`Position.roll_day`
  at each trading day with the open quantity valued at the prior close, so that
  :meth:`Position.intraday_pnl` is the P&L of the current trading day.

Rounding rule (the only place where average cost is not an integer): when a fill closes
``closed`` of the ``|qty|`` open shares, the closed part's cost is

    ``closed_cost = cost_basis * closed // abs(qty)``  (floor division, i.e. towards -infinity)

and the remainder stays in the open part's basis: ``cost_basis_after = cost_basis - closed_cost``.
Total cost is therefore conserved exactly, a flat position always has a basis of exactly 0, and
over any sequence of fills ``realized + unrealized`` equals the exact cash flows; the rounding only
moves less than one tick x share per closing fill between realized and unrealized P&L (the
realized P&L of a partial close is rounded towards +infinity, the basis kept for the open part
absorbs the difference). Closing the whole position (or flipping through zero) realizes exactly,
and the average entry price never leaves the range of the prices of the fills that built it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

__all__ = ["Position"]

_SIDES = ("buy", "sell")


def _check_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {value!r}")
    return value


def _apply(qty: int, basis: int, delta: int, price: int) -> tuple[int, int]:
    """Average-cost update of one ledger; returns ``(new_basis, realized)``.

    ``qty`` is the signed quantity before the fill and ``delta`` the signed fill quantity.
    """
    if qty == 0 or (qty > 0) == (delta > 0):
        return basis + delta * price, 0
    open_abs = abs(qty)
    closed = min(abs(delta), open_abs)
    closed_cost = basis * closed // open_abs  # floor; exact when closed == open_abs
    closed_signed = closed if qty > 0 else -closed
    realized = closed_signed * price - closed_cost
    basis -= closed_cost
    rest = abs(delta) - closed
    if rest:  # flipped through zero: the remainder opens at the fill price
        basis += (rest if delta > 0 else -rest) * price
    return basis, realized


@dataclass(slots=True)
class Position:
    """A signed position (negative = short) under the average-cost method; see the module doc."""

    symbol: str
    qty: int = 0
    cost_basis: int = 0
    realized_pnl: int = 0
    day_cost_basis: int = 0
    day_realized: int = 0
    day: int = 0

    def apply_fill(self, side: str, qty: int, price: int) -> int:
        """Book one fill in both ledgers; return the realized P&L (ticks x shares) of this fill.

        Only the closing part of a fill realizes P&L; a fill that flips the position realizes the
        closing part and opens the rest at the fill price. Raises ``ValueError`` for a side other
        than ``'buy'``/``'sell'``, a quantity below 1 or a price below 1 tick.
        """
        if side not in _SIDES:
            raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
        if _check_int("qty", qty) <= 0:
            raise ValueError(f"fill qty must be positive, got {qty}")
        if _check_int("price", price) <= 0:
            raise ValueError(f"fill price must be a positive number of ticks, got {price}")
        delta = qty if side == "buy" else -qty
        self.cost_basis, realized = _apply(self.qty, self.cost_basis, delta, price)
        self.day_cost_basis, day_realized = _apply(self.qty, self.day_cost_basis, delta, price)
        self.qty += delta
        self.realized_pnl += realized
        self.day_realized += day_realized
        return realized

    def roll_day(self, day: int, prior_close: int) -> None:
        """Start trading day ``day`` (YYYYMMDD): the day ledger restarts at ``qty * prior_close``.

        A no-op when the position is already on ``day``; a day before the current one raises
        ``ValueError`` (days only move forward).
        """
        _check_int("day", day)
        _check_int("prior_close", prior_close)
        if day == self.day:
            return
        if day < self.day:
            raise ValueError(f"cannot roll back from day {self.day} to {day}")
        self.day = day
        self.day_cost_basis = self.qty * prior_close
        self.day_realized = 0

    def avg_entry_price(self) -> Fraction:
        """Average entry price in ticks (exact, positive for longs and shorts); 0 when flat."""
        if self.qty == 0:
            return Fraction(0)
        return Fraction(self.cost_basis, self.qty)

    def market_value(self, price: int) -> int:
        """Signed market value at ``price`` (ticks x shares): negative for a short."""
        return self.qty * price

    def unrealized_pnl(self, price: int) -> int:
        """Unrealized P&L of the open quantity at ``price``: ``qty * price - cost_basis``."""
        return self.qty * price - self.cost_basis

    def intraday_pnl(self, price: int) -> int:
        """P&L of the current trading day at ``price``: realized today plus change in value."""
        return self.qty * price - self.day_cost_basis + self.day_realized

    @property
    def side(self) -> str:
        """``'short'`` for a negative quantity, else ``'long'`` (a flat position reads as long)."""
        return "short" if self.qty < 0 else "long"
