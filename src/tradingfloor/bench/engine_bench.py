"""Engine benchmark: a reproducible single-symbol command stream, its throughput and latency.

``generate_stream(messages, seed)`` builds the whole stream up front (never timed): one
``AddInstrument``, then new limit orders around a random-walk mid (some IOC), cancels and
replaces of resting orders, and duplicate or late requests the engine must reject. It runs a
private ``Engine`` alongside while generating, so it knows exactly which orders are live and
which requests will be rejected; that engine is then thrown away.

``run_engine`` applies the stream to a fresh engine twice: once uninstrumented for throughput,
once timing every ``apply`` for latency percentiles. ``run_journaled`` sends the same stream
through ``JournaledEngine`` (journal, one fsync per batch, periodic snapshots). Both use
``seq`` 1, 2, ... and ``ts = seq * TS_STEP_NS``, so every run ends in the same state hash as
the generator's engine, on any machine. docs/benchmarks.md describes the stream and the output.
"""

from __future__ import annotations

import gc
import itertools
import os
import platform
import random
import sys
import tempfile
import time
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, overload

from rich.console import Console
from rich.table import Table

from tradingfloor.exchange.engine.commands import (
    AddInstrument,
    CancelOrder,
    Command,
    NewOrder,
    ReplaceOrder,
)
from tradingfloor.exchange.engine.engine import Engine
from tradingfloor.exchange.engine.events import (
    Accepted,
    Cancelled,
    Event,
    Rejected,
    Replaced,
    Trade,
)
from tradingfloor.exchange.engine.types import CancelReason, Side, TimeInForce
from tradingfloor.exchange.sequencer import DEFAULT_SNAPSHOT_EVERY, JournaledEngine
from tradingfloor.exchange.snapshot_writer import DEFAULT_MODE, SnapshotMode

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_MESSAGES",
    "DEFAULT_SEED",
    "KINDS",
    "MEMBERS",
    "REJECT_KINDS",
    "SYMBOL",
    "TARGET_MSGS_PER_S",
    "TS_STEP_NS",
    "BenchReport",
    "EngineRun",
    "JournalRun",
    "Percentiles",
    "Stream",
    "generate",
    "generate_stream",
    "main",
    "run",
    "run_engine",
    "run_journaled",
]

DEFAULT_MESSAGES = 2_000_000
DEFAULT_SEED = 1
DEFAULT_BATCH = 256
"""Commands per ``JournaledEngine.submit`` call (one fsync each) in the journaled run."""
TARGET_MSGS_PER_S = 500_000
"""Throughput goal of the pure-Python engine on one core, without journaling."""
TS_STEP_NS = 1_000
"""Command ``seq`` n is stamped ``ts = n * TS_STEP_NS``: a fixed clock, so hashes compare."""

SYMBOL = "BENCH"
MEMBERS = tuple(f"M{i:02d}" for i in range(20))
START_MID = 10_000
"""Mid price in ticks at the start of the random walk."""
LOT = 100

# The mix, as cumulative probabilities of one command's kind (the rest are rejected requests).
_P_NEW = 0.55
_P_CANCEL = _P_NEW + 0.25
_P_REPLACE = _P_CANCEL + 0.12
_P_IOC = 0.15
"""Share of new orders that are IOC (the rest are DAY)."""
_P_MID_STEP = 0.05
"""Chance per new order that the mid moves up a tick, and again that it moves down."""
_P_BY_ORDER_ID = 0.7
"""Cancels and replaces name the order by ``order_id``, otherwise by its current cl_ord_id."""
_P_REPRICE = 0.5
"""Replaces that change the price (keeping the quantity); the others resize in place."""
# Ticks from the mid on the order's passive side (buy at mid - d, sell at mid + d); repeats
# weight the draw. Negative offsets are priced through the mid and usually trade on arrival.
_DAY_OFFSETS = (-2, -1, -1, 0, 0, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 4, 4, 5, 5, 6, 7, 8, 10, 12)
_IOC_OFFSETS = (-3, -2, -2, -1, -1, -1, 0, 0, 1)
_POOL = 4096
"""Recently finished orders and used client ids kept for duplicate and late requests."""

