"""Memory soak of the demo: resident memory against journaled commands over a long run.

Starts ``tradingfloor demo`` (exchange, broker, market data and the simulated participants) in
a child process on a fresh data directory with ephemeral ports, waits for "Ready", then every
``interval`` seconds samples the child's resident set size (``VmRSS`` in ``/proc/PID/status``)
and the journal's last sequence number (read from the journal directory, incrementally, with
``JournalReader``: the demo itself is not touched). At the end it prints a table of the samples
and the growth after the warm-up: resident bytes per journaled command and the percentage change
of RSS from the end of the warm-up to the end. Results are printed, never asserted
(docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

from tradingfloor.bench.serve_child import rss_bytes, stop_child
from tradingfloor.exchange.journal import JournalError, JournalReader
from tradingfloor.exchange.replay import JOURNAL_SUBDIR

__all__ = ["SoakResult", "SoakSample", "main", "run"]

_START_TIMEOUT_S: Final = 300.0
"""Longest wait for the demo's "Ready" (a fresh data directory starts in seconds)."""


@dataclass(frozen=True, slots=True)
class SoakSample:
    seconds: float  # since "Ready"
    commands: int  # the journal's last sequence number
    rss: int  # bytes


@dataclass(slots=True)
class SoakResult:
    minutes: float
    speed: float
    warmup_minutes: float
    samples: list[SoakSample] = field(default_factory=list)

    def after_warmup(self) -> tuple[SoakSample, SoakSample] | None:
        """The first sample at or after the end of the warm-up, and the last sample."""
        start = next((s for s in self.samples if s.seconds >= self.warmup_minutes * 60), None)
        if start is None or start is self.samples[-1]:
            return None
        return start, self.samples[-1]

    def bytes_per_command(self) -> float | None:
        """RSS growth over commands journaled, from the end of the warm-up to the end."""
        span = self.after_warmup()
        if span is None or span[1].commands == span[0].commands:
            return None
        start, end = span
        return (end.rss - start.rss) / (end.commands - start.commands)

    def fitted_bytes_per_command(self) -> float | None:
        """Least-squares slope of RSS against commands over the samples after the warm-up
        (less sensitive than the end points to one sample taken just after a collection)."""
        span = self.after_warmup()
        if span is None:
            return None
        points = [s for s in self.samples if s.seconds >= span[0].seconds]
        mean_c = sum(s.commands for s in points) / len(points)
        mean_r = sum(s.rss for s in points) / len(points)
        var = sum((s.commands - mean_c) ** 2 for s in points)
        if var == 0:
            return None
        return sum((s.commands - mean_c) * (s.rss - mean_r) for s in points) / var

    def rss_change_percent(self) -> float | None:
        """RSS at the end against RSS at the end of the warm-up, in percent."""
        span = self.after_warmup()
        if span is None or span[0].rss == 0:
            return None
        return 100.0 * (span[1].rss - span[0].rss) / span[0].rss


class _JournalCounter:
    """The journal's last sequence number, reading only what was written since the last call."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.last_seq = 0

    def read(self) -> int:
        reader = JournalReader(self.directory, after_seq=self.last_seq)
        try:
            for _record in reader:
                pass
        except JournalError:  # a segment rotated or archived under the reader: try next time
            return self.last_seq
        self.last_seq = max(self.last_seq, reader.last_seq)
        return self.last_seq


@contextlib.contextmanager
def _demo_child(data_dir: Path, speed: float, seed: int) -> Iterator[subprocess.Popen[str]]:
    cmd = [
        sys.executable, "-m", "tradingfloor", "demo",
        "--data-dir", str(data_dir), "--port", "0", "--http-port", "0", "--fix-port", "0",
        "--speed", f"{speed:g}", "--seed", str(seed),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = threading.Event()
        threading.Thread(target=_drain, args=(proc.stdout, ready), daemon=True).start()
        if not ready.wait(_START_TIMEOUT_S) or proc.poll() is not None:
            raise RuntimeError("tradingfloor demo did not start")
        yield proc
    finally:
        stop_child(proc, 60)


def _drain(stream: IO[str], ready: threading.Event) -> None:
    """Read the child's output to its end (a full pipe would block it); flag "Ready"."""
    for line in stream:
        if line.startswith("Ready"):
            ready.set()
    ready.set()  # the child ended: let the waiter see it


