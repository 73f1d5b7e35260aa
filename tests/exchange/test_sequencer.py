"""Sequencer stamping, and the journaled engine: group commit, acknowledgement, snapshots."""

from __future__ import annotations

import errno
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fake_machine import POISON, FakeMachine, replay
from journal_files import FsyncCounter, frames, segments

from tradingfloor.exchange.engine.commands import Command, NewOrder, Tick
from tradingfloor.exchange.engine.types import Side
from tradingfloor.exchange.journal import JournalReader
from tradingfloor.exchange.recovery import recover
from tradingfloor.exchange.sequencer import (
    MAX_BATCH_COMMANDS,
    JournaledEngine,
    PipelineFailedError,
    Sequencer,
)
from tradingfloor.exchange.snapshot import SnapshotStore, read_snapshot
from tradingfloor.exchange.snapshot_writer import DEFAULT_MODE, SnapshotFailedError, SnapshotMode

Dirs = tuple[Path, Path]


def order(n: int) -> NewOrder:
    return NewOrder(symbol="ACME", member="M1", cl_ord_id=f"c{n}", side=Side.SELL, qty=n, price=7)


def clock_of(values: list[int]) -> Callable[[], int]:
    it: Iterator[int] = iter(values)
    return lambda: next(it)


def open_fake(dirs: Dirs, clock: Callable[[], int], **options: int) -> JournaledEngine[FakeMachine]:
    pipeline, _report = JournaledEngine.open(*dirs, FakeMachine, clock=clock, **options)
    return pipeline


# ------------------------------------------------------------------------------ Sequencer


def test_sequencer_numbers_commands_and_never_goes_back_in_time() -> None:
    sequencer = Sequencer(clock=clock_of([100, 90, 90, 150, 120]))
    stamped = [sequencer.stamp(Tick()) for _ in range(5)]
    assert [(r.seq, r.ts) for r in stamped] == [(1, 100), (2, 100), (3, 100), (4, 150), (5, 150)]
    assert (sequencer.last_seq, sequencer.last_ts) == (5, 150)


def test_sequencer_continues_from_a_recovered_position() -> None:
    sequencer = Sequencer(last_seq=41, last_ts=5_000, clock=clock_of([4_000, 6_000]))
    first, second = sequencer.stamp(Tick()), sequencer.stamp(order(1))
    assert (first.seq, first.ts, second.seq, second.ts) == (42, 5_000, 43, 6_000)
    assert second.command == order(1)


def test_sequencer_requires_integer_nanoseconds() -> None:
    sequencer = Sequencer(clock=lambda: 1.5)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="integer nanoseconds"):
        sequencer.stamp(Tick())


def test_sequencer_default_clock_is_wall_time() -> None:
    record = Sequencer().stamp(Tick())
    assert record.ts > 1_600_000_000 * 10**9


# ------------------------------------------------------------------------------ group commit


def test_one_fsync_per_batch_and_events_only_after_it(
    monkeypatch: pytest.MonkeyPatch, dirs: Dirs, clock: Callable[[], int]
) -> None:
    pipeline = open_fake(dirs, clock, snapshot_every=0)
    journal_dir = dirs[0]
    seen_at_fsync: list[int] = []

    def fsync(fd: int) -> None:  # what is in the file when the batch is made durable
        seen_at_fsync.append(len(frames(segments(journal_dir)[-1])))

    monkeypatch.setattr(os, "fsync", fsync)
    events = pipeline.submit([order(i) for i in range(1, 11)])
    assert seen_at_fsync == [10]
    assert [e[1] for e in events] == list(range(1, 11))  # type: ignore[index]
    for batch in ([Tick()], [order(11), order(12)], [Tick()] * 5):
        pipeline.submit(batch)
    assert seen_at_fsync == [10, 11, 13, 18]
    assert pipeline.last_seq == 18
    pipeline.close()


def test_group_commit_fsync_count(fsync_counter: FsyncCounter, dirs: Dirs) -> None:
    with open_fake(dirs, clock=lambda: 1, snapshot_every=0) as pipeline:
        fsync_counter.calls = 0
        for n in range(1, 8):
            pipeline.submit([Tick()] * n)
        assert fsync_counter.calls == 7
        assert pipeline.submit([]) == []
        assert fsync_counter.calls == 7


def test_fsync_failure_acknowledges_nothing(
    monkeypatch: pytest.MonkeyPatch, dirs: Dirs, clock: Callable[[], int]
) -> None:
    pipeline = open_fake(dirs, clock)
    pipeline.submit([order(1)])

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        pipeline.submit([order(2), order(3)])
    assert pipeline.failed and pipeline.last_seq == 1
    with pytest.raises(PipelineFailedError):
        pipeline.submit([Tick()])
    pipeline.close()


