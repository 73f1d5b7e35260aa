"""The market-data HTTP/WebSocket app on a real uvicorn server, with websockets and httpx."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError

from tradingfloor.exchange.engine.commands import AddInstrument, Command, NewOrder
from tradingfloor.exchange.engine.engine import Engine
from tradingfloor.exchange.engine.types import Side
from tradingfloor.exchange.http import CLOSE_POLICY_VIOLATION, WS_PATH, create_app
from tradingfloor.exchange.marketdata.feed import MarketDataFeed
from tradingfloor.exchange.marketdata.messages import ChannelTracker, Sync

T0 = 1_700_000_000_000_000_000
Start = Callable[..., Awaitable[tuple[MarketDataFeed, "Venue", str]]]


class Venue:
    """Stands in for the venue: runs commands through a real engine into the feed."""

    def __init__(self, feed: MarketDataFeed) -> None:
        self.engine, self.feed, self.seq = Engine(), feed, 0

    def run(self, *cmds: Command) -> None:
        for cmd in cmds:
            self.seq += 1
            self.feed.on_events(self.engine.apply(self.seq, T0 + 1_000 * self.seq, cmd))


def order(side: Side, qty: int, price: int, member: str = "m1") -> NewOrder:
    return NewOrder(
        symbol="ACME",
        member=member,
        cl_ord_id=f"{member}-{side}-{qty}-{price}",
        side=side,
        qty=qty,
        price=price,
    )


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Start a server for a fresh feed on an ephemeral port; stop it after the test."""
    running: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def _start(**kw: Any) -> tuple[MarketDataFeed, Venue, str]:
        info = kw.pop("instruments_info", None)
        feed = MarketDataFeed(**kw)
        venue = Venue(feed)
        venue.run(AddInstrument(symbol="ACME"))
        config = uvicorn.Config(
            create_app(feed, instruments_info=info),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        running.append((server, task))
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        return feed, venue, f"{host}:{port}"

    yield _start
    for server, task in running:
        server.should_exit = True
        await asyncio.wait_for(task, 5)


async def recv(ws: ClientConnection) -> dict[str, Any]:
    data = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert isinstance(data, dict)
    return data


async def eventually(check: Callable[[], bool]) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in 5 s")


async def test_subscriber_gets_a_snapshot_then_numbered_updates(start: Start) -> None:
    feed, venue, addr = await start()
    venue.run(order(Side.BUY, 5, 100))
    async with connect(f"ws://{addr}{WS_PATH}") as ws:
        await ws.send(json.dumps({"op": "subscribe", "channels": ["l2"], "symbols": ["ACME"]}))
        assert await recv(ws) == {"type": "subscribed", "channels": ["l2"], "symbols": ["ACME"]}
        snap = await recv(ws)
        assert (snap["seq"], snap["snapshot"], snap["bids"]) == (0, True, [["1.00", 5, 1]])
        tracker = ChannelTracker()
        assert tracker.on_message(snap) == Sync.APPLY
        venue.run(order(Side.BUY, 3, 101, "m2"), order(Side.SELL, 4, 105, "m3"))
        first, second = await recv(ws), await recv(ws)
        assert [tracker.on_message(m) for m in (first, second)] == [Sync.APPLY, Sync.APPLY]
        assert (first["seq"], first["snapshot"], first["bids"]) == (1, False, [["1.01", 3, 1]])
        assert (second["seq"], second["asks"]) == (2, [["1.05", 4, 1]])
        await ws.send('{"op":"ping"}')
        assert await recv(ws) == {"type": "pong"}
        await ws.send(b'{"op":"snapshot","channel":"l2","symbol":"ACME"}')  # binary frame too
        again = await recv(ws)
        assert (again["seq"], again["snapshot"], len(again["bids"])) == (2, True, 2)
        await ws.send('{"op":"subscribe","channels":["l2"],"symbols":["NOPE"]}')
        error = await recv(ws)
        assert (error["type"], error["code"]) == ("error", "unknown_symbol")
        assert feed.subscriber_count("l2", "ACME") == 1
    await eventually(lambda: not feed.clients)  # cleaned up on disconnect
    assert feed.subscriber_count("l2", "ACME") == 0


async def test_a_slow_client_is_closed_with_1008_and_the_reason(start: Start) -> None:
    feed, venue, addr = await start(max_queued=3)
    url = f"ws://{addr}{WS_PATH}"
    async with connect(url) as slow, connect(url) as other:
        await slow.send('{"op":"subscribe","channels":["l2"],"symbols":["ACME"]}')
        await other.send('{"op":"subscribe","channels":["l1"],"symbols":["ACME"]}')
        for ws in (slow, other):
            assert (await recv(ws))["type"] == "subscribed"
            assert (await recv(ws))["snapshot"] is True
        # The slow client reads nothing more; four l2 updates arrive before its writer runs.
        venue.run(*(order(Side.BUY, 1, 100 - k, f"b{k}") for k in range(4)))
        assert [c.dropped for c in feed.clients] == [None]  # the l1 client (one update) stays
        with pytest.raises(ConnectionClosedError) as closed:
            while True:
                await recv(slow)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == CLOSE_POLICY_VIOLATION
        assert closed.value.rcvd.reason == "slow consumer: 3 messages queued"
        l1 = await recv(other)
        assert (l1["seq"], l1["bid"]) == (1, "1.00")
        venue.run(order(Side.SELL, 1, 100, "s1"))
        assert (await recv(other))["seq"] == 2
    assert feed.drops == 1


async def test_rest_endpoints(start: Start) -> None:
    feed, venue, addr = await start()
    venue.run(order(Side.BUY, 5, 100), order(Side.BUY, 2, 99), order(Side.SELL, 3, 100, "m2"))
    async with httpx.AsyncClient(base_url=f"http://{addr}") as http:

        async def get(path: str, status: int = 200) -> Any:
            resp = await http.get(path)
            assert resp.status_code == status, resp.text
            assert resp.headers["content-type"] == "application/json"
            return resp.json()

        assert await get("/health") == {"status": "ok"}
        assert await get("/api/v1/instruments") == [
            {"symbol": "ACME", "tick_size": "0.01", "phase": "continuous"}
        ]
        l1 = await get("/api/v1/marketdata/ACME/l1")
        assert (l1["type"], l1["bid"], l1["bidSize"], l1["last"], l1["volume"]) == (
            "l1",
            "1.00",
            2,
            "1.00",
            3,
        )
        assert l1["seq"] == feed.channel_seq("l1", "ACME") and l1["snapshot"] is True
        l2 = await get("/api/v1/marketdata/ACME/l2?depth=1")
        assert (l2["bids"], l2["asks"]) == ([["1.00", 2, 1]], [])
        l3 = await get("/api/v1/marketdata/ACME/l3")
        assert l3["bids"] == [["1.00", 2, 2], ["0.99", 2, 3]]
        trades = await get("/api/v1/marketdata/ACME/trades?limit=1")
        assert [(t["price"], t["size"], t["aggressor"]) for t in trades["trades"]] == [
            ("1.00", 3, "sell")
        ]
        bars = await get("/api/v1/marketdata/ACME/bars?interval=1m&limit=5")
        assert [(b["open"], b["volume"], b["closed"]) for b in bars["bars"]] == [("1.00", 3, False)]
        missing = await get("/api/v1/marketdata/NOPE/l2", 404)
        assert missing["error"]["code"] == "unknown_symbol"
        assert "NOPE" in missing["error"]["message"]
        for path in ("l2?depth=0", "l2?depth=21", "l2?depth=x", "trades?limit=0", "bars?limit=0"):
            bad = await get(f"/api/v1/marketdata/ACME/{path}", 422)
            assert bad["error"]["code"] == "bad_request", path
        bad = await get("/api/v1/marketdata/ACME/bars?interval=7m", 422)
        assert bad["error"]["code"] == "unknown_interval"
        assert (await get("/api/v1/nothing", 404))["error"]["code"] == "not_found"
        wrong = await http.post("/health")
        assert (wrong.status_code, wrong.json()["error"]["code"]) == (405, "method_not_allowed")
        assert (await http.get("/docs")).status_code == 200
        paths = (await get("/openapi.json"))["paths"]
        assert "/api/v1/marketdata/{symbol}/l2" in paths


async def test_instruments_info_replaces_the_book_list(start: Start) -> None:
    info = [{"symbol": "ACME", "tick_size": "0.01", "lot_size": 100, "currency": "USD"}]
    _feed, _venue, addr = await start(instruments_info=lambda: info)
    async with httpx.AsyncClient(base_url=f"http://{addr}") as http:
        assert (await http.get("/api/v1/instruments")).json() == info
