"""Projection checkpoint benchmark: how long the market-data projections take to save and
restore their state when the book is large.

A bare engine gets ``orders`` resting limit orders (default 50,000) spread over five symbols
and many price levels, from 40 members, with a few hundred trades in between (so the recent
trades and the bars are populated). The events go to the JSON feed (``MarketDataFeed``), the
binary feed (``BinaryFeed``) and the operator's status (``VenueStatus``), as the venue feeds
them. Then each projection's ``checkpoint()`` (which runs on the event loop) and
``restore_checkpoint()`` (at start-up) is timed over ``rounds`` repetitions, and the size of
its part printed. Results are printed, never asserted.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from tradingfloor.exchange.engine import Engine
from tradingfloor.exchange.engine.commands import AddInstrument, NewOrder
from tradingfloor.exchange.engine.types import Side, TimeInForce
from tradingfloor.exchange.marketdata.binaryfeed import BinaryFeed
from tradingfloor.exchange.marketdata.feed import MarketDataFeed
from tradingfloor.exchange.operator import VenueStatus

__all__ = ["PartTiming", "build", "main", "measure"]

SYMBOLS: Final = ("AAPL", "MSFT", "GOOG", "AMZN", "TSLA")
MEMBERS: Final = tuple(f"M{i:02d}" for i in range(40))
START_NS: Final = 1_767_623_400_000_000_000


def build(orders: int, seed: int = 1) -> tuple[MarketDataFeed, BinaryFeed, VenueStatus]:
    """The three projections after ``orders`` resting orders (and some trades) were applied."""
    rng = random.Random(seed)
    engine = Engine()
    feed, binary, status = MarketDataFeed(), BinaryFeed(), VenueStatus(MEMBERS)
    seq, ts = 0, START_NS

    def apply(cmd: Any) -> None:
        nonlocal seq, ts
        seq += 1
        ts += 50_000_000  # 20 commands a second: bars of several minutes close
        events = engine.apply(seq, ts, cmd)
        feed.on_events(events)
        binary.on_events(cmd, events)
        status.on_events(cmd, events)

    for symbol in SYMBOLS:
        apply(AddInstrument(symbol=symbol, reference_price=10_000, collar_bps=10_000))
    for n in range(orders):
        symbol = SYMBOLS[n % len(SYMBOLS)]
        buy = rng.randrange(2) == 0
        # Resting: bids 9,999 down to 9,000, asks 10,001 up to 11,000; every 47th order
        # crosses the spread a little and trades against the best level.
        offset = 1 + rng.randrange(1000)
        price = 10_000 - offset if buy else 10_000 + offset
        if n % 47 == 46:
            price = 10_010 if buy else 9_990
        apply(
            NewOrder(
                symbol=symbol,
                member=MEMBERS[rng.randrange(len(MEMBERS))],
                cl_ord_id=f"c{n}",
                side=Side.BUY if buy else Side.SELL,
                qty=100 * (1 + rng.randrange(5)),
                price=price,
                tif=TimeInForce.GTC,
                display_qty=100 if n % 7 == 0 else 0,
            )
        )
    return feed, binary, status


def _timed(fn: Callable[[], object], rounds: int) -> tuple[float, float, float]:
    """(median wall, max wall, median CPU) milliseconds of ``rounds`` calls. The CPU time is
    the one to compare on a shared machine, where the wall time includes waiting for a core."""
    wall, cpu = [], []
    for _ in range(rounds):
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        fn()
        cpu.append((time.thread_time_ns() - c0) / 1e6)
        wall.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(wall), max(wall), statistics.median(cpu)


@dataclass(frozen=True, slots=True)
class PartTiming:
    part: str
    resting: int  # displayed resting orders in the book
    size: int  # bytes of the part
    checkpoint_ms: tuple[float, float, float]  # (median wall, max wall, median CPU)
    restore_ms: tuple[float, float, float]


def measure(orders: int = 50_000, rounds: int = 20) -> list[PartTiming]:
    """Per projection: part size, checkpoint and restore times."""
    feed, binary, status = build(orders)
    resting = sum(len(l3.bids) + len(l3.asks) for l3 in map(feed.book.l3, feed.book.symbols()))
    factories: list[tuple[Any, Callable[[], Any]]] = [
        (feed, MarketDataFeed),
        (binary, BinaryFeed),
        (status, lambda: VenueStatus(MEMBERS)),
    ]
    rows: list[PartTiming] = []
    for projection, fresh in factories:
        data = projection.checkpoint()

        def restore(fresh: Callable[[], Any] = fresh, data: bytes = data) -> None:
            fresh().restore_checkpoint(data)

        save = _timed(projection.checkpoint, rounds)
        load = _timed(restore, max(1, rounds // 4))
        rows.append(PartTiming(projection.checkpoint_name, resting, len(data), save, load))
    return rows


def main(orders: int = 50_000, rounds: int = 20) -> None:
    rows = measure(orders, rounds)
    print(f"Projection checkpoints, {rows[0].resting:,} displayed resting orders:")
    for r in rows:
        (save, save_max, save_cpu), (load, load_max, load_cpu) = r.checkpoint_ms, r.restore_ms
        print(
            f"  {r.part:<10} {r.size:>9,} bytes  checkpoint {save:7.2f} ms (max {save_max:.2f}, "
            f"CPU {save_cpu:.2f})  restore {load:7.2f} ms (max {load_max:.2f}, CPU {load_cpu:.2f})"
        )
