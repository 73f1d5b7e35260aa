"""The running venue: batching, durable acknowledgement, listeners in order, history replay."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from tradingfloor.exchange.engine.commands import AddInstrument, Command, NewOrder
from tradingfloor.exchange.engine.events import Accepted, Event, Trade
from tradingfloor.exchange.engine.types import Side
from tradingfloor.exchange.journal import JournalReader
from tradingfloor.exchange.venue import (
    MAX_BATCH,
    Venue,
    VenueBusyError,
    VenueClosedError,
    VenueError,
)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Command, list[Event]]] = []

    def __call__(self, command: Command, events: Sequence[Event]) -> None:
        self.calls.append((command, list(events)))

    def event_seqs(self) -> list[int]:
        return [e.seq for _c, evs in self.calls for e in evs]


def order(cl: str, side: Side, price: int, qty: int = 10, member: str = "M1") -> NewOrder:
    return NewOrder(symbol="AAPL", member=member, cl_ord_id=cl, side=side, qty=qty, price=price)


async def start(tmp_path: Path, rec: Recorder) -> Venue:
    venue = Venue.open(tmp_path)
    venue.add_listener(rec)
    venue.replay_history()
    await venue.start(tick_interval=None)
    return venue


async def test_submit_returns_events_after_the_journal_has_them(tmp_path: Path) -> None:
    rec = Recorder()
    venue = await start(tmp_path, rec)
    events = await venue.submit(AddInstrument(symbol="AAPL"))
    assert events[0].symbol == "AAPL"  # type: ignore[union-attr]
    events = await venue.submit(order("a", Side.BUY, 100))
    assert isinstance(events[0], Accepted)
    # Durable before acknowledged: the journal already holds both commands.
    assert [r.seq for r in JournalReader(tmp_path / "journal")] == [1, 2]
    await venue.stop()


async def test_many_concurrent_commands_are_batched_and_seen_in_order(tmp_path: Path) -> None:
    rec = Recorder()
    venue = await start(tmp_path, rec)
    await venue.submit(AddInstrument(symbol="AAPL"))
    futures = [
        venue.submit_nowait(order(f"o{i}", Side.BUY if i % 2 else Side.SELL, 100))
        for i in range(3 * MAX_BATCH + 7)
    ]
    results = await asyncio.gather(*futures)
    assert sum(isinstance(e, Trade) for evs in results for e in evs) == (3 * MAX_BATCH + 7) // 2
    seqs = rec.event_seqs()
    assert seqs == list(range(1, len(seqs) + 1))  # every event once, gapless, in order
    sent = [c.cl_ord_id for c, _e in rec.calls[1:] if isinstance(c, NewOrder)]
    assert sent == [f"o{i}" for i in range(3 * MAX_BATCH + 7)]  # sequenced in call order
    assert venue.stats.batches < venue.stats.commands  # group commit happened
    await venue.stop()


async def test_restart_replays_history_into_listeners(tmp_path: Path) -> None:
    rec = Recorder()
    venue = await start(tmp_path, rec)
    await venue.submit(AddInstrument(symbol="AAPL"))
    for i in range(20):
        await venue.submit(order(f"o{i}", Side.BUY if i % 3 else Side.SELL, 100 + i % 4))
    await venue.stop()

    again = Recorder()
    venue2 = Venue.open(tmp_path)
    venue2.add_listener(again)
    assert venue2.replay_history() == 21
    assert again.calls == rec.calls  # byte-identical events, same commands
    await venue2.start(tick_interval=None)
    events = await venue2.submit(order("after", Side.SELL, 1))
    assert events[0].seq == rec.calls[-1][1][-1].seq + 1
    await venue2.stop()


async def test_snapshot_and_replay_agree(tmp_path: Path) -> None:
    venue = Venue.open(tmp_path, snapshot_every=5)
    venue.replay_history()
    await venue.start(tick_interval=None)
    await venue.submit(AddInstrument(symbol="AAPL"))
    for i in range(12):
        await venue.submit(order(f"o{i}", Side.BUY, 100 + i))
    await venue.stop()
    venue2 = Venue.open(tmp_path, snapshot_every=5)
    assert venue2.recovery is not None and venue2.recovery.snapshot_seq > 0
    assert venue2.replay_history() == 13  # a fresh engine over the whole journal agrees
    await venue2.stop()


async def test_missing_instruments_are_those_not_listed(tmp_path: Path) -> None:
    venue = await start(tmp_path, Recorder())
    await venue.submit(AddInstrument(symbol="AAPL"))
    await venue.stop()
    venue2 = Venue.open(tmp_path)
    wanted = [AddInstrument(symbol="AAPL"), AddInstrument(symbol="MSFT")]
    assert [i.symbol for i in venue2.missing_instruments(wanted)] == ["MSFT"]
    await venue2.stop()


async def test_closed_and_busy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    venue = Venue.open(tmp_path)
    with pytest.raises(VenueClosedError):
        venue.submit_nowait(AddInstrument(symbol="AAPL"))
    await venue.start(tick_interval=None)
    monkeypatch.setattr("tradingfloor.exchange.venue.MAX_QUEUED_COMMANDS", 2)
    f1 = venue.submit_nowait(AddInstrument(symbol="AAPL"))
    f2 = venue.submit_nowait(AddInstrument(symbol="MSFT"))
    with pytest.raises(VenueBusyError):
        venue.submit_nowait(AddInstrument(symbol="GOOG"))
    await asyncio.gather(f1, f2)
    await venue.stop()
    with pytest.raises(VenueClosedError):
        venue.submit_nowait(AddInstrument(symbol="GOOG"))


async def test_a_failing_listener_does_not_stop_the_venue(tmp_path: Path) -> None:
    rec = Recorder()

    def broken(command: Command, events: Sequence[Event]) -> None:
        raise RuntimeError("boom")

    venue = Venue.open(tmp_path)
    venue.add_listener(broken)
    venue.add_listener(rec)
    venue.replay_history()
    await venue.start(tick_interval=None)
    await venue.submit(AddInstrument(symbol="AAPL"))
    assert len(rec.calls) == 1 and venue.stats.listener_errors == 1
    await venue.stop()


async def test_timer_ticks_are_journaled_when_idle(tmp_path: Path) -> None:
    venue = Venue.open(tmp_path)
    venue.replay_history()
    await venue.start(tick_interval=0.01)
    await asyncio.sleep(0.1)
    await venue.stop()
    assert venue.last_seq >= 2


async def test_a_failed_journal_batch_stops_the_venue(tmp_path: Path) -> None:
    venue = await start(tmp_path, Recorder())
    await venue.submit(AddInstrument(symbol="AAPL"))

    def broken(commands: object) -> object:
        raise OSError(28, "No space left on device")

    venue._pipeline.submit_each = broken  # type: ignore[method-assign,assignment]
    waiter = asyncio.create_task(venue.wait_failed())
    with pytest.raises(VenueError, match="No space left"):
        await venue.submit(order("x", Side.BUY, 100))
    assert isinstance(await asyncio.wait_for(waiter, 1), OSError)
    assert not venue.running and isinstance(venue.failure, OSError)
    with pytest.raises(VenueClosedError):
        venue.submit_nowait(order("y", Side.BUY, 100))
    await venue.stop()
