"""The headless simulator is deterministic: same seed, same events and summary; and it copes
with an operator halting a symbol in the middle of a run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

import msgspec

from tradingfloor.exchange.engine.commands import Command, Halt, NewOrder, Resume
from tradingfloor.exchange.engine.events import Event, Rejected, Trade
from tradingfloor.sim.market import MarketView
from tradingfloor.sim.participant import NEVER, NS_PER_S, Participant
from tradingfloor.sim.population import build_participants
from tradingfloor.sim.simulator import SIM_START_NS, Simulation, default_instruments, simulate
from tradingfloor.sim.summary import WALL_CLOCK_FIELDS


def test_the_same_seed_gives_the_same_run() -> None:
    first = simulate(minutes=1, seed=7)
    second = simulate(minutes=1, seed=7)
    assert first.trades > 0 and first.orders_accepted > 0
    assert first.event_hash == second.event_hash
    assert first.without_wall_clock() == second.without_wall_clock()
    assert msgspec.json.encode(first.without_wall_clock()) == msgspec.json.encode(
        second.without_wall_clock()
    )
    assert set(WALL_CLOCK_FIELDS) <= set(msgspec.structs.asdict(first))


def test_different_seeds_give_different_runs() -> None:
    assert simulate(minutes=0.5, seed=1).event_hash != simulate(minutes=0.5, seed=2).event_hash


def test_summary_fields_add_up() -> None:
    s = simulate(minutes=1, seed=3)
    assert s.messages == s.commands + s.events
    assert s.commands >= s.orders_submitted + s.cancels_sent + s.replaces_sent
    assert s.orders_submitted == s.orders_accepted + s.orders_rejected
    assert s.trades == sum(sym.trades for sym in s.symbols)
    assert s.volume == sum(sym.volume for sym in s.symbols)
    assert [sym.symbol for sym in s.symbols] == [i.symbol for i in default_instruments()]
    for sym in s.symbols:
        assert sym.trades > 0 and sym.low is not None and sym.high is not None
        assert sym.low <= (sym.vwap or 0) <= sym.high
        assert sym.avg_spread_ticks is not None and sym.avg_spread_ticks > 0
    assert s.participants == len(s.members)
    assert s.vwap and s.vwap[0].completed
    assert s.wall_seconds > 0 and s.messages_per_second > 0


class Operator(Participant):
    """Halts AAPL at 10 s and resumes it at 20 s."""

    kind = "operator"

    def begin(self, now_ns: int) -> None:
        self.next_wake_ns = now_ns + 10 * NS_PER_S
        self.turns = 0

    def decide(self, now_ns: int, market: MarketView, out: list[Command]) -> None:
        self.turns += 1
        if self.turns == 1:
            out.append(Halt(symbol="AAPL"))
            self.next_wake_ns = now_ns + 10 * NS_PER_S
        else:
            out.append(Resume(symbol="AAPL"))
            self.next_wake_ns = NEVER


def test_participants_hold_off_while_a_symbol_is_halted() -> None:
    instruments = default_instruments()
    crowd = [*build_participants(instruments, seed=1), Operator("OPERATOR", seed=1)]
    halted = False
    sent_while_halted: list[Command] = []
    rejected: list[Rejected] = []
    trades_after: list[Trade] = []

    def watch(command: Command, events: Sequence[Event]) -> None:
        nonlocal halted
        if isinstance(command, Halt | Resume):
            halted = isinstance(command, Halt)
        elif halted and isinstance(command, NewOrder) and command.symbol == "AAPL":
            sent_while_halted.append(command)
        rejected.extend(e for e in events if isinstance(e, Rejected))
        if not halted:
            trades_after.extend(
                e for e in events if isinstance(e, Trade) and e.ts > SIM_START_NS + 20 * NS_PER_S
            )

    Simulation(instruments, crowd, duration_ns=40 * NS_PER_S, observer=watch).run()
    assert sent_while_halted == []
    assert rejected == []
    assert any(t.symbol == "AAPL" for t in trades_after)  # trading picked up again


def test_another_process_with_another_hash_seed_gives_the_same_events() -> None:
    code = (
        "from tradingfloor.sim.simulator import simulate;"
        "print(simulate(minutes=0.5, seed=5).event_hash)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == simulate(minutes=0.5, seed=5).event_hash
