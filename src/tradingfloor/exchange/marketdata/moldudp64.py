"""MoldUDP64-style framing: sequenced packets of messages, heartbeats, retransmission and gaps.

A downstream packet is a 20-byte header (session: 10 ASCII bytes, space padded; sequence number
of its first message: uint64; message count: uint16) followed by ``count`` message blocks, each a
uint16 length and that many payload bytes, all big-endian. Count 0 is a heartbeat and count
0xFFFF the end of the session; both carry the next sequence number the sender will use. A
retransmission request is the bare 20-byte header: session, first sequence number wanted and
how many messages; the answer is ordinary downstream packets sent to the requester.

``Packetizer`` numbers messages and packs them into packets of at most ``MAX_PAYLOAD`` bytes;
``RetransmissionStore`` keeps the last ``RETRANSMISSION_CAPACITY`` messages and answers requests;
``GapDetector`` is the receiving side: it delivers each message once and in order, buffers those
that arrive early, and says which range to request when something is missing. All pure: the
sockets are in ``udpfeed``. Details in ``docs/itch.md``.
"""

from __future__ import annotations

import heapq
import struct
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Final

import msgspec

__all__ = [
    "END_OF_SESSION_COUNT",
    "HEADER_SIZE",
    "MAX_BUFFERED_MESSAGES",
    "MAX_MESSAGE_SIZE",
    "MAX_PAYLOAD",
    "MAX_REQUEST_COUNT",
    "MAX_RETRANSMIT_PACKETS",
    "RETRANSMISSION_CAPACITY",
    "SESSION_LEN",
    "GapDetector",
    "MoldError",
    "MoldPacket",
    "Packetizer",
    "RetransmissionRequest",
    "RetransmissionStore",
    "decode_packet",
    "decode_request",
    "encode_packet",
    "encode_request",
    "packet_size",
]

SESSION_LEN: Final = 10
HEADER_SIZE: Final = 20  # session (10) + sequence number (8) + message count (2)
BLOCK_HEADER_SIZE: Final = 2  # the uint16 length before each message
MAX_PAYLOAD: Final = 1400  # bytes of one UDP datagram, header included: fits a 1500-byte MTU
MAX_MESSAGE_SIZE: Final = MAX_PAYLOAD - HEADER_SIZE - BLOCK_HEADER_SIZE
END_OF_SESSION_COUNT: Final = 0xFFFF
MAX_REQUEST_COUNT: Final = 0xFFFE  # messages one request may ask for
RETRANSMISSION_CAPACITY: Final = 100_000  # messages a store keeps for retransmission
MAX_RETRANSMIT_PACKETS: Final = 16  # packets sent back for one request at most
MAX_BUFFERED_MESSAGES: Final = 100_000  # ahead-of-sequence messages a receiver keeps
_MAX_SEQ: Final = 0xFFFF_FFFF_FFFF_FFFF

_HEADER: Final = struct.Struct(">10sQH")
_BLOCK: Final = struct.Struct(">H")


class MoldError(ValueError):
    """A packet or request is malformed, or a message does not fit the framing limits."""


class MoldPacket(msgspec.Struct, frozen=True):
    """One downstream packet: messages ``seq``, ``seq + 1``, ... of ``session``.

    A heartbeat has no messages; an end-of-session packet has none and ``end_of_session``. For
    both, ``seq`` is the next sequence number the sender will use.
    """

    session: str
    seq: int
    messages: tuple[bytes, ...] = ()
    end_of_session: bool = False

    @property
    def heartbeat(self) -> bool:
        return not self.messages and not self.end_of_session

    @property
    def next_seq(self) -> int:
        """One past the last sequence number this packet carries (or announces)."""
        return self.seq + len(self.messages)


class RetransmissionRequest(msgspec.Struct, frozen=True):
    """Ask for ``count`` messages of ``session`` from sequence number ``seq`` on."""

    session: str
    seq: int
    count: int


