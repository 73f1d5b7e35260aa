"""Offline replay of a JSON-lines command file through the matching engine, optionally journaled.

Each line is decoded and sequenced (``jsonl.CommandDecoder``), applied to the engine, and every
resulting event is encoded as one JSON line (``jsonl.EventEncoder``). The same file always gives
the same bytes out and the same final state hash. Invalid lines stop the replay with an
``InputError`` unless ``skip_invalid`` is set, in which case each becomes an ``input_error``
record in the output and takes no sequence number.

``JournaledReplay`` sends the same commands through a ``JournaledEngine`` instead (journal,
group commit of ``batch`` commands, snapshots), stamping each with the file's ``ts``; into an
empty journal directory it writes exactly the bytes ``Replay`` writes. ``recover_directory``
rebuilds the engine from such a directory and encodes the events of the journal tail it replays.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from tradingfloor.core.units import parse_decimal
from tradingfloor.exchange.engine.commands import AddInstrument, Command
from tradingfloor.exchange.engine.engine import Engine
from tradingfloor.exchange.engine.events import Event, Rejected, Trade
from tradingfloor.exchange.jsonl import (
    CommandDecoder,
    EventEncoder,
    InputError,
    SequencedCommand,
    encode_input_error,
    read_lines,
)
from tradingfloor.exchange.recovery import RecoveryReport, recover
from tradingfloor.exchange.sequencer import (
    DEFAULT_SNAPSHOT_EVERY,
    MAX_BATCH_COMMANDS,
    JournaledEngine,
)
from tradingfloor.exchange.snapshot import SnapshotStore

__all__ = [
    "DEFAULT_BATCH",
    "JOURNAL_SUBDIR",
    "SNAPSHOT_SUBDIR",
    "JournaledReplay",
    "Replay",
    "ReplayClock",
    "ReplayStats",
    "holds_journal",
    "recover_directory",
]

DEFAULT_BATCH = 64
"""Commands per group commit (one fsync) of a journaled replay by default."""
JOURNAL_SUBDIR = "journal"
"""Subdirectory of a replay's journal directory that holds the journal segments."""
SNAPSHOT_SUBDIR = "snapshots"
"""Subdirectory of a replay's journal directory that holds the snapshots."""


@dataclass
class ReplayStats:
    """What a replay did: sequenced commands, events out, trades and rejects among them."""

    commands: int = 0
    events: int = 0
    trades: int = 0
    traded_qty: int = 0
    rejects: int = 0
    input_errors: int = 0


def _prime(engine: Engine, *codecs: CommandDecoder | EventEncoder) -> None:
    """Make the codecs know the tick sizes of the instruments the engine already lists."""
    for symbol, instrument in engine.instruments.items():
        tick = parse_decimal(instrument.tick_size)
        for codec in codecs:
            codec.tick_sizes.setdefault(symbol, tick)


def _encode_events(
    encoder: EventEncoder, stats: ReplayStats, events: Sequence[Event]
) -> list[bytes]:
    stats.events += len(events)
    out: list[bytes] = []
    for event in events:
        if isinstance(event, Trade):
            stats.trades += 1
            stats.traded_qty += event.qty
        elif isinstance(event, Rejected):
            stats.rejects += 1
        out.append(encoder.encode(event))
    return out


