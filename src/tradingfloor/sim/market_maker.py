"""A market maker: quotes several levels on both sides of a fair price, skews for inventory and
re-quotes shortly after each fill, always inside the price band and never crossing (post-only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from tradingfloor.exchange.engine.commands import Command
from tradingfloor.exchange.engine.types import PostOnly, Side
from tradingfloor.sim.market import BPS, MarketView, SymbolView, div_toward_zero
from tradingfloor.sim.participant import NS_PER_MS, NS_PER_S, OrderState, Participant

__all__ = ["MAX_LEVELS", "MarketMaker", "MarketMakerParams"]

MAX_LEVELS: Final = 10  # most price levels one market maker quotes per side


@dataclass(frozen=True, slots=True)
class MarketMakerParams:
    """How a market maker quotes; spreads in basis points of the fair price (at least a tick)."""

    levels: int = 3  # price levels per side
    half_spread_bps: int = 3  # best bid/ask distance from the fair price
    level_step_bps: int = 2  # distance between two levels of one side
    level_qty: int = 200  # shares on the best level; level k shows (k + 1) times that
    max_position: int = 5_000  # from here on, the side that adds to the position backs off
    skew_bps: int = 4  # fair price shift at max_position (against the position)
    reversion_pct: int = 1  # per turn, pull the fair price this far toward the reference price
    requote_ns: int = 2 * NS_PER_S  # mean time between re-quotes
    reaction_ns: int = 150 * NS_PER_MS  # re-quote this long after a fill
    refill_pct: int = 50  # top up a level once less than this percentage of it is left

    def __post_init__(self) -> None:
        if not 1 <= self.levels <= MAX_LEVELS:
            raise ValueError(f"levels must be 1..{MAX_LEVELS}")
        if self.level_qty <= 0 or self.max_position <= 0:
            raise ValueError("level_qty and max_position must be positive")
        if self.half_spread_bps <= 0 or self.level_step_bps <= 0 or self.requote_ns <= 0:
            raise ValueError("spreads and the re-quote interval must be positive")
        if not 0 <= self.reversion_pct <= 100 or not 0 <= self.refill_pct <= 100:
            raise ValueError("percentages must be 0..100")


class MarketMaker(Participant):
    """Two-sided quotes in one symbol. See module docstring.

    Fair price: the last trade (else mid, else reference), pulled ``reversion_pct`` toward the
    reference price (so prices wander but stay well inside the band), moved against the
    inventory by up to ``skew_bps``, plus a random tick. Each turn it lines its live orders of a
    side up with the wanted prices: moved by replace, missing ones sent, extra ones cancelled.
    """

    kind: ClassVar[str] = "market_maker"

    def __init__(
        self, member: str, symbol: str, *, seed: int, params: MarketMakerParams | None = None
    ) -> None:
        super().__init__(member, seed=seed)
        self.symbol = symbol
        self.params = params if params is not None else MarketMakerParams()
        self.interval_ns = self.params.requote_ns

    def fair_price(self, view: SymbolView) -> int:
        p = self.params
        anchor = view.anchor_price()
        if anchor <= 0:
            return 0
        ref = view.reference_price
        if ref > 0:
            anchor += div_toward_zero((ref - anchor) * p.reversion_pct, 100)
        position = self.position.get(self.symbol, 0)
        capped = max(-p.max_position, min(p.max_position, position))
        skew = div_toward_zero(anchor * p.skew_bps * capped, BPS * p.max_position)
        return anchor - skew + self.rng.randrange(-1, 2)

    def quotes(self, view: SymbolView) -> dict[Side, list[tuple[int, int]]]:
        """Wanted (price, qty) per side, best level first, each inside the price band."""
        p = self.params
        fair = self.fair_price(view)
        wanted: dict[Side, list[tuple[int, int]]] = {Side.BUY: [], Side.SELL: []}
        if fair <= 0:
            return wanted
        half = view.bps_to_ticks(p.half_spread_bps, fair)
        step = view.bps_to_ticks(p.level_step_bps, fair)
        # The best bid and ask always fit in the band: after the band narrows (or its reference
        # moves) away from the last trade, quoting around that trade would leave the book empty
        # or one-sided, and nothing would trade to move the anchor back.
        width = view.band_hi - view.band_lo
        if width >= 2:
            half = min(half, width // 2)
            fair = min(max(fair, view.band_lo + half), view.band_hi - half)
        position = self.position.get(self.symbol, 0)
        # At the position limit the side that would add to it backs off by a whole ladder.
        bid_back = p.levels * step if position >= p.max_position else 0
        ask_back = p.levels * step if position <= -p.max_position else 0
        for k in range(p.levels):
            qty = p.level_qty * (k + 1)
            bid = fair - half - k * step - bid_back
            ask = fair + half + k * step + ask_back
            if view.in_band(bid):
                wanted[Side.BUY].append((bid, qty))
            if view.in_band(ask):
                wanted[Side.SELL].append((ask, qty))
        return wanted

    def decide(self, now_ns: int, market: MarketView, out: list[Command]) -> None:
        view = market.get(self.symbol)
        if view is None or not view.tradable:
            return
        wanted = self.quotes(view)
        # Move the side that gets out of the way first: bids moving up past our own asks would
        # be repriced (post-only) behind them, and asks moving down behind our bids.
        sides = [Side.BUY, Side.SELL]
        bids = wanted[Side.BUY]
        asks = self.open_orders(self.symbol, Side.SELL)
        if bids and asks and bids[0][0] >= min(o.price for o in asks):
            sides.reverse()
        for side in sides:
            self._align(out, view, side, wanted[side])

    def _align(
        self, out: list[Command], view: SymbolView, side: Side, levels: list[tuple[int, int]]
    ) -> None:
        # Best first: bids by price down, asks by price up.
        mine = sorted(
            self.open_orders(self.symbol, side),
            key=lambda o: -o.price if side is Side.BUY else o.price,
        )
        refill = self.params.refill_pct
        # A quote within half a level step of its wanted price stays (keeps its priority).
        tolerance = view.bps_to_ticks(self.params.level_step_bps) // 2
        for k, (price, qty) in enumerate(levels):
            if k < len(mine):
                order = mine[k]
                moved = abs(order.price - price) > tolerance
                # Left outside the band (the band moved): in reject mode it blocks matching.
                outside = not view.in_band(order.price)
                stale = moved or outside or order.leaves * 100 < qty * refill
                if stale:
                    self.replace(out, view, order, price=price, leaves=qty)
            else:
                self.new_order(out, view, side, qty, price, post_only=PostOnly.REPRICE)
        for order in mine[len(levels) :]:
            self.cancel(out, order)

    def on_fill(self, order: OrderState | None, side: Side, qty: int, price: int) -> None:
        self.wake_at(self.now_ns + self.params.reaction_ns)
