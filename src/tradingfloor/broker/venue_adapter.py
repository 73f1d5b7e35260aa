"""How the broker reaches an exchange: the venue adapter port and its in-process implementation.

The broker is a member firm of the venue. It sends engine commands under its member id and
learns the outcome only from the venue's events, delivered in sequence order to the callback
given to ``attach``: the same path for live events and for history replayed at start-up. A FIX
adapter (remote venue) would implement the same port from execution reports.

``attach`` also takes the in-memory state the sink builds from events its database already has
(the broker's market view, ``broker/market/venue_view.py``): the in-process venue checkpoints
it with its other projections and, at start-up, restores it from a checkpoint at or below the
broker's mark and delivers only the events after that checkpoint.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from tradingfloor.exchange.checkpoint import Checkpointed
from tradingfloor.exchange.engine.commands import Command
from tradingfloor.exchange.engine.events import Event
from tradingfloor.exchange.venue import Venue

__all__ = ["EventSink", "InProcessVenue", "VenueAdapter"]

EventSink = Callable[[Sequence[Event], Command | None], None]
"""Called with each command's events and, where the adapter knows it, the command itself."""


class VenueAdapter(Protocol):
    name: str
    member: str

    def attach(self, sink: EventSink, *, state: Checkpointed | None = None) -> None:
        """Deliver every venue event (replayed history first, then live) to ``sink``; with
        ``state``, the history may start after a checkpoint of ``state`` instead."""

    def submit(self, command: Command) -> Awaitable[list[Event]]:
        """Send one command; resolves once the venue has journaled it and ``sink`` has seen it."""

    @property
    def running(self) -> bool: ...


class InProcessVenue:
    """The venue in the same process (embedded mode): commands go straight to its sequencer."""

    def __init__(self, venue: Venue, *, member: str, name: str = "TFEX") -> None:
        self.venue = venue
        self.member = member
        self.name = name

    def attach(self, sink: EventSink, *, state: Checkpointed | None = None) -> None:
        # not ``after_mark``: the sink keeps market state from events at or below its mark;
        # ``state`` holds exactly that, so a checkpoint at or below the mark may replace them
        self.venue.add_listener(lambda command, events: sink(events, command), state=state)

    def submit(self, command: Command) -> Awaitable[list[Event]]:
        return self.venue.submit_nowait(command)

    @property
    def running(self) -> bool:
        return self.venue.running
