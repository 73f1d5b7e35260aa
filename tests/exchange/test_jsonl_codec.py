"""The JSON-lines edge codec: decimal prices <-> ticks, sequencing, and line-numbered errors."""

from __future__ import annotations

import io
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradingfloor.exchange.engine.commands import AddInstrument, NewOrder, ReplaceOrder, Tick
from tradingfloor.exchange.engine.events import InstrumentAdded, KillSwitchChanged, Trade
from tradingfloor.exchange.engine.types import OrdType, Phase, Side
from tradingfloor.exchange.jsonl import (
    MAX_LINE_BYTES,
    CommandDecoder,
    EventEncoder,
    InputError,
    encode_input_error,
    read_lines,
)

ACME = b'{"type":"add_instrument","symbol":"ACME","tick_size":"0.01"}'


def listed(*lines: bytes) -> CommandDecoder:
    decoder = CommandDecoder()
    for number, line in enumerate([ACME, *lines], 1):
        decoder.decode(number, line)
    return decoder


def order(**fields: object) -> bytes:
    body: dict[str, object] = {
        "type": "new_order",
        "symbol": "ACME",
        "member": "m1",
        "cl_ord_id": "c1",
        "side": "buy",
        "qty": 100,
    }
    body.update(fields)
    return msgspec.json.encode(body)


def error_of(decoder: CommandDecoder, line: int, raw: bytes) -> InputError:
    with pytest.raises(InputError) as info:
        decoder.decode(line, raw)
    assert info.value.line == line
    assert str(info.value).startswith(f"line {line}: ")
    return info.value


def test_prices_become_ticks() -> None:
    decoder = listed()
    seq = decoder.decode(2, order(price="10.05", stop_price=10, peg_offset="-0.02"))
    assert seq is not None
    assert seq.command == NewOrder(
        symbol="ACME",
        member="m1",
        cl_ord_id="c1",
        side=Side.BUY,
        qty=100,
        price=1005,
        stop_price=1000,
        peg_offset=-2,
    )


def test_add_instrument_reference_price_uses_its_own_tick_size() -> None:
    decoder = CommandDecoder()
    raw = b'{"type":"add_instrument","symbol":"BOLT","tick_size":"0.05","reference_price":"20.15"}'
    seq = decoder.decode(1, raw)
    assert seq is not None
    assert isinstance(seq.command, AddInstrument)
    assert seq.command.reference_price == 403
    assert decoder.tick_sizes == {"BOLT": Decimal("0.05")}


def test_default_tick_size_is_the_commands_default() -> None:
    decoder = CommandDecoder()
    decoder.decode(1, b'{"type":"add_instrument","symbol":"X","reference_price":"1.5"}')
    assert decoder.tick_sizes == {"X": Decimal("0.01")}


def test_seq_counts_commands_and_ts_carries_forward() -> None:
    decoder = CommandDecoder()
    first = decoder.decode(1, b'{"type":"tick"}')
    assert decoder.decode(2, b"  \r\n") is None
    second = decoder.decode(3, b'{"type":"tick","ts":500}')
    third = decoder.decode(4, b'{"ts":500,"type":"tick"}\n')
    fourth = decoder.decode(5, b'{"type":"tick"}')
    assert [(s.seq, s.ts) for s in (first, second, third, fourth) if s] == [
        (1, 0),
        (2, 500),
        (3, 500),
        (4, 500),
    ]
    assert fourth is not None and fourth.command == Tick()


def test_float_price_is_rejected_with_line_number() -> None:
    err = error_of(listed(), 7, order(price=10.05))
    assert "not floats" in err.message and "`price`" in err.message


def test_price_off_the_tick_grid_is_rejected() -> None:
    err = error_of(listed(), 3, order(price="10.005"))
    assert "not a multiple of the tick size 0.01" in err.message


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"{not json", "invalid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"symbol":"ACME"}', 'missing "type"'),
        (b'{"type":"buy_stuff"}', "unknown command type 'buy_stuff'"),
        (b'{"type":5}', "unknown command type 5"),
        (order(colour="blue"), "unknown field `colour`"),
        (order(side="long"), "Invalid enum value 'long'"),
        (order(qty=True), "Expected `int`, got `bool`"),
        (order(qty="100"), "Expected `int`, got `str`"),
        (order(price="1e3"), "not a plain decimal number"),
        (order(price="NaN"), "not a plain decimal number"),
        (order(price=True), "expected a decimal string"),
        (order(price=None), "expected a decimal string"),
        (order(symbol="NOPE", price="1.00"), "unknown symbol 'NOPE'"),
        (order(qty=2**63), "out of range"),
        (order(price=str(2**63)), "out of range"),
        (order(price="1" + "0" * 40), "too large"),
        (b'{"type":"tick","ts":1.5}', "ts must be an integer"),
        (b'{"type":"tick","ts":null}', "ts must be an integer"),
        (b'{"type":"tick","ts":-1}', "earlier than the previous ts 0"),
        (b'{"type":"add_instrument","symbol":"Z","tick_size":"0"}', "must be positive"),
        (b'{"type":"add_instrument","symbol":"Z","tick_size":0.01}', "decimal string"),
        (
            b'{"type":"add_instrument","symbol":"Z","schedule":{"pre_open":1}}',
            "missing required field `open_call`",
        ),
        (b'{"type":"cancel","member":"m1"}', "missing required field `symbol`"),
        (b'{"type":"set_reference_price","price":"1.00"}', "a symbol is needed"),
    ],
)
def test_bad_lines_are_rejected_clearly(raw: bytes, needle: str) -> None:
    decoder = listed()
    err = error_of(decoder, 9, raw)
    assert needle in err.message
    assert decoder.seq == 1, "a rejected line takes no sequence number"


