"""Projection checkpoints: every event-fed projection's state at a snapshot's seq, so that
start-up replays only the journal after it.

Projections (market-data books and bars, the FIX execution reporter, the ITCH encoder, the
operator's status view, the broker's market view and history, simulated participants) are
rebuilt from engine events. Without checkpoints, start-up replays the whole journal into them,
so restart time grows with history. With them, right after the engine snapshot at command seq
``S`` is taken and the listeners have seen every event up to ``S``, the venue asks each
registered projection for its state (``Checkpointed.checkpoint``, on the loop thread) and a
worker thread writes them together as one checkpoint file. At start-up the venue picks the
newest checkpoint that (a) has a part for every registered projection, (b) lies at or below
every durable consumer's mark (``horizon_event_seq``: reports and broker effects after a mark
must still be regenerated from events) and (c) has the engine snapshot of the same seq; it
restores the projections and a shadow engine from them and replays only the journal after
``S``. A listener registered without state and without ``after_mark`` needs every event, so
its presence means a full replay (the safe default for a projection not yet checkpointed).

A damaged or unreadable checkpoint (or part) is skipped, reported and replaced by an older
one or a full replay: checkpoints only make restarts faster, the journal stays the truth.

File ``checkpoints/snapshot-{seq:020d}.bin`` in the snapshot file format (``snapshot``: magic,
version, seq, ts, length, CRC), whose body is the msgpack ``Checkpoint`` below.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Generic, Protocol, TypeVar

import msgspec

from tradingfloor.exchange.snapshot import (
    SnapshotDamagedError,
    SnapshotStore,
    read_snapshot,
    snapshot_name,
)
from tradingfloor.exchange.state_machine import StateMachine, StateMachineType

__all__ = [
    "CHECKPOINT_VERSION",
    "Checkpoint",
    "CheckpointError",
    "CheckpointRestoreError",
    "Checkpointed",
    "ProjectionCheckpoints",
    "Restored",
    "decode_checkpoint",
    "decode_versioned",
    "encode_checkpoint",
]

CHECKPOINT_VERSION: Final = 1
DEFAULT_KEEP_CHECKPOINTS: Final = 3

_log = logging.getLogger(__name__)

M = TypeVar("M", bound=StateMachine)
S = TypeVar("S", bound=msgspec.Struct)


class CheckpointError(ValueError):
    """A checkpoint (or one projection's part of it) cannot be read or does not fit this code."""


class CheckpointRestoreError(RuntimeError):
    """A projection could not restore its part of a checkpoint that passed every generic check
    after others had restored theirs: start-up stops (``serve --full-replay`` rebuilds every
    projection from the journal instead)."""


class Checkpointed(Protocol):
    """A projection whose state can be saved and restored between two commands.

    ``checkpoint()`` returns the state after the last command applied, as compact bytes
    (msgspec msgpack of typed structs, integers for every quantity and price, a version
    field so that a later format can refuse an older one). ``restore_checkpoint(data)`` is
    called on a freshly built instance that has applied no event yet; afterwards the instance
    must behave exactly as the one that was checkpointed (same outputs and ``state_hash`` for
    every later event). It raises ``CheckpointError`` for bytes it cannot use and then leaves
    the instance as fresh as it was. Neither does I/O; connections, subscribers and caches that
    are rebuilt on demand are not state.
    """

    @property
    def checkpoint_name(self) -> str:
        """Unique per venue; names this projection's part of the checkpoint, *with the version
        of its format* (for example ``"marketdata/1"``): a new format gets a new name, so an
        older checkpoint simply lacks the part and is not used (no half-restored start-up)."""
        ...

    def checkpoint(self) -> bytes: ...

    def restore_checkpoint(self, data: bytes) -> None: ...


class Checkpoint(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The projections' states after command ``seq`` (whose last event is ``event_seq``)."""

    version: int
    seq: int
    event_seq: int
    parts: dict[str, bytes]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Checkpoint)


def encode_checkpoint(seq: int, event_seq: int, parts: dict[str, bytes]) -> bytes:
    """The body of a checkpoint file (parts in name order: the same states give equal bytes)."""
    ordered = {name: parts[name] for name in sorted(parts)}
    return _encoder.encode(Checkpoint(CHECKPOINT_VERSION, seq, event_seq, ordered))


def decode_checkpoint(data: bytes) -> Checkpoint:
    """Read a checkpoint body; ``CheckpointError`` if it is not one this code can use."""
    try:
        checkpoint = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise CheckpointError(f"not a checkpoint: {exc}") from None
    if checkpoint.version != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint version {checkpoint.version} is not supported")
    if checkpoint.seq < 0 or checkpoint.event_seq < 0:
        raise CheckpointError("checkpoint seq must not be negative")
    return checkpoint


class _ArrayVersion(msgspec.Struct, array_like=True):
    version: int  # the first element of an array-encoded part (the rest is not read)


class _MapVersion(msgspec.Struct):
    version: int  # the "version" key of a map-encoded part (the rest is not read)


def decode_versioned(data: bytes, cls: type[S], version: int, name: str) -> S:
    """Read a projection's part ``name`` as ``cls``, whose ``version`` field (the first, for an
    ``array_like`` struct) must be ``version``. The version is read first, so a part of
    another format is refused by its number before its layout is trusted. ``CheckpointError``
    if the bytes are not msgpack of that shape or were written by another version."""
    head: type[_ArrayVersion | _MapVersion] = (
        _ArrayVersion if cls.__struct_config__.array_like else _MapVersion
    )
    try:
        found = msgspec.msgpack.decode(data, type=head).version
    except msgspec.DecodeError as exc:
        raise CheckpointError(f"{name} checkpoint is unreadable: {exc}") from None
    if found != version:
        raise CheckpointError(f"{name} checkpoint version {found} is not {version}")
    try:
        return msgspec.msgpack.decode(data, type=cls)
    except msgspec.DecodeError as exc:
        raise CheckpointError(f"{name} checkpoint is damaged: {exc}") from None


@dataclass(frozen=True, slots=True)
class Restored(Generic[M]):
    """What ``ProjectionCheckpoints.restore`` started from."""

    engine: M
    """The state machine at ``seq`` (restored from the snapshot of the same seq)."""
    seq: int
    event_seq: int
    path: Path


class ProjectionCheckpoints:
    """A venue's checkpoint directory and the projections registered to it (see module
    docstring). ``take`` encodes on the caller's thread and writes on a worker; ``restore``
    picks and restores the newest usable checkpoint. Not thread-safe otherwise."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        snapshot_dir: str | os.PathLike[str],
        *,
        keep: int = DEFAULT_KEEP_CHECKPOINTS,
    ) -> None:
        self._store = SnapshotStore(directory, keep=keep)
        self._snapshot_dir = Path(snapshot_dir)
        self._states: dict[str, Checkpointed] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._pending: Future[Path] | None = None
        self.written = 0
        self.failures = 0
        self.notes: list[str] = []
        """Why checkpoints were skipped at restore (reported by ``serve``)."""

    @property
    def directory(self) -> Path:
        return self._store.directory

    @property
    def names(self) -> list[str]:
        return sorted(self._states)

    def register(self, state: Checkpointed) -> None:
        name = state.checkpoint_name
        if not name or name in self._states:
            raise ValueError(f"checkpoint name {name!r} is empty or registered twice")
        self._states[name] = state

    # --- taking -----------------------------------------------------------------------------

    def take(self, seq: int, ts: int, event_seq: int) -> bool:
        """Checkpoint every registered projection (now at command ``seq``) and write it in the
        background, after the previous one (as engine snapshots: with one every N commands
        it is long done). A failed write is logged and counted, never raised: the journal
        stays the truth and the next checkpoint tries again."""
        if not self._states:
            return False
        if self._pending is not None:
            self._pending.exception()  # waits
        self._collect()
        parts = {name: state.checkpoint() for name, state in self._states.items()}
        body = encode_checkpoint(seq, event_seq, parts)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoints")
        self._pending = self._executor.submit(self._store.write, seq, ts, body)
        return True

    def _collect(self) -> None:
        pending = self._pending
        if pending is None or not pending.done():
            return
        self._pending = None
        error = pending.exception()
        if error is None:
            self.written += 1
            _log.info("projection checkpoint written to %s", pending.result())
        else:
            self.failures += 1
            _log.error("writing a projection checkpoint failed: %r", error)

    def close(self) -> None:
        """Wait for the checkpoint being written; stop the worker."""
        if self._pending is not None:
            self._pending.exception()
            self._collect()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # --- restoring --------------------------------------------------------------------------

    def restore(
        self, machine_type: StateMachineType[M], *, horizon_event_seq: int | None = None
    ) -> Restored[M] | None:
        """Restore every registered projection and a state machine from the newest checkpoint
        that has a part for each, whose ``event_seq`` is at most ``horizon_event_seq`` (None:
        any) and whose engine snapshot of the same seq is intact; None (projections untouched)
        when there is none. Why newer checkpoints were passed over is added to ``notes``.
        Raises ``CheckpointRestoreError`` if a projection refuses its part after another one
        restored its own (the projections are no longer fresh)."""
        if not self._states:
            return None
        for seq, path in reversed(self._store.paths()):
            found = self._usable(seq, path, machine_type, horizon_event_seq)
            if found is None:
                continue
            checkpoint, engine = found
            restored: list[str] = []
            for name, state in self._states.items():
                try:
                    state.restore_checkpoint(checkpoint.parts[name])
                except Exception as exc:
                    if not isinstance(exc, CheckpointError):
                        # a defect, not refused bytes: the projection may be half restored
                        raise CheckpointRestoreError(
                            f"{path}: projection {name!r} failed restoring its part ({exc!r}); "
                            "start with a full replay"
                        ) from exc
                    if restored:
                        raise CheckpointRestoreError(
                            f"{path}: projection {name!r} cannot restore its part ({exc}) after "
                            f"{', '.join(restored)} restored theirs; start with a full replay"
                        ) from exc
                    self.notes.append(f"{path.name}: {name}: {exc}")
                    break
                restored.append(name)
            else:
                return Restored(engine, checkpoint.seq, checkpoint.event_seq, path)
        return None

    def _usable(
        self,
        seq: int,
        path: Path,
        machine_type: StateMachineType[M],
        horizon_event_seq: int | None,
    ) -> tuple[Checkpoint, M] | None:
        try:
            checkpoint = decode_checkpoint(read_snapshot(path).data)
        except (SnapshotDamagedError, CheckpointError, OSError) as exc:
            self.notes.append(f"{path.name}: {exc}")
            return None
        if checkpoint.seq != seq:
            self.notes.append(f"{path.name}: holds seq {checkpoint.seq}")
            return None
        missing = [name for name in self._states if name not in checkpoint.parts]
        if missing:
            self.notes.append(f"{path.name}: no part for {', '.join(sorted(missing))}")
            return None
        if horizon_event_seq is not None and checkpoint.event_seq > horizon_event_seq:
            self.notes.append(
                f"{path.name}: event seq {checkpoint.event_seq} is past a consumer's mark "
                f"{horizon_event_seq}"
            )
            return None
        try:
            snapshot = read_snapshot(self._snapshot_dir / snapshot_name(seq))
            engine = machine_type.restore(snapshot.data)
        except (SnapshotDamagedError, OSError, ValueError, KeyError, TypeError) as exc:
            self.notes.append(f"{path.name}: engine snapshot of seq {seq}: {exc}")
            return None
        if engine.last_seq != seq:
            self.notes.append(f"{path.name}: engine snapshot restores to seq {engine.last_seq}")
            return None
        return checkpoint, engine
