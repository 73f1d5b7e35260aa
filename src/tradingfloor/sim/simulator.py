"""The headless simulator: participants against a pure ``Engine`` in simulated time.

A discrete-event loop: instruments are listed at ``SIM_START_NS``, then the participant due
next takes its turn, each of its commands is applied with the next sequence number and the
turn's simulated time, and the events go back to the market view and the participants. No
clock and no shared randomness: the same seed, instruments and crowd give the same events
(``Summary.event_hash``) and the same summary, apart from its wall-clock fields.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Final

from tradingfloor.exchange.engine import Engine
from tradingfloor.exchange.engine.commands import AddInstrument, Command
from tradingfloor.exchange.engine.events import Event
from tradingfloor.sim.crowd import Crowd
from tradingfloor.sim.participant import NS_PER_S, Participant
from tradingfloor.sim.population import DEFAULT_VWAP_HORIZON_NS, CrowdConfig, build_participants
from tradingfloor.sim.summary import Summary, Tally
from tradingfloor.sim.vwap import START_DELAY_NS

__all__ = [
    "MAX_SIM_MINUTES",
    "NS_PER_MINUTE",
    "SIM_START_NS",
    "Observer",
    "Progress",
    "Simulation",
    "default_instruments",
    "simulate",
]

SIM_START_NS: Final = 1_767_623_400_000_000_000  # 2026-01-05 14:30:00 UTC, a Monday's open
NS_PER_MINUTE: Final = 60 * NS_PER_S
MAX_SIM_MINUTES: Final = 7 * 24 * 60  # a week of simulated time at most
PROGRESS_EVERY_NS: Final = NS_PER_S  # the progress callback fires once per simulated second

Progress = Callable[[int, int], None]
"""``progress(done_ns, total_ns)``: simulated time done so far out of the whole run."""
Observer = Callable[[Command, Sequence[Event]], None]
"""Called after each applied command with its events (tests check invariants here)."""


def default_instruments() -> tuple[AddInstrument, ...]:
    """The instruments of the packaged venue configuration (AAPL, MSFT, GOOG, AMZN, TSLA)."""
    from tradingfloor.exchange.config import load_config

    return load_config(None).instruments


class Simulation:
    """One deterministic run. ``engine``, ``crowd`` and ``tally`` stay readable afterwards."""

    def __init__(
        self,
        instruments: Sequence[AddInstrument],
        participants: Sequence[Participant],
        *,
        duration_ns: int,
        seed: int = 0,
        start_ns: int = SIM_START_NS,
        observer: Observer | None = None,
    ) -> None:
        if duration_ns <= 0 or duration_ns > MAX_SIM_MINUTES * NS_PER_MINUTE:
            raise ValueError(f"duration must be positive and at most {MAX_SIM_MINUTES} minutes")
        self.instruments = tuple(instruments)
        self.crowd = Crowd(participants)
        self.engine = Engine()
        self.seed = seed
        self.start_ns = start_ns
        self.end_ns = start_ns + duration_ns
        self.observer = observer
        self.tally = Tally(self.crowd.market, start_ns)
        self.seq = 0

    def _apply(self, ts: int, command: Command) -> None:
        self.seq += 1
        events = self.engine.apply(self.seq, ts, command)
        self.tally.record(command, events)
        self.crowd.on_events(events, ts)
        if self.observer is not None:
            self.observer(command, events)

    def run(self, progress: Progress | None = None) -> Summary:
        """Run to the end of the duration and summarise. Call once."""
        if self.seq:
            raise RuntimeError("a Simulation runs once")
        wall = time.perf_counter()
        start, end, crowd = self.start_ns, self.end_ns, self.crowd
        total = end - start
        for instrument in self.instruments:
            self._apply(start, instrument)
        crowd.begin(start)
        next_report = start + PROGRESS_EVERY_NS
        while True:
            wake = crowd.next_wake_ns()
            if wake > end:
                break
            if progress is not None and wake >= next_report:
                progress(wake - start, total)
                next_report = wake - (wake - start) % PROGRESS_EVERY_NS + PROGRESS_EVERY_NS
            i = crowd.pop_due(wake)
            if i is None:  # cannot happen: wake is the earliest due time
                raise RuntimeError("wake-up queue out of order")
            self.tally.advance(wake)
            for command in crowd.act(i, wake):
                self._apply(wake, command)
        self.tally.advance(end)
        if progress is not None:
            progress(total, total)
        return self.tally.summary(
            seed=self.seed,
            participants=crowd.participants,
            wall_seconds=time.perf_counter() - wall,
        )


def simulate(
    minutes: float | int = 10,
    seed: int = 1,
    *,
    instruments: Sequence[AddInstrument] | None = None,
    config: CrowdConfig | None = None,
    progress: Progress | None = None,
    observer: Observer | None = None,
) -> Summary:
    """Run the default crowd over ``instruments`` (default: the packaged venue's) headless.

    Unless ``config`` says otherwise the VWAP slicer's horizon is the 30-minute default or,
    for shorter runs, four fifths of the run after its start delay, so that its parent order
    can finish.
    """
    duration = int(minutes * NS_PER_MINUTE)
    listed = tuple(instruments) if instruments is not None else default_instruments()
    if config is None:
        room = (duration - START_DELAY_NS) * 4 // 5
        config = CrowdConfig(vwap_horizon_ns=max(NS_PER_S, min(DEFAULT_VWAP_HORIZON_NS, room)))
    participants = build_participants(listed, seed, config)
    sim = Simulation(listed, participants, duration_ns=duration, seed=seed, observer=observer)
    return sim.run(progress)
