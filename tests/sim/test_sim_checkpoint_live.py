"""The live runner as the venue's checkpointed projection ``"sim"``: after trading on a real
``Venue``, a restart restores the participants from the newest checkpoint and replays only the
journal after it, and they equal participants rebuilt by a full replay; trading then goes on."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from tradingfloor.exchange.checkpoint import Checkpointed
from tradingfloor.exchange.engine.commands import AddInstrument, Command
from tradingfloor.exchange.engine.events import Event, Rejected
from tradingfloor.exchange.engine.reasons import Reject
from tradingfloor.exchange.venue import Venue
from tradingfloor.sim.live import LiveSimulation
from tradingfloor.sim.population import build_participants

from .checkpoint_helpers import CONFIG, SCHEDULING, first_difference, state_of

SPEED = 30.0
SNAPSHOT_EVERY = 150
AAPL = AddInstrument(symbol="AAPL", reference_price=19_000, band_bps=1_000)
XYZ = AddInstrument(symbol="XYZ", reference_price=4_321, band_bps=500, lot_size=10)
LISTED = (AAPL, XYZ)


@pytest.fixture(autouse=True)
def no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Durability is not the point here: skip the disk flushes."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


def opened(data: Path, seed: int = 1) -> tuple[Venue, LiveSimulation]:
    venue = Venue.open(data, snapshot_every=SNAPSHOT_EVERY)
    sim = LiveSimulation(venue, build_participants(LISTED, seed, CONFIG), speed=SPEED)
    sim.attach()
    return venue, sim


async def trade(data: Path, seconds: float) -> tuple[int, LiveSimulation]:
    """Open, replay, trade for ``seconds``, stop; the number of commands replayed at start."""
    venue, sim = opened(data)
    replayed = venue.replay_history()
    missing = venue.missing_instruments(LISTED)
    await venue.start(tick_interval=0.2)
    for instrument in missing:
        await venue.submit(instrument)
    sim.start()
    await asyncio.sleep(seconds)
    await sim.stop()
    await venue.stop()
    assert sim.crowd.errors == 0
    return replayed, sim


async def restored_and_full(data: Path) -> tuple[Venue, LiveSimulation, Venue, LiveSimulation]:
    """The participants of a start from the newest checkpoint, and of a full replay."""
    venue, sim = opened(data)
    venue.replay_history()
    await venue.stop()
    full_venue, full = opened(data)
    full_venue.replay_history(full=True)
    await full_venue.stop()
    return venue, sim, full_venue, full


def assert_same(one: LiveSimulation, two: LiveSimulation) -> None:
    difference = first_difference(state_of(one.crowd, SCHEDULING), state_of(two.crowd, SCHEDULING))
    assert difference is None, difference
    one.crowd.begin(1)
    two.crowd.begin(1)
    difference = first_difference(state_of(one.crowd), state_of(two.crowd))
    assert difference is None, difference


def test_the_runner_is_a_checkpointed_projection_named_by_version_and_crowd(
    tmp_path: Path,
) -> None:
    venue, sim = opened(tmp_path)
    state: Checkpointed = sim
    assert venue.checkpoints is not None
    name = state.checkpoint_name
    assert name.startswith("sim/1/")
    other_seed = LiveSimulation(venue, build_participants(LISTED, 9, CONFIG))
    assert other_seed.checkpoint_name == name  # the seed changes no learned state
    other_crowd = LiveSimulation(venue, build_participants(LISTED[:1], 1, CONFIG))
    assert other_crowd.checkpoint_name != name


class Counter:
    """Another checkpointed projection, registered (and restored) before the participants."""

    checkpoint_name = "counter/1"

    def __init__(self) -> None:
        self.commands = 0

    def __call__(self, _command: Command, _events: Sequence[Event]) -> None:
        self.commands += 1

    def checkpoint(self) -> bytes:
        return str(self.commands).encode()

    def restore_checkpoint(self, data: bytes) -> None:
        self.commands = int(data)


async def test_a_restart_with_another_crowd_replays_the_whole_journal(tmp_path: Path) -> None:
    """A checkpoint of another crowd has no part for this one: it is passed over (a full
    replay), never refused after another projection restored its part (start-up would stop)."""
    venue = Venue.open(tmp_path, snapshot_every=SNAPSHOT_EVERY)
    counter = Counter()
    venue.add_listener(counter, state=counter)
    sim = LiveSimulation(venue, build_participants(LISTED, 1, CONFIG), speed=SPEED)
    sim.attach()
    venue.replay_history()
    await venue.start(tick_interval=None)
    for instrument in LISTED:
        await venue.submit(instrument)
    sim.start()
    await asyncio.sleep(0.5)
    await sim.stop()
    await venue.stop()

    venue = Venue.open(tmp_path, snapshot_every=SNAPSHOT_EVERY)
    counter = Counter()
    venue.add_listener(counter, state=counter)
    sim = LiveSimulation(venue, build_participants(LISTED[:1], 1, CONFIG), speed=SPEED)
    sim.attach()
    venue.replay_history()
    await venue.stop()
    assert venue.replay_start_seq == 0
    assert counter.commands == venue.last_seq
    assert venue.checkpoints is not None and venue.checkpoints.notes
    assert sum(len(p.live_orders()) for p in sim.participants) > 0


async def test_a_crash_restart_replays_the_tail_only_and_equals_a_full_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stops leave the state as a crash would: only the periodic checkpoints, taken while the
    # participants trade (with commands of theirs on the way).
    monkeypatch.setattr(Venue, "_snapshot_at_stop", lambda _self: None)
    _replayed, first = await trade(tmp_path, 1.5)
    assert first.stats.commands_sent > 2 * SNAPSHOT_EVERY
    venue, sim, full_venue, full = await restored_and_full(tmp_path)
    assert 0 < venue.replay_start_seq < full_venue.last_seq
    assert full_venue.replay_start_seq == 0
    assert sum(len(p.live_orders()) for p in sim.participants) > 5
    assert_same(sim, full)


async def test_a_clean_stop_restarts_without_replay_and_trading_goes_on(tmp_path: Path) -> None:
    _replayed, first = await trade(tmp_path, 1.0)
    venue, sim, _full_venue, full = await restored_and_full(tmp_path)
    assert venue.replay_start_seq == venue.last_seq  # nothing replayed
    assert_same(sim, full)
    old = {p.member: p for p in first.participants}
    for p in sim.participants:
        assert p.position == old[p.member].position, p.member
        assert p.last_cl_ord_number <= old[p.member].last_cl_ord_number, p.member

    before = venue.last_seq
    replayed, second = await trade(tmp_path, 1.0)
    assert replayed == 0
    assert second.stats.commands_sent > 50
    check, _sim = opened(tmp_path)
    rejects = [0]

    def count(_command: Command, events: Sequence[Event]) -> None:
        rejects[0] += sum(
            isinstance(e, Rejected) and e.code == Reject.DUPLICATE_CL_ORD_ID for e in events
        )

    check.add_listener(count)  # needs the whole journal: a full replay
    check.replay_history()
    await check.stop()
    assert check.last_seq > before
    assert rejects[0] == 0
