"""The venue's durable identity and epoch, and the check of every consumer's mark against it.

A journal is created with an identity: a random venue id (63 bits, so that it fits every
store's signed 64-bit integer) and epoch 1, kept in ``IDENTITY_FILE`` inside the journal
directory, so that the identity travels with the journal it names. Every durable consumer of
the venue's events (the FIX gateway's mark, the broker's database) records the venue id, the
epoch and the seq of the last engine event it applied. At start-up ``check_marks`` compares
them with the journal: a mark of another venue id or epoch, or one ahead of the last event the
journal reproduces (the engine's event seq after recovery), means
the journal was lost, truncated or replaced, and the venue must not start as if nothing
happened (consumers would suppress the new history's events as seen already).

An operator recovers by starting a new epoch (``start_new_epoch``): the epoch number grows, the
action is recorded in the file (who, when, from which epoch to which, at which journal and event
seq, and which marks it overrode), and every consumer reconciles and adopts the new epoch.

The file is JSON, written atomically (temporary file, fsync, rename, directory fsync) with a
CRC-32 over its body; a file that does not decode or check is ``IdentityCorruptError``, never
silently replaced by a new identity. This module does file I/O only; the engine never sees it.
"""

from __future__ import annotations

import secrets
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from tradingfloor.exchange._durable import atomic_write

__all__ = [
    "IDENTITY_FILE",
    "IDENTITY_FORMAT",
    "IDENTITY_VERSION",
    "MAX_VENUE_ID",
    "ConsumerMark",
    "EpochMismatchError",
    "EpochRecord",
    "IdentityCorruptError",
    "IdentityError",
    "VenueIdentity",
    "check_marks",
    "create_identity",
    "describe_problem",
    "format_venue_id",
    "load_or_create_identity",
    "mismatch",
    "parse_venue_id",
    "read_identity",
    "start_new_epoch",
]

IDENTITY_FILE: Final = "venue-identity.json"
"""Name of the identity file in the journal directory."""
IDENTITY_FORMAT: Final = "tradingfloor venue identity"
IDENTITY_VERSION: Final = 1
MAX_VENUE_ID: Final = (1 << 63) - 1
"""Venue ids are 1..MAX_VENUE_ID: a signed 64-bit column (SQLite, PostgreSQL) holds them."""
MAX_IDENTITY_BYTES: Final = 1 << 20
"""An identity file larger than this is damaged (a million epochs would not fill it)."""


class IdentityError(RuntimeError):
    """The venue identity cannot be used as asked."""


class IdentityCorruptError(IdentityError):
    """The identity file exists but is damaged; the message names the file and the problem."""


class EpochMismatchError(IdentityError):
    """A consumer's mark does not fit the journal: lost, truncated or foreign journal.

    ``problems`` holds one line per consumer; the message also says how to recover.
    """

    def __init__(
        self, identity: VenueIdentity, last_event_seq: int, problems: Sequence[str]
    ) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"the journal does not fit what its consumers recorded (journal: venue "
            f"{format_venue_id(identity.venue_id)} epoch {identity.epoch}, last event seq "
            f"{last_event_seq}):"
            f"\n{lines}\n"
            "The journal was lost, truncated or replaced. Restore it from a backup, or start a "
            "new epoch with `tradingfloor serve --new-epoch` (the broker cancels the orders it "
            "believes open, FIX sessions reset their sequence numbers; see docs/journal.md)."
        )
        self.identity = identity
        self.last_event_seq = last_event_seq
        self.problems = tuple(problems)


class EpochRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One epoch's start: when, by whom, at which journal seq, replacing what."""

    epoch: int
    start_event_seq: int
    """The venue's last event seq when the epoch started; its consumers' marks start here."""
    start_command_seq: int
    """The journal's last command seq when the epoch started."""
    started_ns: int
    actor: str
    """Who started it: the operator's name, or what created the identity."""
    reason: str
    previous_epoch: int | None = None
    """The identity's epoch before this one (None for the first)."""
    overridden: list[str] = msgspec.field(default_factory=list)
    """The consumer marks that did not fit and were reconciled by this epoch's start."""