def _session_bytes(session: str) -> bytes:
    try:
        raw = session.encode("ascii")
    except UnicodeEncodeError:
        raw = b""
    if not 0 < len(raw) <= SESSION_LEN or not all(0x21 <= b <= 0x7E for b in raw):
        raise MoldError(f"session {session!r}: 1 to 10 printable ASCII characters, no spaces")
    return raw.ljust(SESSION_LEN, b" ")


def _session_text(raw: bytes) -> str:
    return raw.rstrip(b" ").decode("ascii", "replace")


def packet_size(messages: Iterable[bytes]) -> int:
    """Bytes of a packet holding ``messages``."""
    return HEADER_SIZE + sum(BLOCK_HEADER_SIZE + len(m) for m in messages)


def encode_packet(packet: MoldPacket) -> bytes:
    count = END_OF_SESSION_COUNT if packet.end_of_session else len(packet.messages)
    if packet.end_of_session and packet.messages:
        raise MoldError("an end-of-session packet carries no messages")
    if count > MAX_REQUEST_COUNT and not packet.end_of_session:
        raise MoldError(f"{count} messages in one packet")
    if packet.seq < 0 or packet.seq + len(packet.messages) > _MAX_SEQ:
        raise MoldError(f"sequence number {packet.seq} out of range")
    parts = [_HEADER.pack(_session_bytes(packet.session), packet.seq, count)]
    for msg in packet.messages:
        if len(msg) > 0xFFFF:
            raise MoldError(f"message of {len(msg)} bytes: the length field is uint16")
        parts.append(_BLOCK.pack(len(msg)))
        parts.append(msg)
    return b"".join(parts)


def decode_packet(buf: bytes | bytearray | memoryview) -> MoldPacket:
    """Parse a downstream packet; ``MoldError`` if it is truncated or has trailing bytes."""
    data = bytes(buf)
    if len(data) < HEADER_SIZE:
        raise MoldError(f"packet of {len(data)} bytes is shorter than the header")
    session, seq, count = _HEADER.unpack_from(data)
    if count in (0, END_OF_SESSION_COUNT):
        if len(data) != HEADER_SIZE:
            raise MoldError("heartbeat or end-of-session packet with a body")
        return MoldPacket(_session_text(session), seq, (), count == END_OF_SESSION_COUNT)
    if seq + count > _MAX_SEQ:
        raise MoldError(f"sequence number {seq} + {count} overflows")
    messages = []
    pos = HEADER_SIZE
    for _ in range(count):
        if pos + BLOCK_HEADER_SIZE > len(data):
            raise MoldError("packet truncated in a message length")
        (length,) = _BLOCK.unpack_from(data, pos)
        pos += BLOCK_HEADER_SIZE
        if pos + length > len(data):
            raise MoldError("packet truncated in a message")
        messages.append(data[pos : pos + length])
        pos += length
    if pos != len(data):
        raise MoldError(f"{len(data) - pos} trailing bytes after {count} messages")
    return MoldPacket(_session_text(session), seq, tuple(messages))


def encode_request(request: RetransmissionRequest) -> bytes:
    if not 0 < request.count <= MAX_REQUEST_COUNT:
        raise MoldError(f"request count {request.count} not in 1..{MAX_REQUEST_COUNT}")
    if not 0 <= request.seq <= _MAX_SEQ - request.count:
        raise MoldError(f"request sequence number {request.seq} out of range")
    return _HEADER.pack(_session_bytes(request.session), request.seq, request.count)


def decode_request(buf: bytes | bytearray | memoryview) -> RetransmissionRequest:
    data = bytes(buf)
    if len(data) != HEADER_SIZE:
        raise MoldError(f"request of {len(data)} bytes, expected {HEADER_SIZE}")
    session, seq, count = _HEADER.unpack(data)
    if not 0 < count <= MAX_REQUEST_COUNT:
        raise MoldError(f"request count {count} not in 1..{MAX_REQUEST_COUNT}")
    return RetransmissionRequest(_session_text(session), seq, count)


