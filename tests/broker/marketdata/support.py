"""Shared helpers: an engine driver, a venue with a settable clock, the app and a live server."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Header, HTTPException

from tradingfloor.broker.api.market_data import market_data_router
from tradingfloor.broker.api.market_stream import MarketStream, add_market_stream
from tradingfloor.broker.market.history import MarketHistory
from tradingfloor.exchange.engine.commands import AddInstrument, Command, NewOrder
from tradingfloor.exchange.engine.engine import Engine
from tradingfloor.exchange.engine.events import Event
from tradingfloor.exchange.engine.types import OrdType, Side
from tradingfloor.exchange.venue import Venue

S = 1_000_000_000
MINUTE = 60 * S
DAY = 24 * 60 * MINUTE
T0 = 1_700_000_000 * S  # 2023-11-14T22:13:20Z
M0 = T0 - T0 % MINUTE  # 22:13:00
KEY, SECRET = "test-key", "test-secret"
HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
LISTED_AT = T0 - T0 % DAY - MINUTE  # before every time the tests trade at


class Driver:
    """A real engine whose per-command events go to a ``MarketHistory``."""

    def __init__(self, history: MarketHistory, ts: int = LISTED_AT) -> None:
        self.engine = Engine()
        self.history = history
        self.seq = 0
        self.ts = ts

    def run(self, cmd: Command, *, at: int | None = None, step: int = 1_000) -> list[Event]:
        self.seq += 1
        self.ts = at if at is not None else self.ts + step
        events = self.engine.apply(self.seq, self.ts, cmd)
        self.history.on_events(events)
        return events


_ids = iter(range(1, 1 << 62))


def order(symbol: str, side: Side, qty: int, price: int, member: str = "m1", **kw: Any) -> NewOrder:
    return NewOrder(
        symbol=symbol,
        member=member,
        cl_ord_id=f"o{next(_ids)}",
        side=side,
        qty=qty,
        price=price,
        **kw,
    )


def market(symbol: str, side: Side, qty: int, member: str = "m9") -> NewOrder:
    return order(symbol, side, qty, 0, member, ord_type=OrdType.MARKET)


def cross(symbol: str, price: int, qty: int, taker: Side = Side.BUY) -> list[NewOrder]:
    """A resting order and an aggressive one that trades ``qty`` at ``price``."""
    maker = Side.SELL if taker == Side.BUY else Side.BUY
    return [order(symbol, maker, qty, price, "mm"), order(symbol, taker, qty, price, "tk")]


class Clock:
    """A settable clock for the venue's sequencer."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@contextlib.contextmanager
def no_fsync() -> Generator[None, None, None]:
    saved = os.fsync
    os.fsync = lambda _fd: None
    try:
        yield
    finally:
        os.fsync = saved


class VenueHarness:
    """A venue in a directory whose events feed a ``MarketHistory``."""

    def __init__(self, data_dir: Path, clock: Clock | None = None) -> None:
        self.clock = clock
        self.venue = (
            Venue.open(data_dir, clock=clock) if clock is not None else Venue.open(data_dir)
        )
        self.history = MarketHistory()
        self.venue.add_listener(lambda _cmd, events: self.history.on_events(events))

    async def start(self, *symbols: str) -> None:
        self.venue.replay_history()
        await self.venue.start(tick_interval=None)
        for symbol in symbols:
            await self.venue.submit(AddInstrument(symbol=symbol, collar_bps=10_000))

    async def run(self, *commands: Command, at: int | None = None) -> None:
        """Submit commands one after another (at ``at`` on the settable clock)."""
        if at is not None:
            assert self.clock is not None
            self.clock.now = at
        for cmd in commands:
            await self.venue.submit(cmd)
            if self.clock is not None:
                self.clock.now += 1_000

    async def stop(self) -> None:
        await self.venue.stop()


def require_key(
    apca_api_key_id: str | None = Header(default=None),
    apca_api_secret_key: str | None = Header(default=None),
) -> None:
    if (apca_api_key_id, apca_api_secret_key) != (KEY, SECRET):
        raise HTTPException(401, "unauthorized")


async def check_key(key: str, secret: str) -> bool:
    return (key, secret) == (KEY, SECRET)


def make_app(history: MarketHistory, **stream_options: Any) -> tuple[FastAPI, MarketStream]:
    app = FastAPI()
    app.include_router(market_data_router(history, require_key))
    stream = add_market_stream(app, history, check_key, **stream_options)
    return app, stream


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[int]:
    """Run ``app`` with uvicorn on a free loopback port of this loop; yield the port."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped during start-up")
            await asyncio.sleep(0.01)
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 5)
