"""FIX order-to-acknowledgement latency at a sustained rate against a real `tradingfloor serve`.

Starts ``tradingfloor serve`` in a child process (fresh data directory, ephemeral ports, no UDP
feed), logs on as a member over TCP on loopback and sends NewOrderSingles at a fixed rate for
a fixed time: pairs of a buy and a sell of one share at the same price, so every second order
trades and the book stays small. The latency of an order is from just before its bytes are
written to the socket until its first ExecutionReport (new or rejected) has been decoded. The
server acknowledges only after the order is in its fsync'd journal, so this includes the disk.
The first second is warm-up and not counted. Results are printed, never asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass, field
from typing import Final

from tradingfloor.bench.engine_bench import Percentiles
from tradingfloor.bench.serve_child import run_loop, serve_child
from tradingfloor.exchange.fix import tags as t
from tradingfloor.exchange.fix.codec import Message, StreamDecoder, encode, utc_timestamp

__all__ = ["FixBenchResult", "main", "run"]

_READY: Final = re.compile(r"FIX listening on ([\d.]+):(\d+)")
_SEND_TICK_S: Final = 0.001


@dataclass(slots=True)
class FixBenchResult:
    rate: int
    seconds: float
    sent: int = 0
    acked: int = 0
    rejected: int = 0
    reports: int = 0
    elapsed: float = 0.0
    drained: float = 0.0  # seconds from the first order sent to the last one acknowledged
    latencies_ns: list[int] = field(default_factory=list)

    def latency(self) -> Percentiles:
        """Order-to-ack percentiles in microseconds (nearest rank, as the engine benchmark)."""
        return Percentiles.from_ns(self.latencies_ns)


class _Client:
    def __init__(self, sender: str, target: str) -> None:
        self.sender = sender
        self.target = target
        self.seq = 0
        self.decoder = StreamDecoder()
        self.writer: asyncio.StreamWriter | None = None

    def frame(self, msg_type: str, body: list[tuple[int, str]]) -> bytes:
        self.seq += 1
        header = [
            (t.SenderCompID, self.sender),
            (t.TargetCompID, self.target),
            (t.MsgSeqNum, str(self.seq)),
            (t.SendingTime, utc_timestamp(time.time_ns())),
        ]
        return encode(t.BEGIN_STRING, msg_type, header, body)


async def _session(host: str, port: int, result: FixBenchResult, password: str) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    client = _Client("MEMBER1", "TFEX")
    writer.write(
        client.frame(
            t.MT_LOGON,
            [
                (t.EncryptMethod, "0"),
                (t.HeartBtInt, "30"),
                (t.ResetSeqNumFlag, "Y"),
                (t.Password, password),
            ],
        )
    )
    sent_at: dict[str, int] = {}
    warmup_end = 0
    logged_on = asyncio.Event()
    done = asyncio.Event()

    async def read() -> None:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                done.set()
                return
            now = time.perf_counter_ns()
            for item in client.decoder.feed(data):
                if not isinstance(item, Message):
                    continue
                msg_type = item.msg_type
                if msg_type == t.MT_LOGON:
                    logged_on.set()
                elif msg_type == t.MT_EXECUTION_REPORT:
                    result.reports += 1
                    cl = item.get(t.ClOrdID) or ""
                    start = sent_at.pop(cl, None)
                    if start is None:
                        continue  # a later report of an order already acknowledged
                    if item.get(t.ExecType) == t.EXEC_REJECTED:
                        result.rejected += 1
                    result.acked += 1
                    if start >= warmup_end:
                        result.latencies_ns.append(now - start)
                    result.drained = now / 1e9 - start_time
                    if result.acked == result.sent and sending_done.is_set():
                        done.set()
                elif msg_type == t.MT_LOGOUT:
                    done.set()
                    return

    sending_done = asyncio.Event()
    reader_task = asyncio.create_task(read())
    await asyncio.wait_for(logged_on.wait(), 10)
    per_tick = max(1, round(result.rate * _SEND_TICK_S))
    total = int(result.rate * result.seconds)
    start_time = time.perf_counter()
    warmup_end = time.perf_counter_ns() + 1_000_000_000
    i = 0
    while i < total:
        due = start_time + (i / result.rate)
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        burst = min(per_tick, total - i)
        chunks = []
        now = time.perf_counter_ns()
        for k in range(i, i + burst):
            cl = f"o{k}"
            side = t.SIDE_BUY if k % 2 == 0 else t.SIDE_SELL
            chunks.append(
                client.frame(
                    t.MT_NEW_ORDER_SINGLE,
                    [
                        (t.ClOrdID, cl),
                        (t.Symbol, "AAPL"),
                        (t.Side, side),
                        (t.TransactTime, utc_timestamp(time.time_ns())),
                        (t.OrderQty, "1"),
                        (t.OrdType, t.ORD_LIMIT),
                        (t.Price, "190.00"),
                        (t.TimeInForce, t.TIF_DAY),
                    ],
                )
            )
            sent_at[cl] = now
        writer.write(b"".join(chunks))
        result.sent += burst
        i += burst
    result.elapsed = time.perf_counter() - start_time
    sending_done.set()
    if result.acked < result.sent:
        with contextlib.suppress(TimeoutError):  # report what arrived
            await asyncio.wait_for(done.wait(), 30)
    writer.write(client.frame(t.MT_LOGOUT, []))
    await asyncio.sleep(0.2)
    reader_task.cancel()
    writer.close()


def run(rate: int = 10_000, seconds: float = 10.0) -> FixBenchResult:
    """Start a server, drive it, stop it; return the measurements."""
    result = FixBenchResult(rate=rate, seconds=seconds)
    with serve_child(_READY, ["--no-broker"]) as (host, port):  # the exchange alone
        run_loop(_session(host, port, result, "member1-secret"))
    return result


def main(rate: int = 10_000, seconds: float = 10.0) -> None:
    r = run(rate, seconds)
    achieved = r.sent / r.elapsed if r.elapsed else 0.0
    print(f"FIX order-to-ack over loopback, {r.rate:,} orders/s for {r.seconds:g} s")
    print(f"  sent {r.sent:,} orders in {r.elapsed:.2f} s ({achieved:,.0f}/s achieved)")
    print(f"  acknowledged {r.acked:,} (rejected {r.rejected:,}), {r.reports:,} reports in all")
    if r.drained:
        print(
            f"  last acknowledgement {r.drained:.2f} s after the first order: "
            f"{r.acked / r.drained:,.0f} orders/s acknowledged"
        )
    print(f"  measured after 1 s warm-up: {len(r.latencies_ns):,} orders")
    if r.latencies_ns:
        lat = r.latency()
        rows = (("p50", lat.p50), ("p90", lat.p90), ("p99", lat.p99), ("p99.9", lat.p999))
        for name, value in (*rows, ("max", lat.max)):
            print(f"  {name}: {value:,.0f} µs")
