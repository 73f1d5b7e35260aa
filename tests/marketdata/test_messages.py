"""JSON market-data messages, per-channel sequencing and the client-side gap tracker."""

from __future__ import annotations

import importlib
import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradingfloor.exchange.engine.commands import AddInstrument, Command, NewOrder, SetPhase
from tradingfloor.exchange.engine.engine import Engine
from tradingfloor.exchange.engine.events import LevelChanged
from tradingfloor.exchange.engine.types import Phase, Side
from tradingfloor.exchange.marketdata.bars import Bar, BarBuilder
from tradingfloor.exchange.marketdata.messages import (
    ChannelSequencer,
    ChannelTracker,
    Message,
    Sync,
    bar_message,
    decode,
    encode,
    l1_message,
    l2_message,
    l2_update_message,
    l3_message,
    price_text,
    trade_message,
    trades_snapshot_message,
)
from tradingfloor.exchange.marketdata.views import L1, MarketDataBook, TradeTick

DOC = Path(__file__).resolve().parents[2] / "docs" / "marketdata.md"
T0 = 1_700_000_000_000_000_000
CENT = Decimal("0.01")


def order(member: str, side: Side, qty: int, price: int) -> NewOrder:
    return NewOrder(
        symbol="ACME", member=member, cl_ord_id=f"{member}{qty}", side=side, qty=qty, price=price
    )


def example() -> tuple[MarketDataBook, BarBuilder]:
    """The book of docs/marketdata.md: two bid levels, one ask level, one trade."""
    engine, book, bars = Engine(), MarketDataBook(), BarBuilder(["1m"])
    cmds: list[Command] = [
        AddInstrument(symbol="ACME", tick_size="0.01"),
        order("m1", Side.BUY, 300, 10_050),
        order("m2", Side.BUY, 200, 10_050),
        order("m1", Side.BUY, 100, 10_025),
        order("m3", Side.SELL, 400, 10_075),
        order("m4", Side.SELL, 150, 10_075),
        order("m5", Side.BUY, 100, 10_075),
    ]
    for seq, cmd in enumerate(cmds, 1):
        for ev in engine.apply(seq, T0 + 1_000 * seq, cmd):
            book.apply(ev)
            bars.apply(ev)
    return book, bars


def example_messages() -> list[Message]:
    book, bars = example()
    tick = book.tick_size("ACME")
    bar = bars.current("ACME", "1m")
    assert bar is not None
    return [
        l1_message("ACME", book.l1("ACME"), tick),
        l2_message("ACME", *book.l2("ACME"), tick),
        l3_message("ACME", book.l3("ACME"), tick),
        trade_message("ACME", book.trades("ACME")[-1], tick),
        bar_message(bar, tick),
    ]


EXPECTED = [
    '{"type":"l1","symbol":"ACME","bid":"100.50","bidSize":500,"ask":"100.75","askSize":450,'
    '"last":"100.75","volume":100,"timestamp":1700000000000007000}',
    '{"type":"l2","symbol":"ACME","bids":[["100.50",500,2],["100.25",100,1]],'
    '"asks":[["100.75",450,2]],"timestamp":1700000000000007000}',
    '{"type":"l3","symbol":"ACME","bids":[["100.50",300,2],["100.50",200,3],["100.25",100,4]],'
    '"asks":[["100.75",300,5],["100.75",150,6]],"timestamp":1700000000000007000}',
    '{"type":"trade","symbol":"ACME","price":"100.75","size":100,"aggressor":"buy",'
    '"timestamp":1700000000000007000,"tradeId":1}',
    '{"type":"bar","symbol":"ACME","interval":"1m","open":"100.75","high":"100.75",'
    '"low":"100.75","close":"100.75","volume":100,"start":1699999980000000000}',
]


def test_exact_json_of_each_message() -> None:
    got = [encode(msg).decode() for msg in example_messages()]
    assert got == EXPECTED
    assert [decode(line) for line in got] == example_messages()


def test_the_docs_show_the_same_json() -> None:
    text = DOC.read_text()
    for msg in example_messages():
        assert encode(msg).decode() in text, msg["type"]


