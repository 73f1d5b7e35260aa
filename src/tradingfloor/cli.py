"""The ``tradingfloor`` command: offline engine replay, the final book, benchmarks, the version.

Exit codes: 0 success, 1 internal error, 2 invalid usage or invalid input (the message names the
file and line). Summaries and diagnostics go to stderr; ``--output -`` and ``engine book`` write
their results to stdout.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tradingfloor import __version__
from tradingfloor.core.units import from_ticks
from tradingfloor.exchange.jsonl import InputError
from tradingfloor.exchange.replay import Replay

__all__ = ["EXIT_INPUT_ERROR", "MAX_BOOK_DEPTH", "app", "main"]

EXIT_INPUT_ERROR = 2
"""Exit code for invalid input or usage; the message on stderr names the file and line."""

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
app.add_typer(engine_app, name="engine")
app.add_typer(bench_app, name="bench")

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


@dataclass
class _Replayed:
    name: str
    replay: Replay


def _run_replay(input_path: str, out: IO[bytes] | None, skip_invalid: bool) -> _Replayed:
    name = "<stdin>" if input_path == "-" else input_path
    console = _stderr()

    def warn(exc: InputError) -> None:
        console.print(Text.assemble(("skipped ", "yellow"), f"{name}:{exc.line}: {exc.message}"))

    replay = Replay(skip_invalid=skip_invalid, on_input_error=warn)
    with _open_input(input_path) as stream:
        try:
            replay.run(stream, out)
        except InputError as exc:
            hint = "" if skip_invalid else " (--skip-invalid skips bad lines)"
            _fail(f"{name}:{exc.line}: {exc.message}{hint}")
    return _Replayed(name, replay)


@engine_app.command("run")
def engine_run(
    input_path: InputOption,
    output: Annotated[
        str, typer.Option("--output", "-o", help="Event file (JSON lines); - for stdout.")
    ],
    skip_invalid: SkipInvalidOption = False,
) -> None:
    """Replay a command file offline and write every engine event as one JSON line."""
    with _open_output(output) as out:
        result = _run_replay(input_path, out, skip_invalid)
    replay = result.replay
    stats = replay.stats
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("input", result.name)
    table.add_row("output", "<stdout>" if output == "-" else output)
    table.add_row("commands", str(stats.commands))
    if skip_invalid:
        table.add_row("skipped lines", str(stats.input_errors))
    table.add_row("events", str(stats.events))
    table.add_row("trades", f"{stats.trades} ({stats.traded_qty} shares)")
    table.add_row("rejects", str(stats.rejects))
    table.add_row("state hash", replay.engine.state_hash())
    console = _stderr()
    console.print(Text("engine replay", style="bold underline"))
    console.print(table)


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
    result = _run_replay(input_path, None, skip_invalid)
    engine = result.replay.engine
    tick = result.replay.encoder.tick_sizes.get(symbol)
    if tick is None:
        _fail(f"symbol {symbol!r} is not listed in {result.name}")

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


@app.command("version")
def version() -> None:
    """Print the tradingfloor version."""
    typer.echo(f"tradingfloor {__version__}")


def main() -> None:
    """Entry point of the ``tradingfloor`` console script."""
    app()
