"""`tradingfloor demo` restarted on its data directory: every listener (the simulated
participants, market data, FIX, ITCH, status, the broker's market view and history) is a
checkpointed projection, so the restart after a clean stop replays nothing, and the
participants trade on. The lines the demo prints say where the replay started."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .test_demo_command import Demo, trades

TRADING_S = 2.0


@pytest.fixture
def demos() -> Iterator[list[Demo]]:
    started: list[Demo] = []
    yield started
    for demo in started:
        demo.kill()


def replay_lines(demo: Demo) -> tuple[int, list[str]]:
    """Commands replayed at start-up, and the checkpoint notes printed before that line."""
    line = demo.wait_for("Venue TFEX: ")
    notes = [x for x in demo.lines if x.startswith("Checkpoint not used: ")]
    return int(line.split()[2]), notes


def test_demo_participants_restart_from_the_checkpoint(tmp_path: Path, demos: list[Demo]) -> None:
    data = tmp_path / "demo"
    first = Demo(data, "--speed", "20")
    demos.append(first)
    url = first.wait_for("Web terminal: ").split(": ", 1)[1].rstrip("/")
    first.wait_for("Ready.")
    time.sleep(TRADING_S)
    before = trades(url, "AAPL")
    assert before, "the simulated traders made no trade in AAPL"
    assert first.interrupt() == 0

    second = Demo(data, "--speed", "20")
    demos.append(second)
    replayed, notes = replay_lines(second)
    assert not any("LiveSimulation" in note for note in notes), notes
    # every listener of the demo is checkpointed: the clean stop's checkpoint is used whole
    assert not [n for n in notes if "need the whole journal" in n], notes
    assert replayed == 0, second.lines
    assert any(x.startswith("Projections restored from the checkpoint") for x in second.lines)
    url = second.wait_for("Web terminal: ").split(": ", 1)[1].rstrip("/")
    second.wait_for("Ready.")
    assert any("simulated participants are trading" in x for x in second.lines)
    deadline = time.monotonic() + 30
    while trades(url, "AAPL")[-1]["tradeId"] == before[-1]["tradeId"]:
        assert time.monotonic() < deadline, "no trade after the restart"
        time.sleep(0.5)
    assert second.interrupt() == 0
