"""Tests of the FIX wire codec: encoding, stream framing and verification, timestamps."""

from __future__ import annotations

import pytest
import simplefix
from hypothesis import given, settings
from hypothesis import strategies as st

from tradingfloor.exchange.fix.codec import (
    _RAW_DATA_TAGS,
    MAX_MESSAGE_BYTES,
    DecodeError,
    Message,
    StreamDecoder,
    decode_message,
    encode,
    parse_utc_timestamp,
    utc_timestamp,
)

HEADER = [(49, "M1"), (56, "TFEX"), (34, "7"), (52, "20240102-03:04:05.678")]
BODY = [(11, "ord-1"), (55, "ACME"), (54, "1"), (38, "100"), (44, "10.25")]


def sample(body: list[tuple[int, str]] | None = None, msg_type: str = "D") -> bytes:
    return encode("FIX.4.4", msg_type, HEADER, BODY if body is None else body)


def with_checksum(frame_without_checksum: bytes) -> bytes:
    return frame_without_checksum + b"10=%03d\x01" % (sum(frame_without_checksum) % 256)


def test_encode_matches_simplefix_byte_for_byte() -> None:
    ref = simplefix.FixMessage()
    ref.append_pair(8, "FIX.4.4")
    ref.append_pair(35, "D")
    for tag, value in HEADER + BODY:
        ref.append_pair(tag, value)
    assert sample() == ref.encode()


def test_encode_layout_and_checksum() -> None:
    raw = sample()
    assert raw.startswith(b"8=FIX.4.4\x019=")
    body_start = raw.index(b"35=")
    body_end = raw.index(b"10=")
    assert int(raw[raw.index(b"9=") + 2 : body_start - 1]) == body_end - body_start
    assert raw[body_end:] == b"10=%03d\x01" % (sum(raw[:body_end]) % 256)


def test_decode_round_trip_and_accessors() -> None:
    msg = decode_message(sample([*BODY, (448, "A"), (448, "B")]))
    assert msg.msg_type == "D"
    assert msg.seq_num == 7
    assert msg.fields[0] == (35, "D")
    assert msg.fields[1:] == (*HEADER, *BODY, (448, "A"), (448, "B"))
    assert msg.get(55) == "ACME"
    assert msg.get(999) is None
    assert msg.get_all(448) == ["A", "B"]
    assert msg.has(44)
    assert not msg.has(99)


def test_seq_num_missing_or_bad_raises() -> None:
    with pytest.raises(ValueError):
        _ = Message(((35, "0"),)).seq_num
    with pytest.raises(ValueError):
        _ = Message(((35, "0"), (34, "1x"))).seq_num
    with pytest.raises(ValueError):
        _ = Message(((35, "0"), (34, "\u00b2"))).seq_num  # a latin-1 "digit" that is not 0-9


def test_encode_refuses_empty_value_and_soh() -> None:
    with pytest.raises(ValueError, match="empty"):
        encode("FIX.4.4", "D", HEADER, [(58, "")])
    with pytest.raises(ValueError, match="SOH"):
        encode("FIX.4.4", "D", HEADER, [(58, "a\x01b")])


def test_raw_data_field_may_hold_soh() -> None:
    raw = encode("FIX.4.4", "B", HEADER, [(95, "3"), (96, "a\x01b"), (58, "x")])
    assert decode_message(raw).get(96) == "a\x01b"
    with pytest.raises(ValueError, match="length field"):
        encode("FIX.4.4", "B", HEADER, [(95, "4"), (96, "a\x01b")])
    with pytest.raises(ValueError, match="SOH"):
        encode("FIX.4.4", "B", HEADER, [(95, "3"), (58, "a\x01b")])  # not its data field


def test_byte_by_byte_feed_gives_the_same_messages() -> None:
    stream = sample() + sample(msg_type="F") + sample()
    decoder = StreamDecoder()
    items = [item for byte in stream for item in decoder.feed(bytes([byte]))]
    assert [m.msg_type for m in items if isinstance(m, Message)] == ["D", "F", "D"]
    assert len(items) == 3
    assert decoder.buffered == 0


def test_bad_checksum_is_garbled_and_next_message_survives() -> None:
    good = sample()
    bad = bytearray(sample())
    bad[-4:-1] = b"%03d" % ((int(bad[-4:-1]) + 1) % 256)
    items = StreamDecoder().feed(bytes(bad) + good)
    assert isinstance(items[0], DecodeError)
    assert not items[0].fatal
    assert "CheckSum" in items[0].reason
    assert items[1] == decode_message(good)
    assert len(items) == 2


def test_wrong_body_length_is_garbled_and_resynchronises() -> None:
    good = sample()
    frame = good[: good.index(b"10=")]
    head, rest = frame.split(b"\x019=", 1)
    length, payload = rest.split(b"\x01", 1)
    wrong = with_checksum(head + b"\x019=%d\x01" % (int(length) - 3) + payload)
    items = StreamDecoder().feed(wrong + good)
    errors = [i for i in items if isinstance(i, DecodeError)]
    assert errors and all(not e.fatal for e in errors)
    assert any("BodyLength" in e.reason for e in errors)
    assert [i for i in items if isinstance(i, Message)] == [decode_message(good)]


