"""`tradingfloor demo` and `serve` print whole lines when their output is not a terminal: a
long data directory path or a user line is not hard-wrapped at 80 columns (no COLUMNS set)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

TIMEOUT_S = 60.0


def run_until_ready(*args: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tradingfloor", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Ready"):
                proc.send_signal(signal.SIGINT)
        assert proc.wait(TIMEOUT_S) == 0, lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return lines


@pytest.mark.parametrize("command", ["demo", "serve"])
def test_lines_are_not_wrapped_when_not_a_terminal(tmp_path: Path, command: str) -> None:
    data_dir = tmp_path / ("a-directory-name-long-enough-to-pass-eighty-columns-" + "x" * 40)
    ports = ["--fix-port", "0", "--http-port", "0"]
    if command == "demo":
        extra = ["--port", "0", "--no-participants"]
    else:
        extra = ["--broker-port", "0", "--no-udp-feed"]
    lines = run_until_ready(command, "--data-dir", str(data_dir), *ports, *extra)
    venue = next(line for line in lines if line.startswith("Venue "))
    assert venue.endswith(f"data in {data_dir}"), lines
    assert "Stopped." in lines
    if command == "demo":
        assert any(line.endswith("approve her in the admin view)") for line in lines), lines
