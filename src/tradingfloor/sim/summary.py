"""What a simulation run produced: ``Tally`` counts commands and events as they happen and turns
them into a ``Summary`` (orders, trades, volume, spreads per symbol, the VWAP slicer, a hash of
the event stream). Everything but the wall-clock fields is a pure function of the run's input.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from decimal import Decimal
from typing import Final

import msgspec

from tradingfloor.exchange.engine.commands import CancelOrder, Command, NewOrder, ReplaceOrder
from tradingfloor.exchange.engine.events import (
    Accepted,
    Cancelled,
    Event,
    Rejected,
    Replaced,
    Trade,
)
from tradingfloor.sim.market import BPS, MarketView
from tradingfloor.sim.participant import Participant
from tradingfloor.sim.vwap import VwapReport, VwapSlicer

__all__ = [
    "WALL_CLOCK_FIELDS",
    "MemberStats",
    "Summary",
    "SymbolStats",
    "Tally",
]

WALL_CLOCK_FIELDS: Final = ("wall_seconds", "messages_per_second")
_SPREAD_QUANTUM: Final = Decimal("0.01")
_MILLI: Final = 1_000  # spread in bps is accumulated in thousandths of a basis point


class SymbolStats(msgspec.Struct, frozen=True, kw_only=True):
    """One symbol over the run; prices are decimals, ``None`` where nothing traded."""

    symbol: str
    trades: int
    volume: int
    notional: Decimal
    vwap: Decimal | None
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    last: Decimal | None
    avg_spread_ticks: Decimal | None  # time-weighted over the time both sides were shown
    avg_spread_bps: Decimal | None
    two_sided_pct: Decimal  # share of the run with a bid and an ask shown


class MemberStats(msgspec.Struct, frozen=True, kw_only=True):
    """One participant: what it sent, what filled, where it ended."""

    member: str
    kind: str
    orders: int
    cancels: int
    replaces: int
    rejects: int
    fills: int
    filled_qty: int
    position: dict[str, int]
    pnl: Decimal  # cash plus position marked at the last trade


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """A run's result. Same seed and input, same summary, except ``WALL_CLOCK_FIELDS``."""

    seed: int
    minutes: Decimal  # simulated minutes
    start_ns: int
    end_ns: int
    participants: int
    commands: int
    events: int
    messages: int  # commands + events
    commands_per_sim_second: Decimal
    orders_submitted: int
    orders_accepted: int
    orders_rejected: int
    rejects_by_code: dict[str, int]
    cancels_sent: int
    cancelled: int  # cancelled events (requests, IOC remainders, ...)
    replaces_sent: int
    replaced: int
    trades: int
    volume: int
    notional: Decimal
    symbols: list[SymbolStats]
    members: list[MemberStats]
    vwap: list[VwapReport]
    event_hash: str  # sha256 of the msgpack-encoded events, in order
    wall_seconds: float
    messages_per_second: float

    def without_wall_clock(self) -> Summary:
        """The deterministic part: wall-clock fields zeroed."""
        return msgspec.structs.replace(self, wall_seconds=0.0, messages_per_second=0.0)


class _SymbolTally:
    __slots__ = (
        "high",
        "low",
        "notional",
        "open",
        "spread_bps_ns",
        "spread_ticks_ns",
        "trades",
        "two_sided_ns",
        "volume",
    )

    def __init__(self) -> None:
        self.trades = 0
        self.volume = 0
        self.notional = 0
        self.open = 0
        self.high = 0
        self.low = 0
        self.spread_ticks_ns = 0
        self.spread_bps_ns = 0  # milli-bps x ns
        self.two_sided_ns = 0


