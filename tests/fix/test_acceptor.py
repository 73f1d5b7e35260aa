"""Tests of the FIX acceptor over real TCP on 127.0.0.1 with a small asyncio FIX client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest

from tradingfloor.exchange.config import VenueConfig, parse_config
from tradingfloor.exchange.fix import tags as t
from tradingfloor.exchange.fix.acceptor import FixAcceptor, SessionHandle
from tradingfloor.exchange.fix.codec import (
    DecodeError,
    Message,
    StreamDecoder,
    encode,
    parse_utc_timestamp,
    utc_timestamp,
)
from tradingfloor.exchange.fix.logon_guard import ADDRESS_LOCKED, COMP_ID_LOCKED, LOGON_THROTTLED
from tradingfloor.exchange.fix.session import LOGON_REJECTED
from tradingfloor.exchange.fix.store import read_received

TIMEOUT = 5.0


def make_config(**fix_logon: int) -> VenueConfig:
    return parse_config(
        {
            "venue": {"name": "TFEX"},
            "fix_logon": fix_logon,
            "members": [
                {"comp_id": "M1", "member": "m1", "password": "pw1"},
                {"comp_id": "M2", "member": "m2", "password": "pw2", "cancel_on_disconnect": False},
            ],
        }
    )


class RecordingApp:
    """A FixApplication that records callbacks and answers each order with an ExecutionReport."""

    supported_msg_types = frozenset({t.MT_NEW_ORDER_SINGLE})

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []
        self.logged_out = asyncio.Event()

    def on_logon(self, session: SessionHandle) -> None:
        self.events.append(("logon", session.comp_id, ""))

    def on_logout(self, session: SessionHandle, reason: str) -> None:
        kind = "cancel_on_disconnect" if session.member.cancel_on_disconnect else "logout"
        self.events.append((kind, session.comp_id, reason))
        self.logged_out.set()

    def on_message(self, session: SessionHandle, msg: Message) -> None:
        cl_ord_id = msg.get(t.ClOrdID) or ""
        self.events.append(("message", session.comp_id, cl_ord_id))
        session.send(t.MT_EXECUTION_REPORT, [(t.ClOrdID, cl_ord_id), (t.ExecType, t.EXEC_NEW)])


class Client:
    """A minimal FIX initiator for the tests, built on the codec."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, comp_id: str
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.comp_id = comp_id
        self.seq = 1
        self.decoder = StreamDecoder()
        self.pending: list[Message] = []
        self.clock: Callable[[], int] = time.time_ns  # stamps SendingTime

    @classmethod
    async def connect(cls, port: int, comp_id: str = "M1") -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, comp_id)

    def send(self, msg_type: str, body: Sequence[tuple[int, str]] = (), **header: str) -> None:
        fields = {
            t.SenderCompID: self.comp_id,
            t.TargetCompID: "TFEX",
            t.MsgSeqNum: str(self.seq),
            t.SendingTime: utc_timestamp(self.clock()),
        }
        self.seq += 1
        self.writer.write(encode("FIX.4.4", msg_type, list(fields.items()), body))

    def logon(self, password: str = "pw1", hb: int = 30) -> None:
        body = [(t.EncryptMethod, "0"), (t.HeartBtInt, str(hb)), (t.Password, password)]
        self.send(t.MT_LOGON, body)

    async def recv(self) -> Message:
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(65536), TIMEOUT)
            if not data:
                raise ConnectionError("closed by the acceptor")
            for item in self.decoder.feed(data):
                if isinstance(item, DecodeError):
                    raise AssertionError(f"acceptor sent a bad frame: {item}")
                self.pending.append(item)
        return self.pending.pop(0)

    async def recv_type(self, msg_type: str) -> Message:
        """The next message of ``msg_type``, skipping heartbeats."""
        while True:
            msg = await self.recv()
            if msg.msg_type == msg_type:
                return msg
            assert msg.msg_type == t.MT_HEARTBEAT, msg

    async def closed(self) -> bool:
        """Wait for the acceptor to close the connection (True) after any pending output."""
        while True:
            data = await asyncio.wait_for(self.reader.read(65536), TIMEOUT)
            if not data:
                return True

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
async def venue(tmp_path: Path) -> AsyncIterator[tuple[FixAcceptor, RecordingApp, int]]:
    app = RecordingApp()
    acceptor = FixAcceptor(make_config(), tmp_path / "fix", app, sync_interval=None)
    port = await acceptor.start("127.0.0.1", 0)
    yield acceptor, app, port
    await acceptor.stop(timeout_s=0.5)


