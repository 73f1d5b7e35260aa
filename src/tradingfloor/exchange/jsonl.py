"""JSON-lines edge codec for engine commands and events: decimal prices outside, ticks inside.

A command file holds one JSON object per line (format: docs/engine-commands.md). The decoder
checks each line, converts its price-like fields from currency units to integer ticks with the
instrument's tick size, stamps it with the sequencer's ``seq`` and ``ts`` and returns an engine
``Command``. The encoder turns engine events back into one JSON line each, prices as decimal
strings, keys in the event's field order, so equal events always give equal bytes.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from decimal import Decimal
from typing import IO, Any, NamedTuple

import msgspec

from tradingfloor.core.limits import INT64_MAX, INT64_MIN
from tradingfloor.core.units import UnitError, from_ticks, parse_decimal, to_ticks
from tradingfloor.exchange.engine.commands import AddInstrument, Command
from tradingfloor.exchange.engine.events import Event, InstrumentAdded
from tradingfloor.exchange.intake import command_problem

__all__ = [
    "COMMAND_TYPES",
    "MAX_LINE_BYTES",
    "PRICE_FIELDS",
    "CommandDecoder",
    "EventEncoder",
    "InputError",
    "SequencedCommand",
    "encode_input_error",
    "read_lines",
]

MAX_LINE_BYTES = 64 * 1024
"""Longest accepted command line in bytes, line ending excluded."""

# Every integer of a command, prices in ticks included, must fit in a signed 64-bit integer
# (tradingfloor.core.limits); the venue's intake check (exchange.intake) then applies to the
# whole command, its text fields included.

PRICE_FIELDS = frozenset(
    {
        "price",
        "stop_price",
        "reference_price",
        "peg_offset",
        "trail_amount",
        "limit_offset",
        "trigger_price",
    }
)
"""Fields that hold a price or price distance: decimal currency units outside, ticks inside."""

_DEFAULT_TICK_SIZE = AddInstrument(symbol="").tick_size
_PRICE_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")

COMMAND_TYPES: dict[str, type[msgspec.Struct]] = {
    typing.cast(str, cls.__struct_config__.tag): cls for cls in typing.get_args(Command)
}
"""Command classes by their ``type`` tag."""

_COMMAND_PRICE_FIELDS: dict[str, tuple[str, ...]] = {
    tag: tuple(f for f in cls.__struct_fields__ if f in PRICE_FIELDS)
    for tag, cls in COMMAND_TYPES.items()
}
_EVENT_PRICE_FIELDS: dict[type[msgspec.Struct], tuple[str, ...]] = {
    cls: tuple(f for f in cls.__struct_fields__ if f in PRICE_FIELDS)
    for cls in typing.get_args(Event)
}


class InputError(ValueError):
    """A command line that cannot be turned into an engine command; names its line number."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


class SequencedCommand(NamedTuple):
    """A decoded command with the sequence number and time the sequencer gave it."""

    seq: int
    ts: int
    command: Command