@pytest.mark.parametrize(
    ("ticks", "tick", "text"),
    [
        (10_050, "0.01", "100.50"),
        (1, "0.01", "0.01"),
        (3, "0.05", "0.15"),
        (7, "1", "7"),
        (3, "5", "15"),
        (5, "0.00000001", "0.00000005"),  # never "5E-8"
        (2**48 - 1, "0.0001", "28147497671.0655"),
    ],
)
def test_prices_are_plain_decimal_strings(ticks: int, tick: str, text: str) -> None:
    assert price_text(ticks, Decimal(tick)) == text


def test_missing_sides_and_last_are_null() -> None:
    msg = l1_message("ACME", L1(0, 0, 10_075, 5, 0, 0, 42), CENT)
    assert msg == {
        "type": "l1",
        "symbol": "ACME",
        "bid": None,
        "bidSize": None,
        "ask": "100.75",
        "askSize": 5,
        "last": None,
        "volume": 0,
        "timestamp": 42,
    }
    assert b'"bid":null,"bidSize":null' in encode(msg)
    assert l2_message("ACME", [], [], 42, CENT)["bids"] == []


def test_auction_trades_have_no_aggressor() -> None:
    engine, book = Engine(), MarketDataBook()
    cmds: list[Command] = [
        AddInstrument(symbol="ACME", phase=Phase.PRE_OPEN),
        order("m1", Side.BUY, 10, 101),
        order("m2", Side.SELL, 10, 100),
        SetPhase(symbol="ACME", phase=Phase.CONTINUOUS),  # uncross
    ]
    for seq, cmd in enumerate(cmds, 1):
        for ev in engine.apply(seq, seq, cmd):
            book.apply(ev)
    msg = trade_message("ACME", book.trades("ACME")[-1], CENT)
    assert msg["aggressor"] is None
    assert msg["size"] == 10


def test_trades_snapshot_lists_recent_trades() -> None:
    ticks = [TradeTick(1, 5, 100, 2, "buy"), TradeTick(2, 6, 99, 1, "sell")]
    assert encode(trades_snapshot_message("ACME", ticks, CENT)) == (
        b'{"type":"trade","symbol":"ACME","trades":['
        b'{"price":"1.00","size":2,"aggressor":"buy","timestamp":5,"tradeId":1},'
        b'{"price":"0.99","size":1,"aggressor":"sell","timestamp":6,"tradeId":2}]}'
    )


def test_l2_update_from_level_events() -> None:
    engine = Engine()
    engine.apply(1, 1, AddInstrument(symbol="ACME"))
    engine.apply(2, 2, order("m1", Side.SELL, 5, 101))
    engine.apply(3, 3, order("m2", Side.SELL, 5, 102))
    engine.apply(4, 4, order("m3", Side.BUY, 1, 99))
    events = engine.apply(5, 5, order("m4", Side.BUY, 7, 102))  # sweeps 101, rests nothing
    changes = [ev for ev in events if isinstance(ev, LevelChanged)]
    msg = l2_update_message(changes, CENT)
    assert msg == {
        "type": "l2",
        "symbol": "ACME",
        "bids": [],
        "asks": [["1.01", 0, 0], ["1.02", 3, 1]],  # size 0: the level is gone
        "timestamp": 5,
    }
    with pytest.raises(ValueError):
        l2_update_message([], CENT)
    other = LevelChanged(9, 5, "XYZ", Side.BUY, 1, 1, 1)
    with pytest.raises(ValueError, match="in one update"):
        l2_update_message([*changes, other], CENT)


def bar(start: int) -> Bar:
    return Bar("ACME", "1m", start, 1, 1, 1, 1, 1)


def test_sequence_numbers_are_gapless_per_channel_and_symbol() -> None:
    seq = ChannelSequencer()
    l1 = l1_message("ACME", L1(1, 1, 2, 1, 0, 0, 1), CENT)
    l1_other = l1_message("OTHER", L1(1, 1, 2, 1, 0, 0, 1), CENT)
    first = seq.snapshot(l1)
    assert list(first)[:3] == ["seq", "snapshot", "type"]
    assert (first["seq"], first["snapshot"]) == (0, True)
    assert [seq.update(l1)["seq"] for _ in range(3)] == [1, 2, 3]
    assert seq.update(l1_other)["seq"] == 1  # another symbol: its own numbers
    assert seq.update(bar_message(bar(0), CENT))["seq"] == 1  # another channel too
    late = seq.snapshot(l1)  # a snapshot is the state as of the last update: takes no number
    assert (late["seq"], late["snapshot"]) == (3, True)
    assert seq.update(l1)["seq"] == 4
    assert seq.seq("l1", "ACME") == 4
    assert encode(seq.update(l1)).startswith(b'{"seq":5,"snapshot":false,"type":"l1"')
    with pytest.raises(ValueError):
        seq.update({"type": "news", "symbol": "ACME"})


