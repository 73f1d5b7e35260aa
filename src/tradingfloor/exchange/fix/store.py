"""Durable store of one FIX session: sequence numbers, sent messages and received messages.

Lets the gateway answer a ResendRequest after a restart and continue the sequence numbers, and
an administrator see what an authenticated session sent, when and from which address.

Directory layout (integers little-endian):

``seqnums`` -- 48 bytes, replaced atomically (write ``seqnums.tmp``, rename)::

    magic "TFFIXSEQ" | version u32 | next_sender u64 | next_target u64 | creation_ns i64 |
    generation u64 | crc32 u32 of the 44 bytes before it

``messages-{generation:08d}.log`` -- append-only, one record per sent or received message::

    length u32 (of the payload) | crc32 u32 (of the payload) | payload
    sent:     seq u64 | raw FIX bytes
    received: (seq | 2**63) u64 | received_ns i64 | port u16 | address length u8 | address |
              the message's fields from 35 on, as received (without 8, 9, 10)

A sent record with no raw bytes marks a seq num used by a message that is never resent
(session messages, market data): a resend gap-fills it. Logging it is how the sender seq num
survives a crash without rewriting the seqnums file on every heartbeat. A received record's
seq is the message's MsgSeqNum (0 when it is not an integer below 2**63); received records
are in arrival order and play no part in sequencing. ``reset()`` moves the log of the ending
generation to ``history/`` (kept for audit) instead of deleting it.

``targets.log`` -- append-only, one 16-byte record per change of the next target seq num::

    next_target u64 | generation u32 | crc32 u32 of the 12 bytes before it

``epoch`` -- the venue identity the sequence numbers belong to, one line, replaced atomically::

    <venue id, 16 hex digits> <epoch> pending|given

Written when the store first serves a venue with an identity, and by ``begin_epoch`` when the
operator starts a new epoch: the store is then reset with seq num 1 reserved for the Logon
that tells the member (141=Y), and the notice stays ``pending`` until that Logon went out.

Renaming a file costs a forced writeback on ext4 (about 0.3 ms), too much once per inbound
message; appending 16 bytes does not. ``sync()`` folds this file into ``seqnums`` (durably)
and truncates it once it exceeds ``TARGETS_COMPACT_BYTES``.

Durability: every call writes through to the OS (``os.write`` without a user-space buffer),
so a crash of the process loses nothing; ``sync()`` fsyncs what was written since the last
sync, and the gateway calls it once per event-loop batch, before it writes the corresponding
bytes to any socket. On open, a torn last record (cut short by a power loss) is dropped; any
other damage raises ``StoreCorruptError``. The next sender seq num is the larger of the
seqnums file's and the last logged seq + 1 (every sent message is logged before it is sent);
the next target seq num is the last ``targets.log`` record of the current generation, else the
seqnums file's.

A failed write or fsync (a full disk, an I/O error) is fail-stop: the store calls its
``on_failure`` hook with the error (the acceptor passes it to the venue, which stops matching),
re-raises it, and refuses every later write, so that nothing is appended after a partial record.
"""

from __future__ import annotations

import fcntl
import os
import struct
import time
import zlib
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from tradingfloor.exchange._durable import atomic_write, ensure_dir, fsync_dir, write_all
from tradingfloor.exchange.identity import format_venue_id, parse_venue_id

__all__ = [
    "EPOCH_FILE",
    "MAX_STORED_MESSAGE_BYTES",
    "TARGETS_COMPACT_BYTES",
    "FailureHook",
    "ReceivedMessage",
    "SessionStore",
    "StoreCorruptError",
    "StoreEpoch",
    "StoreFailedError",
    "StoreLockedError",
    "read_received",
    "read_store_epoch",
]