class Replay:
    """Feeds command lines to one engine and returns the encoded events of each line.

    An engine passed in may already list instruments: the codec knows their tick sizes.
    """

    batch = 1
    """Commands applied together; 1 here (each line's records are ready after it)."""

    def __init__(
        self,
        engine: Engine | None = None,
        *,
        skip_invalid: bool = False,
        on_input_error: Callable[[InputError], None] | None = None,
    ) -> None:
        self.engine = engine if engine is not None else Engine()
        self.skip_invalid = skip_invalid
        self.on_input_error = on_input_error
        self.decoder = CommandDecoder()
        self.encoder = EventEncoder()
        self.stats = ReplayStats()
        self._pending: list[SequencedCommand] = []
        _prime(self.engine, self.decoder, self.encoder)

    def feed(self, line: int, raw: bytes) -> list[bytes]:
        """Decode one line; return the output records now ready (for ``Replay``, the line's).

        Raises InputError unless skipping invalid lines; commands still pending before the bad
        line stay pending (``flush`` applies them).
        """
        ready: list[bytes] = []
        self._feed(line, raw, ready)
        return ready

    def flush(self) -> list[bytes]:
        """Apply the pending commands and return their records (nothing pending in ``Replay``)."""
        if not self._pending:
            return []
        batch, self._pending = self._pending, []
        records = _encode_events(self.encoder, self.stats, self._execute(batch))
        self.stats.commands += len(batch)
        for sequenced in batch:
            command = sequenced.command
            if isinstance(command, AddInstrument) and command.symbol not in self.encoder.tick_sizes:
                self.decoder.delist(command.symbol)  # the engine refused the listing
        return records

    def run(self, stream: IO[bytes], out: IO[bytes] | None = None) -> ReplayStats:
        """Replay every line of ``stream``, writing the output records to ``out`` if given.

        On an InputError every line before the bad one is applied (journaled) and its records
        are written before the error propagates.
        """
        ready: list[bytes] = []
        try:
            for line, raw in read_lines(stream):
                try:
                    self._feed(line, raw, ready)
                except InputError:
                    ready += self.flush()
                    raise
                if ready:
                    records, ready = ready, []
                    if out is not None:
                        out.writelines(records)
            ready += self.flush()
        finally:
            if out is not None:
                out.writelines(ready)
        return self.stats

    def _feed(self, line: int, raw: bytes, ready: list[bytes]) -> None:
        try:
            sequenced = self.decoder.decode(line, raw)
        except InputError as exc:
            if not self.skip_invalid:
                raise
            ready += self.flush()  # the records of the lines before come first
            self.stats.input_errors += 1
            if self.on_input_error is not None:
                self.on_input_error(exc)
            ready.append(encode_input_error(exc))
            return
        if sequenced is None:
            return
        self._pending.append(sequenced)
        # A listing ends the batch: whether the engine accepted it decides how the next lines
        # decode (see CommandDecoder.delist).
        if len(self._pending) >= self.batch or isinstance(sequenced.command, AddInstrument):
            ready += self.flush()

    def _execute(self, batch: Sequence[SequencedCommand]) -> list[Event]:
        """Apply one batch of sequenced commands; their events in order."""
        events: list[Event] = []
        for seq, ts, command in batch:
            events += self.engine.apply(seq, ts, command)
        return events


# --------------------------------------------------------------------------------- journaled


class ReplayClock:
    """The sequencer's clock in a journaled replay: the ``ts`` of the command being stamped.

    The replay pushes the ts of each command of a batch before submitting it; the sequencer
    reads the clock once per command, in order.
    """

    def __init__(self) -> None:
        self._times: deque[int] = deque()

    def push(self, ts: int) -> None:
        self._times.append(ts)

    def clear(self) -> None:
        self._times.clear()

    def __call__(self) -> int:
        if not self._times:
            raise RuntimeError("the replay clock was read with no command pending")
        return self._times.popleft()


def holds_journal(directory: str | os.PathLike[str]) -> bool:
    """Whether a journal directory already holds journal segments or snapshots."""
    root = Path(directory)
    journal = root / JOURNAL_SUBDIR
    has_segments = journal.is_dir() and any(journal.glob("journal-*.log"))
    return has_segments or bool(SnapshotStore(root / SNAPSHOT_SUBDIR).paths())


