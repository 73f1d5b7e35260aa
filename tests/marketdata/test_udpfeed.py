"""The UDP feed on loopback: publish, lose packets on purpose, recover them by retransmission.

Every test binds port 0 (the OS picks free ports) and runs under an asyncio timeout. The
published messages are the ITCH messages of a real engine run; the receiving side decodes them
and rebuilds the book, which must equal the engine's.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ci import skip_or_fail
from tradingfloor.exchange.engine.commands import AddInstrument, CancelOrder, Command, NewOrder
from tradingfloor.exchange.engine.engine import Engine
from tradingfloor.exchange.engine.types import Side
from tradingfloor.exchange.marketdata.itch import (
    AddOrder,
    ItchTranslator,
    OrderDelete,
    OrderExecuted,
    decode,
    encode,
)
from tradingfloor.exchange.marketdata.moldudp64 import (
    MoldPacket,
    RetransmissionRequest,
    RetransmissionStore,
    decode_packet,
    encode_request,
)
from tradingfloor.exchange.marketdata.udpfeed import (
    LOOPBACK,
    FeedPublisher,
    FeedReceiver,
    RetransmissionServer,
)

T = TypeVar("T")
TIMEOUT_S = 4  # every scenario must finish well inside the 5 s budget
GROUP = "239.255.42.99"
SESSION = "TFITCH0001"


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(scenario(), TIMEOUT_S)

    return asyncio.run(bounded())


def engine_feed(batches: int = 80) -> tuple[Engine, list[list[bytes]]]:
    """ITCH messages of a seeded random engine run, one batch per command."""
    rnd = random.Random(7)
    engine = Engine()
    translator = ItchTranslator()
    cmds: list[Command] = [AddInstrument(symbol="UDP")]
    for i in range(batches):
        if i % 7 == 6:
            cmds.append(CancelOrder(symbol="UDP", member="m1", order_id=rnd.randint(2, i + 1)))
        else:
            cmds.append(
                NewOrder(
                    symbol="UDP",
                    member=rnd.choice(["m1", "m2"]),
                    cl_ord_id=f"c{i}",
                    side=rnd.choice([Side.BUY, Side.SELL]),
                    qty=rnd.randint(1, 9),
                    price=rnd.randint(98, 102),
                )
            )
    out = []
    for seq, cmd in enumerate(cmds, 1):
        out.append([encode(m) for m in translator.translate(engine.apply(seq, 10 * seq, cmd))])
    return engine, out


class Collector:
    """Records delivered messages and wakes the test when it has ``want`` of them."""

    def __init__(self, want: int) -> None:
        self.want = want
        self.got: list[tuple[int, bytes]] = []
        self.complete = asyncio.Event()

    def __call__(self, seq: int, payload: bytes) -> None:
        self.got.append((seq, payload))
        if len(self.got) >= self.want:
            self.complete.set()


class DropEvery:
    """Test hook: lose the downstream packets whose index is in ``lost``, and the packet that
    carries message ``last_seq``."""

    def __init__(self, lost: set[int], last_seq: int) -> None:
        self.lost = lost
        self.last_seq = last_seq
        self.index = -1
        self.seqs: list[int] = []

    def __call__(self, packet: MoldPacket) -> bool:
        if not packet.messages:
            return False  # heartbeats and the end of session get through
        self.index += 1
        if self.index in self.lost or packet.next_seq == self.last_seq + 1:
            self.seqs.append(packet.seq)
            return True
        return False


async def publish_with_losses(group: str | None) -> None:
    engine, batches = engine_feed()
    flat = [m for batch in batches for m in batch]
    store = RetransmissionStore(SESSION, max_payload=200, max_packets=2)
    server = await RetransmissionServer.open(store)
    collector = Collector(len(flat))
    # Lose the first packet, a run of packets, scattered ones and the very last one.
    drop = DropEvery({0, 5, 6, 7, 8, 15, 30, 31}, last_seq=len(flat))
    receiver = await FeedReceiver.open(
        (group or LOOPBACK, 0), server.address, collector, retry_ms=30, drop=drop
    )
    target = (group or LOOPBACK, receiver.address[1])
    publisher = await FeedPublisher.open(
        SESSION, target, ttl=0, heartbeat_ms=20, max_payload=200, store=store
    )
    total_packets = 0
    try:
        for batch in batches:
            total_packets += len(publisher.publish(batch))
            await asyncio.sleep(0)  # let the receiver read: no losses but ours
        await collector.complete.wait()
        await publisher.close()  # end of session
        await receiver.ended.wait()
    finally:
        await receiver.close()
        server.close()
        await publisher.close(end_session=False)

    assert total_packets > 32
    assert len(drop.seqs) == 9
    assert collector.got == list(enumerate(flat, 1))  # all, once, in order
    assert receiver.requests_sent >= 1 and server.requests >= 1
    assert receiver.detector.gap() is None and receiver.detector.done

    # The receiving side decodes the ITCH messages and rebuilds the engine's book.
    book: dict[int, tuple[int, int]] = {}  # ref -> (price, shares)
    for _, raw in collector.got:
        msg = decode(raw)
        if isinstance(msg, AddOrder):
            book[msg.order_ref] = (msg.price, msg.shares)
        elif isinstance(msg, OrderExecuted):
            price, shares = book[msg.order_ref]
            book[msg.order_ref] = (price, shares - msg.shares)
        elif isinstance(msg, OrderDelete):
            del book[msg.order_ref]
    bids, asks = engine.l3("UDP")
    assert sorted((oid, p, q) for p, q, oid, _ in bids + asks) == sorted(
        (ref, price, shares) for ref, (price, shares) in book.items() if shares > 0
    )


def test_unicast_feed_recovers_lost_packets() -> None:
    run(lambda: publish_with_losses(None))


def multicast_loopback_available() -> str:
    """'' if a multicast datagram sent on 127.0.0.1 comes back here, else the reason."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        rx.bind((GROUP, 0))
        mreq = socket.inet_aton(GROUP) + socket.inet_aton(LOOPBACK)
        rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(LOOPBACK))
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 0)
        tx.sendto(b"probe", (GROUP, rx.getsockname()[1]))
        rx.settimeout(0.5)
        rx.recvfrom(64)
    except OSError as exc:
        return f"multicast on the loopback interface is not available here: {exc}"
    finally:
        rx.close()
        tx.close()
    return ""


