"""The venue's binary feed: history kept, a session starts with the state, then live messages."""

from __future__ import annotations

import asyncio
import socket

from tradingfloor.exchange.engine import Engine
from tradingfloor.exchange.engine.commands import AddInstrument, Command, NewOrder
from tradingfloor.exchange.engine.types import Side
from tradingfloor.exchange.marketdata.binaryfeed import BinaryFeed, session_name
from tradingfloor.exchange.marketdata.itch import (
    AddOrder,
    ItchMessage,
    OrderExecuted,
    StockDirectory,
    SystemEvent,
    decode,
)
from tradingfloor.exchange.marketdata.udpfeed import FeedReceiver


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_session_names_are_ten_characters_and_differ_per_second() -> None:
    a, b = session_name(1_700_000_000_000_000_000), session_name(1_700_000_001_000_000_000)
    assert len(a) == len(b) == 10 and a != b


async def test_history_then_live_messages_reach_a_receiver() -> None:
    engine = Engine()
    feed = BinaryFeed()
    seq = 0

    def run(cmd: Command) -> None:
        nonlocal seq
        seq += 1
        feed.on_events(cmd, engine.apply(seq, 1_000 + seq, cmd))

    run(AddInstrument(symbol="AAPL"))
    run(NewOrder(symbol="AAPL", member="m1", cl_ord_id="b1", side=Side.BUY, qty=10, price=100))
    assert feed.messages_sent == 0  # history is translated, not sent

    received: list[tuple[int, ItchMessage]] = []
    port = free_udp_port()
    receiver = await FeedReceiver.open(
        ("127.0.0.1", 0), ("127.0.0.1", port), lambda n, raw: received.append((n, decode(raw)))
    )
    try:
        await feed.open(receiver.address, start_ns=5_000, retransmission_bind=("127.0.0.1", port))
        run(NewOrder(symbol="AAPL", member="m2", cl_ord_id="s1", side=Side.SELL, qty=4, price=100))
        for _ in range(200):
            if len(received) >= 5:
                break
            await asyncio.sleep(0.01)
        messages = [m for _n, m in received]
        assert [n for n, _m in received] == list(range(1, len(received) + 1))
        assert messages[0] == SystemEvent(0, 5_000, "O")
        assert isinstance(messages[1], StockDirectory) and messages[1].symbol == "AAPL"
        assert messages[3] == AddOrder(1, 5_000, 2, "B", 10, "AAPL", 100)
        assert messages[4] == OrderExecuted(1, 1_003, 2, 4, 1)
        assert feed.messages_sent == len(messages) == 5
    finally:
        await feed.close()
        await receiver.close()
