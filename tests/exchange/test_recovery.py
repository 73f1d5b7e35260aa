"""Recovery: snapshot plus journal tail, torn tails, damaged snapshots, and crash properties.

Runs against the fake state machine and the real matching engine.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from fake_machine import FakeMachine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from journal_files import flip, frames, segments, truncate

from tradingfloor.exchange.engine.commands import (
    AddInstrument,
    CancelOrder,
    Command,
    Halt,
    NewOrder,
    Tick,
)
from tradingfloor.exchange.engine.engine import Engine
from tradingfloor.exchange.engine.events import Trade
from tradingfloor.exchange.engine.types import Side
from tradingfloor.exchange.journal import JournalCorruptError, JournalReader
from tradingfloor.exchange.recovery import RecoveryError, recover
from tradingfloor.exchange.sequencer import JournaledEngine
from tradingfloor.exchange.snapshot import SnapshotStore, snapshot_name

Dirs = tuple[Path, Path]
_example_ids = itertools.count()


def counting_clock(start: int = 1_000, step: int = 10) -> Callable[[], int]:
    """Strictly increasing, so the i-th stamped command (1-based) gets start + step * (i - 1)."""
    values = itertools.count(start, step)
    return lambda: next(values)


def stamped(commands: Sequence[Command], start: int = 1_000, step: int = 10) -> list[Any]:
    return [(i, start + step * (i - 1), c) for i, c in enumerate(commands, start=1)]


def hashes_after_each(machine_type: Any, records: list[Any]) -> list[str]:
    """state_hash after 0, 1, ..., n records, replayed on a fresh machine."""
    machine = machine_type()
    hashes = [machine.state_hash()]
    for seq, ts, cmd in records:
        machine.apply(seq, ts, cmd)
        hashes.append(machine.state_hash())
    return hashes


def run(
    dirs: Dirs, machine_type: Any, batches: Sequence[Sequence[Command]], **options: Any
) -> tuple[str, list[Any]]:
    """Submit the batches through a JournaledEngine; return the final hash and all events."""
    pipeline, _ = JournaledEngine.open(*dirs, machine_type, clock=counting_clock(), **options)
    with pipeline:
        events = [e for batch in batches for e in pipeline.submit(batch)]
        return pipeline.engine.state_hash(), events


def ticks(n: int) -> list[list[Command]]:
    return [[Tick()] for _ in range(n)]


# ------------------------------------------------------------------------------ fake machine


def test_empty_directories_give_a_fresh_machine(tmp_path: Path) -> None:
    machine, report = recover(tmp_path / "j", tmp_path / "s", FakeMachine)
    assert machine.state_hash() == FakeMachine().state_hash()
    assert (report.snapshot_seq, report.records_replayed, report.last_seq) == (0, 0, 0)
    assert report.torn_tail is None and report.torn_bytes_dropped == 0


def test_snapshot_plus_tail_equals_full_replay(no_fsync: None, dirs: Dirs) -> None:
    live, _ = run(dirs, FakeMachine, ticks(23), snapshot_every=5, keep_snapshots=10)
    machine, report = recover(*dirs, FakeMachine)
    assert (report.snapshot_seq, report.records_replayed, report.last_seq) == (20, 3, 23)
    assert report.snapshot_path == dirs[1] / snapshot_name(20)
    full, full_report = recover(dirs[0], dirs[1].parent / "no-snapshots", FakeMachine)
    assert (full_report.snapshot_seq, full_report.records_replayed) == (0, 23)
    assert machine.state_hash() == full.state_hash() == live


def test_damaged_newest_snapshot_falls_back_to_an_older_one(no_fsync: None, dirs: Dirs) -> None:
    live, _ = run(dirs, FakeMachine, ticks(10), snapshot_every=4, keep_snapshots=10)
    newest = dirs[1] / snapshot_name(8)
    flip(newest, 50)
    machine, report = recover(*dirs, FakeMachine)
    assert (report.snapshot_seq, report.records_replayed) == (4, 6)
    assert [d.path for d in report.damaged_snapshots] == [newest]
    assert machine.state_hash() == live


def test_torn_tail_at_every_offset_recovers_the_acknowledged_prefix(
    no_fsync: None, tmp_path: Path
) -> None:
    base: Dirs = (tmp_path / "base" / "j", tmp_path / "base" / "s")
    run(base, FakeMachine, ticks(6), snapshot_every=4)
    hashes = hashes_after_each(FakeMachine, stamped([Tick()] * 6))
    last = frames(segments(base[0])[-1])[-1]
    for cut in range(last.start, last.end):
        root = tmp_path / f"cut{cut}"
        shutil.copytree(base[0].parent, root)
        truncate(segments(root / "j")[-1], cut)
        machine, report = recover(root / "j", root / "s", FakeMachine)
        assert machine.state_hash() == hashes[5]
        assert (report.snapshot_seq, report.records_replayed, report.last_seq) == (4, 1, 5)
        assert report.torn_bytes_dropped == cut - last.start
        if cut > last.start:
            [dropped] = report.dropped
            assert (dropped.start, dropped.end, dropped.torn) == (last.start, cut, True)
            assert "torn write" in dropped.describe()
        else:
            assert report.dropped == ()
        assert segments(root / "j")[-1].stat().st_size == last.start  # truncated on disk
        again, report = recover(root / "j", root / "s", FakeMachine)
        assert again.state_hash() == hashes[5] and report.torn_tail is None


def test_middle_corruption_stops_recovery(no_fsync: None, dirs: Dirs) -> None:
    run(dirs, FakeMachine, ticks(6))
    path = segments(dirs[0])[-1]
    third = frames(path)[2]
    flip(path, third.end - 1)
    size = path.stat().st_size
    with pytest.raises(JournalCorruptError) as info:
        recover(*dirs, FakeMachine)
    assert (info.value.path, info.value.offset) == (path, third.start)
    assert path.stat().st_size == size  # nothing truncated


@pytest.mark.parametrize("which", ["last", "middle"])
def test_bit_flip_in_a_committed_record_refuses_to_start(
    no_fsync: None, dirs: Dirs, which: str
) -> None:
    run(dirs, FakeMachine, ticks(6))
    path = segments(dirs[0])[-1]
    target = frames(path)[-1 if which == "last" else 2]
    flip(path, target.end - 1, 0x01)
    size = path.stat().st_size
    with pytest.raises(JournalCorruptError) as info:
        recover(*dirs, FakeMachine)
    assert (info.value.path, info.value.offset, info.value.seq) == (path, target.start, target.seq)
    assert path.stat().st_size == size  # nothing truncated
    with pytest.raises(JournalCorruptError):  # naming another place changes nothing
        recover(*dirs, FakeMachine, truncate_at=f"{path.name}:{target.start + 1}")
    assert path.stat().st_size == size


def test_operator_truncation_at_the_reported_place(no_fsync: None, dirs: Dirs) -> None:
    run(dirs, FakeMachine, ticks(6))
    hashes = hashes_after_each(FakeMachine, stamped([Tick()] * 6))
    path = segments(dirs[0])[-1]
    third = frames(path)[2]
    flip(path, third.end - 1, 0x01)
    size = path.stat().st_size
    with pytest.raises(JournalCorruptError) as info:
        recover(*dirs, FakeMachine)
    machine, report = recover(*dirs, FakeMachine, truncate_at=info.value.location)
    assert machine.state_hash() == hashes[2] and report.last_seq == 2
    [cut] = report.dropped
    assert (cut.path, cut.start, cut.end, cut.torn) == (path, third.start, size, False)
    assert cut.saved_to is not None and cut.saved_to.stat().st_size == cut.end - cut.start
    assert path.stat().st_size == third.start
    again, report = recover(*dirs, FakeMachine, truncate_at=info.value.location)
    assert again.state_hash() == hashes[2] and report.dropped == ()  # nothing more to cut


def test_journal_missing_what_the_snapshot_covers(no_fsync: None, dirs: Dirs) -> None:
    run(dirs, FakeMachine, ticks(5), snapshot_every=5)
    shutil.rmtree(dirs[0])
    with pytest.raises(RecoveryError, match="ahead of the journal"):
        recover(*dirs, FakeMachine)


def test_snapshot_whose_state_disagrees_with_its_header(no_fsync: None, dirs: Dirs) -> None:
    run(dirs, FakeMachine, ticks(5))
    machine, _ = recover(*dirs, FakeMachine)
    SnapshotStore(dirs[1]).write(4, 0, machine.snapshot())  # state of seq 5 named seq 4
    with pytest.raises(RecoveryError, match="last_seq 5"):
        recover(*dirs, FakeMachine)


def test_reopen_after_torn_tail_continues_the_sequence(no_fsync: None, dirs: Dirs) -> None:
    run(dirs, FakeMachine, ticks(4))
    path = segments(dirs[0])[-1]
    truncate(path, path.stat().st_size - 3)
    pipeline, report = JournaledEngine.open(*dirs, FakeMachine, clock=counting_clock(5_000))
    with pipeline:
        assert report.last_seq == 3 and report.torn_bytes_dropped > 0
        pipeline.submit([Halt(symbol="ACME")])
        live = pipeline.engine.state_hash()
    assert [r.seq for r in JournalReader(dirs[0])] == [1, 2, 3, 4]
    assert recover(*dirs, FakeMachine)[0].state_hash() == live


# ------------------------------------------------------------------------------ crash property


def check_crash(
    root: Path,
    machine_type: Any,
    batches: list[list[Command]],
    crash_batch: int,
    data: st.DataObject,
    snapshot_every: int,
    segment_bytes: int,
) -> None:
    """Run batches, crash while batch ``crash_batch`` is being written, recover, compare.

    The crash leaves on disk: every acknowledged batch, any prefix of the in-flight batch's
    bytes, and no snapshot taken after the acknowledged prefix. Recovery must give exactly the
    state after the complete records on disk (all acknowledged ones and possibly some of the
    in-flight batch, which nobody was told about).
    """
    dirs = (root / "journal", root / "snapshots")
    options: dict[str, Any] = {"snapshot_every": snapshot_every, "segment_bytes": segment_bytes}
    pipeline, _ = JournaledEngine.open(*dirs, machine_type, clock=counting_clock(), **options)
    with pipeline:
        for batch in batches[:crash_batch]:
            pipeline.submit(batch)
        acked_seq = pipeline.last_seq
        pipeline.submit(batches[crash_batch])
    last = segments(dirs[0])[-1]
    in_flight = [f for f in frames(last) if f.seq > acked_seq]
    assert len(in_flight) == len(batches[crash_batch])  # a batch never spans segments
    cut = data.draw(st.integers(in_flight[0].start, in_flight[-1].end), label="cut")
    truncate(last, cut)
    for seq, path in SnapshotStore(dirs[1]).paths():
        if seq > acked_seq:
            path.unlink()
    new_segment = last.name.endswith(f"{acked_seq + 1:020d}.log")
    if (
        in_flight[0].start == cut
        and new_segment
        and data.draw(st.booleans(), label="crash before the new segment existed")
    ):
        last.unlink()

    complete = [f for f in in_flight if f.end <= cut]
    expected_seq = acked_seq + len(complete)
    commands = [c for batch in batches[: crash_batch + 1] for c in batch]
    hashes = hashes_after_each(machine_type, stamped(commands))

    machine, report = recover(*dirs, machine_type)
    assert machine.state_hash() == hashes[expected_seq]
    assert report.last_seq == expected_seq
    valid_end = complete[-1].end if complete else in_flight[0].start
    assert report.torn_bytes_dropped == (cut - valid_end if last.exists() else 0)
    assert report.snapshot_seq <= acked_seq

    pipeline, report = JournaledEngine.open(*dirs, machine_type, **options)
    with pipeline:  # the recovered journal takes new commands after the recovered prefix
        assert report.torn_tail is None and pipeline.last_seq == expected_seq
        pipeline.submit([Tick()])
        resumed = pipeline.engine.state_hash()
    assert recover(*dirs, machine_type)[0].state_hash() == resumed


fake_command = st.one_of(
    st.builds(
        NewOrder,
        symbol=st.sampled_from(["ACME", "XYZ"]),
        member=st.sampled_from(["m1", "m2"]),
        cl_ord_id=st.text("abc", min_size=1, max_size=3),
        side=st.sampled_from(Side),
        qty=st.integers(1, 10**6),
        price=st.integers(1, 10**9),
    ),
    st.builds(
        CancelOrder, symbol=st.just("ACME"), member=st.just("m1"), order_id=st.integers(1, 50)
    ),
    st.just(Tick()),
    st.builds(Halt, symbol=st.sampled_from(["ACME", "XYZ"])),
)
crash_settings = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@crash_settings
@given(
    batches=st.lists(st.lists(fake_command, min_size=1, max_size=4), min_size=1, max_size=8),
    snapshot_every=st.sampled_from([0, 1, 3, 5]),
    segment_bytes=st.sampled_from([64, 300, 1 << 20]),
    data=st.data(),
)
def test_crash_anywhere_recovers_the_committed_prefix(
    tmp_path: Path,
    no_fsync: None,
    batches: list[list[Command]],
    snapshot_every: int,
    segment_bytes: int,
    data: st.DataObject,
) -> None:
    crash_batch = data.draw(st.integers(0, len(batches) - 1), label="crash batch")
    root = tmp_path / f"example{next(_example_ids)}"
    check_crash(root, FakeMachine, batches, crash_batch, data, snapshot_every, segment_bytes)


# ------------------------------------------------------------------------------ real engine


def limit(member: str, n: int, side: Side, qty: int, price: int) -> NewOrder:
    return NewOrder(
        symbol="ACME", member=member, cl_ord_id=f"{member}-{n}", side=side, qty=qty, price=price
    )


def crossing_batches() -> list[list[Command]]:
    return [
        [AddInstrument(symbol="ACME")],
        [limit("A", 1, Side.BUY, 10, 100), limit("A", 2, Side.BUY, 5, 101)],
        [limit("B", 1, Side.SELL, 7, 100)],  # crosses 101 then 100
        [limit("B", 2, Side.SELL, 20, 102), limit("C", 1, Side.BUY, 25, 103)],
        [CancelOrder(symbol="ACME", member="A", cl_ord_id="A-c1", orig_cl_ord_id="A-1")],
        [limit("C", 2, Side.SELL, 3, 99)],
    ]


def test_engine_snapshot_plus_tail_equals_full_replay(no_fsync: None, dirs: Dirs) -> None:
    live, events = run(dirs, Engine, crossing_batches(), snapshot_every=3, keep_snapshots=10)
    assert any(isinstance(e, Trade) for e in events)
    engine, report = recover(*dirs)  # the Engine is the default state machine
    assert isinstance(engine, Engine)
    assert report.snapshot_seq > 0 and report.records_replayed > 0
    full, full_report = recover(dirs[0], dirs[1].parent / "no-snapshots", Engine)
    assert full_report.records_replayed == report.last_seq == 8
    assert engine.state_hash() == full.state_hash() == live

    replayed, fresh = [], Engine()  # the journal reproduces the same events, byte for byte
    for record in JournalReader(dirs[0]):
        replayed.extend(fresh.apply(record.seq, record.ts, record.command))
    assert replayed == events


def test_engine_torn_tail_at_every_offset(no_fsync: None, tmp_path: Path) -> None:
    batches = crossing_batches()
    base = tmp_path / "base"
    run((base / "j", base / "s"), Engine, batches, snapshot_every=5)  # a snapshot at seq 6
    hashes = hashes_after_each(Engine, stamped([c for b in batches for c in b]))
    last = frames(segments(base / "j")[-1])[-1]
    for cut in range(last.start, last.end):
        root = tmp_path / f"cut{cut}"
        shutil.copytree(base, root)
        truncate(segments(root / "j")[-1], cut)
        engine, report = recover(root / "j", root / "s", Engine)
        assert engine.state_hash() == hashes[7] and report.last_seq == 7
        assert report.torn_bytes_dropped == cut - last.start


engine_command = st.one_of(
    st.builds(
        limit,
        member=st.sampled_from(["A", "B", "C"]),
        n=st.integers(1, 30),
        side=st.sampled_from(Side),
        qty=st.integers(1, 20),
        price=st.integers(95, 105),
    ),
    st.builds(
        CancelOrder,
        symbol=st.just("ACME"),
        member=st.sampled_from(["A", "B", "C"]),
        cl_ord_id=st.just("x"),
        order_id=st.integers(1, 30),
    ),
)


@crash_settings
@given(
    batches=st.lists(st.lists(engine_command, min_size=1, max_size=4), min_size=1, max_size=6),
    snapshot_every=st.sampled_from([0, 2, 5]),
    segment_bytes=st.sampled_from([64, 1 << 20]),
    data=st.data(),
)
def test_engine_crash_anywhere_recovers_the_committed_prefix(
    tmp_path: Path,
    no_fsync: None,
    batches: list[list[Command]],
    snapshot_every: int,
    segment_bytes: int,
    data: st.DataObject,
) -> None:
    batches = [[AddInstrument(symbol="ACME")], *batches]
    crash_batch = data.draw(st.integers(0, len(batches) - 1), label="crash batch")
    root = tmp_path / f"engine{next(_example_ids)}"
    check_crash(root, Engine, batches, crash_batch, data, snapshot_every, segment_bytes)
