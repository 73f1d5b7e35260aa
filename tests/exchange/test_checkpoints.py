"""Projection checkpoints: the venue restarts its projections from the newest usable checkpoint
and replays only the journal after it, with the same result as a full replay."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradingfloor.exchange.checkpoint import (
    CheckpointError,
    CheckpointRestoreError,
    ProjectionCheckpoints,
    decode_checkpoint,
    encode_checkpoint,
)
from tradingfloor.exchange.engine.commands import AddInstrument, Command, NewOrder
from tradingfloor.exchange.engine.engine import Engine
from tradingfloor.exchange.engine.events import Event, Trade
from tradingfloor.exchange.engine.types import Side
from tradingfloor.exchange.identity import VenueIdentity, load_or_create_identity
from tradingfloor.exchange.sequencer import JournaledEngine
from tradingfloor.exchange.snapshot import SnapshotStore, encode_snapshot, read_snapshot
from tradingfloor.exchange.venue import Venue, VenueError


class Tape:
    """A checkpointed projection: event count, traded volume and a hash chain over events."""

    def __init__(self, name: str = "tape/1") -> None:
        self.name = name
        self.events = 0
        self.volume = 0
        self.chain = ""
        self.seen_seqs: list[int] = []  # not state: what this instance was fed
        self.refuse = False

    @property
    def checkpoint_name(self) -> str:
        return self.name

    def __call__(self, command: Command, events: Sequence[Event]) -> None:
        for event in events:
            self.seen_seqs.append(event.seq)
            self.events += 1
            link = self.chain.encode() + msgspec.msgpack.encode(event)
            self.chain = hashlib.sha256(link).hexdigest()
            if isinstance(event, Trade):
                self.volume += event.qty

    def state(self) -> tuple[int, int, str]:
        return self.events, self.volume, self.chain

    def checkpoint(self) -> bytes:
        return msgspec.msgpack.encode([self.events, self.volume, self.chain])

    def restore_checkpoint(self, data: bytes) -> None:
        if self.refuse:
            raise CheckpointError("refused")
        try:
            state = msgspec.msgpack.decode(data, type=tuple[int, int, str])
        except msgspec.DecodeError as exc:
            raise CheckpointError(str(exc)) from None
        self.events, self.volume, self.chain = state


def order(i: int) -> NewOrder:
    side = Side.BUY if i % 3 else Side.SELL
    return NewOrder(
        symbol="AAPL", member="M1", cl_ord_id=f"o{i}", side=side, qty=10 + i % 7, price=100 + i % 5
    )


async def run(tmp_path: Path, commands: int, *, snapshot_every: int = 10) -> Tape:
    """A venue with a Tape projection that takes ``commands`` orders; returns the tape."""
    venue = Venue.open(tmp_path, snapshot_every=snapshot_every)
    tape = Tape()
    venue.add_listener(tape, state=tape)
    venue.replay_history()
    await venue.start(tick_interval=None)
    if venue.last_seq == 0:
        await venue.submit(AddInstrument(symbol="AAPL"))
    start = venue.last_seq
    for i in range(start, start + commands):
        await venue.submit(order(i))
    await venue.stop()
    return tape


@pytest.fixture
def no_stop_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stops leave the state as a crash would: no snapshot or checkpoint at stop."""
    monkeypatch.setattr(Venue, "_snapshot_at_stop", lambda _self: None)


def restart(tmp_path: Path, **replay: object) -> tuple[Venue, Tape]:
    venue = Venue.open(tmp_path, snapshot_every=10)
    tape = Tape()
    venue.add_listener(tape, state=tape)
    venue.replay_history(**replay)  # type: ignore[arg-type]
    return venue, tape