async def logged_on(port: int, comp_id: str = "M1", password: str = "pw1") -> Client:
    client = await Client.connect(port, comp_id)
    client.logon(password)
    reply = await client.recv()
    assert reply.msg_type == t.MT_LOGON, reply
    return client


async def test_logon_heartbeat_and_app_message(
    venue: tuple[FixAcceptor, RecordingApp, int], tmp_path: Path
) -> None:
    acceptor, app, port = venue
    client = await logged_on(port)
    assert app.events == [("logon", "M1", "")]
    assert set(acceptor.sessions) == {"M1"}
    assert acceptor.sessions["M1"].logged_on
    client.send(t.MT_TEST_REQUEST, [(t.TestReqID, "hello")])
    hb = await client.recv()
    assert (hb.msg_type, hb.get(t.TestReqID)) == (t.MT_HEARTBEAT, "hello")
    client.send(t.MT_NEW_ORDER_SINGLE, [(t.ClOrdID, "o1")])
    er = await client.recv()
    assert er.msg_type == t.MT_EXECUTION_REPORT
    assert (er.get(t.ClOrdID), er.seq_num) == ("o1", 3)
    assert app.events[-1] == ("message", "M1", "o1")
    assert (tmp_path / "fix" / "M1" / "seqnums").exists()
    assert not acceptor.session("M1").store.needs_sync  # synced before it was written
    client.close()


async def test_unknown_member_and_bad_password_refused(
    venue: tuple[FixAcceptor, RecordingApp, int],
) -> None:
    _, app, port = venue
    for comp_id, password in (("NOBODY", "pw1"), ("M1", "nope")):
        client = await Client.connect(port, comp_id)
        client.logon(password)
        logout = await client.recv()
        assert logout.msg_type == t.MT_LOGOUT
        assert logout.get(t.Text) == LOGON_REJECTED
        assert await client.closed()
        client.close()
    assert app.events == []


async def test_first_message_not_logon_closes_connection(
    venue: tuple[FixAcceptor, RecordingApp, int],
) -> None:
    _, _, port = venue
    client = await Client.connect(port)
    client.send(t.MT_HEARTBEAT)
    assert await client.closed()
    client.close()


async def test_second_connection_for_same_comp_id_refused(
    venue: tuple[FixAcceptor, RecordingApp, int],
) -> None:
    _, app, port = venue
    first = await logged_on(port)
    second = await Client.connect(port)
    second.logon()
    logout = await second.recv()
    assert logout.get(t.Text) == "session already connected"
    assert await second.closed()
    second.close()
    first.send(t.MT_NEW_ORDER_SINGLE, [(t.ClOrdID, "still-here")])
    er = await first.recv_type(t.MT_EXECUTION_REPORT)
    assert er.get(t.ClOrdID) == "still-here"
    assert er.seq_num == 2  # the refusal took no seq num from the live session
    assert [e[0] for e in app.events] == ["logon", "message"]
    first.close()


async def test_socket_drop_fires_cancel_on_disconnect(
    venue: tuple[FixAcceptor, RecordingApp, int],
) -> None:
    acceptor, app, port = venue
    client = await logged_on(port)
    client.writer.transport.abort()
    await asyncio.wait_for(app.logged_out.wait(), TIMEOUT)
    kind, comp_id, _ = app.events[-1]
    assert (kind, comp_id) == ("cancel_on_disconnect", "M1")
    assert acceptor.sessions == {}
    assert not acceptor.handle("M1").logged_on


