"""Terminal output of ``tradingfloor simulate``: a rich progress bar while the simulation runs and
the summary as tables afterwards; JSON encoding of the summary for ``--output``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import msgspec
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from tradingfloor.exchange.engine.commands import AddInstrument
from tradingfloor.sim.simulator import NS_PER_MINUTE, simulate
from tradingfloor.sim.summary import Summary

__all__ = ["print_summary", "simulate_with_progress", "summary_json"]


def simulate_with_progress(
    console: Console, *, minutes: float, seed: int, instruments: Sequence[AddInstrument]
) -> Summary:
    """``simulate`` with a progress bar in simulated minutes on ``console``."""
    columns = (
        TextColumn("[bold]simulating"),
        BarColumn(),
        TextColumn("{task.fields[done]} / {task.fields[total_text]} simulated min"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        total_text = f"{minutes:g}"
        task = bar.add_task("simulate", total=1, done="0.0", total_text=total_text)

        def progress(done_ns: int, total_ns: int) -> None:
            bar.update(
                task,
                total=total_ns,
                completed=done_ns,
                done=f"{done_ns / NS_PER_MINUTE:.1f}",
            )

        return simulate(minutes, seed, instruments=instruments, progress=progress)


def summary_json(summary: Summary) -> bytes:
    """The summary as indented JSON (decimals as strings), ending in a newline."""
    return msgspec.json.format(msgspec.json.encode(summary), indent=2) + b"\n"


def _dec(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:,}"


def print_summary(console: Console, summary: Summary) -> None:
    """The run, the symbols and the VWAP slicer as tables."""
    s = summary
    totals = Table(
        title=Text("simulation summary", style="bold"),
        title_justify="left",
        box=None,
        show_header=False,
    )
    totals.add_column("", style="bold")
    totals.add_column("", overflow="fold")
    rejected = ", ".join(f"{code}: {n}" for code, n in s.rejects_by_code.items()) or "none"
    rows = [
        ("simulated minutes", f"{s.minutes}"),
        ("seed", str(s.seed)),
        ("participants", str(s.participants)),
        ("commands", f"{s.commands:,} ({s.commands_per_sim_second} per simulated second)"),
        ("orders", f"{s.orders_submitted:,} sent, {s.orders_accepted:,} accepted"),
        ("rejected", f"{s.orders_rejected:,} orders (codes {rejected})"),
        ("cancels", f"{s.cancels_sent:,} sent, {s.cancelled:,} cancelled events"),
        ("replaces", f"{s.replaces_sent:,} sent, {s.replaced:,} replaced"),
        ("trades", f"{s.trades:,}"),
        ("volume", f"{s.volume:,} shares"),
        ("notional", _dec(s.notional)),
        ("messages", f"{s.messages:,} ({s.commands:,} commands + {s.events:,} events)"),
        ("wall time", f"{s.wall_seconds:.2f} s"),
        ("messages/s", f"{s.messages_per_second:,.0f}"),
        ("event hash", s.event_hash),
    ]
    for name, value in rows:
        totals.add_row(name, value)
    console.print(totals)

    symbols = Table(
        title=Text("per symbol", style="bold"), title_justify="left", box=box.SIMPLE_HEAD
    )
    for column in ("symbol", "trades", "volume", "VWAP", "low", "high", "last", "spread bps"):
        symbols.add_column(column, justify="left" if column == "symbol" else "right")
    for sym in s.symbols:
        symbols.add_row(
            sym.symbol,
            f"{sym.trades:,}",
            f"{sym.volume:,}",
            _dec(sym.vwap),
            _dec(sym.low),
            _dec(sym.high),
            _dec(sym.last),
            _dec(sym.avg_spread_bps),
        )
    console.print(symbols)

    if s.vwap:
        vwap = Table(
            title=Text("VWAP slicer", style="bold"), title_justify="left", box=box.SIMPLE_HEAD
        )
        for column in ("symbol", "side", "filled", "avg price", "market VWAP", "slippage"):
            vwap.add_column(column, justify="left" if column in ("symbol", "side") else "right")
        for r in s.vwap:
            state = "" if r.completed else " working"
            vwap.add_row(
                r.symbol,
                str(r.side),
                f"{r.filled:,} / {r.qty:,}{state}",
                _dec(r.average_price),
                _dec(r.market_vwap),
                "-" if r.slippage_bps is None else f"{r.slippage_bps} bps",
            )
        console.print(vwap)
