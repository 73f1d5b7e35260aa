"""The gateway's asyncio TCP acceptor: connections, timers, durable flushing and backpressure.

Glues sockets to the sans-IO ``FixSession`` of each member and the ``FixApplication`` on top.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final, cast

from tradingfloor.exchange.config import MemberConfig, VenueConfig
from tradingfloor.exchange.fix import tags as t
from tradingfloor.exchange.fix.application_api import FixApplication, SessionHandle
from tradingfloor.exchange.fix.codec import DecodeError, Message, MessageFields, StreamDecoder
from tradingfloor.exchange.fix.logon_guard import LOCKOUTS_FILE, LogonGuard
from tradingfloor.exchange.fix.session import (
    LOGON_REJECTED,
    FixSession,
    refusal_logout,
)
from tradingfloor.exchange.fix.store import SessionStore, read_store_epoch
from tradingfloor.exchange.identity import ConsumerMark, VenueIdentity

__all__ = [
    "LOGON_TIMEOUT_S",
    "MAX_CONNECTIONS",
    "MAX_WRITE_BUFFER_BYTES",
    "RESEND_LOW_WATER_BYTES",
    "STOP_TIMEOUT_S",
    "FixAcceptor",
    "FixApplication",
    "SessionHandle",
    "session_dir",
]

_log = logging.getLogger(__name__)

MAX_WRITE_BUFFER_BYTES: Final = 8 * 1024 * 1024
DEFAULT_SYNC_INTERVAL_S: Final = 0.05  # background fsync of the session stores (see FixAcceptor)
"""A connection whose unsent output exceeds this is a slow consumer and is dropped."""
RESEND_LOW_WATER_BYTES: Final = 1024 * 1024
"""A long resend is produced in batches, each once the unsent output is below this."""
LOGON_TIMEOUT_S: Final = 10.0
"""A connection that has not sent a Logon within this is closed."""
STOP_TIMEOUT_S: Final = 2.0
"""How long ``stop()`` waits for the peers' Logout answers before closing the sockets."""
MAX_CONNECTIONS: Final = 1024
"""Open connections (logged on or not) beyond which new ones are closed at once."""


class _Member:
    """Everything the acceptor holds for one member comp id."""

    __slots__ = ("conn", "handle", "session")

    def __init__(self, session: FixSession, handle: _Handle) -> None:
        self.session = session
        self.handle = handle
        self.conn: _Connection | None = None


class _Handle:
    """The ``SessionHandle`` the application gets: stamps the time and schedules the flush."""

    __slots__ = ("_acceptor", "_member")

    def __init__(self, acceptor: FixAcceptor, member: _Member | None = None) -> None:
        self._acceptor = acceptor
        self._member = member

    def _entry(self) -> _Member:
        if self._member is None:
            raise RuntimeError("session handle is not bound")
        return self._member

    @property
    def comp_id(self) -> str:
        return self._entry().session.comp_id

    @property
    def member(self) -> MemberConfig:
        return self._entry().session.member

    @property
    def logged_on(self) -> bool:
        return self._entry().session.logged_on

    def send(
        self, msg_type: str, body: Sequence[tuple[int, str]], *, poss_resend: bool = False
    ) -> None:
        entry = self._entry()
        entry.session.send_app(
            msg_type, body, now_ns=self._acceptor.clock(), poss_resend=poss_resend
        )
        self._acceptor._touch(entry)

    def reject(self, msg: MessageFields, reason: int, ref_tag: int | None, text: str) -> None:
        entry = self._entry()
        entry.session.reject(msg, reason, ref_tag, text, now_ns=self._acceptor.clock())
        self._acceptor._touch(entry)

    def business_reject(self, msg: MessageFields, reason: int, text: str, ref_id: str = "") -> None:
        entry = self._entry()
        now = self._acceptor.clock()
        entry.session.business_reject(msg, reason, text, now_ns=now, ref_id=ref_id)
        self._acceptor._touch(entry)


