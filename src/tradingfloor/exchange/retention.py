"""Journal retention: compress closed segments that no recovery needs to read raw.

The journal grows without bound; recovery reads only from the newest snapshot on and start-up
from the newest projection checkpoint (``exchange.checkpoint``), but audit needs every command
and ``serve --full-replay`` reads from seq 1. So nothing is deleted: a closed segment whose
every record is at or below the *horizon* -- the newest snapshot's seq, lowered to the
slowest consumer's mark when one is given -- and that is neither among the newest
``keep_segments`` segments nor younger than ``keep_seconds``, is compressed (gzip, stdlib)
into ``<journal>/archive/<name>.gz`` and the live file removed. ``JournalReader`` reads
archived segments transparently, with the same checks, so replay and audit see the same
journal. The open (last) segment is never archived.

Each archive is written as ``.tmp``, fsynced, verified by decompressing it, renamed and its
directory fsynced before the live segment is unlinked (and the journal directory fsynced):
a crash leaves the segment live, archived, or both (the live copy wins and the next pass
replaces the archive).
"""

from __future__ import annotations

import gzip
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from tradingfloor.exchange._durable import TMP_SUFFIX, atomic_write, ensure_dir, fsync_dir
from tradingfloor.exchange.journal import ARCHIVE_DIR, ARCHIVE_SUFFIX, live_segments

__all__ = ["DEFAULT_RETENTION", "RetentionPolicy", "archive_segments"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Which closed segments below the horizon stay uncompressed."""

    keep_segments: int = 4
    """The newest this many segments (the open one included) are never archived."""
    keep_seconds: float = 24 * 3600.0
    """Segments last written less than this long ago are never archived."""
    compress_level: int = 6
    """gzip level (1 fastest .. 9 smallest)."""

    def __post_init__(self) -> None:
        if self.keep_segments < 1:
            raise ValueError("keep_segments must be at least 1 (the open segment)")
        if self.keep_seconds < 0:
            raise ValueError("keep_seconds must not be negative")
        if not 1 <= self.compress_level <= 9:
            raise ValueError("compress_level must be 1..9")


DEFAULT_RETENTION = RetentionPolicy()


def archive_segments(
    journal_dir: str | os.PathLike[str],
    horizon_seq: int,
    policy: RetentionPolicy = DEFAULT_RETENTION,
    *,
    now: float | None = None,
) -> list[Path]:
    """Archive every segment the policy lets go whose records all have seq <= ``horizon_seq``.

    Returns the archive files written, oldest first. Safe while the journal is open for
    appending (only closed segments are touched); run it from one thread at a time.
    """
    directory = Path(journal_dir)
    archive = directory / ARCHIVE_DIR
    if archive.is_dir():
        for stale in archive.glob(f"*{TMP_SUFFIX}"):
            stale.unlink()
    current = time.time() if now is None else now
    segments = live_segments(directory)
    closable = max(0, len(segments) - policy.keep_segments)
    written: list[Path] = []
    for index in range(closable):
        _first_seq, path = segments[index]
        last_seq = segments[index + 1][0] - 1
        if last_seq > horizon_seq:
            break  # later segments are newer still
        if current - path.stat().st_mtime < policy.keep_seconds:
            continue
        data = path.read_bytes()
        packed = gzip.compress(data, compresslevel=policy.compress_level, mtime=0)
        if gzip.decompress(packed) != data:
            raise OSError(f"{path}: the compressed copy does not decompress to the segment")
        ensure_dir(archive)
        target = archive / (path.name + ARCHIVE_SUFFIX)
        atomic_write(target, packed)
        path.unlink()
        fsync_dir(directory)
        written.append(target)
        _log.info("archived %s (%d -> %d bytes)", path.name, len(data), len(packed))
    return written
