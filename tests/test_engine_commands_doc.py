"""docs/engine-commands.md says exactly what the code does: fields, defaults, events, codes."""

from __future__ import annotations

import re
import typing
from enum import StrEnum
from pathlib import Path

import msgspec
import pytest

from tradingfloor.exchange.engine import types
from tradingfloor.exchange.engine.commands import AddInstrument, Command, Schedule
from tradingfloor.exchange.engine.events import Event
from tradingfloor.exchange.engine.reasons import Reject
from tradingfloor.exchange.jsonl import MAX_LINE_BYTES

DOC = (Path(__file__).resolve().parents[1] / "docs" / "engine-commands.md").read_text()

Row = list[str]


def section(title: str) -> str:
    start = DOC.index(f"\n## {title}\n")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end != -1 else len(DOC)]


def tables(text: str) -> list[list[Row]]:
    """The markdown tables of ``text``, each a list of body rows of stripped cells."""
    result: list[list[Row]] = []
    current: list[Row] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            current = None
        elif current is None:
            current = []  # the header row
            result.append(current)
        elif not set(line) <= set("|- "):
            current.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return result


def tables_by_heading(text: str) -> dict[str, list[list[Row]]]:
    """``### `name` `` heading -> the tables under it."""
    result: dict[str, list[list[Row]]] = {}
    for block in re.split(r"\n### ", text)[1:]:
        name = re.match(r"`(\w+)`", block)
        assert name is not None, block[:40]
        result[name.group(1)] = tables(block)
    return result


def names(cell: str) -> list[str]:
    return re.findall(r"`(\w+)`", cell)


def struct_classes(union: object) -> dict[str, type[msgspec.Struct]]:
    return {typing.cast(str, cls.__struct_config__.tag): cls for cls in typing.get_args(union)}


COMMANDS = struct_classes(Command)
EVENTS = struct_classes(Event)
COMMAND_TABLES = tables_by_heading(section("Commands"))
EVENT_TABLES = tables_by_heading(section("Events (output)"))


def check_fields(cls: type[msgspec.Struct], rows: list[Row]) -> None:
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    documented = [name for row in rows for name in names(row[0])]
    assert documented == [field.name for field in info.fields]
    for row, field in zip(rows, info.fields, strict=True):
        if field.required:
            assert row[2] == "required", field.name
        else:
            literal = re.fullmatch(r"`(.*)`", row[2])
            assert literal is not None, (field.name, row[2])
            assert msgspec.json.decode(literal.group(1)) == msgspec.to_builtins(field.default)


def test_every_command_is_documented() -> None:
    assert set(COMMAND_TABLES) == set(COMMANDS)


@pytest.mark.parametrize("tag", sorted(COMMANDS))
def test_command_fields_and_defaults(tag: str) -> None:
    tables = COMMAND_TABLES[tag]
    cls = COMMANDS[tag]
    if not cls.__struct_fields__:
        assert tables == []
        return
    check_fields(cls, tables[0])
    if cls is AddInstrument:
        check_fields(Schedule, tables[1])


def test_every_event_is_documented() -> None:
    assert set(EVENT_TABLES) == set(EVENTS) | {"input_error"}


@pytest.mark.parametrize("tag", sorted(EVENTS))
def test_event_fields_in_output_order(tag: str) -> None:
    (rows,) = EVENT_TABLES[tag]
    documented = [name for row in rows for name in names(row[0])]
    assert documented == list(EVENTS[tag].__struct_fields__)


def test_rejection_codes_table() -> None:
    (rows,) = tables(section("Rejection codes"))
    documented = [(int(code), name.strip("`"), text) for code, name, text in rows]
    assert documented == [(int(r), r.name, r.text) for r in Reject]


ENUMS: dict[str, type[StrEnum]] = {
    "side": types.Side,
    "order type": types.OrdType,
    "time in force": types.TimeInForce,
    "peg type": types.PegType,
    "post-only mode": types.PostOnly,
    "STP mode": types.STPMode,
    "STP scope": types.STPScope,
    "phase": types.Phase,
    "band action": types.BandAction,
    "cancel reason": types.CancelReason,
}


def test_enumerations_table() -> None:
    (table,) = tables(section("Enumerations"))
    rows = {cells[0]: cells[1] for cells in table}
    assert set(rows) == set(ENUMS)
    for name, enum in ENUMS.items():
        assert re.findall(r"`(\w+)`", rows[name]) == [member.value for member in enum], name


def test_line_limit_is_the_documented_one() -> None:
    assert f"{MAX_LINE_BYTES:,} bytes" in DOC