async def test_send_to_offline_member_delivered_by_resend(
    venue: tuple[FixAcceptor, RecordingApp, int],
) -> None:
    acceptor, _, port = venue
    handle = acceptor.handle("M2")  # never connected: its store opens now
    assert not handle.logged_on
    handle.send(t.MT_EXECUTION_REPORT, [(t.ClOrdID, "while-away"), (t.ExecType, t.EXEC_TRADE)])
    client = await Client.connect(port, "M2")
    client.logon("pw2")
    reply = await client.recv()
    assert (reply.msg_type, reply.seq_num) == (t.MT_LOGON, 2)
    client.send(t.MT_RESEND_REQUEST, [(t.BeginSeqNo, "1"), (t.EndSeqNo, "0")])
    resent = await client.recv()
    assert (resent.msg_type, resent.seq_num) == (t.MT_EXECUTION_REPORT, 1)
    assert (resent.get(t.ClOrdID), resent.get(t.PossDupFlag)) == ("while-away", "Y")
    gap = await client.recv()
    assert (gap.msg_type, gap.seq_num, gap.get(t.NewSeqNo)) == (t.MT_SEQUENCE_RESET, 2, "3")
    client.close()


async def test_restart_continues_sequence_numbers(tmp_path: Path) -> None:
    store_dir = tmp_path / "fix"
    app = RecordingApp()
    acceptor = FixAcceptor(make_config(), store_dir, app)
    port = await acceptor.start()
    client = await logged_on(port)  # seq 1 both ways
    client.send(t.MT_NEW_ORDER_SINGLE, [(t.ClOrdID, "o1")])  # their 2 -> our ER 2
    assert (await client.recv_type(t.MT_EXECUTION_REPORT)).seq_num == 2
    stopping = asyncio.create_task(acceptor.stop())
    logout = await client.recv_type(t.MT_LOGOUT)
    assert logout.seq_num == 3
    client.send(t.MT_LOGOUT)  # their 3
    assert await client.closed()
    await stopping
    client.close()
    assert app.events[-1][0] == "cancel_on_disconnect"

    app2 = RecordingApp()
    acceptor2 = FixAcceptor(make_config(), store_dir, app2)
    port2 = await acceptor2.start()
    client2 = await Client.connect(port2)
    client2.seq = 4
    client2.logon()
    reply = await client2.recv()
    assert (reply.msg_type, reply.seq_num) == (t.MT_LOGON, 4)
    client2.send(t.MT_RESEND_REQUEST, [(t.BeginSeqNo, "2"), (t.EndSeqNo, "2")])
    resent = await client2.recv()
    assert (resent.seq_num, resent.get(t.ClOrdID), resent.get(t.PossDupFlag)) == (2, "o1", "Y")
    assert acceptor2.session("M1").store.next_target_seq == 6
    client2.close()
    await acceptor2.stop(timeout_s=0.5)


async def test_heartbeat_test_request_and_timeout(
    venue: tuple[FixAcceptor, RecordingApp, int],
) -> None:
    """With HeartBtInt 1 the venue heartbeats after 1 s of its own silence, sends a TestRequest
    after 1.2 s of the member's, and drops the connection when that goes unanswered: the
    member never sends anything after its Logon. Checked on the venue's own SendingTime
    stamps (lower bounds only: no duration of the test is asserted)."""
    _, app, port = venue
    client = await Client.connect(port)
    client.logon(hb=1)
    logon = await client.recv()
    assert logon.msg_type == t.MT_LOGON
    received: list[Message] = []
    with pytest.raises(ConnectionError):  # read until the venue closes the connection
        while True:
            received.append(await client.recv())
    assert {m.msg_type for m in received} == {t.MT_HEARTBEAT, t.MT_TEST_REQUEST}
    (test_request,) = [m for m in received if m.msg_type == t.MT_TEST_REQUEST]
    assert test_request.get(t.TestReqID)
    assert not any(m.msg_type == t.MT_LOGOUT for m in received)  # closed, not logged out

    def sent_at(msg: Message) -> int:
        return parse_utc_timestamp(msg.get(t.SendingTime) or "")

    first_heartbeat = next(m for m in received if m.msg_type == t.MT_HEARTBEAT)
    assert sent_at(first_heartbeat) >= sent_at(logon) + 1_000_000_000  # not before HeartBtInt
    assert sent_at(test_request) >= sent_at(logon) + 1_200_000_000  # nor before 1.2 HeartBtInt
    await asyncio.wait_for(app.logged_out.wait(), TIMEOUT)
    assert app.events == [
        ("logon", "M1", ""),
        ("cancel_on_disconnect", "M1", "heartbeat timeout"),
    ]
    client.close()


