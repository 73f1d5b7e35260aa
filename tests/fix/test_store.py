"""Tests of the durable FIX session store: persistence, torn tails, reset, locking, received
messages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tradingfloor.exchange.fix.store import (
    TARGETS_COMPACT_BYTES,
    SessionStore,
    StoreCorruptError,
    StoreLockedError,
    read_received,
)


@pytest.fixture(autouse=True)
def _no_disk_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    """fsync is a no-op here (formats, not power loss, are tested); keeps the suite fast."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


def _log_path(directory: Path) -> Path:
    (path,) = directory.glob("messages-*.log")
    return path


def test_new_store_starts_at_one(tmp_path: Path) -> None:
    store = SessionStore.open(tmp_path / "s", now_ns=42)
    assert (store.next_sender_seq, store.next_target_seq, store.creation_ns) == (1, 1, 42)
    assert store.get_range(1, 0) == []
    store.close()


def test_persist_and_reopen(tmp_path: Path) -> None:
    store = SessionStore.open(tmp_path, now_ns=42)
    store.save_sent(1, b"one")
    store.skip_sent(2)  # a heartbeat: seq used, nothing to resend
    store.save_sent(3, b"three")
    store.set_next_target_seq(17)
    store.close()

    again = SessionStore.open(tmp_path, now_ns=99)
    assert again.next_sender_seq == 4
    assert again.next_target_seq == 17
    assert again.creation_ns == 42
    assert again.get_range(1, 0) == [(1, b"one"), (3, b"three")]
    assert again.get_range(2, 3) == [(3, b"three")]
    assert again.get_range(2, 2) == []
    assert again.get_range(4, 0) == []
    assert again.stored_seqs() == [1, 3]
    again.save_sent(4, b"four")
    assert again.get_range(3, 0) == [(3, b"three"), (4, b"four")]
    again.close()


def test_process_crash_loses_nothing_without_sync(tmp_path: Path) -> None:
    """Writes reach the OS on every call: a second opener sees them without close()/sync()."""
    store = SessionStore.open(tmp_path / "a", now_ns=1)
    store.save_sent(1, b"x")
    store.set_next_target_seq(5)
    assert store.needs_sync
    # simulate the process dying: copy the files as they are now, no close
    copy = tmp_path / "b"
    copy.mkdir()
    for f in (tmp_path / "a").iterdir():
        if f.name != "LOCK":
            (copy / f.name).write_bytes(f.read_bytes())
    reopened = SessionStore.open(copy)
    assert (reopened.next_sender_seq, reopened.next_target_seq) == (2, 5)
    assert reopened.get_range(1, 1) == [(1, b"x")]
    reopened.close()
    store.sync()
    assert not store.needs_sync
    store.close()


def test_sync_calls_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SessionStore.open(tmp_path)
    calls: list[int] = []
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd))
    store.save_sent(1, b"x")
    assert calls == []  # no fsync per write
    store.sync()
    assert len(calls) >= 1
    calls.clear()
    store.sync()
    assert calls == []  # nothing new: nothing to sync
    store.close()


def test_sender_seq_survives_only_in_the_log(tmp_path: Path) -> None:
    """skip_sent does not rewrite the seqnums file; the log alone carries the sender seq."""
    store = SessionStore.open(tmp_path)
    seqnums_before = (tmp_path / "seqnums").read_bytes()
    for seq in range(1, 6):
        store.skip_sent(seq)
    assert (tmp_path / "seqnums").read_bytes() == seqnums_before
    store.close()
    again = SessionStore.open(tmp_path)
    assert again.next_sender_seq == 6
    again.close()


def test_torn_tail_dropped_at_every_offset_of_last_record(tmp_path: Path) -> None:
    src = tmp_path / "src"
    store = SessionStore.open(src, now_ns=1)
    store.save_sent(1, b"first message")
    store.set_next_target_seq(3)
    size_after_first = _log_path(src).stat().st_size
    store.save_sent(2, b"second message")
    store.close()
    full = _log_path(src).read_bytes()
    seqnums = (src / "seqnums").read_bytes()
    targets = (src / "targets.log").read_bytes()
    for cut in range(size_after_first, len(full)):
        d = tmp_path / f"cut{cut}"
        d.mkdir()
        (d / "seqnums").write_bytes(seqnums)
        (d / "targets.log").write_bytes(targets)
        (d / _log_path(src).name).write_bytes(full[:cut])
        s = SessionStore.open(d)
        assert s.get_range(1, 0) == [(1, b"first message")], cut
        assert s.next_sender_seq == 2, cut
        assert _log_path(d).stat().st_size == size_after_first  # truncated
        s.save_sent(2, b"again")
        s.close()
        s = SessionStore.open(d)
        assert s.get_range(1, 0) == [(1, b"first message"), (2, b"again")]
        assert s.next_target_seq == 3
        s.close()


