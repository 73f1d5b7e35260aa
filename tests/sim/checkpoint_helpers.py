"""Test helpers for the participants' checkpoints: a trading run that checkpoints its crowd
mid-way, history replays as the live runner does them, and a comparison of everything a crowd
keeps (every attribute of the crowd, its market view and its participants, reached generically
so that a new attribute is compared without anyone listing it)."""

from __future__ import annotations

import dataclasses
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Final

import msgspec

from tradingfloor.exchange.engine import Engine
from tradingfloor.exchange.engine.commands import (
    AddInstrument,
    Command,
    Halt,
    MassCancel,
    Resume,
    SetKillSwitch,
    SetPriceBand,
    SetReferencePrice,
    Tick,
)
from tradingfloor.exchange.engine.events import Event
from tradingfloor.sim.crowd import Crowd
from tradingfloor.sim.participant import NEVER, NS_PER_S
from tradingfloor.sim.population import CrowdConfig, build_participants
from tradingfloor.sim.simulator import SIM_START_NS

AAPL: Final = AddInstrument(symbol="AAPL", reference_price=19_000, band_bps=1_000)
XYZ: Final = AddInstrument(symbol="XYZ", reference_price=4_321, band_bps=500, lot_size=10)
CONFIG: Final = CrowdConfig(vwap_horizon_ns=15 * NS_PER_S)

# Set by ``begin`` before any turn, and in the clock of whoever fed the events (simulated time
# while trading, journal time while replaying): compared only after ``begin``.
SCHEDULING: Final = frozenset({"now_ns", "next_wake_ns", "_scheduled", "_heap"})

OPERATIONS: Final = ("halt", "resume", "kill", "release", "band", "reference", "mass", "tick")


@dataclass(frozen=True, slots=True)
class Step:
    """One journaled command: its time, itself and its events."""

    ts: int
    command: Command
    events: list[Event]


@dataclass(slots=True)
class Run:
    """A trading run's journal and the trading crowd's checkpoints: ``checkpoints[k]`` was
    taken after ``k`` commands."""

    steps: list[Step]
    checkpoints: dict[int, bytes]

    def last_checkpoint(self) -> tuple[int, bytes]:
        k = max(self.checkpoints)
        return k, self.checkpoints[k]


def crowd_for(instruments: Sequence[AddInstrument], seed: int) -> Crowd:
    """A fresh crowd as the live runner builds it."""
    return Crowd(build_participants(instruments, seed, CONFIG), tolerant=True)


def operation(kind: str, index: int, instruments: Sequence[AddInstrument], crowd: Crowd) -> Command:
    symbol = instruments[index % len(instruments)].symbol
    member = crowd.participants[index % len(crowd.participants)].member
    if kind == "halt":
        return Halt(symbol=symbol)
    if kind == "resume":
        return Resume(symbol=symbol)
    if kind in ("kill", "release"):
        return SetKillSwitch(member=member, active=kind == "kill")
    if kind == "band":
        return SetPriceBand(symbol=symbol, band_bps=10 + 37 * index)
    if kind == "reference":
        listed = next(i for i in instruments if i.symbol == symbol)
        return SetReferencePrice(symbol=symbol, price=listed.reference_price + 13 * index - 50)
    if kind == "mass":
        return MassCancel(member=member, cl_ord_id=f"op{index}")
    return Tick()


def trading_run(
    instruments: Sequence[AddInstrument],
    seed: int,
    duration_ns: int,
    operations: Sequence[tuple[int, str, int]],
    at: Callable[[int], bool] = lambda k: False,
) -> Run:
    """The crowd trades against an engine for ``duration_ns`` simulated nanoseconds, with
    operator commands ``(offset_ms, kind, index)`` in between, and feeds itself the events as
    the live runner does. Its checkpoint is taken after ``k`` commands for every ``k`` that
    ``at(k)`` is true (between two commands of one turn too: the rest of the turn is then on
    its way) and at the end."""
    crowd = crowd_for(instruments, seed)
    engine = Engine()
    steps: list[Step] = []
    taken: dict[int, bytes] = {}

    def apply(ts: int, command: Command) -> None:
        if at(len(steps)):
            taken[len(steps)] = crowd.checkpoint()
        events = engine.apply(len(steps) + 1, ts, command)
        steps.append(Step(ts, command, events))
        crowd.note_command(command)
        crowd.on_events(events, ts)

    start, end = SIM_START_NS, SIM_START_NS + duration_ns
    for instrument in instruments:
        apply(start, instrument)
    ops = sorted(
        (
            (start + ms * 1_000_000, operation(kind, index, instruments, crowd))
            for ms, kind, index in operations
        ),
        key=lambda op: op[0],
    )
    ops_at = [t for t, _c in ops]
    crowd.begin(start)
    j = 0
    while True:
        wake = crowd.next_wake_ns()
        op_t = ops_at[j] if j < len(ops) else NEVER
        if min(wake, op_t) > end:
            break
        if op_t <= wake:
            apply(op_t, ops[j][1])
            j += 1
            continue
        i = crowd.pop_due(wake)
        assert i is not None
        for command in crowd.act(i, wake):
            apply(wake, command)
    taken[len(steps)] = crowd.checkpoint()
    assert crowd.errors == 0
    return Run(steps, taken)


def replay(crowd: Crowd, steps: Sequence[Step]) -> None:
    """Feed journaled commands as ``LiveSimulation`` does before ``start()``."""
    for step in steps:
        crowd.note_command(step.command)
        crowd.on_events(step.events, step.events[0].ts if step.events else 0)


def engine_after(steps: Sequence[Step]) -> Engine:
    engine = Engine()
    for seq, step in enumerate(steps, 1):
        engine.apply(seq, step.ts, step.command)
    return engine


# --- everything a crowd keeps -------------------------------------------------------------------


def state_of(obj: object, skip: frozenset[str] = frozenset()) -> object:
    """A plain, comparable picture of ``obj`` and everything it holds (attributes named in
    ``skip`` left out at every level)."""
    if obj is None or isinstance(obj, bool | int | str | bytes):
        return obj
    if isinstance(obj, Enum):
        return (type(obj).__name__, obj.value)
    if isinstance(obj, Decimal):
        return ("Decimal", str(obj))
    if isinstance(obj, random.Random):
        return ("Random", obj.getstate())
    if isinstance(obj, msgspec.Struct):
        fields = obj.__struct_fields__
        return (type(obj).__name__, {f: state_of(getattr(obj, f), skip) for f in fields})
    if isinstance(obj, Mapping):
        return {state_of(key, skip): state_of(value, skip) for key, value in obj.items()}
    if isinstance(obj, list | tuple | deque):
        return [state_of(item, skip) for item in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        names = [f.name for f in dataclasses.fields(obj)]
    else:
        names = list(getattr(obj, "__dict__", {}))
        for cls in type(obj).__mro__:
            slots = cls.__dict__.get("__slots__", ())
            names.extend([slots] if isinstance(slots, str) else slots)
    return (
        type(obj).__name__,
        {n: state_of(getattr(obj, n), skip) for n in sorted(set(names)) if n not in skip},
    )


def first_difference(a: object, b: object, path: str = "") -> str | None:
    """Where two ``state_of`` pictures differ first (None if equal)."""
    if type(a) is not type(b):
        return f"{path}: {a!r} != {b!r}"
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=repr):
            if key not in a or key not in b:
                return f"{path}.{key}: only in {'second' if key not in a else 'first'}"
            found = first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{path}: {a!r} != {b!r}"
