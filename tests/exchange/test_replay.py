"""The offline replay driver: engine and codec agree on which symbols are listed."""

from __future__ import annotations

import io

import msgspec
import pytest

from tradingfloor.exchange.jsonl import InputError
from tradingfloor.exchange.replay import Replay

REFUSED = b'{"type":"add_instrument","symbol":"X","tick_size":"0.01","lot_size":0}\n'
LISTED = b'{"type":"add_instrument","symbol":"X","tick_size":"0.05"}\n'
ORDER = (
    b'{"type":"new_order","symbol":"X","member":"m","cl_ord_id":"1","side":"buy",'
    b'"qty":10,"price":"1.05"}\n'
)


def events(replay: Replay, data: bytes) -> list[dict[str, object]]:
    out = io.BytesIO()
    replay.run(io.BytesIO(data), out)
    return [msgspec.json.decode(line) for line in out.getvalue().splitlines()]


def test_refused_listing_does_not_fix_the_tick_size() -> None:
    replay = Replay()
    out = events(replay, REFUSED + LISTED + ORDER)
    assert out[0]["type"] == "rejected" and out[0]["code"] == 1007
    accepted = [e for e in out if e["type"] == "accepted"]
    assert accepted and accepted[0]["price"] == "1.05"
    assert replay.engine.l1("X")[0] == 21


def test_price_for_refused_symbol_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown symbol 'X'") as info:
        events(Replay(), REFUSED + ORDER)
    assert info.value.line == 2


def test_stats_count_commands_events_and_input_errors() -> None:
    errors: list[InputError] = []
    replay = Replay(skip_invalid=True, on_input_error=errors.append)
    out = events(replay, LISTED + b"\n" + b"{}\n" + ORDER)
    assert [e.line for e in errors] == [3]
    assert out[-1]["type"] != "input_error"
    assert replay.stats.commands == 2
    assert replay.stats.input_errors == 1
    assert replay.stats.events == len(out) - 1
    assert replay.engine.last_seq == 2
