"""Startup recovery: newest valid snapshot plus a replay of the journal tail after it.

A torn journal tail is truncated and reported; any other damage raises and stops startup,
unless the operator names its place (``truncate_at``), which cuts the journal there.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from tradingfloor.exchange._durable import DirectoryLock, ensure_dir, fsync_dir
from tradingfloor.exchange.journal import (
    DroppedBytes,
    JournalCorruptError,
    JournalReader,
    TornTail,
    repair_torn_tail,
    truncate_corrupt,
)
from tradingfloor.exchange.snapshot import SnapshotDamagedError, SnapshotStore
from tradingfloor.exchange.state_machine import StateMachine, StateMachineType

if TYPE_CHECKING:
    from tradingfloor.exchange.engine.engine import Engine

__all__ = ["AHEAD_DIR", "RecoveryError", "RecoveryReport", "SnapshotAheadError", "recover"]

M = TypeVar("M", bound=StateMachine)


AHEAD_DIR = "ahead-of-journal"
"""Where snapshots past the journal's end go when the operator accepts the loss."""


class RecoveryError(Exception):
    """The snapshots and the journal do not fit together; recovery must not continue."""


class SnapshotAheadError(RecoveryError):
    """The newest snapshot is past the journal's end: acknowledged commands are missing from
    the journal (lost or restored from an older copy). Restore the journal, or start a new
    epoch (``serve --new-epoch``), which sets those snapshots aside."""

    def __init__(self, journal_dir: Path, journal_last_seq: int, snapshot_seq: int) -> None:
        super().__init__(
            f"the snapshot at seq {snapshot_seq} is ahead of the journal in {journal_dir}, "
            f"which ends at seq {journal_last_seq}: acknowledged commands are missing; restore "
            "the journal, or start a new epoch with --new-epoch (the snapshots past its end "
            "are then set aside)"
        )
        self.journal_last_seq = journal_last_seq
        self.snapshot_seq = snapshot_seq


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What recovery found and did."""

    snapshot_seq: int
    """seq of the snapshot the state started from; 0 when starting from a fresh machine."""
    snapshot_path: Path | None
    damaged_snapshots: tuple[SnapshotDamagedError, ...]
    """Newer snapshots skipped because they failed verification."""
    records_replayed: int
    last_seq: int
    """seq of the last command in the recovered state (the next command gets last_seq + 1)."""
    last_ts: int
    """ts of that command; the sequencer must not stamp anything earlier."""
    torn_tail: TornTail | None
    """The torn journal tail truncated, if any."""
    dropped: tuple[DroppedBytes, ...] = ()
    """Every byte range removed from the journal: the torn tail and what ``truncate_at`` cut."""
    set_aside: tuple[Path, ...] = ()
    """Snapshots moved out of the way because they were past the journal's end."""

    @property
    def torn_bytes_dropped(self) -> int:
        return 0 if self.torn_tail is None else self.torn_tail.dropped_bytes


@overload
def recover(
    journal_dir: str | os.PathLike[str],
    snapshot_dir: str | os.PathLike[str],
    machine_type: None = None,
    *,
    truncate_at: str | None = None,
    set_aside_ahead: bool = False,
) -> tuple[Engine, RecoveryReport]: ...


@overload
def recover(
    journal_dir: str | os.PathLike[str],
    snapshot_dir: str | os.PathLike[str],
    machine_type: StateMachineType[M],
    *,
    truncate_at: str | None = None,
    set_aside_ahead: bool = False,
) -> tuple[M, RecoveryReport]: ...