def run(
    minutes: float,
    speed: float = 10.0,
    *,
    interval: float = 30.0,
    warmup_minutes: float | None = None,
    seed: int = 1,
    progress: Callable[[SoakSample], None] | None = None,
    directory: Path | None = None,
) -> SoakResult:
    """Run the demo for ``minutes`` of wall time, sampling every ``interval`` seconds."""
    warmup = minutes / 4 if warmup_minutes is None else warmup_minutes
    result = SoakResult(minutes=minutes, speed=speed, warmup_minutes=warmup)
    with tempfile.TemporaryDirectory(prefix="tf-soak-", dir=directory) as tmp:
        data_dir = Path(tmp) / "demo"
        counter = _JournalCounter(data_dir / JOURNAL_SUBDIR)
        with _demo_child(data_dir, speed, seed) as proc:
            start = time.monotonic()
            end = start + minutes * 60
            while True:
                now = time.monotonic()
                sample = SoakSample(now - start, counter.read(), rss_bytes(proc.pid))
                if proc.poll() is not None:
                    raise RuntimeError(f"tradingfloor demo exited with {proc.returncode}")
                result.samples.append(sample)
                if progress is not None:
                    progress(sample)
                if now >= end:
                    break
                time.sleep(max(0.0, min(interval, end - now)))
    return result


def _mb(value: int) -> str:
    return f"{value / 1e6:,.1f}"


def report_lines(result: SoakResult) -> Sequence[str]:
    """The table of samples and the growth after the warm-up."""
    lines = [
        f"Demo memory soak: --speed {result.speed:g} for {result.minutes:g} min, "
        f"warm-up {result.warmup_minutes:g} min",
        f"{'minute':>8} {'commands':>12} {'RSS MB':>9} {'bytes/cmd since prev':>21}",
    ]
    prev: SoakSample | None = None
    for s in result.samples:
        step = ""
        if prev is not None and s.commands > prev.commands:
            step = f"{(s.rss - prev.rss) / (s.commands - prev.commands):,.0f}"
        lines.append(f"{s.seconds / 60:>8.1f} {s.commands:>12,} {_mb(s.rss):>9} {step:>21}")
        prev = s
    span = result.after_warmup()
    if span is None:
        lines.append("no samples after the warm-up: run longer or shorten --warmup")
        return lines
    start, end = span
    per_cmd, fitted, pct = (
        result.bytes_per_command(),
        result.fitted_bytes_per_command(),
        result.rss_change_percent(),
    )
    lines += [
        f"after the warm-up (minute {start.seconds / 60:.1f} to {end.seconds / 60:.1f}): "
        f"{end.commands - start.commands:,} commands, RSS {_mb(start.rss)} -> {_mb(end.rss)} MB",
        f"  RSS change: {pct:+.1f}%" if pct is not None else "  RSS change: -",
        f"  bytes per command (end points): {per_cmd:,.1f}"
        if per_cmd is not None
        else "  bytes per command: - (no commands)",
        f"  bytes per command (least-squares fit): {fitted:,.1f}"
        if fitted is not None
        else "  bytes per command (fit): -",
    ]
    return lines


def main(
    minutes: float,
    speed: float = 10.0,
    *,
    interval: float = 30.0,
    warmup_minutes: float | None = None,
    seed: int = 1,
    directory: Path | None = None,
) -> None:
    """Run the soak, with a progress line per sample on stderr and the report on stdout."""

    def progress(s: SoakSample) -> None:
        print(
            f"  {s.seconds / 60:6.1f} min  {s.commands:>10,} commands  RSS {_mb(s.rss)} MB",
            file=sys.stderr,
            flush=True,
        )

    result = run(
        minutes,
        speed,
        interval=interval,
        warmup_minutes=warmup_minutes,
        seed=seed,
        progress=progress,
        directory=directory,
    )
    for line in report_lines(result):
        print(line)
