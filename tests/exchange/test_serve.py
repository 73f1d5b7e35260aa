"""`tradingfloor serve` assembled in process: FIX in, reports out, market data, restarts."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import websockets

from api_customer import api_customer
from tradingfloor.exchange.engine.commands import NewOrder
from tradingfloor.exchange.engine.types import Side
from tradingfloor.exchange.fix import tags as t
from tradingfloor.exchange.fix.codec import Message, StreamDecoder, encode, utc_timestamp
from tradingfloor.exchange.sequencer import JournaledEngine
from tradingfloor.node.serve import ServeOptions, VenueServer

PASSWORDS = {"MEMBER1": "member1-secret", "MEMBER2": "member2-secret"}


class Client:
    """A minimal FIX initiator over asyncio streams (the QuickFIX peer is in tests/integration)."""

    def __init__(self, comp_id: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.comp_id = comp_id
        self.reader = reader
        self.writer = writer
        self.seq = 0
        self.decoder = StreamDecoder()
        self.inbox: list[Message] = []

    @classmethod
    async def logon(cls, port: int, comp_id: str, *, reset: bool = True, seq: int = 0) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(comp_id, reader, writer)
        client.seq = seq
        body = [(t.EncryptMethod, "0"), (t.HeartBtInt, "30")]
        if reset:
            body.append((t.ResetSeqNumFlag, "Y"))
        client.send(t.MT_LOGON, [*body, (t.Password, PASSWORDS[comp_id])])
        await client.expect(lambda m: m.msg_type == t.MT_LOGON)
        return client

    def send(self, msg_type: str, body: list[tuple[int, str]]) -> None:
        self.seq += 1
        header = [
            (t.SenderCompID, self.comp_id),
            (t.TargetCompID, "TFEX"),
            (t.MsgSeqNum, str(self.seq)),
            (t.SendingTime, utc_timestamp(__import__("time").time_ns())),
        ]
        self.writer.write(encode(t.BEGIN_STRING, msg_type, header, body))

    async def expect(self, match: object, timeout: float = 5.0) -> Message:
        assert callable(match)
        async with asyncio.timeout(timeout):
            while True:
                for i, msg in enumerate(self.inbox):
                    if match(msg):
                        return self.inbox.pop(i)
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("closed by the venue")
                self.inbox += [m for m in self.decoder.feed(data) if isinstance(m, Message)]

    def order(self, cl: str, side: str, price: str, qty: int = 10, symbol: str = "AAPL") -> None:
        self.send(
            t.MT_NEW_ORDER_SINGLE,
            [
                (t.ClOrdID, cl),
                (t.Symbol, symbol),
                (t.Side, side),
                (t.TransactTime, utc_timestamp(0)),
                (t.OrderQty, str(qty)),
                (t.OrdType, t.ORD_LIMIT),
                (t.Price, price),
            ],
        )

    async def report(self, cl: str, exec_type: str) -> Message:
        return await self.expect(
            lambda m: (
                m.msg_type == t.MT_EXECUTION_REPORT
                and m.get(t.ClOrdID) == cl
                and m.get(t.ExecType) == exec_type
            )
        )

    async def close(self) -> None:
        self.writer.close()
        await asyncio.gather(self.writer.wait_closed(), return_exceptions=True)


def options(data_dir: Path) -> ServeOptions:
    return ServeOptions(
        data_dir=data_dir,
        fix_port=0,
        http_port=0,
        broker_port=0,
        udp_feed=None,
        tick_interval=None,
        announce=lambda _line: None,
    )


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[VenueServer]:
    srv = VenueServer(options(tmp_path / "venue"))
    await srv.start()
    yield srv
    await srv.stop()


async def test_orders_trade_and_every_feed_sees_it(server: VenueServer) -> None:
    url = f"ws://127.0.0.1:{server.http_port}/ws/marketdata"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"op": "subscribe", "channels": ["trade"], "symbols": ["AAPL"]}))
        assert json.loads(await ws.recv())["type"] == "subscribed"
        snapshot = json.loads(await ws.recv())
        assert snapshot["snapshot"] is True and snapshot["trades"] == []
        m1 = await Client.logon(server.fix_port, "MEMBER1")
        m2 = await Client.logon(server.fix_port, "MEMBER2")
        m1.order("b1", t.SIDE_BUY, "190.00")
        new = await m1.report("b1", t.EXEC_NEW)
        assert (new.get(t.OrdStatus), new.get(t.LeavesQty)) == (t.ST_NEW, "10")
        m2.order("s1", t.SIDE_SELL, "189.00", qty=4)
        fill = await m2.report("s1", t.EXEC_TRADE)
        assert (fill.get(t.LastPx), fill.get(t.LastQty), fill.get(t.OrdStatus)) == (
            "190.00",
            "4",
            t.ST_FILLED,
        )
        maker = await m1.report("b1", t.EXEC_TRADE)
        assert (maker.get(t.CumQty), maker.get(t.LeavesQty)) == ("4", "6")
        trade = json.loads(await ws.recv())
        assert (trade["seq"], trade["price"], trade["size"]) == (1, "190.00", 4)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
            l1 = (await http.get("/api/v1/marketdata/AAPL/l1")).json()
        assert (l1["bid"], l1["bidSize"], l1["last"], l1["volume"]) == ("190.00", 6, "190.00", 4)
        await m1.close()
        await m2.close()


async def test_duplicate_cl_ord_id_is_rejected_and_not_executed_twice(
    server: VenueServer,
) -> None:
    m1 = await Client.logon(server.fix_port, "MEMBER1")
    m1.order("dup", t.SIDE_BUY, "190.00", qty=5)
    await m1.report("dup", t.EXEC_NEW)
    m1.order("dup", t.SIDE_BUY, "190.00", qty=5)
    rejected = await m1.report("dup", t.EXEC_REJECTED)
    assert rejected.get(t.OrdRejReason) == "6"
    assert server.feed.book.l2("AAPL").bids == [(19000, 5, 1)]
    await m1.close()


async def test_resting_orders_and_sequence_numbers_survive_a_restart(tmp_path: Path) -> None:
    srv = VenueServer(options(tmp_path / "venue"))
    await srv.start()
    m2 = await Client.logon(srv.fix_port, "MEMBER2")  # MEMBER2 keeps orders on disconnect
    m2.order("keep", t.SIDE_SELL, "191.00")
    await m2.report("keep", t.EXEC_NEW)
    sent = m2.seq
    await m2.close()
    await srv.stop()

    srv2 = VenueServer(options(tmp_path / "venue"))
    await srv2.start()
    try:
        assert srv2.feed.book.l2("AAPL").asks == [(19100, 10, 1)]
        m2 = await Client.logon(srv2.fix_port, "MEMBER2", reset=False, seq=sent)
        m2.send(
            t.MT_ORDER_CANCEL_REQUEST,
            [(t.ClOrdID, "c1"), (t.OrigClOrdID, "keep"), (t.Symbol, "AAPL"), (t.Side, "2")],
        )
        cancelled = await m2.report("c1", t.EXEC_CANCELED)
        assert cancelled.get(t.OrigClOrdID) == "keep"
        await m2.close()
    finally:
        await srv2.stop()


async def test_reports_journaled_but_never_stored_are_sent_after_a_restart(
    tmp_path: Path,
) -> None:
    data = tmp_path / "venue"
    srv = VenueServer(options(data))
    await srv.start()
    m2 = await Client.logon(srv.fix_port, "MEMBER2")
    await m2.close()
    await srv.stop()
    # A crash right after the journal fsync: the command is acknowledged by the journal, but the
    # gateway never stored its report.
    pipeline, _ = JournaledEngine.open(data / "journal", data / "snapshots")
    order = NewOrder(
        symbol="AAPL", member="MEMBER2", cl_ord_id="lost", side=Side.BUY, qty=3, price=18900
    )
    pipeline.submit([order])
    pipeline.close()

    srv2 = VenueServer(options(data))
    await srv2.start()
    try:
        m2 = await Client.logon(srv2.fix_port, "MEMBER2", reset=False, seq=1)
        logon_seq = m2.inbox[-1].seq_num if m2.inbox else 0
        m2.send(t.MT_RESEND_REQUEST, [(t.BeginSeqNo, "1"), (t.EndSeqNo, "0")])
        report = await m2.report("lost", t.EXEC_NEW)
        assert report.get(t.PossDupFlag) == "Y"  # resent from the store
        assert report.get(t.PossResend) == "Y"  # regenerated: may have been sent before
        assert report.seq_num < logon_seq or logon_seq == 0
    finally:
        await srv2.stop()


async def test_cancel_on_disconnect(server: VenueServer) -> None:
    m1 = await Client.logon(server.fix_port, "MEMBER1")  # cancel_on_disconnect = true
    m1.order("gone", t.SIDE_BUY, "189.50")
    await m1.report("gone", t.EXEC_NEW)
    assert server.feed.book.l2("AAPL").bids == [(18950, 10, 1)]
    await m1.close()
    for _ in range(100):
        if not server.feed.book.l2("AAPL").bids:
            break
        await asyncio.sleep(0.02)
    assert server.feed.book.l2("AAPL").bids == []


async def test_the_binary_feed_carries_the_book_and_the_orders(tmp_path: Path) -> None:
    from tradingfloor.exchange.marketdata.itch import AddOrder, StockDirectory, decode
    from tradingfloor.exchange.marketdata.udpfeed import FeedReceiver

    received: list[object] = []
    opts = options(tmp_path / "venue")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        retransmission_port = int(probe.getsockname()[1])
    receiver = await FeedReceiver.open(
        ("127.0.0.1", 0),
        ("127.0.0.1", retransmission_port),
        lambda _n, raw: received.append(decode(raw)),
    )
    opts.udp_feed = ("127.0.0.1", receiver.address[1])
    opts.retransmission_port = retransmission_port
    srv = VenueServer(opts)
    await srv.start()
    try:
        m1 = await Client.logon(srv.fix_port, "MEMBER1")
        m1.order("u1", t.SIDE_BUY, "190.00", qty=7)
        await m1.report("u1", t.EXEC_NEW)
        for _ in range(200):
            if any(isinstance(m, AddOrder) for m in received):
                break
            await asyncio.sleep(0.01)
        symbols = [m.symbol for m in received if isinstance(m, StockDirectory)]
        assert symbols == ["AAPL", "MSFT", "GOOG", "AMZN", "TSLA"]
        [add] = [m for m in received if isinstance(m, AddOrder)]
        assert (add.symbol, add.side, add.shares, add.price) == ("AAPL", "B", 7, 19000)
        await m1.close()
    finally:
        await srv.stop()
        await receiver.close()


async def test_serve_stops_when_the_journal_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradingfloor.node.serve import VenueFailedError, serve_until_stopped

    lines: list[str] = []
    ready = asyncio.Event()

    def announce(line: str) -> None:
        lines.append(line)
        if line.startswith("Ready"):
            ready.set()

    opts = options(tmp_path / "venue")
    opts.announce = announce
    opts.tick_interval = 0.05  # an idle venue journals a timer tick: the batch that fails
    task = asyncio.create_task(serve_until_stopped(VenueServer(opts)))
    await asyncio.wait_for(ready.wait(), 10)

    def broken(self: object, commands: object) -> object:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(JournaledEngine, "submit_each", broken)
    with pytest.raises(VenueFailedError, match="No space left"):
        await asyncio.wait_for(task, 10)
    assert any(line.startswith("Venue failed") for line in lines)


async def _broker_customer(http: httpx.AsyncClient, password: str) -> dict[str, str]:
    """Through the broker's native API: an approved, funded cash account and a trader's key."""
    key, _account = await api_customer(http, password)
    return key


async def test_a_fix_member_trades_with_a_broker_customer_across_a_restart(
    tmp_path: Path,
) -> None:
    opts = options(tmp_path / "venue")
    opts.admin_password = "Chief-passw0rd-1"
    srv = VenueServer(opts)
    await srv.start()
    try:
        base = f"http://127.0.0.1:{srv.broker_port}"
        async with httpx.AsyncClient(base_url=base) as http:
            key = await _broker_customer(http, "Chief-passw0rd-1")
            order = {
                "symbol": "AAPL",
                "qty": "10",
                "side": "buy",
                "type": "limit",
                "time_in_force": "gtc",
                "limit_price": "190.00",
                "client_order_id": "b1",
            }
            placed = (await http.post("/v2/orders", json=order, headers=key)).json()
            assert placed["status"] == "new"
            fix = await Client.logon(srv.fix_port, "MEMBER1")
            fix.order("s1", "2", "189.50", qty=4)  # sells 4 into the broker's bid at 190.00
            await fix.report("s1", "F")
            await fix.close()
            got = (await http.get(f"/v2/orders/{placed['id']}", headers=key)).json()
            assert got["status"] == "partially_filled" and got["filled_qty"] == "4"
    finally:
        await srv.stop()
    srv = VenueServer(opts)
    await srv.start()
    try:
        base = f"http://127.0.0.1:{srv.broker_port}"
        async with httpx.AsyncClient(base_url=base) as http:
            positions = (await http.get("/v2/positions", headers=key)).json()
            assert [(p["symbol"], p["qty"], p["avg_entry_price"]) for p in positions] == [
                ("AAPL", "4", "190")
            ]
            account = (await http.get("/v2/account", headers=key)).json()
            assert account["cash"] == "4240.00"  # 5000 - 4 x 190
            assert account["held_for_orders"] == "1140.00"  # 6 still working at 190
            again = (
                await http.post(
                    "/v2/orders",
                    json={
                        "symbol": "AAPL",
                        "qty": "1",
                        "side": "buy",
                        "type": "limit",
                        "time_in_force": "gtc",
                        "limit_price": "190.00",
                        "client_order_id": "b1",
                    },
                    headers=key,
                )
            ).json()
            assert again["id"] == placed["id"]  # the client order id is still taken
    finally:
        await srv.stop()


async def test_the_broker_port_serves_the_terminal_market_data_and_the_operator(
    server: VenueServer,
) -> None:
    """One origin for the web terminal: its page, the exchange's market data under /md (REST
    and WebSocket), and the venue operator's routes (admins only)."""
    base = f"http://127.0.0.1:{server.broker_port}"
    async with httpx.AsyncClient(base_url=base) as http:
        page = await http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        listed = (await http.get("/md/api/v1/instruments")).json()
        assert {"AAPL", "MSFT", "GOOG", "AMZN", "TSLA"} <= {i["symbol"] for i in listed}
        assert (await http.get("/api/admin/venue/instruments")).status_code == 401
    async with websockets.connect(f"ws://127.0.0.1:{server.broker_port}/md/ws/marketdata") as ws:
        await ws.send(json.dumps({"op": "subscribe", "channels": ["l1"], "symbols": ["AAPL"]}))
        assert json.loads(await ws.recv())["type"] == "subscribed"
        snapshot = json.loads(await ws.recv())
        assert (snapshot["type"], snapshot["symbol"], snapshot["snapshot"]) == ("l1", "AAPL", True)


