"""A noise trader: random marketable (IOC) and passive (day) limit orders of random size, with a
position limit and a lifetime after which its passive orders are cancelled. It leans a little
toward value: above the reference price it sells more often than it buys, below it buys more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from tradingfloor.exchange.engine.commands import Command
from tradingfloor.exchange.engine.types import Side, TimeInForce
from tradingfloor.sim.market import BPS, MarketView, SymbolView, div_toward_zero
from tradingfloor.sim.participant import NS_PER_S, Participant

__all__ = ["MIN_SIDE_PCT", "NoiseParams", "NoiseTrader"]

MIN_SIDE_PCT: Final = 10  # however far the price strays, each side keeps this chance


@dataclass(frozen=True, slots=True)
class NoiseParams:
    """How a noise trader picks its orders."""

    interval_ns: int = 3 * NS_PER_S  # mean time between orders
    marketable_pct: int = 45  # share of orders that cross the spread (IOC)
    lot: int = 100  # order sizes are 1..max_lots times this (rounded to the instrument's lot)
    max_lots: int = 5
    max_position: int = 20_000  # beyond this, only orders that reduce the position
    cross_ticks: int = 3  # a marketable order's limit: up to this many ticks through the touch
    passive_bps: int = 10  # a passive order rests up to this far behind the touch
    max_open: int = 4  # passive orders alive at once; the oldest goes first
    lifetime_ns: int = 60 * NS_PER_S  # passive orders older than this are cancelled
    value_tilt_bps: int = 200  # this far above (below) the reference price: buys 0% (100%)

    def __post_init__(self) -> None:
        if self.interval_ns <= 0 or self.lot <= 0 or self.max_lots <= 0:
            raise ValueError("interval, lot and max_lots must be positive")
        if not 0 <= self.marketable_pct <= 100:
            raise ValueError("marketable_pct must be 0..100")
        if self.max_position <= 0 or self.max_open <= 0 or self.lifetime_ns <= 0:
            raise ValueError("max_position, max_open and lifetime must be positive")


class NoiseTrader(Participant):
    """Random orders in one symbol. See module docstring."""

    kind: ClassVar[str] = "noise"

    def __init__(
        self, member: str, symbol: str, *, seed: int, params: NoiseParams | None = None
    ) -> None:
        super().__init__(member, seed=seed)
        self.symbol = symbol
        self.params = params if params is not None else NoiseParams()
        self.interval_ns = self.params.interval_ns

    def decide(self, now_ns: int, market: MarketView, out: list[Command]) -> None:
        view = market.get(self.symbol)
        if view is None or not view.tradable:
            return
        self._tidy(now_ns, view, out)
        p = self.params
        position = self.position.get(self.symbol, 0)
        if position >= p.max_position:
            side = Side.SELL
        elif position <= -p.max_position:
            side = Side.BUY
        else:
            side = Side.BUY if self.percent(self.buy_pct(view)) else Side.SELL
        qty = p.lot * (1 + self.rng.randrange(p.max_lots))
        if self.percent(p.marketable_pct):
            self._marketable(out, view, side, qty)
        else:
            self._passive(out, view, side, qty)

    def buy_pct(self, view: SymbolView) -> int:
        """Chance of a buy: 50%, less above the reference price and more below it."""
        p = self.params
        ref, price = view.reference_price, view.anchor_price()
        if ref <= 0 or price <= 0 or p.value_tilt_bps <= 0:
            return 50
        deviation_bps = div_toward_zero((price - ref) * BPS, ref)
        tilt = div_toward_zero(50 * deviation_bps, p.value_tilt_bps)
        return max(MIN_SIDE_PCT, min(100 - MIN_SIDE_PCT, 50 - tilt))

    def _tidy(self, now_ns: int, view: SymbolView, out: list[Command]) -> None:
        """Cancel passive orders past their lifetime or outside the price band (left there when
        the band moved: in reject mode they would block matching), and the oldest beyond
        ``max_open``."""
        p = self.params
        resting = [o for o in self.open_orders(self.symbol) if o.tif is TimeInForce.DAY]
        excess = len(resting) - p.max_open + 1  # make room for this turn's order
        for order in resting:
            stale = now_ns - order.sent_ns >= p.lifetime_ns or not view.in_band(order.price)
            if (excess > 0 or stale) and self.cancel(out, order):
                excess -= 1

    def _marketable(self, out: list[Command], view: SymbolView, side: Side, qty: int) -> None:
        touch = view.best_ask() if side is Side.BUY else view.best_bid()
        if not touch:
            return  # nothing to take: try again next turn
        through = self.rng.randrange(self.params.cross_ticks + 1)
        price = touch + through if side is Side.BUY else touch - through
        self.new_order(out, view, side, qty, price, tif=TimeInForce.IOC)

    def _passive(self, out: list[Command], view: SymbolView, side: Side, qty: int) -> None:
        touch = view.best_bid() if side is Side.BUY else view.best_ask()
        base = touch or view.fair_price()
        if base <= 0:
            return
        behind = self.rng.randrange(view.bps_to_ticks(self.params.passive_bps, base) + 1)
        # Into the band first (new_order would move it there anyway): a touch left outside the
        # band, e.g. after the band narrowed, must not make the order cross once moved.
        price = view.clamp(base - behind if side is Side.BUY else base + behind)
        opposite = view.best_ask() if side is Side.BUY else view.best_bid()
        if opposite and (price >= opposite if side is Side.BUY else price <= opposite):
            return  # the book moved through: a passive order would cross
        self.new_order(out, view, side, qty, price)