class _Listener:
    """Adapts session callbacks to the application, guarding it against its own exceptions."""

    __slots__ = ("_acceptor", "_app")

    def __init__(self, acceptor: FixAcceptor, app: FixApplication) -> None:
        self._acceptor = acceptor
        self._app = app

    @property
    def supported_msg_types(self) -> frozenset[str]:
        return self._app.supported_msg_types

    def on_logon(self, session: FixSession) -> None:
        try:
            self._app.on_logon(self._acceptor._entries[session.comp_id].handle)
        except Exception:
            _log.exception("FIX application on_logon failed for %s", session.comp_id)

    def on_logout(self, session: FixSession, reason: str) -> None:
        try:
            self._app.on_logout(self._acceptor._entries[session.comp_id].handle, reason)
        except Exception:
            _log.exception("FIX application on_logout failed for %s", session.comp_id)

    def on_message(self, session: FixSession, msg: Message) -> None:
        handle = self._acceptor._entries[session.comp_id].handle
        try:
            self._app.on_message(handle, msg)
        except Exception:
            _log.exception("FIX application failed on %s from %s", msg.msg_type, session.comp_id)
            text = "internal error processing the message"
            handle.business_reject(msg, t.BRR_APPLICATION_NOT_AVAILABLE, text)


class _Connection(asyncio.Protocol):
    """One TCP connection: frames bytes, routes its Logon to a member session, feeds it."""

    def __init__(self, acceptor: FixAcceptor) -> None:
        self._acceptor = acceptor
        self.transport: asyncio.Transport | None = None
        self.entry: _Member | None = None
        self.closing = False
        self.reason = ""
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._decoder = StreamDecoder()
        self._timer: asyncio.TimerHandle | None = None
        self._peer: tuple[str, int] = ("?", 0)

    # --- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport does not derive from asyncio.Transport: accept it by duck typing.
        self.transport = cast(asyncio.Transport, transport)
        self._peer = _address(self.transport.get_extra_info("peername"))
        self.transport.set_write_buffer_limits(high=RESEND_LOW_WATER_BYTES)
        self._acceptor._connections.add(self)
        if len(self._acceptor._connections) > MAX_CONNECTIONS:
            self.close(f"more than {MAX_CONNECTIONS} connections", abort=True)
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(LOGON_TIMEOUT_S, self._logon_timeout)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        clock = self._acceptor.clock
        for item in self._decoder.feed(data):
            entry = self.entry
            if entry is None:
                self._first_message(item)
                if self.closing:
                    return
                continue
            entry.session.on_message(item, clock())
            if entry.session.close_reason is not None:
                break
        if self.entry is not None:
            self._acceptor._touch(self.entry)

    def pause_writing(self) -> None:
        return None  # the flush looks at the buffer size itself

    def resume_writing(self) -> None:
        if self.entry is not None and self.entry.session.resend_pending:
            self._acceptor._touch(self.entry)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self._cancel_timer()
        self._acceptor._connections.discard(self)
        reason = self.reason or (str(exc) if exc else "connection closed")
        entry = self.entry
        if entry is not None and entry.conn is self:
            entry.conn = None
            entry.session.connection_lost(reason, self._acceptor.clock())
            self._acceptor._touch(entry)
        if not self.closed.done():
            self.closed.set_result(None)

    # --- logic ----------------------------------------------------------------------------------

    def _first_message(self, item: Message | DecodeError) -> None:
        if isinstance(item, DecodeError):
            if item.fatal:
                self.close(item.reason)
            return  # a garbled message is ignored, even the first
        if item.msg_type != t.MT_LOGON:
            self.close("first message was not a Logon")
            return
        comp_id = item.get(t.SenderCompID) or ""
        now = self._acceptor.clock()
        config = self._acceptor.config
        guard = self._acceptor.logon_guard
        host, port = self._peer
        refusal = guard.admit(comp_id, host, now)
        if refusal is None:
            member = config.member(comp_id)
            password = item.get(t.Password)
            if member is not None and password is not None and member.check_password(password):
                guard.succeeded(comp_id, host)
            else:
                refusal = guard.failed(comp_id, host, now) or LOGON_REJECTED
        if refusal is not None:
            # nothing of the member's session is touched before it has authenticated
            _log.warning("FIX logon as %r from %s:%d refused: %s", comp_id, host, port, refusal)
            self._refuse(refusal_logout(config, item, refusal, now), refusal)
            return
        try:
            entry = self._acceptor._entry(comp_id)
        except Exception:
            _log.exception("FIX session store of %s cannot be opened", comp_id)
            text = "logon rejected: session unavailable"
            self._refuse(refusal_logout(config, item, text, now), text)
            return
        if entry.conn is not None or entry.session.connected:
            text = "session already connected"
            _log.info("FIX logon of %s from %s:%d refused: %s", comp_id, host, port, text)
            self._refuse(refusal_logout(config, item, text, now), text)
            return
        self._cancel_timer()
        self.entry = entry
        entry.conn = self
        entry.session.connection_made(now, self._peer)
        entry.session.on_message(item, now)

    def _refuse(self, logout: bytes, reason: str) -> None:
        if self.transport is not None:
            self.transport.write(logout)
        self.close(reason)

    def _logon_timeout(self) -> None:
        self._timer = None
        if self.entry is None:
            self.close("no Logon received")

    def close(self, reason: str, *, abort: bool = False) -> None:
        """Close the socket (after writing what is buffered unless ``abort``)."""
        if self.closing:
            return
        self.closing = True
        self.reason = reason
        self._cancel_timer()
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def arm_timer(self) -> None:
        """Schedule the session's next heartbeat/timeout check.

        A timer already due no later than that is kept (``on_timer`` checks what is due and
        re-arms): at a steady message rate the due time only moves later, and this runs once
        per flush.
        """
        entry = self.entry
        if entry is None or self.closing:
            self._cancel_timer()
            return
        due = entry.session.next_timer_ns()
        if due is None:
            self._cancel_timer()
            return
        delay = max(0.0, min(1.0, (due - self._acceptor.clock()) / 1e9))
        loop = asyncio.get_running_loop()
        timer = self._timer
        if timer is not None:
            if timer.when() <= loop.time() + delay:
                return
            timer.cancel()
        self._timer = loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        entry = self.entry
        if entry is None or self.closing:
            return
        entry.session.on_timer(self._acceptor.clock())
        self._acceptor._touch(entry)
        if self._timer is None:  # the flush re-arms it; this covers a flush already pending
            self.arm_timer()

    def flush(self, entry: _Member) -> None:
        """Write the session's output (already durable), pace resends, enforce the limits."""
        transport = self.transport
        if transport is None or self.closing:
            entry.session.take_output()
            return
        session = entry.session
        out = session.take_output()
        if out:
            transport.write(b"".join(out))
        clock = self._acceptor.clock
        while session.resend_pending and transport.get_write_buffer_size() < RESEND_LOW_WATER_BYTES:
            session.pump_resend(clock())
            transport.write(b"".join(session.take_output()))
        buffered = transport.get_write_buffer_size()
        if buffered > self._acceptor.max_write_buffer:
            _log.warning(
                "FIX session %s: slow consumer, %d bytes unsent; dropping the connection",
                session.comp_id,
                buffered,
            )
            self.close("slow consumer: write buffer limit exceeded", abort=True)
        elif session.close_reason is not None:
            self.close(session.close_reason)
        else:
            self.arm_timer()


