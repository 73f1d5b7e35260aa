"""What simulated participants see of the market: a projection of engine events per symbol.

``MarketView.on_events`` takes every event of one engine in sequence order and keeps, per listed
symbol, the displayed book (price -> size from ``level`` events), the last trade, cumulative
volume and notional, the reference price with its price band, the tick and lot size and the
trading phase. Integers (ticks, shares) throughout; no clock, no randomness.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Final

from sortedcontainers import SortedDict

from tradingfloor.core.limits import MAX_PRICE_TICKS
from tradingfloor.exchange.engine.events import (
    Event,
    InstrumentAdded,
    InstrumentUpdated,
    LevelChanged,
    PhaseChanged,
    Trade,
)
from tradingfloor.exchange.engine.instrument import band_limits
from tradingfloor.exchange.engine.types import Phase, Side
from tradingfloor.sim.checkpoint_state import MarketRecord, SymbolRecord

__all__ = [
    "AVERAGE_EXTRA_DIGITS",
    "BPS",
    "NO_UPPER_BOUND",
    "MarketView",
    "SymbolView",
    "div_toward_zero",
]

AVERAGE_EXTRA_DIGITS: Final = 2  # an average price shows this many decimals more than a tick
BPS: Final = 10_000  # basis points in one
NO_UPPER_BOUND: Final = MAX_PRICE_TICKS - 1  # the engine's largest price


def div_toward_zero(numerator: int, denominator: int) -> int:
    """Integer division rounding toward zero (``//`` floors, which biases negative moves)."""
    q = abs(numerator) // abs(denominator)
    return q if (numerator >= 0) == (denominator > 0) else -q


class SymbolView:
    """One instrument as participants see it; every price in ticks, every size in shares."""

    __slots__ = (
        "asks",
        "band_bps",
        "band_hi",
        "band_lo",
        "bids",
        "high",
        "last_price",
        "lot_size",
        "low",
        "notional",
        "phase",
        "reference_price",
        "symbol",
        "tick_size",
        "trades",
        "volume",
    )

    def __init__(self, symbol: str, tick_size: Decimal, lot_size: int, phase: Phase) -> None:
        self.symbol = symbol
        self.tick_size = tick_size
        self.lot_size = lot_size
        self.phase = phase
        self.bids: SortedDict = SortedDict()  # price -> displayed shares
        self.asks: SortedDict = SortedDict()
        self.reference_price = 0
        self.band_bps = 0
        self.band_lo = 1
        self.band_hi = NO_UPPER_BOUND
        self.last_price = 0
        self.high = 0
        self.low = 0
        self.volume = 0  # shares traded since listing
        self.notional = 0  # sum of price * qty over those trades, in ticks x shares
        self.trades = 0

    # --- reading -----------------------------------------------------------------------------

    @property
    def tradable(self) -> bool:
        """Only continuous trading takes the participants' orders the way they expect."""
        return self.phase is Phase.CONTINUOUS

    def best_bid(self) -> int:
        """Best displayed bid, 0 when there is none."""
        return int(self.bids.peekitem(-1)[0]) if self.bids else 0

    def best_ask(self) -> int:
        """Best displayed ask, 0 when there is none."""
        return int(self.asks.peekitem(0)[0]) if self.asks else 0

    def bid_size(self) -> int:
        return int(self.bids.peekitem(-1)[1]) if self.bids else 0

    def ask_size(self) -> int:
        return int(self.asks.peekitem(0)[1]) if self.asks else 0

    def best(self, side: Side) -> int:
        return self.best_bid() if side is Side.BUY else self.best_ask()

    def mid(self) -> int:
        """Midpoint rounded down, 0 unless both sides are shown."""
        bid, ask = self.best_bid(), self.best_ask()
        return (bid + ask) // 2 if bid and ask else 0

    def spread(self) -> int:
        """Ask minus bid in ticks, 0 unless both sides are shown."""
        bid, ask = self.best_bid(), self.best_ask()
        return ask - bid if bid and ask else 0

    def fair_price(self) -> int:
        """Mid if two-sided, else the last trade, else the reference price (0 if none)."""
        return self.mid() or self.last_price or self.reference_price

    def anchor_price(self) -> int:
        """Last trade, else mid, else reference: where the market last agreed on a price."""
        return self.last_price or self.mid() or self.reference_price

    def clamp(self, price: int) -> int:
        """``price`` moved into the price band (and to at least one tick)."""
        return min(max(price, self.band_lo, 1), self.band_hi)

    def in_band(self, price: int) -> bool:
        return self.band_lo <= price <= self.band_hi and price >= 1

    def bps_to_ticks(self, bps: int, price: int = 0) -> int:
        """``bps`` of ``price`` (default: the fair price) in whole ticks, at least 1."""
        base = price or self.fair_price()
        return max(1, base * bps // BPS)

    def to_price(self, ticks: int) -> Decimal:
        return (self.tick_size * ticks).quantize(self.tick_size)

    def average_price(self, notional: int, qty: int) -> Decimal | None:
        """``notional`` (ticks x shares) / ``qty`` as a price with two more decimals than a tick."""
        if qty <= 0:
            return None
        exact = Decimal(notional) * self.tick_size / Decimal(qty)
        return exact.quantize(self.tick_size.scaleb(-AVERAGE_EXTRA_DIGITS))

    # --- checkpoint ---------------------------------------------------------------------------

    def record(self) -> SymbolRecord:
        """Everything this view holds, for a checkpoint."""
        return SymbolRecord(
            symbol=self.symbol,
            tick_size=self.tick_size,
            lot_size=self.lot_size,
            phase=self.phase,
            bids=[(int(p), int(q)) for p, q in self.bids.items()],
            asks=[(int(p), int(q)) for p, q in self.asks.items()],
            reference_price=self.reference_price,
            band_bps=self.band_bps,
            band_lo=self.band_lo,
            band_hi=self.band_hi,
            last_price=self.last_price,
            high=self.high,
            low=self.low,
            volume=self.volume,
            notional=self.notional,
            trades=self.trades,
        )

    @classmethod
    def from_record(cls, record: SymbolRecord) -> SymbolView:
        """The view ``record`` was taken from (checked by ``decode_sim_state``)."""
        view = cls(record.symbol, record.tick_size, record.lot_size, record.phase)
        view.bids.update(record.bids)
        view.asks.update(record.asks)
        view.reference_price = record.reference_price
        view.band_bps = record.band_bps
        view.band_lo = record.band_lo
        view.band_hi = record.band_hi
        view.last_price = record.last_price
        view.high = record.high
        view.low = record.low
        view.volume = record.volume
        view.notional = record.notional
        view.trades = record.trades
        return view

    # --- updating ----------------------------------------------------------------------------

    def _set_band(self, reference: int, band_bps: int) -> None:
        self.reference_price = reference
        self.band_bps = band_bps
        limits = band_limits(reference, band_bps)  # the engine's own rule
        if limits is not None:
            self.band_lo, self.band_hi = max(1, limits[0]), limits[1]
        else:
            self.band_lo, self.band_hi = 1, NO_UPPER_BOUND


class MarketView:
    """Every symbol's ``SymbolView``, fed with the events of one engine in sequence order."""

    def __init__(self) -> None:
        self.symbols: dict[str, SymbolView] = {}
        self.last_ts = 0

    def get(self, symbol: str) -> SymbolView | None:
        return self.symbols.get(symbol)

    def record(self) -> MarketRecord:
        """Every symbol's view (listing order) and the last event time, for a checkpoint."""
        return MarketRecord(
            last_ts=self.last_ts, symbols=[view.record() for view in self.symbols.values()]
        )

    def restore(self, record: MarketRecord) -> None:
        """Become the view ``record`` was taken from (replaces whatever this view held)."""
        symbols = {r.symbol: SymbolView.from_record(r) for r in record.symbols}
        self.symbols = symbols
        self.last_ts = record.last_ts

    def on_events(self, events: Iterable[Event]) -> None:
        for event in events:
            self.apply(event)

    def apply(self, event: Event) -> None:
        """Apply one event; events that do not change the public market picture are ignored."""
        self.last_ts = event.ts
        if isinstance(event, LevelChanged):
            view = self.symbols.get(event.symbol)
            if view is None:
                return
            book = view.bids if event.side is Side.BUY else view.asks
            if event.qty:
                book[event.price] = event.qty
            else:
                book.pop(event.price, None)
        elif isinstance(event, Trade):
            view = self.symbols.get(event.symbol)
            if view is None:
                return
            price = event.price
            view.last_price = price
            view.volume += event.qty
            view.notional += price * event.qty
            view.trades += 1
            view.high = max(view.high, price)
            view.low = price if view.low == 0 else min(view.low, price)
        elif isinstance(event, InstrumentAdded):
            self.symbols[event.symbol] = SymbolView(
                event.symbol, Decimal(event.tick_size), event.lot_size, event.phase
            )
        elif isinstance(event, InstrumentUpdated):
            view = self.symbols.get(event.symbol)
            if view is not None:
                view._set_band(event.reference_price, event.band_bps)
        elif isinstance(event, PhaseChanged):
            view = self.symbols.get(event.symbol)
            if view is not None:
                view.phase = event.phase
