"""Shared fixtures for the journal, snapshot, sequencer and recovery tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from journal_files import FsyncCounter


@pytest.fixture
def fsync_counter(monkeypatch: pytest.MonkeyPatch) -> FsyncCounter:
    """Replace os.fsync by a counter (no disk flush: keeps the tests fast)."""
    counter = FsyncCounter()
    monkeypatch.setattr(os, "fsync", counter)
    return counter


@pytest.fixture
def no_fsync(fsync_counter: FsyncCounter) -> None:
    """os.fsync does nothing: for tests about formats, not durability calls."""


@pytest.fixture
def clock() -> Callable[[], int]:
    """A deterministic clock: 1_000_000, 1_000_010, ... nanoseconds."""
    state = iter(range(1_000_000, 1 << 62, 10))
    return lambda: next(state)


@pytest.fixture
def dirs(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    yield tmp_path / "journal", tmp_path / "snapshots"
