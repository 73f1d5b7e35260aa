"""Snapshot store: checksummed engine snapshots written atomically, newest valid one found on load.

File ``snapshot-{seq:020d}.bin`` (integers little-endian; docs/journal.md is the reference)::

    magic     8 bytes  b"TFSNAPSH"
    version   u16      SNAPSHOT_VERSION (1)
    flags     u16      0
    seq       u64      last_seq of the state (= the number in the file name)
    ts        i64      ts of the record with that seq (0 if none)
    length    u64      length of the body
    crc       u32      zlib.crc32 of the 36 bytes above followed by the body
    body      bytes    the state machine's ``snapshot()``
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from tradingfloor.exchange._durable import TMP_SUFFIX, atomic_write, ensure_dir, fsync_dir

__all__ = [
    "DEFAULT_KEEP_SNAPSHOTS",
    "SNAPSHOT_HEADER_SIZE",
    "SNAPSHOT_MAGIC",
    "SNAPSHOT_VERSION",
    "Snapshot",
    "SnapshotDamagedError",
    "SnapshotStore",
    "encode_snapshot",
    "read_snapshot",
    "snapshot_name",
]

SNAPSHOT_MAGIC = b"TFSNAPSH"
SNAPSHOT_VERSION = 1
DEFAULT_KEEP_SNAPSHOTS = 3
"""How many snapshot files ``SnapshotStore`` keeps after writing a new one."""

_HEADER = struct.Struct("<8sHHQqQ")
_CRC = struct.Struct("<I")
SNAPSHOT_HEADER_SIZE = _HEADER.size + _CRC.size
_NAME_RE = re.compile(r"snapshot-(\d{20})\.bin")


class SnapshotDamagedError(Exception):
    """A snapshot file is incomplete, fails its CRC or does not match its name."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: damaged snapshot: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A verified snapshot: the state after applying every command up to ``seq``."""

    seq: int
    ts: int
    data: bytes
    path: Path


def snapshot_name(seq: int) -> str:
    """File name of the snapshot taken after ``seq``."""
    return f"snapshot-{seq:020d}.bin"


def encode_snapshot(seq: int, ts: int, data: bytes) -> bytes:
    """Header, CRC and body of a snapshot file."""
    head = _HEADER.pack(SNAPSHOT_MAGIC, SNAPSHOT_VERSION, 0, seq, ts, len(data))
    return head + _CRC.pack(zlib.crc32(data, zlib.crc32(head))) + data


def read_snapshot(path: Path) -> Snapshot:
    """Read and verify one snapshot file; raise ``SnapshotDamagedError`` if it is not intact."""
    raw = path.read_bytes()
    if len(raw) < SNAPSHOT_HEADER_SIZE:
        raise SnapshotDamagedError(path, "shorter than the header")
    magic, version, _flags, seq, ts, length = _HEADER.unpack_from(raw)
    (crc,) = _CRC.unpack_from(raw, _HEADER.size)
    body = raw[SNAPSHOT_HEADER_SIZE:]
    if magic != SNAPSHOT_MAGIC:
        raise SnapshotDamagedError(path, "bad magic")
    if length != len(body):
        raise SnapshotDamagedError(path, f"body is {len(body)} bytes, header says {length}")
    if zlib.crc32(body, zlib.crc32(raw[: _HEADER.size])) != crc:
        raise SnapshotDamagedError(path, "CRC mismatch")
    if version != SNAPSHOT_VERSION:
        raise SnapshotDamagedError(path, f"unsupported version {version}")
    match = _NAME_RE.fullmatch(path.name)
    if match is None or int(match.group(1)) != seq:
        raise SnapshotDamagedError(path, f"header seq {seq} does not match the file name")
    return Snapshot(seq=int(seq), ts=int(ts), data=body, path=path)


class SnapshotStore:
    """The snapshots of one directory: write atomically, find the newest valid, prune old."""

    def __init__(
        self, directory: str | os.PathLike[str], *, keep: int = DEFAULT_KEEP_SNAPSHOTS
    ) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.directory = Path(directory)
        self.keep = keep

    def paths(self) -> list[tuple[int, Path]]:
        """(seq, path) of every snapshot file, oldest first, whether valid or not."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            match = _NAME_RE.fullmatch(path.name)
            if match:
                found.append((int(match.group(1)), path))
        found.sort()
        return found

    def write(self, seq: int, ts: int, data: bytes) -> Path:
        """Durably write the snapshot of the state after ``seq``, then prune old ones."""
        ensure_dir(self.directory)
        path = self.directory / snapshot_name(seq)
        atomic_write(path, encode_snapshot(seq, ts, data))
        self.prune()
        return path

    def latest_valid(self) -> Snapshot | None:
        """The newest snapshot that verifies, skipping damaged ones; None if there is none."""
        return self.find_latest()[0]

    def find_latest(self) -> tuple[Snapshot | None, list[SnapshotDamagedError]]:
        """The newest valid snapshot and the damaged newer ones skipped to reach it."""
        damaged: list[SnapshotDamagedError] = []
        for _seq, path in reversed(self.paths()):
            try:
                return read_snapshot(path), damaged
            except SnapshotDamagedError as exc:
                damaged.append(exc)
        return None, damaged

    def prune(self) -> list[Path]:
        """Delete all but the newest ``keep`` snapshot files (and leftover temp files)."""
        if not self.directory.is_dir():
            return []
        removed = [
            path for path in self.directory.glob(f"snapshot-*.bin{TMP_SUFFIX}") if path.is_file()
        ]
        removed += [path for _seq, path in self.paths()[: -self.keep]]
        for path in removed:
            path.unlink()
        if removed:
            fsync_dir(self.directory)
        return removed