def test_tracker_detects_a_gap_and_recovers_after_a_snapshot() -> None:
    server, client = ChannelSequencer(), ChannelTracker()
    msg = l1_message("ACME", L1(1, 1, 2, 1, 0, 0, 1), CENT)
    updates = [server.update(msg) for _ in range(3)]  # 1, 2, 3
    assert client.needs_snapshot("l1", "ACME")
    assert client.on_message(updates[0]) == Sync.RESYNC  # no snapshot yet
    assert client.on_message(server.snapshot(msg)) == Sync.APPLY  # seq 3
    assert client.last_seq("l1", "ACME") == 3
    assert client.on_message(updates[2]) == Sync.IGNORE  # already in the snapshot
    u4, u5, u6 = (server.update(msg) for _ in range(3))
    assert client.on_message(u4) == Sync.APPLY
    assert client.on_message(u6) == Sync.RESYNC  # 5 was missed
    assert client.needs_snapshot("l1", "ACME")
    assert client.on_message(u5) == Sync.RESYNC  # nothing applies until a snapshot
    assert client.on_message(server.snapshot(msg)) == Sync.APPLY  # seq 6
    assert client.on_message(u6) == Sync.IGNORE
    assert client.on_message(server.update(msg)) == Sync.APPLY  # 7
    stale = {**server.snapshot(msg), "seq": 2}
    assert client.on_message(stale) == Sync.IGNORE
    assert client.last_seq("l1", "ACME") == 7
    assert client.needs_snapshot("l2", "ACME")  # channels are tracked separately
    with pytest.raises(ValueError):
        client.on_message({**u4, "seq": "4"})


DELIVERY = st.sampled_from(["ok", "ok", "ok", "lost", "twice"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 1_000), DELIVERY), min_size=1, max_size=50))
def test_a_lossy_client_of_a_delta_channel_stays_correct(steps: list[tuple[int, str]]) -> None:
    """Updates are deltas, snapshots totals; messages get lost or duplicated in transit.

    Whatever the client applies leaves it exactly at the server's state of that number, and a
    snapshot after the last update brings it level with the server.
    """
    server, client = ChannelSequencer(), ChannelTracker()
    total, view = 0, 0
    history = {0: 0}  # seq -> server total after it
    wants_snapshot = True  # a subscriber gets a snapshot first
    for delta, delivery in steps:
        if wants_snapshot:
            snap = server.snapshot({"type": "l2", "symbol": "ACME", "total": total})
            assert client.on_message(snap) == Sync.APPLY
            view, wants_snapshot = total, False
        total += delta
        update = server.update({"type": "l2", "symbol": "ACME", "delta": delta})
        history[server.seq("l2", "ACME")] = total
        for _ in range({"ok": 1, "lost": 0, "twice": 2}[delivery]):
            action = client.on_message(update)
            if action == Sync.APPLY:
                view += delta
                assert view == history[client.last_seq("l2", "ACME") or 0]
            elif action == Sync.RESYNC:
                wants_snapshot = True
    final = server.snapshot({"type": "l2", "symbol": "ACME", "total": total})
    assert client.on_message(final) == Sync.APPLY
    assert client.last_seq("l2", "ACME") == server.seq("l2", "ACME") == len(steps)


@pytest.mark.parametrize("name", ["views", "bars", "messages", "checkpoint_state"])
def test_public_names_are_documented(name: str) -> None:
    module = importlib.import_module(f"tradingfloor.exchange.marketdata.{name}")
    section = DOC.read_text().split("## Public API", 1)[1]
    entry = re.search(rf"- `marketdata\.{name}`:(.*?)(?=\n- |\Z)", section, re.S)
    assert entry is not None, f"{name} is missing from docs/marketdata.md"
    documented = set(re.findall(r"`(\w+)`", entry.group(1)))
    assert set(module.__all__) == documented
    assert all(hasattr(module, n) for n in module.__all__)
