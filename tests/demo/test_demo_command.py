"""`tradingfloor demo` as a user runs it: a subprocess that prints its URL and users, whose
simulated traders make a market, that stops cleanly on Ctrl-C (SIGINT) and, started again on
the same data directory, recovers the same market and the same users."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tradingfloor.demo.users import DEMO_PASSWORD, DEMO_USERS

START_TIMEOUT_S = 60.0
# The sources under test when they are not the installed ones (a worktree's PYTHONPATH=src).
SOURCES = {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}
STOP_TIMEOUT_S = 30.0


class Demo:
    """One `tradingfloor demo` process and the lines it printed."""

    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tradingfloor",
                "demo",
                "--data-dir",
                str(data_dir),
                "--port",
                "0",
                "--http-port",
                "0",
                "--fix-port",
                "0",
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={"PYTHONUNBUFFERED": "1", "COLUMNS": "200", "PATH": "/usr/bin:/bin", **SOURCES},
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, prefix: str, timeout: float = START_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"the demo exited before {prefix!r}: {self.lines}")
            self.lines.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no {prefix!r} line within {timeout} s: {self.lines}")

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        self.wait_for("Stopped.", STOP_TIMEOUT_S)
        return self.proc.wait(STOP_TIMEOUT_S)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def demos() -> Iterator[list[Demo]]:
    started: list[Demo] = []
    yield started
    for demo in started:
        demo.kill()


def login(base: str, username: str) -> dict[str, str]:
    answer = httpx.post(
        f"{base}/api/auth/token",
        data={"username": username, "password": DEMO_PASSWORD, "grant_type": "password"},
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def trades(base: str, symbol: str) -> list[dict[str, object]]:
    answer = httpx.get(f"{base}/md/api/v1/marketdata/{symbol}/trades")
    assert answer.status_code == 200, answer.text
    result: list[dict[str, object]] = answer.json()["trades"]
    return result


def test_demo_runs_a_market_stops_on_ctrl_c_and_recovers_it(
    tmp_path: Path, demos: list[Demo]
) -> None:
    data = tmp_path / "demo"
    first = Demo(data, "--speed", "5")
    demos.append(first)
    url = first.wait_for("Web terminal: ").split(": ", 1)[1].rstrip("/")
    first.wait_for("Ready.")
    printed = "\n".join(first.lines)
    for user in DEMO_USERS:
        assert re.search(rf"^\s+{user.username}\s+/ {DEMO_PASSWORD}", printed, re.M), printed
    assert "Created the demo users: broker, alice, bob, carol" in printed

    page = httpx.get(f"{url}/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    account = httpx.get(f"{url}/v2/account", headers=login(url, "alice")).json()
    assert account["cash"] == "50000.00"
    assert account["status"] == "ACTIVE"
    carol = httpx.get(f"{url}/v2/account", headers=login(url, "carol")).json()
    assert carol["status"] == "APPROVAL_PENDING"

    deadline = time.monotonic() + 30
    while not (before := trades(url, "AAPL")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert before, "the simulated traders made no trade in AAPL"
    quote = httpx.get(f"{url}/md/api/v1/marketdata/AAPL/l1").json()
    assert quote["bid"] is not None and quote["ask"] is not None
    assert Decimal(quote["bid"]) < Decimal(quote["ask"])

    assert first.interrupt() == 0

    second = Demo(data, "--no-participants")
    demos.append(second)
    replayed = second.wait_for("Venue TFEX: ")
    # every projection (the broker's market view and history too) is checkpointed, and the
    # clean stop checkpointed them at the journal's end: restored from it, nothing replayed
    restored = [x for x in second.lines if x.startswith("Projections restored from the ")]
    assert int(replayed.split()[2]) == 0 and restored, second.lines
    assert int(restored[0].rsplit(" ", 1)[1]) > len(before)
    url = second.wait_for("Web terminal: ").split(": ", 1)[1].rstrip("/")
    second.wait_for("Ready.")
    assert not any(line.startswith("Created the demo users") for line in second.lines)
    after = trades(url, "AAPL")
    last_before = before[-1]["tradeId"]
    assert last_before in [t["tradeId"] for t in after]
    assert httpx.get(f"{url}/v2/account", headers=login(url, "alice")).json()["cash"] == (
        "50000.00"
    )
    assert second.interrupt() == 0
