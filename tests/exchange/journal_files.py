"""Test helpers: an independent reader of the on-disk journal format, byte surgery, fsync counting.

The reader does not use tradingfloor.exchange.journal, so tests check the documented layout.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import msgspec

SEGMENT_HEADER = 32
FRAME = struct.Struct("<II")


@dataclass(frozen=True)
class Frame:
    start: int
    end: int
    seq: int
    ts: int


def segments(journal_dir: Path) -> list[Path]:
    return sorted(journal_dir.glob("journal-*.log"))


def frames(path: Path) -> list[Frame]:
    """Every complete, checksum-valid frame of a segment, in order (stops at the first bad)."""
    data = path.read_bytes()
    offset, found = SEGMENT_HEADER, []
    while offset + FRAME.size <= len(data):
        length, crc = FRAME.unpack_from(data, offset)
        end = offset + FRAME.size + length
        payload = data[offset + FRAME.size : end]
        if length == 0 or end > len(data) or zlib.crc32(payload) != crc:
            break
        seq, ts, _command = msgspec.msgpack.decode(payload)
        found.append(Frame(offset, end, seq, ts))
        offset = end
    return found


def flip(path: Path, offset: int, mask: int = 0xFF) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


def truncate(path: Path, size: int) -> None:
    with path.open("r+b") as f:
        f.truncate(size)


class FsyncCounter:
    """Stands in for os.fsync: counts calls, flushes nothing."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, fd: int) -> None:
        self.calls += 1