def read_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line number, raw line)`` from 1, reading at most MAX_LINE_BYTES + 1 per line.

    A longer line is yielded cut to MAX_LINE_BYTES + 1 bytes (the decoder rejects it) and the
    rest of it is skipped, so memory stays bounded whatever the input.
    """
    line_no = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES + 2)
        if not line:
            return
        line_no += 1
        if not line.endswith(b"\n") and len(line) > MAX_LINE_BYTES + 1:
            while True:
                rest = stream.readline(MAX_LINE_BYTES + 2)
                if not rest or rest.endswith(b"\n"):
                    break
        yield line_no, line


def _check_int64(line: int, where: str, value: int) -> None:
    if not INT64_MIN <= value <= INT64_MAX:
        raise InputError(line, f"{where}: {value} is out of range for a 64-bit integer")


def _parse_tick_size(line: int, value: object) -> Decimal:
    if not isinstance(value, str) or not _PRICE_TEXT.fullmatch(value):
        raise InputError(line, f"add_instrument: tick_size must be a decimal string, got {value!r}")
    tick = parse_decimal(value)
    if tick <= 0:
        raise InputError(line, f"add_instrument: tick_size must be positive, got {value!r}")
    return tick


class CommandDecoder:
    """Decodes command lines into sequenced engine commands.

    ``tick_sizes`` maps each listed symbol to its tick size. An ``add_instrument`` line lists its
    symbol unless the symbol is already listed (the engine rejects the duplicate and keeps the
    first tick size); a replay driver removes a listing the engine refused (``delist``).
    """

    def __init__(self) -> None:
        self.tick_sizes: dict[str, Decimal] = {}
        self.seq = 0
        self.ts = 0

    def delist(self, symbol: str) -> None:
        """Forget a symbol whose add_instrument the engine rejected."""
        self.tick_sizes.pop(symbol, None)

    def decode(self, line: int, raw: bytes) -> SequencedCommand | None:
        """Decode one line; None for a blank line. Raises InputError, changing nothing."""
        text = raw.rstrip(b"\r\n")
        if len(text) > MAX_LINE_BYTES:
            raise InputError(line, f"line is longer than {MAX_LINE_BYTES} bytes")
        if not text.strip():
            return None
        try:
            obj = msgspec.json.decode(text)
        except msgspec.DecodeError as exc:
            raise InputError(line, f"invalid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise InputError(line, "a command must be a JSON object")

        tag = obj.get("type")
        if tag is None:
            raise InputError(line, 'missing "type"')
        if not isinstance(tag, str) or tag not in COMMAND_TYPES:
            known = ", ".join(sorted(COMMAND_TYPES))
            raise InputError(line, f"unknown command type {tag!r} (known: {known})")
        cls = COMMAND_TYPES[tag]
        unknown = sorted(set(obj) - set(cls.__struct_fields__) - {"type", "ts"})
        if unknown:
            names = ", ".join(f"`{name}`" for name in unknown)
            raise InputError(line, f"{tag}: unknown field {names}")

        ts = self._timestamp(line, obj.pop("ts")) if "ts" in obj else self.ts
        listing: Decimal | None = None
        if tag == "add_instrument":
            listing = _parse_tick_size(line, obj.get("tick_size", _DEFAULT_TICK_SIZE))
        self._convert_prices(line, tag, obj, listing)
        for key, value in obj.items():
            if isinstance(value, int) and not isinstance(value, bool):
                _check_int64(line, f"{tag}: field `{key}`", value)
            elif isinstance(value, dict):
                for sub, item in value.items():
                    if isinstance(item, int) and not isinstance(item, bool):
                        _check_int64(line, f"{tag}: field `{key}.{sub}`", item)
        try:
            command: Command = msgspec.convert(obj, Command)
        except msgspec.ValidationError as exc:
            raise InputError(line, f"{tag}: {exc}") from None
        problem = command_problem(command)
        if problem is not None:
            raise InputError(line, f"{tag}: {problem}")

        if isinstance(command, AddInstrument) and listing is not None:
            self.tick_sizes.setdefault(command.symbol, listing)
        self.seq += 1
        self.ts = ts
        return SequencedCommand(self.seq, ts, command)

    def _timestamp(self, line: int, value: object) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise InputError(line, f"ts must be an integer (ns since epoch), got {value!r}")
        _check_int64(line, "ts", value)
        if value < self.ts:
            raise InputError(line, f"ts {value} is earlier than the previous ts {self.ts}")
        return value

    def _convert_prices(
        self, line: int, tag: str, obj: dict[str, Any], listing: Decimal | None
    ) -> None:
        fields = [f for f in _COMMAND_PRICE_FIELDS[tag] if f in obj]
        if not fields:
            return
        symbol = obj.get("symbol")
        if listing is not None:
            tick = listing
        elif not isinstance(symbol, str):
            raise InputError(line, f"{tag}: a symbol is needed to convert `{fields[0]}` to ticks")
        elif symbol not in self.tick_sizes:
            raise InputError(
                line, f"{tag}: unknown symbol {symbol!r}: list it with add_instrument first"
            )
        else:
            tick = self.tick_sizes[symbol]
        for name in fields:
            value = obj[name]
            if isinstance(value, float):
                raise InputError(
                    line, f'{tag}: field `{name}`: give prices as strings ("10.05"), not floats'
                )
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise InputError(
                    line, f"{tag}: field `{name}`: expected a decimal string, got {value!r}"
                )
            if isinstance(value, str) and not _PRICE_TEXT.fullmatch(value):
                raise InputError(
                    line, f"{tag}: field `{name}`: {value!r} is not a plain decimal number"
                )
            try:
                obj[name] = to_ticks(value, tick)
            except UnitError as exc:
                raise InputError(line, f"{tag}: field `{name}`: {exc}") from None
            except ArithmeticError:
                raise InputError(line, f"{tag}: field `{name}`: {value!r} is too large") from None


class EventEncoder:
    """Encodes engine events as JSON lines with prices as decimal strings.

    Tick sizes come from the ``instrument_added`` events themselves, so the encoder always
    agrees with the engine. Keys follow the event's field order after ``type``.
    """

    def __init__(self) -> None:
        self.tick_sizes: dict[str, Decimal] = {}

    def encode(self, event: Event) -> bytes:
        """Return one JSON line, newline included."""
        if isinstance(event, InstrumentAdded) and event.symbol not in self.tick_sizes:
            self.tick_sizes[event.symbol] = parse_decimal(event.tick_size)
        obj: dict[str, Any] = msgspec.to_builtins(event)
        fields = _EVENT_PRICE_FIELDS[type(event)]
        if fields:
            symbol = obj["symbol"]
            tick = self.tick_sizes.get(symbol)
            if tick is None:
                raise RuntimeError(f"event for unlisted symbol {symbol!r}: {event!r}")
            for name in fields:
                obj[name] = str(from_ticks(obj[name], tick))
        return msgspec.json.encode(obj) + b"\n"


def encode_input_error(error: InputError) -> bytes:
    """The ``input_error`` record written in place of a skipped line (``--skip-invalid``)."""
    record = {"type": "input_error", "line": error.line, "error": error.message}
    return msgspec.json.encode(record) + b"\n"
