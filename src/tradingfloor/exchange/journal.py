"""The write-ahead journal of sequenced commands: append-only, checksummed, group-committed.

On-disk format (all integers little-endian; docs/journal.md is the full reference):

A journal directory holds segment files ``journal-{first_seq:020d}.log``. Each segment starts
with a 32-byte header::

    magic     8 bytes  b"TFJOURNL"
    version   u16      JOURNAL_VERSION (1)
    flags     u16      0
    first_seq u64      seq of the segment's first record (= the number in the file name)
    base_ts   i64      ts of the record before first_seq (0 for the first segment)
    crc       u32      zlib.crc32 of the 28 bytes above

followed by records, each::

    length    u32      payload length, 1..MAX_RECORD_BYTES
    crc       u32      zlib.crc32 of the payload
    payload   bytes    msgpack of JournalRecord as an array: [seq, ts, command]

Records are numbered without gaps (seq n+1 follows seq n, across segments too) and their ts
never decreases. ``Journal.append`` buffers; ``Journal.commit`` writes the buffer and fsyncs it,
and a caller acknowledges a command only after the commit that holds it has returned.

Reading stops at the first record that is not valid, at offset X of the last segment. The bytes
from X to the end of the file are a *torn write* (an interrupted, never acknowledged write, to be
truncated and reported) only when the write can be seen to be incomplete: fewer than 8 bytes
remain, or the record's length says more bytes than the file holds (and the bytes that are there
are not a complete record with a damaged length field), or the bytes from X -- or from a 512-byte
sector boundary inside the record -- to the end of the file are all zero (space the write
allocated whose data never reached the disk); and no complete, checksum-valid record starts
anywhere after X. Anything else is *corruption* of committed data: a complete record whose
checksum fails (wherever it is, the last record included), a bad record with data after it, a
bad record in an earlier segment, a checksum-valid record that does not decode, a gap in sequence
numbers, a timestamp going backwards, a damaged segment header. ``JournalCorruptError`` names the
segment, the offset and the seq expected there, and stops start-up; ``truncate_corrupt`` cuts the
journal there only when an operator names that exact place (``JournalCorruptError.location``).
"""

from __future__ import annotations

import gzip
import os
import re
import struct
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import msgspec

from tradingfloor.exchange._durable import (
    TMP_SUFFIX,
    DirectoryLock,
    DirectoryLockedError,
    atomic_write,
    ensure_dir,
    fsync_dir,
    write_all,
)
from tradingfloor.exchange.engine.commands import Command

__all__ = [
    "ARCHIVE_DIR",
    "ARCHIVE_SUFFIX",
    "DEFAULT_SEGMENT_BYTES",
    "FRAME_HEADER_SIZE",
    "JOURNAL_MAGIC",
    "JOURNAL_VERSION",
    "MAX_RECORD_BYTES",
    "SECTOR_BYTES",
    "SEGMENT_HEADER_SIZE",
    "DirectoryLockedError",
    "DroppedBytes",
    "Journal",
    "JournalCorruptError",
    "JournalError",
    "JournalReader",
    "JournalRecord",
    "TornTail",
    "decode_payload",
    "encode_record",
    "encode_segment_header",
    "live_segments",
    "repair_torn_tail",
    "segment_name",
    "truncate_corrupt",
]

JOURNAL_MAGIC = b"TFJOURNL"
JOURNAL_VERSION = 1
MAX_RECORD_BYTES = 1 << 20
"""Largest payload accepted; a length field above it is never a valid record."""
DEFAULT_SEGMENT_BYTES = 64 << 20
"""A segment is closed (at a commit boundary) once it has grown to at least this size."""

SECTOR_BYTES = 512
"""Granularity of a lost write: zeros from a sector boundary to the end of the file are a
torn write (allocated, never written), not a damaged record."""
DROPPED_DIR = "dropped"
"""Subdirectory of the journal directory that keeps the bytes ``truncate_corrupt`` cut off."""