KINDS = (
    "add_instrument",
    "new_day",
    "new_ioc",
    "cancel",
    "replace",
    "dup_cancel",
    "late_cancel",
    "dup_new",
)
"""Command kinds of the stream, in report order."""
REJECT_KINDS = frozenset({"dup_cancel", "late_cancel", "dup_new"})
"""Kinds the engine must reject: cancel of an order already cancelled (4001), cancel of an order
already filled or IOC-cancelled (4001), new order reusing an accepted cl_ord_id (3004)."""


# ---------------------------------------------------------------------------- generation


@dataclass(frozen=True, slots=True)
class Stream:
    """A generated command stream and what the generator's own engine saw when applying it."""

    seed: int
    commands: list[Command]
    kinds: dict[str, int]
    """Commands per kind (``KINDS``)."""
    planned_rejects: int
    """Commands built to be rejected (``REJECT_KINDS``)."""
    unplanned_rejects: int
    """Other commands the engine rejected while generating (0 unless the engine changed)."""
    missed_rejects: int
    """Planned rejects the engine accepted while generating (0 unless the engine changed)."""
    crossing_new_orders: int
    """New orders that traded on arrival."""
    events: int
    trades: int
    resting_orders: int
    """Live resting orders at the end."""
    final_mid: int
    state_hash: str
    """The generator engine's final state hash: every run of the stream must end with it."""
    seconds: float

    @property
    def new_orders(self) -> int:
        return self.kinds["new_day"] + self.kinds["new_ioc"]


class _Live:
    """What the generator knows about one live order, kept up to date from engine events."""

    __slots__ = ("cl_ord_id", "leaves", "member", "order_id", "price", "qty", "side")

    def __init__(
        self, order_id: int, member: str, cl_ord_id: str, side: Side, price: int, qty: int
    ) -> None:
        self.order_id = order_id
        self.member = member
        self.cl_ord_id = cl_ord_id
        self.side = side
        self.price = price
        self.qty = qty
        self.leaves = qty