async def test_a_clean_stop_checkpoints_so_the_next_start_replays_nothing(
    tmp_path: Path,
) -> None:
    await run(tmp_path, 34)  # 35 commands: periodic snapshots at 10, 20, 30, one at the stop
    venue, tape = restart(tmp_path)
    assert venue.replay_start_seq == 35
    assert tape.seen_seqs == []
    assert venue.recovery is not None and venue.recovery.records_replayed == 0
    await venue.stop()
    full_venue, full = restart(tmp_path, full=True)
    assert tape.state() == full.state()
    await full_venue.stop()


async def test_a_failed_venue_takes_no_snapshot_at_stop(tmp_path: Path) -> None:
    venue = Venue.open(tmp_path, snapshot_every=10)
    tape = Tape()
    venue.add_listener(tape, state=tape)
    venue.replay_history()
    await venue.start(tick_interval=None)
    await venue.submit(AddInstrument(symbol="AAPL"))
    venue.fail(OSError(5, "I/O error"))
    await venue.stop()
    assert not list((tmp_path / "snapshots").glob("*.bin"))


async def test_restart_replays_only_after_the_newest_checkpoint(
    tmp_path: Path, no_stop_snapshot: None
) -> None:
    await run(tmp_path, 34)  # 35 commands, snapshots and checkpoints at 10, 20, 30
    venue, tape = restart(tmp_path)
    assert venue.replay_start_seq == 30
    assert tape.seen_seqs and tape.seen_seqs[0] > 0
    assert venue.stats.commands == 0
    await venue.stop()
    full_venue, full = restart(tmp_path, full=True)
    assert full_venue.replay_start_seq == 0
    assert tape.state() == full.state()
    assert tape.seen_seqs == full.seen_seqs[-len(tape.seen_seqs) :]
    await full_venue.stop()


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 60), st.integers(1, 25))
async def test_checkpointed_restart_equals_uninterrupted_run(first: int, second: int) -> None:
    """Property: run, restart from the checkpoint, run on == the same commands without a
    restart (counts: timestamps differ between runs); on one journal, a restart from the
    checkpoint and a full replay give the same state (hash chain included)."""
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
        await run(Path(one), first)
        resumed = await run(Path(one), second)
        straight = await run(Path(two), first + second)
        assert resumed.state()[:2] == straight.state()[:2]
        venue, tape = restart(Path(one))
        await venue.stop()
        full_venue, full = restart(Path(one), full=True)
        await full_venue.stop()
        assert tape.state() == full.state() == resumed.state()


async def test_no_checkpoint_is_taken_or_used_while_a_listener_needs_history(
    tmp_path: Path,
) -> None:
    venue = Venue.open(tmp_path, snapshot_every=5)
    tape = Tape()
    venue.add_listener(tape, state=tape)
    venue.add_listener(lambda _c, _e: None)  # no state, not after_mark: needs everything
    venue.replay_history()
    await venue.start(tick_interval=None)
    await venue.submit(AddInstrument(symbol="AAPL"))
    for i in range(12):
        await venue.submit(order(i))
    await venue.stop()
    assert venue.stats.checkpoints == 0
    assert not list((tmp_path / "checkpoints").glob("*.bin"))


async def test_after_mark_listeners_allow_checkpoints(
    tmp_path: Path, no_stop_snapshot: None
) -> None:
    venue = Venue.open(tmp_path, snapshot_every=5)
    tape = Tape()
    venue.add_listener(tape, state=tape)
    venue.add_listener(lambda _c, _e: None, after_mark=True)
    venue.replay_history()
    await venue.start(tick_interval=None)
    await venue.submit(AddInstrument(symbol="AAPL"))
    for i in range(12):
        await venue.submit(order(i))
    await venue.stop()
    assert venue.stats.checkpoints == 2  # after the snapshots at 5 and 10
    assert venue.checkpoints is not None and venue.checkpoints.written == 2