def test_apply_failure_discards_the_batch(no_fsync: None, dirs: Dirs) -> None:
    pipeline = open_fake(dirs, clock=lambda: 5)
    pipeline.submit([order(1), order(2)])
    good = pipeline.engine.state_hash()
    size = segments(dirs[0])[-1].stat().st_size
    with pytest.raises(RuntimeError, match="poison"):
        pipeline.submit([order(3), POISON, order(4)])
    with pytest.raises(PipelineFailedError):
        pipeline.submit([Tick()])
    pipeline.close()
    assert segments(dirs[0])[-1].stat().st_size == size  # nothing of the batch was written
    machine, report = recover(*dirs, FakeMachine)
    assert machine.state_hash() == good and report.last_seq == 2


def test_batch_size_limit(no_fsync: None, dirs: Dirs) -> None:
    with open_fake(dirs, clock=lambda: 5) as pipeline:
        with pytest.raises(ValueError, match="MAX_BATCH_COMMANDS"):
            pipeline.submit([Tick()] * (MAX_BATCH_COMMANDS + 1))
        assert not pipeline.failed
        pipeline.submit([Tick()])


def test_timestamps_never_go_back_across_a_restart(no_fsync: None, dirs: Dirs) -> None:
    with open_fake(dirs, clock=lambda: 9_000) as pipeline:
        pipeline.submit([Tick(), Tick()])
    with open_fake(dirs, clock=lambda: 1_000) as pipeline:  # the wall clock stepped back
        pipeline.submit([Tick()])
    assert [(r.seq, r.ts) for r in JournalReader(dirs[0])] == [(1, 9_000), (2, 9_000), (3, 9_000)]


# ------------------------------------------------------------------------------ snapshots


def test_snapshot_every_n_commands(no_fsync: None, dirs: Dirs, clock: Callable[[], int]) -> None:
    commands: list[Command] = [order(i) for i in range(1, 21)]
    with open_fake(dirs, clock, snapshot_every=5, keep_snapshots=10) as pipeline:
        for start in range(0, 20, 2):
            pipeline.submit(commands[start : start + 2])
    store = SnapshotStore(dirs[1])
    assert [seq for seq, _path in store.paths()] == [6, 12, 18]
    records = [(r.seq, r.ts, r.command) for r in JournalReader(dirs[0])]
    hashes = replay(records)
    for seq, path in store.paths():
        snapshot = read_snapshot(path)
        assert FakeMachine.restore(snapshot.data).state_hash() == hashes[seq]
        assert snapshot.ts == records[seq - 1][1]


def test_take_snapshot_now(no_fsync: None, dirs: Dirs, clock: Callable[[], int]) -> None:
    with open_fake(dirs, clock, snapshot_every=0) as pipeline:
        pipeline.submit([Tick()] * 3)
        path = pipeline.take_snapshot()
        assert read_snapshot(path).seq == 3
        pipeline.submit([Tick()] * 30)
    assert [seq for seq, _ in SnapshotStore(dirs[1]).paths()] == [3]


def test_a_failed_snapshot_acknowledges_its_batch_and_stops_the_next(
    monkeypatch: pytest.MonkeyPatch, no_fsync: None, dirs: Dirs
) -> None:
    def full_disk(self: SnapshotStore, seq: int, ts: int, data: bytes) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(SnapshotStore, "write", full_disk)
    pipeline = open_fake(dirs, clock=lambda: 1, snapshot_every=2)
    events = pipeline.submit([Tick(), Tick()])  # durable: acknowledged; the snapshot is queued
    assert len(events) == 2 and not pipeline.failed
    with pytest.raises(SnapshotFailedError, match="No space left") as info:
        pipeline.wait_for_snapshot()
    assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(SnapshotFailedError, match="No space left"):
        pipeline.submit([Tick()])  # refused before anything is matched
    assert pipeline.failed and pipeline.engine.last_seq == 2
    with pytest.raises(SnapshotFailedError):
        pipeline.close()
    assert [r.seq for r in JournalReader(dirs[0])] == [1, 2]


def test_inline_snapshots_are_written_off_the_submitting_thread(
    monkeypatch: pytest.MonkeyPatch, no_fsync: None, dirs: Dirs, clock: Callable[[], int]
) -> None:
    threads: list[str] = []
    real_write = SnapshotStore.write

    def recording(self: SnapshotStore, seq: int, ts: int, data: bytes) -> Path:
        threads.append(threading.current_thread().name)
        return real_write(self, seq, ts, data)

    monkeypatch.setattr(SnapshotStore, "write", recording)
    with open_fake(dirs, clock, snapshot_every=3) as pipeline:
        assert pipeline.snapshot_writer is not None
        pipeline.snapshot_writer.mode = "inline"
        pipeline.submit([Tick()] * 3)
        path = pipeline.wait_for_snapshot()
    assert path is not None and read_snapshot(path).seq == 3
    assert threads and all(name.startswith("snapshot-writer") for name in threads)
    assert threading.current_thread().name not in threads


