"""The sequencer and the journaled engine: stamp, journal, apply, group commit, acknowledge.

``Sequencer`` is the only place that reads the clock. ``JournaledEngine`` runs batches of
commands through sequencer, journal and engine and returns their events only once the batch is
durable (one fsync per batch). Every ``snapshot_every`` commands, right after a commit, it
hands the engine to a ``SnapshotWriter``, which snapshots it off the acknowledgement path (a
forked child serialises, validates, writes and fsyncs the state of exactly that seq; or, in
``inline`` mode, the batch thread serialises and a worker does the rest); a failed snapshot
stops the next batch.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from tradingfloor.exchange.engine.commands import Command
from tradingfloor.exchange.engine.events import Event
from tradingfloor.exchange.journal import DEFAULT_SEGMENT_BYTES, Journal, JournalRecord
from tradingfloor.exchange.recovery import RecoveryReport, recover
from tradingfloor.exchange.retention import RetentionPolicy, archive_segments
from tradingfloor.exchange.snapshot import DEFAULT_KEEP_SNAPSHOTS, SnapshotStore
from tradingfloor.exchange.snapshot_writer import SnapshotInvalidError, SnapshotWriter
from tradingfloor.exchange.state_machine import StateMachine, StateMachineType

if TYPE_CHECKING:
    from tradingfloor.exchange.engine.engine import Engine

__all__ = [
    "DEFAULT_SNAPSHOT_EVERY",
    "MAX_BATCH_COMMANDS",
    "Clock",
    "JournaledEngine",
    "PipelineFailedError",
    "Sequencer",
]

Clock = Callable[[], int]
"""Returns the current time in nanoseconds since the Unix epoch."""

DEFAULT_SNAPSHOT_EVERY = 100_000
"""Commands between snapshots by default."""
MAX_BATCH_COMMANDS = 65_536
"""Most commands one ``JournaledEngine.submit`` call accepts."""

M = TypeVar("M", bound=StateMachine)
_log = logging.getLogger(__name__)


class PipelineFailedError(RuntimeError):
    """An earlier batch failed half-way; the engine may be ahead of the journal. Recover."""


class Sequencer:
    """Stamps commands with consecutive sequence numbers and non-decreasing nanosecond times."""

    def __init__(self, *, last_seq: int = 0, last_ts: int = 0, clock: Clock = time.time_ns) -> None:
        if last_seq < 0 or last_ts < 0:
            raise ValueError("last_seq and last_ts must not be negative")
        self._last_seq = last_seq
        self._last_ts = last_ts
        self._clock = clock

    @property
    def last_seq(self) -> int:
        """seq of the last stamped command (the next one gets last_seq + 1)."""
        return self._last_seq

    @property
    def last_ts(self) -> int:
        """ts of the last stamped command; no later stamp is earlier."""
        return self._last_ts

    def stamp(self, command: Command) -> JournalRecord:
        """The command with the next seq and ``max(clock(), last ts)`` as its time."""
        now = self._clock()
        if not isinstance(now, int) or isinstance(now, bool):
            raise TypeError(f"clock returned {now!r}; it must return integer nanoseconds")
        self._last_seq += 1
        self._last_ts = max(now, self._last_ts)
        return JournalRecord(seq=self._last_seq, ts=self._last_ts, command=command)


class JournaledEngine(Generic[M]):
    """A state machine behind a sequencer and a write-ahead journal, with periodic snapshots.

    ``submit(batch)`` stamps each command, appends it to the journal, applies it and collects
    the events, then commits the journal once (one fsync for the whole batch) and only then
    returns the events: returning is the acknowledgement. Nothing is visible before the fsync,
    so applying ahead of it is safe. If anything in a batch fails, none of the batch is
    acknowledged, the engine may hold state the journal lacks, and every later call raises
    ``PipelineFailedError``: restart and recover. Not thread-safe.
    """

    def __init__(
        self,
        engine: M,
        journal: Journal,
        *,
        snapshots: SnapshotStore | None = None,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
        clock: Clock = time.time_ns,
        last_snapshot_seq: int = 0,
        machine_type: StateMachineType[M] | None = None,
        retention: RetentionPolicy | None = None,
        consumer_horizon: Callable[[], int] | None = None,
    ) -> None:
        """``machine_type`` restores snapshots to validate them (default: ``type(engine)``).

        With ``retention``, each written snapshot is followed (on the writer's thread) by
        ``archive_segments`` up to its seq, lowered to ``consumer_horizon()`` (the slowest
        consumer's mark, read on that thread) when given.
        """
        if engine.last_seq != journal.last_seq:
            raise ValueError(
                f"engine is at seq {engine.last_seq} but the journal at {journal.last_seq}"
            )
        if snapshot_every < 0:
            raise ValueError("snapshot_every must not be negative (0 disables snapshots)")
        self._engine = engine
        self._journal = journal
        self._snapshots = snapshots
        self._machine_type: StateMachineType[M] = (
            machine_type if machine_type is not None else type(engine)  # type: ignore[assignment]
        )
        self._retention = retention
        self._consumer_horizon = consumer_horizon
        after = None if retention is None else self._archive
        self._writer = (
            None
            if snapshots is None
            else SnapshotWriter(snapshots, self._verify, after_write=after)
        )
        self._snapshot_every = snapshot_every
        self._sequencer = Sequencer(last_seq=journal.last_seq, last_ts=journal.last_ts, clock=clock)
        self._last_snapshot_seq = last_snapshot_seq
        self._failed = False

    @overload
    @classmethod
    def open(
        cls,
        journal_dir: str | os.PathLike[str],
        snapshot_dir: str | os.PathLike[str],
        machine_type: None = None,
        *,
        clock: Clock = ...,
        snapshot_every: int = ...,
        keep_snapshots: int = ...,
        segment_bytes: int = ...,
        truncate_at: str | None = ...,
        set_aside_ahead: bool = ...,
        retention: RetentionPolicy | None = ...,
    ) -> tuple[JournaledEngine[Engine], RecoveryReport]: ...

    @overload
    @classmethod
    def open(
        cls,
        journal_dir: str | os.PathLike[str],
        snapshot_dir: str | os.PathLike[str],
        machine_type: StateMachineType[M],
        *,
        clock: Clock = ...,
        snapshot_every: int = ...,
        keep_snapshots: int = ...,
        segment_bytes: int = ...,
        truncate_at: str | None = ...,
        set_aside_ahead: bool = ...,
        retention: RetentionPolicy | None = ...,
    ) -> tuple[JournaledEngine[M], RecoveryReport]: ...

    @classmethod
    def open(
        cls,
        journal_dir: str | os.PathLike[str],
        snapshot_dir: str | os.PathLike[str],
        machine_type: StateMachineType[Any] | None = None,
        *,
        clock: Clock = time.time_ns,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
        keep_snapshots: int = DEFAULT_KEEP_SNAPSHOTS,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        truncate_at: str | None = None,
        set_aside_ahead: bool = False,
        retention: RetentionPolicy | None = None,
    ) -> tuple[JournaledEngine[Any], RecoveryReport]:
        """Recover the state from ``snapshot_dir`` and ``journal_dir``, then open for appends.

        ``truncate_at`` is passed to ``recover`` (the operator's cut at a reported corruption);
        ``retention`` archives old segments after each snapshot (see ``retention``).
        """
        engine, report = recover(
            journal_dir,
            snapshot_dir,
            machine_type,
            truncate_at=truncate_at,
            set_aside_ahead=set_aside_ahead,
        )
        journal = Journal.open(journal_dir, segment_bytes=segment_bytes)
        try:
            pipeline: JournaledEngine[Any] = JournaledEngine(
                engine,
                journal,
                snapshots=SnapshotStore(snapshot_dir, keep=keep_snapshots),
                snapshot_every=snapshot_every,
                clock=clock,
                last_snapshot_seq=report.snapshot_seq,
                machine_type=machine_type,
                retention=retention,
            )
        except BaseException:
            journal.close()
            raise
        return pipeline, report

    @property
    def engine(self) -> M:
        """The state machine; read it, never feed it directly."""
        return self._engine

    @property
    def journal(self) -> Journal:
        return self._journal

    @property
    def last_seq(self) -> int:
        """seq of the last acknowledged command."""
        return self._journal.last_seq

    @property
    def failed(self) -> bool:
        return self._failed

    @property
    def snapshot_writer(self) -> SnapshotWriter | None:
        return self._writer

    @property
    def last_snapshot_seq(self) -> int:
        """seq of the last snapshot taken (handed to the writer), or recovered from."""
        return self._last_snapshot_seq

    def submit(self, commands: Sequence[Command]) -> list[Event]:
        """Run one batch; return its events once the batch is durable (the acknowledgement)."""
        return [event for events in self.submit_each(commands) for event in events]

    def submit_each(self, commands: Sequence[Command]) -> list[list[Event]]:
        """Like ``submit``, with the events of each command in a list of their own."""
        if self._failed:
            raise PipelineFailedError("an earlier batch failed; restart and recover")
        if self._writer is not None:
            try:
                self._writer.check()  # a failed snapshot stops matching here
            except BaseException:
                self._failed = True
                raise
        if len(commands) > MAX_BATCH_COMMANDS:
            raise ValueError(f"batch of {len(commands)} commands exceeds MAX_BATCH_COMMANDS")
        if not commands:
            return []
        events: list[list[Event]] = []
        try:
            for command in commands:
                record = self._sequencer.stamp(command)
                self._journal.append(record)
                events.append(list(self._engine.apply(record.seq, record.ts, record.command)))
                if self._engine.last_seq != record.seq:
                    raise PipelineFailedError(
                        f"engine is at seq {self._engine.last_seq} after applying {record.seq}"
                    )
            self._journal.commit()
        except BaseException:
            self._failed = True
            try:
                self._journal.discard()
            except Exception:  # never hide the error that failed the batch behind this one
                _log.exception("discarding the failed batch failed")
            raise
        writer = self._writer
        if (
            writer is not None
            and self._snapshot_every > 0
            and self._engine.last_seq - self._last_snapshot_seq >= self._snapshot_every
        ):
            # Right after the commit: the state of exactly last_seq (forked or serialised
            # here); validating, writing and fsyncing happen in the child or on the worker.
            seq = self._engine.last_seq
            writer.submit_state(seq, self._journal.last_ts, self._engine)
            self._last_snapshot_seq = seq
        return events

    def take_snapshot(self) -> Path:
        """Validate and write a snapshot of the current (fully committed) state now."""
        if self._writer is None:
            raise ValueError("this JournaledEngine has no snapshot store")
        if self._failed:
            raise PipelineFailedError("an earlier batch failed; restart and recover")
        seq = self._engine.last_seq
        self._last_snapshot_seq = seq
        return self._writer.write_now(seq, self._journal.last_ts, self._engine.snapshot())

    def wait_for_snapshot(self) -> Path | None:
        """Wait until the snapshot in flight is written; return the last one written."""
        if self._writer is None:
            return None
        self._writer.wait()
        return self._writer.last_path

    def _archive(self, snapshot_seq: int) -> None:
        """Retention after a snapshot (writer thread): archive segments below the horizon."""
        assert self._retention is not None
        horizon = snapshot_seq
        if self._consumer_horizon is not None:
            horizon = min(horizon, self._consumer_horizon())
        archive_segments(self._journal.directory, horizon, self._retention)

    def _verify(self, seq: int, data: bytes) -> None:
        """A snapshot must restore to a machine at ``seq`` whose snapshot is the same bytes."""
        restored = self._machine_type.restore(data)
        if restored.last_seq != seq:
            raise SnapshotInvalidError(f"restores to seq {restored.last_seq}, not {seq}")
        if restored.snapshot() != data:
            raise SnapshotInvalidError("restoring and snapshotting again gives other bytes")

    def close(self) -> None:
        """Finish the snapshot in flight, close the journal. Closing twice is harmless.

        Raises ``SnapshotFailedError`` if that snapshot failed (the journal is closed anyway).
        """
        try:
            if self._writer is not None:
                self._writer.close()
        finally:
            self._journal.close()

    def __enter__(self) -> JournaledEngine[M]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
