"""Per-instrument engine state: static parameters, trading phase, price band and order stores."""

from __future__ import annotations

from decimal import Decimal

from sortedcontainers import SortedList

from tradingfloor.exchange.engine.book import OrderBook
from tradingfloor.exchange.engine.commands import Schedule
from tradingfloor.exchange.engine.order import Order
from tradingfloor.exchange.engine.types import (
    BAND_REJECT,
    PH_CLOSING_AUCTION,
    PH_CONTINUOUS,
    PH_OPENING_AUCTION,
    PH_PRE_OPEN,
    BandAction,
    Phase,
)

__all__ = ["MAX_BAND_BPS", "NO_TIMER", "NS_PER_DAY", "Instrument", "band_limits"]

NS_PER_DAY = 86_400_000_000_000
NO_TIMER = 1 << 62  # "never" for timers; larger than any nanosecond timestamp in use
MAX_BAND_BPS = 9_999  # a price band is narrower than ±100% of the reference


def band_limits(reference_price: int, band_bps: int) -> tuple[int, int] | None:
    """The lowest and highest price a band of ``band_bps`` around ``reference_price`` lets
    through (ticks), or None when there is no band (no reference or ``band_bps`` 0)."""
    if not (band_bps and reference_price):
        return None
    width = reference_price * band_bps // 10_000
    return reference_price - width, reference_price + width


CALL_PHASES = frozenset({PH_PRE_OPEN, PH_OPENING_AUCTION, PH_CLOSING_AUCTION})


class Instrument:
    """A listed symbol: parameters (tick, lot, band, collar, schedule) plus its live state."""

    __slots__ = (
        "auction_orders",
        "band_action",
        "band_bps",
        "band_hi",
        "band_lo",
        "book",
        "collar_bps",
        "currency",
        "halted_from",
        "held",
        "last_price",
        "lot_size",
        "pause_ns",
        "peg_ref",
        "pegs",
        "phase",
        "reference_price",
        "resume_at",
        "sched_next",
        "sched_step",
        "schedule",
        "stops_down",
        "stops_up",
        "symbol",
        "tick_size",
        "trailing",
        "volume",
    )

    def __init__(
        self,
        symbol: str,
        tick_size: str,
        lot_size: int,
        currency: str,
        collar_bps: int,
        phase: Phase,
        schedule: Schedule | None,
    ) -> None:
        Decimal(tick_size)  # validated by the caller; kept as text for the edges
        self.symbol = symbol
        self.tick_size = tick_size
        self.lot_size = lot_size
        self.currency = currency
        self.collar_bps = collar_bps
        self.phase = phase
        self.schedule = schedule
        self.sched_next = NO_TIMER
        self.sched_step = 0
        self.book = OrderBook()
        self.reference_price = 0
        self.band_bps = 0
        self.band_action = BAND_REJECT
        self.pause_ns = 0
        self.band_lo = 0
        self.band_hi = NO_TIMER
        self.resume_at = NO_TIMER  # end of a price-band pause
        self.halted_from = PH_CONTINUOUS  # the phase a halt interrupted, resumed after it
        self.last_price = 0
        self.volume = 0
        # Orders not in the book, each store keyed by order id (ascending = arrival order).
        self.stops_up: SortedList = SortedList()  # (trigger, order_id): fire when last >= trigger
        self.stops_down: SortedList = (
            SortedList()
        )  # (-trigger, order_id): fire when last <= trigger
        self.trailing: dict[int, Order] = {}
        self.held: dict[int, Order] = {}  # on-close orders held during continuous trading
        self.auction_orders: dict[int, Order] = {}  # market orders waiting for an uncross
        self.pegs: dict[int, Order] = {}
        self.peg_ref: tuple[int, int] = (0, 0)  # (bid, ask) the pegs were last priced from

    def set_band(self, band_bps: int, band_action: BandAction, pause_ns: int) -> None:
        self.band_bps = band_bps
        self.band_action = band_action
        self.pause_ns = pause_ns
        self.recompute_band()

    def recompute_band(self) -> None:
        limits = band_limits(self.reference_price, self.band_bps)
        self.band_lo, self.band_hi = limits if limits is not None else (0, NO_TIMER)

    def in_call(self) -> bool:
        return self.phase in CALL_PHASES
