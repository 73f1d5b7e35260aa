"""Offline replay of a JSON-lines command file through a fresh matching engine.

Each line is decoded and sequenced (``jsonl.CommandDecoder``), applied to the engine, and every
resulting event is encoded as one JSON line (``jsonl.EventEncoder``). The same file always gives
the same bytes out and the same final state hash. Invalid lines stop the replay with an
``InputError`` unless ``skip_invalid`` is set, in which case each becomes an ``input_error``
record in the output and takes no sequence number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from tradingfloor.exchange.engine.commands import AddInstrument
from tradingfloor.exchange.engine.engine import Engine
from tradingfloor.exchange.engine.events import Rejected, Trade
from tradingfloor.exchange.jsonl import (
    CommandDecoder,
    EventEncoder,
    InputError,
    encode_input_error,
    read_lines,
)

__all__ = ["Replay", "ReplayStats"]


@dataclass
class ReplayStats:
    """What a replay did: sequenced commands, events out, trades and rejects among them."""

    commands: int = 0
    events: int = 0
    trades: int = 0
    traded_qty: int = 0
    rejects: int = 0
    input_errors: int = 0


class Replay:
    """Feeds command lines to one engine and returns the encoded events of each line."""

    def __init__(
        self,
        engine: Engine | None = None,
        *,
        skip_invalid: bool = False,
        on_input_error: Callable[[InputError], None] | None = None,
    ) -> None:
        self.engine = engine if engine is not None else Engine()
        self.skip_invalid = skip_invalid
        self.on_input_error = on_input_error
        self.decoder = CommandDecoder()
        self.encoder = EventEncoder()
        self.stats = ReplayStats()

    def feed(self, line: int, raw: bytes) -> list[bytes]:
        """Decode, apply and encode one line; raises InputError unless skipping invalid lines."""
        try:
            sequenced = self.decoder.decode(line, raw)
        except InputError as exc:
            if not self.skip_invalid:
                raise
            self.stats.input_errors += 1
            if self.on_input_error is not None:
                self.on_input_error(exc)
            return [encode_input_error(exc)]
        if sequenced is None:
            return []
        seq, ts, command = sequenced
        events = self.engine.apply(seq, ts, command)
        self.stats.commands += 1
        self.stats.events += len(events)
        out: list[bytes] = []
        for event in events:
            if isinstance(event, Trade):
                self.stats.trades += 1
                self.stats.traded_qty += event.qty
            elif isinstance(event, Rejected):
                self.stats.rejects += 1
            out.append(self.encoder.encode(event))
        if isinstance(command, AddInstrument) and command.symbol not in self.encoder.tick_sizes:
            self.decoder.delist(command.symbol)
        return out

    def run(self, stream: IO[bytes], out: IO[bytes] | None = None) -> ReplayStats:
        """Replay every line of ``stream``, writing the output records to ``out`` if given."""
        for line, raw in read_lines(stream):
            records = self.feed(line, raw)
            if out is not None:
                out.writelines(records)
        return self.stats
