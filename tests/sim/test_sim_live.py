"""The live runner against a real Venue: trading, restart with fresh participants, failures."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from tradingfloor.exchange.engine import Engine
from tradingfloor.exchange.engine.commands import AddInstrument, Command
from tradingfloor.exchange.engine.events import Event, Rejected, Trade
from tradingfloor.exchange.engine.reasons import Reject
from tradingfloor.exchange.journal import JournalReader
from tradingfloor.exchange.venue import Venue
from tradingfloor.sim.live import LiveSimulation
from tradingfloor.sim.market import MarketView
from tradingfloor.sim.participant import Participant
from tradingfloor.sim.population import CrowdConfig, build_participants
from tradingfloor.sim.simulator import default_instruments

SPEED = 30.0  # simulated seconds per wall second
CONFIG = CrowdConfig(vwap_horizon_ns=60 * 1_000_000_000)


@pytest.fixture(autouse=True)
def no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Durability is not the point here: skip the disk flushes."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Command, list[Event]]] = []

    def __call__(self, command: Command, events: Sequence[Event]) -> None:
        self.calls.append((command, list(events)))

    def events(self) -> list[Event]:
        return [e for _c, evs in self.calls for e in evs]


async def session(
    data: Path, participants: Sequence[Participant], seconds: float, rec: Recorder
) -> LiveSimulation:
    """Open the venue as the demo does, let the participants trade for ``seconds``, stop."""
    instruments = default_instruments()
    venue = Venue.open(data)
    venue.add_listener(rec)
    sim = LiveSimulation(venue, participants, speed=SPEED)
    sim.attach()
    venue.replay_history()
    missing = venue.missing_instruments(instruments)
    await venue.start(tick_interval=0.2)
    for instrument in missing:
        await venue.submit(instrument)
    sim.start()
    await asyncio.sleep(seconds)
    await sim.stop()
    assert not sim.running
    await venue.stop()
    return sim


def resting_orders(data: Path) -> dict[str, set[int]]:
    """Displayed resting orders per member, from an independent replay of the journal."""
    engine = Engine()
    for record in JournalReader(data / "journal"):
        engine.apply(record.seq, record.ts, record.command)
    out: dict[str, set[int]] = {}
    for symbol in engine.instruments:
        bids, asks = engine.l3(symbol)
        for _price, _qty, order_id, member in bids + asks:
            out.setdefault(member, set()).add(order_id)
    return out


async def test_trades_live_and_continues_after_a_restart(tmp_path: Path) -> None:
    first_rec = Recorder()
    first = await session(
        tmp_path, build_participants(default_instruments(), 1, CONFIG), 1.5, first_rec
    )
    assert first.stats.commands_sent > 100 and first.crowd.errors == 0
    assert sum(isinstance(e, Trade) for e in first_rec.events()) > 10
    summary = first.summary()
    assert summary.trades > 0 and summary.commands > 0

    # Restart: fresh participants (same seed, so the same random draws) learn from history.
    fresh = build_participants(default_instruments(), 1, CONFIG)
    replay_rec = Recorder()
    venue = Venue.open(tmp_path)
    venue.add_listener(replay_rec)
    sim = LiveSimulation(venue, fresh, speed=SPEED)
    sim.attach()
    venue.replay_history()
    await venue.stop()
    resting = resting_orders(tmp_path)
    assert sum(len(p.live_orders()) for p in fresh) > 10
    old = {p.member: p for p in first.participants}
    for p in fresh:
        assert {o.order_id for o in p.live_orders()} == resting.get(p.member, set()), p.member
        assert p.last_cl_ord_number == old[p.member].last_cl_ord_number, p.member
        assert p.position == old[p.member].position

    second_rec = Recorder()
    second = await session(
        tmp_path, build_participants(default_instruments(), 1, CONFIG), 1.0, second_rec
    )
    assert second.stats.commands_sent > 50
    new_calls = second_rec.calls[len(first_rec.calls) :]  # the replay repeats the first run
    duplicates = [
        e
        for _c, evs in new_calls
        for e in evs
        if isinstance(e, Rejected) and e.code == Reject.DUPLICATE_CL_ORD_ID
    ]
    assert duplicates == []
    assert any(isinstance(e, Trade) for _c, evs in new_calls for e in evs)


class Broken(Participant):
    """Raises in every turn and on every event of its own."""

    kind = "broken"

    def decide(self, now_ns: int, market: MarketView, out: list[Command]) -> None:
        raise RuntimeError("participant bug")


async def test_a_failing_participant_or_a_busy_venue_stops_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aapl = AddInstrument(symbol="AAPL", reference_price=19_000, band_bps=1_000)
    crowd = [*build_participants([aapl], 2, CONFIG), Broken("SIM-BROKEN", seed=2)]
    venue = Venue.open(tmp_path)
    rec = Recorder()
    venue.add_listener(rec)
    sim = LiveSimulation(venue, crowd, speed=SPEED)
    sim.attach()
    venue.replay_history()
    await venue.start(tick_interval=None)
    await venue.submit(aapl)
    monkeypatch.setattr("tradingfloor.exchange.venue.MAX_QUEUED_COMMANDS", 2)
    sim.start()
    await asyncio.sleep(0.8)
    assert sim.running and venue.running
    await sim.stop()
    await venue.stop()
    assert sim.crowd.errors > 0  # the broken participant was logged and skipped
    assert sim.stats.refused > 0  # market makers send more than two commands per turn
    assert any(isinstance(e, Trade) for e in rec.events())
    for p in crowd:
        assert all(o.order_id for o in p.open_orders("AAPL")), p.member  # nothing left pending