_SEGMENT_HEADER = struct.Struct("<8sHHQq")
_SEGMENT_CRC = struct.Struct("<I")
SEGMENT_HEADER_SIZE = _SEGMENT_HEADER.size + _SEGMENT_CRC.size
_FRAME = struct.Struct("<II")
FRAME_HEADER_SIZE = _FRAME.size
_SEGMENT_RE = re.compile(r"journal-(\d{20})\.log")
ARCHIVE_DIR = "archive"
"""Subdirectory of the journal directory that holds gzip-compressed closed segments."""
ARCHIVE_SUFFIX = ".gz"
_ARCHIVED_RE = re.compile(r"journal-(\d{20})\.log\.gz")
_NO_FULL_DECODE = 1 << 64


class JournalRecord(msgspec.Struct, frozen=True, array_like=True):
    """One sequenced command: what the sequencer stamped and the engine will apply."""

    seq: int
    ts: int
    command: Command


class _RecordHead(msgspec.Struct, array_like=True):
    """The first two fields of a record; decodes a payload without building the command."""

    seq: int
    ts: int


class JournalError(Exception):
    """The journal cannot be used as asked (bad append, failed write, closed journal)."""


class JournalCorruptError(JournalError):
    """The journal is damaged somewhere other than a torn write; recovery must not continue.

    ``path`` and ``offset`` say where, ``seq`` is the seq the record there should carry (the
    first seq of the segment for a damaged header), and ``location`` (``SEGMENT:OFFSET``) is
    what an operator passes to ``truncate_corrupt`` to cut the journal there.
    """

    def __init__(self, path: Path, offset: int, reason: str, seq: int = 0) -> None:
        where = f"offset {offset}" + (f" (seq {seq})" if seq else "")
        super().__init__(f"{path}: corrupt journal at {where}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason
        self.seq = seq

    @property
    def location(self) -> str:
        """``SEGMENT_NAME:OFFSET``, the form ``truncate_corrupt`` and the CLI option accept."""
        return f"{self.path.name}:{self.offset}"


@dataclass(frozen=True, slots=True)
class TornTail:
    """An interrupted write at the end of the last segment: ``path`` is valid up to ``offset``."""

    path: Path
    offset: int
    dropped_bytes: int
    reason: str


@dataclass(frozen=True, slots=True)
class DroppedBytes:
    """A byte range removed from the journal at start-up: ``path`` bytes ``start..end``.

    ``torn`` says whether it was a torn write (never acknowledged) or committed data an
    operator chose to cut off (``truncate_corrupt``); ``saved_to`` keeps a copy of the latter.
    """

    path: Path
    start: int
    end: int
    reason: str
    torn: bool
    saved_to: Path | None = None

    def describe(self) -> str:
        """One line for start-up output and the log."""
        kind = "torn write (never acknowledged)" if self.torn else "CORRUPT committed data"
        saved = "" if self.saved_to is None else f", copy kept in {self.saved_to}"
        return (
            f"dropped {self.end - self.start} bytes ({kind}) at bytes {self.start}..{self.end} "
            f"of {self.path}: {self.reason}{saved}"
        )


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(JournalRecord)
_HEAD_DECODER = msgspec.msgpack.Decoder(_RecordHead)


def segment_name(first_seq: int) -> str:
    """File name of the segment whose first record has ``first_seq``."""
    return f"journal-{first_seq:020d}.log"


def encode_segment_header(first_seq: int, base_ts: int) -> bytes:
    """The 32-byte header that starts every segment file."""
    head = _SEGMENT_HEADER.pack(JOURNAL_MAGIC, JOURNAL_VERSION, 0, first_seq, base_ts)
    return head + _SEGMENT_CRC.pack(zlib.crc32(head))


def encode_record(record: JournalRecord) -> bytes:
    """The framed bytes of one record: length, CRC32 of the payload, payload."""
    payload = _ENCODER.encode(record)
    if len(payload) > MAX_RECORD_BYTES:
        raise JournalError(
            f"record seq {record.seq} is {len(payload)} bytes, over MAX_RECORD_BYTES"
        )
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def decode_payload(payload: bytes) -> JournalRecord:
    """Decode one record payload (without its frame)."""
    return _DECODER.decode(payload)


def repair_torn_tail(torn: TornTail) -> None:
    """Truncate the segment to its last valid record and make the truncation durable."""
    fd = os.open(torn.path, os.O_WRONLY)
    try:
        os.ftruncate(fd, torn.offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def truncate_corrupt(directory: str | os.PathLike[str], location: str) -> list[DroppedBytes]:
    """Cut the journal at ``location`` (``SEGMENT_NAME:OFFSET``): the operator's choice.

    Drops the bytes of that segment from OFFSET on (the whole segment when OFFSET is inside its
    header) and every later segment, after copying them to ``<directory>/dropped/``. Used only
    when an operator names the place a ``JournalCorruptError`` reported; returns what was cut.
    """
    path = Path(directory)
    name, sep, offset_text = location.rpartition(":")
    if not sep or _SEGMENT_RE.fullmatch(name) is None or not offset_text.isdigit():
        raise ValueError(
            f"expected SEGMENT_NAME:OFFSET (e.g. {segment_name(1)}:32), got {location!r}"
        )
    offset = int(offset_text)
    found = _segments(path)
    names = [p.name for _seq, p in found]
    if name not in names:
        raise ValueError(f"{path / name} is not a segment of the journal")
    if offset < SEGMENT_HEADER_SIZE:
        offset = 0
    saved_dir = path / DROPPED_DIR
    ensure_dir(saved_dir)
    dropped: list[DroppedBytes] = []
    for _seq, segment in found[names.index(name) :]:
        cut_here = segment.name == name
        start = offset if cut_here else 0
        data = segment.read_bytes()
        saved = saved_dir / f"{segment.name}.from-{start}"
        atomic_write(saved, data[start:])
        reason = "cut at the reported corruption" if cut_here else "a segment after the cut"
        dropped.append(DroppedBytes(segment, start, len(data), reason, torn=False, saved_to=saved))
        if start:
            repair_torn_tail(TornTail(segment, start, len(data) - start, reason))
        else:
            segment.unlink()
    fsync_dir(path)
    return dropped


# --------------------------------------------------------------------------------- reading


def _segments(directory: Path) -> list[tuple[int, Path]]:
    """The directory's segment files sorted by first seq; other files are ignored."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _SEGMENT_RE.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), path))
    found.sort()
    return found


def live_segments(directory: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """(first seq, path) of the uncompressed segment files, oldest first."""
    return _segments(Path(directory))


def _all_segments(directory: Path) -> list[tuple[int, Path]]:
    """Live segments and archived ones (``archive/*.log.gz``), by first seq; where a segment
    is in both (an archiving pass was interrupted), the live file counts."""
    live = dict(_segments(directory))
    archive = directory / ARCHIVE_DIR
    if archive.is_dir():
        for path in archive.iterdir():
            match = _ARCHIVED_RE.fullmatch(path.name)
            if match:
                live.setdefault(int(match.group(1)), path)
    return sorted(live.items())


def _segment_bytes(path: Path) -> bytes:
    """A segment's bytes, decompressed when it is an archived one."""
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(ARCHIVE_SUFFIX) else data


def _read_segment_header(path: Path, data: bytes, first_seq: int) -> int:
    """Check the header of a segment named for ``first_seq``; return its base_ts."""

    def corrupt(reason: str) -> JournalCorruptError:
        return JournalCorruptError(path, 0, reason, first_seq)

    if len(data) < SEGMENT_HEADER_SIZE:
        raise corrupt("segment header is incomplete")
    head = data[: _SEGMENT_HEADER.size]
    magic, version, _flags, seq, base_ts = _SEGMENT_HEADER.unpack(head)
    (crc,) = _SEGMENT_CRC.unpack_from(data, _SEGMENT_HEADER.size)
    if magic != JOURNAL_MAGIC:
        raise corrupt("not a journal segment (bad magic)")
    if zlib.crc32(head) != crc:
        raise corrupt("segment header fails its CRC")
    if version != JOURNAL_VERSION:
        raise corrupt(f"unsupported journal version {version}")
    if seq != first_seq:
        raise corrupt(f"header first_seq {seq} does not match the name")
    return int(base_ts)


def _frame_end(data: bytes, view: memoryview, offset: int) -> int | str:
    """End offset of the valid frame at ``offset``, or why there is none."""
    size = len(data)
    if size - offset < FRAME_HEADER_SIZE:
        return "incomplete record header"
    length: int
    crc: int
    length, crc = _FRAME.unpack_from(data, offset)
    if length == 0 or length > MAX_RECORD_BYTES:
        return f"invalid record length {length}"
    end = offset + FRAME_HEADER_SIZE + length
    if end > size:
        return f"record length {length} runs past the end of the file"
    if zlib.crc32(view[offset + FRAME_HEADER_SIZE : end]) != crc:
        return "record fails its CRC"
    return end


def _valid_frame_after(data: bytes, view: memoryview, offset: int) -> int | None:
    """Offset of the first complete, checksum-valid frame that starts after ``offset``."""
    for candidate in range(offset + 1, len(data) - FRAME_HEADER_SIZE + 1):
        if isinstance(_frame_end(data, view, candidate), int):
            return candidate
    return None


def _zero_from_sector(data: bytes, offset: int) -> bool:
    """Whether the file is all zero from ``offset``, or from a sector boundary after it."""
    tail = len(data) - len(data.rstrip(b"\x00"))
    if tail == 0:
        return False
    zero_from = len(data) - tail
    return zero_from <= offset or -(-zero_from // SECTOR_BYTES) * SECTOR_BYTES < len(data)


def _torn_reason(data: bytes, view: memoryview, offset: int) -> str | None:
    """Why the invalid record at ``offset`` (to the end of the file) is a torn write, or None
    when it is damage to a complete, committed record."""
    size = len(data)
    if _valid_frame_after(data, view, offset) is not None:
        return None  # a bad record followed by a good one
    if size - offset < FRAME_HEADER_SIZE:
        return "incomplete record header"
    if _zero_from_sector(data, offset):
        return "zero-filled space where the write did not reach the disk"
    length, crc = _FRAME.unpack_from(data, offset)
    if 0 < length <= MAX_RECORD_BYTES and offset + FRAME_HEADER_SIZE + length > size:
        if zlib.crc32(view[offset + FRAME_HEADER_SIZE :]) == crc:
            return None  # the record is all there: its length field is damaged
        return f"record length {length} runs past the end of the file"
    return None


@dataclass(frozen=True, slots=True)
class _SegmentEnd:
    end: int
    last_seq: int
    last_ts: int
    torn: TornTail | None


def _scan_segment(
    path: Path,
    data: bytes,
    *,
    first_seq: int,
    base_ts: int,
    full_after: int,
    is_last: bool,
) -> Generator[JournalRecord, None, _SegmentEnd]:
    """Check every record of one segment; yield (fully decoded) those with seq > full_after."""
    view = memoryview(data)
    offset = SEGMENT_HEADER_SIZE
    expected, last_ts = first_seq, base_ts
    size = len(data)
    while offset < size:
        end = _frame_end(data, view, offset)
        if isinstance(end, str):
            if not is_last:
                raise JournalCorruptError(path, offset, f"{end} (in a closed segment)", expected)
            reason = _torn_reason(data, view, offset)
            if reason is None:
                raise JournalCorruptError(
                    path, offset, f"{end}: a complete record is damaged", expected
                )
            torn = TornTail(path, offset, size - offset, reason)
            return _SegmentEnd(offset, expected - 1, last_ts, torn)
        payload = view[offset + FRAME_HEADER_SIZE : end]
        full = expected > full_after
        try:
            head: JournalRecord | _RecordHead = (
                _DECODER.decode(payload) if full else _HEAD_DECODER.decode(payload)
            )
        except msgspec.DecodeError as exc:
            raise JournalCorruptError(path, offset, f"undecodable record: {exc}", expected) from exc
        if head.seq != expected:
            raise JournalCorruptError(
                path, offset, f"sequence gap: expected seq {expected}, found {head.seq}", expected
            )
        if head.ts < last_ts:
            raise JournalCorruptError(
                path,
                offset,
                f"timestamp goes backwards at seq {head.seq}: {head.ts} < {last_ts}",
                expected,
            )
        if isinstance(head, JournalRecord):
            yield head
        expected, last_ts, offset = expected + 1, head.ts, end
    return _SegmentEnd(offset, expected - 1, last_ts, None)


class JournalReader:
    """Iterates over the valid records of a journal directory, checking it as it goes.

    Only records with ``seq > after_seq`` are yielded (segments wholly before them are not
    read). After iteration, ``last_seq``/``last_ts`` describe the last valid record and ``torn``
    the torn tail found, if any; the reader never modifies files (see ``repair_torn_tail``).
    Raises ``JournalCorruptError`` on corruption, including a journal that starts after
    ``after_seq + 1``.
    """

    def __init__(self, directory: str | os.PathLike[str], *, after_seq: int = 0) -> None:
        self.directory = Path(directory)
        self.after_seq = after_seq
        self.last_seq = 0
        self.last_ts = 0
        self.torn: TornTail | None = None

    def __iter__(self) -> Iterator[JournalRecord]:
        return self._read()

    def _read(self) -> Generator[JournalRecord, None, None]:
        segments = _all_segments(self.directory)
        self.last_seq, self.last_ts, self.torn = 0, 0, None
        if not segments:
            return
        start = 0
        for index, (first_seq, _path) in enumerate(segments):
            if first_seq <= self.after_seq + 1:
                start = index
        expected = min(segments[start][0], self.after_seq + 1)
        last_ts: int | None = None
        for index in range(start, len(segments)):
            first_seq, path = segments[index]
            if first_seq != expected:
                raise JournalCorruptError(
                    path,
                    0,
                    f"sequence gap: expected a segment starting at seq {expected}",
                    expected,
                )
            data = _segment_bytes(path)
            base_ts = _read_segment_header(path, data, first_seq)
            if last_ts is not None and base_ts != last_ts:
                raise JournalCorruptError(
                    path, 0, f"segment base_ts {base_ts} != last ts {last_ts} before it", first_seq
                )
            end = yield from _scan_segment(
                path,
                data,
                first_seq=first_seq,
                base_ts=base_ts,
                full_after=self.after_seq,
                is_last=index == len(segments) - 1,
            )
            expected, last_ts = end.last_seq + 1, end.last_ts
            self.last_seq, self.last_ts, self.torn = end.last_seq, end.last_ts, end.torn


# --------------------------------------------------------------------------------- writing


class Journal:
    """The writable journal of one directory: ``append`` buffers, ``commit`` writes and fsyncs.

    Open with ``Journal.open``. Not thread-safe; one open journal per directory (a lock file
    enforces it). After a failed write the journal refuses further use: restart and recover.
    """

    def __init__(
        self,
        directory: Path,
        lock: DirectoryLock,
        segment: Path,
        size: int,
        last_seq: int,
        last_ts: int,
        segment_bytes: int,
        repaired: TornTail | None,
    ) -> None:
        self._directory = directory
        self._lock = lock
        self._segment = segment
        self._fd: int | None = os.open(segment, os.O_WRONLY | os.O_APPEND)
        self._size = size
        self._last_seq = last_seq
        self._last_ts = last_ts
        self._segment_bytes = segment_bytes
        self._buffer = bytearray()
        self._next_seq = last_seq + 1
        self._pending_ts = last_ts
        self._failed = False
        self.repaired = repaired
        """The torn tail truncated by ``open``, if there was one."""

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> Journal:
        """Open (creating if needed) the journal in ``directory`` for appending.

        Checks the last segment and truncates a torn tail; run recovery first to check and
        replay the whole journal.
        """
        if segment_bytes <= SEGMENT_HEADER_SIZE:
            raise ValueError(f"segment_bytes must exceed {SEGMENT_HEADER_SIZE}")
        path = Path(directory)
        ensure_dir(path)
        lock = DirectoryLock(path)
        try:
            for stale in path.glob(f"journal-*.log{TMP_SUFFIX}"):
                stale.unlink()
            segments = _segments(path)
            repaired = None
            if not segments:
                segment = path / segment_name(1)
                atomic_write(segment, encode_segment_header(1, 0), replace=False)
                size, last_seq, last_ts = SEGMENT_HEADER_SIZE, 0, 0
            else:
                first_seq, segment = segments[-1]
                data = segment.read_bytes()
                base_ts = _read_segment_header(segment, data, first_seq)
                scan = _scan_segment(
                    segment,
                    data,
                    first_seq=first_seq,
                    base_ts=base_ts,
                    full_after=_NO_FULL_DECODE,
                    is_last=True,
                )
                end = _drain(scan)
                if end.torn is not None:
                    repair_torn_tail(end.torn)
                    repaired = end.torn
                size, last_seq, last_ts = end.end, end.last_seq, end.last_ts
            return cls(path, lock, segment, size, last_seq, last_ts, segment_bytes, repaired)
        except BaseException:
            lock.release()
            raise

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def last_seq(self) -> int:
        """Seq of the last committed record (0 if none)."""
        return self._last_seq

    @property
    def last_ts(self) -> int:
        """Timestamp of the last committed record (the segment base_ts if none)."""
        return self._last_ts

    @property
    def pending(self) -> int:
        """Number of appended records not yet committed."""
        return self._next_seq - 1 - self._last_seq

    def append(self, record: JournalRecord) -> None:
        """Buffer one record; it must carry the next seq and a ts not below the previous one."""
        self._check_usable()
        if record.seq != self._next_seq:
            raise JournalError(f"append: expected seq {self._next_seq}, got {record.seq}")
        if record.ts < self._pending_ts:
            raise JournalError(f"append: ts {record.ts} is below the last ts {self._pending_ts}")
        self._buffer += encode_record(record)
        self._next_seq += 1
        self._pending_ts = record.ts

    def commit(self) -> None:
        """Write the buffered records and fsync: when this returns they are durable.

        One fsync per call (group commit); nothing to do if nothing is buffered. Any failure
        leaves the journal unusable, since the file may now hold part of the buffer.
        """
        self._check_usable()
        if not self._buffer:
            return
        try:
            if self._size >= self._segment_bytes:
                self._rotate()
            fd = self._fd
            if fd is None:
                raise JournalError("journal is closed")
            write_all(fd, self._buffer)
            os.fsync(fd)
        except BaseException:
            self._failed = True
            raise
        self._size += len(self._buffer)
        self._buffer.clear()
        self._last_seq = self._next_seq - 1
        self._last_ts = self._pending_ts

    def discard(self) -> None:
        """Drop the buffered, uncommitted records."""
        self._buffer.clear()
        self._next_seq = self._last_seq + 1
        self._pending_ts = self._last_ts

    def close(self) -> None:
        """Close the journal; uncommitted records are dropped. Closing twice is harmless."""
        self._buffer.clear()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._lock.release()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_usable(self) -> None:
        if self._fd is None:
            raise JournalError("journal is closed")
        if self._failed:
            raise JournalError("journal failed during a write; restart and recover")

    def _rotate(self) -> None:
        """Start a new segment after the committed records (only called at a commit)."""
        first_seq = self._last_seq + 1
        segment = self._directory / segment_name(first_seq)
        atomic_write(segment, encode_segment_header(first_seq, self._last_ts), replace=False)
        fd = os.open(segment, os.O_WRONLY | os.O_APPEND)
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._segment, self._size = fd, segment, SEGMENT_HEADER_SIZE


def _drain(scan: Generator[JournalRecord, None, _SegmentEnd]) -> _SegmentEnd:
    """Run a segment scan to its end and return its result."""
    while True:
        try:
            next(scan)
        except StopIteration as stop:
            result: _SegmentEnd = stop.value
            return result