class FixAcceptor:
    """The FIX 4.4 acceptor of the venue: one durable session per configured member.

    Every message is written to its session store (to the operating system: a process crash
    loses nothing) before it is sent. When the stores are fsynced depends on ``sync_interval``:

    - ``None``: before sending. Whatever the sessions produce during one event-loop iteration
      is fsynced (one ``SessionStore.sync`` per touched store) in a ``loop.call_soon``
      callback and only then written to the sockets. Costs one or two fsyncs on the loop
      thread per iteration.
    - a number of seconds (the default, ``DEFAULT_SYNC_INTERVAL_S``): output is written to the
      sockets at once and the touched stores are fsynced by a timer that often. A power loss
      can then cost the stores their last messages; the venue's journal is fsynced before any
      report exists, and the gateway regenerates reports past its durable mark at restart.

    ``on_synced`` (if set) is called after every fsync pass, with everything sent before it now
    on disk: the gateway advances its mark there.
    """

    def __init__(
        self,
        config: VenueConfig,
        store_dir: Path,
        application: FixApplication,
        *,
        clock: Callable[[], int] = time.time_ns,
        max_write_buffer: int = MAX_WRITE_BUFFER_BYTES,
        sync_interval: float | None = DEFAULT_SYNC_INTERVAL_S,
    ) -> None:
        if sync_interval is not None and sync_interval <= 0:
            raise ValueError("sync_interval must be positive (or None: sync before sending)")
        self.sync_interval = sync_interval
        self.on_synced: Callable[[], None] | None = None
        self.on_store_failed: Callable[[BaseException], None] | None = None
        """Called when a session store's write or fsync fails (the gateway stops the venue)."""
        self._unsynced: dict[str, _Member] = {}
        self._sync_timer: asyncio.TimerHandle | None = None
        self.config = config
        self.store_dir = store_dir
        self.clock = clock
        self.max_write_buffer = max_write_buffer
        self._listener = _Listener(self, application)
        # next to the session stores: a restart keeps the locks and the failure counts
        self.logon_guard = LogonGuard(config.logon, path=store_dir.parent / LOCKOUTS_FILE)
        self._entries: dict[str, _Member] = {}
        self._connections: set[_Connection] = set()
        self._dirty: dict[str, _Member] = {}
        self._flush_scheduled = False
        self._server: asyncio.Server | None = None
        self._identity: VenueIdentity | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0: any free port); returns the bound port."""
        if self._server is not None:
            raise RuntimeError("FIX acceptor already started")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port)
        bound: int = self._server.sockets[0].getsockname()[1]
        _log.info("FIX acceptor %s listening on %s:%d", self.config.name, host, bound)
        return bound

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Log every session out, wait up to ``timeout_s`` for the answers, close everything."""
        if self._server is not None:
            self._server.close()
        now = self.clock()
        for entry in self._entries.values():
            if entry.session.logged_on:
                entry.session.logout("venue shutting down", now_ns=now)
                self._touch(entry)
        for conn in list(self._connections):
            if conn.entry is None:
                conn.close("venue shutting down")
        self._flush()
        pending = [c.closed for c in self._connections]
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)
        for conn in list(self._connections):
            conn.close("venue shutting down", abort=True)
        pending = [c.closed for c in self._connections]
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self._flush()
        self.sync_now()
        for entry in self._entries.values():
            entry.session.store.close()
        self._entries.clear()

    # --- sessions -------------------------------------------------------------------------------

    @property
    def sessions(self) -> Mapping[str, SessionHandle]:
        """Handles of the sessions logged on now, by comp id."""
        return {c: e.handle for c, e in self._entries.items() if e.session.logged_on}

    def handle(self, comp_id: str) -> SessionHandle:
        """The handle of a member's session, connected or not (its store opens on first use).

        KeyError for a comp id that is not a configured member.
        """
        return self._entry(comp_id).handle

    def session(self, comp_id: str) -> FixSession:
        """The session state machine of a member (for tools and tests)."""
        return self._entry(comp_id).session

    def _entry(self, comp_id: str) -> _Member:
        entry = self._entries.get(comp_id)
        if entry is not None:
            return entry
        member = self.config.member(comp_id)
        if member is None:
            raise KeyError(f"{comp_id!r} is not a member of {self.config.name}")
        store = SessionStore.open(
            session_dir(self.store_dir, comp_id), now_ns=self.clock(), on_failure=self._store_failed
        )
        if self._identity is not None and store.venue_epoch is None:
            store.adopt_epoch(self._identity.venue_id, self._identity.epoch)
        handle = _Handle(self)
        entry = _Member(FixSession(self.config, member, store, self._listener), handle)
        handle._member = entry
        self._entries[comp_id] = entry
        return entry

    def _store_failed(self, exc: BaseException) -> None:
        if self.on_store_failed is not None:
            self.on_store_failed(exc)

    # --- venue identity ---------------------------------------------------------------------------

    def _store_dirs(self) -> list[tuple[str, Path]]:
        """(comp id, store directory) of every configured FIX member whose store exists."""
        found = []
        for member in self.config.members:
            if member.comp_id:
                directory = self.store_dir / _dir_name(member.comp_id)
                if directory.is_dir():
                    found.append((member.comp_id, directory))
        return found

    def store_marks(self) -> list[ConsumerMark]:
        """The venue identity each existing session store recorded (stores keep no venue seq:
        their marks carry seq 0). Stores from before identities existed are left out."""
        marks = []
        for comp_id, directory in self._store_dirs():
            epoch = read_store_epoch(directory)
            if epoch is not None:
                name = f"FIX session store of {comp_id}"
                marks.append(ConsumerMark(name, epoch.venue_id, epoch.epoch, 0))
        return marks

    def adopt_identity(self, identity: VenueIdentity) -> None:
        """Stores opened from now on record ``identity`` if they recorded none; so do the
        existing ones now (call once the marks were checked, before the replay)."""
        self._identity = identity
        for comp_id, _directory in self._store_dirs():
            self._entry(comp_id)

    def begin_epoch(self, identity: VenueIdentity) -> None:
        """The venue started a new epoch: every existing store resets its seq nums and keeps
        the notice for the member's next logon (``SessionStore.begin_epoch``)."""
        self._identity = identity
        for comp_id, _directory in self._store_dirs():
            store = self._entry(comp_id).session.store
            store.begin_epoch(identity.venue_id, identity.epoch, now_ns=self.clock())

    # --- flushing -------------------------------------------------------------------------------

    def _touch(self, entry: _Member) -> None:
        """Something changed in ``entry``: sync its store and write its output soon."""
        self._dirty[entry.session.comp_id] = entry
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (start-up code): nothing to write, make it durable now
            self._flush()
            return
        self._flush_scheduled = True
        loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, {}
        if self.sync_interval is None:
            self._sync(dirty.values())
        else:
            self._unsynced.update(dirty)
            if self._sync_timer is None and self._unsynced:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:  # no loop: make it durable now
                    self.sync_now()
                else:
                    self._sync_timer = loop.call_later(self.sync_interval, self.sync_now)
        for entry in dirty.values():
            if entry.conn is not None:
                entry.conn.flush(entry)
            else:
                entry.session.take_output()

    def _sync(self, entries: Iterable[_Member]) -> None:
        for entry in entries:
            store = entry.session.store
            if store.needs_sync and not store.closed and store.failure is None:
                store.sync()
        if self.on_synced is not None:
            self.on_synced()

    def request_sync(self) -> None:
        """Have a sync pass (and ``on_synced``) soon even if no store was written: the gateway's
        mark follows the events that sent no report too (other members' orders), so that a
        restart after a crash can start from a recent projection checkpoint."""
        if self._sync_timer is not None:
            return
        if self.sync_interval is None:
            self.sync_now()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: now
            self.sync_now()
        else:
            self._sync_timer = loop.call_later(self.sync_interval, self.sync_now)

    def sync_now(self) -> None:
        """fsync every store written since the last pass (the timer's job; also at stop)."""
        if self._sync_timer is not None:
            self._sync_timer.cancel()
            self._sync_timer = None
        unsynced, self._unsynced = self._unsynced, {}
        # Also the stores written since the last _flush: on_synced lets the gateway advance its
        # mark past every report sent so far, so all of them must be on disk first.
        unsynced.update(self._dirty)
        self._sync(unsynced.values())


def _address(peername: object) -> tuple[str, int]:
    """(address, port) of a transport's ``peername`` (IPv4 and IPv6 tuples; else str, 0)."""
    if isinstance(peername, tuple) and len(peername) >= 2:
        host, port = peername[0], peername[1]
        return str(host), port if isinstance(port, int) else 0
    return str(peername), 0


def session_dir(store_dir: Path, comp_id: str) -> Path:
    """The directory of a member's session store under an acceptor's ``store_dir``."""
    return store_dir / _dir_name(comp_id)


def _dir_name(comp_id: str) -> str:
    """A file-system-safe directory name for a comp id (percent-encoded, never '.' or '..')."""
    name = urllib.parse.quote(comp_id, safe="")
    if name in ("", ".", ".."):
        name = name.replace(".", "%2E") or "%00"
    return name
