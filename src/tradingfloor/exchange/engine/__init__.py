"""The deterministic matching engine: ``Engine.apply(seq, ts, command) -> list[Event]``."""
