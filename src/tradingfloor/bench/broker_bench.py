"""REST order submit-to-ack latency at a sustained rate against a real `tradingfloor serve`.

Starts ``tradingfloor serve`` in a child process (fresh data directory, ephemeral ports, SQLite,
no UDP feed), sets up two approved margin accounts through the native API (admin login,
customers, KYC, deposits, traders with API keys), then POSTs ``/v2/orders`` at a fixed rate
for a fixed time over keep-alive HTTP/1.1 connections on loopback: each account alternately
buys and sells one share at one price, so the two accounts trade with each other and neither
position nor book grows. An order's latency runs from its scheduled send time (so a stalled
server cannot hide queued requests) to the end of the response. The broker answers after its
order row is committed to SQLite and the venue has journaled (fsync) and matched the order.
The first second is warm-up and not counted. Results are printed, never asserted.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Final

from tradingfloor.bench.engine_bench import Percentiles
from tradingfloor.bench.serve_child import run_loop, serve_child

__all__ = ["ADMIN_PASSWORD", "BrokerBenchResult", "main", "run"]

_READY: Final = re.compile(r"Broker API listening on ([\d.]+):(\d+)")
ADMIN_PASSWORD: Final = "bench-Sup3r-secret"
_CONNECTIONS: Final = 32
_WARMUP_S: Final = 1.0


@dataclass(slots=True)
class BrokerBenchResult:
    rate: int
    seconds: float
    sent: int = 0
    ok: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies_ns: list[int] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)

    def latency(self) -> Percentiles:
        return Percentiles.from_ns(self.latencies_ns)


class _Connection:
    """One keep-alive HTTP/1.1 connection: a request, then its whole response, in turn."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def request(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        lines = [f"{method} {path} HTTP/1.1", "Host: broker", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        payload = await self.reader.readexactly(length) if length else b""
        return status, payload

    def close(self) -> None:
        self.writer.close()


async def _call(
    conn: _Connection,
    method: str,
    path: str,
    data: Any = None,
    headers: dict[str, str] | None = None,
    *,
    form: bool = False,
) -> Any:
    hdrs = dict(headers or {})
    if form:
        body = urllib.parse.urlencode(data).encode()
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
    else:
        body = json.dumps(data).encode() if data is not None else b""
        if data is not None:
            hdrs["Content-Type"] = "application/json"
    status, payload = await conn.request(method, path, body, hdrs)
    if status >= 300:
        raise RuntimeError(f"{method} {path} -> {status}: {payload[:300]!r}")
    return json.loads(payload) if payload else None


async def _setup(conn: _Connection) -> list[dict[str, str]]:
    """Two funded margin accounts, each with a trader's API key; returns their key headers."""
    token = await _call(
        conn,
        "POST",
        "/api/auth/token",
        {"username": "admin", "password": ADMIN_PASSWORD, "grant_type": "password"},
        form=True,
    )
    admin = {"Authorization": f"Bearer {token['access_token']}"}
    keys = []
    run_id = os.urandom(4).hex()  # a server may have seen earlier runs (--server)
    for n in (1, 2):
        customer = await _call(
            conn, "POST", "/api/customers", {"name": f"Bench {n}", "email": f"b{n}@x.test"}, admin
        )
        cid = customer["id"]
        await _call(conn, "POST", f"/api/customers/{cid}/kyc", {"status": "approved"}, admin)
        account = await _call(
            conn, "POST", f"/api/customers/{cid}/accounts", {"account_type": "margin"}, admin
        )
        await _call(
            conn, "POST", f"/api/accounts/{account['id']}/deposits", {"amount": "90000"}, admin
        )
        user = {
            "username": f"bench{n}-{run_id}",
            "password": "bench-Passw0rd-x",
            "role": "trader",
            "customer_id": cid,
        }
        await _call(conn, "POST", "/api/users", user, admin)
        login = await _call(
            conn,
            "POST",
            "/api/auth/token",
            {"username": user["username"], "password": user["password"], "grant_type": "password"},
            form=True,
        )
        key = await _call(
            conn,
            "POST",
            "/api/me/api-keys",
            {"label": "bench"},
            {"Authorization": f"Bearer {login['access_token']}"},
        )
        keys.append({"APCA-API-KEY-ID": key["key_id"], "APCA-API-SECRET-KEY": key["secret"]})
    return keys


