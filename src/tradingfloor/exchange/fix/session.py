"""The FIX 4.4 session state machine of the gateway (acceptor role), sans-IO.

Logon, heartbeats, sequencing, gap recovery, resends, session-level validation and throttling.
Callers pass decoded messages and the time in; bytes to write and a close request come out.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Sequence
from typing import Final, Protocol

from tradingfloor.core.limits import INT64_MAX
from tradingfloor.exchange.config import MemberConfig, VenueConfig
from tradingfloor.exchange.fix import tags as t
from tradingfloor.exchange.fix.codec import (
    DecodeError,
    Message,
    MessageFields,
    decode_message,
    encode,
    parse_utc_timestamp,
    utc_timestamp,
)
from tradingfloor.exchange.fix.store import SessionStore

__all__ = [
    "FIX44_MSG_TYPES",
    "LOGON_REJECTED",
    "LOGOUT_TIMEOUT_NS",
    "MAX_QUEUED_MESSAGES",
    "MAX_SEQ_NUM",
    "NOT_RESENT_MSG_TYPES",
    "REDACTED",
    "RESEND_BATCH",
    "SENDING_TIME_TOLERANCE_NS",
    "FixSession",
    "SessionListener",
    "SessionState",
    "refusal_logout",
]

_log = logging.getLogger(__name__)

_NS: Final = 1_000_000_000
SENDING_TIME_TOLERANCE_NS: Final = 120 * _NS
"""An inbound SendingTime (52) further than this from our clock gets Reject 373=10."""
LOGOUT_TIMEOUT_NS: Final = 2 * _NS
"""After we send Logout, how long we wait for the peer's Logout before disconnecting."""
MAX_QUEUED_MESSAGES: Final = 10_000
"""Messages held while a gap is being filled; beyond that they are dropped (they come again in
the resend the ResendRequest asked for)."""
RESEND_BATCH: Final = 500
"""Seq nums one ``pump_resend`` call covers; the acceptor paces a long resend with it."""
LOGON_REJECTED: Final = "logon rejected: bad credentials"
MAX_SEQ_NUM: Final = INT64_MAX
"""Largest MsgSeqNum/NewSeqNo accepted: the shared storage width (the store keeps 63 bits)."""
_MAX_INT_DIGITS: Final = 20
_TOO_LARGE: Final = 1 << 80  # an integer field of more than _MAX_INT_DIGITS digits

NOT_RESENT_MSG_TYPES: Final = frozenset({t.MT_MARKET_DATA_SNAPSHOT, t.MT_MARKET_DATA_INCREMENTAL})
"""Application messages that are not stored: stale market data is gap-filled, never replayed."""

# Every MsgType defined by FIX 4.4; a valid type the application does not handle gets
# BusinessMessageReject 380=3, anything else Reject 373=11.
FIX44_MSG_TYPES: Final = frozenset(
    list("0123456789")
    + list("ABCDEFGHJKLMNPQRSTVWXYZ")
    + list("abcdefghijklmnopqrstuvwxyz")
    + [f"A{c}" for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]
    + [f"B{c}" for c in "ABCDEFGH"]
)
_RESEND_HEADER_TAGS: Final = frozenset(
    {
        t.MsgType,
        t.SenderCompID,
        t.TargetCompID,
        t.MsgSeqNum,
        t.SendingTime,
        t.PossDupFlag,
        t.PossResend,
        t.OrigSendingTime,
    }
)


_SECRET_TAGS: Final = frozenset({t.Password, 925})  # Password, NewPassword
_SECRET_MSG_TYPES: Final = frozenset({t.MT_LOGON, "BE"})  # the FIX 4.4 messages that carry them
REDACTED: Final = "***"
"""What a stored received message holds instead of a password."""


def _redacted(fields: tuple[tuple[int, str], ...]) -> tuple[tuple[int, str], ...]:
    """``fields`` with the values of password fields replaced by ``REDACTED``."""
    return tuple((tag, REDACTED if tag in _SECRET_TAGS else value) for tag, value in fields)


class SessionState(enum.Enum):
    """Where the session is in its connection's life."""

    DISCONNECTED = "disconnected"
    AWAITING_LOGON = "awaiting_logon"  # a connection is attached, its Logon not yet accepted
    LOGGED_ON = "logged_on"
    LOGOUT_SENT = "logout_sent"  # we sent Logout and wait for the peer's


class SessionListener(Protocol):
    """Receives what the session delivers (the acceptor adapts it to ``FixApplication``)."""

    @property
    def supported_msg_types(self) -> frozenset[str]: ...

    def on_logon(self, session: FixSession) -> None: ...

    def on_logout(self, session: FixSession, reason: str) -> None: ...

    def on_message(self, session: FixSession, msg: Message) -> None: ...