async def test_slow_consumer_is_dropped(tmp_path: Path) -> None:
    app = RecordingApp()
    acceptor = FixAcceptor(make_config(), tmp_path / "fix", app, max_write_buffer=256 * 1024)
    port = await acceptor.start()
    client = await logged_on(port)
    handle = acceptor.handle("M1")
    big = "x" * 60_000
    for i in range(200):  # 12 MB more than loopback buffers hold; the client reads nothing
        handle.send(t.MT_EXECUTION_REPORT, [(t.ClOrdID, str(i)), (t.Text, big)])
        await asyncio.sleep(0)
        if app.logged_out.is_set():
            break
    await asyncio.wait_for(app.logged_out.wait(), TIMEOUT)
    assert app.events[-1][2] == "slow consumer: write buffer limit exceeded"
    client.close()
    await acceptor.stop(timeout_s=0.5)


async def test_handle_of_unknown_comp_id_raises(
    venue: tuple[FixAcceptor, RecordingApp, int],
) -> None:
    acceptor, _, _ = venue
    with pytest.raises(KeyError):
        acceptor.handle("NOBODY")


def test_send_before_the_loop_runs_is_durable_at_once(tmp_path: Path) -> None:
    """Start-up code (no running loop) may send: the message is stored and synced at once."""
    acceptor = FixAcceptor(make_config(), tmp_path / "fix", RecordingApp())
    acceptor.handle("M1").send(t.MT_EXECUTION_REPORT, [(t.ClOrdID, "early")])
    store = acceptor.session("M1").store
    assert not store.needs_sync
    assert [seq for seq, _ in store.get_range(1, 0)] == [1]
    asyncio.run(acceptor.stop())
    assert store.closed


class FailingApp(RecordingApp):
    def on_message(self, session: SessionHandle, msg: Message) -> None:
        raise RuntimeError("bug in the application")


async def test_application_exception_answered_with_business_reject(tmp_path: Path) -> None:
    acceptor = FixAcceptor(make_config(), tmp_path / "fix", FailingApp())
    port = await acceptor.start()
    client = await logged_on(port)
    client.send(t.MT_NEW_ORDER_SINGLE, [(t.ClOrdID, "o1")])
    bmr = await client.recv_type(t.MT_BUSINESS_MESSAGE_REJECT)
    assert bmr.get(t.BusinessRejectReason) == str(t.BRR_APPLICATION_NOT_AVAILABLE)
    assert bmr.get(t.RefSeqNum) == "2"
    client.send(t.MT_TEST_REQUEST, [(t.TestReqID, "alive")])
    assert (await client.recv_type(t.MT_HEARTBEAT)).get(t.TestReqID) == "alive"
    client.close()
    await acceptor.stop(timeout_s=0.5)


async def test_background_sync_sends_first_and_fsyncs_within_the_interval(
    tmp_path: Path,
) -> None:
    app = RecordingApp()
    acceptor = FixAcceptor(make_config(), tmp_path / "fix", app, sync_interval=0.05)
    synced: list[bool] = []
    acceptor.on_synced = lambda: synced.append(acceptor.session("M1").store.needs_sync)
    port = await acceptor.start("127.0.0.1", 0)
    try:
        client = await logged_on(port)
        client.send(t.MT_NEW_ORDER_SINGLE, [(t.ClOrdID, "o1")])
        er = await client.recv()
        assert er.get(t.ClOrdID) == "o1"
        assert acceptor.session("M1").store.needs_sync  # sent before the fsync
        await asyncio.sleep(0.2)
        assert not acceptor.session("M1").store.needs_sync
        assert synced and synced[-1] is False  # on_synced runs after the stores are on disk
        client.close()
    finally:
        await acceptor.stop()


# --- brute-force protection of logons -------------------------------------------------------------


