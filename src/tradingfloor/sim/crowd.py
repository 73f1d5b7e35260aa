"""A crowd of participants sharing one market view: event routing by member and wake-up order.

``Crowd.on_events`` feeds every event to the ``MarketView`` and each member's events to its
participant (a trade to both sides); ``pop_due`` hands out participants in wake-up order, ties
broken by their position in the crowd, so a run is deterministic. Both the headless simulator and
the live runner drive participants through a crowd. ``checkpoint``/``restore_checkpoint`` save
and restore what the crowd learned from the venue's history (``checkpoint_state``).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Sequence

from tradingfloor.exchange.checkpoint import CheckpointError
from tradingfloor.exchange.engine.commands import Command
from tradingfloor.exchange.engine.events import Event, InstrumentAdded, Trade
from tradingfloor.sim.checkpoint_state import (
    SIM_STATE_VERSION,
    SimState,
    decode_sim_state,
    encode_sim_state,
    sim_checkpoint_name,
)
from tradingfloor.sim.market import MarketView
from tradingfloor.sim.participant import MIN_WAKE_NS, NEVER, Participant

__all__ = ["Crowd", "DuplicateMemberError"]

_log = logging.getLogger(__name__)


class DuplicateMemberError(ValueError):
    """Two participants of one crowd use the same member id."""


class Crowd:
    """Participants, their market view and their wake-up queue. See module docstring.

    With ``tolerant=True`` (live runs) an exception in a participant is logged and counted in
    ``errors`` instead of propagating; the participant sits out that turn or event batch.
    """

    def __init__(
        self,
        participants: Sequence[Participant],
        *,
        market: MarketView | None = None,
        tolerant: bool = False,
    ) -> None:
        self.participants = tuple(participants)
        self.market = market if market is not None else MarketView()
        self.tolerant = tolerant
        self.errors = 0
        self._by_member: dict[str, int] = {}
        for i, p in enumerate(self.participants):
            if p.member in self._by_member:
                raise DuplicateMemberError(f"member {p.member!r} appears twice")
            self._by_member[p.member] = i
        self._scheduled = [NEVER] * len(self.participants)
        self._heap: list[tuple[int, int]] = []

    def participant(self, member: str) -> Participant | None:
        i = self._by_member.get(member)
        return None if i is None else self.participants[i]

    # --- events ----------------------------------------------------------------------------------

    def on_events(self, events: Sequence[Event], now_ns: int) -> None:
        """Route one command's events: market view first, then each involved participant."""
        self.market.on_events(events)
        routed: dict[int, list[Event]] = {}
        by_member = self._by_member
        for ev in events:
            if isinstance(ev, Trade):
                for member in (ev.maker_member, ev.taker_member):
                    i = by_member.get(member)
                    if i is not None:
                        bucket = routed.setdefault(i, [])
                        if not bucket or bucket[-1] is not ev:
                            bucket.append(ev)
            elif not isinstance(ev, InstrumentAdded):
                owner: str | None = getattr(ev, "member", None)
                i = by_member.get(owner) if owner is not None else None
                if i is not None:
                    routed.setdefault(i, []).append(ev)
        for i in sorted(routed):
            p = self.participants[i]
            if self.tolerant:
                try:
                    p.on_events(routed[i], now_ns)
                except Exception:
                    self.errors += 1
                    _log.exception("simulated participant %s failed on its events", p.member)
            else:
                p.on_events(routed[i], now_ns)
            self._reschedule(i)

    def note_command(self, command: Command) -> None:
        """Tell the sending participant its command reached the venue (its id is used)."""
        member = getattr(command, "member", None)
        if member is not None:
            i = self._by_member.get(member)
            if i is not None:
                self.participants[i].note_command(command)

    # --- checkpoint ------------------------------------------------------------------------------

    @property
    def checkpoint_name(self) -> str:
        """``sim/<version>/<key of the members and kinds>`` (see ``sim_checkpoint_name``)."""
        return sim_checkpoint_name([(p.member, p.kind) for p in self.participants])

    def checkpoint(self) -> bytes:
        """The market view and what each participant learned from the history so far."""
        return encode_sim_state(
            SimState(
                version=SIM_STATE_VERSION,
                market=self.market.record(),
                participants=[p.history_record() for p in self.participants],
            )
        )

    def restore_checkpoint(self, data: bytes) -> None:
        """Continue from ``checkpoint()`` bytes as if their history had been replayed.

        Call on a fresh crowd, before ``begin``. ``CheckpointError`` (and nothing changed) if
        the bytes are unreadable or were taken from a crowd of other members or kinds.
        """
        if self.market.symbols or self.market.last_ts:
            raise RuntimeError("restore a checkpoint into a fresh crowd only")
        state = decode_sim_state(data)
        theirs = [(p.member, p.kind) for p in state.participants]
        ours = [(p.member, p.kind) for p in self.participants]
        if theirs != ours:
            raise CheckpointError("the checkpoint is of another crowd (members or kinds differ)")
        self.market.restore(state.market)
        for participant, record in zip(self.participants, state.participants, strict=True):
            participant.restore_history(record)

    # --- scheduling ------------------------------------------------------------------------------

    def begin(self, now_ns: int) -> None:
        """Give every participant its first wake-up time after ``now_ns``."""
        self._heap.clear()
        for i, p in enumerate(self.participants):
            p.begin(now_ns)
            self._scheduled[i] = NEVER
            self._reschedule(i)

    def _reschedule(self, i: int) -> None:
        wake = self.participants[i].next_wake_ns
        if wake < self._scheduled[i]:
            self._scheduled[i] = wake
            heapq.heappush(self._heap, (wake, i))

    def next_wake_ns(self) -> int:
        """The earliest pending wake-up time (``NEVER`` if none)."""
        heap = self._heap
        while heap and heap[0][0] != self._scheduled[heap[0][1]]:
            heapq.heappop(heap)  # superseded by an earlier wake-up of the same participant
        return heap[0][0] if heap else NEVER

    def pop_due(self, now_ns: int) -> int | None:
        """Index of the next participant due at ``now_ns`` (removed from the queue), or None."""
        if self.next_wake_ns() > now_ns:
            return None
        _wake, i = heapq.heappop(self._heap)
        self._scheduled[i] = NEVER
        return i

    def act(self, i: int, now_ns: int) -> list[Command]:
        """Let participant ``i`` take its turn and queue its next wake-up."""
        p = self.participants[i]
        try:
            commands = p.act(now_ns, self.market)
        except Exception:
            if not self.tolerant:
                raise
            self.errors += 1
            _log.exception("simulated participant %s failed in its turn", p.member)
            commands = []
            p.next_wake_ns = max(p.next_wake_ns, now_ns + p.interval_ns)
        if p.next_wake_ns <= now_ns:
            p.next_wake_ns = now_ns + MIN_WAKE_NS
        self._reschedule(i)
        return commands