async def test_a_checkpoint_past_a_consumers_mark_is_passed_over(
    tmp_path: Path, no_stop_snapshot: None
) -> None:
    await run(tmp_path, 34)
    body = decode_checkpoint(read_snapshot(tmp_path / "checkpoints" / _name(30)).data)
    older = decode_checkpoint(read_snapshot(tmp_path / "checkpoints" / _name(20)).data)
    venue, _tape = restart(tmp_path, horizon_event_seq=body.event_seq - 1)
    assert venue.replay_start_seq == 20
    assert older.event_seq <= body.event_seq - 1
    assert venue.checkpoints is not None
    assert any("past a consumer's mark" in note for note in venue.checkpoints.notes)
    await venue.stop()


async def test_damaged_checkpoint_or_missing_engine_snapshot_falls_back(
    tmp_path: Path, no_stop_snapshot: None
) -> None:
    await run(tmp_path, 34)
    newest = tmp_path / "checkpoints" / _name(30)
    data = bytearray(newest.read_bytes())
    data[-1] ^= 0x01
    newest.write_bytes(bytes(data))
    (tmp_path / "snapshots" / _name(20)).unlink()
    venue, tape = restart(tmp_path)
    assert venue.replay_start_seq == 10
    assert venue.checkpoints is not None
    notes = " | ".join(venue.checkpoints.notes)
    assert "CRC mismatch" in notes and "engine snapshot of seq 20" in notes
    await venue.stop()
    full_venue, full = restart(tmp_path, full=True)
    assert tape.state() == full.state()
    await full_venue.stop()


async def test_a_checkpoint_without_every_projection_is_not_used(tmp_path: Path) -> None:
    await run(tmp_path, 14)
    venue = Venue.open(tmp_path, snapshot_every=10)
    tape, other = Tape(), Tape("other/1")
    venue.add_listener(tape, state=tape)
    venue.add_listener(other, state=other)
    venue.replay_history()
    assert venue.replay_start_seq == 0
    assert venue.checkpoints is not None
    assert any("no part for other/1" in note for note in venue.checkpoints.notes)
    assert tape.events == other.events > 0
    await venue.stop()


async def test_first_projection_refusing_its_part_falls_back_to_an_older_one(
    tmp_path: Path,
) -> None:
    await run(tmp_path, 14)
    venue = Venue.open(tmp_path, snapshot_every=10)
    tape = Tape()
    tape.refuse = True
    venue.add_listener(tape, state=tape)
    venue.replay_history()
    assert venue.replay_start_seq == 0  # the only checkpoint was refused: full replay
    assert tape.events > 0
    await venue.stop()


async def test_a_later_projection_refusing_its_part_stops_start_up(tmp_path: Path) -> None:
    venue = Venue.open(tmp_path, snapshot_every=10)
    first, second = Tape("a/1"), Tape("b/1")
    venue.add_listener(first, state=first)
    venue.add_listener(second, state=second)
    venue.replay_history()
    await venue.start(tick_interval=None)
    await venue.submit(AddInstrument(symbol="AAPL"))
    for i in range(12):
        await venue.submit(order(i))
    await venue.stop()
    venue = Venue.open(tmp_path, snapshot_every=10)
    first, second = Tape("a/1"), Tape("b/1")
    second.refuse = True
    venue.add_listener(first, state=first)
    venue.add_listener(second, state=second)
    with pytest.raises(CheckpointRestoreError, match="full replay"):
        venue.replay_history()
    await venue.stop()


async def test_an_engine_snapshot_of_another_seq_is_not_used(
    tmp_path: Path, no_stop_snapshot: None
) -> None:
    await run(tmp_path, 24)
    snaps = tmp_path / "snapshots"
    other = read_snapshot(snaps / _name(10))
    (snaps / _name(20)).write_bytes(encode_snapshot(20, other.ts, other.data))
    checkpoints = ProjectionCheckpoints(tmp_path / "checkpoints", snaps)
    tape = Tape()
    checkpoints.register(tape)
    restored = checkpoints.restore(Engine)
    assert restored is not None and restored.seq == 10
    assert any("restores to seq 10" in note for note in checkpoints.notes)