def recover(
    journal_dir: str | os.PathLike[str],
    snapshot_dir: str | os.PathLike[str],
    machine_type: StateMachineType[Any] | None = None,
    *,
    truncate_at: str | None = None,
    set_aside_ahead: bool = False,
) -> tuple[Any, RecoveryReport]:
    """Rebuild the state machine (the matching ``Engine`` by default) from disk.

    Loads the newest snapshot that verifies (or starts fresh), replays every journal record
    after it, and truncates a torn journal tail. Raises ``JournalCorruptError`` for damage in
    the journal other than a torn tail -- unless ``truncate_at`` names its place
    (``JournalCorruptError.location``, the operator's explicit choice): then the journal is cut
    there (``truncate_corrupt``, a copy kept) and recovery starts over. A snapshot ahead of
    the journal's end (its commands were acknowledged, the journal lost them) raises
    ``SnapshotAheadError``, unless the operator cut the journal or ``set_aside_ahead`` (a new
    epoch) accepts the loss: then every snapshot past the journal's end is moved to
    ``snapshots/ahead-of-journal/`` (kept, listed in ``RecoveryReport.set_aside``) and recovery
    starts over. Raises ``RecoveryError`` when a restored state does not match its snapshot.
    """
    if machine_type is None:
        from tradingfloor.exchange.engine.engine import Engine

        machine_type = Engine
    journal_path = Path(journal_dir)
    cut: list[DroppedBytes] = []
    set_aside: list[Path] = []
    with _lock_if_present(journal_path):
        while True:
            try:
                machine, report = _recover_locked(journal_path, snapshot_dir, machine_type)
            except JournalCorruptError as exc:
                if truncate_at is None or cut or exc.location != truncate_at:
                    raise
                cut = truncate_corrupt(journal_path, truncate_at)
                continue
            except SnapshotAheadError as exc:
                if not (set_aside_ahead or cut) or set_aside:
                    raise
                set_aside = _set_aside_after(Path(snapshot_dir), exc.journal_last_seq)
                continue
            break
    dropped = tuple(cut) + report.dropped
    return machine, RecoveryReport(
        snapshot_seq=report.snapshot_seq,
        snapshot_path=report.snapshot_path,
        damaged_snapshots=report.damaged_snapshots,
        records_replayed=report.records_replayed,
        last_seq=report.last_seq,
        last_ts=report.last_ts,
        torn_tail=report.torn_tail,
        dropped=dropped,
        set_aside=tuple(set_aside),
    )


def _set_aside_after(snapshot_dir: Path, last_seq: int) -> list[Path]:
    """Move every snapshot after ``last_seq`` to ``ahead-of-journal/``; return the new paths."""
    target = snapshot_dir / AHEAD_DIR
    moved = []
    for seq, path in SnapshotStore(snapshot_dir).paths():
        if seq > last_seq:
            ensure_dir(target)
            destination = target / path.name
            os.replace(path, destination)
            moved.append(destination)
    if moved:
        fsync_dir(target)
        fsync_dir(snapshot_dir)
    return moved


def _recover_locked(
    journal_path: Path,
    snapshot_dir: str | os.PathLike[str],
    machine_type: StateMachineType[Any],
) -> tuple[Any, RecoveryReport]:
    snapshot, damaged = SnapshotStore(snapshot_dir).find_latest()
    if snapshot is None:
        machine = machine_type()
        snapshot_seq, last_ts = 0, 0
    else:
        machine = machine_type.restore(snapshot.data)
        snapshot_seq, last_ts = snapshot.seq, snapshot.ts
        if machine.last_seq != snapshot_seq:
            raise RecoveryError(
                f"{snapshot.path}: restored state has last_seq {machine.last_seq}, "
                f"the snapshot header says {snapshot_seq}"
            )
        if machine.snapshot() != snapshot.data:  # the pair of the check before writing
            raise RecoveryError(f"{snapshot.path}: the restored state is not the one saved")
    reader = JournalReader(journal_path, after_seq=snapshot_seq)
    replayed = 0
    for record in reader:
        machine.apply(record.seq, record.ts, record.command)
        replayed += 1
    if reader.last_seq < snapshot_seq:
        raise SnapshotAheadError(journal_path, reader.last_seq, snapshot_seq)
    dropped: tuple[DroppedBytes, ...] = ()
    torn = reader.torn
    if torn is not None:
        repair_torn_tail(torn)
        end = torn.offset + torn.dropped_bytes
        dropped = (DroppedBytes(torn.path, torn.offset, end, torn.reason, torn=True),)
    if machine.last_seq != reader.last_seq:
        raise RecoveryError(
            f"state machine is at seq {machine.last_seq} after replaying to {reader.last_seq}"
        )
    report = RecoveryReport(
        snapshot_seq=snapshot_seq,
        snapshot_path=None if snapshot is None else snapshot.path,
        damaged_snapshots=tuple(damaged),
        records_replayed=replayed,
        last_seq=machine.last_seq,
        last_ts=max(last_ts, reader.last_ts),
        torn_tail=torn,
        dropped=dropped,
    )
    return machine, report


def _lock_if_present(directory: Path) -> AbstractContextManager[object]:
    """Hold the journal directory lock while reading and repairing, if the directory exists."""
    return DirectoryLock(directory) if directory.is_dir() else nullcontext()