async def _drive(host: str, port: int, result: BrokerBenchResult) -> None:
    setup = await _Connection.open(host, port)
    keys = await _setup(setup)
    setup.close()
    idle: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(_CONNECTIONS):
        idle.put_nowait(await _Connection.open(host, port))
    interval = 1.0 / result.rate
    start = time.perf_counter()
    warm_until = start + _WARMUP_S
    pending: set[asyncio.Task[None]] = set()

    async def one(n: int, scheduled: float) -> None:
        conn = await idle.get()
        # account n%2 buys then sells (alternating per pair), the other takes the other side
        pair, leg = divmod(n, 2)
        side = ("buy", "sell")[(pair + leg) % 2]
        body = json.dumps(
            {
                "symbol": "AAPL",
                "qty": "1",
                "side": side,
                "type": "limit",
                "time_in_force": "day",
                "limit_price": "190.00",
            }
        ).encode()
        headers = {**keys[leg], "Content-Type": "application/json"}
        try:
            status, _ = await conn.request("POST", "/v2/orders", body, headers)
        except (OSError, asyncio.IncompleteReadError):
            result.errors += 1
            return
        done = time.perf_counter()
        idle.put_nowait(conn)
        key = str(status)
        result.statuses[key] = result.statuses.get(key, 0) + 1
        if status == 200:
            result.ok += 1
        else:
            result.errors += 1
        if scheduled >= warm_until:
            result.latencies_ns.append(int((done - scheduled) * 1e9))

    n = 0
    deadline = start + result.seconds
    while True:
        scheduled = start + n * interval
        if scheduled >= deadline:
            break
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(n, scheduled))
        pending.add(task)
        task.add_done_callback(pending.discard)
        n += 1
    result.sent = n
    await asyncio.gather(*pending)
    result.elapsed = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait().close()


def run(
    rate: int = 1_000, seconds: float = 10.0, *, server: tuple[str, int] | None = None
) -> BrokerBenchResult:
    """Start a server (or use ``server``, started with TF_ADMIN_PASSWORD=ADMIN_PASSWORD and a
    high --api-rate-limit), drive it, stop it; return the measurements."""
    result = BrokerBenchResult(rate=rate, seconds=seconds)
    if server is not None:
        run_loop(_drive(server[0], server[1], result))
        return result
    extra = ["--api-rate-limit", "10000000"]  # the benchmark measures latency, not the limiter
    with serve_child(_READY, extra, {"TF_ADMIN_PASSWORD": ADMIN_PASSWORD}) as (host, port):
        run_loop(_drive(host, port, result))
    return result


def main(rate: int = 1_000, seconds: float = 10.0, server: tuple[str, int] | None = None) -> None:
    r = run(rate, seconds, server=server)
    achieved = r.sent / r.elapsed if r.elapsed else 0.0
    print(f"REST order submit-to-ack over loopback, {r.rate:,} orders/s for {r.seconds:g} s")
    print(f"  sent {r.sent:,} orders in {r.elapsed:.2f} s ({achieved:,.0f}/s achieved)")
    print(f"  answered 200: {r.ok:,}; other: {r.errors:,} {r.statuses}")
    print(f"  measured after {_WARMUP_S:g} s warm-up: {len(r.latencies_ns):,} orders")
    if r.latencies_ns:
        lat = r.latency()
        rows = (("p50", lat.p50), ("p90", lat.p90), ("p99", lat.p99), ("p99.9", lat.p999))
        for name, value in (*rows, ("max", lat.max)):
            print(f"  {name}: {value:,.0f} µs")
