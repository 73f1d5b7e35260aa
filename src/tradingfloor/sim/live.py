"""The live runner: the simulated participants trading on a running ``Venue`` in (scaled) real time.

Usage, in this order, inside the event loop::

    sim = LiveSimulation(venue, build_participants(config.instruments, seed=1), speed=1.0)
    sim.attach()                 # before venue.replay_history(): rebuild orders, positions, ids
    venue.replay_history()       # from the newest projection checkpoint, or the whole journal
    await venue.start()
    ...                          # list missing instruments
    sim.start()                  # participants begin trading (creates an asyncio task)
    ...
    await sim.stop()             # before venue.stop(); resting orders stay in the book

Simulated time runs ``speed`` times as fast as the wall clock, starting at the wall-clock time
of ``start()``. Participants see every event through a venue listener (the market view and
their own orders); a participant that raises is logged and skipped, never the venue's problem.
Commands the venue refuses (busy, closed) are forgotten by their participant.

The runner is the venue's ``Checkpointed`` projection ``sim/1/<crowd key>``: a checkpoint holds
what the participants learned from the history (``Crowd.checkpoint``), so that a restart
restores it and replays only the journal after it, and ends with the participants a replay of
the whole journal would give.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from tradingfloor.exchange.engine.commands import Command
from tradingfloor.exchange.engine.events import Event
from tradingfloor.exchange.venue import Venue, VenueError
from tradingfloor.sim.crowd import Crowd
from tradingfloor.sim.participant import NEVER, Participant
from tradingfloor.sim.summary import Summary, Tally

__all__ = ["MAX_IN_FLIGHT", "MAX_SPEED", "LiveSimulation", "LiveStats"]

_log = logging.getLogger(__name__)

MAX_SPEED: Final = 10_000.0  # simulated seconds per wall second, at most
MAX_IN_FLIGHT: Final = 1_000  # participants wait while the venue has this many commands queued
MAX_SLEEP_S: Final = 0.5  # the runner looks at the clock at least this often
BACKOFF_S: Final = 0.05  # wait after the venue refused or is saturated


@dataclass(slots=True)
class LiveStats:
    turns: int = 0
    commands_sent: int = 0
    refused: int = 0  # submit_nowait raised (venue busy or closed)
    failed: int = 0  # accepted for submission, then failed (venue stopped or broke)


class LiveSimulation:
    """See module docstring."""

    def __init__(
        self,
        venue: Venue,
        participants: Sequence[Participant],
        *,
        speed: float = 1.0,
        seed: int = 0,
        clock: Callable[[], int] = time.time_ns,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        if not 0 < speed <= MAX_SPEED:
            raise ValueError(f"speed must be in (0, {MAX_SPEED}]")
        if max_in_flight <= 0:
            raise ValueError("max_in_flight must be positive")
        self.venue = venue
        self.crowd = Crowd(participants, tolerant=True)
        self.speed = speed
        self.seed = seed
        self.max_in_flight = max_in_flight
        self.stats = LiveStats()
        self.tally: Tally | None = None  # counts from start() on
        self._clock = clock
        self._attached = False
        self._wall0 = 0
        self._sim0 = 0
        self._task: asyncio.Task[None] | None = None
        self._nudge: asyncio.Event | None = None
        self._sleeping_until = NEVER

    @property
    def participants(self) -> tuple[Participant, ...]:
        return self.crowd.participants

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # --- lifecycle -------------------------------------------------------------------------------

    def attach(self) -> None:
        """Listen to the venue; call before ``venue.replay_history()``. On a venue that keeps
        projection checkpoints the participants' state is one of them (``sim/1/<crowd key>``)."""
        if self._attached:
            raise RuntimeError("already attached")
        keeps = self.venue.checkpoints is not None
        self.venue.add_listener(self._on_command, state=self if keeps else None)
        self._attached = True

    def start(self) -> None:
        """Begin trading (after ``venue.start()``, inside the running event loop); simulated
        time starts now. Creates the task that gives participants their turns."""
        if not self._attached:
            raise RuntimeError("attach() before venue.replay_history() and start()")
        if self.running:
            return
        self._wall0 = self._clock()
        self._sim0 = self._wall0
        self.tally = Tally(self.crowd.market, self._sim0)
        self._nudge = asyncio.Event()
        self.crowd.begin(self._sim0)
        self._task = asyncio.create_task(self._run(), name="sim-participants")

    async def stop(self) -> None:
        """Stop taking turns (orders already sent stay where they are)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def sim_now_ns(self) -> int:
        """Simulated time now (the wall clock before ``start``)."""
        wall = self._clock()
        if not self._wall0:
            return wall
        return self._sim0 + int((wall - self._wall0) * self.speed)

    def summary(self) -> Summary:
        """What happened since ``start()`` (the event hash covers those events only)."""
        if self.tally is None:
            raise RuntimeError("not started")
        self.tally.advance(self.sim_now_ns())
        wall_s = (self._clock() - self._wall0) / 1e9
        return self.tally.summary(
            seed=self.seed, participants=self.participants, wall_seconds=wall_s
        )

    # --- checkpoint (``exchange.checkpoint.Checkpointed``) ----------------------------------------

    @property
    def checkpoint_name(self) -> str:
        return self.crowd.checkpoint_name

    def checkpoint(self) -> bytes:
        """What the participants learned from the venue's history so far (see ``Crowd``)."""
        return self.crowd.checkpoint()

    def restore_checkpoint(self, data: bytes) -> None:
        """Restore ``checkpoint()`` bytes before ``start()``; ``CheckpointError`` if unusable."""
        if self._wall0 or self.running:
            raise RuntimeError("restore a checkpoint before start()")
        self.crowd.restore_checkpoint(data)

    # --- events ----------------------------------------------------------------------------------

    def _on_command(self, command: Command, events: Sequence[Event]) -> None:
        started = self._wall0 != 0
        now = self.sim_now_ns() if started else (events[0].ts if events else 0)
        tally = self.tally
        if tally is not None:
            tally.advance(now)
        self.crowd.note_command(command)
        self.crowd.on_events(events, now)
        if tally is not None:
            tally.record(command, events)
        if self._nudge is not None and self.crowd.next_wake_ns() < self._sleeping_until:
            self._nudge.set()

    # --- the turn loop ---------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.exception("simulated participants: turn failed")
                await asyncio.sleep(BACKOFF_S)

    async def _step(self) -> None:
        now = self.sim_now_ns()
        wake = self.crowd.next_wake_ns()
        if wake > now:
            await self._sleep_until(wake, now)
            return
        venue = self.venue
        if not venue.running or venue.queued >= self.max_in_flight:
            await asyncio.sleep(BACKOFF_S)
            return
        i = self.crowd.pop_due(now)
        if i is None:
            return
        participant = self.crowd.participants[i]
        commands = self.crowd.act(i, now)
        self.stats.turns += 1
        for command in commands:
            try:
                future = venue.submit_nowait(command)
            except VenueError as exc:
                self.stats.refused += 1
                _log.debug("venue refused %s of %s: %s", command, participant.member, exc)
                participant.unsent(command)
                continue
            except Exception:
                self.stats.refused += 1
                _log.exception("submitting %s of %s failed", command, participant.member)
                participant.unsent(command)
                continue
            self.stats.commands_sent += 1
            future.add_done_callback(functools.partial(self._sent, participant, command))
        await asyncio.sleep(0)  # let the batcher and the sockets run

    async def _sleep_until(self, wake: int, now: int) -> None:
        if self._nudge is None:
            raise RuntimeError("not started")
        delay = min((wake - now) / self.speed / 1e9, MAX_SLEEP_S)
        self._nudge.clear()
        self._sleeping_until = wake
        try:
            await asyncio.wait_for(self._nudge.wait(), timeout=delay)
        except TimeoutError:
            pass
        finally:
            self._sleeping_until = NEVER

    def _sent(
        self, participant: Participant, command: Command, future: asyncio.Future[list[Event]]
    ) -> None:
        # A command that failed after queueing (the venue stopped with it queued, a journal
        # batch failed) never reached the engine and none of its events will come: its
        # participant must forget it, or an order stays "pending" (and counted) forever.
        if future.cancelled() or future.exception() is None:
            return  # done (its events reach the participants through the listener)
        self.stats.failed += 1
        participant.unsent(command)
