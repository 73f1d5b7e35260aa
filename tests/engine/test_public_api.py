"""The engine package exposes exactly the documented public surface."""

from __future__ import annotations

import tradingfloor.exchange.engine as engine_pkg
from tradingfloor.exchange.engine import commands, events


def test_engine_package_public_names() -> None:
    assert sorted(engine_pkg.__all__) == ["Engine", "EngineInvariantError", "Reject"]


def test_every_command_and_event_is_in_its_union() -> None:
    assert set(commands.__all__) - {"Command", "Schedule"} == {
        c.__name__
        for c in commands.Command.__args__  # type: ignore[attr-defined]
    }
    assert set(events.__all__) - {"Event"} == {
        e.__name__
        for e in events.Event.__args__  # type: ignore[attr-defined]
    }
