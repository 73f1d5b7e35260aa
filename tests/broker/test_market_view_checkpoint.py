"""The broker's market view checkpoint (``broker.market``): a broker restarted from a checkpoint
at or below its database's mark, fed only the journal after it, ends with the same listings,
last prices and trailing stops as one fed the whole journal, and as the broker that ran.

One recorded run (a venue and the broker, trailing stops of each kind, fills, a cancel, a
replace, a second listing, a random walk of trades) gives the journal, the running broker's
checkpoint after every command and copies of its database at several marks. Each example then
restarts two brokers on one of those databases: A from the whole journal, C from the
checkpoint after command ``k`` (at or below the mark) and the journal after it.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.stack import BROKER_MEMBER, broker_stack
from tradingfloor.broker.market.venue_view import MARKET_VIEW_VERSION, MarketView
from tradingfloor.broker.oms.orders import OrderStatus
from tradingfloor.broker.oms.requests import OrderRequest, ReplaceRequest
from tradingfloor.broker.service import Broker
from tradingfloor.exchange.checkpoint import Checkpointed, CheckpointError
from tradingfloor.exchange.engine.commands import AddInstrument, Command
from tradingfloor.exchange.engine.events import Event
from tradingfloor.exchange.engine.types import Side
from tradingfloor.exchange.venue import Venue
from tradingfloor.storage.db import open_database
from tradingfloor.storage.writer import WriteBehind

Batch = tuple[Command, Sequence[Event]]


@dataclass
class Recording:
    batches: list[Batch]  # the journal: each command with its events
    checkpoints: dict[int, bytes]  # index of the last batch applied -> the live view's bytes
    databases: list[tuple[int, Path]]  # (batches the database has seen, a copy of it)
    final_hash: str  # the running broker's view at the end
    final_stops: dict[int, int]


def _trailing(side: str, **trail: int) -> OrderRequest:
    return OrderRequest(
        symbol="AAPL",
        side=side,
        qty=1,
        order_type="trailing_stop",
        time_in_force="gtc",
        **trail,  # type: ignore[arg-type]
    )


def _backup(source: Path, target: Path) -> None:
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


async def _record(root: Path, seed: int) -> Recording:
    rng = random.Random(seed)
    live: dict[int, bytes] = {}  # last event seq -> the live view after it
    databases: list[tuple[int, Path]] = []
    async with broker_stack(root / "live") as s:
        broker = s.broker

        def after_broker(_command: object, events: Sequence[Event]) -> None:
            if events:
                live[events[-1].seq] = broker.market.checkpoint()

        s.venue.add_listener(after_broker)  # registered after the broker's: sees its state

        async def snapshot_database() -> None:
            await s.runtime.store.flush()
            copy = root / f"db-{len(databases)}.sqlite"
            _backup(root / "live" / "broker.db", copy)
            databases.append((s.venue.last_event_seq, copy))

        acct = await s.funded_account(100_000_000, account_type="margin")
        await s.counterparty("MSFT", Side.SELL, 40_000, 1)  # MSFT trades only here
        await s.counterparty("MSFT", Side.BUY, 40_000, 1, member="MM2")
        await s.counterparty("AAPL", Side.SELL, 10_000, 10)
        await broker.submit_order(
            acct,
            OrderRequest(symbol="AAPL", side="buy", qty=10, order_type="limit", limit_price=10_000),
        )
        orders = [
            await broker.submit_order(acct, _trailing(side, **trail))
            for side in ("buy", "sell")
            for trail in ({"trail_price": 300}, {"trail_percent_bps": 250})
        ]
        await snapshot_database()
        price = 10_000
        for step in range(36):
            price = max(9_300, min(10_700, price + rng.choice((-90, -40, 0, 35, 80))))
            await s.counterparty("AAPL", Side.SELL, price, 1, member=f"S{step}")
            await s.counterparty("AAPL", Side.BUY, price, 1, member=f"B{step}")
            if step == 6:
                await broker.cancel_order(acct, orders[0].id)
            elif step == 10:
                live_one = next(o for o in orders[1:] if o.status == OrderStatus.NEW)
                if live_one.trail_percent_bps is not None:
                    change = ReplaceRequest(trail=live_one.trail_percent_bps + 25)
                else:
                    change = ReplaceRequest(trail=(live_one.trail_price or 0) + 20)
                # a new trail: the broker cancels the venue's order and sends a new one
                orders.append(await broker.replace_order(acct, live_one.id, change))
            elif step == 14:
                await s.venue.submit(AddInstrument(symbol="NVDA", tick_size="0.01"))
                await s.counterparty("NVDA", Side.SELL, 90_000, 1)  # NVDA trades only here
                await s.counterparty("NVDA", Side.BUY, 90_000, 1, member="MM2")
                nvda = OrderRequest(
                    symbol="NVDA",
                    side="sell",
                    qty=1,
                    order_type="trailing_stop",
                    time_in_force="gtc",
                    trail_price=500,
                )
                orders.append(await broker.submit_order(acct, nvda))
            elif step == 20:
                await broker.submit_order(
                    acct,
                    OrderRequest(
                        symbol="AAPL", side="sell", qty=3, order_type="limit", limit_price=price
                    ),
                )
            if step % 9 == 4:
                await snapshot_database()
        await snapshot_database()
        assert any(o.status == OrderStatus.NEW for o in orders)  # some stops are still live
        final_hash = broker.market.state_hash()
        final_stops = {oid: tr.stop for oid, tr in broker.trails.items()}
    batches: list[Batch] = []
    venue = Venue.open(root / "live" / "venue")
    venue.add_listener(lambda command, events: batches.append((command, list(events))))
    venue.replay_history()
    by_seq = {events[-1].seq: i for i, (_, events) in enumerate(batches) if events}
    checkpoints = {by_seq[seq]: data for seq, data in live.items()}
    marks = [(by_seq[mark], path) for mark, path in databases]
    return Recording(batches, checkpoints, marks, final_hash, final_stops)


class _Recorded:
    """A venue adapter that only delivers what the test feeds it (no live venue)."""

    name = "TFEX"
    member = BROKER_MEMBER
    running = False

    def __init__(self) -> None:
        self.sink: Callable[[Sequence[Event], Command | None], None] | None = None
        self.state: Checkpointed | None = None

    def attach(
        self,
        sink: Callable[[Sequence[Event], Command | None], None],
        *,
        state: Checkpointed | None = None,
    ) -> None:
        self.sink = sink
        self.state = state

    def submit(self, command: Command) -> Any:
        raise AssertionError(f"a restarting broker sent {command!r}")


async def _restart(
    rec: Recording, database: Path, work: Path, checkpoint_at: int | None
) -> tuple[str, dict[int, int], dict[str, int], list[str]]:
    """A broker on a copy of ``database`` fed the journal (after ``checkpoint_at`` when given,
    restoring that checkpoint first); its view after ``finish_replay``."""
    copy = work / "broker.db"
    _backup(database, copy)
    engine = await open_database(f"sqlite+aiosqlite:///{copy}")
    adapter = _Recorded()
    broker = Broker(WriteBehind(engine), adapter)
    try:
        await broker.load()
        start = 0
        assert adapter.state is broker.market  # what the venue checkpoints and restores
        if checkpoint_at is not None:
            broker.market.restore_checkpoint(rec.checkpoints[checkpoint_at])
            start = checkpoint_at + 1
        assert adapter.sink is not None
        for command, events in rec.batches[start:]:
            adapter.sink(events, command)
        broker.finish_replay()
        stops = {oid: trail.stop for oid, trail in broker.trails.items()}
        return broker.market.state_hash(), stops, dict(broker.last_price), list(broker.instruments)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    return asyncio.run(_record(tmp_path_factory.mktemp("market-view"), seed=7))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_restart_from_a_checkpoint_equals_a_full_replay(
    recording: Recording, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    mark, database = data.draw(st.sampled_from(recording.databases), label="database")
    usable = sorted(k for k in recording.checkpoints if k < mark)
    k = data.draw(st.sampled_from(usable), label="checkpoint after batch")
    work = tmp_path_factory.mktemp("restart")
    (work / "a").mkdir()
    (work / "c").mkdir()
    full = asyncio.run(_restart(recording, database, work / "a", None))
    restored = asyncio.run(_restart(recording, database, work / "c", k))
    hash_a, stops_a, last_a, listed_a = full
    hash_c, stops_c, last_c, listed_c = restored
    assert stops_c == stops_a
    assert last_c == last_a
    assert listed_c == listed_a
    assert hash_c == hash_a
    assert stops_a == recording.final_stops  # both follow the stops the running broker did
    assert hash_a == recording.final_hash


def test_the_recording_exercises_moved_and_closed_trailing_stops(recording: Recording) -> None:
    """The property above is only as strong as its run: checkpoints hold stops whose reference
    moved since acceptance and stops of orders that closed later."""
    first, last = min(recording.checkpoints), max(recording.checkpoints)
    early = MarketView("TFEX")
    early.restore_checkpoint(recording.checkpoints[first + 12])
    assert len(early.trails.items()) >= 4
    assert set(dict(early.trails.items())) - set(recording.final_stops)  # closed since
    final = MarketView("TFEX")
    final.restore_checkpoint(recording.checkpoints[last])
    assert {oid: t.stop for oid, t in final.trails.items()} == recording.final_stops
    assert len(recording.databases) >= 4


def _fresh_hash() -> str:
    return MarketView("TFEX").state_hash()


def _state(data: bytes) -> dict[str, Any]:
    state: dict[str, Any] = msgspec.msgpack.decode(data)
    return state


def _assert_refused(data: bytes) -> None:
    view = MarketView("TFEX")
    with pytest.raises(CheckpointError):
        view.restore_checkpoint(data)
    assert view.state_hash() == _fresh_hash()
    assert not view.instruments and not view.last_price and not view.trails.items()


def test_a_checkpoint_round_trips_and_a_restored_view_lists_under_the_current_venue(
    recording: Recording,
) -> None:
    data = recording.checkpoints[max(recording.checkpoints)]
    view = MarketView("OTHER")
    view.restore_checkpoint(data)
    assert view.checkpoint() == data
    assert set(view.instruments) == {"AAPL", "MSFT", "NVDA"}
    assert all(inst.venue == "OTHER" for inst in view.instruments.values())
    assert str(view.instruments["NVDA"].tick_size) == "0.01"
    with pytest.raises(CheckpointError):  # only a fresh view restores
        view.restore_checkpoint(data)


@given(st.binary(max_size=200))
def test_garbage_is_refused_and_the_view_stays_fresh(data: bytes) -> None:
    _assert_refused(data)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 10_000))
def test_a_truncated_checkpoint_is_refused(recording: Recording, cut: int) -> None:
    data = recording.checkpoints[max(recording.checkpoints)]
    _assert_refused(data[: cut % len(data)])


@pytest.mark.parametrize(
    "change",
    [
        {"version": MARKET_VIEW_VERSION + 1},
        {"version": 0},
        {"unexpected": 1},
        {"last_price": [["AAPL", 0]]},
        {"last_price": [["ZZZ", 100]]},
        {"last_price": [["AAPL", 100], ["AAPL", 101]]},
        {"instruments": [["AAPL", "0.01", 1, "USD"], ["AAPL", "0.01", 1, "USD"]]},
        {"instruments": [["AAPL", "ten", 1, "USD"]], "last_price": [], "trails": []},
        {"instruments": [["AAPL", "-0.01", 1, "USD"]], "last_price": [], "trails": []},
        {"trails": [[1, "AAPL", False, 0, 0, 100]]},
        {"trails": [[1, "AAPL", False, 5, 25, 100]]},
        {"trails": [[1, "ZZZ", False, 5, 0, 100]]},
        {"trails": [[1, "AAPL", False, 5, 0, 100], [1, "AAPL", True, 5, 0, 100]]},
        {"trails": [[1, "AAPL", False, 0, 10_000, 100]]},
    ],
)
def test_a_checkpoint_of_another_version_or_with_impossible_values_is_refused(
    recording: Recording, change: dict[str, Any]
) -> None:
    state = _state(recording.checkpoints[max(recording.checkpoints)])
    state.update(change)
    _assert_refused(msgspec.msgpack.encode(state))


def test_every_part_of_the_checkpoint_is_state(recording: Recording) -> None:
    """Dropping a part of a checkpoint changes what a restored view answers (so the
    property's equality cannot hold by accident of an unused field)."""
    data = recording.checkpoints[max(recording.checkpoints)]
    whole = MarketView("TFEX")
    whole.restore_checkpoint(data)
    for part in ("instruments", "last_price", "trails"):
        state = _state(data)
        state[part] = [] if part != "instruments" else state[part][:1]
        if part == "instruments":
            state["last_price"] = [p for p in state["last_price"] if p[0] == state[part][0][0]]
            state["trails"] = [tr for tr in state["trails"] if tr[1] == state[part][0][0]]
        partial = MarketView("TFEX")
        partial.restore_checkpoint(msgspec.msgpack.encode(state))
        assert partial.state_hash() != whole.state_hash(), part
