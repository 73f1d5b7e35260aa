"""The deterministic matching engine: ``Engine.apply(seq, ts, command) -> list[Event]``.

Commands live in ``commands``, events in ``events``, enumerations in ``types`` and rejection
codes in ``reasons``; everything else in this package is internal to the engine.
"""

from tradingfloor.exchange.engine.engine import Engine, EngineInvariantError
from tradingfloor.exchange.engine.reasons import Reject

__all__ = ["Engine", "EngineInvariantError", "Reject"]