class Tally:
    """Counts one run. Call ``advance(ts)`` before a command stamped ``ts`` changes the market
    view (spreads are weighted by how long they were shown), then ``record(command, events)``.
    """

    def __init__(self, market: MarketView, start_ns: int) -> None:
        self.market = market
        self.start_ns = start_ns
        self.now_ns = start_ns
        self.commands = 0
        self.events = 0
        self.orders_submitted = 0
        self.orders_accepted = 0
        self.orders_rejected = 0
        self.cancels_sent = 0
        self.cancelled = 0
        self.replaces_sent = 0
        self.replaced = 0
        self.rejects_by_code: dict[int, int] = {}
        self._symbols: dict[str, _SymbolTally] = {}
        self._hash = hashlib.sha256()
        self._encoder = msgspec.msgpack.Encoder()

    def advance(self, ts: int) -> None:
        """Account the shown spreads from the last call up to ``ts``."""
        dt = ts - self.now_ns
        if dt <= 0:
            return
        self.now_ns = ts
        for symbol, view in self.market.symbols.items():
            bid, ask = view.best_bid(), view.best_ask()
            if not (bid and ask):
                continue
            t = self._symbol(symbol)
            spread = ask - bid
            t.spread_ticks_ns += spread * dt
            t.spread_bps_ns += spread * 2 * BPS * _MILLI * dt // (bid + ask)
            t.two_sided_ns += dt

    def _symbol(self, symbol: str) -> _SymbolTally:
        t = self._symbols.get(symbol)
        if t is None:
            t = self._symbols[symbol] = _SymbolTally()
        return t

    def record(self, command: Command, events: Sequence[Event]) -> None:
        self.commands += 1
        self.events += len(events)
        self._hash.update(self._encoder.encode(events))
        if isinstance(command, NewOrder):
            self.orders_submitted += 1
        elif isinstance(command, CancelOrder):
            self.cancels_sent += 1
        elif isinstance(command, ReplaceOrder):
            self.replaces_sent += 1
        for ev in events:
            if isinstance(ev, Trade):
                t = self._symbol(ev.symbol)
                t.trades += 1
                t.volume += ev.qty
                t.notional += ev.qty * ev.price
                if not t.open:
                    t.open = t.low = ev.price
                t.high = max(t.high, ev.price)
                t.low = min(t.low, ev.price)
            elif isinstance(ev, Accepted):
                self.orders_accepted += 1
            elif isinstance(ev, Cancelled):
                self.cancelled += 1
            elif isinstance(ev, Replaced):
                self.replaced += 1
            elif isinstance(ev, Rejected):
                self.rejects_by_code[ev.code] = self.rejects_by_code.get(ev.code, 0) + 1
                if ev.command == "new_order":
                    self.orders_rejected += 1

    @property
    def event_hash(self) -> str:
        return self._hash.hexdigest()

    # --- the summary -----------------------------------------------------------------------------

    def symbol_stats(self) -> list[SymbolStats]:
        out: list[SymbolStats] = []
        elapsed = self.now_ns - self.start_ns
        for symbol, view in self.market.symbols.items():
            t = self._symbols.get(symbol, _SymbolTally())

            def price(ticks: int) -> Decimal | None:
                return view.to_price(ticks) if ticks else None  # noqa: B023 - used at once

            avg_ticks = avg_bps = None
            if t.two_sided_ns:
                avg_ticks = (Decimal(t.spread_ticks_ns) / t.two_sided_ns).quantize(_SPREAD_QUANTUM)
                avg_bps = (Decimal(t.spread_bps_ns) / (t.two_sided_ns * _MILLI)).quantize(
                    _SPREAD_QUANTUM
                )
            two_sided = Decimal(0)
            if elapsed > 0:
                two_sided = (Decimal(100 * t.two_sided_ns) / elapsed).quantize(_SPREAD_QUANTUM)
            out.append(
                SymbolStats(
                    symbol=symbol,
                    trades=t.trades,
                    volume=t.volume,
                    notional=view.tick_size * t.notional,
                    vwap=view.average_price(t.notional, t.volume),
                    open=price(t.open),
                    high=price(t.high),
                    low=price(t.low),
                    last=price(view.last_price) if t.trades else None,
                    avg_spread_ticks=avg_ticks,
                    avg_spread_bps=avg_bps,
                    two_sided_pct=two_sided,
                )
            )
        return out

    def summary(
        self, *, seed: int, participants: Sequence[Participant], wall_seconds: float
    ) -> Summary:
        symbols = self.symbol_stats()
        elapsed = self.now_ns - self.start_ns
        messages = self.commands + self.events
        members = [
            MemberStats(
                member=p.member,
                kind=p.kind,
                orders=p.stats.orders,
                cancels=p.stats.cancels,
                replaces=p.stats.replaces,
                rejects=p.stats.rejects,
                fills=p.stats.fills,
                filled_qty=p.stats.filled_qty,
                position={s: q for s, q in sorted(p.position.items()) if q},
                pnl=p.pnl(self.market),
            )
            for p in participants
        ]
        vwap = [
            r for p in participants if isinstance(p, VwapSlicer) for r in p.reports(self.market)
        ]
        rate = Decimal(0)
        if elapsed > 0:
            rate = (Decimal(self.commands) * 1_000_000_000 / elapsed).quantize(_SPREAD_QUANTUM)
        return Summary(
            seed=seed,
            minutes=(Decimal(elapsed) / 60_000_000_000).quantize(_SPREAD_QUANTUM),
            start_ns=self.start_ns,
            end_ns=self.now_ns,
            participants=len(participants),
            commands=self.commands,
            events=self.events,
            messages=messages,
            commands_per_sim_second=rate,
            orders_submitted=self.orders_submitted,
            orders_accepted=self.orders_accepted,
            orders_rejected=self.orders_rejected,
            rejects_by_code={str(k): v for k, v in sorted(self.rejects_by_code.items())},
            cancels_sent=self.cancels_sent,
            cancelled=self.cancelled,
            replaces_sent=self.replaces_sent,
            replaced=self.replaced,
            trades=sum(s.trades for s in symbols),
            volume=sum(s.volume for s in symbols),
            notional=sum((s.notional for s in symbols), Decimal(0)),
            symbols=symbols,
            members=members,
            vwap=vwap,
            event_hash=self.event_hash,
            wall_seconds=wall_seconds,
            messages_per_second=messages / wall_seconds if wall_seconds > 0 else 0.0,
        )
