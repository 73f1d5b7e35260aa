"""Market-data benchmarks: event-to-send latency in process, and WebSocket fan-out to many clients.

``inprocess``: the engine benchmark's command stream goes through a bare engine; after each
command, the time until the binary feed has translated, framed and handed the command's
messages to the UDP socket (``sendto`` to a loopback port), and separately the time until the
WebSocket feed has projected the events and queued the encoded messages for its subscribers
(the writer tasks then hand them to the socket). Both are per command, in microseconds.

``fanout``: a server process runs uvicorn with the WebSocket feed and drives a bare engine at
a fixed command rate (pairs of crossing orders, so every second command trades); a client
process opens N WebSocket connections, subscribes each to the trade channel, and measures
for every trade message received ``time.time_ns()`` minus the trade's timestamp (the time the
engine applied it, same machine clock). Results are printed, never asserted.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from array import array
from collections.abc import Coroutine, Sequence
from typing import Any, Final, TypeVar, cast

from tradingfloor.bench.engine_bench import Percentiles, generate_stream
from tradingfloor.exchange.engine import Engine
from tradingfloor.exchange.engine.commands import AddInstrument, Command, NewOrder
from tradingfloor.exchange.engine.types import Side
from tradingfloor.exchange.marketdata.binaryfeed import BinaryFeed
from tradingfloor.exchange.marketdata.feed import MarketDataFeed, Subscriber

__all__ = ["fanout", "inprocess", "main"]

T = TypeVar("T")

_READY: Final = re.compile(r"listening on ([\d.]+):(\d+)")


def _percentiles(samples: Sequence[int]) -> dict[str, float]:
    """The engine benchmark's nearest-rank percentiles, in microseconds, as a dict to print."""
    if not samples:
        return {}
    p = Percentiles.from_ns(samples)
    return {"p50": p.p50, "p90": p.p90, "p99": p.p99, "p99.9": p.p999, "max": p.max}


def _fmt(stats: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:,.1f} µs" for k, v in stats.items())


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ------------------------------------------------------------------------------ in process


async def _inprocess(commands: Sequence[Command], subscribers: int) -> dict[str, object]:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))  # nobody reads: the kernel drops what overflows
    engine = Engine()
    binary = BinaryFeed()
    feed = MarketDataFeed()
    await binary.open(sink.getsockname(), start_ns=time.time_ns(), heartbeat_ms=1000)
    symbol = ""
    subs: list[Subscriber] = []
    udp: array[int] = array("q")
    ws: array[int] = array("q")
    try:
        for seq, cmd in enumerate(commands, 1):
            events = engine.apply(seq, time.time_ns(), cmd)
            t0 = time.perf_counter_ns()
            binary.on_events(cmd, events)
            t1 = time.perf_counter_ns()
            feed.on_events(events)
            t2 = time.perf_counter_ns()
            if seq > 1:
                udp.append(t1 - t0)
                ws.append(t2 - t1)
            if isinstance(cmd, AddInstrument) and not subs:
                symbol = cmd.symbol
                for i in range(subscribers):
                    sub = feed.connect(f"bench{i}", max_queued=len(commands) * 8)
                    feed.handle(
                        sub,
                        json.dumps(
                            {
                                "op": "subscribe",
                                "channels": ["l1", "l2", "trade"],
                                "symbols": [symbol],
                            }
                        ),
                    )
                    sub.drain()
                    subs.append(sub)
            if seq % 1000 == 0:
                for sub in subs:
                    sub.drain()
    finally:
        await binary.close()
        sink.close()
    return {
        "commands": len(commands) - 1,
        "udp_messages": binary.messages_sent,
        "ws_published": feed.published,
        "subscribers": subscribers,
        "udp": _percentiles(udp),
        "ws": _percentiles(ws),
    }


def inprocess(messages: int = 200_000, subscribers: int = 1) -> dict[str, object]:
    stream = generate_stream(messages)
    return _run(_inprocess(stream.commands, subscribers))


# ------------------------------------------------------------------------------ fan-out


