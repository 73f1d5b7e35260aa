"""A VWAP-style slicer: works a parent order over a horizon along a U-shaped volume profile with
child limit orders at the touch, chases slices that stay unfilled, never works more than the
parent's remainder, and reports its average price against the market VWAP over the horizon.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar, Final

import msgspec

from tradingfloor.exchange.engine.commands import Command
from tradingfloor.exchange.engine.types import Side
from tradingfloor.sim.market import BPS, MarketView, SymbolView
from tradingfloor.sim.participant import NS_PER_S, OrderState, Participant

__all__ = [
    "MAX_BUCKETS",
    "MAX_PARENTS",
    "START_DELAY_NS",
    "ParentOrder",
    "VwapParams",
    "VwapReport",
    "VwapSlicer",
    "profile",
]

MAX_BUCKETS: Final = 1_000  # most slices in one volume profile
MAX_PARENTS: Final = 1_000  # parent orders kept for the reports (a live demo runs for days)
FINISH_TURNS: Final = 2  # the profile ends this many turns before the horizon: time to catch up
LATE_SPEEDUP: Final = 4  # past the profile's end, turns come this many times as often
START_DELAY_NS: Final = 10 * NS_PER_S  # default wait before the first parent (books fill up)
_BPS_QUANTUM: Final = Decimal("0.01")


def profile(buckets: int) -> list[int]:
    """Integer weights of a U-shaped intraday volume profile: the ends weigh twice the middle."""
    if not 1 <= buckets <= MAX_BUCKETS:
        raise ValueError(f"buckets must be 1..{MAX_BUCKETS}")
    n = buckets - 1
    if n == 0:
        return [1]
    return [n * n + (2 * k - n) ** 2 for k in range(buckets)]


@dataclass(frozen=True, slots=True)
class VwapParams:
    """The parent order and how it is worked."""

    symbol: str
    side: Side = Side.BUY
    qty: int = 20_000
    horizon_ns: int = 30 * 60 * NS_PER_S
    buckets: int = 30  # volume-profile slices over the horizon
    start_delay_ns: int = START_DELAY_NS  # first parent starts this long after begin()
    interval_ns: int = 3 * NS_PER_S  # mean time between turns
    chase_ns: int = 20 * NS_PER_S  # a child unfilled this long while behind schedule crosses
    min_slice: int = 100  # smallest child order (shares)
    repeat: bool = True  # after a parent, pause, then work one on the other side
    pause_ns: int = 60 * NS_PER_S

    def __post_init__(self) -> None:
        if self.qty <= 0 or self.horizon_ns <= 0 or self.interval_ns <= 0:
            raise ValueError("qty, horizon and interval must be positive")
        if not 1 <= self.buckets <= MAX_BUCKETS:
            raise ValueError(f"buckets must be 1..{MAX_BUCKETS}")
        if self.min_slice <= 0 or self.chase_ns < 0 or self.pause_ns < 0:
            raise ValueError("min_slice must be positive, chase and pause not negative")


@dataclass(slots=True)
class ParentOrder:
    """One parent: what is due when, what is done, and the market around it."""

    number: int
    side: Side
    qty: int
    start_ns: int
    end_ns: int  # the profile is due by then; afterwards the rest is taken at the far touch
    deadline_ns: int  # end of the horizon
    weights: list[int]
    filled: int = 0
    notional: int = 0  # ticks x shares of the fills
    children: int = 0
    done_ns: int = 0
    market_volume: int = 0  # the symbol's volume / notional when the parent started ...
    market_notional: int = 0
    market_volume_end: int = -1  # ... and when it ended (-1: still working)
    market_notional_end: int = 0
    _prefix: list[int] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        total = 0
        self._prefix = []
        for w in self.weights:
            self._prefix.append(total)
            total += w
        self._prefix.append(total)

    def target(self, now_ns: int) -> int:
        """Shares the profile wants done by ``now_ns`` (all of them from the end of the horizon)."""
        horizon = self.end_ns - self.start_ns
        elapsed = now_ns - self.start_ns
        if elapsed <= 0:
            return 0
        if elapsed >= horizon:
            return self.qty
        n = len(self.weights)
        k = elapsed * n // horizon
        within = elapsed * n - k * horizon  # progress in bucket k, in units of horizon / n / n
        due = self._prefix[k] * horizon + self.weights[k] * within
        return self.qty * due // (self._prefix[n] * horizon)

    @property
    def done(self) -> bool:
        return self.filled >= self.qty


class VwapReport(msgspec.Struct, frozen=True, kw_only=True):
    """How one parent order went; prices as decimals, ``None`` where nothing traded."""

    member: str
    symbol: str
    side: Side
    qty: int
    filled: int
    completed: bool
    start_ns: int
    end_ns: int  # end of the horizon
    done_ns: int  # when the last share filled, 0 if not (yet)
    children: int
    average_price: Decimal | None
    market_vwap: Decimal | None
    slippage_bps: Decimal | None  # positive: worse than the market VWAP


class VwapSlicer(Participant):
    """See module docstring. One child order at a time, tagged with its parent's number."""

    kind: ClassVar[str] = "vwap"

    def __init__(self, member: str, *, seed: int, params: VwapParams) -> None:
        super().__init__(member, seed=seed)
        self.params = params
        self.symbol = params.symbol
        self.interval_ns = params.interval_ns
        self.parents: list[ParentOrder] = []  # the last MAX_PARENTS, the current one last
        self.current: ParentOrder | None = None
        self._started = 0  # parent orders started so far (numbers them, tags their children)
        self._weights = profile(params.buckets)
        self._next_parent_ns = 0
        self._next_side = params.side

    def begin(self, now_ns: int) -> None:
        super().begin(now_ns)
        if self.current is None:
            self._next_parent_ns = now_ns + self.params.start_delay_ns

    # --- the turn ------------------------------------------------------------------------------

    def decide(self, now_ns: int, market: MarketView, out: list[Command]) -> None:
        view = market.get(self.symbol)
        if view is None or not view.tradable:
            return
        parent = self.current
        number = parent.number if parent is not None else -1
        for order in self.open_orders(self.symbol):
            # Left over from an earlier parent or run, or outside a band that moved (in reject
            # mode it would block matching): cancel; the slicing sends a new child if due.
            if order.tag != number or not view.in_band(order.price):
                self.cancel(out, order)
        if parent is None:
            if now_ns >= self._next_parent_ns:
                parent = self._start_parent(now_ns, view)
            else:
                self.wake_at(self._next_parent_ns)
                return
        if parent.done:
            self._finish(parent, now_ns, view)
            return
        self._work(parent, now_ns, view, out)

    def _start_parent(self, now_ns: int, view: SymbolView) -> ParentOrder:
        p = self.params
        self._started += 1
        parent = ParentOrder(
            number=self._started,
            side=self._next_side,
            qty=p.qty,
            start_ns=now_ns,
            end_ns=now_ns + p.horizon_ns - min(p.horizon_ns // 5, FINISH_TURNS * p.interval_ns),
            deadline_ns=now_ns + p.horizon_ns,
            weights=self._weights,
            market_volume=view.volume,
            market_notional=view.notional,
        )
        self.parents.append(parent)
        if len(self.parents) > MAX_PARENTS:
            del self.parents[: len(self.parents) - MAX_PARENTS]
        self.current = parent
        return parent

    def _finish(self, parent: ParentOrder, now_ns: int, view: SymbolView) -> None:
        parent.market_volume_end = view.volume
        parent.market_notional_end = view.notional
        self.current = None
        if self.params.repeat:
            self._next_side = Side.SELL if parent.side is Side.BUY else Side.BUY
            self._next_parent_ns = now_ns + self.params.pause_ns
            self.wake_at(self._next_parent_ns)
        else:
            self._next_parent_ns = 1 << 62

    def _work(self, parent: ParentOrder, now_ns: int, view: SymbolView, out: list[Command]) -> None:
        p = self.params
        side = parent.side
        late = now_ns >= parent.end_ns
        children = [o for o in self.open_orders(self.symbol) if o.tag == parent.number]
        working = sum(o.leaves for o in children)
        remaining = parent.qty - parent.filled
        behind = parent.target(now_ns) - parent.filled
        touch = view.best_bid() if side is Side.BUY else view.best_ask()
        far = view.best_ask() if side is Side.BUY else view.best_bid()
        if late:
            self.wake_at(now_ns + p.interval_ns // LATE_SPEEDUP)  # catching up: look more often
        for child in children:
            if child.busy:
                continue
            overdue = now_ns - child.sent_ns >= p.chase_ns and behind >= child.leaves
            if (late or overdue) and far:
                price = far  # chase: take the other side
            elif touch and (touch > child.price if side is Side.BUY else touch < child.price):
                price = touch  # the touch moved away: follow it
            else:
                continue
            self.replace(out, view, child, price=price, leaves=child.leaves)
        if children or remaining <= 0:
            return
        if any(o.cancelling and o.tag == parent.number for o in self.live_orders()):
            return  # a child is being cancelled and might still fill: wait for the answer
        want = remaining if late else min(remaining - working, max(behind, 0))
        if want < min(p.min_slice, remaining):
            return
        if late:
            price = far
        elif touch:
            price = touch  # join the touch
        elif far:
            price = far - 1 if side is Side.BUY else far + 1  # our side is empty: improve it
        else:
            price = view.fair_price()
        if price <= 0:
            return
        sent = self.new_order(out, view, side, want, price)
        if sent is not None:
            sent.tag = parent.number
            parent.children += 1

    def on_fill(self, order: OrderState | None, side: Side, qty: int, price: int) -> None:
        parent = self.current
        if parent is None or order is None or order.tag != parent.number:
            return
        parent.filled += qty
        parent.notional += qty * price
        if parent.done and not parent.done_ns:
            parent.done_ns = self.now_ns
            self.wake_at(self.now_ns)  # report and settle at the next turn

    # --- reporting -----------------------------------------------------------------------------

    def reports(self, market: MarketView) -> list[VwapReport]:
        """One report per parent kept (the last ``MAX_PARENTS``); a working one is measured up
        to now."""
        view = market.get(self.symbol)
        if view is None:
            return []
        return [self._report(parent, view) for parent in self.parents]

    def _report(self, parent: ParentOrder, view: SymbolView) -> VwapReport:
        if parent.market_volume_end >= 0:
            volume_end, notional_end = parent.market_volume_end, parent.market_notional_end
        else:
            volume_end, notional_end = view.volume, view.notional
        average = view.average_price(parent.notional, parent.filled)
        market_vwap = view.average_price(
            notional_end - parent.market_notional, volume_end - parent.market_volume
        )
        slippage: Decimal | None = None
        if average is not None and market_vwap:
            sign = 1 if parent.side is Side.BUY else -1
            slippage = (sign * (average - market_vwap) * BPS / market_vwap).quantize(_BPS_QUANTUM)
        return VwapReport(
            member=self.member,
            symbol=self.symbol,
            side=parent.side,
            qty=parent.qty,
            filled=parent.filled,
            completed=parent.done,
            start_ns=parent.start_ns,
            end_ns=parent.deadline_ns,
            done_ns=parent.done_ns,
            children=parent.children,
            average_price=average,
            market_vwap=market_vwap,
            slippage_bps=slippage,
        )
