"""The ``tradingfloor`` command: the demo market, the exchange and broker server, the headless
market simulation, offline engine replay (optionally journaled), recovery of a journal
directory, the final book, the messages members sent over FIX, benchmarks, the version.

Exit codes: 0 success, 1 internal error (including a failed journal write), 2 invalid usage or
invalid input (the message names the file and line; also a journal directory that is in use or
already holds a journal without ``--append``; also ``serve --new-epoch`` when nothing needs
one), 3 a corrupt journal or one that does not fit its snapshots (the message names the file
and offset; also a damaged venue identity file or FIX mark, or a corrupt FIX session store),
4 ``serve``/``demo`` refused to start because a consumer's mark does not fit the journal (lost,
truncated or foreign journal: restore it, or start a new epoch with ``--new-epoch``;
docs/journal.md). Summaries and diagnostics go to stderr; ``--output -``, ``fix received``,
``engine book`` and the ``engine recover`` report write their results to stdout (the report
goes to stderr when ``--events-out -`` takes stdout). ``engine run`` and ``engine recover`` end
their summaries with a ``state hash: <hex>`` line.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tradingfloor import __version__
from tradingfloor.broker.identity.apikeys import DEFAULT_KEY_RATE_LIMIT_PER_MINUTE
from tradingfloor.core.units import from_ticks
from tradingfloor.exchange.checkpoint import CheckpointRestoreError
from tradingfloor.exchange.engine.engine import Engine
from tradingfloor.exchange.journal import DirectoryLockedError, JournalCorruptError, JournalError
from tradingfloor.exchange.jsonl import InputError
from tradingfloor.exchange.recovery import RecoveryError, RecoveryReport, SnapshotAheadError
from tradingfloor.exchange.replay import (
    DEFAULT_BATCH,
    JOURNAL_SUBDIR,
    SNAPSHOT_SUBDIR,
    JournaledReplay,
    Replay,
    ReplayStats,
    holds_journal,
    recover_directory,
)
from tradingfloor.exchange.sequencer import (
    DEFAULT_SNAPSHOT_EVERY,
    MAX_BATCH_COMMANDS,
    PipelineFailedError,
)
from tradingfloor.exchange.snapshot import SnapshotStore

__all__ = [
    "EXIT_CORRUPT_JOURNAL",
    "EXIT_EPOCH_MISMATCH",
    "EXIT_INPUT_ERROR",
    "EXIT_INTERNAL_ERROR",
    "MAX_BOOK_DEPTH",
    "app",
    "main",
]

EXIT_INTERNAL_ERROR = 1
"""Exit code for an internal error, including a failed journal write."""
EXIT_INPUT_ERROR = 2
"""Exit code for invalid input or usage; the message on stderr names the file and line."""
EXIT_CORRUPT_JOURNAL = 3
"""Exit code for a corrupt journal (or one that does not reach its snapshot): stop, repair."""
EXIT_EPOCH_MISMATCH = 4
"""Exit code of `serve`/`demo` when a consumer's mark does not fit the journal (lost, truncated
or foreign journal); restore the journal, or start a new epoch (`--new-epoch`)."""

MAX_BOOK_DEPTH = 1000
"""Most price levels per side ``engine book`` shows."""

app = typer.Typer(
    name="tradingfloor",
    help="An open-source stock exchange and broker you can run on one laptop.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
engine_app = typer.Typer(
    help="Replay JSON-lines command files through the matching engine (docs/engine-commands.md).",
    no_args_is_help=True,
)
bench_app = typer.Typer(
    help="Benchmarks (results are printed, never asserted).", no_args_is_help=True
)
fix_app = typer.Typer(help="The venue's FIX session stores (docs/fix.md).", no_args_is_help=True)
app.add_typer(engine_app, name="engine")
app.add_typer(bench_app, name="bench")
app.add_typer(fix_app, name="fix")

InputOption = Annotated[
    str,
    typer.Option("--input", "-i", help="Command file, one JSON command per line; - for stdin."),
]
SkipInvalidOption = Annotated[
    bool,
    typer.Option(
        "--skip-invalid",
        help="Skip invalid lines (each becomes an input_error record) instead of stopping.",
    ),
]


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _line_console() -> Console:
    """A console for lines of progress on stdout. Not a terminal (a pipe, a file, a log):
    lines are never wrapped, so paths and URLs stay whole; a terminal wraps them itself."""
    console = Console(highlight=False)
    console.soft_wrap = not console.is_terminal
    return console


def _fail(message: str, code: int = EXIT_INPUT_ERROR) -> NoReturn:
    _stderr().print(Text.assemble(("error: ", "bold red"), message))
    raise typer.Exit(code)


@contextmanager
def _open_input(path: str) -> Iterator[IO[bytes]]:
    if path == "-":
        yield sys.stdin.buffer
        return
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror}")
    with stream:
        yield stream


@contextmanager
def _open_output(path: str) -> Iterator[IO[bytes]]:
    """Stdout for ``-``; otherwise a temporary file renamed over ``path`` only on success."""
    if path == "-":
        sys.stdout.flush()
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror}")
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
        try:
            os.replace(tmp_name, target)
        except OSError as exc:
            _fail(f"cannot write {path}: {exc.strerror}")
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _input_name(path: str) -> str:
    return "<stdin>" if path == "-" else path


def _warn_skipped(name: str) -> Callable[[InputError], None]:
    console = _stderr()

    def warn(exc: InputError) -> None:
        console.print(Text.assemble(("skipped ", "yellow"), f"{name}:{exc.line}: {exc.message}"))

    return warn


def _run_replay(input_path: str, out: IO[bytes] | None, replay: Replay) -> None:
    name = _input_name(input_path)
    with _open_input(input_path) as stream:
        try:
            replay.run(stream, out)
        except InputError as exc:
            hint = "" if replay.skip_invalid else " (--skip-invalid skips bad lines)"
            if isinstance(replay, JournaledReplay):
                kept = replay.pipeline.last_seq - replay.first_seq + 1
                hint += (
                    f"; the journal in {replay.pipeline.journal.directory.parent} keeps the "
                    f"{kept} commands before this line"
                )
            _fail(f"{name}:{exc.line}: {exc.message}{hint}")
        except (JournalError, PipelineFailedError, OSError) as exc:
            if not isinstance(replay, JournaledReplay):
                raise
            directory = replay.pipeline.journal.directory.parent
            _fail(
                f"journaled replay failed: {exc}; the journal keeps every committed batch "
                f"(check it with: tradingfloor engine recover --journal-dir {directory})",
                EXIT_INTERNAL_ERROR,
            )


def _fail_corrupt(exc: JournalCorruptError | RecoveryError, *, serving: bool = False) -> NoReturn:
    """Report a damaged journal loudly on stderr and exit with EXIT_CORRUPT_JOURNAL."""
    console = _stderr()
    console.print(Text("JOURNAL CORRUPT: recovery stopped", style="bold white on red"))
    if isinstance(exc, JournalCorruptError):
        console.print(Text.assemble(("error: ", "bold red"), str(exc)))
        fields = _Fields()
        fields.add_row("file", str(exc.path))
        fields.add_row("offset", str(exc.offset))
        if exc.seq:
            fields.add_row("seq", str(exc.seq))
        fields.add_row("reason", exc.reason)
        fields.print(console)
        console.print(
            "This is not a torn tail (an interrupted, unacknowledged write), so it is not "
            "repaired automatically: nothing was changed. Restore the directory from a copy.",
            markup=False,
        )
        if serving:
            console.print(
                f"Or, accepting the loss of seq {exc.seq} and everything after it, start with "
                f"--truncate-corrupt-journal {exc.location} (a copy of the bytes cut off is kept "
                "in the journal's dropped/ directory; see docs/journal.md).",
                markup=False,
            )
    else:
        console.print(Text.assemble(("error: ", "bold red"), f"{type(exc).__name__}: {exc}"))
    raise typer.Exit(EXIT_CORRUPT_JOURNAL)


def _open_journaled(
    journal_dir: str,
    *,
    append: bool,
    batch: int,
    snapshot_every: int,
    skip_invalid: bool,
    on_input_error: Callable[[InputError], None],
) -> tuple[JournaledReplay, RecoveryReport]:
    if not append and holds_journal(journal_dir):
        _fail(
            f"{journal_dir} already holds a journal: --append continues it, "
            "or choose an empty directory"
        )
    try:
        return JournaledReplay.open(
            journal_dir,
            batch=batch,
            snapshot_every=snapshot_every,
            skip_invalid=skip_invalid,
            on_input_error=on_input_error,
        )
    except (JournalCorruptError, RecoveryError) as exc:
        _fail_corrupt(exc)
    except DirectoryLockedError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot open the journal in {journal_dir}: {exc.strerror or exc}")


class _Fields:
    """``name  value`` lines, names aligned; unlike a rich table, long values are never wrapped."""

    def __init__(self) -> None:
        self._rows: list[tuple[str, str, str]] = []

    def add_row(self, name: str, value: str, style: str = "bold") -> None:
        self._rows.append((name, value, style))

    def print(self, console: Console) -> None:
        width = max((len(name) for name, _value, _style in self._rows), default=0) + 2
        for name, value, style in self._rows:
            console.print(Text.assemble((name.ljust(width), style), value))


def _format_ts(ts: int) -> str:
    """Nanoseconds since the epoch and the UTC time they denote."""
    seconds, nanos = divmod(ts, 1_000_000_000)
    when = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{ts} ({when}.{nanos:09d}Z)"


def _snapshot_text(directory: Path) -> str:
    paths = SnapshotStore(directory).paths()
    return f"{paths[-1][1].name} (seq {paths[-1][0]})" if paths else "none"


def _torn_text(report: RecoveryReport) -> str | None:
    torn = report.torn_tail
    if torn is None:
        return None
    return (
        f"dropped {torn.dropped_bytes} bytes at offset {torn.offset} of {torn.path} ({torn.reason})"
    )


def _print_hash(console: Console, engine: Engine) -> None:
    console.print(f"state hash: {engine.state_hash()}", markup=False, highlight=False)


@engine_app.command("run")
def engine_run(
    input_path: InputOption,
    output: Annotated[
        str, typer.Option("--output", "-o", help="Event file (JSON lines); - for stdout.")
    ],
    skip_invalid: SkipInvalidOption = False,
    journal_dir: Annotated[
        str | None,
        typer.Option(
            "--journal-dir",
            help="Also send every command through the write-ahead journal in this directory "
            "(journal/ and snapshots/ inside it); the events file is the same.",
        ),
    ] = None,
    snapshot_every: Annotated[
        int | None,
        typer.Option(
            min=0,
            help=f"Commands between snapshots, 0 for none (default {DEFAULT_SNAPSHOT_EVERY}; "
            "needs --journal-dir).",
            show_default=False,
        ),
    ] = None,
    batch: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_BATCH_COMMANDS,
            help=f"Commands per group commit, one fsync each (default {DEFAULT_BATCH}; "
            "needs --journal-dir).",
            show_default=False,
        ),
    ] = None,
    append: Annotated[
        bool,
        typer.Option(
            "--append",
            help="Continue the journal already in --journal-dir after its recovered state.",
        ),
    ] = False,
) -> None:
    """Replay a command file offline and write every engine event as one JSON line."""
    if journal_dir is None:
        given = [
            flag
            for flag, value in (
                ("--snapshot-every", snapshot_every),
                ("--batch", batch),
                ("--append", append or None),
            )
            if value is not None
        ]
        if given:
            _fail(f"{', '.join(given)} needs --journal-dir")
    name = _input_name(input_path)
    warn = _warn_skipped(name)
    console = _stderr()
    report: RecoveryReport | None = None
    replay: Replay
    if journal_dir is None:
        replay = Replay(skip_invalid=skip_invalid, on_input_error=warn)
        with _open_output(output) as out:
            _run_replay(input_path, out, replay)
    else:
        replay, report = _open_journaled(
            journal_dir,
            append=append,
            batch=DEFAULT_BATCH if batch is None else batch,
            snapshot_every=DEFAULT_SNAPSHOT_EVERY if snapshot_every is None else snapshot_every,
            skip_invalid=skip_invalid,
            on_input_error=warn,
        )
        torn = _torn_text(report)
        if torn is not None:
            console.print(Text.assemble(("torn journal tail ", "yellow"), torn))
        with replay, _open_output(output) as out:
            _run_replay(input_path, out, replay)
    stats = replay.stats
    fields = _Fields()
    fields.add_row("input", name)
    fields.add_row("output", "<stdout>" if output == "-" else output)
    fields.add_row("commands", str(stats.commands))
    if skip_invalid:
        fields.add_row("skipped lines", str(stats.input_errors))
    fields.add_row("events", str(stats.events))
    fields.add_row("trades", f"{stats.trades} ({stats.traded_qty} shares)")
    fields.add_row("rejects", str(stats.rejects))
    if isinstance(replay, JournaledReplay) and report is not None and journal_dir is not None:
        root = Path(journal_dir)
        last_seq = replay.pipeline.last_seq
        seqs = f"{replay.first_seq}..{last_seq}" if last_seq >= replay.first_seq else "none"
        if report.last_seq:
            seqs += f" (continuing after seq {report.last_seq})"
        fields.add_row("journal", str(root / JOURNAL_SUBDIR))
        fields.add_row("journal seq", seqs)
        fields.add_row("commits", f"{replay.commits} (batch {replay.batch}, one fsync each)")
        fields.add_row("snapshot", _snapshot_text(root / SNAPSHOT_SUBDIR))
        if replay.retimed:
            fields.add_row(
                "retimed",
                f"{replay.retimed} commands had a ts before the journal's last ts; "
                "stamped with that ts",
            )
    console.print(Text("engine replay", style="bold underline"))
    fields.print(console)
    _print_hash(console, replay.engine)


@engine_app.command("recover")
def engine_recover(
    journal_dir: Annotated[
        str,
        typer.Option("--journal-dir", help="Directory written by engine run --journal-dir."),
    ],
    events_out: Annotated[
        str | None,
        typer.Option(
            "--events-out",
            help="Also write the events of the replayed journal tail as JSON lines; - for stdout.",
        ),
    ] = None,
) -> None:
    """Recover the engine from a journal directory (newest snapshot + journal tail) and report.

    A torn journal tail (an interrupted write) is truncated and reported; any other damage exits
    with code 3.
    """
    if not holds_journal(journal_dir):
        _fail(f"no journal in {journal_dir} (expected {Path(journal_dir) / JOURNAL_SUBDIR})")
    try:
        if events_out is None:
            engine, report, stats = recover_directory(journal_dir)
        else:
            with _open_output(events_out) as out:
                engine, report, stats = recover_directory(journal_dir, out)
    except (JournalCorruptError, RecoveryError) as exc:
        _fail_corrupt(exc)
    except DirectoryLockedError as exc:
        _fail(str(exc))
    console = _stderr() if events_out == "-" else Console(highlight=False, soft_wrap=True)
    _print_recovery(console, Path(journal_dir), engine, report, stats, events_out)


def _print_recovery(
    console: Console,
    root: Path,
    engine: Engine,
    report: RecoveryReport,
    stats: ReplayStats,
    events_out: str | None,
) -> None:
    fields = _Fields()
    fields.add_row("journal", str(root / JOURNAL_SUBDIR))
    if report.snapshot_path is None:
        fields.add_row("snapshot", "none (replayed the journal from seq 1)")
    else:
        fields.add_row("snapshot", f"{report.snapshot_path} (seq {report.snapshot_seq})")
    for damaged in report.damaged_snapshots:
        fields.add_row("damaged snapshot", f"skipped: {damaged}", "bold yellow")
    fields.add_row("records replayed", str(report.records_replayed))
    torn = _torn_text(report)
    if torn is None:
        fields.add_row("torn tail", "none")
    else:
        fields.add_row("torn tail", torn, "bold yellow")
    fields.add_row("last seq", str(report.last_seq))
    fields.add_row("last ts", _format_ts(report.last_ts) if report.last_seq else "-")
    tail = f"{stats.events} ({stats.trades} trades, {stats.rejects} rejects)"
    if events_out is not None:
        tail += f" written to {'<stdout>' if events_out == '-' else events_out}"
    fields.add_row("tail events", tail)
    console.print(Text("engine recovery", style="bold underline"))
    fields.print(console)
    if engine.instruments:
        symbols = Table(title_justify="left")
        for column in ("symbol", "phase", "bid", "bid size", "ask", "ask size", "last"):
            symbols.add_column(column, justify="left" if column in ("symbol", "phase") else "right")
        for symbol, instrument in engine.instruments.items():
            tick = Decimal(instrument.tick_size)

            def price(ticks: int, tick: Decimal = tick) -> str:
                return str(from_ticks(ticks, tick)) if ticks else "-"

            bid, bid_size, ask, ask_size = engine.l1(symbol)
            symbols.add_row(
                symbol,
                str(engine.phase(symbol)),
                price(bid),
                str(bid_size) if bid_size else "-",
                price(ask),
                str(ask_size) if ask_size else "-",
                price(engine.last_trade_price(symbol)),
            )
        console.print(symbols)
    _print_hash(console, engine)


@engine_app.command("book")
def engine_book(
    input_path: InputOption,
    symbol: Annotated[str, typer.Option("--symbol", "-s", help="Instrument to show.")],
    depth: Annotated[
        int, typer.Option(min=1, max=MAX_BOOK_DEPTH, help="Price levels per side.")
    ] = 20,
    skip_invalid: SkipInvalidOption = False,
) -> None:
    """Replay a command file offline and print the final L2 book of one symbol."""
    name = _input_name(input_path)
    replay = Replay(skip_invalid=skip_invalid, on_input_error=_warn_skipped(name))
    _run_replay(input_path, None, replay)
    engine = replay.engine
    tick = replay.encoder.tick_sizes.get(symbol)
    if tick is None:
        _fail(f"symbol {symbol!r} is not listed in {name}")

    def price(ticks: int) -> str:
        return str(from_ticks(ticks, tick))

    bids, asks = engine.l2(symbol, depth)
    title = Text(f"{symbol} order book (top {depth} levels)", style="bold")
    table = Table(title=title, title_justify="left")
    table.add_column("orders", justify="right")
    table.add_column("bid size", justify="right")
    table.add_column("bid", justify="right", style="green")
    table.add_column("ask", justify="left", style="red")
    table.add_column("ask size", justify="right")
    table.add_column("orders", justify="right")
    for i in range(max(len(bids), len(asks))):
        left = [str(bids[i][2]), str(bids[i][1]), price(bids[i][0])] if i < len(bids) else [""] * 3
        right = [price(asks[i][0]), str(asks[i][1]), str(asks[i][2])] if i < len(asks) else [""] * 3
        table.add_row(*left, *right)
    console = Console(highlight=False)
    console.print(table)
    last = engine.last_trade_price(symbol)
    console.print(
        f"phase: {engine.phase(symbol)}   last: {price(last) if last else '-'}   "
        f"bid levels: {len(bids)}   ask levels: {len(asks)}",
        markup=False,
    )


@bench_app.command("engine")
def bench_engine(
    messages: Annotated[int, typer.Option(min=1, help="Commands to generate.")] = 2_000_000,
    seed: Annotated[int, typer.Option(help="Seed of the command generator.")] = 1,
    journal: Annotated[
        bool, typer.Option("--journal/--no-journal", help="Also journal every command.")
    ] = False,
) -> None:
    """Measure matching-engine throughput and latency on a generated command stream."""
    from tradingfloor.bench.engine_bench import main as run_bench  # heavy: import on use

    run_bench(messages=messages, seed=seed, journal=journal)


@bench_app.command("restart")
def bench_restart(
    commands: Annotated[
        int, typer.Option(min=1, help="Journaled commands to restart over.")
    ] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Seed of the command generator.")] = 1,
    directory: Annotated[
        Path | None, typer.Option(help="Where the temporary data directory goes.")
    ] = None,
) -> None:
    """Time `serve` to Ready over a long journal: full replay versus projection checkpoint."""
    from tradingfloor.bench.restart_bench import main as run_bench  # heavy: import on use

    run_bench(commands=commands, seed=seed, directory=directory)


@bench_app.command("soak")
def bench_soak(
    minutes: Annotated[float, typer.Option(min=0.1, help="Wall-clock minutes to run.")] = 15,
    speed: Annotated[
        float, typer.Option(min=0.1, max=100.0, help="The demo's --speed (participants).")
    ] = 10.0,
    interval: Annotated[float, typer.Option(min=1.0, help="Seconds between samples.")] = 30.0,
    warmup: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Minutes of warm-up before growth is measured (default: a quarter of the run).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seeds the simulated participants.")] = 1,
) -> None:
    """Run the demo in a child process and print its resident memory against journaled
    commands: the growth after the warm-up in bytes per command and percent."""
    from tradingfloor.bench.soak import main as run_soak

    run_soak(minutes, speed, interval=interval, warmup_minutes=warmup, seed=seed)


def _address(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise typer.BadParameter(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


@contextmanager
def _server_failures(data_dir: Path) -> Iterator[None]:
    """How `serve` and `demo` end when the server cannot start or the venue fails."""
    from tradingfloor.broker.errors import BrokerError
    from tradingfloor.exchange.identity import EpochMismatchError, IdentityCorruptError
    from tradingfloor.node.serve import NoNewEpochNeededError, VenueFailedError

    try:
        yield
    except SnapshotAheadError as exc:
        _fail(f"cannot start: {exc}", code=EXIT_EPOCH_MISMATCH)
    except CheckpointRestoreError as exc:
        _fail(f"cannot start: {exc} (serve/demo --full-replay)")
    except (JournalCorruptError, RecoveryError) as exc:
        _fail_corrupt(exc, serving=True)
    except VenueFailedError as exc:
        _fail(str(exc), code=EXIT_INTERNAL_ERROR)
    except EpochMismatchError as exc:
        _fail(f"cannot start: {exc}", code=EXIT_EPOCH_MISMATCH)
    except IdentityCorruptError as exc:
        _fail(f"cannot start: {exc}", code=EXIT_CORRUPT_JOURNAL)
    except NoNewEpochNeededError as exc:
        _fail(str(exc))
    except DirectoryLockedError as exc:
        _fail(f"{exc} (is another tradingfloor process using {data_dir}?)")
    except BrokerError as exc:  # e.g. a TF_ADMIN_PASSWORD the password policy refuses
        _fail(f"the broker cannot start: {exc.message}")
    except OSError as exc:
        _fail(f"cannot start: {exc}")


_FullReplay = Annotated[
    bool,
    typer.Option(
        "--full-replay",
        help="Rebuild every projection (market data, FIX reports, the broker's market view) "
        "from the journal's first record instead of the newest projection checkpoint.",
    ),
]
_NewEpoch = Annotated[
    bool,
    typer.Option(
        "--new-epoch",
        help="Start a new venue epoch when the journal does not fit its consumers (lost, "
        "truncated or foreign): the broker cancels its open orders, FIX sessions reset their "
        "sequence numbers at the next logon. Recorded in the journal's identity file.",
    ),
]
_TruncateAt = Annotated[
    str | None,
    typer.Option(
        metavar="SEGMENT:OFFSET",
        help="Cut the journal at this reported corruption (drops that record and all after "
        "it, keeping a copy); see docs/journal.md.",
    ),
]
_Operator = Annotated[
    str | None,
    typer.Option(help="Who starts the new epoch (recorded); default: user@host."),
]


def _operator_name(operator: str | None) -> str:
    if operator is not None and operator.strip():
        return operator.strip()
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@fix_app.command("received")
def fix_received(
    comp_id: Annotated[str, typer.Argument(help="The member's SenderCompID.")],
    data_dir: Annotated[
        Path, typer.Option(help="The venue's data directory (as given to serve or demo).")
    ] = Path("var/venue"),
) -> None:
    """List the messages a member's authenticated FIX sessions sent to the venue: receive time
    (UTC), store generation, MsgSeqNum, source address and port, the message (| for SOH).

    Reads the store without locking it, so it works while the venue runs.
    """
    from tradingfloor.exchange.fix.acceptor import session_dir
    from tradingfloor.exchange.fix.store import StoreCorruptError, read_received

    directory = session_dir(data_dir / "fix" / "sessions", comp_id)
    if not directory.is_dir():
        _fail(f"no FIX session store for {comp_id!r} in {directory.parent}")
    try:
        for rec in read_received(directory):
            stamp = datetime.fromtimestamp(rec.received_ns // 1_000_000_000, UTC)
            when = f"{stamp:%Y-%m-%dT%H:%M:%S}.{rec.received_ns % 1_000_000_000:09d}Z"
            message = rec.fields.decode("latin-1").replace("\x01", "|")
            print(f"{when} gen {rec.generation} seq {rec.seq} {rec.address}:{rec.port} {message}")
    except StoreCorruptError as exc:
        _fail(str(exc), EXIT_CORRUPT_JOURNAL)


@app.command("serve")
def serve(
    data_dir: Annotated[
        Path, typer.Option(help="Journal, snapshots and FIX session stores live here.")
    ] = Path("var/venue"),
    config: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="Venue TOML (instruments, members); see docs/fix.md."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address every listener binds.")] = "127.0.0.1",
    fix_port: Annotated[int, typer.Option(min=0, max=65535, help="FIX 4.4 acceptor.")] = 9878,
    http_port: Annotated[int, typer.Option(min=0, max=65535, help="HTTP + WebSocket.")] = 8000,
    broker_port: Annotated[
        int, typer.Option(min=0, max=65535, help="The broker's API (Alpaca v2 + native).")
    ] = 8080,
    no_broker: Annotated[bool, typer.Option("--no-broker", help="Run the exchange alone.")] = False,
    api_rate_limit: Annotated[
        int, typer.Option(min=1, help="Broker API requests per minute per key (or user).")
    ] = DEFAULT_KEY_RATE_LIMIT_PER_MINUTE,
    db_url: Annotated[
        str | None,
        typer.Option(
            help="The broker's database (default: SQLite in the data directory), e.g. "
            "postgresql://user@127.0.0.1:5432/tradingfloor."
        ),
    ] = None,
    udp_feed: Annotated[
        str, typer.Option(help="Binary feed destination HOST:PORT (multicast or unicast).")
    ] = "239.255.42.99:31001",
    no_udp_feed: Annotated[bool, typer.Option("--no-udp-feed", help="Do not send it.")] = False,
    retransmission_port: Annotated[
        int, typer.Option(min=0, max=65535, help="Binary feed retransmission server (UDP).")
    ] = 31002,
    tick_interval: Annotated[
        float, typer.Option(min=0.01, help="Seconds between timer ticks when idle.")
    ] = 1.0,
    truncate_corrupt_journal: _TruncateAt = None,
    new_epoch: _NewEpoch = False,
    full_replay: _FullReplay = False,
    operator: _Operator = None,
) -> None:
    """Run the exchange and the broker: FIX acceptor, market data over WebSocket/HTTP and UDP,
    the broker's Alpaca-compatible API; one journal, one database.

    The first start creates the broker's `admin` user with the password in the
    TF_ADMIN_PASSWORD environment variable, or a random one that is printed once.
    A start whose journal does not fit what the FIX stores or the broker's database recorded
    (lost, truncated or foreign journal) is refused with exit code 4; `--new-epoch` then
    starts a new epoch and reconciles (docs/journal.md).
    """
    from tradingfloor.exchange.config import ConfigError, load_config
    from tradingfloor.node.serve import ServeOptions
    from tradingfloor.node.serve import run as run_serve

    try:
        load_config(config)
    except ConfigError as exc:
        _fail(f"bad venue config: {exc}")
    options = ServeOptions(
        data_dir=data_dir,
        config_path=config,
        host=host,
        fix_port=fix_port,
        http_port=http_port,
        broker_port=None if no_broker else broker_port,
        db_url=db_url,
        api_rate_limit=api_rate_limit,
        admin_password=os.environ.get("TF_ADMIN_PASSWORD") or None,
        udp_feed=None if no_udp_feed else _address(udp_feed),
        retransmission_port=retransmission_port,
        tick_interval=tick_interval,
        truncate_journal_at=truncate_corrupt_journal,
        new_epoch_by=_operator_name(operator) if new_epoch else None,
        full_replay=full_replay,
        announce=lambda line: print(line, flush=True),
    )
    with _server_failures(data_dir):
        run_serve(options)


@app.command("demo")
def demo(
    data_dir: Annotated[
        Path, typer.Option(help="Journal, FIX stores and the broker's SQLite database.")
    ] = Path("var/demo"),
    host: Annotated[str, typer.Option(help="Address every listener binds.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="The web terminal and the broker's API.")
    ] = 8080,
    http_port: Annotated[
        int, typer.Option(min=0, max=65535, help="The exchange's market data (HTTP/WebSocket).")
    ] = 8000,
    fix_port: Annotated[int, typer.Option(min=0, max=65535, help="FIX 4.4 acceptor.")] = 9878,
    seed: Annotated[int, typer.Option(help="Seeds the simulated participants.")] = 1,
    speed: Annotated[
        float,
        typer.Option(min=0.1, max=100.0, help="Simulated seconds per second for the participants."),
    ] = 1.0,
    no_participants: Annotated[
        bool, typer.Option("--no-participants", help="No simulated traders: a quiet market.")
    ] = False,
    truncate_corrupt_journal: _TruncateAt = None,
    new_epoch: _NewEpoch = False,
    full_replay: _FullReplay = False,
    operator: _Operator = None,
) -> None:
    """Run a whole market on this machine: exchange, broker, market data, the web terminal,
    documented demo users and simulated traders, until Ctrl-C.

    Everything lives in the data directory; running the demo again recovers the same market.
    The users and their password are printed at start (and listed in docs/demo.md).
    """
    from tradingfloor.demo.runner import DemoOptions, run_demo

    console = _line_console()
    status = console.status(f"Recovering the market from {data_dir} ...")

    def announce(line: str) -> None:
        console.print(line, markup=False)
        if line.startswith(("Ready", "Stopping", "Venue failed")):
            status.stop()
        else:
            status.update("Starting ...")

    options = DemoOptions(
        data_dir=data_dir,
        host=host,
        port=port,
        http_port=http_port,
        fix_port=fix_port,
        participants=not no_participants,
        seed=seed,
        speed=speed,
        truncate_journal_at=truncate_corrupt_journal,
        new_epoch_by=_operator_name(operator) if new_epoch else None,
        full_replay=full_replay,
        announce=announce,
    )
    status.start()
    try:
        with _server_failures(data_dir):
            run_demo(options)
    finally:
        status.stop()


@app.command("simulate")
def simulate_market(
    minutes: Annotated[float, typer.Option(help="Simulated minutes to run.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same run.")] = 1,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Also write the summary as JSON here; - for stdout."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Venue TOML whose instruments to trade (default: "
            "the packaged AAPL, MSFT, GOOG, AMZN, TSLA).",
        ),
    ] = None,
) -> None:
    """Run the simulated participants headless against the matching engine and summarise.

    Deterministic for a given seed (see docs/simulation.md): only the wall-clock figures change.
    """
    from tradingfloor.exchange.config import ConfigError, load_config
    from tradingfloor.sim.render import print_summary, simulate_with_progress, summary_json
    from tradingfloor.sim.simulator import MAX_SIM_MINUTES

    if not 0 < minutes <= MAX_SIM_MINUTES:
        _fail(f"--minutes must be above 0 and at most {MAX_SIM_MINUTES}")
    try:
        instruments = load_config(config).instruments
    except ConfigError as exc:
        _fail(f"bad venue config: {exc}")
    if not instruments:
        _fail("the venue config lists no instruments")
    summary = simulate_with_progress(_stderr(), minutes=minutes, seed=seed, instruments=instruments)
    console = _stderr() if output == "-" else Console(highlight=False)
    print_summary(console, summary)
    if output is not None:
        with _open_output(output) as out:
            out.write(summary_json(summary))


@app.command("version")
def version() -> None:
    """Print the tradingfloor version."""
    typer.echo(f"tradingfloor {__version__}")


def main() -> None:
    """Entry point of the ``tradingfloor`` console script."""
    app()
