"""A `tradingfloor serve` in a child process for the end-to-end benchmarks, and their loop.

``serve_child`` starts it on a fresh data directory (ephemeral ports, no UDP feed), reads its
announcements until "Ready", yields the address one pattern found, and stops it with SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["rss_bytes", "run_loop", "serve_child", "stop_child"]


@contextlib.contextmanager
def serve_child(
    ready: re.Pattern[str], extra_args: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> Iterator[tuple[str, int]]:
    """(host, port) that ``ready`` (groups: host, port) matched in the server's output."""
    with tempfile.TemporaryDirectory(prefix="tf-bench-") as tmp:
        cmd = [
            sys.executable, "-m", "tradingfloor", "serve",
            "--data-dir", str(Path(tmp) / "venue"),
            "--fix-port", "0", "--http-port", "0", "--broker-port", "0", "--no-udp-feed",
            *extra_args,
        ]  # fmt: skip
        child_env = {**os.environ, **(env or {})}
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=child_env)
        try:
            assert proc.stdout is not None
            host, port = "", 0
            for line in proc.stdout:
                match = ready.search(line)
                if match:
                    host, port = match.group(1), int(match.group(2))
                if line.startswith("Ready"):
                    break
            if not port:
                raise RuntimeError("tradingfloor serve did not start")
            yield host, port
        finally:
            stop_child(proc, 30)


def stop_child(proc: subprocess.Popen[str], timeout_s: float) -> None:
    """SIGTERM (a clean stop), then SIGKILL if it has not ended within ``timeout_s``."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from ``/proc/PID/status`` (0 when it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024  # reported in kB
    return 0


def run_loop(coro: Coroutine[Any, Any, None]) -> None:
    """Run the benchmark client on uvloop (as the server runs), else asyncio."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a pinned dependency on Linux
        asyncio.run(coro)
    else:
        uvloop.run(coro)