async def _fanout_server(rate: int, seconds: float) -> None:
    import uvicorn

    from tradingfloor.exchange.http import create_app
    from tradingfloor.node.serve import _Server

    _raise_fd_limit()
    engine = Engine()
    feed = MarketDataFeed()
    seq = 0

    def apply(cmd: Command) -> None:
        nonlocal seq
        seq += 1
        feed.on_events(engine.apply(seq, time.time_ns(), cmd))

    apply(AddInstrument(symbol="AAPL"))
    config = uvicorn.Config(
        create_app(feed),
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_level="warning",
        backlog=4096,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    print(f"WS listening on 127.0.0.1:{port}", flush=True)
    go = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, go.set)
    await go.wait()
    start = time.perf_counter()
    i = 0
    total = int(rate * seconds)
    while i < total:
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        side = Side.BUY if i % 2 == 0 else Side.SELL
        apply(NewOrder(symbol="AAPL", member="M", cl_ord_id=f"o{i}", side=side, qty=1, price=100))
        i += 1
    await asyncio.sleep(2.0)  # let the writers drain
    print(
        json.dumps({"published": feed.published, "enqueued": feed.enqueued, "drops": feed.drops}),
        flush=True,
    )
    server.should_exit = True
    await task


async def _fanout_clients(
    port: int, clients: int, ready: asyncio.Event, latencies: array[int], counts: dict[str, int]
) -> list[asyncio.Task[None]]:
    import websockets

    url = f"ws://127.0.0.1:{port}/ws/marketdata"
    sub = json.dumps({"op": "subscribe", "channels": ["trade"], "symbols": ["AAPL"]})

    async def one() -> None:
        async with websockets.connect(url, max_queue=None, ping_interval=None) as ws:
            await ws.send(sub)
            await ws.recv()  # the snapshot
            counts["connected"] += 1
            async for raw in ws:
                now = time.time_ns()
                msg = json.loads(raw)
                if msg.get("type") == "trade" and not msg.get("snapshot"):
                    latencies.append(now - int(msg["timestamp"]))
                    counts["received"] += 1

    tasks = []
    for _ in range(clients):
        tasks.append(asyncio.create_task(one()))
        if len(tasks) % 100 == 0:
            await asyncio.sleep(0.05)
    while counts["connected"] < clients:
        done = [t for t in tasks if t.done()]
        for t in done:
            t.result()
        await asyncio.sleep(0.05)
    ready.set()
    return tasks


def fanout(clients: int = 1000, rate: int = 100, seconds: float = 10.0) -> dict[str, object]:
    _raise_fd_limit()
    cmd = [
        sys.executable,
        "-c",
        "from tradingfloor.bench.marketdata_bench import _server_main; _server_main()",
        str(rate),
        str(seconds),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    assert proc.stdout is not None
    port = 0
    for line in proc.stdout:
        match = _READY.search(line)
        if match:
            port = int(match.group(2))
            break
    if not port:
        proc.kill()
        raise RuntimeError("fan-out server did not start")
    latencies: array[int] = array("q")
    counts = {"connected": 0, "received": 0}

    async def drive() -> float:
        ready = asyncio.Event()
        started = time.perf_counter()
        tasks = await _fanout_clients(port, clients, ready, latencies, counts)
        connect_s = time.perf_counter() - started
        proc.send_signal(signal.SIGUSR1)
        await asyncio.sleep(seconds + 2.5)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return connect_s

    try:
        connect_s = _run(drive())
        server_line = proc.stdout.readline()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    server = json.loads(server_line) if server_line.strip() else {}
    trades = int(rate * seconds) // 2
    return {
        "clients": clients,
        "rate": rate,
        "seconds": seconds,
        "connect_seconds": round(connect_s, 2),
        "trades": trades,
        "expected": trades * clients,
        "received": counts["received"],
        "server": server,
        "latency": _percentiles(latencies),
    }


def _server_main() -> None:
    rate, seconds = int(sys.argv[1]), float(sys.argv[2])
    _run(_fanout_server(rate, seconds))


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)
    return uvloop.run(coro)


def main(
    messages: int = 200_000, clients: int = 1000, rate: int = 100, seconds: float = 10.0
) -> None:
    r = inprocess(messages, subscribers=1)
    print(f"In process, {r['commands']:,} commands of the engine benchmark stream:")
    udp, ws = cast(dict[str, float], r["udp"]), cast(dict[str, float], r["ws"])
    print(f"  event -> UDP sendto ({r['udp_messages']:,} ITCH messages): {_fmt(udp)}")
    print(
        f"  event -> WebSocket queue ({r['ws_published']:,} messages, 1 subscriber of "
        f"l1+l2+trade): {_fmt(ws)}"
    )
    f = fanout(clients, rate, seconds)
    print(
        f"Fan-out: {f['clients']:,} WebSocket clients on loopback, {f['rate']} commands/s "
        f"for {f['seconds']} s ({f['trades']:,} trades), connected in {f['connect_seconds']} s"
    )
    print(f"  trade messages received {f['received']:,} of {f['expected']:,}; server {f['server']}")
    print(f"  engine -> client receive: {_fmt(cast(dict[str, float], f['latency']))}")