def test_checkpoint_body_round_trip_and_refusals() -> None:
    body = encode_checkpoint(7, 19, {"b/1": b"\x01", "a/1": b""})
    decoded = decode_checkpoint(body)
    assert (decoded.seq, decoded.event_seq, list(decoded.parts)) == (7, 19, ["a/1", "b/1"])
    assert encode_checkpoint(7, 19, {"a/1": b"", "b/1": b"\x01"}) == body  # canonical order
    future = {"version": 2, "seq": 7, "event_seq": 19, "parts": {}}
    for bad in (b"", b"\x93\x01", body[:-1], msgspec.msgpack.encode(future)):
        with pytest.raises(CheckpointError):
            decode_checkpoint(bad)
    negative = {"version": 1, "seq": -1, "event_seq": 0, "parts": {}}
    with pytest.raises(CheckpointError, match="negative"):
        decode_checkpoint(msgspec.msgpack.encode(negative))


def test_a_state_needs_a_venue_that_keeps_checkpoints(tmp_path: Path) -> None:
    pipeline, _report = JournaledEngine.open(tmp_path / "journal", tmp_path / "snapshots")
    venue = Venue(pipeline, tmp_path / "journal", _identity(tmp_path))
    tape = Tape()
    with pytest.raises(VenueError, match="no projection checkpoints"):
        venue.add_listener(tape, state=tape)
    pipeline.close()


def _identity(tmp_path: Path) -> VenueIdentity:
    return load_or_create_identity(tmp_path / "journal", last_seq=0, now_ns=1)


def _name(seq: int) -> str:
    return f"snapshot-{seq:020d}.bin"


async def test_a_failed_checkpoint_write_is_counted_and_matching_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_stop_snapshot: None
) -> None:
    real_write = SnapshotStore.write

    def write(store: SnapshotStore, seq: int, ts: int, data: bytes) -> Path:
        if store.directory.name == "checkpoints" and seq == 10:
            raise OSError(28, "No space left on device")
        return real_write(store, seq, ts, data)

    monkeypatch.setattr(SnapshotStore, "write", write)
    tape = await run(tmp_path, 24)
    assert tape.events > 0
    venue, _tape = restart(tmp_path)
    assert venue.replay_start_seq == 20  # the one after the failure was written
    assert [p.name for p in (tmp_path / "checkpoints").glob("*.bin")] == [_name(20)]
    await venue.stop()


async def test_a_projection_that_cannot_checkpoint_does_not_stop_the_venue(
    tmp_path: Path,
) -> None:
    class Broken(Tape):
        def checkpoint(self) -> bytes:
            raise RuntimeError("a bug in a projection")

    venue = Venue.open(tmp_path, snapshot_every=5)
    broken = Broken()
    venue.add_listener(broken, state=broken)
    venue.replay_history()
    await venue.start(tick_interval=None)
    await venue.submit(AddInstrument(symbol="AAPL"))
    for i in range(12):
        await venue.submit(order(i))  # past two snapshots: still acknowledged
    assert venue.running and venue.checkpoints is not None
    assert venue.checkpoints.failures >= 2 and venue.stats.checkpoints == 0
    await venue.stop()


async def test_a_projection_failing_its_restore_stops_start_up_with_advice(
    tmp_path: Path, no_stop_snapshot: None
) -> None:
    await run(tmp_path, 14)  # a checkpoint at 10

    class Faulty(Tape):
        def restore_checkpoint(self, data: bytes) -> None:
            self.events = 1  # half restored, then a defect
            raise KeyError("volume")

    venue = Venue.open(tmp_path, snapshot_every=10)
    faulty = Faulty()
    venue.add_listener(faulty, state=faulty)
    with pytest.raises(CheckpointRestoreError, match="full replay"):
        venue.replay_history()
    await venue.stop()
