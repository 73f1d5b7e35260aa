"""What the sequencer, snapshots and recovery need from a deterministic state machine.

The matching engine satisfies these protocols; tests use small fakes that do too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from tradingfloor.exchange.engine.commands import Command
from tradingfloor.exchange.engine.events import Event

__all__ = ["StateMachine", "StateMachineType"]

M_co = TypeVar("M_co", bound="StateMachine", covariant=True)


class StateMachine(Protocol):
    """A pure, deterministic state machine fed by sequenced commands."""

    @property
    def last_seq(self) -> int:
        """Sequence number of the last applied command (0 before the first)."""
        ...

    def apply(self, seq: int, ts: int, cmd: Command) -> Sequence[Event]:
        """Apply one sequenced command; the same inputs always give the same state and events."""
        ...

    def snapshot(self) -> bytes:
        """Canonical encoding of the full state, including ``last_seq``."""
        ...

    def state_hash(self) -> str:
        """sha256 hex digest of ``snapshot()``."""
        ...


class StateMachineType(Protocol[M_co]):
    """The class of a state machine: ``Engine`` itself satisfies this."""

    def __call__(self) -> M_co:
        """A fresh state machine that has applied nothing."""
        ...

    def restore(self, data: bytes) -> M_co:
        """The state machine whose ``snapshot()`` was ``data``."""
        ...