def _split(messages: Sequence[bytes], max_payload: int) -> list[list[bytes]]:
    """Group ``messages`` in order into packets of at most ``max_payload`` bytes."""
    groups: list[list[bytes]] = []
    current: list[bytes] = []
    size = HEADER_SIZE
    for msg in messages:
        need = BLOCK_HEADER_SIZE + len(msg)
        if current and (size + need > max_payload or len(current) == MAX_REQUEST_COUNT):
            groups.append(current)
            current, size = [], HEADER_SIZE
        current.append(msg)
        size += need
    if current:
        groups.append(current)
    return groups


def _check_limits(max_payload: int) -> None:
    if not HEADER_SIZE + BLOCK_HEADER_SIZE < max_payload <= 0xFFFF:
        raise MoldError(f"max payload {max_payload} out of range")


class Packetizer:
    """Numbers messages from ``next_seq`` on and packs them into packets of one session."""

    def __init__(self, session: str, max_payload: int = MAX_PAYLOAD, next_seq: int = 1) -> None:
        _session_bytes(session)
        _check_limits(max_payload)
        self.session = session
        self.max_payload = max_payload
        self.next_seq = next_seq

    def pack(self, messages: Sequence[bytes]) -> list[MoldPacket]:
        """Packets carrying ``messages`` in order; ``MoldError`` (nothing numbered) if one
        message cannot fit a packet on its own."""
        limit = self.max_payload - HEADER_SIZE - BLOCK_HEADER_SIZE
        for msg in messages:
            if len(msg) > limit:
                raise MoldError(f"message of {len(msg)} bytes exceeds {limit}")
        out = []
        for group in _split(messages, self.max_payload):
            out.append(MoldPacket(self.session, self.next_seq, tuple(group)))
            self.next_seq += len(group)
        return out

    def heartbeat(self) -> MoldPacket:
        return MoldPacket(self.session, self.next_seq)

    def end_of_session(self) -> MoldPacket:
        return MoldPacket(self.session, self.next_seq, (), True)


class RetransmissionStore:
    """The last ``capacity`` messages of a session, to answer retransmission requests."""

    def __init__(
        self,
        session: str,
        capacity: int = RETRANSMISSION_CAPACITY,
        max_payload: int = MAX_PAYLOAD,
        max_packets: int = MAX_RETRANSMIT_PACKETS,
    ) -> None:
        _session_bytes(session)
        _check_limits(max_payload)
        if capacity < 1 or max_packets < 1:
            raise MoldError("capacity and max_packets must be positive")
        self.session = session
        self.capacity = capacity
        self.max_payload = max_payload
        self.max_packets = max_packets
        self._messages: deque[bytes] = deque(maxlen=capacity)
        self._next_seq: int | None = None

    @property
    def first_seq(self) -> int:
        """The oldest sequence number still kept (``next_seq`` when empty)."""
        return self.next_seq - len(self._messages)

    @property
    def next_seq(self) -> int:
        return 1 if self._next_seq is None else self._next_seq

    def __len__(self) -> int:
        return len(self._messages)

    def record(self, packet: MoldPacket) -> None:
        """Keep a sent packet's messages; packets must follow each other without gaps."""
        if packet.session != self.session:
            raise MoldError(f"packet of session {packet.session!r} in store {self.session!r}")
        if self._next_seq is None:
            self._next_seq = packet.seq
        if packet.seq != self._next_seq:
            raise MoldError(f"packet starts at {packet.seq}, expected {self._next_seq}")
        self._messages.extend(packet.messages)
        self._next_seq += len(packet.messages)

    def answer(self, request: RetransmissionRequest) -> list[MoldPacket]:
        """The packets answering ``request``: from its first message on, as many as fit in
        ``max_packets`` packets. Empty for another session or a range no longer (or not yet)
        kept: a client that cannot be served must resynchronise another way."""
        first = self.first_seq
        if request.session != self.session or not first <= request.seq < self.next_seq:
            return []
        end = min(request.seq + request.count, self.next_seq)
        wanted = [self._messages[i - first] for i in range(request.seq, end)]
        out = []
        seq = request.seq
        for group in _split(wanted, self.max_payload)[: self.max_packets]:
            out.append(MoldPacket(self.session, seq, tuple(group)))
            seq += len(group)
        return out