class _Ring:
    """The last ``size`` items added, to draw a random one in O(1)."""

    __slots__ = ("items", "next", "size")

    def __init__(self, size: int) -> None:
        self.items: list[tuple[str, int, str]] = []
        self.size = size
        self.next = 0

    def add(self, item: tuple[str, int, str]) -> None:
        if len(self.items) < self.size:
            self.items.append(item)
        else:
            self.items[self.next] = item
            self.next = (self.next + 1) % self.size

    def pick(self, rng: random.Random) -> tuple[str, int, str]:
        return self.items[rng.randrange(len(self.items))]


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.engine = Engine()
        self.seq = 0
        self.mid = START_MID
        self.clid = 0
        self.live: list[_Live] = []
        self.index: dict[int, int] = {}  # order_id -> position in self.live
        self.cancelled = _Ring(_POOL)  # (member, order_id, cl_ord_id) cancelled by request
        self.done = _Ring(_POOL)  # filled, or cancelled as an IOC remainder
        self.clids = _Ring(_POOL)  # (member, 0, cl_ord_id) used on accepted orders/replaces
        self.kinds = dict.fromkeys(KINDS, 0)
        self.planned = self.unplanned = self.missed = self.crossing = 0
        self.events = self.trades = 0

    # -- ids and prices

    def next_clid(self) -> str:
        self.clid += 1
        return f"c{self.clid:x}"

    def price(self, side: Side, offsets: tuple[int, ...]) -> int:
        d = offsets[self.rng.randrange(len(offsets))]
        return max(1, self.mid - d if side is Side.BUY else self.mid + d)

    def walk(self) -> None:
        u = self.rng.random()
        if u < _P_MID_STEP:
            self.mid += 1
        elif u < 2 * _P_MID_STEP and self.mid > 100:
            self.mid -= 1

    # -- commands

    def new_order(self, tif: TimeInForce, member: str = "", cl_ord_id: str = "") -> NewOrder:
        rng = self.rng
        self.walk()
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        offsets = _IOC_OFFSETS if tif is TimeInForce.IOC else _DAY_OFFSETS
        return NewOrder(
            symbol=SYMBOL,
            member=member or MEMBERS[rng.randrange(len(MEMBERS))],
            cl_ord_id=cl_ord_id or self.next_clid(),
            side=side,
            qty=LOT * (1 + rng.randrange(10)),
            price=self.price(side, offsets),
            tif=tif,
        )

    def cancel(self, member: str, order_id: int, cl_ord_id: str) -> CancelOrder:
        if self.rng.random() < _P_BY_ORDER_ID:
            return CancelOrder(
                symbol=SYMBOL, member=member, cl_ord_id=self.next_clid(), order_id=order_id
            )
        return CancelOrder(
            symbol=SYMBOL, member=member, cl_ord_id=self.next_clid(), orig_cl_ord_id=cl_ord_id
        )

    def replace(self, o: _Live) -> ReplaceOrder:
        rng = self.rng
        if rng.random() < _P_REPRICE:
            qty, price = o.qty, self.price(o.side, _DAY_OFFSETS)
        else:  # resize; a smaller remainder at the same price keeps time priority
            qty, price = o.qty - o.leaves + LOT * (1 + rng.randrange(10)), 0
        by_id = rng.random() < _P_BY_ORDER_ID
        return ReplaceOrder(
            symbol=SYMBOL,
            member=o.member,
            cl_ord_id=self.next_clid(),
            qty=qty,
            order_id=o.order_id if by_id else 0,
            orig_cl_ord_id="" if by_id else o.cl_ord_id,
            price=price,
        )

    def pick_kind(self) -> str:
        rng = self.rng
        u = rng.random()
        if u < _P_NEW:
            return "new_ioc" if rng.random() < _P_IOC else "new_day"
        if u < _P_REPLACE:
            if not self.live:
                return "new_day"
            return "cancel" if u < _P_CANCEL else "replace"
        choice = rng.randrange(3)
        for k in range(3):
            kind = ("dup_cancel", "late_cancel", "dup_new")[(choice + k) % 3]
            pool = {"dup_cancel": self.cancelled, "late_cancel": self.done}.get(kind, self.clids)
            if pool.items:
                return kind
        return "new_day"

    def build(self, kind: str) -> Command:
        if kind == "new_day":
            return self.new_order(TimeInForce.DAY)
        if kind == "new_ioc":
            return self.new_order(TimeInForce.IOC)
        if kind == "cancel":
            o = self.live[self.rng.randrange(len(self.live))]
            return self.cancel(o.member, o.order_id, o.cl_ord_id)
        if kind == "replace":
            return self.replace(self.live[self.rng.randrange(len(self.live))])
        if kind == "dup_cancel":
            return self.cancel(*self.cancelled.pick(self.rng))
        if kind == "late_cancel":
            return self.cancel(*self.done.pick(self.rng))
        if kind == "dup_new":
            member, _, cl_ord_id = self.clids.pick(self.rng)
            return self.new_order(TimeInForce.DAY, member, cl_ord_id)
        raise ValueError(f"unknown command kind {kind!r}")

    # -- tracking the engine

    def _add(self, o: _Live) -> None:
        self.index[o.order_id] = len(self.live)
        self.live.append(o)

    def _remove(self, order_id: int) -> _Live:
        i = self.index.pop(order_id)
        o = self.live[i]
        last = self.live.pop()
        if last is not o:
            self.live[i] = last
            self.index[last.order_id] = i
        return o

    def _leaves(self, order_id: int, leaves: int) -> None:
        i = self.index.get(order_id)
        if i is None:
            raise RuntimeError(f"trade for order {order_id} the generator does not know")
        if leaves:
            self.live[i].leaves = leaves
        else:
            o = self._remove(order_id)
            self.done.add((o.member, o.order_id, o.cl_ord_id))

    def absorb(self, events: Sequence[Event]) -> tuple[bool, bool]:
        """Update the live orders from one command's events; return (rejected, traded)."""
        rejected = traded = False
        for ev in events:
            if isinstance(ev, Accepted):
                self._add(_Live(ev.order_id, ev.member, ev.cl_ord_id, ev.side, ev.price, ev.qty))
                self.clids.add((ev.member, 0, ev.cl_ord_id))
            elif isinstance(ev, Trade):
                traded = True
                self.trades += 1
                self._leaves(ev.maker_order_id, ev.maker_leaves)
                self._leaves(ev.taker_order_id, ev.taker_leaves)
            elif isinstance(ev, Cancelled):
                if ev.leaves_qty:
                    self.live[self.index[ev.order_id]].leaves = ev.leaves_qty
                    continue
                o = self._remove(ev.order_id)
                ring = self.cancelled if ev.reason == CancelReason.USER else self.done
                ring.add((o.member, o.order_id, o.cl_ord_id))
            elif isinstance(ev, Replaced):
                o = self.live[self.index[ev.order_id]]
                o.cl_ord_id = ev.cl_ord_id
                o.qty = ev.qty
                o.leaves = ev.leaves_qty
                o.price = ev.price
                self.clids.add((ev.member, 0, ev.cl_ord_id))
            elif isinstance(ev, Rejected):
                rejected = True
        return rejected, traded

    def step(self, kind: str, cmd: Command) -> None:
        self.seq += 1
        events = self.engine.apply(self.seq, self.seq * TS_STEP_NS, cmd)
        self.events += len(events)
        self.kinds[kind] += 1
        rejected, traded = self.absorb(events)
        planned = kind in REJECT_KINDS
        self.planned += planned
        self.unplanned += rejected and not planned
        self.missed += planned and not rejected
        self.crossing += traded and kind.startswith("new_")