MAX_STORED_MESSAGE_BYTES: Final = 1 << 20
_SEQ_MAGIC: Final = b"TFFIXSEQ"
_SEQ_VERSION: Final = 1
_SEQ_BODY: Final = struct.Struct("<8sIQQqQ")
_CRC: Final = struct.Struct("<I")
_REC_HEADER: Final = struct.Struct("<II")  # length, crc32
_REC_SEQ: Final = struct.Struct("<Q")
_RECEIVED: Final = 1 << 63  # flag in a record's seq field: a received message
_RECEIVED_HEAD: Final = struct.Struct("<QqHB")  # seq | flag, received_ns, port, address length
_HISTORY: Final = "history"
_SEQNUMS: Final = "seqnums"
_TARGETS: Final = "targets.log"
_TARGET_REC: Final = struct.Struct("<QII")  # next_target, generation, crc32
TARGETS_COMPACT_BYTES: Final = 64 * 1024
"""``sync()`` folds ``targets.log`` into ``seqnums`` once it is larger than this."""
_LOCK: Final = "LOCK"
EPOCH_FILE: Final = "epoch"
_NOTICE: Final = {"pending": True, "given": False}
_ABSENT: Final = -1


class StoreCorruptError(RuntimeError):
    """The store holds damage other than a torn last record; the message says where."""


class StoreLockedError(RuntimeError):
    """The store directory is open elsewhere (another acceptor or process)."""


class StoreFailedError(RuntimeError):
    """An earlier write or fsync of this store failed; it takes no more writes. Restart."""


FailureHook = Callable[[BaseException], None]
"""Called with the ``OSError`` of a failed write or fsync, before it is re-raised."""


@dataclass(frozen=True, slots=True)
class StoreEpoch:
    """The venue identity a store's sequence numbers belong to (see the module docstring)."""

    venue_id: int
    epoch: int
    notice_pending: bool