class JournaledReplay(Replay):
    """A ``Replay`` whose commands go through a ``JournaledEngine`` in batches.

    Each batch of up to ``batch`` commands is stamped (seq continuing the journal, ts the
    file's ``ts``, never below the journal's last ts), journaled, applied and committed with one
    fsync; a batch's records are ready only once it is durable. A batch also ends at every
    ``add_instrument`` and before every invalid line. Open with ``JournaledReplay.open``.
    """

    def __init__(
        self,
        pipeline: JournaledEngine[Engine],
        clock: ReplayClock,
        *,
        batch: int = DEFAULT_BATCH,
        skip_invalid: bool = False,
        on_input_error: Callable[[InputError], None] | None = None,
    ) -> None:
        if not 1 <= batch <= MAX_BATCH_COMMANDS:
            raise ValueError(f"batch must be between 1 and {MAX_BATCH_COMMANDS}")
        super().__init__(pipeline.engine, skip_invalid=skip_invalid, on_input_error=on_input_error)
        self.pipeline = pipeline
        self.clock = clock
        self.batch = batch
        self.first_seq = pipeline.last_seq + 1
        """seq the journal gives the first command of this replay (the codec's seq 1)."""
        self.commits = 0
        """Batches committed (one fsync each)."""
        self.retimed = 0
        """Commands whose file ts was below the journal's last ts and were stamped with it."""

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        *,
        batch: int = DEFAULT_BATCH,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
        skip_invalid: bool = False,
        on_input_error: Callable[[InputError], None] | None = None,
    ) -> tuple[JournaledReplay, RecoveryReport]:
        """Recover ``directory`` (journal in ``journal/``, snapshots in ``snapshots/``), open it.

        Raises what ``JournaledEngine.open`` raises (``JournalCorruptError``, ...).
        """
        if not 1 <= batch <= MAX_BATCH_COMMANDS:
            raise ValueError(f"batch must be between 1 and {MAX_BATCH_COMMANDS}")
        root = Path(directory)
        clock = ReplayClock()
        pipeline, report = JournaledEngine.open(
            root / JOURNAL_SUBDIR,
            root / SNAPSHOT_SUBDIR,
            clock=clock,
            snapshot_every=snapshot_every,
        )
        replay = cls(
            pipeline, clock, batch=batch, skip_invalid=skip_invalid, on_input_error=on_input_error
        )
        return replay, report

    def close(self) -> None:
        """Close the journal (the pending, uncommitted commands are dropped)."""
        self._pending.clear()
        self.pipeline.close()

    def __enter__(self) -> JournaledReplay:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _execute(self, batch: Sequence[SequencedCommand]) -> list[Event]:
        last_ts = self.pipeline.journal.last_ts
        for sequenced in batch:
            self.clock.push(sequenced.ts)
            if sequenced.ts < last_ts:
                self.retimed += 1
        try:
            events = self.pipeline.submit([sequenced.command for sequenced in batch])
        finally:
            self.clock.clear()
        self.commits += 1
        return events


# --------------------------------------------------------------------------------- recovery


class _Tap:
    """An engine for ``recover`` that also encodes the events of every record it replays."""

    def __init__(self, engine: Engine, kind: _TapType) -> None:
        self.engine = engine
        self._kind = kind

    @property
    def last_seq(self) -> int:
        return self.engine.last_seq

    def apply(self, seq: int, ts: int, cmd: Command) -> list[Event]:
        events = self.engine.apply(seq, ts, cmd)
        self._kind.commands += 1
        records = _encode_events(self._kind.encoder, self._kind.stats, events)
        if self._kind.out is not None:
            self._kind.out.writelines(records)
        return events

    def snapshot(self) -> bytes:
        return self.engine.snapshot()

    def state_hash(self) -> str:
        return self.engine.state_hash()


class _TapType:
    """The machine type ``recover`` builds a ``_Tap`` with, fresh or from a snapshot."""

    def __init__(self, out: IO[bytes] | None) -> None:
        self.out = out
        self.encoder = EventEncoder()
        self.stats = ReplayStats()
        self.commands = 0

    def __call__(self) -> _Tap:
        return _Tap(Engine(), self)

    def restore(self, data: bytes) -> _Tap:
        engine = Engine.restore(data)
        _prime(engine, self.encoder)
        return _Tap(engine, self)


def recover_directory(
    directory: str | os.PathLike[str], out: IO[bytes] | None = None
) -> tuple[Engine, RecoveryReport, ReplayStats]:
    """Recover the engine of a journal directory (as ``JournaledReplay`` lays it out).

    Writes the events of the replayed journal tail to ``out`` as JSON lines if given; the
    stats count the tail's commands and events. Truncates a torn tail, like ``recover``.
    """
    root = Path(directory)
    kind = _TapType(out)
    tap, report = recover(root / JOURNAL_SUBDIR, root / SNAPSHOT_SUBDIR, kind)
    kind.stats.commands = kind.commands
    return tap.engine, report, kind.stats