def generate_stream(messages: int = DEFAULT_MESSAGES, seed: int = DEFAULT_SEED) -> Stream:
    """Build ``messages`` commands (the first lists the instrument) from ``seed``; see module."""
    if messages < 1:
        raise ValueError("messages must be at least 1")
    started = time.perf_counter()
    g = _Generator(seed)
    commands: list[Command] = [AddInstrument(symbol=SYMBOL, reference_price=START_MID)]
    g.step("add_instrument", commands[0])
    append = commands.append
    for _ in range(messages - 1):
        kind = g.pick_kind()
        cmd = g.build(kind)
        append(cmd)
        g.step(kind, cmd)
    return Stream(
        seed=seed,
        commands=commands,
        kinds=g.kinds,
        planned_rejects=g.planned,
        unplanned_rejects=g.unplanned,
        missed_rejects=g.missed,
        crossing_new_orders=g.crossing,
        events=g.events,
        trades=g.trades,
        resting_orders=len(g.live),
        final_mid=g.mid,
        state_hash=g.engine.state_hash(),
        seconds=time.perf_counter() - started,
    )


def iter_commands(messages: int, seed: int = DEFAULT_SEED) -> Iterator[Command]:
    """The commands of ``generate_stream(messages, seed)`` one at a time, for streams too long
    to hold in memory (the generator's engine still runs alongside)."""
    if messages < 1:
        raise ValueError("messages must be at least 1")
    g = _Generator(seed)
    first = AddInstrument(symbol=SYMBOL, reference_price=START_MID)
    g.step("add_instrument", first)
    yield first
    for _ in range(messages - 1):
        kind = g.pick_kind()
        cmd = g.build(kind)
        g.step(kind, cmd)
        yield cmd