def _int_field(msg: Message, tag: int, *, signed: bool = False) -> int | str | None:
    """Value of an integer field: int, None when absent, the raw str when not an integer.

    Without ``signed`` a leading minus makes it "not an integer" (a seq num or HeartBtInt
    never has one). More than ``_MAX_INT_DIGITS`` digits read as ``_TOO_LARGE``, above every
    limit, so that no input reaches ``int()``'s digit limit.
    """
    value = msg.get(tag)
    if value is None:
        return None
    negative = signed and value.startswith("-")
    digits = value[1:] if negative else value
    if digits.isascii() and digits.isdigit():
        if len(digits) > _MAX_INT_DIGITS:
            return -_TOO_LARGE if negative else _TOO_LARGE
        return int(value)
    return value


def refusal_logout(config: VenueConfig, msg: Message, text: str, now_ns: int) -> bytes:
    """Logout answering a Logon that no session may take (unknown member, already connected).

    It carries MsgSeqNum 1 and touches no store: an unauthenticated peer cannot move a session's
    sequence numbers.
    """
    header = [
        (t.SenderCompID, config.name),
        (t.TargetCompID, msg.get(t.SenderCompID) or "UNKNOWN"),
        (t.MsgSeqNum, "1"),
        (t.SendingTime, utc_timestamp(now_ns)),
    ]
    return encode(t.BEGIN_STRING, t.MT_LOGOUT, header, [(t.Text, text)])