def test_flipped_byte_in_last_record_is_a_torn_tail(tmp_path: Path) -> None:
    store = SessionStore.open(tmp_path)
    store.save_sent(1, b"first")
    store.save_sent(2, b"second")
    store.close()
    log = _log_path(tmp_path)
    data = bytearray(log.read_bytes())
    data[-1] ^= 0xFF
    log.write_bytes(bytes(data))
    s = SessionStore.open(tmp_path)
    assert s.get_range(1, 0) == [(1, b"first")]
    s.close()


def test_zero_filled_tail_is_torn(tmp_path: Path) -> None:
    store = SessionStore.open(tmp_path)
    store.save_sent(1, b"first")
    store.close()
    log = _log_path(tmp_path)
    log.write_bytes(log.read_bytes() + bytes(100))
    s = SessionStore.open(tmp_path)
    assert s.get_range(1, 0) == [(1, b"first")]
    s.close()


def test_damage_before_the_tail_is_corruption(tmp_path: Path) -> None:
    store = SessionStore.open(tmp_path)
    store.save_sent(1, b"first")
    store.save_sent(2, b"second")
    store.close()
    log = _log_path(tmp_path)
    data = bytearray(log.read_bytes())
    data[12] ^= 0xFF  # inside the first record's payload
    log.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptError):
        SessionStore.open(tmp_path)


def test_damaged_seqnums_is_corruption(tmp_path: Path) -> None:
    SessionStore.open(tmp_path).close()
    path = tmp_path / "seqnums"
    data = bytearray(path.read_bytes())
    data[20] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptError):
        SessionStore.open(tmp_path)


def test_reset_starts_a_new_empty_log(tmp_path: Path) -> None:
    store = SessionStore.open(tmp_path, now_ns=1)
    store.save_sent(1, b"a")
    store.save_sent(2, b"b")
    store.set_next_target_seq(9)
    old_log = _log_path(tmp_path)
    store.reset(now_ns=500)
    assert (store.next_sender_seq, store.next_target_seq, store.creation_ns) == (1, 1, 500)
    assert store.get_range(1, 0) == []
    assert not old_log.exists()
    store.save_sent(1, b"new")
    store.close()
    again = SessionStore.open(tmp_path)
    assert (again.next_sender_seq, again.next_target_seq, again.creation_ns) == (2, 1, 500)
    assert again.get_range(1, 0) == [(1, b"new")]
    again.close()


def test_interrupted_reset_leftover_log_is_removed(tmp_path: Path) -> None:
    store = SessionStore.open(tmp_path)
    store.save_sent(1, b"a")
    store.close()
    (tmp_path / "messages-00000007.log").write_bytes(b"leftover")
    again = SessionStore.open(tmp_path)
    assert again.get_range(1, 0) == [(1, b"a")]
    assert not (tmp_path / "messages-00000007.log").exists()
    again.close()


def test_second_open_is_refused_until_closed(tmp_path: Path) -> None:
    store = SessionStore.open(tmp_path)
    with pytest.raises(StoreLockedError):
        SessionStore.open(tmp_path)
    store.close()
    store.close()  # harmless
    SessionStore.open(tmp_path).close()


def test_seq_reuse_is_refused(tmp_path: Path) -> None:
    store = SessionStore.open(tmp_path)
    store.save_sent(1, b"a")
    with pytest.raises(ValueError):
        store.save_sent(1, b"b")
    store.close()
    with pytest.raises(RuntimeError):
        store.save_sent(2, b"c")