def test_garbage_between_messages_is_skipped() -> None:
    good = sample()
    items = StreamDecoder().feed(b"hello" + good + b"\x00\x01junk" + good)
    assert [i for i in items if isinstance(i, Message)] == [decode_message(good)] * 2
    assert all(not i.fatal for i in items if isinstance(i, DecodeError))


def test_wrong_begin_string_is_fatal() -> None:
    raw = encode("FIX.4.2", "0", HEADER, [])
    (item,) = StreamDecoder().feed(raw)
    assert isinstance(item, DecodeError)
    assert item.fatal
    assert "BeginString" in item.reason


def test_over_long_frame_is_fatal_before_it_arrives() -> None:
    header = b"8=FIX.4.4\x019=%d\x01" % MAX_MESSAGE_BYTES
    (item,) = StreamDecoder().feed(header + b"35=D\x01")
    assert isinstance(item, DecodeError)
    assert item.fatal
    assert "MAX_MESSAGE_BYTES" in item.reason


def test_largest_frame_is_accepted() -> None:
    prefix_len = len(sample([(58, "x")])) - 1  # everything but the one-byte text
    text = "x" * (MAX_MESSAGE_BYTES - prefix_len - 2)  # the length field gains digits
    raw = sample([(58, text)])
    while len(raw) > MAX_MESSAGE_BYTES:
        text = text[:-1]
        raw = sample([(58, text)])
    assert len(raw) == MAX_MESSAGE_BYTES
    (item,) = StreamDecoder().feed(raw)
    assert isinstance(item, Message)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"35=D\x01abc=1\x01", "tag is not a positive integer"),
        (b"35=D\x0158\x01", "without '='"),
        (b"49=X\x0135=D\x01", "third field is not MsgType"),
    ],
)
def test_malformed_fields_are_garbled(body: bytes, reason: str) -> None:
    raw = with_checksum(b"8=FIX.4.4\x019=%d\x01" % len(body) + body)
    (item,) = StreamDecoder().feed(raw)
    assert isinstance(item, DecodeError)
    assert not item.fatal
    assert reason in item.reason


def test_empty_value_decodes_for_the_session_to_reject() -> None:
    body = b"35=D\x0158=\x01"
    msg = decode_message(with_checksum(b"8=FIX.4.4\x019=%d\x01" % len(body) + body))
    assert msg.get(58) == ""


def test_decode_message_needs_exactly_one() -> None:
    with pytest.raises(ValueError):
        decode_message(sample() + sample())
    with pytest.raises(ValueError):
        decode_message(sample()[:-1])


_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), min_size=1, max_size=20
)
_fields = st.lists(
    st.tuples(
        # no length-of-data tags: a data field must then match the announced length
        st.integers(min_value=1, max_value=99999).filter(
            lambda t: t not in (8, 9, 10, 35) and t not in _RAW_DATA_TAGS
        ),
        _values,
    ),
    max_size=15,
)
_msg_types = st.sampled_from(["0", "D", "8", "AE", "j"])


@settings(max_examples=150, deadline=None)
@given(msgs=st.lists(st.tuples(_msg_types, _fields), min_size=1, max_size=4), data=st.data())
def test_property_round_trip_under_random_chunking(
    msgs: list[tuple[str, list[tuple[int, str]]]], data: st.DataObject
) -> None:
    stream = b"".join(encode("FIX.4.4", mt, [], fields) for mt, fields in msgs)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(stream)), max_size=8)))
    decoder = StreamDecoder()
    items: list[Message | DecodeError] = []
    prev = 0
    for cut in [*cuts, len(stream)]:
        items += decoder.feed(stream[prev:cut])
        prev = cut
    expected = [Message(((35, mt), *fields)) for mt, fields in msgs]
    assert items == expected


@settings(max_examples=100, deadline=None)
@given(noise=st.binary(max_size=40))
def test_property_noise_before_a_message_never_hides_it(noise: bytes) -> None:
    good = sample()
    items = StreamDecoder().feed(noise + b"\x01" + good)
    assert items[-1] == decode_message(good)


def test_utc_timestamp_format() -> None:
    ns = 1_704_164_645_678_901_234  # 2024-01-02 03:04:05.678901234 UTC
    assert utc_timestamp(ns) == "20240102-03:04:05.678"
    assert utc_timestamp(0) == "19700101-00:00:00.000"


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("20240102-03:04:05", 1_704_164_645_000_000_000),
        ("20240102-03:04:05.678", 1_704_164_645_678_000_000),
        ("20240102-03:04:05.678901", 1_704_164_645_678_901_000),
        ("20240102-03:04:05.678901234", 1_704_164_645_678_901_234),
        ("20161231-23:59:60", 1_483_228_800_000_000_000),  # leap second
    ],
)
def test_parse_utc_timestamp(text: str, ns: int) -> None:
    assert parse_utc_timestamp(text) == ns


@pytest.mark.parametrize(
    "text",
    ["", "2024010203:04:05", "20240230-00:00:00", "20240102-24:00:00", "20240102-03:04:05.1"],
)
def test_parse_utc_timestamp_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_utc_timestamp(text)


@given(st.integers(min_value=0, max_value=4_000_000_000 * 10**9))
def test_property_timestamp_round_trip_to_the_millisecond(ns: int) -> None:
    assert parse_utc_timestamp(utc_timestamp(ns)) == ns - ns % 1_000_000
