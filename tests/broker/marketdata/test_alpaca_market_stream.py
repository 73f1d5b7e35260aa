"""The Alpaca stock data WebSocket protocol, with a plain WebSocket client against uvicorn."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tradingfloor.broker.api import market_stream
from tradingfloor.broker.api.market_stream import MarketStream
from tradingfloor.exchange.engine.types import Side

from .support import (
    HEADERS,
    KEY,
    LISTED_AT,
    M0,
    MINUTE,
    SECRET,
    Clock,
    S,
    VenueHarness,
    cross,
    make_app,
    no_fsync,
    order,
    serving,
)

Msg = dict[str, Any]
TIMEOUT = 5.0


class Env:
    def __init__(self, harness: VenueHarness, stream: MarketStream, port: int) -> None:
        self.harness = harness
        self.stream = stream
        self.url = f"ws://127.0.0.1:{port}/v2/iex"


@pytest.fixture
async def env(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    options: dict[str, Any] = getattr(request, "param", {})
    with no_fsync():
        harness = VenueHarness(tmp_path / "venue", Clock(LISTED_AT))
        await harness.start("AAPL", "MSFT")
        # The wall clock would close every 2023 minute at once: bars close on event time here.
        app, stream = make_app(harness.history, clock=lambda: 0, **options)
        async with serving(app) as port:
            yield Env(harness, stream, port)
        stream.close()
        await harness.stop()


def client(url: str, **kw: Any) -> connect:
    return connect(url, proxy=None, compression=None, **kw)


async def recv(ws: ClientConnection) -> list[Msg]:
    raw = await asyncio.wait_for(ws.recv(), TIMEOUT)
    decoded: list[Msg] = msgpack.unpackb(raw) if isinstance(raw, bytes) else json.loads(raw)
    return decoded


async def recv_until(ws: ClientConnection, done: Callable[[list[Msg]], bool]) -> list[Msg]:
    """Messages (flattened over frames) until ``done`` holds for what was received."""
    got: list[Msg] = []
    while not done(got):
        got += await recv(ws)
    return got


async def login(ws: ClientConnection, *, send: Callable[[Msg], Any] | None = None) -> None:
    assert await recv(ws) == [{"T": "success", "msg": "connected"}]
    await ws.send(json.dumps({"action": "auth", "key": KEY, "secret": SECRET}))
    assert await recv(ws) == [{"T": "success", "msg": "authenticated"}]


async def subscribe(ws: ClientConnection, **channels: list[str]) -> Msg:
    await ws.send(json.dumps({"action": "subscribe", **channels}))
    [ack] = await recv(ws)
    assert ack["T"] == "subscription"
    return ack


def of_type(kind: str) -> Callable[[list[Msg]], bool]:
    return lambda got: any(m["T"] == kind for m in got)


async def test_json_session_auth_subscribe_and_data(env: Env) -> None:
    async with client(env.url) as ws:
        assert await recv(ws) == [{"T": "success", "msg": "connected"}]
        await ws.send(json.dumps({"action": "subscribe", "trades": ["AAPL"]}))
        assert await recv(ws) == [{"T": "error", "code": 401, "msg": "not authenticated"}]
        await ws.send("{not json")
        assert await recv(ws) == [{"T": "error", "code": 400, "msg": "invalid syntax"}]
        await ws.send(json.dumps({"action": "auth", "key": KEY, "secret": SECRET}))
        assert await recv(ws) == [{"T": "success", "msg": "authenticated"}]
        await ws.send(json.dumps({"action": "auth", "key": KEY, "secret": SECRET}))
        assert await recv(ws) == [{"T": "error", "code": 403, "msg": "already authenticated"}]
        await ws.send(json.dumps({"action": "dance"}))
        assert await recv(ws) == [{"T": "error", "code": 400, "msg": "invalid syntax"}]
        await ws.send(json.dumps({"action": "subscribe", "trades": "AAPL"}))
        assert await recv(ws) == [{"T": "error", "code": 400, "msg": "invalid syntax"}]
        ack = await subscribe(ws, trades=["AAPL"], quotes=["*"], bars=["AAPL"], dailyBars=["AAPL"])
        assert ack == {
            "T": "subscription",
            "trades": ["AAPL"],
            "quotes": ["*"],
            "bars": ["AAPL"],
            "updatedBars": [],
            "dailyBars": ["AAPL"],
            "statuses": [],
            "lulds": [],
            "corrections": ["AAPL"],
            "cancelErrors": ["AAPL"],
        }
        assert env.stream.subscribers("trades", "AAPL") == 1
        assert env.stream.subscribers("quotes", "MSFT") == 1
        await env.harness.run(*cross("AAPL", 19012, 7), at=M0 + S)
        assert await recv(ws) == [
            {
                "T": "q",
                "S": "AAPL",
                "t": "2023-11-14T22:13:01Z",
                "ax": "V",
                "ap": 190.12,
                "as": 7,
                "bx": "V",
                "bp": 0.0,
                "bs": 0,
                "c": ["R"],
                "z": "C",
            }
        ]
        raw = await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert isinstance(raw, str) and '"p":190.12,' in raw  # the exact decimal, as a number
        trade, quote = json.loads(raw)
        assert trade == {
            "T": "t",
            "S": "AAPL",
            "t": "2023-11-14T22:13:01.000001000Z",
            "x": "V",
            "p": 190.12,
            "s": 7,
            "c": ["@"],
            "i": trade["i"],
            "z": "C",
        }
        assert (quote["T"], quote["ap"], quote["as"]) == ("q", 0.0, 0)
        # The next minute's first event completes the minute bar (and sends the day so far).
        await env.harness.run(order("MSFT", Side.BUY, 1, 40000), at=M0 + MINUTE)
        bar, day, msft = await recv(ws)
        bar_body = {"o": 190.12, "h": 190.12, "l": 190.12, "c": 190.12, "v": 7, "n": 1}
        assert bar == {
            "T": "b",
            "S": "AAPL",
            "t": "2023-11-14T22:13:00Z",
            **bar_body,
            "vw": 190.12,
        }
        assert day == {**bar, "T": "d", "t": "2023-11-14T00:00:00Z"}
        assert (msft["T"], msft["S"], msft["bp"]) == ("q", "MSFT", 400.0)
        await ws.send(json.dumps({"action": "unsubscribe", "quotes": ["*"], "bars": ["AAPL"]}))
        [ack] = await recv(ws)
        assert (ack["quotes"], ack["bars"], ack["trades"]) == ([], [], ["AAPL"])
        await env.harness.run(*cross("MSFT", 40000, 1), at=M0 + MINUTE + S)
        await env.harness.run(*cross("AAPL", 19000, 1), at=M0 + MINUTE + 2 * S)
        [only] = await recv(ws)  # MSFT's quotes and trade are not sent any more
        assert (only["T"], only["S"], only["p"]) == ("t", "AAPL", 190.0)


async def test_a_late_trade_sends_an_updated_bar(env: Env) -> None:
    async with client(env.url) as ws:
        await login(ws)
        await subscribe(ws, bars=["AAPL"], updatedBars=["AAPL"])
        await env.harness.run(*cross("AAPL", 19000, 1), at=M0 + S)
        env.harness.history.close_until(M0 + MINUTE)  # e.g. the wall clock ran ahead
        [bar] = await recv(ws)
        assert (bar["T"], bar["t"], bar["v"]) == ("b", "2023-11-14T22:13:00Z", 1)
        await env.harness.run(*cross("AAPL", 19100, 2), at=M0 + 50 * S)  # the venue lags
        [updated] = await recv(ws)
        assert (updated["T"], updated["t"], updated["v"], updated["h"]) == ("u", bar["t"], 3, 191.0)


async def test_msgpack_frames_with_header_auth(env: Env) -> None:
    headers = {"Content-Type": "application/msgpack", **HEADERS}
    async with client(env.url, additional_headers=headers) as ws:
        raw = await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert isinstance(raw, bytes)
        assert msgpack.unpackb(raw) == [{"T": "success", "msg": "connected"}]
        assert await recv(ws) == [{"T": "success", "msg": "authenticated"}]
        await ws.send(msgpack.packb({"action": "subscribe", "trades": ["AAPL"]}))
        [ack] = await recv(ws)
        assert ack["trades"] == ["AAPL"]
        await env.harness.run(*cross("AAPL", 19012, 7), at=M0 + S)
        [trade] = await recv(ws)
        stamp = trade["t"]
        assert isinstance(stamp, msgpack.Timestamp)
        assert (stamp.seconds, stamp.nanoseconds) == ((M0 + S) // S, 1_000)
        assert (trade["T"], trade["S"], trade["p"], trade["s"]) == ("t", "AAPL", 190.12, 7)


async def test_bad_credentials_are_refused_and_closed(env: Env) -> None:
    async with client(env.url) as ws:
        await recv(ws)
        await ws.send(json.dumps({"action": "auth", "key": KEY, "secret": "wrong"}))
        assert await recv(ws) == [{"T": "error", "code": 402, "msg": "auth failed"}]
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_no_auth_in_time_is_closed(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(market_stream, "AUTH_TIMEOUT_S", 0.2)
    async with client(env.url) as ws:
        await recv(ws)
        assert await recv(ws) == [{"T": "error", "code": 404, "msg": "auth timeout"}]
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), TIMEOUT)


async def test_an_unknown_feed_is_refused(env: Env) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with client(env.url.replace("/v2/iex", "/v2/nope")):
            pass
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize("env", [{"max_queued": 3}], indirect=True)
async def test_a_slow_client_is_dropped_without_blocking_the_others(env: Env) -> None:
    async with client(env.url) as slow, client(env.url) as other:
        await login(slow)
        await login(other)
        await subscribe(slow, trades=["AAPL"], quotes=["AAPL"])
        await subscribe(other, trades=["AAPL"])
        for k in range(3):
            await env.harness.run(order("AAPL", Side.SELL, 1, 19000 + k, f"s{k}"))
        # One command makes 3 trades and a quote: more than 3 messages at once for `slow`.
        await env.harness.run(order("AAPL", Side.BUY, 3, 19002, "b"))
        got = await recv_until(slow, of_type("error"))
        assert got[-1] == {"T": "error", "code": 407, "msg": "slow client"}
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(slow.recv(), TIMEOUT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert env.stream.drops == 1
        trades = await recv(other)
        assert [t["p"] for t in trades] == [190.0, 190.01, 190.02]
        assert env.stream.connections == 1


@pytest.mark.parametrize("env", [{"max_connections": 1, "max_subscriptions": 2}], indirect=True)
async def test_connection_and_symbol_limits(env: Env) -> None:
    async with client(env.url) as first:
        await login(first)
        async with client(env.url) as second:
            assert await recv(second) == [{"T": "success", "msg": "connected"}]
            assert await recv(second) == [
                {"T": "error", "code": 406, "msg": "connection limit exceeded"}
            ]
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(second.recv(), TIMEOUT)
        await first.send(json.dumps({"action": "subscribe", "trades": ["A", "B", "C"]}))
        assert await recv(first) == [{"T": "error", "code": 405, "msg": "symbol limit exceeded"}]
        ack = await subscribe(first, trades=["A", "B"])
        assert ack["trades"] == ["A", "B"]