class FakeClock:
    """The acceptor's and the clients' clock: real time plus what the test skips forward."""

    def __init__(self) -> None:
        self.offset = 0

    def __call__(self) -> int:
        return time.time_ns() + self.offset


async def attempt(port: int, comp_id: str, password: str, clock: Callable[[], int]) -> Message:
    """One logon on a new connection; the acceptor's first answer (the connection then closes
    unless it is a Logon)."""
    client = await Client.connect(port, comp_id)
    client.clock = clock
    client.logon(password)
    reply = await client.recv()
    if reply.msg_type != t.MT_LOGON:
        assert await client.closed()
    client.close()
    return reply


async def test_many_wrong_passwords_lock_the_comp_id_out(tmp_path: Path) -> None:
    clock = FakeClock()
    config = make_config(attempts_per_minute=1000, lockout_threshold=5, lockout_seconds=900)
    acceptor = FixAcceptor(config, tmp_path / "fix", RecordingApp(), clock=clock)
    port = await acceptor.start()
    texts = [(await attempt(port, "M1", f"guess{i}", clock)).get(t.Text) for i in range(40)]
    assert texts[:4] == [LOGON_REJECTED] * 4
    assert all(text and text.startswith(COMP_ID_LOCKED) for text in texts[4:]), texts
    assert texts[4] == f"{COMP_ID_LOCKED}, retry in 900 s"  # the failure that locks says so
    refused = await attempt(port, "M1", "pw1", clock)  # the right password, while locked
    assert (refused.msg_type, refused.seq_num) == (t.MT_LOGOUT, 1)
    assert (refused.get(t.Text) or "").startswith(COMP_ID_LOCKED)
    other = await attempt(port, "M2", "pw2", clock)  # another member is not affected
    assert other.msg_type == t.MT_LOGON
    clock.offset += 900 * 1_000_000_000
    accepted = await attempt(port, "M1", "pw1", clock)
    assert (accepted.msg_type, accepted.seq_num) == (t.MT_LOGON, 1)
    await acceptor.stop(timeout_s=0.5)


async def test_failed_logons_leave_the_member_session_state_alone(tmp_path: Path) -> None:
    store_dir = tmp_path / "fix"
    app = RecordingApp()
    acceptor = FixAcceptor(make_config(), store_dir, app, sync_interval=None)
    port = await acceptor.start()
    client = await logged_on(port)
    client.send(t.MT_NEW_ORDER_SINGLE, [(t.ClOrdID, "o1")])
    await client.recv_type(t.MT_EXECUTION_REPORT)
    client.send(t.MT_LOGOUT)
    await client.recv_type(t.MT_LOGOUT)
    client.close()
    await asyncio.wait_for(app.logged_out.wait(), TIMEOUT)
    store = acceptor.session("M1").store
    before = (store.next_sender_seq, store.next_target_seq, store.get_range(1, 0))
    log_bytes = {p.name: p.read_bytes() for p in (store_dir / "M1").iterdir() if p.is_file()}
    for i in range(30):  # wrong passwords, then refusals of a locked-out CompID
        reply = await attempt(port, "M1", f"guess{i}", time.time_ns)
        assert (reply.msg_type, reply.seq_num, reply.get(t.TargetCompID)) == (
            t.MT_LOGOUT,
            1,
            "M1",
        )
    assert (store.next_sender_seq, store.next_target_seq, store.get_range(1, 0)) == before
    after = {p.name: p.read_bytes() for p in (store_dir / "M1").iterdir() if p.is_file()}
    assert after == log_bytes
    assert not (store_dir / "M2").exists()  # nor is a store created for a failed member
    reply = await attempt(port, "M2", "wrong", time.time_ns)
    assert reply.get(t.Text) == LOGON_REJECTED
    assert not (store_dir / "M2").exists()
    await acceptor.stop(timeout_s=0.5)


async def test_logon_attempts_are_throttled_per_comp_id(tmp_path: Path) -> None:
    config = make_config(attempts_per_minute=3, lockout_threshold=100)
    acceptor = FixAcceptor(config, tmp_path / "fix", RecordingApp())
    port = await acceptor.start()
    for i in range(3):
        assert (await attempt(port, "M1", f"x{i}", time.time_ns)).get(t.Text) == LOGON_REJECTED
    text = (await attempt(port, "M1", "pw1", time.time_ns)).get(t.Text) or ""
    assert text.startswith(LOGON_THROTTLED)  # not even the right password is looked at
    assert (await attempt(port, "M2", "pw2", time.time_ns)).msg_type == t.MT_LOGON
    await acceptor.stop(timeout_s=0.5)