class FixSession:
    """One member's FIX session, acceptor side: persistent across connections, sans-IO.

    Per connection: ``connection_made``, then ``on_message`` for every decoded item (the first
    must be the Logon), ``on_timer`` when ``next_timer_ns`` is due, ``connection_lost`` at the
    end. After each call write ``take_output()`` to the peer, and close the connection when
    ``close_reason`` is set. Sequence numbers live in the store and are written through to it.
    """

    def __init__(
        self,
        config: VenueConfig,
        member: MemberConfig,
        store: SessionStore,
        listener: SessionListener,
        *,
        logout_timeout_ns: int = LOGOUT_TIMEOUT_NS,
        resend_batch: int = RESEND_BATCH,
    ) -> None:
        self._config = config
        self._member = member
        self._store = store
        self._listener = listener
        self._logout_timeout_ns = logout_timeout_ns
        self._resend_batch = resend_batch
        self._state = SessionState.DISCONNECTED
        self._out: list[bytes] = []
        self._close_reason: str | None = None
        self._hb_ns = 0
        self._last_sent = 0
        self._last_recv = 0
        self._test_req_at: int | None = None
        self._queue: dict[int, Message] = {}
        self._handled_early: set[int] = set()
        self._jumped = False  # a SequenceReset moved the expected seq num since the last drain
        self._resend_upto = 0  # highest seq seen when our ResendRequest went out; 0: none out
        self._logout_deadline: int | None = None
        self._throttle: deque[int] = deque()
        self._resend_next = 0  # peer's ResendRequest being answered: next seq, last seq
        self._resend_end = -1
        self._awaiting_reset_logon = False  # we reset for a new epoch; the peer's Logon is due
        self._peer: tuple[str, int] = ("", 0)  # the connection's source address and port

    # --- state ----------------------------------------------------------------------------------

    @property
    def comp_id(self) -> str:
        return self._member.comp_id

    @property
    def member(self) -> MemberConfig:
        return self._member

    @property
    def store(self) -> SessionStore:
        return self._store

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def logged_on(self) -> bool:
        return self._state is SessionState.LOGGED_ON

    @property
    def connected(self) -> bool:
        """Whether a connection is attached (logged on or not)."""
        return self._state is not SessionState.DISCONNECTED

    @property
    def peer(self) -> tuple[str, int]:
        """Source address and port of the current (or last) connection; ("", 0) if unknown."""
        return self._peer

    @property
    def heartbeat_ns(self) -> int:
        """The HeartBtInt agreed at logon, in ns (0 before logon)."""
        return self._hb_ns

    @property
    def close_reason(self) -> str | None:
        """Set when the session wants its connection closed (after writing the output)."""
        return self._close_reason

    @property
    def resend_pending(self) -> bool:
        """Whether part of a requested resend is still to be produced by ``pump_resend``."""
        return self._resend_next <= self._resend_end

    def take_output(self) -> list[bytes]:
        """The messages to write to the peer, in sequence order, since the last call."""
        out, self._out = self._out, []
        return out

    # --- connection life ------------------------------------------------------------------------

    def connection_made(self, now_ns: int, peer: tuple[str, int] = ("", 0)) -> None:
        """A connection from ``peer`` (address, port) presents itself; it must send a Logon."""
        if self._state is not SessionState.DISCONNECTED:
            raise RuntimeError(f"session {self.comp_id} already has a connection")
        self._reset_connection()
        self._peer = peer
        self._state = SessionState.AWAITING_LOGON
        self._last_recv = self._last_sent = now_ns

    def connection_lost(self, reason: str, now_ns: int) -> None:
        """The connection is gone (closed by either side); tells the listener if logged on."""
        if self._state is SessionState.DISCONNECTED:
            return
        was_logged_on = self._state in (SessionState.LOGGED_ON, SessionState.LOGOUT_SENT)
        final_reason = self._close_reason or reason
        self._state = SessionState.DISCONNECTED
        self._reset_connection()
        _log.info("FIX session %s disconnected: %s", self.comp_id, final_reason)
        if was_logged_on:
            self._listener.on_logout(self, final_reason)

    def _reset_connection(self) -> None:
        self._out = []
        self._close_reason = None
        self._hb_ns = 0
        self._test_req_at = None
        self._queue.clear()
        self._handled_early.clear()
        self._jumped = False
        self._resend_upto = 0
        self._logout_deadline = None
        self._throttle.clear()
        self._resend_next, self._resend_end = 0, -1
        self._awaiting_reset_logon = False

    def _close(self, reason: str) -> None:
        if self._close_reason is None:
            self._close_reason = reason

    def logout(self, text: str, *, now_ns: int) -> None:
        """Start a logout (e.g. shutdown): send Logout, wait for the peer's or the timeout."""
        if self._state is SessionState.LOGGED_ON:
            self._send_session(t.MT_LOGOUT, [(t.Text, text)] if text else [], now_ns)
            self._state = SessionState.LOGOUT_SENT
            self._logout_deadline = now_ns + self._logout_timeout_ns
        elif self._state is SessionState.AWAITING_LOGON:
            self._close(text)

    # --- timers ---------------------------------------------------------------------------------

    def next_timer_ns(self) -> int | None:
        """When ``on_timer`` next has something to do (None: nothing scheduled)."""
        if self._state not in (SessionState.LOGGED_ON, SessionState.LOGOUT_SENT):
            return None
        if self._close_reason is not None:
            return None
        hb = self._hb_ns
        due = self._last_sent + hb
        if self._test_req_at is not None:
            due = min(due, self._test_req_at + hb)
        else:
            due = min(due, self._last_recv + hb * 6 // 5)
        if self._logout_deadline is not None:
            due = min(due, self._logout_deadline)
        return due

    def on_timer(self, now_ns: int) -> None:
        """Heartbeat, TestRequest, heartbeat timeout and logout timeout."""
        if self._close_reason is not None:
            return
        if self._state not in (SessionState.LOGGED_ON, SessionState.LOGOUT_SENT):
            return
        if self._logout_deadline is not None and now_ns >= self._logout_deadline:
            self._close("logout timeout")
            return
        hb = self._hb_ns
        if self._test_req_at is not None:
            if now_ns - self._test_req_at >= hb:
                self._close("heartbeat timeout")
                return
        elif now_ns - self._last_recv >= hb * 6 // 5:
            self._send_session(t.MT_TEST_REQUEST, [(t.TestReqID, f"TEST-{now_ns}")], now_ns)
            self._test_req_at = now_ns
        if now_ns - self._last_sent >= hb:
            self._send_session(t.MT_HEARTBEAT, [], now_ns)

    # --- inbound --------------------------------------------------------------------------------

    def on_message(self, item: Message | DecodeError, now_ns: int) -> None:
        """Process one item from the connection's ``StreamDecoder``."""
        if self._state is SessionState.DISCONNECTED or self._close_reason is not None:
            return
        if isinstance(item, DecodeError):
            if item.fatal:
                if self._state is not SessionState.AWAITING_LOGON:
                    self._send_session(t.MT_LOGOUT, [(t.Text, item.reason)], now_ns)
                self._close(item.reason)
            else:
                _log.debug("FIX session %s: garbled message ignored: %s", self.comp_id, item.reason)
            return
        self._last_recv = now_ns
        self._test_req_at = None
        if self._state is SessionState.AWAITING_LOGON:
            self._on_logon(item, now_ns)
        else:
            fields = item.fields
            if fields[0][1] in _SECRET_MSG_TYPES:
                fields = _redacted(fields)
            self._store.save_received(fields, now_ns, self._peer)
            self._on_sequenced(item, now_ns)

    def _authenticated(self, msg: Message) -> bool:
        """Whether the Logon names this member and carries its password."""
        password = msg.get(t.Password)
        return (
            msg.get(t.SenderCompID) == self.comp_id
            and password is not None
            and self._member.check_password(password)
        )

    def _on_logon(self, msg: Message, now_ns: int) -> None:
        if msg.msg_type != t.MT_LOGON:
            self._close("first message was not a Logon")
            return
        if not self._authenticated(msg):
            # not the member: answer with MsgSeqNum 1 and leave its store alone
            host, port = self._peer
            _log.info("FIX logon of %s from %s:%d refused: bad password", self.comp_id, host, port)
            self._emit(refusal_logout(self._config, msg, LOGON_REJECTED, now_ns), now_ns)
            self._close(LOGON_REJECTED)
            return
        self._store.save_received(_redacted(msg.fields), now_ns, self._peer)
        refusal = self._check_logon(msg, now_ns)
        if refusal is not None:
            _log.info("FIX logon of %s from %s:%d refused: %s", self.comp_id, *self._peer, refusal)
            self._send_session(t.MT_LOGOUT, [(t.Text, refusal)], now_ns)
            self._close(refusal)
            return
        seq = _int_field(msg, t.MsgSeqNum)
        hbi = _int_field(msg, t.HeartBtInt)
        if not isinstance(seq, int) or not isinstance(hbi, int):  # _check_logon saw to it
            raise RuntimeError("unchecked Logon accepted")
        reset = msg.get(t.ResetSeqNumFlag) == "Y"
        if self._store.epoch_notice_pending:
            self._logon_in_new_epoch(reset, hbi, now_ns)
            return
        if reset:
            self._store.reset(now_ns=now_ns)
        expected = self._store.next_target_seq
        if seq < expected:
            text = f"MsgSeqNum too low, expecting {expected} but received {seq}"
            self._send_session(t.MT_LOGOUT, [(t.Text, text)], now_ns)
            self._close(text)
            return
        self._state = SessionState.LOGGED_ON
        self._hb_ns = hbi * _NS
        body = [(t.EncryptMethod, "0"), (t.HeartBtInt, str(hbi))]
        if reset:
            body.append((t.ResetSeqNumFlag, "Y"))
        self._send_session(t.MT_LOGON, body, now_ns)
        if seq == expected:
            self._store.set_next_target_seq(seq + 1)
        else:
            self._queue[seq] = msg
            self._handled_early.add(seq)
            self._request_resend(expected, seq, now_ns)
        _log.info("FIX session %s logged on (HeartBtInt %d)", self.comp_id, hbi)
        self._listener.on_logon(self)

    def _logon_in_new_epoch(self, peer_reset: bool, hbi: int, now_ns: int) -> None:
        """The first logon since the venue started a new epoch (docs/fix.md, "New epoch").

        Answered with a Logon carrying MsgSeqNum 1 (reserved when the store was reset) and
        ResetSeqNumFlag=Y, whatever the member's MsgSeqNum: both sides start over. A member
        that did not ask for the reset answers with its own Logon 34=1 141=Y. Then a News (B)
        says why; reports stored since the epoch began follow it by ResendRequest.
        """
        self._state = SessionState.LOGGED_ON
        self._hb_ns = hbi * _NS
        body = [(t.EncryptMethod, "0"), (t.HeartBtInt, str(hbi)), (t.ResetSeqNumFlag, "Y")]
        self._emit(encode(t.BEGIN_STRING, t.MT_LOGON, self._header(1, now_ns), body), now_ns)
        if peer_reset:  # the member's Logon was its seq num 1
            self._store.set_next_target_seq(2)
        else:
            self._store.set_next_target_seq(1)
            self._awaiting_reset_logon = True
        epoch = self._store.venue_epoch
        self._store.epoch_notice_given()
        number = epoch.epoch if epoch is not None else 0
        text = (
            f"The venue started epoch {number}: sequence numbers were reset, and orders and "
            "execution reports of earlier epochs are void. Check your open orders "
            "(OrderStatusRequest) before trading."
        )
        self.send_app(
            t.MT_NEWS,
            [
                (t.Headline, f"{self._config.name} started epoch {number}"),
                (t.LinesOfText, "1"),
                (t.Text, text),
            ],
            now_ns=now_ns,
        )
        _log.warning("FIX session %s logged on in new epoch %d", self.comp_id, number)
        self._listener.on_logon(self)

    def _check_logon(self, msg: Message, now_ns: int) -> str | None:
        """Why the Logon of the authenticated member is refused, or None."""
        seq = _int_field(msg, t.MsgSeqNum)
        if not isinstance(seq, int) or not 1 <= seq <= MAX_SEQ_NUM:
            return f"logon rejected: MsgSeqNum (34) missing or not an integer in 1..{MAX_SEQ_NUM}"
        if msg.get(t.TargetCompID) != self._config.name:
            return f"logon rejected: TargetCompID (56) must be {self._config.name}"
        if msg.get(t.EncryptMethod) != "0":
            return "logon rejected: EncryptMethod (98) must be 0"
        hbi = _int_field(msg, t.HeartBtInt)
        hb_max = self._config.heartbeat_max_seconds
        if not isinstance(hbi, int) or not 1 <= hbi <= hb_max:
            return f"logon rejected: HeartBtInt (108) must be 1..{hb_max}"
        if self._sending_time_problem(msg, now_ns) is not None:
            return "logon rejected: SendingTime (52) missing or more than 120 s from now"
        reset = msg.get(t.ResetSeqNumFlag)
        if reset not in (None, "Y", "N"):
            return "logon rejected: ResetSeqNumFlag (141) must be Y or N"
        if reset == "Y" and seq != 1:
            return "logon rejected: MsgSeqNum must be 1 with ResetSeqNumFlag=Y"
        return None

    def _on_sequenced(self, msg: Message, now_ns: int) -> None:
        seq_field = _int_field(msg, t.MsgSeqNum)
        if not isinstance(seq_field, int) or not 1 <= seq_field <= MAX_SEQ_NUM:
            text = f"MsgSeqNum (34) missing or not an integer in 1..{MAX_SEQ_NUM}"
            self._send_session(t.MT_LOGOUT, [(t.Text, text)], now_ns)
            self._close(text)
            return
        seq = seq_field
        mt = msg.msg_type
        if mt == t.MT_SEQUENCE_RESET and msg.get(t.GapFillFlag) != "Y":
            self._sequence_reset(msg, now_ns)
            return
        expected = self._store.next_target_seq
        if seq < expected:
            if msg.get(t.PossDupFlag) == "Y":
                if not msg.has(t.OrigSendingTime):
                    text = "OrigSendingTime (122) is required with PossDupFlag=Y"
                    self.reject(
                        msg, t.SRR_REQUIRED_TAG_MISSING, t.OrigSendingTime, text, now_ns=now_ns
                    )
                return  # a duplicate of a message already processed
            text = f"MsgSeqNum too low, expecting {expected} but received {seq}"
            self._send_session(t.MT_LOGOUT, [(t.Text, text)], now_ns)
            self._close(text)
            return
        if seq > expected:
            if mt == t.MT_RESEND_REQUEST:
                # answer it now, or both sides would wait for each other's resend
                self._handled_early.add(seq)
                self._process(msg, seq, now_ns, consume=False)
            elif mt == t.MT_LOGOUT:
                self._process(msg, seq, now_ns, consume=False)
                return
            if len(self._queue) < MAX_QUEUED_MESSAGES:
                self._queue.setdefault(seq, msg)
            self._request_resend(expected, seq, now_ns)
            return
        self._process(msg, seq, now_ns)
        self._drain(now_ns)

    def _request_resend(self, expected: int, seen: int, now_ns: int) -> None:
        if self._resend_upto >= expected:
            self._resend_upto = max(self._resend_upto, seen)
            return  # ours is still being answered
        body = [(t.BeginSeqNo, str(expected)), (t.EndSeqNo, "0")]
        self._send_session(t.MT_RESEND_REQUEST, body, now_ns)
        self._resend_upto = seen

    def _drain(self, now_ns: int) -> None:
        """Process queued messages that are now in sequence."""
        while (
            self._queue
            and self._close_reason is None
            and self._state in (SessionState.LOGGED_ON, SessionState.LOGOUT_SENT)
        ):
            expected = self._store.next_target_seq
            msg = self._queue.pop(expected, None)
            if msg is None:
                break
            if expected in self._handled_early:
                self._handled_early.discard(expected)
                self._store.set_next_target_seq(expected + 1)
                continue
            self._process(msg, expected, now_ns)
        expected = self._store.next_target_seq
        if self._jumped:  # a SequenceReset skipped seq nums: queued ones below are stale
            self._jumped = False
            for stale in [s for s in self._queue if s < expected]:
                del self._queue[stale]
                self._handled_early.discard(stale)
        if expected > self._resend_upto:
            self._resend_upto = 0

    def _process(self, msg: Message, seq: int, now_ns: int, *, consume: bool = True) -> None:
        """Validate and act on a message that is in sequence (or must be answered out of it)."""
        if consume:
            self._store.set_next_target_seq(seq + 1)
        mt = msg.msg_type
        for tag, expect in ((t.SenderCompID, self.comp_id), (t.TargetCompID, self._config.name)):
            if msg.get(tag) != expect:
                text = f"CompID problem: tag {tag} must be {expect}"
                self.reject(msg, t.SRR_COMPID_PROBLEM, tag, text, now_ns=now_ns)
                self._send_session(t.MT_LOGOUT, [(t.Text, text)], now_ns)
                self._close(text)
                return
        problem = self._sending_time_problem(msg, now_ns)
        if problem is not None:
            reason, tag, text = problem
            self.reject(msg, reason, tag, text, now_ns=now_ns)
            return
        for tag, value in msg.fields:
            if not value:
                text = f"tag {tag} specified without a value"
                self.reject(msg, t.SRR_TAG_WITHOUT_VALUE, tag, text, now_ns=now_ns)
                return
        if mt in t.SESSION_MSG_TYPES:
            self._session_message(msg, seq, now_ns)
        elif mt in self._listener.supported_msg_types:
            self._deliver(msg, now_ns)
        elif mt in FIX44_MSG_TYPES:
            text = f"unsupported MsgType {mt}"
            self.business_reject(msg, t.BRR_UNSUPPORTED_MSG_TYPE, text, now_ns=now_ns)
        else:
            text = f"invalid MsgType {mt}"
            self.reject(msg, t.SRR_INVALID_MSG_TYPE, t.MsgType, text, now_ns=now_ns)

    def _sending_time_problem(self, msg: Message, now_ns: int) -> tuple[int, int, str] | None:
        """(SessionRejectReason, RefTagID, Text) of a SendingTime/PossDup problem, or None."""
        sending = msg.get(t.SendingTime)
        if sending is None:
            return t.SRR_REQUIRED_TAG_MISSING, t.SendingTime, "SendingTime (52) is required"
        try:
            sending_ns = parse_utc_timestamp(sending)
        except ValueError:
            return t.SRR_INCORRECT_DATA_FORMAT, t.SendingTime, "SendingTime (52) is not a timestamp"
        if abs(sending_ns - now_ns) > SENDING_TIME_TOLERANCE_NS:
            text = "SendingTime accuracy problem: more than 120 s from the venue clock"
            return t.SRR_SENDING_TIME_ACCURACY, t.SendingTime, text
        poss_dup = msg.get(t.PossDupFlag)
        if poss_dup is None or poss_dup == "N":
            return None
        if poss_dup != "Y":
            return t.SRR_VALUE_INCORRECT, t.PossDupFlag, "PossDupFlag (43) must be Y or N"
        orig = msg.get(t.OrigSendingTime)
        if orig is None:
            text = "OrigSendingTime (122) is required with PossDupFlag=Y"
            return t.SRR_REQUIRED_TAG_MISSING, t.OrigSendingTime, text
        try:
            orig_ns = parse_utc_timestamp(orig)
        except ValueError:
            text = "OrigSendingTime (122) is not a timestamp"
            return t.SRR_INCORRECT_DATA_FORMAT, t.OrigSendingTime, text
        if orig_ns > sending_ns:
            text = "OrigSendingTime (122) is later than SendingTime (52)"
            return t.SRR_SENDING_TIME_ACCURACY, t.OrigSendingTime, text
        return None

    def _session_message(self, msg: Message, seq: int, now_ns: int) -> None:
        mt = msg.msg_type
        if mt == t.MT_HEARTBEAT:
            return
        if mt == t.MT_TEST_REQUEST:
            req_id = msg.get(t.TestReqID)
            if req_id is None:
                text = "TestReqID (112) is required"
                self.reject(msg, t.SRR_REQUIRED_TAG_MISSING, t.TestReqID, text, now_ns=now_ns)
            else:
                self._send_session(t.MT_HEARTBEAT, [(t.TestReqID, req_id)], now_ns)
        elif mt == t.MT_RESEND_REQUEST:
            self._on_resend_request(msg, now_ns)
        elif mt == t.MT_REJECT:
            _log.info("FIX session %s: peer rejected our message: %s", self.comp_id, msg.fields)
        elif mt == t.MT_SEQUENCE_RESET:
            self._gap_fill(msg, seq, now_ns)
        elif mt == t.MT_LOGOUT:
            text = msg.get(t.Text) or ""
            if self._state is SessionState.LOGOUT_SENT:
                self._close("logout completed")
            else:
                self._send_session(t.MT_LOGOUT, [], now_ns)
                self._close(f"logout by peer: {text}" if text else "logout by peer")
        elif self._awaiting_reset_logon and msg.get(t.ResetSeqNumFlag) == "Y" and seq == 1:
            self._awaiting_reset_logon = False  # the member's answer to our new-epoch reset
        else:  # Logon while logged on
            text = "already logged on"
            self.reject(msg, t.SRR_VALUE_INCORRECT, t.MsgType, text, now_ns=now_ns)

    def _new_seq_no(self, msg: Message, now_ns: int) -> int | None:
        new = _int_field(msg, t.NewSeqNo, signed=True)
        if new is None:
            text = "NewSeqNo (36) is required"
            self.reject(msg, t.SRR_REQUIRED_TAG_MISSING, t.NewSeqNo, text, now_ns=now_ns)
            return None
        if isinstance(new, str):
            text = "NewSeqNo (36) is not an integer"
            self.reject(msg, t.SRR_INCORRECT_DATA_FORMAT, t.NewSeqNo, text, now_ns=now_ns)
            return None
        if new > MAX_SEQ_NUM:
            text = f"NewSeqNo (36) out of range: more than {MAX_SEQ_NUM}"
            self.reject(msg, t.SRR_VALUE_INCORRECT, t.NewSeqNo, text, now_ns=now_ns)
            return None
        return new

    def _gap_fill(self, msg: Message, seq: int, now_ns: int) -> None:
        new = self._new_seq_no(msg, now_ns)
        if new is None:
            return
        if new <= seq:
            text = f"attempt to lower sequence number, invalid value NewSeqNo={new}"
            self.reject(msg, t.SRR_VALUE_INCORRECT, t.NewSeqNo, text, now_ns=now_ns)
            return
        self._store.set_next_target_seq(new)
        self._jumped = True

    def _sequence_reset(self, msg: Message, now_ns: int) -> None:
        """SequenceReset in Reset mode: sets the expected seq whatever the message's own 34."""
        new = self._new_seq_no(msg, now_ns)
        if new is None:
            return
        expected = self._store.next_target_seq
        if new < expected:
            text = f"attempt to lower sequence number, invalid value NewSeqNo={new}"
            self.reject(msg, t.SRR_VALUE_INCORRECT, t.NewSeqNo, text, now_ns=now_ns)
            return
        self._store.set_next_target_seq(new)
        self._jumped = True
        self._drain(now_ns)

    def _deliver(self, msg: Message, now_ns: int) -> None:
        limit = self._member.throttle_per_second
        window = self._throttle
        while window and window[0] <= now_ns - _NS:
            window.popleft()
        if len(window) >= limit:
            text = f"throttle exceeded: more than {limit} messages per second"
            ref_id = msg.get(t.ClOrdID) or ""
            self.business_reject(msg, t.BRR_THROTTLE, text, now_ns=now_ns, ref_id=ref_id)
            return
        window.append(now_ns)
        self._listener.on_message(self, msg)

    # --- resend ---------------------------------------------------------------------------------

    def _on_resend_request(self, msg: Message, now_ns: int) -> None:
        begin = _int_field(msg, t.BeginSeqNo, signed=True)
        end = _int_field(msg, t.EndSeqNo, signed=True)
        if not isinstance(begin, int) or not isinstance(end, int):
            tag, value = (t.BeginSeqNo, begin) if not isinstance(begin, int) else (t.EndSeqNo, end)
            if value is None:
                text = f"tag {tag} is required"
                self.reject(msg, t.SRR_REQUIRED_TAG_MISSING, tag, text, now_ns=now_ns)
            else:
                text = f"tag {tag} is not an integer"
                self.reject(msg, t.SRR_INCORRECT_DATA_FORMAT, tag, text, now_ns=now_ns)
            return
        problem_tag = None
        if begin < 1:
            problem_tag = t.BeginSeqNo
        elif end < 0:
            problem_tag = t.EndSeqNo
        elif end != 0 and begin > end:
            problem_tag = t.BeginSeqNo
        if problem_tag is not None:
            text = f"invalid resend range {begin}..{end}"
            self.reject(msg, t.SRR_VALUE_INCORRECT, problem_tag, text, now_ns=now_ns)
            return
        last = self._store.next_sender_seq - 1
        if begin > last:
            return  # nothing sent in that range yet
        self._resend_next, self._resend_end = begin, last if end == 0 or end > last else end
        self.pump_resend(now_ns)

    def pump_resend(self, now_ns: int) -> None:
        """Produce the next part (``resend_batch`` seq nums) of the resend being answered."""
        if not self.resend_pending or self._state is SessionState.DISCONNECTED:
            return
        begin = self._resend_next
        chunk_end = min(self._resend_end, begin + self._resend_batch - 1)
        position = begin
        for seq, raw in self._store.get_range(begin, chunk_end):
            if seq > position:
                self._emit(self._gap_fill_message(position, seq, now_ns), now_ns)
            self._emit(self._possdup_copy(seq, raw, now_ns), now_ns)
            position = seq + 1
        if position <= chunk_end:
            self._emit(self._gap_fill_message(position, chunk_end + 1, now_ns), now_ns)
        self._resend_next = chunk_end + 1

    def _gap_fill_message(self, seq: int, new_seq: int, now_ns: int) -> bytes:
        stamp = utc_timestamp(now_ns)
        header = [
            (t.SenderCompID, self._config.name),
            (t.TargetCompID, self.comp_id),
            (t.MsgSeqNum, str(seq)),
            (t.PossDupFlag, "Y"),
            (t.SendingTime, stamp),
            (t.OrigSendingTime, stamp),
        ]
        body = [(t.GapFillFlag, "Y"), (t.NewSeqNo, str(new_seq))]
        return encode(t.BEGIN_STRING, t.MT_SEQUENCE_RESET, header, body)

    def _possdup_copy(self, seq: int, raw: bytes, now_ns: int) -> bytes:
        original = decode_message(raw)
        header = [
            (t.SenderCompID, self._config.name),
            (t.TargetCompID, self.comp_id),
            (t.MsgSeqNum, str(seq)),
            (t.PossDupFlag, "Y"),
            (t.SendingTime, utc_timestamp(now_ns)),
            (t.OrigSendingTime, original.get(t.SendingTime) or utc_timestamp(now_ns)),
        ]
        if original.get(t.PossResend) == "Y":
            header.append((t.PossResend, "Y"))
        body = [(k, v) for k, v in original.fields if k not in _RESEND_HEADER_TAGS]
        return encode(t.BEGIN_STRING, original.msg_type, header, body)

    # --- outbound -------------------------------------------------------------------------------

    def _header(self, seq: int, now_ns: int) -> list[tuple[int, str]]:
        return [
            (t.SenderCompID, self._config.name),
            (t.TargetCompID, self.comp_id),
            (t.MsgSeqNum, str(seq)),
            (t.SendingTime, utc_timestamp(now_ns)),
        ]

    def _emit(self, raw: bytes, now_ns: int) -> None:
        if self._state is not SessionState.DISCONNECTED:
            self._out.append(raw)
            self._last_sent = now_ns

    def _send_session(self, msg_type: str, body: Sequence[tuple[int, str]], now_ns: int) -> None:
        seq = self._store.next_sender_seq
        raw = encode(t.BEGIN_STRING, msg_type, self._header(seq, now_ns), body)
        self._store.skip_sent(seq)  # session messages are gap-filled on resend
        self._emit(raw, now_ns)

    def send_app(
        self,
        msg_type: str,
        body: Sequence[tuple[int, str]],
        *,
        now_ns: int,
        poss_resend: bool = False,
    ) -> bytes:
        """Sequence, stamp and store an application message; queue it for output if logged on.

        The message is in the store (written through to the OS) before this returns, also when
        the member is offline: it then reaches the member by ResendRequest after its next logon.
        Market data (``NOT_RESENT_MSG_TYPES``) only uses up its seq num and is gap-filled.
        ``poss_resend`` sets PossResend (97=Y): the message may have been sent before under
        another seq num (the receiver checks for a duplicate by its id, e.g. ExecID).
        """
        if msg_type in t.SESSION_MSG_TYPES:
            raise ValueError(f"MsgType {msg_type} is a session message")
        seq = self._store.next_sender_seq
        header = self._header(seq, now_ns)
        if poss_resend:
            header.append((t.PossResend, "Y"))
        raw = encode(t.BEGIN_STRING, msg_type, header, body)
        if msg_type in NOT_RESENT_MSG_TYPES:
            self._store.skip_sent(seq)
        else:
            self._store.save_sent(seq, raw)
        if self._state is SessionState.LOGGED_ON:
            self._emit(raw, now_ns)
        return raw

    def reject(
        self, msg: MessageFields, reason: int, ref_tag: int | None, text: str, *, now_ns: int
    ) -> None:
        """Session-level Reject (35=3) of ``msg``; its seq num stays consumed."""
        body: list[tuple[int, str]] = []
        ref_seq = msg.get(t.MsgSeqNum)
        if ref_seq:
            body.append((t.RefSeqNum, ref_seq))
        if ref_tag is not None:
            body.append((t.RefTagID, str(ref_tag)))
        ref_type = msg.get(t.MsgType)
        if ref_type:
            body.append((t.RefMsgType, ref_type))
        body.append((t.SessionRejectReason, str(reason)))
        if text:
            body.append((t.Text, text))
        _log.info("FIX session %s: Reject %d of seq %s: %s", self.comp_id, reason, ref_seq, text)
        self._send_session(t.MT_REJECT, body, now_ns)

    def business_reject(
        self, msg: MessageFields, reason: int, text: str, *, now_ns: int, ref_id: str = ""
    ) -> None:
        """BusinessMessageReject (35=j) of ``msg`` (an application message, stored and resent)."""
        body: list[tuple[int, str]] = []
        ref_seq = msg.get(t.MsgSeqNum)
        if ref_seq:
            body.append((t.RefSeqNum, ref_seq))
        ref_type = msg.get(t.MsgType)
        if ref_type:
            body.append((t.RefMsgType, ref_type))
        if ref_id:
            body.append((t.BusinessRejectRefID, ref_id))
        body.append((t.BusinessRejectReason, str(reason)))
        if text:
            body.append((t.Text, text))
        self.send_app(t.MT_BUSINESS_MESSAGE_REJECT, body, now_ns=now_ns)