class GapDetector:
    """Receives packets in any order, delivers messages once and in sequence order.

    ``next_seq`` is the next message to deliver; ``high_water`` is one past the highest
    sequence number known to exist (from messages, heartbeats or the end of session). Messages
    ahead of ``next_seq`` are buffered (at most ``max_buffered``, the rest dropped and asked
    for again later); ``gap()`` names the first missing range. The first packet fixes the
    session unless one is given; packets of other sessions are counted and ignored.
    """

    def __init__(
        self,
        session: str | None = None,
        next_seq: int = 1,
        max_buffered: int = MAX_BUFFERED_MESSAGES,
    ) -> None:
        self.session = session
        self.next_seq = next_seq
        self.high_water = next_seq
        self.max_buffered = max_buffered
        self.ended = False  # an end-of-session packet was seen
        self.duplicates = 0
        self.foreign = 0  # packets of another session
        self._buffer: dict[int, bytes] = {}
        self._heap: list[int] = []  # buffered sequence numbers (lazily cleaned)

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def done(self) -> bool:
        """The session ended and every message up to its end was delivered."""
        return self.ended and self.next_seq >= self.high_water

    def on_packet(self, packet: MoldPacket) -> list[bytes]:
        """Take one packet; return the messages now deliverable, in sequence order."""
        if self.session is None:
            self.session = packet.session
        elif packet.session != self.session:
            self.foreign += 1
            return []
        if packet.end_of_session:
            self.ended = True
        self.high_water = max(self.high_water, packet.next_seq)
        out: list[bytes] = []
        seq = packet.seq
        for msg in packet.messages:
            if seq < self.next_seq or seq in self._buffer:
                self.duplicates += 1
            elif seq == self.next_seq:
                out.append(msg)
                self.next_seq += 1
                self._drain(out)
            elif seq < self.next_seq + self.max_buffered:
                self._buffer[seq] = msg
                heapq.heappush(self._heap, seq)
            seq += 1
        return out

    def _drain(self, out: list[bytes]) -> None:
        buffer = self._buffer
        while self.next_seq in buffer:
            out.append(buffer.pop(self.next_seq))
            self.next_seq += 1
        heap = self._heap
        while heap and heap[0] < self.next_seq:
            heapq.heappop(heap)

    def gap(self) -> tuple[int, int] | None:
        """``(first missing sequence number, count)`` of the first gap, or None."""
        if self.next_seq >= self.high_water:
            return None
        end = self._heap[0] if self._heap else self.high_water
        return self.next_seq, min(end - self.next_seq, MAX_REQUEST_COUNT)

    def request(self) -> RetransmissionRequest | None:
        """The retransmission request for the first gap, or None."""
        gap = self.gap()
        if gap is None or self.session is None:
            return None
        return RetransmissionRequest(self.session, gap[0], gap[1])

    def skip_to(self, seq: int) -> list[bytes]:
        """Give up on everything before ``seq`` (recovered another way); returns the buffered
        messages that become deliverable from ``seq`` on."""
        if seq <= self.next_seq:
            return []
        for s in [s for s in self._buffer if s < seq]:
            del self._buffer[s]
        self.next_seq = seq
        self.high_water = max(self.high_water, seq)
        out: list[bytes] = []
        self._drain(out)
        return out