def generate(messages: int = DEFAULT_MESSAGES, seed: int = DEFAULT_SEED) -> list[Command]:
    """The commands of ``generate_stream(messages, seed)``: same seed, same commands."""
    return generate_stream(messages, seed).commands


# ---------------------------------------------------------------------------- running


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Latency percentiles in microseconds (nearest rank)."""

    p50: float
    p90: float
    p99: float
    p999: float
    max: float
    samples: int

    @classmethod
    def from_ns(cls, samples: Sequence[int]) -> Percentiles:
        ordered = sorted(samples)
        n = len(ordered)
        if not n:
            return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0)

        def rank(num: int, den: int) -> float:
            return ordered[max(0, -(-n * num // den) - 1)] / 1000

        return cls(rank(1, 2), rank(9, 10), rank(99, 100), rank(999, 1000), ordered[-1] / 1000, n)


@dataclass(frozen=True, slots=True)
class EngineRun:
    """The stream applied straight to a fresh ``Engine``, without journaling."""

    messages: int
    seconds: float
    """Wall time of the uninstrumented pass."""
    events: int
    trades: int
    rejects: int
    state_hash: str
    latency: Percentiles
    """Per ``apply`` call, from a second pass on another fresh engine."""

    @property
    def msgs_per_s(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


@dataclass(frozen=True, slots=True)
class JournalRun:
    """The stream sent through ``JournaledEngine`` in batches (one fsync per batch)."""

    messages: int
    batch: int
    batches: int
    seconds: float
    """Sum of the ``submit`` calls' wall times."""
    events: int
    trades: int
    rejects: int
    state_hash: str
    commit_latency: Percentiles
    """Per ``submit`` call (stamp, journal, apply, write + fsync, and when a snapshot is due
    its serialisation; validating and writing it happen on the snapshot writer's thread)."""
    snapshot_every: int
    snapshots: int
    """Snapshots taken during the run."""
    snapshot_seconds: float
    """Time the batch thread spent handing them off (part of ``seconds``): forking, or
    serialising the state in ``inline`` mode."""
    snapshot_max_ms: float
    """The longest of those hand-offs: the stall one snapshot adds to its batch."""
    snapshot_mode: SnapshotMode
    journal_bytes: int
    directory: str

    @property
    def msgs_per_s(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def msgs_per_s_without_snapshots(self) -> float:
        busy = self.seconds - self.snapshot_seconds
        return self.messages / busy if busy > 0 else 0.0


def _count(events: Sequence[Event]) -> tuple[int, int]:
    trades = rejects = 0
    for ev in events:
        t = type(ev)
        if t is Trade:
            trades += 1
        elif t is Rejected:
            rejects += 1
    return trades, rejects


def _quiet_gc() -> None:
    """Collect, then move everything alive (the pre-built stream) out of the GC's sight.

    In production commands arrive one by one and die young; here millions are built up front,
    and letting every full collection walk them would charge the engine for the harness.
    """
    gc.collect()
    gc.freeze()


def _throughput_pass(cmds: Sequence[Command]) -> tuple[int, int, str]:
    engine = Engine()
    apply = engine.apply
    events = seq = 0
    _quiet_gc()
    try:
        start = time.perf_counter_ns()
        for cmd in cmds:
            seq += 1
            events += len(apply(seq, seq * TS_STEP_NS, cmd))
        elapsed = time.perf_counter_ns() - start
    finally:
        gc.unfreeze()
    return elapsed, events, engine.state_hash()


def _latency_pass(cmds: Sequence[Command]) -> tuple[array[int], int, int, int, str]:
    engine = Engine()
    apply = engine.apply
    clock = time.perf_counter_ns
    samples = array("q", bytes(8 * len(cmds)))
    events = trades = rejects = seq = 0
    _quiet_gc()
    try:
        for i, cmd in enumerate(cmds):
            seq += 1
            ts = seq * TS_STEP_NS
            t0 = clock()
            out = apply(seq, ts, cmd)
            samples[i] = clock() - t0
            events += len(out)
            for ev in out:
                t = type(ev)
                if t is Trade:
                    trades += 1
                elif t is Rejected:
                    rejects += 1
    finally:
        gc.unfreeze()
    return samples, events, trades, rejects, engine.state_hash()


def run_engine(cmds: Sequence[Command], *, latency: bool = True) -> EngineRun:
    """Time ``Engine.apply`` over ``cmds``: one bare pass, then (``latency``) a timed-each pass."""
    elapsed, events, state_hash = _throughput_pass(cmds)
    trades = rejects = 0
    percentiles = Percentiles.from_ns(())
    if latency:
        samples, events2, trades, rejects, hash2 = _latency_pass(cmds)
        if (events2, hash2) != (events, state_hash):
            raise RuntimeError("two passes over the same stream differ: the engine is not pure")
        percentiles = Percentiles.from_ns(samples)
        del samples
    return EngineRun(
        messages=len(cmds),
        seconds=elapsed / 1e9,
        events=events,
        trades=trades,
        rejects=rejects,
        state_hash=state_hash,
        latency=percentiles,
    )


def run_journaled(
    cmds: Sequence[Command],
    directory: str | os.PathLike[str] | None = None,
    *,
    batch: int = DEFAULT_BATCH,
    snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
    snapshot_mode: SnapshotMode = DEFAULT_MODE,
) -> JournalRun:
    """Send ``cmds`` through a ``JournaledEngine`` in a fresh temporary directory under
    ``directory`` (the system temp dir if None), ``batch`` commands per submit, snapshots
    taken the ``snapshot_mode`` way; then delete it."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    with tempfile.TemporaryDirectory(prefix="tradingfloor-bench-", dir=directory) as tmp:
        root = Path(tmp)
        clock = itertools.count(TS_STEP_NS, TS_STEP_NS).__next__  # ts = seq * TS_STEP_NS
        pipeline, _ = JournaledEngine.open(
            root / "journal", root / "snapshots", clock=clock, snapshot_every=snapshot_every
        )
        samples: list[int] = []
        snapshot_ns: list[int] = []
        events = trades = rejects = 0
        perf = time.perf_counter_ns
        writer = pipeline.snapshot_writer
        assert writer is not None
        writer.mode = snapshot_mode
        hand_off = writer.submit_state

        def timed_hand_off(seq: int, ts: int, state: Engine) -> None:
            t0 = perf()
            try:
                hand_off(seq, ts, state)
            finally:
                snapshot_ns.append(perf() - t0)

        # Time what ``submit`` does on the batch thread for a snapshot (the fork, or the
        # serialisation in inline mode), on this instance only.
        setattr(writer, "submit_state", timed_hand_off)  # noqa: B010
        with pipeline:
            submit = pipeline.submit
            _quiet_gc()
            try:
                for start in range(0, len(cmds), batch):
                    chunk = cmds[start : start + batch]
                    t0 = perf()
                    out = submit(chunk)
                    samples.append(perf() - t0)
                    events += len(out)
                    t, r = _count(out)
                    trades += t
                    rejects += r
            finally:
                gc.unfreeze()
            pipeline.wait_for_snapshot()
            setattr(writer, "submit_state", hand_off)  # noqa: B010
            state_hash = pipeline.engine.state_hash()
        journal_bytes = sum(p.stat().st_size for p in (root / "journal").glob("*.log"))
    return JournalRun(
        messages=len(cmds),
        batch=batch,
        batches=len(samples),
        seconds=sum(samples) / 1e9,
        events=events,
        trades=trades,
        rejects=rejects,
        state_hash=state_hash,
        commit_latency=Percentiles.from_ns(samples),
        snapshot_every=snapshot_every,
        snapshots=len(snapshot_ns),
        snapshot_seconds=sum(snapshot_ns) / 1e9,
        snapshot_max_ms=max(snapshot_ns, default=0) / 1e6,
        snapshot_mode=snapshot_mode,
        journal_bytes=journal_bytes,
        directory=str(Path(directory or tempfile.gettempdir()).resolve()),
    )


@overload
def run(
    cmds: Sequence[Command],
    journal: Literal[False] = False,
    tmpdir: str | os.PathLike[str] | None = None,
    *,
    batch: int = ...,
    snapshot_every: int = ...,
) -> EngineRun: ...


@overload
def run(
    cmds: Sequence[Command],
    journal: Literal[True],
    tmpdir: str | os.PathLike[str] | None = None,
    *,
    batch: int = ...,
    snapshot_every: int = ...,
) -> JournalRun: ...


def run(
    cmds: Sequence[Command],
    journal: bool = False,
    tmpdir: str | os.PathLike[str] | None = None,
    *,
    batch: int = DEFAULT_BATCH,
    snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
) -> EngineRun | JournalRun:
    """``run_journaled(cmds, tmpdir, ...)`` if ``journal``, else ``run_engine(cmds)``."""
    if journal:
        return run_journaled(cmds, tmpdir, batch=batch, snapshot_every=snapshot_every)
    return run_engine(cmds)


# ---------------------------------------------------------------------------- report


@dataclass(frozen=True, slots=True)
class BenchReport:
    stream: Stream
    engine: EngineRun
    journal: JournalRun | None
    """Journaled with snapshots forked (the default where the platform forks)."""
    journal_inline: JournalRun | None = None
    """The same with snapshots serialised on the batch thread, as before forking."""


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _us(value: float) -> str:
    return f"{value:,.2f}"


def _check(ok: bool) -> str:
    return "[green]ok[/]" if ok else "[bold red]MISMATCH[/]"


def _stream_table(s: Stream) -> Table:
    n = len(s.commands)
    table = Table(title="stream", title_justify="left", show_header=True)
    table.add_column("kind")
    table.add_column("commands", justify="right")
    table.add_column("share", justify="right")
    for kind in KINDS:
        table.add_row(kind, f"{s.kinds[kind]:,}", _pct(s.kinds[kind], n))
    table.add_section()
    table.add_row("total", f"{n:,}", "")
    table.add_row("IOC share of new orders", "", _pct(s.kinds["new_ioc"], s.new_orders))
    table.add_row(
        "new orders trading on arrival",
        f"{s.crossing_new_orders:,}",
        _pct(s.crossing_new_orders, s.new_orders),
    )
    table.add_row("planned rejects", f"{s.planned_rejects:,}", _pct(s.planned_rejects, n))
    table.add_row(
        "resting orders at the end / final mid", f"{s.resting_orders:,}", f"{s.final_mid:,}"
    )
    return table


def _results_table(report: BenchReport) -> Table:
    s, e = report.stream, report.engine
    runs = [r for r in (report.journal, report.journal_inline) if r is not None]
    table = Table(title="results", title_justify="left")
    table.add_column("metric")
    table.add_column("engine", justify="right")
    for r in runs:
        table.add_column(f"engine + journal\n({r.snapshot_mode} snapshots)", justify="right")

    def row(name: str, engine: str, *journal: str) -> None:
        table.add_row(name, engine, *(journal or [""] * len(runs)))

    row("messages", f"{e.messages:,}", *(f"{r.messages:,}" for r in runs))
    row("seconds", f"{e.seconds:.3f}", *(f"{r.seconds:.3f}" for r in runs))
    row(
        "messages/s",
        f"[bold]{e.msgs_per_s:,.0f}[/]",
        *(f"[bold]{r.msgs_per_s:,.0f}[/]" for r in runs),
    )
    met = e.msgs_per_s >= TARGET_MSGS_PER_S
    row(
        f"target {TARGET_MSGS_PER_S:,}/s (no journal)",
        "[green]met[/]" if met else "[yellow]not met[/]",
    )
    table.add_section()
    lat = e.latency
    row(
        "latency, µs",
        "[italic]per message[/]",
        *(f"[italic]per {r.batch}-cmd batch[/]" for r in runs),
    )
    for label, field in (
        ("  p50", "p50"),
        ("  p90", "p90"),
        ("  p99", "p99"),
        ("  p99.9", "p999"),
        ("  max", "max"),
    ):
        row(
            label,
            _us(getattr(lat, field)),
            *(_us(getattr(r.commit_latency, field)) for r in runs),
        )
    table.add_section()
    row("events", f"{e.events:,}", *(f"{r.events:,}" for r in runs))
    row("trades", f"{e.trades:,}", *(f"{r.trades:,}" for r in runs))
    row("rejects", f"{e.rejects:,}", *(f"{r.rejects:,}" for r in runs))
    row(
        f"rejects = planned ({s.planned_rejects:,})",
        _check(e.rejects == s.planned_rejects and not s.unplanned_rejects and not s.missed_rejects),
        *(_check(r.rejects == s.planned_rejects) for r in runs),
    )
    row(
        "state hash = generator's",
        _check(e.state_hash == s.state_hash),
        *(_check(r.state_hash == s.state_hash) for r in runs),
    )
    if runs:
        table.add_section()
        row("batches (= fsyncs)", "", *(f"{r.batches:,}" for r in runs))
        row("snapshot every N commands", "", *(f"{r.snapshot_every:,}" for r in runs))
        row(
            "snapshots / seconds handing them off",
            "",
            *(f"{r.snapshots} / {r.snapshot_seconds:.3f}" for r in runs),
        )
        row("longest snapshot hand-off, ms", "", *(f"{r.snapshot_max_ms:,.1f}" for r in runs))
        row(
            "messages/s without snapshot time",
            "",
            *(f"{r.msgs_per_s_without_snapshots:,.0f}" for r in runs),
        )
        row("journal bytes", "", *(f"{r.journal_bytes:,}" for r in runs))
    return table


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(
    messages: int = DEFAULT_MESSAGES,
    seed: int = DEFAULT_SEED,
    journal: bool = False,
    *,
    batch: int = DEFAULT_BATCH,
    snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
    tmpdir: str | os.PathLike[str] | None = None,
    console: Console | None = None,
) -> BenchReport:
    """Generate the stream, run it (and with ``journal`` also journaled), print the tables."""
    console = console or Console(highlight=False)
    _progress(f"generating {messages:,} commands (seed {seed}) ...")
    stream = generate_stream(messages, seed)
    _progress(f"generated in {stream.seconds:.1f} s; running the engine ...")
    engine_run = run_engine(stream.commands)
    journal_run = inline_run = None
    if journal:
        _progress("running the engine with journaling (snapshots serialised inline) ...")
        inline_run = run_journaled(
            stream.commands,
            tmpdir,
            batch=batch,
            snapshot_every=snapshot_every,
            snapshot_mode="inline",
        )
        if DEFAULT_MODE == "fork":
            _progress("running the engine with journaling (snapshots forked) ...")
            journal_run = run_journaled(
                stream.commands, tmpdir, batch=batch, snapshot_every=snapshot_every
            )
        else:
            journal_run, inline_run = inline_run, None
    report = BenchReport(stream, engine_run, journal_run, inline_run)
    console.print(
        f"[bold]tradingfloor engine benchmark[/]  {platform.python_implementation()} "
        f"{platform.python_version()} on {platform.machine()} ({platform.system()}), "
        f"{os.cpu_count()} CPUs; seed {seed}",
    )
    console.print(_stream_table(stream))
    console.print(_results_table(report))
    console.print(f"state hash {engine_run.state_hash}", soft_wrap=True)
    if journal_run is not None:
        console.print(f"journal directory {journal_run.directory} (deleted)", soft_wrap=True)
    return report