async def test_the_access_log_goes_to_its_file_not_the_console(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """serve writes one line per HTTP request (both ports) to <data_dir>/access.log, and the
    operator's halt is recorded with the admin as its actor and the client's address."""
    opts = options(tmp_path / "venue")
    opts.admin_password = "correct-horse-42"
    srv = VenueServer(opts)
    await srv.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv.broker_port}") as http:
            form = {"username": "admin", "password": "correct-horse-42"}
            token = (await http.post("/api/auth/token", data=form)).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            admin_id = (await http.get("/api/me", headers=auth)).json()["user_id"]
            halted = await http.post(
                "/api/admin/venue/instruments/AAPL/halt",
                json={"reason": "test"},
                headers={**auth, "X-Request-ID": "serve-halt-1"},
            )
            assert halted.status_code == 200 and halted.headers["x-request-id"] == "serve-halt-1"
            actions = (
                await http.get("/api/admin/actions", params={"kind": "venue.halt"}, headers=auth)
            ).json()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv.http_port}") as http:
            listed = await http.get("/api/v1/instruments", headers={"X-Request-ID": "md-1"})
            assert listed.headers["x-request-id"] == "md-1"
    finally:
        await srv.stop()
    [halt] = [a for a in actions if a["actor"]["request_id"] == "serve-halt-1"]
    assert (halt["target"], halt["actor"]["principal"], halt["actor"]["address"]) == (
        "AAPL",
        admin_id,
        "127.0.0.1",
    )
    assert halt["actor"]["port"] > 0 and halt["actor"]["credential_kind"] == "token"
    log = (tmp_path / "venue" / "access.log").read_text().splitlines()
    [line] = [entry for entry in log if "request_id=serve-halt-1" in entry]
    assert "POST /api/admin/venue/instruments/AAPL/halt 200 " in line
    assert f"principal={admin_id}/admin address=127.0.0.1:" in line
    assert any("GET /api/v1/instruments 200 " in e and "request_id=md-1" in e for e in log)
    console = capfd.readouterr()
    assert "request_id=" not in console.out + console.err


async def test_a_port_in_use_is_a_clear_error_and_leaves_the_venue_closed(tmp_path: Path) -> None:
    from tradingfloor.node.serve import serve_until_stopped

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    opts = options(tmp_path / "venue")
    opts.broker_port = port
    try:
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            await serve_until_stopped(VenueServer(opts))
    finally:
        taken.close()
    again = VenueServer(options(tmp_path / "venue"))  # the data directory is not left locked
    await again.start()
    await again.stop()