def read_store_epoch(directory: Path) -> StoreEpoch | None:
    """The ``epoch`` file of the store in ``directory`` (None when absent); no lock needed.

    A damaged file raises ``StoreCorruptError``.
    """
    path = directory / EPOCH_FILE
    try:
        text = path.read_bytes()[:256].decode("ascii", "replace")
    except FileNotFoundError:
        return None
    parts = text.split()
    try:
        if len(parts) != 3 or not text.endswith("\n") or parts[2] not in _NOTICE:
            raise ValueError("expected '<venue id> <epoch> pending|given'")
        epoch = int(parts[1])
        if epoch < 1 or not parts[1].isdigit():
            raise ValueError(f"bad epoch {parts[1]!r}")
        return StoreEpoch(parse_venue_id(parts[0]), epoch, _NOTICE[parts[2]])
    except ValueError as exc:
        raise StoreCorruptError(f"{path}: {exc}") from None


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One message received from the member in an authenticated session, as stored."""

    generation: int  # the store generation (seq nums start again at each reset)
    seq: int  # its MsgSeqNum (0 when that was not a usable integer)
    received_ns: int
    address: str  # the peer's source address and port
    port: int
    fields: bytes  # the message from 35 on, as received, SOH-separated (without 8, 9, 10)


def _only_zeros(f: BinaryIO, offset: int, size: int) -> bool:
    """Whether bytes ``offset..size`` of ``f`` are all zero (space allocated, never written)."""
    f.seek(offset)
    while chunk := f.read(1 << 16):
        if chunk.count(0) != len(chunk):
            return False
    return True


def _log_name(generation: int) -> str:
    return f"messages-{generation:08d}.log"


class SessionStore:
    """Sequence numbers and sent messages of one FIX session, persisted in one directory."""

    def __init__(
        self, directory: Path, lock_fd: int, on_failure: FailureHook | None = None
    ) -> None:
        """Use ``SessionStore.open``."""
        self._dir = directory
        self._lock_fd = lock_fd
        self._on_failure = on_failure
        self._failure: OSError | None = None
        self._log_fd = -1
        self._log_size = 0
        self._targets_fd = -1
        self._targets_size = 0
        self._targets_dirty = False
        self._generation = 0
        self._next_sender = 1
        self._next_target = 1
        self._creation_ns = 0
        # _offsets[seq - _base] = file offset of that seq's record, or _ABSENT (compact index)
        self._base = 1
        self._offsets = array("q")
        self._log_dirty = False
        self._seqnums_dirty = False
        self._closed = False
        self._epoch: StoreEpoch | None = None

    # --- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        now_ns: int | None = None,
        on_failure: FailureHook | None = None,
    ) -> SessionStore:
        """Open (creating when new, with creation time ``now_ns``) the store in ``directory``.

        ``on_failure`` is called when a later write or fsync fails (see the module docstring).
        """
        ensure_dir(directory)
        lock_fd = os.open(directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise StoreLockedError(f"FIX session store {directory} is already open") from None
        store = cls(directory, lock_fd, on_failure)
        try:
            store._load(time.time_ns() if now_ns is None else now_ns)
        except BaseException:
            store.close()
            raise
        return store

    def _load(self, now_ns: int) -> None:
        self._epoch = read_store_epoch(self._dir)
        path = self._dir / _SEQNUMS
        if path.exists():
            self._read_seqnums(path.read_bytes())
        else:
            self._creation_ns = now_ns
            self._write_seqnums()
            self.sync()
        current = _log_name(self._generation)
        for leftover in self._dir.iterdir():
            # a log of another generation is the old (or new) log of an interrupted reset
            if leftover.name.startswith("messages-") and leftover.name != current:
                if leftover.name < current:
                    self._archive(leftover)
                else:
                    leftover.unlink()
            elif leftover.name.endswith(".tmp"):
                leftover.unlink()
        log = self._dir / _log_name(self._generation)
        self._log_fd = os.open(log, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        targets = self._dir / _TARGETS
        self._targets_fd = os.open(targets, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self._scan_targets(targets)
        self._scan_log(log)

    def _scan_targets(self, path: Path) -> None:
        data = path.read_bytes()
        size = _TARGET_REC.size
        offset = 0
        while offset + size <= len(data):
            target, generation, crc = _TARGET_REC.unpack_from(data, offset)
            if zlib.crc32(data[offset : offset + size - 4]) != crc or target < 1:
                if offset + size >= len(data) or not any(data[offset:]):
                    break  # a torn tail
                raise StoreCorruptError(f"{path}: bad record at offset {offset}")
            if generation == self._generation & 0xFFFFFFFF:
                self._next_target = target
            offset += size
        if offset < len(data):
            os.ftruncate(self._targets_fd, offset)
            os.fsync(self._targets_fd)
        self._targets_size = offset

    def _read_seqnums(self, data: bytes) -> None:
        size = _SEQ_BODY.size + _CRC.size
        if (
            len(data) != size
            or zlib.crc32(data[: _SEQ_BODY.size]) != _CRC.unpack(data[_SEQ_BODY.size :])[0]
        ):
            raise StoreCorruptError(f"{self._dir / _SEQNUMS}: bad size or checksum")
        magic, version, sender, target, creation, generation = _SEQ_BODY.unpack(
            data[: _SEQ_BODY.size]
        )
        if magic != _SEQ_MAGIC or version != _SEQ_VERSION or sender < 1 or target < 1:
            raise StoreCorruptError(f"{self._dir / _SEQNUMS}: bad header or values")
        self._next_sender = sender
        self._next_target = target
        self._creation_ns = creation
        self._generation = generation

    def _scan_log(self, path: Path) -> None:
        size = os.fstat(self._log_fd).st_size
        offset = 0
        last_seq = 0
        with path.open("rb") as f:
            while offset < size:
                header = f.read(_REC_HEADER.size)
                if len(header) < _REC_HEADER.size:
                    break  # torn header
                length, crc = _REC_HEADER.unpack(header)
                end = offset + _REC_HEADER.size + length
                valid_length = _REC_SEQ.size <= length <= _REC_SEQ.size + MAX_STORED_MESSAGE_BYTES
                payload = f.read(length) if valid_length else b""
                if not valid_length or zlib.crc32(payload) != crc:
                    if end >= size or _only_zeros(f, offset, size):
                        break  # the last record was not completely written: a torn tail
                    raise StoreCorruptError(f"{path}: bad record at offset {offset}")
                (seq,) = _REC_SEQ.unpack_from(payload)
                if seq & _RECEIVED:
                    offset = end
                    continue
                if seq <= last_seq:
                    raise StoreCorruptError(f"{path}: seq {seq} after {last_seq} at {offset}")
                self._index(seq, offset if length > _REC_SEQ.size else _ABSENT)
                last_seq = seq
                offset = end
        if offset < size:
            os.ftruncate(self._log_fd, offset)
            os.fsync(self._log_fd)
        self._log_size = offset
        if last_seq + 1 > self._next_sender:
            self._next_sender = last_seq + 1
            self._write_seqnums()
            self.sync()

    def _index(self, seq: int, offset: int) -> None:
        if not self._offsets:
            self._base = seq
        gap = seq - self._base - len(self._offsets)
        if gap > 0:
            self._offsets.extend([_ABSENT] * gap)
        self._offsets.append(offset)

    # --- state -----------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def next_sender_seq(self) -> int:
        """MsgSeqNum of the next message we send."""
        return self._next_sender

    @property
    def next_target_seq(self) -> int:
        """MsgSeqNum we expect on the next message from the peer."""
        return self._next_target

    @property
    def creation_ns(self) -> int:
        """When these sequence numbers started (store creation or the last reset)."""
        return self._creation_ns

    @property
    def venue_epoch(self) -> StoreEpoch | None:
        """The venue identity these sequence numbers belong to (None: not recorded yet)."""
        return self._epoch

    @property
    def epoch_notice_pending(self) -> bool:
        """Whether the member still has to be told (by a Logon with 141=Y) of a new epoch."""
        return self._epoch is not None and self._epoch.notice_pending

    @property
    def needs_sync(self) -> bool:
        """Whether something was written since the last ``sync()``."""
        return self._log_dirty or self._seqnums_dirty or self._targets_dirty

    # --- writing ---------------------------------------------------------------------------

    def save_sent(self, seq: int, raw: bytes) -> None:
        """Log message ``seq`` (the next sender seq num or later) and advance past it.

        With ``raw`` empty only the use of ``seq`` is logged (see ``skip_sent``).
        """
        self._check_open()
        if seq < self._next_sender:
            raise ValueError(f"seq {seq} already used (next sender seq is {self._next_sender})")
        if len(raw) > MAX_STORED_MESSAGE_BYTES:
            raise ValueError(f"message of {len(raw)} bytes is too large to store")
        payload = _REC_SEQ.pack(seq) + raw
        record = _REC_HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        with self._writing():
            write_all(self._log_fd, record)
        self._index(seq, self._log_size if raw else _ABSENT)
        self._log_size += len(record)
        self._log_dirty = True
        self._next_sender = seq + 1

    def save_received(
        self, fields: Sequence[tuple[int, str]], received_ns: int, peer: tuple[str, int]
    ) -> None:
        """Log a message received from the member (its fields in wire order, from 35 on).

        Appended to the same log as the sent messages: one more ``os.write``, fsynced with
        them by ``sync()``. Needs the member to be authenticated (the caller's job).
        """
        self._check_open()
        seq = 0
        for tag, value in fields:
            if tag == 34:
                if value.isascii() and value.isdigit() and len(value) < 19:
                    seq = int(value)
                break
        body = "".join([f"{tag}={value}\x01" for tag, value in fields]).encode("latin-1")
        address = peer[0].encode("utf-8")[:255]
        head = _RECEIVED_HEAD.pack(seq | _RECEIVED, received_ns, peer[1] & 0xFFFF, len(address))
        payload = head + address + body  # a frame is at most codec.MAX_MESSAGE_BYTES
        with self._writing():
            write_all(self._log_fd, _REC_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
        self._log_size += _REC_HEADER.size + len(payload)
        self._log_dirty = True

    def received(self) -> list[ReceivedMessage]:
        """Every stored received message, oldest generation first (see ``read_received``)."""
        self._check_open()
        return list(read_received(self._dir))

    def skip_sent(self, seq: int) -> None:
        """Log that ``seq`` was sent in a message that is never resent (gap-filled instead)."""
        self.save_sent(seq, b"")

    def set_next_target_seq(self, seq: int) -> None:
        """Record the next expected inbound seq num."""
        self._check_open()
        if seq != self._next_target:
            self._next_target = seq
            record = _TARGET_REC.pack(seq, self._generation & 0xFFFFFFFF, 0)[:-4]
            with self._writing():
                write_all(self._targets_fd, record + _CRC.pack(zlib.crc32(record)))
            self._targets_size += _TARGET_REC.size
            self._targets_dirty = True

    def reset(self, *, now_ns: int | None = None) -> None:
        """Start over (ResetSeqNumFlag or a new day): empty log, both seq nums 1."""
        self._check_open()
        with self._writing():
            self._reset(now_ns)

    def _reset(self, now_ns: int | None) -> None:
        old_log = self._dir / _log_name(self._generation)
        os.close(self._log_fd)
        self._log_fd = -1
        self._generation += 1
        new_log = self._dir / _log_name(self._generation)
        self._log_fd = os.open(new_log, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        self._log_size = 0
        self._offsets = array("q")
        self._base = 1
        self._next_sender = 1
        self._next_target = 1
        self._creation_ns = time.time_ns() if now_ns is None else now_ns
        self._write_seqnums()
        self.sync()
        if old_log.exists():
            self._archive(old_log)
        self._truncate_targets()

    def adopt_epoch(self, venue_id: int, epoch: int) -> None:
        """Record (durably) that the store serves this venue epoch, keeping its seq nums."""
        self._check_open()
        self._write_epoch(StoreEpoch(venue_id, epoch, notice_pending=False))

    def begin_epoch(self, venue_id: int, epoch: int, *, now_ns: int | None = None) -> None:
        """The venue started a new epoch: reset the seq nums, reserve seq num 1 for the Logon
        (141=Y) that tells the member, and mark the notice pending (all durably)."""
        self._check_open()
        self.reset(now_ns=now_ns)
        self.skip_sent(1)
        self.sync()
        self._write_epoch(StoreEpoch(venue_id, epoch, notice_pending=True))

    def epoch_notice_given(self) -> None:
        """The member got the new-epoch Logon: the notice is no longer pending."""
        self._check_open()
        if self._epoch is not None and self._epoch.notice_pending:
            self._write_epoch(StoreEpoch(self._epoch.venue_id, self._epoch.epoch, False))

    def _write_epoch(self, epoch: StoreEpoch) -> None:
        state = "pending" if epoch.notice_pending else "given"
        line = f"{format_venue_id(epoch.venue_id)} {epoch.epoch} {state}\n"
        atomic_write(self._dir / EPOCH_FILE, line.encode("ascii"))
        self._epoch = epoch

    def _archive(self, log: Path) -> None:
        """Move the log of an ended generation to ``history/`` (its received messages stay)."""
        history = self._dir / _HISTORY
        ensure_dir(history)
        os.replace(log, history / log.name)
        fsync_dir(history)
        fsync_dir(self._dir)

    def _truncate_targets(self) -> None:
        """Empty targets.log; only once ``seqnums`` durably holds the next target seq num."""
        os.ftruncate(self._targets_fd, 0)
        os.fsync(self._targets_fd)
        self._targets_size = 0
        self._targets_dirty = False

    def _write_seqnums(self) -> None:
        body = _SEQ_BODY.pack(
            _SEQ_MAGIC,
            _SEQ_VERSION,
            self._next_sender,
            self._next_target,
            self._creation_ns,
            self._generation,
        )
        data = body + _CRC.pack(zlib.crc32(body))
        tmp = self._dir / (_SEQNUMS + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, self._dir / _SEQNUMS)
        self._seqnums_dirty = True

    def sync(self) -> None:
        """fsync everything written since the last sync (log, seqnums file, directory)."""
        self._check_open()
        with self._writing():
            self._sync()

    def _sync(self) -> None:
        if self._log_dirty:
            os.fsync(self._log_fd)
            self._log_dirty = False
        if self._targets_dirty:
            os.fsync(self._targets_fd)
            self._targets_dirty = False
        compact = self._targets_size > TARGETS_COMPACT_BYTES
        if compact:
            self._write_seqnums()
        if self._seqnums_dirty:
            fd = os.open(self._dir / _SEQNUMS, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            fsync_dir(self._dir)
            self._seqnums_dirty = False
        if compact:
            self._truncate_targets()

    # --- reading ---------------------------------------------------------------------------

    def get_range(self, begin: int, end: int) -> list[tuple[int, bytes]]:
        """Stored messages with ``begin <= seq <= end`` (``end`` 0: no upper bound), in order.

        Seq nums that were sent but not stored (session messages) are simply absent.
        """
        self._check_open()
        if end == 0:
            end = self._next_sender - 1
        lo = max(begin, self._base) - self._base
        hi = min(end, self._base + len(self._offsets) - 1) - self._base
        out: list[tuple[int, bytes]] = []
        for i in range(lo, hi + 1):
            offset = self._offsets[i]
            if offset == _ABSENT:
                continue
            length, crc = _REC_HEADER.unpack(os.pread(self._log_fd, _REC_HEADER.size, offset))
            payload = os.pread(self._log_fd, length, offset + _REC_HEADER.size)
            if len(payload) != length or zlib.crc32(payload) != crc:
                raise StoreCorruptError(f"{self._dir}: record at offset {offset} changed on disk")
            out.append((self._base + i, payload[_REC_SEQ.size :]))
        return out

    def stored_seqs(self) -> list[int]:
        """Seq nums of every stored message (for tests and tools)."""
        return [self._base + i for i, off in enumerate(self._offsets) if off != _ABSENT]

    # --- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Sync (unless a write failed) and release the directory; closing twice is harmless."""
        if self._closed:
            return
        try:
            if self._log_fd >= 0 and self._failure is None:
                self.sync()
        finally:
            for fd in (self._log_fd, self._targets_fd):
                if fd >= 0:
                    os.close(fd)
            self._log_fd = self._targets_fd = -1
            self._closed = True
            os.close(self._lock_fd)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def failure(self) -> OSError | None:
        """The write or fsync error that stopped this store, if one did."""
        return self._failure

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"FIX session store {self._dir} is closed")
        if self._failure is not None:
            raise StoreFailedError(
                f"FIX session store {self._dir} failed: {self._failure}"
            ) from self._failure

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Fail-stop around a write: remember the error, tell ``on_failure``, re-raise."""
        try:
            yield
        except OSError as exc:
            self._failure = exc
            if self._on_failure is not None:
                self._on_failure(exc)
            raise


def _received_records(path: Path, generation: int) -> Iterator[ReceivedMessage]:
    data = path.read_bytes()
    offset = 0
    while offset + _REC_HEADER.size <= len(data):
        length, crc = _REC_HEADER.unpack_from(data, offset)
        start = offset + _REC_HEADER.size
        payload = data[start : start + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            if start + length >= len(data):
                return  # a torn tail (or a record being written right now)
            raise StoreCorruptError(f"{path}: bad record at offset {offset}")
        offset = start + length
        if len(payload) < _RECEIVED_HEAD.size:
            continue
        seq, received_ns, port, address_len = _RECEIVED_HEAD.unpack_from(payload)
        if not seq & _RECEIVED:
            continue
        at = _RECEIVED_HEAD.size
        address = payload[at : at + address_len].decode("utf-8", "replace")
        fields = payload[at + address_len :]
        yield ReceivedMessage(generation, seq & ~_RECEIVED, received_ns, address, port, fields)


def read_received(directory: Path) -> Iterator[ReceivedMessage]:
    """The received messages stored in a session directory, oldest generation first.

    Reads the files without taking the store's lock, so it works while the venue runs (a
    record being written at that moment is left out). Ended generations are under
    ``history/``.
    """
    logs: list[tuple[int, Path]] = []
    for folder in (directory / _HISTORY, directory):
        if folder.is_dir():
            for path in folder.glob("messages-*.log"):
                stem = path.name[len("messages-") : -len(".log")]
                if stem.isdigit():
                    logs.append((int(stem), path))
    for generation, path in sorted(logs):
        yield from _received_records(path, generation)
