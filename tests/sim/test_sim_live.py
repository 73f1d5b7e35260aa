"""The live runner against a real Venue: trading, restart with fresh participants, failures, and
the market coming back after an operator halts, kills and narrows."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from tradingfloor.exchange.engine import Engine
from tradingfloor.exchange.engine.commands import (
    AddInstrument,
    Command,
    Halt,
    Resume,
    SetKillSwitch,
    SetPriceBand,
    SetReferencePrice,
)
from tradingfloor.exchange.engine.events import Event, Rejected, Trade
from tradingfloor.exchange.engine.reasons import Reject
from tradingfloor.exchange.engine.types import Side
from tradingfloor.exchange.journal import JournalReader
from tradingfloor.exchange.sequencer import JournaledEngine
from tradingfloor.exchange.venue import Venue
from tradingfloor.sim.live import LiveSimulation
from tradingfloor.sim.market import MarketView
from tradingfloor.sim.market_maker import MarketMaker
from tradingfloor.sim.participant import NS_PER_S, Participant
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


async def test_commands_lost_in_a_failed_journal_batch_are_forgotten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aapl = AddInstrument(symbol="AAPL", reference_price=19_000, band_bps=1_000)
    crowd = build_participants([aapl], 2, CONFIG)
    venue = Venue.open(tmp_path)
    sim = LiveSimulation(venue, crowd, speed=SPEED)
    sim.attach()
    venue.replay_history()
    await venue.start(tick_interval=None)
    await venue.submit(aapl)
    sim.start()
    await asyncio.sleep(0.3)

    def broken(self: object, commands: object) -> object:
        raise OSError("disk full")

    monkeypatch.setattr(JournaledEngine, "submit_each", broken)
    for _ in range(200):
        if venue.failure is not None:
            break
        await asyncio.sleep(0.01)
    assert isinstance(venue.failure, OSError)
    await asyncio.sleep(0.1)
    await sim.stop()
    await venue.stop()
    assert sim.stats.failed > 0
    for p in crowd:  # no new order, replace or cancel waits for an answer that never comes
        assert all(o.order_id for o in p.open_orders("AAPL")), p.member
        assert not any(o.busy for o in p.live_orders()), p.member


# --- an operator at work: halt, kill switch, price band ---------------------------------------

SCENARIO_SPEED = 15.0
RECOVERY_S = 30  # simulated seconds for the market to come back after an operator action


class Watch:
    """The market as a venue listener sees it, continuous trades and kill-switch refusals."""

    def __init__(self) -> None:
        self.market = MarketView()
        self.trades = 0
        self.kill_rejects = 0

    def __call__(self, command: Command, events: Sequence[Event]) -> None:
        self.market.on_events(events)
        for e in events:
            if isinstance(e, Trade) and e.aggressor:
                self.trades += 1
            elif isinstance(e, Rejected) and e.code == Reject.KILL_SWITCH_ACTIVE:
                self.kill_rejects += 1


async def comes_back(
    sim: LiveSimulation, watch: Watch, after: str, *, quoting: Sequence[Participant] = ()
) -> None:
    """Wait until AAPL is two-sided inside its band, has traded again and every participant in
    ``quoting`` shows both sides; fail after ``RECOVERY_S`` simulated seconds."""
    view = watch.market.get("AAPL")
    assert view is not None
    trades = watch.trades
    deadline = sim.sim_now_ns() + RECOVERY_S * NS_PER_S
    while True:
        bid, ask = view.best_bid(), view.best_ask()
        book = view.tradable and 0 < bid < ask and view.in_band(bid) and view.in_band(ask)
        quotes = all(
            {o.side for o in p.live_orders() if view.in_band(o.price)} == {Side.BUY, Side.SELL}
            for p in quoting
        )
        if book and quotes and watch.trades > trades:
            return
        if sim.sim_now_ns() > deadline:
            pytest.fail(
                f"{RECOVERY_S} s after {after}: phase {view.phase}, bid {bid}, ask {ask}, band "
                f"{view.band_lo}..{view.band_hi}, {watch.trades - trades} trades, quoting {quotes}"
            )
        await asyncio.sleep(0.02)


async def test_the_market_comes_back_after_halt_kill_switch_and_band_changes(
    tmp_path: Path,
) -> None:
    aapl = AddInstrument(symbol="AAPL", reference_price=19_000, band_bps=1_000)
    crowd = build_participants([aapl], 4, CONFIG)
    makers = [p for p in crowd if isinstance(p, MarketMaker)]
    assert len(makers) == 2
    venue = Venue.open(tmp_path)
    watch = Watch()
    venue.add_listener(watch)
    sim = LiveSimulation(venue, crowd, speed=SCENARIO_SPEED)
    sim.attach()
    venue.replay_history()
    await venue.start(tick_interval=0.2)
    await venue.submit(aapl)
    sim.start()
    try:
        await comes_back(sim, watch, "the start", quoting=makers)

        await venue.submit(Halt(symbol="AAPL"))
        await asyncio.sleep(0.2)
        await venue.submit(Resume(symbol="AAPL"))
        await comes_back(sim, watch, "a halt and resume", quoting=makers)

        for mm in makers:
            await venue.submit(SetKillSwitch(member=mm.member, active=True))
        await asyncio.sleep(10 / SCENARIO_SPEED)  # ten simulated seconds: several turns
        assert all(mm.killed and not mm.live_orders() for mm in makers)
        # They sit out: at most the orders already on their way when the switch hit.
        assert watch.kill_rejects <= 2 * 2 * makers[0].params.levels
        for mm in makers:
            await venue.submit(SetKillSwitch(member=mm.member, active=False))
        await comes_back(sim, watch, "the kill switches' release", quoting=makers)

        await venue.submit(SetPriceBand(symbol="AAPL", band_bps=10))
        await comes_back(sim, watch, "a narrower band", quoting=makers)

        view = watch.market.get("AAPL")
        assert view is not None
        await venue.submit(SetReferencePrice(symbol="AAPL", price=view.anchor_price() + 150))
        await comes_back(sim, watch, "a band moved up, away from the last trade", quoting=makers)
        assert sim.crowd.errors == 0
    finally:
        await sim.stop()
        await venue.stop()
