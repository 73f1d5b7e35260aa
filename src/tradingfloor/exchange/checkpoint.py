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

from typing import Final, Protocol

import msgspec

__all__ = [
    "CHECKPOINT_VERSION",
    "Checkpoint",
    "CheckpointError",
    "Checkpointed",
    "decode_checkpoint",
    "encode_checkpoint",
]

CHECKPOINT_VERSION: Final = 1


class CheckpointError(ValueError):
    """A checkpoint (or one projection's part of it) cannot be read or does not fit this code."""


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
        """Unique per venue; names this projection's part of the checkpoint."""
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
