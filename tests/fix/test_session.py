"""Tests of the sans-IO FIX session state machine, driven with fake time and decoded messages."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tradingfloor.exchange.config import VenueConfig, parse_config
from tradingfloor.exchange.fix import session as session_module
from tradingfloor.exchange.fix import tags as t
from tradingfloor.exchange.fix.codec import (
    DecodeError,
    Message,
    decode_message,
    encode,
    parse_utc_timestamp,
    utc_timestamp,
)
from tradingfloor.exchange.fix.session import (
    LOGON_REJECTED,
    MAX_SEQ_NUM,
    FixSession,
    SessionState,
    refusal_logout,
)
from tradingfloor.exchange.fix.store import SessionStore

S = 1_000_000_000
T0 = 1_704_164_645_000_000_000  # 2024-01-02 03:04:05 UTC
APP_TYPES = frozenset({t.MT_NEW_ORDER_SINGLE, t.MT_ORDER_CANCEL_REQUEST})


def make_config(throttle: int = 5) -> VenueConfig:
    return parse_config(
        {
            "venue": {"name": "TFEX", "heartbeat_seconds": 30, "heartbeat_max_seconds": 60},
            "members": [
                {"comp_id": "M1", "member": "m1", "password": "pw", "throttle_per_second": throttle}
            ],
        }
    )


class Recorder:
    """A SessionListener that records what the session delivers."""

    supported_msg_types = APP_TYPES

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.on_app: Callable[[FixSession, Message], None] | None = None

    def on_logon(self, session: FixSession) -> None:
        self.events.append(("logon", session.comp_id))

    def on_logout(self, session: FixSession, reason: str) -> None:
        self.events.append(("logout", reason))

    def on_message(self, session: FixSession, msg: Message) -> None:
        self.events.append(("app", msg.seq_num))
        if self.on_app is not None:
            self.on_app(session, msg)

    @property
    def delivered(self) -> list[object]:
        return [v for k, v in self.events if k == "app"]


class Harness:
    """One session, a fake peer that builds its messages, and the decoded output."""

    def __init__(self, directory: Path, throttle: int = 5, resend_batch: int = 500) -> None:
        self.config = make_config(throttle)
        member = self.config.member("M1")
        assert member is not None
        self.store = SessionStore.open(directory, now_ns=T0)
        self.app = Recorder()
        self.session = FixSession(
            self.config, member, self.store, self.app, resend_batch=resend_batch
        )
        self.now = T0
        self.peer_seq = 1

    def msg(
        self,
        msg_type: str,
        body: Sequence[tuple[int, str]] = (),
        *,
        seq: int | None = None,
        sender: str = "M1",
        target: str = "TFEX",
        sending_ns: int | None = None,
        extra_header: Sequence[tuple[int, str]] = (),
        omit: Sequence[int] = (),
    ) -> Message:
        """Build (through the wire codec) a peer message; ``seq`` None takes the next one."""
        if seq is None:
            seq = self.peer_seq
            self.peer_seq += 1
        header = [
            (t.SenderCompID, sender),
            (t.TargetCompID, target),
            (t.MsgSeqNum, str(seq)),
            (t.SendingTime, utc_timestamp(self.now if sending_ns is None else sending_ns)),
            *extra_header,
        ]
        header = [(k, v) for k, v in header if k not in omit]
        return decode_message(encode("FIX.4.4", msg_type, header, body))

    def logon(self, *, password: str = "pw", hb: str = "30", **kw: object) -> Message:
        body = [(t.EncryptMethod, "0"), (t.HeartBtInt, hb), (t.Password, password)]
        extra = kw.pop("extra_body", [])
        assert isinstance(extra, list)
        return self.msg(t.MT_LOGON, body + extra, **kw)  # type: ignore[arg-type]

    def feed(self, msg: Message | DecodeError) -> list[Message]:
        self.session.on_message(msg, self.now)
        return self.out()

    def out(self) -> list[Message]:
        return [decode_message(raw) for raw in self.session.take_output()]

    def connect_and_logon(self) -> list[Message]:
        self.session.connection_made(self.now)
        return self.feed(self.logon())

    def order(self, cl_ord_id: str = "c1", **kw: object) -> Message:
        return self.msg(t.MT_NEW_ORDER_SINGLE, [(t.ClOrdID, cl_ord_id)], **kw)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_disk_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "fsync", lambda fd: None)


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path / "M1")
    yield harness
    harness.store.close()


def types(msgs: list[Message]) -> list[str]:
    return [m.msg_type for m in msgs]


# --- logon ----------------------------------------------------------------------------------------


def test_logon_accepted(h: Harness) -> None:
    (reply,) = h.connect_and_logon()
    assert reply.msg_type == t.MT_LOGON
    assert reply.get(t.EncryptMethod) == "0"
    assert reply.get(t.HeartBtInt) == "30"
    assert (reply.get(t.SenderCompID), reply.get(t.TargetCompID), reply.seq_num) == (
        "TFEX",
        "M1",
        1,
    )
    assert not reply.has(t.ResetSeqNumFlag)
    assert h.session.logged_on
    assert h.session.heartbeat_ns == 30 * S
    assert h.app.events == [("logon", "M1")]
    assert (h.store.next_target_seq, h.store.next_sender_seq) == (2, 2)


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"password": "wrong"}, LOGON_REJECTED),
        ({"sender": "M2"}, LOGON_REJECTED),
        ({"omit": [t.Password]}, LOGON_REJECTED),
        ({"target": "OTHER"}, "logon rejected: TargetCompID (56) must be TFEX"),
        ({"hb": "0"}, "logon rejected: HeartBtInt (108) must be 1..60"),
        ({"hb": "61"}, "logon rejected: HeartBtInt (108) must be 1..60"),
        ({"hb": "x"}, "logon rejected: HeartBtInt (108) must be 1..60"),
        ({"sending_ns": T0 - 121 * S}, "SendingTime"),
        ({"extra_body": [(t.ResetSeqNumFlag, "Y")], "seq": 3}, "MsgSeqNum must be 1"),
    ],
)
def test_logon_refused(h: Harness, change: dict[str, Any], text: str) -> None:
    h.session.connection_made(h.now)
    change = dict(change)  # the parameter itself is shared by reruns of the test
    omit = change.pop("omit", [])
    msg = h.logon(**change)
    if omit:
        msg = Message(tuple(f for f in msg.fields if f[0] not in omit))
    (reply,) = h.feed(msg)
    assert reply.msg_type == t.MT_LOGOUT
    assert text in (reply.get(t.Text) or "")
    assert h.session.close_reason is not None
    assert not h.session.logged_on
    h.session.connection_lost("closed", h.now)
    assert h.app.events == []  # never logged on: no on_logon, no on_logout
    assert h.store.next_target_seq == 1  # the refused Logon does not count


def test_wrong_password_leaves_the_member_store_alone(h: Harness) -> None:
    h.connect_and_logon()
    h.session.send_app(t.MT_EXECUTION_REPORT, [(t.ExecID, "e1")], now_ns=h.now)
    h.session.connection_lost("gone", h.now)
    before = (h.store.next_sender_seq, h.store.next_target_seq, h.store.get_range(1, 0))
    received = h.store.received()
    wrong = h.logon(password="wrong")
    no_seq = Message(tuple(f for f in wrong.fields if f[0] != t.MsgSeqNum))
    for msg in (wrong, h.logon(sender="M2"), no_seq):
        h.session.connection_made(h.now)
        (reply,) = h.feed(msg)
        assert (reply.msg_type, reply.seq_num) == (t.MT_LOGOUT, 1)
        assert reply.get(t.Text) == LOGON_REJECTED
        h.session.connection_lost("closed", h.now)
    assert (h.store.next_sender_seq, h.store.next_target_seq, h.store.get_range(1, 0)) == before
    assert h.store.received() == received
    assert h.app.events == [("logon", "M1"), ("logout", "gone")]


def test_every_message_of_an_authenticated_session_is_stored_with_its_peer(h: Harness) -> None:
    h.session.connection_made(h.now, ("192.0.2.1", 50123))
    h.feed(h.logon())
    h.now += 1
    h.feed(h.order("c1"))
    h.feed(h.msg(t.MT_HEARTBEAT))
    h.feed(h.msg("BE", [(923, "u1"), (924, "3"), (553, "m1"), (554, "pw"), (925, "new")]))
    h.feed(h.order("c2", seq=9))  # too high: stored as received, queued
    h.feed(h.msg(t.MT_NEW_ORDER_SINGLE, [(t.ClOrdID, "c3")], sender="XX"))  # rejected: stored
    stored = h.store.received()
    assert [r.seq for r in stored] == [1, 2, 3, 4, 9, 5]
    assert {(r.address, r.port) for r in stored} == {("192.0.2.1", 50123)}
    assert [r.received_ns for r in stored] == [T0] + [T0 + 1] * 5
    assert b"35=D\x0149=M1\x0156=TFEX\x0134=2\x01" in stored[1].fields
    assert b"11=c1\x01" in stored[1].fields
    assert b"49=XX\x01" in stored[5].fields
    assert b"\x01554=***\x01" in stored[0].fields  # the Logon, without its password
    assert b"=pw\x01" not in stored[0].fields
    assert stored[3].fields.endswith(b"553=m1\x01554=***\x01925=***\x01")


def test_logon_with_encrypt_method_other_than_zero_refused(h: Harness) -> None:
    h.session.connection_made(h.now)
    msg = h.msg(t.MT_LOGON, [(t.EncryptMethod, "1"), (t.HeartBtInt, "30"), (t.Password, "pw")])
    (reply,) = h.feed(msg)
    assert reply.get(t.Text) == "logon rejected: EncryptMethod (98) must be 0"


def test_first_message_not_logon_disconnects_silently(h: Harness) -> None:
    h.session.connection_made(h.now)
    assert h.feed(h.msg(t.MT_HEARTBEAT)) == []
    assert h.session.close_reason == "first message was not a Logon"


def test_refusal_logout_for_unknown_member_touches_no_store(h: Harness) -> None:
    msg = h.msg(t.MT_LOGON, [(t.Password, "x")], sender="NOBODY")
    reply = decode_message(refusal_logout(h.config, msg, LOGON_REJECTED, h.now))
    assert reply.msg_type == t.MT_LOGOUT
    assert (reply.get(t.TargetCompID), reply.seq_num) == ("NOBODY", 1)
    assert reply.get(t.Text) == LOGON_REJECTED


def test_reset_seq_num_flag_resets_store_and_is_echoed(h: Harness) -> None:
    h.connect_and_logon()
    h.session.send_app(t.MT_EXECUTION_REPORT, [(t.ExecID, "e1")], now_ns=h.now)
    h.feed(h.order())
    h.session.connection_lost("gone", h.now)
    assert (h.store.next_sender_seq, h.store.next_target_seq) == (3, 3)
    h.session.connection_made(h.now)
    h.peer_seq = 1
    (reply,) = h.feed(h.logon(extra_body=[(t.ResetSeqNumFlag, "Y")]))
    assert reply.get(t.ResetSeqNumFlag) == "Y"
    assert reply.seq_num == 1
    assert (h.store.next_sender_seq, h.store.next_target_seq) == (2, 2)
    assert h.store.get_range(1, 0) == []
    assert h.store.creation_ns == h.now


def test_logon_seq_too_low_is_logged_out(h: Harness) -> None:
    h.store.set_next_target_seq(5)
    h.session.connection_made(h.now)
    (reply,) = h.feed(h.logon(seq=3))
    assert reply.msg_type == t.MT_LOGOUT
    assert reply.get(t.Text) == "MsgSeqNum too low, expecting 5 but received 3"
    assert h.session.close_reason is not None


def test_logon_seq_too_high_requests_resend_after_logon(h: Harness) -> None:
    h.session.connection_made(h.now)
    out = h.feed(h.logon(seq=4))
    assert types(out) == [t.MT_LOGON, t.MT_RESEND_REQUEST]
    assert (out[1].get(t.BeginSeqNo), out[1].get(t.EndSeqNo)) == ("1", "0")
    # the peer answers: messages 1..3 as a gap fill (its Logon 4 is handled already), then 5
    gap = h.msg(
        t.MT_SEQUENCE_RESET,
        [(t.GapFillFlag, "Y"), (t.NewSeqNo, "4")],
        seq=1,
        extra_header=[(t.PossDupFlag, "Y"), (t.OrigSendingTime, utc_timestamp(h.now))],
    )
    assert h.feed(gap) == []
    assert h.store.next_target_seq == 5  # the queued Logon consumed 4
    h.feed(h.order(seq=5))
    assert h.app.delivered == [5]


# --- heartbeats -----------------------------------------------------------------------------------


def test_heartbeat_sent_when_idle(h: Harness) -> None:
    h.connect_and_logon()
    assert h.session.next_timer_ns() == T0 + 30 * S
    h.session.on_timer(T0 + 29 * S)
    assert h.out() == []
    h.feed(h.msg(t.MT_HEARTBEAT))  # keep the receive side alive
    h.session.on_timer(T0 + 30 * S)
    (hb,) = h.out()
    assert hb.msg_type == t.MT_HEARTBEAT
    assert not hb.has(t.TestReqID)


def test_test_request_then_heartbeat_timeout(h: Harness) -> None:
    h.connect_and_logon()
    h.now = T0 + 36 * S  # 1.2 x HeartBtInt without anything received
    h.session.on_timer(h.now)
    out = h.out()
    assert types(out) == [t.MT_TEST_REQUEST]  # also counts as sent: no extra heartbeat
    assert out[0].has(t.TestReqID)
    assert h.session.next_timer_ns() == h.now + 30 * S
    h.session.on_timer(h.now + 29 * S)
    assert h.session.close_reason is None
    h.session.on_timer(h.now + 30 * S)
    assert h.session.close_reason == "heartbeat timeout"
    h.session.connection_lost("socket closed", h.now + 30 * S)
    assert h.app.events[-1] == ("logout", "heartbeat timeout")


def test_answered_test_request_keeps_session(h: Harness) -> None:
    h.connect_and_logon()
    h.now = T0 + 36 * S
    h.session.on_timer(h.now)
    (test_req,) = h.out()
    h.now += 2 * S
    h.feed(h.msg(t.MT_HEARTBEAT, [(t.TestReqID, test_req.get(t.TestReqID) or "")]))
    h.session.on_timer(T0 + 66 * S)
    assert h.session.close_reason is None


def test_test_request_answered_with_heartbeat(h: Harness) -> None:
    h.connect_and_logon()
    (hb,) = h.feed(h.msg(t.MT_TEST_REQUEST, [(t.TestReqID, "ping-7")]))
    assert hb.msg_type == t.MT_HEARTBEAT
    assert hb.get(t.TestReqID) == "ping-7"


# --- inbound sequencing ---------------------------------------------------------------------------


def test_gap_resend_request_and_queued_processing(h: Harness) -> None:
    h.connect_and_logon()
    h.feed(h.order(seq=2))
    (rr,) = h.feed(h.order(seq=5))
    assert rr.msg_type == t.MT_RESEND_REQUEST
    assert (rr.get(t.BeginSeqNo), rr.get(t.EndSeqNo)) == ("3", "0")
    assert h.feed(h.order(seq=6)) == []  # no second ResendRequest while one is outstanding
    assert h.app.delivered == [2]
    possdup = [(t.PossDupFlag, "Y"), (t.OrigSendingTime, utc_timestamp(h.now))]
    h.feed(h.order(seq=3, extra_header=possdup))
    h.feed(h.order(seq=4, extra_header=possdup))
    assert h.app.delivered == [2, 3, 4, 5, 6]
    # the rest of the resend: duplicates of queued messages, ignored
    assert h.feed(h.order(seq=5, extra_header=possdup)) == []
    assert h.app.delivered == [2, 3, 4, 5, 6]
    assert h.store.next_target_seq == 7


def test_gap_filled_by_sequence_reset_gap_fill(h: Harness) -> None:
    h.connect_and_logon()
    h.feed(h.order(seq=5))
    gap = h.msg(
        t.MT_SEQUENCE_RESET,
        [(t.GapFillFlag, "Y"), (t.NewSeqNo, "5")],
        seq=2,
        extra_header=[(t.PossDupFlag, "Y"), (t.OrigSendingTime, utc_timestamp(h.now))],
    )
    assert h.feed(gap) == []
    assert h.app.delivered == [5]
    assert h.store.next_target_seq == 6
    # a new gap later triggers a new ResendRequest
    (rr,) = h.feed(h.order(seq=8))
    assert rr.get(t.BeginSeqNo) == "6"


def test_gap_fill_lowering_seq_is_rejected(h: Harness) -> None:
    h.connect_and_logon()
    (rej,) = h.feed(h.msg(t.MT_SEQUENCE_RESET, [(t.GapFillFlag, "Y"), (t.NewSeqNo, "2")]))
    assert rej.msg_type == t.MT_REJECT
    assert rej.get(t.SessionRejectReason) == "5"
    assert rej.get(t.RefTagID) == "36"
    assert h.store.next_target_seq == 3  # consumed


def test_sequence_reset_mode_ignores_its_own_seq(h: Harness) -> None:
    h.connect_and_logon()
    assert h.feed(h.msg(t.MT_SEQUENCE_RESET, [(t.NewSeqNo, "10")], seq=1)) == []
    assert h.store.next_target_seq == 10
    (rej,) = h.feed(h.msg(t.MT_SEQUENCE_RESET, [(t.NewSeqNo, "4")], seq=99))
    assert rej.get(t.SessionRejectReason) == "5"
    assert h.store.next_target_seq == 10
    h.feed(h.order(seq=10))
    assert h.app.delivered == [10]


def test_sequence_reset_mode_releases_queued_messages(h: Harness) -> None:
    h.connect_and_logon()
    h.feed(h.order(seq=6))  # gap 2..5
    h.feed(h.msg(t.MT_SEQUENCE_RESET, [(t.NewSeqNo, "6")], seq=2))
    assert h.app.delivered == [6]


def test_seq_too_low_without_possdup_logs_out(h: Harness) -> None:
    h.connect_and_logon()
    h.feed(h.order(seq=2))
    (logout,) = h.feed(h.order(seq=2))
    assert logout.msg_type == t.MT_LOGOUT
    assert logout.get(t.Text) == "MsgSeqNum too low, expecting 3 but received 2"
    assert h.session.close_reason is not None


def test_possdup_duplicate_ignored_or_rejected_without_orig_sending_time(h: Harness) -> None:
    h.connect_and_logon()
    h.feed(h.order(seq=2))
    dup = h.order(
        seq=2, extra_header=[(t.PossDupFlag, "Y"), (t.OrigSendingTime, "20240102-03:00:00")]
    )
    assert h.feed(dup) == []
    (rej,) = h.feed(h.order(seq=2, extra_header=[(t.PossDupFlag, "Y")]))
    assert rej.msg_type == t.MT_REJECT
    assert (rej.get(t.SessionRejectReason), rej.get(t.RefTagID)) == ("1", "122")
    assert h.app.delivered == [2]
    assert h.store.next_target_seq == 3


def test_resend_request_with_too_high_seq_answered_at_once(h: Harness) -> None:
    h.connect_and_logon()
    out = h.feed(h.msg(t.MT_RESEND_REQUEST, [(t.BeginSeqNo, "1"), (t.EndSeqNo, "0")], seq=4))
    assert types(out) == [t.MT_SEQUENCE_RESET, t.MT_RESEND_REQUEST]
    assert out[0].get(t.NewSeqNo) == "2"
    assert out[1].get(t.BeginSeqNo) == "2"


# --- resend answering -----------------------------------------------------------------------------


def test_resend_replays_app_messages_and_gap_fills_session_messages(h: Harness) -> None:
    h.connect_and_logon()  # our seq 1: Logon
    h.now += S
    h.session.send_app(t.MT_EXECUTION_REPORT, [(t.ExecID, "e2")], now_ns=h.now)  # 2
    h.session.send_app(t.MT_EXECUTION_REPORT, [(t.ExecID, "e3")], now_ns=h.now)  # 3
    sent = h.out()
    h.now += 30 * S
    sent += h.feed(h.msg(t.MT_HEARTBEAT))
    h.session.on_timer(h.now)  # 4: Heartbeat
    sent += h.feed(h.msg(t.MT_TEST_REQUEST, [(t.TestReqID, "x")]))  # 5: Heartbeat
    h.session.send_app(t.MT_EXECUTION_REPORT, [(t.ExecID, "e6")], now_ns=h.now)  # 6
    sent += h.feed(h.msg(t.MT_TEST_REQUEST, [(t.TestReqID, "y")]))  # 7: Heartbeat
    originals = {m.seq_num: m for m in sent}
    assert sorted(originals) == [2, 3, 4, 5, 6, 7]
    h.now += 5 * S
    out = h.feed(h.msg(t.MT_RESEND_REQUEST, [(t.BeginSeqNo, "1"), (t.EndSeqNo, "0")]))
    summary = [(m.seq_num, m.msg_type, m.get(t.NewSeqNo)) for m in out]
    assert summary == [
        (1, t.MT_SEQUENCE_RESET, "2"),
        (2, t.MT_EXECUTION_REPORT, None),
        (3, t.MT_EXECUTION_REPORT, None),
        (4, t.MT_SEQUENCE_RESET, "6"),  # two heartbeats collapsed into one gap fill
        (6, t.MT_EXECUTION_REPORT, None),
        (7, t.MT_SEQUENCE_RESET, "8"),
    ]
    for m in out:
        assert m.get(t.PossDupFlag) == "Y"
        assert parse_utc_timestamp(m.get(t.SendingTime) or "") == h.now
        assert m.has(t.OrigSendingTime)
    for m in out:
        if m.msg_type == t.MT_EXECUTION_REPORT:
            orig = originals[m.seq_num]
            assert m.get(t.OrigSendingTime) == orig.get(t.SendingTime)
            assert m.get(t.ExecID) == orig.get(t.ExecID)
            assert m.get(t.OrigSendingTime) != m.get(t.SendingTime)
        else:
            assert m.get(t.GapFillFlag) == "Y"
    assert h.store.next_sender_seq == 8  # a resend uses no new seq nums


def test_resend_of_a_bounded_range(h: Harness) -> None:
    h.connect_and_logon()
    for i in range(2, 6):
        h.session.send_app(t.MT_EXECUTION_REPORT, [(t.ExecID, f"e{i}")], now_ns=h.now)
    h.out()
    out = h.feed(h.msg(t.MT_RESEND_REQUEST, [(t.BeginSeqNo, "3"), (t.EndSeqNo, "4")]))
    assert [(m.seq_num, m.get(t.ExecID)) for m in out] == [(3, "e3"), (4, "e4")]


@pytest.mark.parametrize(
    ("fields", "reason", "ref_tag"),
    [
        ([(t.BeginSeqNo, "4"), (t.EndSeqNo, "3")], "5", "7"),  # begin > end
        ([(t.BeginSeqNo, "9"), (t.EndSeqNo, "8")], "5", "7"),  # begin > end, both unsent
        ([(t.BeginSeqNo, "0"), (t.EndSeqNo, "0")], "5", "7"),
        ([(t.BeginSeqNo, "-1"), (t.EndSeqNo, "0")], "5", "7"),
        ([(t.BeginSeqNo, "-" + "9" * 30), (t.EndSeqNo, "0")], "5", "7"),
        ([(t.BeginSeqNo, "2"), (t.EndSeqNo, "-3")], "5", "16"),
        ([(t.BeginSeqNo, "abc"), (t.EndSeqNo, "0")], "6", "7"),
        ([(t.BeginSeqNo, "+2"), (t.EndSeqNo, "0")], "6", "7"),
        ([(t.BeginSeqNo, "2"), (t.EndSeqNo, "1.5")], "6", "16"),
        ([(t.BeginSeqNo, "2"), (t.EndSeqNo, "--1")], "6", "16"),
        ([(t.EndSeqNo, "0")], "1", "7"),
        ([(t.BeginSeqNo, "2")], "1", "16"),
    ],
)
def test_malformed_resend_request_is_rejected_and_resends_nothing(
    h: Harness, fields: list[tuple[int, str]], reason: str, ref_tag: str
) -> None:
    h.connect_and_logon()
    for i in range(2, 6):
        h.session.send_app(t.MT_EXECUTION_REPORT, [(t.ExecID, f"e{i}")], now_ns=h.now)
    h.out()
    (rej,) = h.feed(h.msg(t.MT_RESEND_REQUEST, fields))
    assert rej.msg_type == t.MT_REJECT
    assert (rej.get(t.SessionRejectReason), rej.get(t.RefTagID)) == (reason, ref_tag)
    assert (rej.get(t.RefSeqNum), rej.get(t.RefMsgType)) == ("2", t.MT_RESEND_REQUEST)
    if reason == "5":
        assert (rej.get(t.Text) or "").startswith("invalid resend range")
    assert not h.session.resend_pending
    assert h.store.next_target_seq == 3  # its seq num is used up; the session goes on
    assert h.session.close_reason is None


@pytest.mark.parametrize(
    ("begin", "end", "resent"),
    [
        ("9", "0", []),  # nothing sent from there yet: no answer
        ("9", "9" * 30, []),
        ("4", "9" * 30, [4, 5]),  # an end past the last sent means the last sent
        ("5", "5", [5]),
    ],
)
def test_resend_range_edges(h: Harness, begin: str, end: str, resent: list[int]) -> None:
    h.connect_and_logon()
    for i in range(2, 6):
        h.session.send_app(t.MT_EXECUTION_REPORT, [(t.ExecID, f"e{i}")], now_ns=h.now)
    h.out()
    out = h.feed(h.msg(t.MT_RESEND_REQUEST, [(t.BeginSeqNo, begin), (t.EndSeqNo, end)]))
    assert [(m.msg_type, m.seq_num) for m in out] == [(t.MT_EXECUTION_REPORT, s) for s in resent]


@pytest.mark.parametrize("value", ["9" * 19, "9" * 30, "1" + "0" * 5000])
def test_out_of_range_seq_nums_are_refused_without_touching_the_store(
    h: Harness, value: str
) -> None:
    h.connect_and_logon()
    for gap_fill in ([], [(t.GapFillFlag, "Y")]):
        (rej,) = h.feed(h.msg(t.MT_SEQUENCE_RESET, [*gap_fill, (t.NewSeqNo, value)], seq=2))
        assert (rej.msg_type, rej.get(t.SessionRejectReason), rej.get(t.RefTagID)) == (
            t.MT_REJECT,
            "5",
            "36",
        )
        assert "out of range" in (rej.get(t.Text) or "")
    assert h.store.next_target_seq == 3  # the gap fill (seq 2) used up its seq num, no more
    (logout,) = h.feed(_replace(h.order(), t.MsgSeqNum, value))
    assert logout.msg_type == t.MT_LOGOUT
    assert (logout.get(t.Text) or "").startswith("MsgSeqNum (34) missing or not an integer in 1..")
    assert h.store.next_target_seq == 3


@pytest.mark.parametrize("value", ["0", "9" * 19, "1" + "0" * 5000])
def test_logon_with_out_of_range_seq_num_is_refused(h: Harness, value: str) -> None:
    h.session.connection_made(h.now)
    (reply,) = h.feed(_replace(h.logon(), t.MsgSeqNum, value))
    assert reply.msg_type == t.MT_LOGOUT
    assert (reply.get(t.Text) or "").startswith("logon rejected: MsgSeqNum (34) missing or not")
    assert h.store.next_target_seq == 1


def test_poss_resend_is_sent_and_kept_when_resent(h: Harness) -> None:
    h.connect_and_logon()
    h.session.send_app(t.MT_EXECUTION_REPORT, [(t.ExecID, "e2")], now_ns=h.now)
    h.session.send_app(t.MT_EXECUTION_REPORT, [(t.ExecID, "e3")], now_ns=h.now, poss_resend=True)
    first, second = h.out()
    assert not first.has(t.PossResend)
    assert second.get(t.PossResend) == "Y"
    out = h.feed(h.msg(t.MT_RESEND_REQUEST, [(t.BeginSeqNo, "2"), (t.EndSeqNo, "3")]))
    assert [(m.get(t.ExecID), m.get(t.PossDupFlag), m.get(t.PossResend)) for m in out] == [
        ("e2", "Y", None),
        ("e3", "Y", "Y"),
    ]


def test_long_resend_is_paced(tmp_path: Path) -> None:
    h = Harness(tmp_path, resend_batch=3)
    h.connect_and_logon()
    for i in range(2, 12):
        h.session.send_app(t.MT_EXECUTION_REPORT, [(t.ExecID, f"e{i}")], now_ns=h.now)
    h.out()
    first = h.feed(h.msg(t.MT_RESEND_REQUEST, [(t.BeginSeqNo, "2"), (t.EndSeqNo, "0")]))
    pieces = [[m.seq_num for m in first]]
    while h.session.resend_pending:
        h.session.pump_resend(h.now)
        pieces.append([m.seq_num for m in h.out()])
    assert pieces == [[2, 3, 4], [5, 6, 7], [8, 9, 10], [11]]
    h.session.pump_resend(h.now)
    assert h.out() == []
    h.store.close()


def test_market_data_is_not_stored_and_gap_filled(h: Harness) -> None:
    h.connect_and_logon()
    h.session.send_app(t.MT_MARKET_DATA_SNAPSHOT, [(t.MDReqID, "r1")], now_ns=h.now)  # 2
    h.session.send_app(t.MT_EXECUTION_REPORT, [(t.ExecID, "e3")], now_ns=h.now)  # 3
    assert types(h.out()) == [t.MT_MARKET_DATA_SNAPSHOT, t.MT_EXECUTION_REPORT]
    assert h.store.stored_seqs() == [3]
    out = h.feed(h.msg(t.MT_RESEND_REQUEST, [(t.BeginSeqNo, "2"), (t.EndSeqNo, "0")]))
    assert [(m.seq_num, m.msg_type) for m in out] == [
        (2, t.MT_SEQUENCE_RESET),
        (3, t.MT_EXECUTION_REPORT),
    ]


def test_send_while_logged_out_is_stored_and_resent_after_logon(h: Harness) -> None:
    raw = h.session.send_app(t.MT_EXECUTION_REPORT, [(t.ExecID, "offline")], now_ns=h.now)
    assert decode_message(raw).seq_num == 1
    assert h.store.get_range(1, 1) == [(1, raw)]
    assert h.out() == []  # nothing written: no connection
    h.now += 10 * S
    (reply,) = h.connect_and_logon()
    assert reply.seq_num == 2  # the member sees the gap 1..1
    out = h.feed(h.msg(t.MT_RESEND_REQUEST, [(t.BeginSeqNo, "1"), (t.EndSeqNo, "0")]))
    assert [(m.seq_num, m.get(t.ExecID), m.get(t.PossDupFlag)) for m in out] == [
        (1, "offline", "Y"),
        (2, None, "Y"),
    ]


# --- validation -----------------------------------------------------------------------------------


def test_wrong_comp_id_after_logon_rejected_then_logout(h: Harness) -> None:
    h.connect_and_logon()
    out = h.feed(h.order(sender="M9"))
    assert types(out) == [t.MT_REJECT, t.MT_LOGOUT]
    assert (out[0].get(t.SessionRejectReason), out[0].get(t.RefTagID)) == ("9", "49")
    assert out[0].get(t.RefSeqNum) == "2"
    assert out[0].get(t.RefMsgType) == "D"
    assert h.session.close_reason is not None
    assert h.app.delivered == []


@pytest.mark.parametrize(
    ("kwargs", "reason", "ref_tag"),
    [
        ({"omit": [t.SendingTime]}, "1", "52"),
        ({"sending_ns": T0 + 121 * S}, "10", "52"),
        ({"sending_ns": T0 - 121 * S}, "10", "52"),
        ({"extra_header": [(t.PossDupFlag, "X")]}, "5", "43"),
        ({"extra_header": [(t.PossDupFlag, "Y")]}, "1", "122"),
        ({"extra_header": [(t.PossDupFlag, "Y"), (t.OrigSendingTime, "soon")]}, "6", "122"),
        (  # OrigSendingTime later than SendingTime
            {"extra_header": [(t.PossDupFlag, "Y"), (t.OrigSendingTime, utc_timestamp(T0 + S))]},
            "10",
            "122",
        ),
    ],
)
def test_header_problems_rejected_and_seq_consumed(
    h: Harness, kwargs: dict[str, Any], reason: str, ref_tag: str
) -> None:
    h.connect_and_logon()
    (rej,) = h.feed(h.order(**kwargs))
    assert rej.msg_type == t.MT_REJECT
    assert (rej.get(t.SessionRejectReason), rej.get(t.RefTagID)) == (reason, ref_tag)
    assert h.app.delivered == []
    assert h.store.next_target_seq == 3
    assert h.session.close_reason is None


@pytest.mark.parametrize("orig_ns", [T0, T0 - 3600 * S])
def test_possdup_in_sequence_with_an_earlier_orig_sending_time_is_delivered(
    h: Harness, orig_ns: int
) -> None:
    h.connect_and_logon()
    extra = [(t.PossDupFlag, "Y"), (t.OrigSendingTime, utc_timestamp(orig_ns))]
    assert h.feed(h.order(extra_header=extra)) == []
    assert h.app.delivered == [2]


def _replace(msg: Message, tag: int, value: str) -> Message:
    return Message(tuple((k, value if k == tag else v) for k, v in msg.fields))


def test_unparsable_sending_time_rejected_with_reason_6(h: Harness) -> None:
    h.connect_and_logon()
    (rej,) = h.feed(_replace(h.order(), t.SendingTime, "yesterday"))
    assert (rej.get(t.SessionRejectReason), rej.get(t.RefTagID)) == ("6", "52")


def test_tag_without_value_rejected_with_reason_4(h: Harness) -> None:
    h.connect_and_logon()
    (rej,) = h.feed(_replace(h.order(), t.ClOrdID, ""))
    assert (rej.get(t.SessionRejectReason), rej.get(t.RefTagID)) == ("4", "11")
    assert h.store.next_target_seq == 3


def test_invalid_msg_type_reject_11_and_unsupported_business_reject_3(h: Harness) -> None:
    h.connect_and_logon()
    (rej,) = h.feed(h.msg("ZZ"))
    assert rej.msg_type == t.MT_REJECT
    assert (rej.get(t.SessionRejectReason), rej.get(t.RefTagID)) == ("11", "35")
    (bmr,) = h.feed(h.msg("R"))  # QuoteRequest: valid FIX 4.4, not handled here
    assert bmr.msg_type == t.MT_BUSINESS_MESSAGE_REJECT
    assert (bmr.get(t.BusinessRejectReason), bmr.get(t.RefMsgType)) == ("3", "R")
    assert h.store.next_target_seq == 4


def test_application_reject_and_business_reject(h: Harness) -> None:
    def app(session: FixSession, msg: Message) -> None:
        session.reject(msg, t.SRR_REQUIRED_TAG_MISSING, t.Symbol, "Symbol required", now_ns=h.now)
        session.business_reject(msg, t.BRR_UNKNOWN_SECURITY, "no", now_ns=h.now, ref_id="c1")

    h.connect_and_logon()
    h.app.on_app = app
    rej, bmr = h.feed(h.order())
    assert rej.msg_type == t.MT_REJECT
    assert [rej.get(x) for x in (45, 371, 372, 373, 58)] == ["2", "55", "D", "1", "Symbol required"]
    assert [bmr.get(x) for x in (45, 372, 379, 380, 58)] == ["2", "D", "c1", "2", "no"]
    assert h.store.stored_seqs() == [bmr.seq_num]  # BMR is application level: resendable


def test_throttle_answers_excess_with_business_reject(h: Harness) -> None:
    h.connect_and_logon()
    for _ in range(5):
        assert h.feed(h.order()) == []
    (bmr,) = h.feed(h.order("c6"))
    assert bmr.msg_type == t.MT_BUSINESS_MESSAGE_REJECT
    assert bmr.get(t.BusinessRejectReason) == "99"
    assert bmr.get(t.Text) == "throttle exceeded: more than 5 messages per second"
    assert (bmr.get(t.RefSeqNum), bmr.get(t.RefMsgType), bmr.get(t.BusinessRejectRefID)) == (
        "7",
        "D",
        "c6",
    )
    assert h.app.delivered == [2, 3, 4, 5, 6]
    assert h.store.next_target_seq == 8  # the throttled message consumed its seq num
    h.now += S - 1
    assert types(h.feed(h.order())) == [t.MT_BUSINESS_MESSAGE_REJECT]  # window still full
    h.now += 1
    assert h.feed(h.order()) == []  # the first five left the window
    assert h.app.delivered == [2, 3, 4, 5, 6, 9]


def test_garbled_ignored_and_fatal_error_logs_out(h: Harness) -> None:
    h.connect_and_logon()
    assert h.feed(DecodeError("CheckSum 001 does not match computed 002", False, b"")) == []
    assert h.session.close_reason is None
    assert h.store.next_target_seq == 2
    (logout,) = h.feed(DecodeError("message too large", True, b""))
    assert logout.msg_type == t.MT_LOGOUT
    assert h.session.close_reason == "message too large"


def test_second_logon_while_logged_on_rejected(h: Harness) -> None:
    h.connect_and_logon()
    (rej,) = h.feed(h.logon())
    assert rej.msg_type == t.MT_REJECT
    assert h.session.logged_on


# --- logout ---------------------------------------------------------------------------------------


def test_peer_logout_is_answered_and_reported(h: Harness) -> None:
    h.connect_and_logon()
    (reply,) = h.feed(h.msg(t.MT_LOGOUT, [(t.Text, "bye")]))
    assert reply.msg_type == t.MT_LOGOUT
    assert h.session.close_reason == "logout by peer: bye"
    h.session.connection_lost("socket closed", h.now)
    assert h.app.events[-1] == ("logout", "logout by peer: bye")
    assert h.session.state is SessionState.DISCONNECTED
    assert h.store.next_target_seq == 3


def test_our_logout_waits_for_peer_answer(h: Harness) -> None:
    h.connect_and_logon()
    h.session.logout("shutting down", now_ns=h.now)
    (logout,) = h.out()
    assert logout.get(t.Text) == "shutting down"
    assert h.session.state is SessionState.LOGOUT_SENT
    assert h.feed(h.msg(t.MT_LOGOUT)) == []
    assert h.session.close_reason == "logout completed"


def test_our_logout_times_out(h: Harness) -> None:
    h.connect_and_logon()
    h.session.logout("shutting down", now_ns=h.now)
    h.out()
    assert h.session.next_timer_ns() == h.now + 2 * S
    h.session.on_timer(h.now + 2 * S)
    assert h.session.close_reason == "logout timeout"


def test_state_persists_across_sessions_and_store_reopen(tmp_path: Path) -> None:
    first = Harness(tmp_path / "M1")
    first.connect_and_logon()
    first.feed(first.order())
    first.session.send_app(t.MT_EXECUTION_REPORT, [(t.ExecID, "e")], now_ns=first.now)
    first.store.close()
    second = Harness(tmp_path / "M1")
    second.peer_seq = 3
    (reply,) = second.connect_and_logon()
    assert reply.seq_num == 3
    assert second.store.next_target_seq == 4
    second.store.close()


def test_gap_fill_jumping_over_queued_messages_drops_them(h: Harness) -> None:
    h.connect_and_logon()
    for seq in (5, 6, 7):
        h.feed(h.order(seq=seq))
    possdup = [(t.PossDupFlag, "Y"), (t.OrigSendingTime, utc_timestamp(h.now))]
    gap = h.msg(
        t.MT_SEQUENCE_RESET, [(t.GapFillFlag, "Y"), (t.NewSeqNo, "6")], seq=2, extra_header=possdup
    )
    h.feed(gap)
    assert h.app.delivered == [6, 7]
    assert h.store.next_target_seq == 8


def test_queue_is_bounded_and_overflow_comes_back_in_the_resend(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_module, "MAX_QUEUED_MESSAGES", 2)
    h.connect_and_logon()
    for seq in (3, 4, 5):  # 5 does not fit in the queue
        h.feed(h.order(seq=seq))
    h.feed(h.order(seq=2))
    assert h.app.delivered == [2, 3, 4]
    possdup = [(t.PossDupFlag, "Y"), (t.OrigSendingTime, utc_timestamp(h.now))]
    for seq in (3, 4):  # the rest of the resend: duplicates ignored, then the dropped one
        assert h.feed(h.order(seq=seq, extra_header=possdup)) == []
    h.feed(h.order(seq=5, extra_header=possdup))
    assert h.app.delivered == [2, 3, 4, 5]


# --- gaps found by mutation testing (docs/fix-testing.md) -----------------------------------------


@pytest.mark.parametrize("gap_fill", [False, True])
@pytest.mark.parametrize(
    ("value", "reason"), [(None, "1"), ("x", "6"), ("1.5", "6"), ("-3", "5"), ("0", "5")]
)
def test_bad_new_seq_no_is_rejected(
    h: Harness, gap_fill: bool, value: str | None, reason: str
) -> None:
    h.connect_and_logon()
    body = [(t.GapFillFlag, "Y")] if gap_fill else []
    if value is not None:
        body.append((t.NewSeqNo, value))
    (rej,) = h.feed(h.msg(t.MT_SEQUENCE_RESET, body, seq=2))
    assert (rej.msg_type, rej.get(t.SessionRejectReason), rej.get(t.RefTagID)) == (
        t.MT_REJECT,
        reason,
        "36",
    )
    assert (rej.get(t.RefSeqNum), rej.get(t.RefMsgType)) == ("2", t.MT_SEQUENCE_RESET)
    assert rej.get(t.Text)
    assert h.store.next_target_seq == (3 if gap_fill else 2)  # only in-sequence gap fill uses it


def test_test_request_without_test_req_id_is_rejected(h: Harness) -> None:
    h.connect_and_logon()
    (rej,) = h.feed(h.msg(t.MT_TEST_REQUEST))
    assert (rej.msg_type, rej.get(t.SessionRejectReason), rej.get(t.RefTagID)) == (
        t.MT_REJECT,
        "1",
        "112",
    )
    assert (rej.get(t.RefSeqNum), rej.get(t.Text)) == ("2", "TestReqID (112) is required")


def test_early_resend_request_does_not_use_up_the_seq_nums_of_the_gap(h: Harness) -> None:
    h.connect_and_logon()
    h.feed(h.msg(t.MT_RESEND_REQUEST, [(t.BeginSeqNo, "1"), (t.EndSeqNo, "0")], seq=4))
    assert h.store.next_target_seq == 2
    possdup = [(t.PossDupFlag, "Y"), (t.OrigSendingTime, utc_timestamp(h.now))]
    h.feed(h.order("c2", seq=2, extra_header=possdup))
    h.feed(h.order("c3", seq=3, extra_header=possdup))
    assert h.app.delivered == [2, 3]
    assert h.store.next_target_seq == 5  # 4, answered early, is not processed twice


def test_logout_with_a_too_high_seq_num_leaves_the_gap_to_be_filled(h: Harness) -> None:
    h.connect_and_logon()
    (logout,) = h.feed(h.msg(t.MT_LOGOUT, seq=7))
    assert logout.msg_type == t.MT_LOGOUT
    assert h.store.next_target_seq == 2


def test_test_request_is_due_at_1_2_heartbeat_intervals_after_the_last_receive(h: Harness) -> None:
    h.connect_and_logon()
    h.session.on_timer(T0 + 30 * S)  # our heartbeat: the send side is fresh again
    assert types(h.out()) == [t.MT_HEARTBEAT]
    assert h.session.next_timer_ns() == T0 + 36 * S


@pytest.mark.parametrize(
    "change",
    [
        {"sending_ns": T0 - 120 * S},
        {"sending_ns": T0 + 120 * S},
        {"hb": "60"},  # heartbeat_max_seconds
        {"extra_body": [(t.ResetSeqNumFlag, "N")]},
        {"seq": MAX_SEQ_NUM},  # accepted, then a ResendRequest for the gap
    ],
)
def test_logon_accepted_at_the_limits(h: Harness, change: dict[str, Any]) -> None:
    h.session.connection_made(h.now)
    out = h.feed(h.logon(**dict(change)))
    assert out[0].msg_type == t.MT_LOGON
    assert h.session.logged_on


def test_message_with_the_largest_seq_num_is_queued_not_refused(h: Harness) -> None:
    h.connect_and_logon()
    (resend,) = h.feed(h.order(seq=MAX_SEQ_NUM))
    assert resend.msg_type == t.MT_RESEND_REQUEST
    assert h.session.close_reason is None


def test_sequence_reset_to_the_expected_seq_num_is_accepted(h: Harness) -> None:
    h.connect_and_logon()
    assert h.feed(h.msg(t.MT_SEQUENCE_RESET, [(t.NewSeqNo, "2")], seq=9)) == []
    assert h.store.next_target_seq == 2
    assert h.feed(h.msg(t.MT_SEQUENCE_RESET, [(t.NewSeqNo, str(MAX_SEQ_NUM))], seq=9)) == []
    assert h.store.next_target_seq == MAX_SEQ_NUM  # the largest one is allowed
