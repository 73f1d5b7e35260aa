"""MoldUDP64 framing: packet layout, limits, the retransmission store and gap recovery.

The property test sends packets through a lossy network (drops, duplicates, reordering) and
lets the receiver request what it missed; it must deliver the original sequence exactly once,
in order.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradingfloor.exchange.marketdata import moldudp64 as mold
from tradingfloor.exchange.marketdata.moldudp64 import (
    GapDetector,
    MoldError,
    MoldPacket,
    Packetizer,
    RetransmissionRequest,
    RetransmissionStore,
    decode_packet,
    decode_request,
    encode_packet,
    encode_request,
)

# ------------------------------------------------------------------ layout


def test_packet_bytes() -> None:
    raw = encode_packet(MoldPacket("SESS1", 0x0102030405060708, (b"AB", b"")))
    assert raw == (
        b"SESS1     "
        + bytes.fromhex("0102030405060708")
        + bytes.fromhex("0002")
        + bytes.fromhex("0002")
        + b"AB"
        + bytes.fromhex("0000")
    )
    assert decode_packet(raw) == MoldPacket("SESS1", 0x0102030405060708, (b"AB", b""))


def test_heartbeat_and_end_of_session() -> None:
    p = Packetizer("S", next_seq=42)
    hb = encode_packet(p.heartbeat())
    assert hb == b"S         " + (42).to_bytes(8, "big") + b"\x00\x00"
    assert decode_packet(hb).heartbeat
    end = encode_packet(p.end_of_session())
    assert end[-2:] == b"\xff\xff"
    packet = decode_packet(end)
    assert packet.end_of_session and not packet.heartbeat and packet.seq == 42


def test_request_bytes() -> None:
    raw = encode_request(RetransmissionRequest("SESS1", 7, 3))
    assert raw == b"SESS1     " + (7).to_bytes(8, "big") + (3).to_bytes(2, "big")
    assert decode_request(raw) == RetransmissionRequest("SESS1", 7, 3)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"S" * 19,  # shorter than the header
        b"S         " + bytes(8) + b"\x00\x02" + b"\x00\x01A",  # second message missing
        b"S         " + bytes(8) + b"\x00\x01" + b"\x00\x05AB",  # message truncated
        b"S         " + bytes(8) + b"\x00\x01" + b"\x00\x01AB",  # trailing byte
        b"S         " + bytes(8) + b"\x00\x00" + b"X",  # heartbeat with a body
        b"S         " + b"\xff" * 8 + b"\x00\x01" + b"\x00\x01A",  # sequence overflow
    ],
)
def test_decode_packet_rejects_malformed(raw: bytes) -> None:
    with pytest.raises(MoldError):
        decode_packet(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"S         " + bytes(8) + b"\x00\x00",  # count 0
        b"S         " + bytes(8) + b"\xff\xff",  # count 0xFFFF
        b"S         " + bytes(8) + b"\x00\x01" + b"X",  # too long
        b"S" * 10,
    ],
)
def test_decode_request_rejects_malformed(raw: bytes) -> None:
    with pytest.raises(MoldError):
        decode_request(raw)


@pytest.mark.parametrize("session", ["", "ELEVENCHARS", "A B", "Ä"])
def test_bad_sessions(session: str) -> None:
    with pytest.raises(MoldError):
        Packetizer(session)
    with pytest.raises(MoldError):
        encode_request(RetransmissionRequest(session, 1, 1))


def test_encode_limits() -> None:
    with pytest.raises(MoldError):
        encode_packet(MoldPacket("S", 1, (b"x" * 0x10000,)))
    with pytest.raises(MoldError):
        encode_packet(MoldPacket("S", 1, (b"x",), end_of_session=True))
    with pytest.raises(MoldError):
        encode_packet(MoldPacket("S", -1, (b"x",)))
    with pytest.raises(MoldError):
        encode_request(RetransmissionRequest("S", 1, 0))
    with pytest.raises(MoldError):
        encode_request(RetransmissionRequest("S", 1, mold.MAX_REQUEST_COUNT + 1))
    with pytest.raises(MoldError):
        Packetizer("S", max_payload=mold.HEADER_SIZE + 2)


# ------------------------------------------------------------------ packetizer


def test_packetizer_numbers_and_splits_under_the_payload_limit() -> None:
    p = Packetizer("S", max_payload=100)
    msgs = [bytes([i]) * (i % 30 + 1) for i in range(50)]
    packets = p.pack(msgs)
    assert p.next_seq == 51
    assert [m for pk in packets for m in pk.messages] == msgs
    seq = 1
    for pk in packets:
        assert pk.seq == seq
        seq += len(pk.messages)
        assert len(encode_packet(pk)) <= 100
        assert mold.packet_size(pk.messages) == len(encode_packet(pk))
    assert len(packets) > 1


def test_packetizer_refuses_an_oversized_message_without_numbering_anything() -> None:
    p = Packetizer("S", max_payload=100)
    ok = b"x" * (100 - mold.HEADER_SIZE - 2)
    with pytest.raises(MoldError, match="exceeds"):
        p.pack([b"a", ok + b"y"])
    assert p.next_seq == 1
    assert p.pack([ok])[0].messages == (ok,)
    assert mold.MAX_MESSAGE_SIZE == mold.MAX_PAYLOAD - 22
    with pytest.raises(MoldError):
        Packetizer("S").pack([b"z" * (mold.MAX_MESSAGE_SIZE + 1)])


def test_pack_nothing() -> None:
    assert Packetizer("S").pack([]) == []


# ------------------------------------------------------------------ store


def make_store(n: int, capacity: int = 100, max_payload: int = 1400) -> RetransmissionStore:
    p = Packetizer("S", max_payload=max_payload)
    store = RetransmissionStore("S", capacity=capacity, max_payload=max_payload)
    for pk in p.pack([b"m%d" % i for i in range(1, n + 1)]):
        store.record(pk)
    return store


def test_store_answers_within_its_window() -> None:
    store = make_store(10)
    (pk,) = store.answer(RetransmissionRequest("S", 3, 4))
    assert pk == MoldPacket("S", 3, (b"m3", b"m4", b"m5", b"m6"))
    (pk,) = store.answer(RetransmissionRequest("S", 9, 100))  # clipped to what exists
    assert pk.messages == (b"m9", b"m10")
    assert store.answer(RetransmissionRequest("S", 11, 1)) == []  # not sent yet
    assert store.answer(RetransmissionRequest("OTHER", 3, 1)) == []


def test_store_is_bounded() -> None:
    store = make_store(250, capacity=100)
    assert len(store) == 100
    assert (store.first_seq, store.next_seq) == (151, 251)
    assert store.answer(RetransmissionRequest("S", 150, 5)) == []
    assert store.answer(RetransmissionRequest("S", 151, 1))[0].messages == (b"m151",)


def test_store_answer_is_limited_in_packets_and_bytes() -> None:
    store = make_store(200, capacity=1_000, max_payload=40)
    packets = store.answer(RetransmissionRequest("S", 1, 200))
    assert len(packets) == mold.MAX_RETRANSMIT_PACKETS
    assert all(len(encode_packet(pk)) <= 40 for pk in packets)
    assert [m for pk in packets for m in pk.messages] == [
        b"m%d" % i for i in range(1, packets[-1].next_seq)
    ]


def test_store_refuses_a_gap_or_another_session() -> None:
    store = RetransmissionStore("S")
    store.record(MoldPacket("S", 5, (b"a",)))
    with pytest.raises(MoldError):
        store.record(MoldPacket("S", 7, (b"b",)))
    with pytest.raises(MoldError):
        store.record(MoldPacket("T", 6, (b"b",)))
    store.record(MoldPacket("S", 6, ()))  # a heartbeat adds nothing
    assert (store.first_seq, store.next_seq) == (5, 6)


# ------------------------------------------------------------------ receiver


def test_in_order_delivery_and_duplicates() -> None:
    g = GapDetector()
    assert g.on_packet(MoldPacket("S", 1, (b"a", b"b"))) == [b"a", b"b"]
    assert g.on_packet(MoldPacket("S", 1, (b"a", b"b", b"c"))) == [b"c"]
    assert g.duplicates == 2
    assert g.gap() is None and g.next_seq == 4


def test_gap_is_reported_buffered_and_filled() -> None:
    g = GapDetector()
    g.on_packet(MoldPacket("S", 1, (b"a",)))
    assert g.on_packet(MoldPacket("S", 4, (b"d", b"e"))) == []
    assert g.gap() == (2, 2)
    assert g.request() == RetransmissionRequest("S", 2, 2)
    assert g.on_packet(MoldPacket("S", 3, (b"c",))) == []
    assert g.gap() == (2, 1)
    assert g.on_packet(MoldPacket("S", 2, (b"b",))) == [b"b", b"c", b"d", b"e"]
    assert g.gap() is None and g.buffered == 0


def test_heartbeat_reveals_a_lost_tail() -> None:
    g = GapDetector()
    g.on_packet(MoldPacket("S", 1, (b"a",)))
    assert g.on_packet(MoldPacket("S", 4)) == []  # heartbeat: next is 4, so 2 and 3 are lost
    assert g.gap() == (2, 2)


def test_end_of_session() -> None:
    g = GapDetector()
    g.on_packet(MoldPacket("S", 1, (b"a",)))
    g.on_packet(MoldPacket("S", 3, (), end_of_session=True))
    assert g.ended and not g.done and g.gap() == (2, 1)
    g.on_packet(MoldPacket("S", 2, (b"b",)))
    assert g.done


def test_foreign_session_is_ignored() -> None:
    g = GapDetector(session="S")
    assert g.on_packet(MoldPacket("T", 1, (b"a",))) == []
    assert g.foreign == 1 and g.next_seq == 1 and g.gap() is None


def test_buffer_is_bounded_and_the_rest_is_requested_later() -> None:
    g = GapDetector(max_buffered=3)
    g.on_packet(MoldPacket("S", 2, tuple(b"%d" % i for i in range(2, 10))))
    assert g.buffered == 2  # seqs 2 and 3 fit the window [1, 4)
    assert g.gap() == (1, 1)
    assert g.on_packet(MoldPacket("S", 1, (b"1",))) == [b"1", b"2", b"3"]
    assert g.gap() == (4, 6)


def test_gap_request_count_is_capped() -> None:
    g = GapDetector()
    g.on_packet(MoldPacket("S", 1_000_000))
    assert g.gap() == (1, mold.MAX_REQUEST_COUNT)


def test_skip_to_gives_up_on_an_unrecoverable_range() -> None:
    g = GapDetector()
    g.on_packet(MoldPacket("S", 5, (b"e", b"f")))
    assert g.skip_to(5) == [b"e", b"f"]
    assert g.next_seq == 7 and g.gap() is None
    assert g.skip_to(3) == []


# ------------------------------------------------------------------ the property


FATES = ("deliver", "drop", "duplicate")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(max_size=30), min_size=1, max_size=120),
    st.integers(60, 300),
    st.data(),
)
def test_receiver_delivers_the_original_sequence_once_in_order(
    msgs: list[bytes], max_payload: int, data: st.DataObject
) -> None:
    packetizer = Packetizer("SESSION", max_payload=max_payload)
    store = RetransmissionStore("SESSION", max_payload=max_payload, max_packets=2)
    packets = packetizer.pack(msgs)
    for pk in packets:
        store.record(pk)
    packets.append(packetizer.end_of_session())

    # The network drops, duplicates and reorders the downstream packets.
    fates = data.draw(st.lists(st.sampled_from(FATES), min_size=len(packets)))
    wire = [pk for pk, fate in zip(packets, fates, strict=False) if fate != "drop"]
    wire += [pk for pk, fate in zip(packets, fates, strict=False) if fate == "duplicate"]
    wire = data.draw(st.permutations(wire))
    # Heartbeats and retransmitted packets are lost by repeating patterns (never all).
    patterns = st.lists(st.booleans(), max_size=8).map(lambda p: itertools.cycle([*p, False]))
    hb_lost, retransmit_lost = data.draw(patterns), data.draw(patterns)

    g = GapDetector()
    out: list[bytes] = []
    for pk in wire:
        out.extend(g.on_packet(decode_packet(encode_packet(pk))))
    # The publisher goes on heartbeating; the receiver requests whatever is missing.
    for _ in range(1_000):
        if g.next_seq == packetizer.next_seq:
            break
        if not next(hb_lost):
            out.extend(g.on_packet(decode_packet(encode_packet(packetizer.heartbeat()))))
        req = g.request()
        if req is None:
            continue
        for pk in store.answer(decode_request(encode_request(req))):
            if not next(retransmit_lost):
                out.extend(g.on_packet(decode_packet(encode_packet(pk))))
    assert out == msgs
    assert g.next_seq == len(msgs) + 1
    assert g.gap() is None and g.buffered == 0
