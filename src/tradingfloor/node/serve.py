"""`tradingfloor serve`: the exchange and the broker in one asyncio process (venue, FIX,
HTTP/WebSocket, UDP feed, the broker's API and web terminal).

Start-up order: recover the venue from the data directory, attach the projections (WebSocket
market-data feed, FIX execution reports and market data, binary feed), check every durable
consumer's mark against the journal's identity and epoch (``exchange.identity``; a lost,
truncated or foreign journal raises ``EpochMismatchError`` unless the operator starts a new
epoch with ``ServeOptions.new_epoch_by``), replay the journal into them, list configured
instruments that are new, then open the FIX acceptor, the HTTP server and the UDP feed and
print one "... listening on HOST:PORT" line for each. SIGINT or SIGTERM stops it in reverse
order: members are logged out, queued commands are finished and journaled, the feed sends its
end of session.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from tradingfloor.broker.api.context import RequestContext, open_access_log
from tradingfloor.broker.identity.apikeys import DEFAULT_KEY_RATE_LIMIT_PER_MINUTE
from tradingfloor.broker.runtime import (
    BROKER_MEMBER,
    BrokerRuntime,
    book_quotes,
    load_or_create_secret,
)
from tradingfloor.exchange.config import VenueConfig, load_config
from tradingfloor.exchange.engine.commands import Command, MassCancel
from tradingfloor.exchange.engine.events import Event
from tradingfloor.exchange.fix.acceptor import FixAcceptor
from tradingfloor.exchange.fix.gateway import FixGateway
from tradingfloor.exchange.http import create_app
from tradingfloor.exchange.identity import (
    IdentityError,
    check_marks,
    format_venue_id,
    mismatch,
)
from tradingfloor.exchange.marketdata.binaryfeed import DEFAULT_FEED_ADDRESS, BinaryFeed
from tradingfloor.exchange.marketdata.feed import MarketDataFeed
from tradingfloor.exchange.operator import VenueOperator, VenueStatus
from tradingfloor.exchange.retention import DEFAULT_RETENTION, RetentionPolicy
from tradingfloor.exchange.venue import Venue
from tradingfloor.storage.db import default_url

__all__ = [
    "SERVE_SNAPSHOT_EVERY",
    "NoNewEpochNeededError",
    "ServeOptions",
    "VenueFailedError",
    "VenueServer",
    "run",
    "run_loop",
    "serve_until_stopped",
]

_log = logging.getLogger(__name__)

SERVE_SNAPSHOT_EVERY = 50_000
GC_GEN0_THRESHOLD = 50_000  # allocations between young-generation collections (default 700)


@dataclass(slots=True)
class ServeOptions:
    data_dir: Path = Path("var/venue")
    config_path: Path | None = None
    host: str = "127.0.0.1"
    fix_port: int = 9878
    http_port: int = 8000
    broker_port: int | None = 8080  # None runs the exchange alone
    db_url: str | None = None  # the broker's database; default SQLite in the data directory
    admin_password: str | None = None  # for the first admin user; generated when None
    # requests per minute per API key (and per logged-in user)
    api_rate_limit: int = DEFAULT_KEY_RATE_LIMIT_PER_MINUTE
    udp_feed: tuple[str, int] | None = DEFAULT_FEED_ADDRESS
    retransmission_port: int = 0
    tick_interval: float | None = 1.0
    # Commands between engine snapshots and projection checkpoints: a restart after a crash
    # replays at most this many (about 3 s at 50,000; `tradingfloor bench restart`). A
    # snapshot is a fork and the checkpoints a few tens of ms on the loop at large books.
    snapshot_every: int = SERVE_SNAPSHOT_EVERY
    truncate_journal_at: str | None = None  # SEGMENT:OFFSET of a reported corruption: cut there
    retention: RetentionPolicy | None = DEFAULT_RETENTION  # journal archiving; None: never
    access_log: Path | None = None  # the HTTP access log; default <data_dir>/access.log
    new_epoch_by: str | None = None  # the operator starting a new epoch (`serve --new-epoch`)
    full_replay: bool = False  # rebuild every projection from the journal's first record
    announce: Callable[[str], None] = field(default=print)


class NoNewEpochNeededError(IdentityError):
    """``--new-epoch`` was asked for, but every consumer fits the journal: nothing to do (a
    new epoch would cancel the broker's orders that are live at the venue)."""


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the venue owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class VenueServer:
    """Everything `serve` runs, started and stopped as one."""

    def __init__(
        self,
        options: ServeOptions,
        config: VenueConfig | None = None,
        *,
        on_open: Callable[[VenueServer], None] | None = None,
    ) -> None:
        """``on_open`` is called once ``venue`` is open, before its journal is replayed: the
        place to attach more listeners (the demo's simulated participants)."""
        self.options = options
        self._on_open = on_open
        self.config = config if config is not None else load_config(options.config_path)
        self.venue: Venue | None = None
        self.feed = MarketDataFeed()
        # one app serves the exchange's HTTP port and is mounted at /md on the broker's
        self.marketdata_app = create_app(self.feed)
        self.status = VenueStatus(m.member for m in self.config.members)
        self.operator: VenueOperator | None = None
        self.binary = BinaryFeed()
        self.gateway: FixGateway | None = None
        self.acceptor: FixAcceptor | None = None
        self._http: _Server | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._broker_http: _Server | None = None
        self._broker_http_task: asyncio.Task[None] | None = None
        self.broker: BrokerRuntime | None = None
        self.fix_port = 0
        self.http_port = 0
        self.broker_port = 0
        self._close_access_log: Callable[[], None] | None = None

    def _report_dropped(self, venue: Venue) -> None:
        """Say (output and log) every byte range recovery removed from the journal."""
        report = venue.recovery
        if report is None:
            return
        for dropped in report.dropped:
            line = f"Journal: {dropped.describe()}"
            self.options.announce(line)
            _log.warning("%s", line)
        for path in report.set_aside:
            line = f"Snapshot past the journal's end set aside: {path}"
            self.options.announce(line)
            _log.warning("%s", line)
        for damaged in report.damaged_snapshots:
            line = f"Snapshot skipped: {damaged}"
            self.options.announce(line)
            _log.warning("%s", line)

    def _on_events(self, command: Command, events: Sequence[Event]) -> None:
        self.feed.on_events(events)

    async def start(self) -> None:
        opts = self.options
        data = opts.data_dir
        venue = Venue.open(
            data,
            snapshot_every=opts.snapshot_every,
            truncate_journal_at=opts.truncate_journal_at,
            set_aside_snapshots_ahead=opts.new_epoch_by is not None,
            retention=opts.retention,
        )
        self.venue = venue
        self._report_dropped(venue)
        gateway = FixGateway(self.config, venue, self.feed.book, mark_dir=data / "fix")
        self.gateway = gateway
        # The acceptor exists (not listening yet) before the replay, so that reports the last
        # run journaled but did not store can still go to the members' session stores.
        acceptor = FixAcceptor(self.config, data / "fix" / "sessions", gateway)
        gateway.attach(acceptor)
        self.acceptor = acceptor
        # Every listener's projection is checkpointed (exchange.checkpoint), so a start
        # replays only the journal after the newest checkpoint.
        venue.add_listener(self._on_events, state=self.feed)  # book first: FIX reads it
        # reports past the gateway's mark are sent; the reporter's state is checkpointed
        venue.add_listener(gateway.on_events, state=gateway)
        venue.add_listener(self.binary.on_events, state=self.binary)
        venue.add_listener(self.status.on_events, state=self.status)
        self.operator = VenueOperator(venue, self.status)
        if opts.broker_port is not None:
            # before the replay, so that the broker applies what its database missed
            self.status.add_member(BROKER_MEMBER)
            self.broker = await BrokerRuntime.open(
                venue,
                db_url=opts.db_url or default_url(data),
                secret=load_or_create_secret(data / "broker" / "jwt.key"),
                venue_name=self.config.name,
                quotes=book_quotes(self.feed.book),
                api_rate_limit=opts.api_rate_limit,
                operator=self.operator,
                marketdata=self.marketdata_app,
            )
            # The broker's database is a durable store the venue's members rely on: a failed
            # commit stops matching before the next batch, as a failed journal write does.
            self.broker.store.on_failure = venue.fail
        new_epoch = await self._check_identity()
        if self._on_open is not None:
            self._on_open(self)
        replayed = venue.replay_history(
            horizon_event_seq=self._consumer_horizon(), full=opts.full_replay
        )
        self._report_replay(venue)
        if self.broker is not None:
            self.broker.after_replay()
        missing = venue.missing_instruments(self.config.instruments)
        await venue.start(tick_interval=opts.tick_interval)
        for instrument in missing:
            await venue.submit(instrument)
        if new_epoch:
            # the venue's copies of orders its consumers were told about are void too
            members = [m.member for m in self.config.members]
            if self.broker is not None:
                members.append(BROKER_MEMBER)
            for member in members:
                await venue.submit(MassCancel(member=member))
        opts.announce(
            f"Venue {self.config.name}: {replayed} journaled commands replayed, "
            f"{len(self.config.instruments)} instruments, data in {data}"
        )
        self.fix_port = await acceptor.start(opts.host, opts.fix_port)
        opts.announce(f"FIX listening on {opts.host}:{self.fix_port}")
        access_log = opts.access_log or data / "access.log"
        self._close_access_log = open_access_log(access_log)
        opts.announce(f"HTTP access log: {access_log}")
        self._http, self._http_task, self.http_port = await _start_http(
            RequestContext(self.marketdata_app), opts.host, opts.http_port, "http"
        )
        opts.announce(f"HTTP listening on {opts.host}:{self.http_port}")
        if self.broker is not None:
            await self.broker.start()
            password = await self.broker.ensure_admin(opts.admin_password)
            self._broker_http, self._broker_http_task, self.broker_port = await _start_http(
                self.broker.asgi, opts.host, opts.broker_port or 0, "broker-http"
            )
            opts.announce(f"Broker API listening on {opts.host}:{self.broker_port}")
            opts.announce(f"Web terminal: http://{opts.host}:{self.broker_port}/")
            if password is not None:
                opts.announce(f"Created the broker's admin user: admin / {password}")
        if opts.udp_feed is not None:
            await self.binary.open(
                opts.udp_feed,
                start_ns=time.time_ns(),
                retransmission_bind=(opts.host, opts.retransmission_port),
            )
            assert self.binary.server is not None
            host, port = self.binary.server.address[:2]
            opts.announce(
                f"UDP feed to {opts.udp_feed[0]}:{opts.udp_feed[1]}, "
                f"retransmission on {host}:{port}"
            )

    def _consumer_horizon(self) -> int:
        """The lowest event seq a durable consumer has: a checkpoint past it would skip events
        whose effects (FIX reports, broker fills) that consumer has not stored."""
        assert self.gateway is not None
        marks = [self.gateway.venue_mark().seq]
        if self.broker is not None:
            marks.append(self.broker.broker.venue_mark().seq)
        return min(marks)

    def _report_replay(self, venue: Venue) -> None:
        """Say where the replay started and why newer checkpoints were passed over."""
        checkpoints = venue.checkpoints
        if checkpoints is not None:
            for note in checkpoints.notes:
                line = f"Checkpoint not used: {note}"
                self.options.announce(line)
                _log.warning("%s", line)
        if venue.replay_start_seq:
            self.options.announce(
                f"Projections restored from the checkpoint at seq {venue.replay_start_seq}"
            )

    async def _check_identity(self) -> bool:
        """Check every consumer's mark against the journal's identity; adopt it, or start the
        new epoch the operator asked for. Returns whether a new epoch started."""
        venue, gateway, acceptor = self.venue, self.gateway, self.acceptor
        assert venue is not None and gateway is not None and acceptor is not None
        marks = [gateway.venue_mark(), *acceptor.store_marks()]
        if self.broker is not None:
            marks.append(self.broker.broker.venue_mark())
        bad = check_marks(venue.identity, venue.last_event_seq, marks)
        actor = self.options.new_epoch_by
        if actor is None:
            if bad:
                raise mismatch(venue.identity, venue.last_event_seq, bad)
            identity = venue.identity
            gateway.adopt_identity(identity)
            acceptor.adopt_identity(identity)
            if self.broker is not None:
                await self.broker.broker.adopt_identity(identity)
            return False
        if not bad:
            raise NoNewEpochNeededError(
                "--new-epoch refused: every consumer's mark fits the journal (venue "
                f"{format_venue_id(venue.identity.venue_id)} epoch {venue.identity.epoch}, "
                f"last event seq {venue.last_event_seq}); a new epoch would cancel live orders"
            )
        old = venue.identity.epoch
        identity = venue.start_new_epoch(actor=actor, overridden=bad)
        gateway.begin_epoch(identity)
        acceptor.begin_epoch(identity)
        cancelled = 0
        if self.broker is not None:
            cancelled = await self.broker.broker.begin_epoch(identity)
        self.options.announce(
            f"New epoch {identity.epoch} (was {old}) started by {actor} after journal seq "
            f"{venue.last_seq}: {cancelled} open broker orders cancelled, FIX sessions reset "
            "at their next logon"
        )
        return True

    async def stop(self) -> None:
        """Finish and journal queued commands (their reports reach the session stores), then
        log the members out. A venue shutdown is no member disconnect: resting orders stay.

        Every step runs even when an earlier one fails (a full disk fails several); the first
        error is raised at the end, the others are logged."""
        if self.gateway is not None:
            self.gateway.closing = True  # no cancel-on-disconnect for logouts we cause
        errors: list[BaseException] = []

        async def step(name: str, action: Callable[[], Awaitable[None]]) -> None:
            try:
                await action()
            except Exception as exc:
                _log.error("stopping %s failed: %r", name, exc)
                errors.append(exc)

        if self._broker_http is not None and self._broker_http_task is not None:
            self._broker_http.should_exit = True  # no new orders from the broker's customers
            await asyncio.gather(self._broker_http_task, return_exceptions=True)
        if self.venue is not None:
            await step("the venue", self.venue.stop)
        if self.broker is not None:
            # after the venue: the last events reach its database
            await step("the broker", self.broker.stop)
        if self.acceptor is not None:
            await step("the FIX acceptor", self.acceptor.stop)
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            await asyncio.gather(self._http_task, return_exceptions=True)
        await step("the binary feed", self.binary.close)
        if self._close_access_log is not None:
            self._close_access_log()
            self._close_access_log = None
        if errors:
            raise errors[0]


def _listen(host: str, port: int) -> socket.socket:
    """A bound TCP socket; an address in use (or any bind error) is an ``OSError`` that names
    the address, raised here rather than inside uvicorn (which would exit the process)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


async def _start_http(
    app: object, host: str, port: int, name: str
) -> tuple[_Server, asyncio.Task[None], int]:
    sock = _listen(host, port)
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        lifespan="off",
        log_level="warning",
        access_log=False,  # api/context.py's RequestContext writes the access log instead
        proxy_headers=False,  # served directly, not behind a proxy
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=name)
    while not server.started:
        if task.done():
            task.result()  # raises the start-up error
            raise RuntimeError(f"the {name} server stopped during start-up")
        await asyncio.sleep(0.01)
    return server, task, int(server.servers[0].sockets[0].getsockname()[1])


def _tune_gc() -> None:
    """After start-up: move what start-up made out of the collector's way (``gc.freeze``) and
    collect the young generation less often; measured, this halves the REST benchmark's p99."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 50, 100)


class VenueFailedError(RuntimeError):
    """The venue stopped on its own (a durable store failed: the journal, a snapshot, a FIX
    session store, the broker's database), or stopping could not store everything: restart to
    recover. ``cause`` is the store's own error (e.g. ``OSError`` ENOSPC)."""

    def __init__(self, message: str, cause: BaseException) -> None:
        super().__init__(message)
        self.cause = cause


Hook = Callable[[VenueServer], Awaitable[None]]


async def serve_until_stopped(
    server: VenueServer, *, started: Hook | None = None, stopping: Hook | None = None
) -> None:
    """Start ``server``, call ``started``, run until SIGINT/SIGTERM or a failure, call
    ``stopping``, stop. Raises ``VenueFailedError`` when a durable store failed while running
    or while stopping (fail-stop: a restart recovers); an error while stopping never hides the
    failure that caused the stop."""
    options = server.options
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    failure: BaseException | None = None
    try:
        await server.start()
        if started is not None:
            await started(server)
        _tune_gc()
        assert server.venue is not None
        options.announce("Ready. Stop with Ctrl-C.")
        stopped = asyncio.create_task(stop.wait())
        failed = asyncio.create_task(server.venue.wait_failed())
        watched = [stopped, failed]
        if server.broker is not None:
            watched.append(asyncio.create_task(server.broker.store.wait_failed()))
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        for task in watched:
            task.cancel()
        failure = server.venue.failure or (
            server.broker.store.failure if server.broker is not None else None
        )
        # Fail-stop: a venue that cannot store must not look alive; a restart recovers.
        if failure is None:
            options.announce("Stopping ...")
        else:
            options.announce(f"Venue failed: {failure!r}")
            _log.critical("the venue failed: %r", failure)
    except BaseException:
        await _stop_quietly(server, stopping)  # the start-up (or cancellation) error wins
        raise
    stop_error = await _stop_quietly(server, stopping)
    if failure is not None:
        raise VenueFailedError(f"the venue failed ({failure!r}); restart to recover", failure)
    if stop_error is not None:
        raise VenueFailedError(
            f"stopping failed ({stop_error!r}); restart to recover", stop_error
        ) from stop_error
    options.announce("Stopped.")


async def _stop_quietly(server: VenueServer, stopping: Hook | None) -> BaseException | None:
    """Run ``stopping`` and ``server.stop()``; return (and log) the first error instead of
    raising it."""
    first: BaseException | None = None
    for action in (stopping, VenueServer.stop):
        if action is None:
            continue
        try:
            await action(server)
        except Exception as exc:
            _log.exception("stopping the server failed")
            first = first or exc
    return first


def run(options: ServeOptions) -> None:
    """Run until SIGINT/SIGTERM (uvloop when available)."""
    run_loop(serve_until_stopped(VenueServer(options)))


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop (when available), with warnings logged to stderr."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a pinned dependency on Linux
        asyncio.run(main)
    else:
        uvloop.run(main)
