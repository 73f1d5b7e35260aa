"""The binary feed over UDP: publisher, retransmission server and receiving client (asyncio).

``FeedPublisher`` numbers messages into MoldUDP64 packets, records them in a
``RetransmissionStore`` and sends them to one address: a multicast group (sent out of the
``interface`` address, 127.0.0.1 by default, with multicast loopback on and a small TTL) or a
unicast address. When nothing was sent for a heartbeat interval it sends a heartbeat, so that a
receiver notices lost packets at the tail. ``RetransmissionServer`` answers request packets from
the store, unicast to the requester. ``FeedReceiver`` listens on the feed address (joining the
group when it is multicast), feeds a ``GapDetector``, hands each message to a callback exactly
once and in order, and asks the server for what is missing: at once for a new gap, again after
``retry_ms`` while the same gap persists.

Intervals are integer milliseconds (asyncio's timer takes them as seconds). The protocol itself
is in ``moldudp64``; ``docs/itch.md`` describes both.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Callable, Sequence
from typing import Final

from tradingfloor.exchange.marketdata.moldudp64 import (
    MAX_BUFFERED_MESSAGES,
    MAX_PAYLOAD,
    RETRANSMISSION_CAPACITY,
    GapDetector,
    MoldError,
    MoldPacket,
    Packetizer,
    RetransmissionStore,
    decode_packet,
    decode_request,
    encode_packet,
    encode_request,
)

__all__ = [
    "DEFAULT_HEARTBEAT_MS",
    "DEFAULT_RETRY_MS",
    "LOOPBACK",
    "MULTICAST_TTL",
    "Address",
    "FeedPublisher",
    "FeedReceiver",
    "RetransmissionServer",
    "is_multicast",
]

Address = tuple[str, int]

LOOPBACK: Final = "127.0.0.1"
DEFAULT_HEARTBEAT_MS: Final = 1_000
DEFAULT_RETRY_MS: Final = 250
MULTICAST_TTL: Final = 1  # 0 keeps packets on this host; 1 reaches the local network only


def is_multicast(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_multicast
    except ValueError:
        return False


def _seconds(ms: int) -> float:
    if ms <= 0:
        raise ValueError(f"interval {ms} ms must be positive")
    return ms / 1000


class _Datagrams(asyncio.DatagramProtocol):
    """Forwards datagrams to a handler and counts socket errors (e.g. ICMP unreachable)."""

    def __init__(self, handler: Callable[[bytes, Address], None] | None = None) -> None:
        self.handler = handler
        self.errors = 0

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self.handler is not None:
            self.handler(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        self.errors += 1


def _bound(transport: asyncio.DatagramTransport) -> Address:
    host, port = transport.get_extra_info("sockname")[:2]
    return str(host), int(port)


class FeedPublisher:
    """Sends numbered packets of one session to ``target`` and heartbeats when idle."""

    def __init__(
        self,
        transport: asyncio.DatagramTransport,
        protocol: _Datagrams,
        target: Address,
        packetizer: Packetizer,
        store: RetransmissionStore,
        heartbeat_ms: int,
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self.target = target
        self.packetizer = packetizer
        self.store = store
        self.packets_sent = 0
        self.heartbeats_sent = 0
        self._sent_since_tick = False
        self._heartbeat = asyncio.get_running_loop().create_task(
            self._heartbeat_loop(_seconds(heartbeat_ms))
        )

    @classmethod
    async def open(
        cls,
        session: str,
        target: Address,
        *,
        interface: str = LOOPBACK,
        ttl: int = MULTICAST_TTL,
        heartbeat_ms: int = DEFAULT_HEARTBEAT_MS,
        max_payload: int = MAX_PAYLOAD,
        store: RetransmissionStore | None = None,
        capacity: int = RETRANSMISSION_CAPACITY,
    ) -> FeedPublisher:
        """Open the sending socket. ``store`` (if given) must belong to ``session``; the
        sequence numbers continue from its ``next_seq``."""
        if store is None:
            store = RetransmissionStore(session, capacity=capacity, max_payload=max_payload)
        elif store.session != session:
            raise MoldError(f"store of session {store.session!r} for session {session!r}")
        packetizer = Packetizer(session, max_payload, store.next_seq)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        try:
            if is_multicast(target[0]):
                sock.setsockopt(
                    socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface)
                )
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            transport, protocol = await loop.create_datagram_endpoint(_Datagrams, sock=sock)
        except BaseException:
            sock.close()
            raise
        return cls(transport, protocol, target, packetizer, store, heartbeat_ms)

    @property
    def errors(self) -> int:
        return self._protocol.errors

    def publish(self, messages: Sequence[bytes]) -> list[MoldPacket]:
        """Number, record and send ``messages``; returns the packets sent."""
        packets = self.packetizer.pack(messages)
        for packet in packets:
            self.store.record(packet)
            self._send(packet)
        return packets

    def heartbeat(self) -> None:
        self._send(self.packetizer.heartbeat())
        self.heartbeats_sent += 1

    def _send(self, packet: MoldPacket) -> None:
        self._transport.sendto(encode_packet(packet), self.target)
        self.packets_sent += 1
        self._sent_since_tick = True

    async def _heartbeat_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            if not self._sent_since_tick:
                self.heartbeat()
            self._sent_since_tick = False

    async def close(self, end_session: bool = True) -> None:
        """Stop heartbeating, announce the end of the session (optional), close the socket."""
        self._heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._heartbeat
        if end_session and not self._transport.is_closing():
            self._send(self.packetizer.end_of_session())
        self._transport.close()


class RetransmissionServer:
    """Answers MoldUDP64 request packets from a ``RetransmissionStore``, unicast to the sender."""

    def __init__(self, store: RetransmissionStore) -> None:
        self.store = store
        self.requests = 0
        self.malformed = 0
        self.unanswered = 0  # requests for another session or a range the store does not hold
        self._transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(
        cls, store: RetransmissionStore, bind: Address = (LOOPBACK, 0)
    ) -> RetransmissionServer:
        server = cls(store)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(server._on_request), local_addr=bind
        )
        server._transport = transport
        return server

    @property
    def address(self) -> Address:
        if self._transport is None:
            raise RuntimeError("server not open")
        return _bound(self._transport)

    def _on_request(self, data: bytes, addr: Address) -> None:
        try:
            request = decode_request(data)
        except MoldError:
            self.malformed += 1
            return
        self.requests += 1
        packets = self.store.answer(request)
        if not packets:
            self.unanswered += 1
        if self._transport is not None:
            for packet in packets:
                self._transport.sendto(encode_packet(packet), addr)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class FeedReceiver:
    """Receives a feed, recovers gaps from a retransmission server, delivers messages in order.

    ``on_message(seq, payload)`` is called once per message, in sequence order. ``drop`` is a
    test hook: a downstream packet for which it returns True is discarded as if lost on the
    network (retransmitted packets are not offered to it).
    """

    def __init__(
        self,
        on_message: Callable[[int, bytes], None],
        detector: GapDetector,
        retry_ms: int,
        drop: Callable[[MoldPacket], bool] | None,
    ) -> None:
        self.on_message = on_message
        self.detector = detector
        self.drop = drop
        self.ended = asyncio.Event()  # set once the session ended and all was delivered
        self.packets = 0
        self.dropped = 0
        self.malformed = 0
        self.requests_sent = 0
        self._retry_s = _seconds(retry_ms)
        self._feed: asyncio.DatagramTransport | None = None
        self._requests: asyncio.DatagramTransport | None = None
        self._requested_first = 0  # first seq of the gap last requested
        self._retry: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        listen: Address,
        retransmit: Address,
        on_message: Callable[[int, bytes], None],
        *,
        session: str | None = None,
        interface: str = LOOPBACK,
        retry_ms: int = DEFAULT_RETRY_MS,
        max_buffered: int = MAX_BUFFERED_MESSAGES,
        drop: Callable[[MoldPacket], bool] | None = None,
    ) -> FeedReceiver:
        """Listen on ``listen`` (port 0 picks one: see ``address``); for a multicast group,
        join it on ``interface``. Requests go to ``retransmit``."""
        receiver = cls(on_message, GapDetector(session, max_buffered=max_buffered), retry_ms, drop)
        loop = asyncio.get_running_loop()
        sock = _listening_socket(listen, interface)
        try:
            receiver._feed, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(receiver._on_feed), sock=sock
            )
        except BaseException:
            sock.close()
            raise
        try:
            receiver._requests, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(receiver._on_retransmission), remote_addr=retransmit
            )
        except BaseException:
            receiver._feed.close()
            raise
        receiver._retry = loop.create_task(receiver._retry_loop())
        return receiver

    @property
    def address(self) -> Address:
        """The feed address actually bound (the group, or the host, and the port)."""
        if self._feed is None:
            raise RuntimeError("receiver not open")
        return _bound(self._feed)

    def _on_feed(self, data: bytes, addr: Address) -> None:
        packet = self._decode(data)
        if packet is None:
            return
        if self.drop is not None and self.drop(packet):
            self.dropped += 1
            return
        self._take(packet)

    def _on_retransmission(self, data: bytes, addr: Address) -> None:
        packet = self._decode(data)
        if packet is not None:
            self._take(packet)

    def _decode(self, data: bytes) -> MoldPacket | None:
        try:
            packet = decode_packet(data)
        except MoldError:
            self.malformed += 1
            return None
        self.packets += 1
        return packet

    def _take(self, packet: MoldPacket) -> None:
        detector = self.detector
        delivered = detector.on_packet(packet)
        seq = detector.next_seq - len(delivered)
        for msg in delivered:
            self.on_message(seq, msg)
            seq += 1
        gap = detector.gap()
        if gap is not None and gap[0] != self._requested_first:
            self._request()
        if detector.done:
            self.ended.set()

    def _request(self) -> None:
        request = self.detector.request()
        if request is None or self._requests is None or self._requests.is_closing():
            return
        self._requests.sendto(encode_request(request))
        self._requested_first = request.seq
        self.requests_sent += 1

    async def _retry_loop(self) -> None:
        last = 0
        while True:
            await asyncio.sleep(self._retry_s)
            gap = self.detector.gap()
            first = gap[0] if gap is not None else 0
            if first and first == last:
                self._request()  # no progress since the last tick: ask again
            last = first

    async def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry
        for transport in (self._feed, self._requests):
            if transport is not None:
                transport.close()


def _listening_socket(listen: Address, interface: str) -> socket.socket:
    host, port = listen
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        if is_multicast(host):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))  # Linux: receive only this group's datagrams
            except OSError:
                sock.bind(("", port))
            membership = socket.inet_aton(host) + socket.inet_aton(interface)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        else:
            sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
