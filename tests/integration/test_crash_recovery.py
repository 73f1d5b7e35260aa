"""Crash under load: `serve` in a child process, killed with SIGKILL at random points while two
FIX members and a broker customer (REST) trade, restarted each time, then audited.

After the last restart the test counts, and requires to be zero:

* acknowledged-but-missing orders: a FIX order the member saw accepted (ExecutionReport 150=0)
  or a REST order answered 200, that the venue's journal or the broker's database lacks;
* lost or duplicated fills: for every order, the quantity the client was told filled (over the
  distinct ExecIDs it received, resends included) must equal what the journal says filled, and
  the broker's positions must equal the journal's fills of its orders;
* changed ExecIDs: an ExecID received twice (a resend after the restart) must carry the same
  execution both times.

Slow (about a minute per database):
``.venv/bin/pytest -m slow tests/integration/test_crash_recovery.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import re
import signal
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from api_customer import api_customer
from pg import new_database, postgres_session
from tradingfloor.exchange.engine import Engine
from tradingfloor.exchange.engine.events import Accepted, Trade
from tradingfloor.exchange.fix import tags as t
from tradingfloor.exchange.fix.codec import Message, StreamDecoder, encode, utc_timestamp
from tradingfloor.exchange.journal import JournalReader

pytestmark = pytest.mark.slow

ROUNDS = 5
ADMIN_PASSWORD = "Chief-passw0rd-1"
FIX_PASSWORDS = {"MEMBER1": "member1-secret", "MEMBER2": "member2-secret"}
_PORT = re.compile(r"(FIX|Broker API) listening on [\d.]+:(\d+)")


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from postgres_session(tmp_path_factory)


@dataclass
class Child:
    proc: asyncio.subprocess.Process
    fix_port: int
    broker_port: int
    drain: asyncio.Task[None]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)

    async def wait(self) -> int:
        code = await self.proc.wait()
        self.drain.cancel()
        return code


async def start_serve(data_dir: Path, db_url: str | None) -> Child:
    args = [
        sys.executable, "-m", "tradingfloor", "serve",
        "--data-dir", str(data_dir),
        "--fix-port", "0", "--http-port", "0", "--broker-port", "0", "--no-udp-feed",
        "--api-rate-limit", "1000000",
    ]  # fmt: skip
    if db_url is not None:
        args += ["--db-url", db_url]
    env = {**os.environ, "TF_ADMIN_PASSWORD": ADMIN_PASSWORD}
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env
    )
    assert proc.stdout is not None
    ports: dict[str, int] = {}
    lines: list[str] = []
    async with asyncio.timeout(60):
        while True:
            raw = await proc.stdout.readline()
            if not raw:
                raise RuntimeError("serve exited before Ready:\n" + "".join(lines))
            line = raw.decode(errors="replace")
            lines.append(line)
            found = _PORT.search(line)
            if found:
                ports[found.group(1)] = int(found.group(2))
            if line.startswith("Ready"):
                break

    log = data_dir.parent / "serve.log"

    async def drain() -> None:  # kept for the failure's message
        assert proc.stdout is not None
        with log.open("a") as out:
            out.writelines(lines)
            while line := await proc.stdout.readline():
                out.write(line.decode(errors="replace"))

    return Child(proc, ports["FIX"], ports["Broker API"], asyncio.create_task(drain()))


@dataclass
class Ledger:
    """What the clients were told, across every round."""

    fix_acked: set[tuple[str, str]] = field(default_factory=set)  # (member, ClOrdID)
    exec_seen: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    filled: dict[tuple[str, str], dict[str, int]] = field(
        default_factory=lambda: defaultdict(dict)
    )  # (member, ClOrdID) -> ExecID -> LastQty
    changed_exec_ids: list[str] = field(default_factory=list)
    rest_acked: dict[str, str] = field(default_factory=dict)  # order id -> client order id


class FixMember:
    """A FIX 4.4 initiator that keeps its sequence numbers across the venue's restarts and does
    the session's recovery (answers resend requests with a gap fill, asks for what it missed)."""

    def __init__(self, comp_id: str, ledger: Ledger) -> None:
        self.comp_id = comp_id
        self.ledger = ledger
        self.out_seq = 0
        self.in_expected = 1
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.pump: asyncio.Task[None] | None = None
        self.heartbeats: asyncio.Queue[str] = asyncio.Queue()
        self.trace: list[str] = []  # the session's last messages, for a failure's message

    async def connect(self, port: int, *, first: bool) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        body = [(t.EncryptMethod, "0"), (t.HeartBtInt, "30")]
        if first:
            body.append((t.ResetSeqNumFlag, "Y"))
        self.send(t.MT_LOGON, [*body, (t.Password, FIX_PASSWORDS[self.comp_id])])
        self.pump = asyncio.create_task(self._pump())

    def send(self, msg_type: str, body: list[tuple[int, str]], seq: int | None = None) -> None:
        assert self.writer is not None
        if seq is None:
            self.out_seq += 1
            seq = self.out_seq
        now = utc_timestamp(time.time_ns())
        header = [
            (t.SenderCompID, self.comp_id),
            (t.TargetCompID, "TFEX"),
            (t.MsgSeqNum, str(seq)),
            (t.SendingTime, now),
        ]
        if msg_type == t.MT_SEQUENCE_RESET:  # a gap fill stands in for resent messages
            header += [(t.PossDupFlag, "Y"), (t.OrigSendingTime, now)]
        self.writer.write(encode(t.BEGIN_STRING, msg_type, header, body))
        self._trace(f"> {msg_type} {seq} {body[:3]}")

    def _trace(self, line: str) -> None:
        self.trace = [*self.trace[-30:], line]

    async def _pump(self) -> None:
        assert self.reader is not None
        decoder = StreamDecoder()
        with contextlib.suppress(ConnectionError, OSError):
            while data := await self.reader.read(65536):
                for msg in decoder.feed(data):
                    if isinstance(msg, Message):
                        self._on(msg)

    def _on(self, msg: Message) -> None:
        kind = msg.msg_type
        self._trace(
            f"< {kind} {msg.seq_num} {msg.get(t.Text) or ''} {msg.get(t.PossDupFlag) or ''}"
        )
        if kind == t.MT_SEQUENCE_RESET:
            self.in_expected = max(self.in_expected, int(msg.get(t.NewSeqNo) or "0"))
            return
        if msg.seq_num > self.in_expected and msg.get(t.PossDupFlag) != "Y":
            # missed messages: ask for them (they come back before this one is replayed)
            self.send(
                t.MT_RESEND_REQUEST, [(t.BeginSeqNo, str(self.in_expected)), (t.EndSeqNo, "0")]
            )
        if msg.seq_num >= self.in_expected:
            self.in_expected = msg.seq_num + 1
        if kind == t.MT_RESEND_REQUEST:
            # nothing of ours needs resending: orders not received are simply not acknowledged
            self.send(
                t.MT_SEQUENCE_RESET,
                [(t.GapFillFlag, "Y"), (t.NewSeqNo, str(self.out_seq + 1))],
                seq=int(msg.get(t.BeginSeqNo) or "1"),
            )
        elif kind == t.MT_TEST_REQUEST:
            self.send(t.MT_HEARTBEAT, [(t.TestReqID, msg.get(t.TestReqID) or "")])
        elif kind == t.MT_HEARTBEAT and msg.get(t.TestReqID):
            self.heartbeats.put_nowait(msg.get(t.TestReqID) or "")
        elif kind == t.MT_EXECUTION_REPORT:
            self._on_report(msg)

    def _on_report(self, msg: Message) -> None:
        key = (self.comp_id, msg.get(t.ClOrdID) or "")
        exec_id = msg.get(t.ExecID) or ""
        exec_type = msg.get(t.ExecType) or ""
        content = (key[1], exec_type, msg.get(t.LastQty) or "", msg.get(t.LastPx) or "")
        seen = self.ledger.exec_seen.setdefault(exec_id, content)
        if seen != content:
            self.ledger.changed_exec_ids.append(exec_id)
        if exec_type in (t.EXEC_NEW, t.EXEC_TRADE):
            self.ledger.fix_acked.add(key)
        if exec_type == t.EXEC_TRADE:
            self.ledger.filled[key][exec_id] = int(Decimal(msg.get(t.LastQty) or "0"))

    async def sync(self, label: str) -> None:
        """Wait until the venue has answered everything sent before (a TestRequest round trip).

        A TestRequest sent while the venue still waits for our gap fill is itself gap-filled
        away, so it is repeated (with a new id) until one is answered.
        """
        assert self.pump is not None
        try:
            await self._sync(label)
        except TimeoutError:
            raise AssertionError("\n".join([f"{self.comp_id}: no answer", *self.trace])) from None

    async def _sync(self, label: str) -> None:
        assert self.pump is not None
        async with asyncio.timeout(60):
            for attempt in itertools.count():
                wanted = f"{label}-{attempt}"
                self.send(t.MT_TEST_REQUEST, [(t.TestReqID, wanted)])
                deadline = asyncio.get_running_loop().time() + 2
                while (left := deadline - asyncio.get_running_loop().time()) > 0:
                    got = asyncio.ensure_future(self.heartbeats.get())
                    await asyncio.wait(
                        [got, self.pump], timeout=left, return_when="FIRST_COMPLETED"
                    )
                    if not got.done():
                        got.cancel()
                        if self.pump.done():
                            raise ConnectionError(f"{self.comp_id}: the venue closed the session")
                        break
                    if got.result() == wanted:
                        return

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        if self.pump is not None:
            self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pump