def test_target_seq_journal_survives_torn_tail_and_compacts(tmp_path: Path) -> None:
    store = SessionStore.open(tmp_path)
    seqnums_before = (tmp_path / "seqnums").read_bytes()
    for seq in range(2, 12):
        store.set_next_target_seq(seq)
    assert (tmp_path / "seqnums").read_bytes() == seqnums_before  # no rename per message
    store.close()
    targets = tmp_path / "targets.log"
    for cut in range(1, 16):  # the last 16-byte record torn at every offset
        damaged = tmp_path / f"cut{cut}"
        damaged.mkdir()
        (damaged / "seqnums").write_bytes((tmp_path / "seqnums").read_bytes())
        (damaged / "targets.log").write_bytes(targets.read_bytes()[:-cut])
        s = SessionStore.open(damaged)
        assert s.next_target_seq == 10, cut
        s.close()
    again = SessionStore.open(tmp_path)
    assert again.next_target_seq == 11
    for seq in range(12, 12 + TARGETS_COMPACT_BYTES // 16 + 2):
        again.set_next_target_seq(seq)
    again.sync()  # folds the journal into seqnums
    assert targets.stat().st_size == 0
    final = again.next_target_seq
    again.close()
    assert SessionStore.open(tmp_path).next_target_seq == final


def test_target_records_of_an_older_generation_are_ignored(tmp_path: Path) -> None:
    """A reset interrupted before targets.log was emptied must not resurrect old seq nums."""
    store = SessionStore.open(tmp_path)
    store.set_next_target_seq(50)
    old_targets = (tmp_path / "targets.log").read_bytes()
    store.reset()
    store.close()
    (tmp_path / "targets.log").write_bytes(old_targets)
    again = SessionStore.open(tmp_path)
    assert again.next_target_seq == 1
    again.close()


# --- received messages ----------------------------------------------------------------------------

ORDER = ((35, "D"), (49, "M1"), (56, "TFEX"), (34, "7"), (11, "c1"), (58, ""))


def test_received_messages_are_stored_with_time_and_peer(tmp_path: Path) -> None:
    store = SessionStore.open(tmp_path)
    store.save_sent(1, b"out-1")
    store.save_received(ORDER, 123, ("10.0.0.9", 40001))
    store.skip_sent(2)
    store.save_received(((35, "0"), (34, "x")), 456, ("::1", 2))
    store.save_sent(3, b"out-3")
    (first, second) = store.received()
    assert first.fields == b"35=D\x0149=M1\x0156=TFEX\x0134=7\x0111=c1\x0158=\x01"
    assert (first.generation, first.seq, first.received_ns, first.address, first.port) == (
        0,
        7,
        123,
        "10.0.0.9",
        40001,
    )
    assert (second.seq, second.received_ns, second.address, second.port) == (0, 456, "::1", 2)
    assert store.get_range(1, 0) == [(1, b"out-1"), (3, b"out-3")]
    assert read_received(tmp_path) is not None
    assert list(read_received(tmp_path)) == [first, second]  # while open (and locked)
    store.close()
    again = SessionStore.open(tmp_path)
    assert again.next_sender_seq == 4  # received records take no part in sequencing
    assert again.get_range(1, 0) == [(1, b"out-1"), (3, b"out-3")]
    assert again.received() == [first, second]
    again.close()


def test_received_messages_of_ended_generations_are_kept(tmp_path: Path) -> None:
    store = SessionStore.open(tmp_path)
    store.save_received(ORDER, 1, ("a", 1))
    store.reset(now_ns=5)
    store.save_received(ORDER, 2, ("b", 2))
    assert [(r.generation, r.address) for r in store.received()] == [(0, "a"), (1, "b")]
    assert (tmp_path / "history" / "messages-00000000.log").exists()
    store.close()
    (tmp_path / "messages-00000000.log").write_bytes(b"")  # an interrupted reset's old log ...
    (tmp_path / "history" / "messages-00000000.log").rename(tmp_path / "messages-00000000.log")
    again = SessionStore.open(tmp_path)  # ... is archived at open, not deleted
    assert [(r.generation, r.address) for r in again.received()] == [(0, "a"), (1, "b")]
    again.close()


def test_torn_received_record_is_dropped(tmp_path: Path) -> None:
    store = SessionStore.open(tmp_path)
    store.save_received(ORDER, 1, ("a", 1))
    store.save_received(ORDER, 2, ("a", 1))
    store.close()
    log = _log_path(tmp_path)
    log.write_bytes(log.read_bytes()[:-3])
    assert [r.received_ns for r in read_received(tmp_path)] == [1]
    again = SessionStore.open(tmp_path)
    again.save_received(ORDER, 3, ("a", 1))
    assert [r.received_ns for r in again.received()] == [1, 3]
    again.close()