@pytest.mark.skipif(DEFAULT_MODE != "fork", reason="this platform does not fork snapshots")
def test_forked_snapshots_are_serialised_and_written_by_a_child_process(
    monkeypatch: pytest.MonkeyPatch, no_fsync: None, dirs: Dirs, clock: Callable[[], int]
) -> None:
    writers = dirs[1].parent / "writer-pids"
    real_write = SnapshotStore.write

    def recording(self: SnapshotStore, seq: int, ts: int, data: bytes) -> Path:
        with writers.open("a") as out:  # the child's memory is its own: tell through a file
            out.write(f"{os.getpid()}\n")
        return real_write(self, seq, ts, data)

    monkeypatch.setattr(SnapshotStore, "write", recording)
    with open_fake(dirs, clock, snapshot_every=3) as pipeline:
        assert pipeline.snapshot_writer is not None
        assert pipeline.snapshot_writer.mode == "fork"
        pipeline.submit([Tick()] * 3)
        pipeline.submit([Tick()])  # changes the state right away: the child keeps seq 3
        path = pipeline.wait_for_snapshot()
    assert path is not None and read_snapshot(path).seq == 3
    assert FakeMachine.restore(read_snapshot(path).data).last_seq == 3
    pids = writers.read_text().split()
    assert len(pids) == 1 and int(pids[0]) != os.getpid()


@pytest.mark.parametrize("mode", ["inline", *(["fork"] if DEFAULT_MODE == "fork" else [])])
def test_a_failed_snapshot_write_gives_its_real_cause(
    monkeypatch: pytest.MonkeyPatch, no_fsync: None, dirs: Dirs, mode: SnapshotMode
) -> None:
    def full_disk(self: SnapshotStore, seq: int, ts: int, data: bytes) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(SnapshotStore, "write", full_disk)
    pipeline = open_fake(dirs, clock=lambda: 1, snapshot_every=2)
    assert pipeline.snapshot_writer is not None
    pipeline.snapshot_writer.mode = mode
    pipeline.submit([Tick(), Tick()])
    with pytest.raises(SnapshotFailedError) as info:
        pipeline.wait_for_snapshot()
    cause = info.value.__cause__
    assert isinstance(cause, OSError) and cause.errno == errno.ENOSPC
    with pytest.raises(SnapshotFailedError):
        pipeline.close()


class Unfaithful(FakeMachine):
    """A machine whose restored state forgets its counts: its snapshots do not round-trip."""

    @classmethod
    def restore(cls, data: bytes) -> Unfaithful:
        machine = super().restore(data)
        machine.counts = {}
        return machine  # type: ignore[return-value]


def test_a_snapshot_that_does_not_restore_to_its_state_is_never_written(
    no_fsync: None, dirs: Dirs, clock: Callable[[], int]
) -> None:
    pipeline, _ = JournaledEngine.open(*dirs, Unfaithful, clock=clock, snapshot_every=2)
    pipeline.submit([Tick(), Tick()])
    with pytest.raises(SnapshotFailedError, match="does not verify"):
        pipeline.wait_for_snapshot()
    assert SnapshotStore(dirs[1]).paths() == []
    with pytest.raises(SnapshotFailedError):
        pipeline.close()


def test_a_full_disk_is_reported_as_such_not_as_a_buffer_error(
    no_fsync: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC from os.write reaches the caller; no view of the buffer outlives the write."""
    pipeline, _ = JournaledEngine.open(tmp_path / "j", tmp_path / "s", FakeMachine)
    pipeline.submit([Tick()])

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError) as info:
        pipeline.submit([Tick(), Tick()])
    assert info.value.errno == errno.ENOSPC and type(info.value) is OSError
    assert info.value.__context__ is None  # nothing raised while handling it
    assert pipeline.journal.pending == 0  # the failed batch was discarded
    with pytest.raises(PipelineFailedError):
        pipeline.submit([Tick()])
    pipeline.close()


@pytest.mark.skipif(DEFAULT_MODE != "fork", reason="this platform does not fork snapshots")
def test_a_forked_snapshot_child_ignores_ctrl_c_and_finishes(
    monkeypatch: pytest.MonkeyPatch, no_fsync: None, dirs: Dirs, clock: Callable[[], int]
) -> None:
    """Ctrl-C reaches the whole process group; the parent stops cleanly, the child must not
    fail the snapshot it is writing (nor poke the parent's event-loop wakeup descriptor)."""
    real_write = SnapshotStore.write

    def interrupted(self: SnapshotStore, seq: int, ts: int, data: bytes) -> Path:
        os.kill(os.getpid(), signal.SIGINT)  # in the child: as a terminal's Ctrl-C would
        return real_write(self, seq, ts, data)

    monkeypatch.setattr(SnapshotStore, "write", interrupted)
    with open_fake(dirs, clock, snapshot_every=2) as pipeline:
        pipeline.submit([Tick(), Tick()])
        path = pipeline.wait_for_snapshot()
    assert path is not None and read_snapshot(path).seq == 2
