"""`tradingfloor demo` restarted on its data directory: the simulated participants are a
checkpointed projection, so they never make the venue replay the whole journal (other
listeners may still need it until they are checkpointed too), and they trade on after the
restart. The lines the demo prints say where the replay started and what needed history."""

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
    needs_history = [n for n in notes if "need the whole journal" in n]
    if not needs_history:  # every projection is checkpointed: the clean stop's checkpoint
        assert replayed == 0, second.lines
        assert any(x.startswith("Projections restored from the checkpoint") for x in second.lines)
    print(f"restart replayed {replayed} commands; {needs_history or 'nothing needed history'}")
    url = second.wait_for("Web terminal: ").split(": ", 1)[1].rstrip("/")
    second.wait_for("Ready.")
    assert any("simulated participants are trading" in x for x in second.lines)
    deadline = time.monotonic() + 30
    while trades(url, "AAPL")[-1]["tradeId"] == before[-1]["tradeId"]:
        assert time.monotonic() < deadline, "no trade after the restart"
        time.sleep(0.5)
    assert second.interrupt() == 0