def test_ts_must_not_go_back() -> None:
    decoder = CommandDecoder()
    decoder.decode(1, b'{"type":"tick","ts":100}')
    err = error_of(decoder, 2, b'{"type":"tick","ts":99}')
    assert "earlier than the previous ts 100" in err.message


def test_replace_prices_are_converted() -> None:
    decoder = listed()
    raw = (
        b'{"type":"replace","symbol":"ACME","member":"m1","cl_ord_id":"c2",'
        b'"orig_cl_ord_id":"c1","qty":50,"price":"9.99"}'
    )
    seq = decoder.decode(2, raw)
    assert seq is not None
    assert seq.command == ReplaceOrder(
        symbol="ACME", member="m1", cl_ord_id="c2", orig_cl_ord_id="c1", qty=50, price=999
    )


def test_first_listing_wins_and_delist_forgets() -> None:
    decoder = listed(b'{"type":"add_instrument","symbol":"ACME","tick_size":"0.05"}')
    assert decoder.tick_sizes["ACME"] == Decimal("0.01")
    decoder.delist("ACME")
    err = error_of(decoder, 3, order(price="1.00"))
    assert "unknown symbol" in err.message


def test_overlong_line_is_rejected() -> None:
    decoder = CommandDecoder()
    err = error_of(decoder, 1, b" " * (MAX_LINE_BYTES + 1))
    assert "longer than" in err.message
    assert decoder.decode(2, b" " * MAX_LINE_BYTES + b"\n") is None


def test_read_lines_numbers_lines_and_bounds_long_ones() -> None:
    long = b"x" * (3 * MAX_LINE_BYTES)
    stream = io.BytesIO(b'{"type":"tick"}\n' + long + b'\n{"type":"tick"}')
    lines = list(read_lines(stream))
    assert [number for number, _ in lines] == [1, 2, 3]
    assert len(lines[1][1]) == MAX_LINE_BYTES + 2
    assert lines[2][1] == b'{"type":"tick"}'


def trade(price: int) -> Trade:
    return Trade(
        seq=3,
        ts=10,
        symbol="ACME",
        trade_id=1,
        price=price,
        qty=100,
        aggressor="buy",
        maker_order_id=1,
        taker_order_id=2,
        maker_member="m1",
        taker_member="m2",
        maker_cl_ord_id="a",
        taker_cl_ord_id="b",
        maker_leaves=0,
        taker_leaves=0,
        buy_order_id=2,
        sell_order_id=1,
    )


def listed_encoder(tick: str = "0.01") -> EventEncoder:
    encoder = EventEncoder()
    added = InstrumentAdded(
        seq=1,
        ts=0,
        symbol="ACME",
        tick_size=tick,
        lot_size=1,
        currency="USD",
        phase=Phase.CONTINUOUS,
    )
    line = encoder.encode(added)
    assert line == (
        b'{"type":"instrument_added","seq":1,"ts":0,"symbol":"ACME","tick_size":"'
        + tick.encode()
        + b'","lot_size":1,"currency":"USD","phase":"continuous"}\n'
    )
    return encoder


def test_event_prices_become_decimal_strings() -> None:
    line = listed_encoder().encode(trade(1005))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    obj = msgspec.json.decode(line)
    assert list(obj)[:4] == ["type", "seq", "ts", "symbol"]
    assert obj["type"] == "trade" and obj["price"] == "10.05" and obj["qty"] == 100


def test_events_without_prices_need_no_symbol() -> None:
    line = EventEncoder().encode(KillSwitchChanged(seq=1, ts=0, member="m1", active=True))
    assert line == b'{"type":"kill_switch","seq":1,"ts":0,"member":"m1","active":true}\n'


def test_event_for_unlisted_symbol_is_a_bug() -> None:
    with pytest.raises(RuntimeError, match="unlisted symbol"):
        EventEncoder().encode(trade(1))


def test_input_error_record() -> None:
    record = encode_input_error(InputError(4, "bad"))
    assert record == b'{"type":"input_error","line":4,"error":"bad"}\n'


@given(
    ticks=st.integers(min_value=-(10**12), max_value=10**12),
    tick=st.sampled_from(["1", "0.5", "0.05", "0.01", "0.0001", "0.25"]),
)
def test_decimal_round_trip(ticks: int, tick: str) -> None:
    encoder = listed_encoder(tick)
    text = msgspec.json.decode(encoder.encode(trade(ticks)))["price"]
    decoder = CommandDecoder()
    decoder.decode(1, b'{"type":"add_instrument","symbol":"ACME","tick_size":"%s"}' % tick.encode())
    seq = decoder.decode(2, order(price=text, ord_type=OrdType.LIMIT))
    assert seq is not None and isinstance(seq.command, NewOrder)
    assert seq.command.price == ticks
