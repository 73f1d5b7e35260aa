"""File-system durability helpers shared by the journal and the snapshot store.

Full writes, fsync of files and directories, atomic file creation, and an exclusive directory lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

__all__ = [
    "DirectoryLock",
    "DirectoryLockedError",
    "atomic_write",
    "ensure_dir",
    "fsync_dir",
    "write_all",
]

TMP_SUFFIX = ".tmp"
"""Suffix of files being written; a leftover one is an interrupted write and may be deleted."""


class DirectoryLockedError(RuntimeError):
    """Another open journal (in this or another process) holds the directory lock."""


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write every byte of ``data`` to ``fd``; ``os.write`` may write less than asked.

    Every view of ``data`` is released before this returns or raises: a view left alive in a
    traceback would stop the caller from resizing a ``bytearray`` (``BufferError``) and hide
    the real error (ENOSPC, EIO) behind it.
    """
    with memoryview(data) as whole:
        done, size = 0, len(whole)
        while done < size:
            with whole[done:] as rest:
                done += os.write(fd, rest)


def fsync_dir(directory: Path) -> None:
    """Make creations, renames and deletions of entries in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(directory: Path) -> None:
    """Create ``directory`` (and missing parents) so that the new entries survive a crash."""
    missing = []
    path = directory
    while not path.exists():
        missing.append(path)
        path = path.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
        fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes, *, replace: bool = True) -> None:
    """Write ``path`` so that after a crash it holds either nothing (or its old text) or ``data``.

    Writes ``<path>.tmp``, fsyncs it, renames it over ``path`` and fsyncs the directory. With
    ``replace=False`` an existing ``path`` raises ``FileExistsError``.
    """
    if not replace and path.exists():
        raise FileExistsError(path)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


class DirectoryLock:
    """An exclusive, non-blocking ``flock`` on ``<directory>/LOCK``, held until ``release()``."""

    def __init__(self, directory: Path) -> None:
        self._fd: int | None = os.open(directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._fd)
            self._fd = None
            raise DirectoryLockedError(f"{directory} is in use by another open journal") from exc

    def release(self) -> None:
        """Release the lock; releasing twice is harmless."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DirectoryLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
