"""A momentum trader: samples the price every turn, compares a short with a long moving average and
trades (marketable IOC) in the direction of the trend, within a position limit.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import ClassVar

from tradingfloor.exchange.engine.commands import Command
from tradingfloor.exchange.engine.types import Side, TimeInForce
from tradingfloor.sim.market import BPS, MarketView
from tradingfloor.sim.participant import NS_PER_S, Participant

__all__ = ["MomentumParams", "MomentumTrader"]


@dataclass(frozen=True, slots=True)
class MomentumParams:
    """Windows are counted in samples, one per turn."""

    interval_ns: int = NS_PER_S  # mean time between samples
    short_window: int = 8
    long_window: int = 40
    threshold_bps: int = 3  # short average this far above (below) the long one: buy (sell)
    lot: int = 100
    max_lots: int = 4  # order size 1..max_lots lots
    max_position: int = 4_000
    cross_ticks: int = 2  # the IOC limit: this many ticks through the touch
    cooldown_ns: int = 4 * NS_PER_S  # least time between two of its trades
    unwind_pct: int = 20  # without a trend, chance per turn to cut the position by one lot

    def __post_init__(self) -> None:
        if not 1 <= self.short_window < self.long_window:
            raise ValueError("need 1 <= short_window < long_window")
        if self.interval_ns <= 0 or self.lot <= 0 or self.max_lots <= 0:
            raise ValueError("interval, lot and max_lots must be positive")
        if self.threshold_bps < 0 or self.max_position <= 0:
            raise ValueError("threshold must be >= 0 and max_position positive")


class MomentumTrader(Participant):
    """Trend follower in one symbol. See module docstring."""

    kind: ClassVar[str] = "momentum"

    def __init__(
        self, member: str, symbol: str, *, seed: int, params: MomentumParams | None = None
    ) -> None:
        super().__init__(member, seed=seed)
        self.symbol = symbol
        self.params = params if params is not None else MomentumParams()
        self.interval_ns = self.params.interval_ns
        self.samples: deque[int] = deque(maxlen=self.params.long_window)
        self._last_trade_ns = -(1 << 62)

    def signal(self) -> int:
        """+1 up-trend, -1 down-trend, 0 none (or not enough samples yet)."""
        p = self.params
        if len(self.samples) < p.long_window:
            return 0
        short = sum(list(self.samples)[-p.short_window :])
        long = sum(self.samples)
        # short/short_window vs long/long_window, cross-multiplied to stay in integers
        s, lg = short * p.long_window, long * p.short_window
        margin = lg * p.threshold_bps // BPS
        if s > lg + margin:
            return 1
        if s < lg - margin:
            return -1
        return 0

    def decide(self, now_ns: int, market: MarketView, out: list[Command]) -> None:
        view = market.get(self.symbol)
        if view is None or not view.tradable:
            return
        price = view.last_price or view.mid()
        if price <= 0:
            return
        self.samples.append(price)
        p = self.params
        if now_ns - self._last_trade_ns < p.cooldown_ns:
            return
        trend = self.signal()
        position = self.position.get(self.symbol, 0)
        qty = p.lot * (1 + self.rng.randrange(p.max_lots))
        side: Side | None = None
        if trend > 0 and position < p.max_position:
            side, qty = Side.BUY, min(qty, p.max_position - position)
        elif trend < 0 and position > -p.max_position:
            side, qty = Side.SELL, min(qty, p.max_position + position)
        elif trend == 0 and position and self.percent(p.unwind_pct):
            side = Side.SELL if position > 0 else Side.BUY
            qty = min(p.lot, abs(position))
        if side is None:
            return
        touch = view.best_ask() if side is Side.BUY else view.best_bid()
        if not touch:
            return
        limit = touch + p.cross_ticks if side is Side.BUY else touch - p.cross_ticks
        if self.new_order(out, view, side, qty, limit, tif=TimeInForce.IOC) is not None:
            self._last_trade_ns = now_ns