class _Body(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: str
    version: int
    venue_id: str
    epoch: int
    epochs: list[EpochRecord]


class _Envelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    body: msgspec.Raw
    crc32: int


@dataclass(frozen=True, slots=True)
class VenueIdentity:
    """Who the venue is (``venue_id``), which epoch it is in, and the history of epochs."""

    venue_id: int
    epoch: int
    epochs: tuple[EpochRecord, ...]

    @property
    def current(self) -> EpochRecord:
        return self.epochs[-1]


@dataclass(frozen=True, slots=True)
class ConsumerMark:
    """What a durable consumer recorded: the venue and epoch it follows and its last seq.

    ``venue_id`` and ``epoch`` are None for a mark written before identities existed (or a new
    consumer): such a mark adopts the journal's identity when its seq is not ahead.
    """

    consumer: str
    venue_id: int | None
    epoch: int | None
    seq: int

    def describe(self) -> str:
        if self.venue_id is None:
            return f"{self.consumer}: seq {self.seq} (no venue identity recorded)"
        return (
            f"{self.consumer}: venue {format_venue_id(self.venue_id)} epoch {self.epoch}, "
            f"seq {self.seq}"
        )


def format_venue_id(venue_id: int) -> str:
    """The id as 16 hex digits (how files and messages show it)."""
    return f"{venue_id:016x}"


def parse_venue_id(text: str) -> int:
    """Inverse of ``format_venue_id``; ValueError for anything else."""
    if len(text) != 16 or not all(c in "0123456789abcdef" for c in text):
        raise ValueError(f"venue id must be 16 lower-case hex digits, got {text!r}")
    value = int(text, 16)
    if not 1 <= value <= MAX_VENUE_ID:
        raise ValueError(f"venue id {text} is out of range")
    return value


# --- the file ---------------------------------------------------------------------------------

_ENCODER = msgspec.json.Encoder()
_ENVELOPE = msgspec.json.Decoder(_Envelope)
_BODY = msgspec.json.Decoder(_Body)


def _encode(identity: VenueIdentity) -> bytes:
    body = _ENCODER.encode(
        _Body(
            format=IDENTITY_FORMAT,
            version=IDENTITY_VERSION,
            venue_id=format_venue_id(identity.venue_id),
            epoch=identity.epoch,
            epochs=list(identity.epochs),
        )
    )
    return _ENCODER.encode(_Envelope(body=msgspec.Raw(body), crc32=zlib.crc32(body))) + b"\n"


def _decode(path: Path, data: bytes) -> VenueIdentity:
    def bad(problem: str) -> IdentityCorruptError:
        return IdentityCorruptError(f"{path}: damaged venue identity file: {problem}")

    try:
        envelope = _ENVELOPE.decode(data)
        raw = bytes(envelope.body)
        if zlib.crc32(raw) != envelope.crc32:
            raise bad("checksum mismatch")
        body = _BODY.decode(raw)
        venue_id = parse_venue_id(body.venue_id)
    except msgspec.DecodeError as exc:
        raise bad(str(exc)) from None
    except ValueError as exc:
        raise bad(str(exc)) from None
    if body.format != IDENTITY_FORMAT or body.version != IDENTITY_VERSION:
        raise bad(f"unknown format {body.format!r} version {body.version}")
    epochs = tuple(body.epochs)
    numbers = [e.epoch for e in epochs]
    if not epochs or numbers[-1] != body.epoch or numbers != sorted(set(numbers)):
        raise bad("the epoch history does not end at the current epoch")
    if numbers[0] < 1 or any(min(e.start_event_seq, e.start_command_seq) < 0 for e in epochs):
        raise bad("epochs and seqs must not be negative")
    return VenueIdentity(venue_id=venue_id, epoch=body.epoch, epochs=epochs)


def read_identity(journal_dir: Path) -> VenueIdentity | None:
    """The identity kept in ``journal_dir``, or None when there is none yet.

    A damaged file raises ``IdentityCorruptError``: an identity is never silently replaced.
    """
    path = journal_dir / IDENTITY_FILE
    try:
        with path.open("rb") as f:
            data = f.read(MAX_IDENTITY_BYTES + 1)
    except FileNotFoundError:
        return None
    if len(data) > MAX_IDENTITY_BYTES:
        raise IdentityCorruptError(f"{path}: damaged venue identity file: too large")
    return _decode(path, data)


def _write(journal_dir: Path, identity: VenueIdentity, *, replace: bool) -> None:
    atomic_write(journal_dir / IDENTITY_FILE, _encode(identity), replace=replace)


def create_identity(journal_dir: Path, *, now_ns: int, actor: str, reason: str) -> VenueIdentity:
    """A new random venue id in epoch 1 (which covers the journal from its beginning), written
    durably; an existing file is an error."""
    venue_id = 0
    while venue_id == 0:
        venue_id = secrets.randbits(63)
    first = EpochRecord(
        epoch=1,
        start_event_seq=0,
        start_command_seq=0,
        started_ns=now_ns,
        actor=actor,
        reason=reason,
    )
    identity = VenueIdentity(venue_id=venue_id, epoch=1, epochs=(first,))
    try:
        _write(journal_dir, identity, replace=False)
    except FileExistsError:
        raise IdentityError(f"{journal_dir / IDENTITY_FILE} exists already") from None
    return identity


def load_or_create_identity(journal_dir: Path, *, last_seq: int, now_ns: int) -> VenueIdentity:
    """The journal's identity; one is created for a new journal, or for a journal written
    before identities existed (its first epoch then covers the existing history)."""
    identity = read_identity(journal_dir)
    if identity is not None:
        return identity
    if last_seq == 0:
        reason = "created with the journal"
    else:
        reason = f"created for an existing journal of {last_seq} commands (upgrade)"
    return create_identity(journal_dir, now_ns=now_ns, actor="tradingfloor", reason=reason)


def start_new_epoch(
    journal_dir: Path,
    identity: VenueIdentity,
    *,
    last_event_seq: int,
    last_command_seq: int,
    now_ns: int,
    actor: str,
    overridden: Iterable[ConsumerMark] = (),
    reason: str = "operator started a new epoch",
) -> VenueIdentity:
    """Record the operator's new epoch (durably) and return the new identity.

    The number is above the current epoch and above every epoch a consumer recorded, so no
    consumer mark can ever match it by accident.
    """
    if not actor.strip():
        raise IdentityError("a new epoch needs the operator's name (actor)")
    marks = list(overridden)
    highest = max([identity.epoch, *(m.epoch for m in marks if m.epoch is not None)])
    record = EpochRecord(
        epoch=highest + 1,
        start_event_seq=last_event_seq,
        start_command_seq=last_command_seq,
        started_ns=now_ns,
        actor=actor,
        reason=reason,
        previous_epoch=identity.epoch,
        overridden=[m.describe() for m in marks],
    )
    new = VenueIdentity(
        venue_id=identity.venue_id, epoch=record.epoch, epochs=(*identity.epochs, record)
    )
    _write(journal_dir, new, replace=True)
    return new


# --- the check ----------------------------------------------------------------------------------


def check_marks(
    identity: VenueIdentity, last_event_seq: int, marks: Iterable[ConsumerMark]
) -> list[ConsumerMark]:
    """The marks that do not fit the journal (empty: every consumer may go on).

    A mark fits when it names this venue and epoch (or names none: a consumer from before
    identities, or a new one) and its seq is not beyond ``last_event_seq``, the seq of the last
    event the journal reproduces.
    """
    bad = []
    for mark in marks:
        foreign = mark.venue_id is not None and (
            mark.venue_id != identity.venue_id or mark.epoch != identity.epoch
        )
        if foreign or mark.seq > last_event_seq:
            bad.append(mark)
    return bad


def describe_problem(identity: VenueIdentity, last_event_seq: int, mark: ConsumerMark) -> str:
    """One line saying why ``mark`` does not fit (for ``EpochMismatchError``)."""
    if mark.venue_id is not None and mark.venue_id != identity.venue_id:
        why = "another venue's journal"
    elif mark.venue_id is not None and mark.epoch != identity.epoch:
        why = "another epoch"
    else:
        why = f"ahead of the journal (its last event is seq {last_event_seq})"
    return f"{mark.describe()}: {why}"


def mismatch(
    identity: VenueIdentity, last_event_seq: int, bad: Sequence[ConsumerMark]
) -> EpochMismatchError:
    """The error to raise for the marks ``check_marks`` returned."""
    return EpochMismatchError(
        identity, last_event_seq, [describe_problem(identity, last_event_seq, m) for m in bad]
    )
