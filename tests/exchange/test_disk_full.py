"""A full disk (ENOSPC by fault injection) in any durable store stops matching, with the cause.

Covers the journal, a projection's store (a listener), the FIX session store, the broker's
database writer, and `serve`'s way out (the real error, exit as a venue failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from journal_files import frames, segments
from test_serve import Client
from test_serve import options as serve_options

from tradingfloor.exchange.engine.commands import AddInstrument, Command, NewOrder
from tradingfloor.exchange.engine.events import Event
from tradingfloor.exchange.engine.types import Side
from tradingfloor.exchange.fix import store as store_module
from tradingfloor.exchange.fix import tags as t
from tradingfloor.exchange.fix.store import SessionStore, StoreFailedError
from tradingfloor.exchange.journal import JournalReader
from tradingfloor.exchange.venue import Venue, VenueClosedError, VenueError
from tradingfloor.node.serve import VenueFailedError, VenueServer, serve_until_stopped
from tradingfloor.storage.db import make_engine
from tradingfloor.storage.writer import WriteBehind


def enospc() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def order(cl: str, side: Side = Side.BUY, price: int = 100) -> NewOrder:
    return NewOrder(symbol="AAPL", member="M1", cl_ord_id=cl, side=side, qty=1, price=price)


async def test_a_listener_that_cannot_store_stops_matching_before_the_next_batch(
    tmp_path: Path,
) -> None:
    venue = Venue.open(tmp_path)
    late: list[asyncio.Future[list[Event]]] = []

    def store_reports(command: Command, events: Sequence[Event]) -> None:
        if isinstance(command, NewOrder) and command.cl_ord_id == "a":
            late.append(venue.submit_nowait(order("b", Side.SELL)))  # input arrives meanwhile
            raise enospc()

    venue.add_listener(store_reports)
    venue.replay_history()
    await venue.start(tick_interval=None)
    await venue.submit(AddInstrument(symbol="AAPL"))
    await venue.submit(order("a"))  # journaled and matched: acknowledged
    cause = await asyncio.wait_for(venue.wait_failed(), 5)
    assert isinstance(cause, OSError) and cause.errno == errno.ENOSPC
    with pytest.raises(VenueError, match="No space left"):
        await late[0]  # never matched
    with pytest.raises(VenueClosedError):
        venue.submit_nowait(order("c"))
    await venue.stop()
    journaled = [r.command for r in JournalReader(tmp_path / "journal")]
    assert [c.cl_ord_id for c in journaled if isinstance(c, NewOrder)] == ["a"]


def test_the_fix_store_fails_stop_and_keeps_its_file_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures: list[BaseException] = []
    store = SessionStore.open(tmp_path, now_ns=1, on_failure=failures.append)
    store.save_sent(1, b"8=FIX.4.4|first")
    real_write = os.write

    def half_then_full(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data[:5]))  # part of the record reaches the file
        raise enospc()

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        store.save_sent(2, b"8=FIX.4.4|second")
    monkeypatch.setattr(os, "write", real_write)
    assert [e.errno for e in failures] == [errno.ENOSPC]  # type: ignore[attr-defined]
    with pytest.raises(StoreFailedError, match="No space left"):
        store.save_sent(3, b"8=FIX.4.4|third")  # nothing is appended after a partial record
    store.close()
    reopened = SessionStore.open(tmp_path)
    assert reopened.get_range(1, 0) == [(1, b"8=FIX.4.4|first")]  # the partial one is torn
    reopened.close()


async def test_a_failed_broker_commit_stops_the_venue_with_its_error(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'broker.db'}")
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    async with engine.begin() as conn:
        await conn.run_sync(table.metadata.create_all)
    writer = WriteBehind(engine)
    venue = Venue.open(tmp_path / "venue")
    venue.replay_history()
    await venue.start(tick_interval=None)
    writer.on_failure = venue.fail
    full = sqlite3.OperationalError("database or disk is full")

    async def failing_commit(ops: object) -> None:
        raise full

    writer._commit = failing_commit  # type: ignore[method-assign]
    writer.start()
    writer.insert(table, {"id": 1})
    assert await asyncio.wait_for(venue.wait_failed(), 5) is full
    with pytest.raises(VenueClosedError):
        venue.submit_nowait(AddInstrument(symbol="AAPL"))
    await venue.stop()
    await writer.stop()
    await engine.dispose()


@pytest.mark.parametrize("full", ["reports", "everything"])
async def test_serve_stops_on_a_full_fix_store_with_the_real_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, full: str
) -> None:
    """The reported ENOSPC case: the FIX stores fill first. When only the reports cannot be
    stored, the order is journaled (its report is regenerated at restart); when the received
    order itself cannot be stored (it shares the messages log), it is not. Nothing after it is
    matched, and the stop says ENOSPC (no BufferError, no 'cannot start')."""
    lines: list[str] = []
    ready = asyncio.Event()

    def announce(line: str) -> None:
        lines.append(line)
        if line.startswith("Ready"):
            ready.set()

    data = tmp_path / "venue"
    opts = serve_options(data)  # with the broker
    opts.announce = announce
    server = VenueServer(opts)
    task = asyncio.create_task(serve_until_stopped(server))
    await asyncio.wait_for(ready.wait(), 20)
    assert server.broker is not None and server.venue is not None
    assert server.broker.store.on_failure == server.venue.fail  # the broker's database too
    m1 = await Client.logon(server.fix_port, "MEMBER1")
    real_write_all = store_module.write_all

    def reports_full(fd: int, data: bytes) -> None:
        if "messages-" in os.readlink(f"/proc/self/fd/{fd}"):
            # the messages log fills up (inbound seq nums still fit); with full="reports" a
            # received record (seq field with bit 63 set, store.py) still fits too
            received = len(data) >= 16 and data[15] & 0x80
            if full == "everything" or not received:
                raise enospc()
        real_write_all(fd, data)

    monkeypatch.setattr(store_module, "write_all", reports_full)
    m1.order("first", t.SIDE_BUY, "190.00")
    await asyncio.wait_for(server.venue.wait_failed(), 10)
    with contextlib.suppress(ConnectionError, OSError):
        m1.order("second", t.SIDE_SELL, "190.00")  # would trade with the first
    with pytest.raises(VenueFailedError, match="No space left") as info:
        await asyncio.wait_for(task, 20)
    assert isinstance(info.value.cause, OSError) and info.value.cause.errno == errno.ENOSPC
    assert "BufferError" not in str(info.value)
    assert any(line.startswith("Venue failed: OSError(28") for line in lines)
    monkeypatch.setattr(store_module, "write_all", real_write_all)
    await m1.close()
    journaled = [
        r.command.cl_ord_id
        for r in JournalReader(data / "journal")
        if isinstance(r.command, NewOrder)
    ]
    assert journaled == (["first"] if full == "reports" else [])
    assert frames(segments(data / "journal")[-1])  # the journal is intact