async def test_logon_attempts_are_throttled_and_locked_per_address(tmp_path: Path) -> None:
    clock = FakeClock()
    config = make_config(
        attempts_per_minute=100,
        address_attempts_per_minute=4,
        address_lockout_threshold=100,
        lockout_threshold=100,
    )
    acceptor = FixAcceptor(config, tmp_path / "fix", RecordingApp(), clock=clock)
    port = await acceptor.start()
    for comp_id in ("A", "B", "C", "D"):  # a different CompID each time: one address
        assert (await attempt(port, comp_id, "x", clock)).get(t.Text) == LOGON_REJECTED
    text = (await attempt(port, "M1", "pw1", clock)).get(t.Text) or ""
    assert text.startswith(LOGON_THROTTLED)
    await acceptor.stop(timeout_s=0.5)

    config = make_config(
        attempts_per_minute=100,
        address_attempts_per_minute=100,
        address_lockout_threshold=3,
        lockout_threshold=100,
        lockout_seconds=60,
    )
    # another venue (the failures above are kept in their venue's lockout file)
    acceptor = FixAcceptor(config, tmp_path / "other" / "fix", RecordingApp(), clock=clock)
    port = await acceptor.start()
    texts = [(await attempt(port, c, "x", clock)).get(t.Text) for c in ("A", "B", "C", "M2")]
    assert texts[:2] == [LOGON_REJECTED] * 2
    assert texts[2] == f"{ADDRESS_LOCKED}, retry in 60 s"
    assert (texts[3] or "").startswith(ADDRESS_LOCKED)
    text = (await attempt(port, "M1", "pw1", clock)).get(t.Text) or ""
    assert text.startswith(ADDRESS_LOCKED)
    clock.offset += 60 * 1_000_000_000
    assert (await attempt(port, "M1", "pw1", clock)).msg_type == t.MT_LOGON
    await acceptor.stop(timeout_s=0.5)


async def test_failed_logon_is_logged_with_the_source_address(
    venue: tuple[FixAcceptor, RecordingApp, int], caplog: pytest.LogCaptureFixture
) -> None:
    _, _, port = venue
    with caplog.at_level("INFO", logger="tradingfloor.exchange.fix.acceptor"):
        await attempt(port, "M1", "wrong", time.time_ns)
    (line,) = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert "'M1' from 127.0.0.1:" in line
    assert LOGON_REJECTED in line


async def test_received_messages_are_stored_and_listed(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tradingfloor.cli import app as cli_app

    data_dir = tmp_path / "venue"
    store_dir = data_dir / "fix" / "sessions"
    acceptor = FixAcceptor(make_config(), store_dir, RecordingApp(), sync_interval=None)
    port = await acceptor.start()
    client = await logged_on(port)
    client.send(t.MT_NEW_ORDER_SINGLE, [(t.ClOrdID, "o1")])
    await client.recv_type(t.MT_EXECUTION_REPORT)
    _, client_port = client.writer.get_extra_info("sockname")[:2]
    stored = list(read_received(store_dir / "M1"))
    assert [(r.seq, r.address, r.port) for r in stored] == [
        (1, "127.0.0.1", client_port),
        (2, "127.0.0.1", client_port),
    ]
    assert b"11=o1\x01" in stored[1].fields
    result = CliRunner().invoke(cli_app, ["fix", "received", "M1", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2
    assert f" gen 0 seq 2 127.0.0.1:{client_port} 35=D|49=M1|56=TFEX|34=2|" in lines[1]
    assert "|11=o1|" in lines[1]
    missing = CliRunner().invoke(
        cli_app, ["fix", "received", "NOBODY", "--data-dir", str(data_dir)]
    )
    assert missing.exit_code == 2
    client.close()
    await acceptor.stop(timeout_s=0.5)