def _order(cl: str, side: str, price: str) -> list[tuple[int, str]]:
    return [
        (t.ClOrdID, cl),
        (t.Symbol, "AAPL"),
        (t.Side, side),
        (t.TransactTime, utc_timestamp(0)),
        (t.OrderQty, "1"),
        (t.OrdType, t.ORD_LIMIT),
        (t.Price, price),
    ]


async def _load(
    members: dict[str, FixMember],
    http: httpx.AsyncClient,
    key: dict[str, str],
    ledger: Ledger,
    n: list[int],
) -> None:
    """Crossing orders from both FIX members and REST buys, until cancelled (by the kill)."""
    while True:
        n[0] += 1
        i = n[0]
        members["MEMBER2"].send(t.MT_NEW_ORDER_SINGLE, _order(f"s{i}", t.SIDE_SELL, "190.00"))
        members["MEMBER1"].send(t.MT_NEW_ORDER_SINGLE, _order(f"b{i}", t.SIDE_BUY, "190.00"))
        if i % 2 == 0:
            body = {
                "symbol": "AAPL",
                "qty": "1",
                "side": "buy",
                "type": "limit",
                "time_in_force": "gtc",
                "limit_price": "190.00",
                "client_order_id": f"r{i}",
            }
            try:
                response = await http.post("/v2/orders", json=body, headers=key)
            except httpx.HTTPError:
                return
            if response.status_code == 200 and response.json()["status"] != "rejected":
                ledger.rest_acked[response.json()["id"]] = body["client_order_id"]
        else:
            await asyncio.sleep(0.002)