def test_multicast_feed_recovers_lost_packets() -> None:
    reason = multicast_loopback_available()
    if reason:
        skip_or_fail(reason)  # in CI a missing multicast loopback fails (tests/ci.py)
    run(lambda: publish_with_losses(GROUP))


def test_idle_publisher_heartbeats_and_a_lost_tail_is_recovered() -> None:
    async def scenario() -> None:
        store = RetransmissionStore(SESSION)
        server = await RetransmissionServer.open(store)
        collector = Collector(3)
        receiver = await FeedReceiver.open(
            (LOOPBACK, 0),
            server.address,
            collector,
            retry_ms=30,
            drop=lambda p: bool(p.messages),  # every original packet is lost
        )
        publisher = await FeedPublisher.open(
            SESSION, receiver.address, heartbeat_ms=20, store=store
        )
        try:
            publisher.publish([b"one", b"two", b"three"])
            await collector.complete.wait()  # learnt from a heartbeat, then retransmitted
            assert publisher.heartbeats_sent >= 1
            assert collector.got == [(1, b"one"), (2, b"two"), (3, b"three")]
            assert receiver.dropped == 1
        finally:
            await publisher.close()
            await receiver.close()
            server.close()

    run(scenario)


def test_server_ignores_malformed_and_unanswerable_requests() -> None:
    async def scenario() -> None:
        store = RetransmissionStore(SESSION)
        server = await RetransmissionServer.open(store)
        replies: asyncio.Queue[bytes] = asyncio.Queue()

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
                replies.put_nowait(data)

        loop = asyncio.get_running_loop()
        client, _ = await loop.create_datagram_endpoint(Client, remote_addr=server.address)
        target = client.get_extra_info("sockname")
        publisher = await FeedPublisher.open(SESSION, target, store=store)
        try:
            publisher.publish([b"a", b"b", b"c"])
            client.sendto(b"garbage")
            client.sendto(encode_request(RetransmissionRequest("OTHER", 1, 3)))
            client.sendto(encode_request(RetransmissionRequest(SESSION, 50, 3)))
            client.sendto(encode_request(RetransmissionRequest(SESSION, 2, 5)))
            # The client also receives the original feed (it is the publisher's target).
            seen: list[MoldPacket] = []
            while not any(p.seq == 2 for p in seen):
                seen.append(decode_packet(await replies.get()))
            assert MoldPacket(SESSION, 2, (b"b", b"c")) in seen
            assert (server.requests, server.malformed, server.unanswered) == (3, 1, 2)
        finally:
            client.close()
            server.close()
            await publisher.close(end_session=False)

    run(scenario)
