"""The hot-path shortcuts give exactly what the careful reference paths give.

Codec: the regex split of a body and the one-string encoding against the field-by-field loops;
orders: the tag index against plain ``get_all`` scans, the cached timestamp and price
formatting against the direct computations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradingfloor.core.units import from_ticks
from tradingfloor.exchange.engine.types import OrdType, Side, TimeInForce
from tradingfloor.exchange.fix import codec, orders
from tradingfloor.exchange.fix.codec import (
    _RAW_DATA_TAGS,
    SOH,
    Message,
    _checksum,
    _encode_fields,
    _parse_fields,
    _parse_fields_careful,
    encode,
    parse_utc_timestamp,
)

_RAW_LEN_TAGS = sorted(_RAW_DATA_TAGS)
_tags = st.one_of(
    st.integers(min_value=1, max_value=999_999_999),
    st.sampled_from([*_RAW_LEN_TAGS, *_RAW_DATA_TAGS.values(), 35, 49, 56, 58]),
)
# latin-1 values, SOH, "=" and digits (length fields) included, sometimes empty
_values = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0xFF), max_size=12),
    st.sampled_from(["", "0", "3", "12", "a=b", "x=", "\x01", "a\x01b"]),
    st.integers(min_value=0, max_value=20).map(str),
)
_plain_fields = st.lists(st.tuples(_tags, _values), max_size=6)


@st.composite
def _data_pair(draw: st.DrawFn) -> list[tuple[int, str]]:
    """A length field and its data field: the data of that length or not, SOH and "=" likely."""
    length_tag = draw(st.sampled_from(_RAW_LEN_TAGS))
    data = draw(st.text(alphabet="a=\x01", max_size=6))
    declared = draw(st.sampled_from([len(data), len(data) + 1, max(0, len(data) - 1)]))
    data_tag = draw(st.sampled_from([_RAW_DATA_TAGS[length_tag], 58]))
    return [(length_tag, str(declared)), (data_tag, data)]


_field_lists = st.lists(st.one_of(_plain_fields, _data_pair()), max_size=3).map(
    lambda chunks: [field for chunk in chunks for field in chunk]
)


def _careful_encode(
    begin_string: str,
    msg_type: str,
    header: Sequence[tuple[int, str]],
    body: Sequence[tuple[int, str]],
) -> bytes:
    """``encode`` as it was before the one-string fast path (the reference)."""
    if not msg_type:
        raise ValueError("empty MsgType")
    parts: list[bytes] = [b"35=", msg_type.encode("latin-1"), SOH]
    _encode_fields(parts, header)
    _encode_fields(parts, body)
    payload = b"".join(parts)
    frame = b"8=%b\x019=%d\x01%b" % (begin_string.encode("latin-1"), len(payload), payload)
    return b"%b10=%03d\x01" % (frame, sum(frame) & 0xFF)


def _outcome(fn: Callable[..., object], *args: object) -> tuple[str, object]:
    try:
        return "ok", fn(*args)
    except (ValueError, UnicodeEncodeError) as exc:
        return type(exc).__name__, str(exc)


@settings(max_examples=400, deadline=None)
@given(header=_field_lists, body=_field_lists, msg_type=st.sampled_from(["D", "8", "AE", "x=y"]))
def test_property_encode_equals_careful_encode(
    header: list[tuple[int, str]], body: list[tuple[int, str]], msg_type: str
) -> None:
    assert _outcome(encode, "FIX.4.4", msg_type, header, body) == _outcome(
        _careful_encode, "FIX.4.4", msg_type, header, body
    )


def test_encode_non_latin1_value_raises_as_before() -> None:
    for body in ([(58, "caf\u20ac")], [(58, ""), (59, "\u20ac")], [(58, "\u20ac"), (59, "")]):
        assert _outcome(encode, "FIX.4.4", "D", [], body) == _outcome(
            _careful_encode, "FIX.4.4", "D", [], body
        )


def _raw_body(fields: Sequence[tuple[bytes, bytes]], ending: bytes) -> bytes:
    return b"".join(tag + b"=" + value + b"\x01" for tag, value in fields) + ending


_raw_tags = st.one_of(
    st.integers(min_value=1, max_value=999_999_999).map(lambda n: str(n).encode()),
    st.sampled_from([b"0", b"01", b"1234567890", b"", b"a", b"35", b"9x", b"\x01"]),
    st.sampled_from([str(tag).encode() for tag in _RAW_LEN_TAGS]),
)
_raw_values = st.one_of(
    st.binary(max_size=10), st.sampled_from([b"", b"2", b"5", b"=", b"a\x01b", b"\x01\x01"])
)


@settings(max_examples=500, deadline=None)
@given(
    fields=st.lists(st.tuples(_raw_tags, _raw_values), max_size=10),
    ending=st.sampled_from([b"", b"58", b"58=x", b"=\x01", b"\x01"]),
)
def test_property_parse_fields_equals_careful_parse(
    fields: list[tuple[bytes, bytes]], ending: bytes
) -> None:
    body = _raw_body(fields, ending)
    assert _parse_fields(body) == _parse_fields_careful(body)


@settings(max_examples=300, deadline=None)
@given(fields=_field_lists)
def test_property_encoded_bodies_split_the_same(fields: list[tuple[int, str]]) -> None:
    body = b"".join(b"%d=%b\x01" % (tag, value.encode("latin-1")) for tag, value in fields)
    assert _parse_fields(body) == _parse_fields_careful(body)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2000))
def test_property_checksum_is_the_byte_sum(data: bytes) -> None:
    assert _checksum(data) == sum(data) % 256
    assert _checksum(memoryview(data)) == sum(data) % 256
    assert _checksum(bytearray(data)) == sum(data) % 256


def test_checksum_of_large_and_all_ff_frames() -> None:
    for size in (255, 256, 257, 511, 512, 513, 65_536):
        data = b"\xff" * size
        assert _checksum(data) == sum(data) % 256


# --- timestamps -------------------------------------------------------------------------------


def _reference_format(ts_ns: int) -> str:
    secs, sub = divmod(ts_ns, 1_000_000_000)
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=secs)
    return f"{moment:%Y%m%d-%H:%M:%S}.{sub // 1_000_000:03d}"


@settings(max_examples=300, deadline=None)
@given(
    stamps=st.lists(
        st.integers(min_value=0, max_value=4_102_444_800_000_000_000), min_size=1, max_size=6
    )
)
def test_property_cached_timestamp_formatting(stamps: list[int]) -> None:
    for ns in [*stamps, *(s + 1 for s in stamps), *stamps]:  # the cache hit and miss alike
        assert orders._format_utc_timestamp(ns) == _reference_format(ns)
        assert codec.utc_timestamp(ns) == _reference_format(ns)


@pytest.mark.parametrize(
    "texts",
    [
        ["20240102-03:04:05", "20240102-03:04:05.123", "20240102-03:04:05.123456"],
        ["20240230-03:04:05.000", "20240102-03:04:05.000", "20240230-03:04:05.999"],
        ["20241231-23:59:60.500", "20241231-23:59:60", "20250101-00:00:00"],
        ["20240102-24:00:00.000", "20240102-23:00:00.000", "20240102-24:00:00.001"],
    ],
)
def test_cached_timestamp_parsing_validates_every_call(texts: list[str]) -> None:
    def direct(text: str) -> tuple[str, object]:
        codec._parse_cache = ("", 0)  # no cache: the computation itself
        return _outcome(parse_utc_timestamp, text)

    expected = [direct(text) for text in texts]
    codec._parse_cache = ("", 0)
    assert [_outcome(parse_utc_timestamp, text) for text in texts * 2] == expected * 2


# --- orders: the tag index --------------------------------------------------------------------


class _Plain:
    """A ``FixFields`` without ``fields``: the parsers read it through its own methods."""

    def __init__(self, msg: Message) -> None:
        self._msg = msg

    @property
    def msg_type(self) -> str:
        return self._msg.msg_type

    @property
    def seq_num(self) -> int:
        return self._msg.seq_num

    def get(self, tag: int) -> str | None:
        return self._msg.get(tag)

    def get_all(self, tag: int) -> list[str]:
        return self._msg.get_all(tag)

    def has(self, tag: int) -> bool:
        return self._msg.has(tag)


_ORDER_TAGS = [11, 55, 54, 38, 40, 44, 99, 59, 1, 18, 211, 110, 111, 126, 1138, 1094, 37, 41]
_order_values = st.sampled_from(["", "1", "2", "3", "0", "P", "M a", "10.00", "10.005", "x", "-1"])


@settings(max_examples=400, deadline=None)
@given(
    fields=st.lists(st.tuples(st.sampled_from(_ORDER_TAGS), _order_values), max_size=14),
    msg_type=st.sampled_from(["D", "F", "G", "H", "q"]),
)
def test_property_indexed_parsing_equals_plain_parsing(
    fields: list[tuple[int, str]], msg_type: str
) -> None:
    msg = Message(((35, msg_type), (34, "7"), *fields))
    plain = _Plain(msg)
    ticks = {"1": Decimal("0.01"), "x": Decimal("5")}
    assert orders.parse_new_order(msg, "M1", ticks) == orders.parse_new_order(plain, "M1", ticks)
    assert orders.parse_cancel(msg, "M1") == orders.parse_cancel(plain, "M1")
    assert orders.parse_replace(msg, "M1", ticks) == orders.parse_replace(plain, "M1", ticks)
    assert orders.parse_status(msg, "M1") == orders.parse_status(plain, "M1")
    assert orders.parse_mass_cancel(msg, "M1") == orders.parse_mass_cancel(plain, "M1")
    indexed = orders._indexed(msg)
    for tag in {*_ORDER_TAGS, 35, 34, 12345}:
        assert indexed.get(tag) == msg.get(tag)
        assert indexed.get_all(tag) == msg.get_all(tag)
        assert indexed.has(tag) == msg.has(tag)


# --- orders: price formatting -----------------------------------------------------------------


def _result(fn: Callable[..., object], *args: object) -> tuple[str, object]:
    """What ``fn`` returns, or the type of what it raises (huge values overflow the context)."""
    try:
        return "ok", fn(*args)
    except ArithmeticError as exc:
        return type(exc).__name__, None


def _reference_avg_px(tick: Decimal, notional: int, cum_qty: int) -> str:
    exponent = tick.as_tuple().exponent
    assert isinstance(exponent, int)
    avg = (tick * notional / cum_qty).quantize(Decimal(1).scaleb(exponent - 4), ROUND_HALF_EVEN)
    at_tick = avg.quantize(tick)
    return f"{at_tick:f}" if at_tick == avg else f"{avg.normalize():f}"


_ticks = st.sampled_from(
    [
        *("0.01", "0.0001", "0.05", "1", "5", "0.25", "0.010", "1E+1", "0.0000000001"),
        *("0.1234567891", "0.123456789123", "1.00000000000000"),
    ]
).map(Decimal)


@settings(max_examples=400, deadline=None)
@given(
    tick=_ticks,
    price=st.one_of(
        st.integers(min_value=-(10**9), max_value=10**9),
        st.integers(min_value=-(10**22), max_value=10**22),
    ),
    qty=st.integers(min_value=1, max_value=10**6),
    extra=st.integers(min_value=0, max_value=3),
)
def test_property_cached_prices_equal_direct_formatting(
    tick: Decimal, price: int, qty: int, extra: int
) -> None:
    reporter = orders.ExecutionReporter({"S": tick})

    def direct_px(ticks: int) -> str:
        return f"{from_ticks(ticks, tick):f}"

    for ticks in (price, price, price + 1):  # a cache miss, a hit, a miss
        assert _result(reporter._px, "S", ticks) == _result(direct_px, ticks)
    o = orders._Order(
        1, "S", "m", "", "c", Side.BUY, OrdType.LIMIT, TimeInForce.DAY, qty, qty, 0, 0, 0, 0
    )
    for notional in (price * qty, price * qty + extra):
        o.notional = notional
        assert _result(reporter._avg_px, o) == _result(_reference_avg_px, tick, notional, qty)
