"""The exchange as a running asyncio service: commands in, journaled, matched, events fanned out.

One ``Venue`` owns one ``JournaledEngine``. Gateways call ``submit_nowait`` (or ``submit``)
from the event-loop thread; a single batcher task takes every command queued so far (up to
``MAX_BATCH``), runs the batch (sequencing, journal append, matching, one fsync) and, once it
is durable, hands each command's events to every listener, in sequence order, then resolves
the callers' futures. While a batch runs, new input waits in the sockets and is read as the
next batch, which is what makes group commit work under load.

The batch runs on the loop thread by default: the fsync blocks the loop for its duration
(about 0.2 ms on an SSD), which costs less than handing the batch to a worker thread, where
it would wait for the GIL (up to the interpreter's 5 ms switch interval) whenever the loop is
busy. ``threaded=True`` uses a worker thread instead (for slow disks).

Every durable store the venue's acknowledgements depend on (the journal, snapshots, the FIX
session stores, the broker's database writer) is fail-stop: when one fails, ``fail(cause)`` --
called by the store's owner, or by the venue itself when a listener raises ``OSError`` -- stops
acceptance before the next batch is matched, fails every queued command, and ``wait_failed``
returns the real cause. A restart recovers from the journal (which holds every matched command).

Only the batcher touches the engine while the venue runs; everything else reads projections
built by listeners from events (market-data books, execution-report state). At start the
projections are rebuilt by replaying the journal through a shadow engine, and that engine's
state hash must equal the recovered one. The replay starts from the newest usable projection
checkpoint (``exchange.checkpoint``: the projections' states, taken right after each engine
snapshot) when every listener is checkpointed or only needs the events past its durable
mark (``add_listener``), and from the journal's first record otherwise.

The venue also holds the journal's identity (venue id and epoch, ``exchange.identity``),
created with a new journal; durable consumers record it with their marks, and ``serve``
checks them against it before the replay (a lost or foreign journal is refused).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tradingfloor.exchange.checkpoint import Checkpointed, ProjectionCheckpoints
from tradingfloor.exchange.engine import Engine
from tradingfloor.exchange.engine.commands import AddInstrument, Command, Tick
from tradingfloor.exchange.engine.events import Event
from tradingfloor.exchange.identity import (
    ConsumerMark,
    VenueIdentity,
    load_or_create_identity,
    start_new_epoch,
)
from tradingfloor.exchange.intake import command_problem
from tradingfloor.exchange.journal import JournalReader
from tradingfloor.exchange.recovery import RecoveryReport
from tradingfloor.exchange.retention import DEFAULT_RETENTION, RetentionPolicy
from tradingfloor.exchange.sequencer import Clock, JournaledEngine

__all__ = [
    "MAX_BATCH",
    "MAX_QUEUED_COMMANDS",
    "CommandOutOfRangeError",
    "Listener",
    "Venue",
    "VenueBusyError",
    "VenueClosedError",
    "VenueError",
    "VenueStats",
]

_log = logging.getLogger(__name__)

MAX_BATCH: Final = 256  # commands per journal commit (one fsync)
MAX_QUEUED_COMMANDS: Final = 100_000  # beyond this, submit_nowait raises VenueBusyError
TICK_INTERVAL_S: Final = 1.0  # timers (schedules, GTD expiry, pause ends) fire at this grain

Listener = Callable[[Command, Sequence[Event]], None]
"""Called once per acknowledged command, in sequence order, on the event-loop thread."""


class VenueError(RuntimeError):
    """The venue cannot go on (a failed journal write, diverging replay); restart and recover."""


class VenueBusyError(VenueError):
    """Too many commands are waiting; the gateway rejects the request with 'venue busy'."""


class CommandOutOfRangeError(ValueError):
    """A command has a value no journal can store (``exchange.intake``); it is refused unsequenced.

    The gateway answers it with its own rejection; the venue goes on.
    """


class VenueClosedError(VenueError):
    """The venue is not running (not started yet, stopping, or stopped after a failure)."""


@dataclass(slots=True)
class VenueStats:
    commands: int = 0
    batches: int = 0
    events: int = 0
    listener_errors: int = 0
    checkpoints: int = 0  # projection checkpoints taken (handed to the writer)


_Pending = tuple[Command, "asyncio.Future[list[Event]]"]


class Venue:
    """See module docstring."""

    def __init__(
        self,
        pipeline: JournaledEngine[Engine],
        journal_dir: Path,
        identity: VenueIdentity,
        *,
        threaded: bool = False,
        clock: Clock = time.time_ns,
        checkpoints: ProjectionCheckpoints | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._checkpoints = checkpoints
        self._needs_history: list[str] = []  # listeners that need every event (full replay)
        self._checkpointed_seq = pipeline.last_snapshot_seq
        self.replay_start_seq = 0
        """Command seq the last ``replay_history`` started after (0: the whole journal)."""
        self._identity = identity
        self._clock = clock
        self._threaded = threaded
        self._journal_dir = journal_dir
        self._listeners: list[Listener] = []
        self._queue: list[_Pending] = []
        self._wakeup: asyncio.Event | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._batcher: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._running = False
        self._failure: BaseException | None = None
        self._failed = asyncio.Event()
        self._replayed = False
        self.stats = VenueStats()
        self.recovery: RecoveryReport | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        data_dir: str | Path,
        *,
        clock: Clock = time.time_ns,
        snapshot_every: int = 100_000,
        threaded: bool = False,
        truncate_journal_at: str | None = None,
        set_aside_snapshots_ahead: bool = False,
        retention: RetentionPolicy | None = DEFAULT_RETENTION,
    ) -> Venue:
        """Recover the engine from ``data_dir`` (journal/ and snapshots/) and open for appends.

        ``truncate_journal_at`` (``SEGMENT:OFFSET`` of a reported corruption) is the operator's
        explicit choice to cut the journal there; ``recovery.dropped`` lists what was removed.
        ``retention`` archives closed journal segments after snapshots (None: never).
        ``set_aside_snapshots_ahead`` (a new epoch accepting a lost journal tail) moves
        snapshots past the journal's end aside instead of refusing (``SnapshotAheadError``).
        """
        root = Path(data_dir)
        journal_dir, snapshot_dir = root / "journal", root / "snapshots"
        journal_dir.mkdir(parents=True, exist_ok=True)
        snapshot_dir.mkdir(parents=True, exist_ok=True)
        pipeline, report = JournaledEngine.open(
            journal_dir,
            snapshot_dir,
            clock=clock,
            snapshot_every=snapshot_every,
            truncate_at=truncate_journal_at,
            set_aside_ahead=set_aside_snapshots_ahead,
            retention=retention,
        )
        try:
            identity = load_or_create_identity(
                journal_dir, last_seq=report.last_seq, now_ns=clock()
            )
        except BaseException:
            pipeline.close()
            raise
        checkpoints = ProjectionCheckpoints(root / "checkpoints", snapshot_dir)
        venue = cls(
            pipeline,
            journal_dir,
            identity,
            threaded=threaded,
            clock=clock,
            checkpoints=checkpoints,
        )
        venue.recovery = report
        return venue

    # --- identity ------------------------------------------------------------------------------

    @property
    def identity(self) -> VenueIdentity:
        """The journal's venue id and epoch (see ``exchange.identity``)."""
        return self._identity

    def start_new_epoch(
        self, *, actor: str, overridden: Sequence[ConsumerMark] = ()
    ) -> VenueIdentity:
        """Record a new epoch starting after the journal's last command and event (before
        ``start``); the consumers must then reconcile and adopt it."""
        if self._running:
            raise VenueError("start a new epoch before start()")
        self._identity = start_new_epoch(
            self._journal_dir,
            self._identity,
            last_event_seq=self.last_event_seq,
            last_command_seq=self.last_seq,
            now_ns=self._clock(),
            actor=actor,
            overridden=overridden,
        )
        return self._identity

    def add_listener(
        self,
        listener: Listener,
        *,
        state: Checkpointed | None = None,
        after_mark: bool = False,
    ) -> None:
        """Register before ``replay_history``/``start`` so the listener sees every event.

        ``state`` is the projection the listener feeds, saved in every projection checkpoint
        and restored from one at start-up. ``after_mark`` says the listener keeps nothing from
        events at or below the ``horizon_event_seq`` given to ``replay_history`` (a durable
        consumer that skips what its mark covers). A listener with neither needs the whole
        journal: while one is registered, ``replay_history`` replays from the first record.
        """
        if state is not None:
            if self._checkpoints is None:
                raise VenueError("this venue keeps no projection checkpoints")
            self._checkpoints.register(state)
        elif not after_mark:
            self._needs_history.append(getattr(listener, "__qualname__", repr(listener)))
        self._listeners.append(listener)

    @property
    def checkpoints(self) -> ProjectionCheckpoints | None:
        return self._checkpoints

    def replay_history(self, *, horizon_event_seq: int | None = None, full: bool = False) -> int:
        """Feed the journaled commands' events to the listeners; return how many commands.

        Starts from the newest usable projection checkpoint (see ``add_listener``; one at or
        below ``horizon_event_seq``, the lowest durable consumer mark, when given), restoring
        the projections and a shadow engine from it, or from the journal's first record with
        a fresh engine when there is none, when a listener needs the whole history, or when
        ``full``. Checks that the shadow engine ends in the recovered engine's state.
        """
        if self._replayed:
            raise VenueError("history was replayed already")
        if self._running:
            raise VenueError("replay history before start()")
        shadow = Engine()
        after = 0
        if self._checkpoints is not None and not full and not self._needs_history:
            restored = self._checkpoints.restore(Engine, horizon_event_seq=horizon_event_seq)
            if restored is not None:
                if restored.engine.event_seq != restored.event_seq:
                    raise VenueError(
                        f"{restored.path}: checkpoint says event seq {restored.event_seq}, "
                        f"its engine snapshot {restored.engine.event_seq}"
                    )
                shadow, after = restored.engine, restored.seq
        elif self._needs_history and self._checkpoints is not None:
            self._checkpoints.notes.append(
                "listeners without checkpoints need the whole journal: "
                + ", ".join(self._needs_history)
            )
        self.replay_start_seq = after
        n = 0
        for record in JournalReader(self._journal_dir, after_seq=after):
            events = shadow.apply(record.seq, record.ts, record.command)
            self._notify(record.command, events)
            n += 1
        if shadow.state_hash() != self._pipeline.engine.state_hash():
            raise VenueError(
                f"replaying the journal gives state {shadow.state_hash()[:12]} but recovery "
                f"gave {self._pipeline.engine.state_hash()[:12]}"
            )
        self._replayed = True
        return n

    def missing_instruments(self, instruments: Iterable[AddInstrument]) -> list[AddInstrument]:
        """Configured instruments the engine does not list yet (call before ``start``)."""
        if self._running:
            raise VenueError("ask for missing instruments before start()")
        listed = self._pipeline.engine.instruments
        return [i for i in instruments if i.symbol not in listed]

    async def start(self, *, tick_interval: float | None = TICK_INTERVAL_S) -> None:
        """Start the batcher (and the timer tick when ``tick_interval`` is not None)."""
        if self._running:
            return
        if self._failure is not None or self._pipeline.failed:
            raise VenueClosedError("the venue failed; restart and recover")
        self._wakeup = asyncio.Event()
        if self._threaded:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="venue-journal")
        self._running = True
        self._batcher = asyncio.create_task(self._run_batches(), name="venue-batcher")
        if tick_interval is not None:
            self._ticker = asyncio.create_task(self._run_ticks(tick_interval), name="venue-tick")

    async def stop(self) -> None:
        """Stop taking commands, finish the queued ones, close the journal."""
        if not self._running and self._batcher is None:
            self._pipeline.close()
            return
        self._running = False
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        if self._wakeup is not None:
            self._wakeup.set()
        if self._batcher is not None:
            await asyncio.gather(self._batcher, return_exceptions=True)
            self._batcher = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._fail_queued(VenueClosedError("the venue stopped"))
        self._snapshot_at_stop()
        try:
            self._pipeline.close()
        finally:
            if self._checkpoints is not None:
                self._checkpoints.close()

    # --- submitting ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    @property
    def failure(self) -> BaseException | None:
        """Why the venue stopped taking commands on its own (a failed journal batch), if it did."""
        return self._failure

    def fail(self, cause: BaseException) -> None:
        """A durable store failed: stop matching before the next batch (fail-stop).

        Queued commands fail with a ``VenueError`` naming ``cause``; ``failure`` and
        ``wait_failed`` give ``cause`` itself. The first cause wins; later calls only log.
        """
        if self._failure is not None:
            if cause is not self._failure:
                _log.error("another durable store failed after the venue stopped: %r", cause)
            return
        self._failure = cause
        self._running = False
        self._failed.set()
        _log.critical("a durable store failed; the venue stops accepting commands: %r", cause)
        self._fail_queued(VenueError(f"the venue stopped: {cause!r}"))
        if self._wakeup is not None:
            self._wakeup.set()

    async def wait_failed(self) -> BaseException:
        """Wait until a journal batch fails; return the error (the service should stop)."""
        await self._failed.wait()
        assert self._failure is not None
        return self._failure

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def last_seq(self) -> int:
        """seq of the last acknowledged (durable) command."""
        return self._pipeline.last_seq

    @property
    def last_event_seq(self) -> int:
        """seq of the last event of the last acknowledged command (what consumers mark)."""
        return self._pipeline.engine.event_seq

    def submit_nowait(self, command: Command) -> asyncio.Future[list[Event]]:
        """Queue a command; the future gets its events once they are durable.

        Commands are sequenced in the order of these calls. Raises ``VenueClosedError`` when
        the venue is not running, ``VenueBusyError`` when ``MAX_QUEUED_COMMANDS`` wait and
        ``CommandOutOfRangeError`` for a command outside the journal's limits (nothing queued).
        """
        if not self._running or self._wakeup is None:
            raise VenueClosedError("the venue is not running")
        if len(self._queue) >= MAX_QUEUED_COMMANDS:
            raise VenueBusyError(f"{len(self._queue)} commands are waiting")
        problem = command_problem(command)
        if problem is not None:
            raise CommandOutOfRangeError(problem)
        future: asyncio.Future[list[Event]] = asyncio.get_running_loop().create_future()
        self._queue.append((command, future))
        self._wakeup.set()
        return future

    async def submit(self, command: Command) -> list[Event]:
        """Queue a command and wait until it is durable; return its events."""
        return await self.submit_nowait(command)

    # --- internals ----------------------------------------------------------------------------

    def _notify(self, command: Command, events: Sequence[Event]) -> None:
        for listener in self._listeners:
            try:
                listener(command, events)
            except OSError as exc:
                # A projection that cannot write its durable store (a full disk): fail-stop.
                self.stats.listener_errors += 1
                _log.exception("venue listener %r could not store its output", listener)
                self.fail(exc)
            except Exception:
                # A projection that fails must not stop the venue or the other listeners.
                self.stats.listener_errors += 1
                _log.exception("venue listener %r failed on %s", listener, type(command).__name__)

    def _checkpoint_after_snapshot(self) -> None:
        """After a batch whose end the engine snapshotted, every listener has seen exactly its
        events: checkpoint the projections at that seq (written off the loop thread)."""
        checkpoints = self._checkpoints
        seq = self._pipeline.last_snapshot_seq
        if checkpoints is None or seq == self._checkpointed_seq or seq != self.last_seq:
            return
        self._checkpointed_seq = seq
        if self._needs_history:
            return  # a restart replays everything anyway
        try:
            taken = checkpoints.take(seq, self._pipeline.journal.last_ts, self.last_event_seq)
        except Exception:
            # A projection that cannot save its state must not stop the venue: the next
            # start replays from an older checkpoint (or the first record) instead.
            checkpoints.failures += 1
            _log.exception("the projection checkpoint at seq %d failed", seq)
            return
        if taken:
            self.stats.checkpoints += 1

    def _snapshot_at_stop(self) -> None:
        """A clean stop snapshots the engine and checkpoints the projections, so that the next
        start replays nothing. Skipped after a failure (recovery must read the journal); a
        snapshot that cannot be taken is logged: the journal has everything."""
        pipeline = self._pipeline
        if self._failure is not None or pipeline.failed or self._checkpoints is None:
            return
        if pipeline.last_seq == 0 or pipeline.last_seq == pipeline.last_snapshot_seq:
            return
        try:
            pipeline.take_snapshot()
        except Exception:
            _log.exception("the snapshot at stop failed; the next start replays the journal")
            return
        self._checkpoint_after_snapshot()

    def _fail_queued(self, exc: BaseException) -> None:
        queued, self._queue = self._queue, []
        for _command, future in queued:
            if not future.done():
                future.set_exception(exc)

    async def _run_batches(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            if self._failure is not None:
                return  # fail() has failed the queued commands
            if not self._queue:
                if not self._running:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            commands = [command for command, _future in batch]
            try:
                if self._executor is not None:
                    results = await loop.run_in_executor(
                        self._executor, self._pipeline.submit_each, commands
                    )
                else:
                    results = self._pipeline.submit_each(commands)
            except BaseException as exc:
                _log.critical("journal batch failed; the venue stops: %r", exc)
                error = VenueError(f"journal batch failed: {exc!r}")
                for _command, future in batch:
                    if not future.done():
                        future.set_exception(error)
                self.fail(exc)
                return
            self.stats.batches += 1
            self.stats.commands += len(batch)
            for (command, future), events in zip(batch, results, strict=True):
                self.stats.events += len(events)
                self._notify(command, events)
                if not future.done():
                    future.set_result(events)
            self._checkpoint_after_snapshot()
            # Let the sockets be read (their input is the next batch) and the stores write and
            # sync what this batch produced: a store that fails there stops the next match.
            await asyncio.sleep(0)

    async def _run_ticks(self, interval: float) -> None:
        while self._running:
            await asyncio.sleep(interval)
            if self._running and not self._queue:
                # Fire-and-forget: a Tick only advances timers; its events reach listeners.
                self.submit_nowait(Tick()).add_done_callback(_ignore_result)


def _ignore_result(future: asyncio.Future[list[Event]]) -> None:
    if not future.cancelled():
        future.exception()  # mark retrieved; failures are logged by the batcher
