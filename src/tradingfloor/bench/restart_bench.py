"""Restart benchmark: how long `serve` takes to be Ready over a long journal, from a projection
checkpoint and by a full replay, in the same run on the same data directory.

1. A journal of N commands (``engine_bench.iter_commands``: limit orders around a random walk,
   IOCs, cancels, replaces, rejected duplicates) is written through ``JournaledEngine`` with
   its periodic snapshots, straight to a fresh data directory (not timed as a restart).
2. ``serve`` (exchange and broker) starts on it with ``--full-replay``: every projection is
   rebuilt from the journal's first record, as every start did before checkpoints. The time
   from launching the process to its "Ready" line is printed, with its resident memory then.
   SIGTERM stops it cleanly: the stop snapshots the engine and checkpoints the projections.
3. ``serve`` starts again without the flag: projections come from the checkpoint, nothing
   is replayed. Then once more with ``--full-replay`` on the now warm page cache, so that the
   two ways are compared on equal terms.
4. The worst case after a crash: ``SERVE_SNAPSHOT_EVERY - 1`` more commands are appended to
   the journal with no snapshot (as if the venue had journaled them and been killed just
   before its next periodic snapshot and checkpoint), and ``serve`` starts from the last
   checkpoint plus that tail.

Durations are printed, never asserted (docs/benchmarks.md, "Restart").
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tradingfloor.bench.engine_bench import iter_commands
from tradingfloor.bench.serve_child import rss_bytes, stop_child
from tradingfloor.exchange.engine.commands import AddInstrument, Command
from tradingfloor.exchange.sequencer import JournaledEngine
from tradingfloor.node.serve import SERVE_SNAPSHOT_EVERY

__all__ = ["Start", "build_journal", "main", "time_start"]

BATCH = 4096  # commands per journal commit while building
_REPLAYED = re.compile(r"(\d+) journaled commands replayed")


@dataclass(frozen=True, slots=True)
class Start:
    label: str
    seconds: float
    """From launching the process to its "Ready" line."""
    replayed: int
    """Commands the start replayed into the projections (its own report)."""
    rss_mb: float
    """Resident memory of the server once Ready."""


def build_journal(
    data_dir: Path, commands: int, seed: int, *, snapshots: bool = True
) -> tuple[float, int]:
    """Append ``commands`` generated commands to ``data_dir``'s journal (with the periodic
    engine snapshots serve would take, unless not ``snapshots``); return (seconds, journal
    bytes). Appending to a journal that lists the stream's instrument already, the stream's
    own listing is left out."""
    started = time.perf_counter()
    pipeline, _report = JournaledEngine.open(
        data_dir / "journal",
        data_dir / "snapshots",
        snapshot_every=SERVE_SNAPSHOT_EVERY if snapshots else 0,
    )
    with pipeline:
        chunk: list[Command] = []
        listed = pipeline.engine.instruments
        for command in iter_commands(commands, seed):
            if isinstance(command, AddInstrument) and command.symbol in listed:
                continue
            chunk.append(command)
            if len(chunk) == BATCH:
                pipeline.submit(chunk)
                chunk = []
        if chunk:
            pipeline.submit(chunk)
        pipeline.wait_for_snapshot()
    size = sum(p.stat().st_size for p in (data_dir / "journal").glob("*.log"))
    return time.perf_counter() - started, size


def time_start(data_dir: Path, label: str, *extra: str) -> Start:
    """Launch ``serve`` on ``data_dir``, time it to "Ready", stop it cleanly."""
    cmd = [
        sys.executable, "-m", "tradingfloor", "serve", "--data-dir", str(data_dir),
        "--fix-port", "0", "--http-port", "0", "--broker-port", "0", "--no-udp-feed", *extra,
    ]  # fmt: skip
    env = {**os.environ, "TF_ADMIN_PASSWORD": "restart-bench-Pw-1"}
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    replayed, seconds, rss, output = -1, 0.0, 0.0, []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            match = _REPLAYED.search(line)
            if match:
                replayed = int(match.group(1))
            if line.startswith("Ready"):
                seconds = time.perf_counter() - started
                rss = rss_bytes(proc.pid) / 2**20
                break
        if not seconds:
            raise RuntimeError("serve did not become Ready:\n" + "".join(output[-20:]))
    finally:
        stop_child(proc, 300)
    return Start(label, seconds, replayed, rss)


def main(*, commands: int, seed: int, directory: Path | None = None) -> list[Start]:
    console = Console()
    with tempfile.TemporaryDirectory(prefix="tf-restart-", dir=directory) as tmp:
        data = Path(tmp) / "venue"
        console.print(f"Writing a journal of {commands:,} commands (seed {seed}) ...")
        built, size = build_journal(data, commands, seed)
        console.print(f"  {built:.1f} s, {size / 1e6:,.1f} MB of journal")
        starts = [
            time_start(data, "full replay (cold cache; every start before checkpoints)",
                       "--full-replay"),
            time_start(data, "from the checkpoint of the clean stop"),
            time_start(data, "full replay (warm cache)", "--full-replay"),
        ]  # fmt: skip
        tail = SERVE_SNAPSHOT_EVERY - 1
        console.print(f"Appending {tail:,} commands after the checkpoint, no snapshot ...")
        build_journal(data, tail, seed + 1, snapshots=False)
        starts.append(time_start(data, f"after a crash: checkpoint + {tail:,}-command tail"))
    table = Table(title=f"serve: launch to Ready over {commands:,} journaled commands")
    table.add_column("start")
    table.add_column("seconds", justify="right")
    table.add_column("replayed", justify="right")
    table.add_column("RSS MB", justify="right")
    for start in starts:
        table.add_row(
            start.label, f"{start.seconds:.2f}", f"{start.replayed:,}", f"{start.rss_mb:.0f}"
        )
    console.print(table)
    return starts