@contextlib.asynccontextmanager
async def _clients(
    child: Child, members: dict[str, FixMember], *, first: bool
) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{child.broker_port}", timeout=30
    ) as http:
        for member in members.values():
            await member.connect(child.fix_port, first=first)
        try:
            yield http
        finally:
            for member in members.values():
                await member.close()


def _journal_truth(journal_dir: Path) -> tuple[set[tuple[str, str]], dict[tuple[str, str], int]]:
    """(accepted (member, cl_ord_id), filled qty per (member, cl_ord_id)) from the journal."""
    engine = Engine()
    accepted: set[tuple[str, str]] = set()
    filled: dict[tuple[str, str], int] = defaultdict(int)
    for record in JournalReader(journal_dir):
        for ev in engine.apply(record.seq, record.ts, record.command):
            if isinstance(ev, Accepted):
                accepted.add((ev.member, ev.cl_ord_id))
            elif isinstance(ev, Trade):
                filled[(ev.maker_member, ev.maker_cl_ord_id)] += ev.qty
                filled[(ev.taker_member, ev.taker_cl_ord_id)] += ev.qty
    return accepted, filled


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_no_acknowledged_order_or_fill_is_lost_or_doubled_across_kill_9(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    db_url = None
    if backend == "postgresql":
        db_url = await new_database(request.getfixturevalue("postgres_url"))
    data_dir = tmp_path / "venue"
    rng = random.Random(20261207)
    ledger = Ledger()
    members = {name: FixMember(name, ledger) for name in FIX_PASSWORDS}
    key: dict[str, str] = {}
    counter = [0]
    for round_no in range(ROUNDS):
        child = await start_serve(data_dir, db_url)
        async with _clients(child, members, first=round_no == 0) as http:
            if round_no == 0:
                key, _account = await api_customer(
                    http, ADMIN_PASSWORD, username="killer", extra_deposit="1000000"
                )
            load = asyncio.create_task(_load(members, http, key, ledger, counter))
            await asyncio.sleep(rng.uniform(0.3, 1.5))
            child.kill()
            await child.wait()
            load.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await load

    # The last restart: no load, every client catches up, then the audit.
    child = await start_serve(data_dir, db_url)
    try:
        async with _clients(child, members, first=False) as http:
            for member in members.values():
                member.send(t.MT_RESEND_REQUEST, [(t.BeginSeqNo, "1"), (t.EndSeqNo, "0")])
            for member in members.values():
                await member.sync("audit")
            orders = (
                await http.get("/v2/orders", params={"status": "all", "limit": 500}, headers=key)
            ).json()
            positions = (await http.get("/v2/positions", headers=key)).json()
    finally:
        child.proc.send_signal(signal.SIGTERM)
        assert await child.wait() == 0

    accepted, venue_filled = _journal_truth(data_dir / "journal")
    assert counter[0] > 20, "the load never ran"
    assert ledger.rest_acked, "no REST order was acknowledged"
    missing_fix = ledger.fix_acked - accepted
    assert not missing_fix, (
        f"{len(missing_fix)} acknowledged FIX orders missing: {sorted(missing_fix)[:5]}"
    )
    by_id = {o["id"]: o for o in orders}
    missing_rest = ledger.rest_acked.keys() - by_id.keys()
    assert not missing_rest, f"{len(missing_rest)} acknowledged REST orders missing"
    renamed = {i: c for i, c in ledger.rest_acked.items() if by_id[i]["client_order_id"] != c}
    assert not renamed, f"client order ids lost (a retry would place a second order): {renamed}"
    told = {key_: sum(fills.values()) for key_, fills in ledger.filled.items()}
    fix_filled = {k: v for k, v in venue_filled.items() if k[0] in FIX_PASSWORDS}
    wrong = {k: (told.get(k, 0), v) for k, v in fix_filled.items() if told.get(k, 0) != v}
    wrong |= {k: (v, fix_filled.get(k, 0)) for k, v in told.items() if fix_filled.get(k, 0) != v}
    assert not wrong, (
        f"fills told != journal for {len(wrong)} orders, e.g. {list(wrong.items())[:5]}"
    )
    assert not ledger.changed_exec_ids, (
        f"ExecIDs reused for other executions: {ledger.changed_exec_ids[:5]}"
    )
    for order in orders:
        assert int(order["filled_qty"]) == venue_filled.get(("TFBROKER", order["id"]), 0), order
    broker_bought = sum(v for (member, _cl), v in venue_filled.items() if member == "TFBROKER")
    held = sum(int(p["qty"]) for p in positions if p["symbol"] == "AAPL")
    assert held == broker_bought
