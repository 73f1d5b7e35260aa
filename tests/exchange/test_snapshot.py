"""Snapshot store: file layout, atomic writes, newest-valid lookup and pruning."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from journal_files import FsyncCounter, flip, truncate

from tradingfloor.exchange.snapshot import (
    SNAPSHOT_HEADER_SIZE,
    SNAPSHOT_MAGIC,
    SNAPSHOT_VERSION,
    SnapshotDamagedError,
    SnapshotStore,
    encode_snapshot,
    read_snapshot,
    snapshot_name,
)

TS = 1_700_000_000_123_456_789


def test_file_layout(no_fsync: None, tmp_path: Path) -> None:
    path = SnapshotStore(tmp_path).write(42, TS, b"state bytes")
    assert path.name == snapshot_name(42) == "snapshot-00000000000000000042.bin"
    raw = path.read_bytes()
    assert SNAPSHOT_HEADER_SIZE == 40
    magic, version, flags, seq, ts, length, crc = struct.unpack_from("<8sHHQqQI", raw)
    assert (magic, version, flags, seq, ts) == (SNAPSHOT_MAGIC, SNAPSHOT_VERSION, 0, 42, TS)
    assert length == len(b"state bytes") and raw[40:] == b"state bytes"
    assert crc == zlib.crc32(raw[40:], zlib.crc32(raw[:36]))
    assert raw == encode_snapshot(42, TS, b"state bytes")
    snapshot = read_snapshot(path)
    assert (snapshot.seq, snapshot.ts, snapshot.data) == (42, TS, b"state bytes")


def test_write_is_atomic_and_durable(fsync_counter: FsyncCounter, tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.write(1, 5, b"x")
    assert fsync_counter.calls == 2  # the file, then the directory after the rename
    assert [p.name for p in tmp_path.iterdir()] == [snapshot_name(1)]


def test_latest_valid_is_the_newest(no_fsync: None, tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, keep=5)
    assert store.latest_valid() is None
    for seq in (10, 20, 30):
        store.write(seq, seq * 100, f"state {seq}".encode())
    latest = store.latest_valid()
    assert latest is not None and (latest.seq, latest.ts, latest.data) == (30, 3000, b"state 30")


@pytest.mark.parametrize("damage", ["flip_body", "flip_header", "truncate", "empty", "rename"])
def test_damaged_newest_falls_back_to_older(no_fsync: None, tmp_path: Path, damage: str) -> None:
    store = SnapshotStore(tmp_path, keep=5)
    for seq in (10, 20, 30):
        store.write(seq, seq, bytes(range(50)))
    newest = tmp_path / snapshot_name(30)
    if damage == "flip_body":
        flip(newest, SNAPSHOT_HEADER_SIZE + 7)
    elif damage == "flip_header":
        flip(newest, 13)
    elif damage == "truncate":
        truncate(newest, newest.stat().st_size - 1)
    elif damage == "empty":
        truncate(newest, 0)
    else:  # a valid snapshot of seq 20 under the name of seq 30
        newest.write_bytes((tmp_path / snapshot_name(20)).read_bytes())
    snapshot, damaged = store.find_latest()
    assert snapshot is not None and snapshot.seq == 20
    assert [d.path for d in damaged] == [newest]
    with pytest.raises(SnapshotDamagedError):
        read_snapshot(newest)


def test_no_valid_snapshot(no_fsync: None, tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.write(1, 1, b"a")
    flip(tmp_path / snapshot_name(1), 0)
    assert store.latest_valid() is None


def test_prune_keeps_the_newest_n(no_fsync: None, tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, keep=2)
    (tmp_path / (snapshot_name(99) + ".tmp")).write_bytes(b"interrupted write")
    (tmp_path / "notes.txt").write_text("not a snapshot")
    for seq in range(1, 6):
        store.write(seq, seq, b"s")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "notes.txt",
        snapshot_name(4),
        snapshot_name(5),
    ]


def test_missing_directory_has_no_snapshots(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "absent")
    assert store.latest_valid() is None and store.paths() == [] and store.prune() == []
