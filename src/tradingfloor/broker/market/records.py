"""The records of the broker's market history (``history.py``): trades, quotes and bars, as
plain tuples of integers (prices in ticks, sizes in shares, times in ns since the epoch).

They are the history's answers, its stored rows and its checkpoint's rows
(``history_state.py``) alike.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Final, NamedTuple

from tradingfloor.exchange.engine.types import Phase

__all__ = ["NS_PER_DAY", "NS_PER_MINUTE", "BarRecord", "QuoteRecord", "TradeRecord"]

NS_PER_MINUTE: Final = 60_000_000_000
NS_PER_DAY: Final = 24 * 60 * NS_PER_MINUTE


class TradeRecord(NamedTuple):
    trade_id: int
    ts: int
    price: int  # ticks
    size: int  # shares
    taker_side: str  # "buy" / "sell"; "" for an auction trade
    phase: Phase  # the instrument's trading phase when it traded


class QuoteRecord(NamedTuple):
    key: int  # 1, 2, ... per symbol
    ts: int
    bid: int  # ticks; 0 when there is no bid
    bid_size: int
    ask: int  # ticks; 0 when there is no ask
    ask_size: int


class BarRecord(NamedTuple):
    start: int  # ns since the epoch, a multiple of the bar's length
    open: int
    high: int
    low: int
    close: int
    volume: int
    trade_count: int
    notional: int  # sum of price (ticks) x size over the bar's trades

    @property
    def vwap(self) -> Fraction:
        """The volume-weighted average price in ticks, exactly."""
        return Fraction(self.notional, self.volume)

    @staticmethod
    def first(start: int, price: int, size: int) -> BarRecord:
        return BarRecord(start, price, price, price, price, size, 1, price * size)

    def add(self, price: int, size: int) -> BarRecord:
        return BarRecord(
            self.start,
            self.open,
            max(self.high, price),
            min(self.low, price),
            price,
            self.volume + size,
            self.trade_count + 1,
            self.notional + price * size,
        )
