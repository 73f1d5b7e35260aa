"""ITCH-like messages: layouts, round trips, edge validation, and the engine-event translator.

The property test runs random command streams through the real engine, translates every
command's events, encodes and decodes each message and rebuilds the order-by-order book from the
decoded messages alone; after every command it must equal ``Engine.l3``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradingfloor.exchange.engine.commands import (
    AddInstrument,
    CancelOrder,
    Command,
    Halt,
    MassCancel,
    NewOrder,
    ReplaceOrder,
    Resume,
    SetPhase,
)
from tradingfloor.exchange.engine.engine import Engine
from tradingfloor.exchange.engine.events import Event, Trade
from tradingfloor.exchange.engine.types import (
    OrdType,
    PegType,
    Phase,
    Side,
    STPMode,
    TimeInForce,
)
from tradingfloor.exchange.marketdata import itch
from tradingfloor.exchange.marketdata.itch import (
    AddOrder,
    CrossTrade,
    ItchError,
    ItchMessage,
    ItchTranslator,
    OrderCancel,
    OrderDelete,
    OrderExecuted,
    OrderExecutedWithPrice,
    OrderReplace,
    StockDirectory,
    SystemEvent,
    TradeMessage,
    TradingAction,
    decode,
    encode,
    tick_scale,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "itch.md"

SAMPLES: list[ItchMessage] = [
    SystemEvent(0, 1, "O"),
    StockDirectory(1, 2, "ACME", 1, -2, 100, "USD"),
    TradingAction(1, 3, "T", "OPER"),
    AddOrder(1, 4, 7, "B", 300, "ACME", 10_050),
    OrderExecuted(1, 5, 7, 100, 1),
    OrderExecutedWithPrice(1, 6, 7, 100, 2, "N", 10_040),
    OrderCancel(1, 7, 7, 50),
    OrderDelete(1, 8, 7),
    OrderReplace(1, 9, 7, 7, 200, 10_060),
    TradeMessage(1, 10, 0, "S", 25, "ACME", 10_070, 3),
    CrossTrade(1, 11, 1_000, "ACME", 10_000, 4, "O"),
]


# ------------------------------------------------------------------ layouts and round trips


def test_every_message_type_has_a_sample_and_round_trips() -> None:
    assert {type(m).TYPE.decode() for m in SAMPLES} == set(itch.MESSAGE_SIZES)
    for msg in SAMPLES:
        raw = encode(msg)
        assert raw[:1] == type(msg).TYPE
        assert len(raw) == itch.MESSAGE_SIZES[raw[:1].decode()]
        assert decode(raw) == msg
        assert decode(memoryview(raw)) == msg


def test_add_order_bytes_are_big_endian_with_the_documented_offsets() -> None:
    msg = AddOrder(0x0102, 0x1122334455667788, 0xA1A2A3A4A5A6A7A8, "S", 0x01020304, "AB", -2)
    raw = encode(msg)
    assert raw == (
        b"A"
        + bytes.fromhex("0102")
        + bytes.fromhex("1122334455667788")
        + bytes.fromhex("a1a2a3a4a5a6a7a8")
        + b"S"
        + bytes.fromhex("01020304")
        + b"AB      "
        + bytes.fromhex("fffffffffffffffe")
    )


def _doc_sizes() -> dict[str, int]:
    """The summary table of docs/itch.md: | `X` | name | size |."""
    sizes = {}
    for m in re.finditer(r"^\| `(\w)` \| [^|]+ \| (\d+) \|$", DOC.read_text(), re.MULTILINE):
        sizes[m.group(1)] = int(m.group(2))
    return sizes


def test_documented_sizes_match_the_layouts() -> None:
    assert _doc_sizes() == itch.MESSAGE_SIZES


def _doc_layouts() -> dict[str, list[tuple[int, int, str]]]:
    """Per-message tables of docs/itch.md: type -> [(offset, size, field)]."""
    layouts: dict[str, list[tuple[int, int, str]]] = {}
    current: list[tuple[int, int, str]] = []
    for line in DOC.read_text().splitlines():
        heading = re.match(r"^### `(\w)` ", line)
        if heading:
            current = layouts.setdefault(heading.group(1), [])
        elif line.startswith("## "):
            current = []
        row = re.match(r"^\| (\d+) \| (\d+) \| (\w+) \|", line)
        if row and layouts:
            current.append((int(row.group(1)), int(row.group(2)), row.group(3)))
    return layouts


def test_documented_layouts_match_the_structs() -> None:
    layouts = _doc_layouts()
    assert set(layouts) == set(itch.MESSAGE_SIZES)
    by_type = {type(m).TYPE.decode(): type(m) for m in SAMPLES}
    for code, rows in layouts.items():
        offset = 0
        for row_offset, size, _ in rows:
            assert row_offset == offset, (code, rows)
            offset += size
        assert offset == itch.MESSAGE_SIZES[code], code
        fields = [name for _, _, name in rows]
        assert fields == ["type", *by_type[code].__struct_fields__], code


def test_public_names() -> None:
    for name in itch.__all__:
        assert hasattr(itch, name), name
    text = DOC.read_text()
    for name in ("ItchTranslator", "encode", "decode", "tick_scale"):
        assert f"`{name}" in text, name


u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
u64 = st.integers(0, 0xFFFF_FFFF_FFFF_FFFF)
i64 = st.integers(-(2**63), 2**63 - 1)
symbols = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=8)
sides = st.sampled_from("BS")

messages: st.SearchStrategy[ItchMessage] = st.one_of(
    st.builds(SystemEvent, u16, u64, st.sampled_from("OSQMEC")),
    st.builds(
        StockDirectory,
        u16,
        u64,
        symbols,
        u32,
        st.integers(-128, 127),
        u32,
        st.text(st.sampled_from("ABCDEUSZ"), min_size=3, max_size=3),
    ),
    st.builds(
        TradingAction,
        u16,
        u64,
        st.sampled_from("CPOTAH"),
        st.text(st.sampled_from("ABCDXYZ"), min_size=1, max_size=4),
    ),
    st.builds(AddOrder, u16, u64, u64, sides, u32, symbols, i64),
    st.builds(OrderExecuted, u16, u64, u64, u32, u64),
    st.builds(OrderExecutedWithPrice, u16, u64, u64, u32, u64, st.sampled_from("YN"), i64),
    st.builds(OrderCancel, u16, u64, u64, u32),
    st.builds(OrderDelete, u16, u64, u64),
    st.builds(OrderReplace, u16, u64, u64, u64, u32, i64),
    st.builds(TradeMessage, u16, u64, u64, sides, u32, symbols, i64, u64),
    st.builds(CrossTrade, u16, u64, u64, symbols, i64, u64, st.sampled_from("OCHI")),
)


@settings(max_examples=300, deadline=None)
@given(messages)
def test_random_messages_round_trip(msg: ItchMessage) -> None:
    assert decode(encode(msg)) == msg


# ------------------------------------------------------------------ edge validation


@pytest.mark.parametrize(
    "msg",
    [
        AddOrder(1, 1, 1, "X", 1, "ACME", 1),  # side
        AddOrder(1, 1, 1, "B", -1, "ACME", 1),  # shares below 0
        AddOrder(1, 1, 1, "B", 2**32, "ACME", 1),  # shares over uint32
        AddOrder(1, 1, 1, "B", 1, "TOOLONGSYM", 1),  # symbol over 8
        AddOrder(1, 1, 1, "B", 1, "", 1),  # empty symbol
        AddOrder(1, 1, 1, "B", 1, "A B", 1),  # space inside
        AddOrder(1, 1, 1, "B", 1, "ÄPFEL", 1),  # not ASCII
        AddOrder(0x10000, 1, 1, "B", 1, "ACME", 1),  # locate over uint16
        AddOrder(1, -1, 1, "B", 1, "ACME", 1),  # negative timestamp
        AddOrder(1, 1, 1, "B", 1, "ACME", 2**63),  # price over int64
        SystemEvent(0, 1, "Z"),
        TradingAction(1, 1, "Z", "OPER"),
        TradingAction(1, 1, "T", "TOOLONG"),
        OrderExecutedWithPrice(1, 1, 1, 1, 1, "X", 1),
        CrossTrade(1, 1, 1, "ACME", 1, 1, "Z"),
        StockDirectory(1, 1, "ACME", 1, -200, 1, "USD"),  # exponent over int8
        StockDirectory(1, 1, "ACME", 1, -2, 1, "DOLLAR"),
    ],
)
def test_encode_rejects_fields_that_do_not_fit(msg: ItchMessage) -> None:
    with pytest.raises(ItchError):
        encode(msg)


def test_decode_rejects_malformed_buffers() -> None:
    good = encode(AddOrder(1, 1, 1, "B", 1, "ACME", 1))
    with pytest.raises(ItchError, match="empty"):
        decode(b"")
    with pytest.raises(ItchError, match="unknown message type"):
        decode(b"Z" + good[1:])
    with pytest.raises(ItchError, match="expected 40"):
        decode(good[:-1])
    with pytest.raises(ItchError, match="expected 40"):
        decode(good + b"\x00")
    with pytest.raises(ItchError, match="side"):
        decode(good[:19] + b"Q" + good[20:])
    cross = encode(CrossTrade(1, 1, 1, "ACME", 1, 1, "O"))
    with pytest.raises(ItchError, match="cross type"):
        decode(cross[:-1] + b"?")


@pytest.mark.parametrize(
    ("tick", "scale"),
    [
        ("0.01", (1, -2)),
        ("0.010", (1, -2)),
        ("0.05", (5, -2)),
        ("0.0001", (1, -4)),
        ("1", (1, 0)),
        ("25", (25, 0)),
        ("100", (100, 0)),
        ("12.5", (125, -1)),
    ],
)
def test_tick_scale(tick: str, scale: tuple[int, int]) -> None:
    assert tick_scale(tick) == scale
    mantissa, exponent = scale
    assert Decimal(mantissa).scaleb(exponent) == Decimal(tick)


@pytest.mark.parametrize("tick", ["0", "-0.01", "NaN", "Infinity", "abc"])
def test_tick_scale_rejects_non_positive_or_non_finite(tick: str) -> None:
    with pytest.raises(ItchError):
        tick_scale(tick)


# ------------------------------------------------------------------ the translator, by example


class Feed:
    """An engine and a translator driven together; every message goes through the wire."""

    def __init__(self) -> None:
        self.engine = Engine()
        self.translator = ItchTranslator()
        self.seq = 0

    def __call__(self, cmd: Command) -> list[ItchMessage]:
        self.seq += 1
        events = self.engine.apply(self.seq, 1_000 + self.seq, cmd)
        return [decode(encode(m)) for m in self.translator.translate(events)]

    def order(self, side: Side, qty: int, price: int = 0, member: str = "m1", **kw: object) -> int:
        self(
            NewOrder(
                symbol="ACME",
                member=member,
                cl_ord_id=f"c{self.seq + 1}",
                side=side,
                qty=qty,
                price=price,
                **kw,  # type: ignore[arg-type]
            )
        )
        return self.seq


@pytest.fixture
def feed() -> Feed:
    f = Feed()
    msgs = f(AddInstrument(symbol="ACME", tick_size="0.05", lot_size=1))
    assert msgs == [
        StockDirectory(1, 1_001, "ACME", 5, -2, 1, "USD"),
        TradingAction(1, 1_001, "T", "LIST"),
    ]
    return f


def test_locates_follow_listing_order(feed: Feed) -> None:
    msgs = feed(AddInstrument(symbol="BETA", tick_size="1", phase=Phase.PRE_OPEN))
    assert msgs == [
        StockDirectory(2, 1_002, "BETA", 1, 0, 1, "USD"),
        TradingAction(2, 1_002, "P", "LIST"),
    ]
    assert feed.translator.locate("BETA") == 2
    assert feed.translator.symbol(1) == "ACME"


def test_add_execute_and_delete(feed: Feed) -> None:
    bid = feed.order(Side.BUY, 10, 100)
    ts = 1_000 + feed.seq
    assert feed.translator.shown(bid) == 10
    sell = feed.order(Side.SELL, 4, 99, member="m2")
    assert feed.engine.l3("ACME")[0] == [(100, 6, bid, "m1")]
    assert feed.translator.shown(bid) == 6
    msgs = feed(CancelOrder(symbol="ACME", member="m1", order_id=bid, cl_ord_id="x"))
    assert msgs == [OrderDelete(1, ts + 2, bid)]
    assert feed.translator.shown(bid) == 0
    assert sell == bid + 1


def test_messages_of_a_resting_order_and_a_fill(feed: Feed) -> None:
    feed.order(Side.BUY, 10, 100)
    bid = feed.seq
    assert feed.translator.shown(bid) == 10
    msgs = feed(
        NewOrder(symbol="ACME", member="m2", cl_ord_id="s", side=Side.SELL, qty=10, price=100)
    )
    assert msgs == [OrderExecuted(1, 1_000 + feed.seq, bid, 10, 1)]
    assert feed.translator.shown(bid) == 0


def test_hidden_maker_prints_a_trade_message(feed: Feed) -> None:
    hidden = feed.order(Side.SELL, 5, 101, hidden=True)
    msgs = feed(
        NewOrder(symbol="ACME", member="m2", cl_ord_id="b", side=Side.BUY, qty=3, price=101)
    )
    assert msgs == [TradeMessage(1, 1_000 + feed.seq, 0, "S", 3, "ACME", 101, 1)]
    assert feed.translator.shown(hidden) == 0


def test_iceberg_refill_is_execute_then_add(feed: Feed) -> None:
    ice = feed.order(Side.SELL, 10, 101, display_qty=4)
    other = feed.order(Side.SELL, 2, 101, member="m3")
    msgs = feed(
        NewOrder(symbol="ACME", member="m2", cl_ord_id="b", side=Side.BUY, qty=5, price=101)
    )
    ts = 1_000 + feed.seq
    assert msgs == [
        OrderExecuted(1, ts, ice, 4, 1),
        AddOrder(1, ts, ice, "S", 4, "ACME", 101),
        OrderExecuted(1, ts, other, 1, 2),
    ]


def test_priority_kept_shrink_is_a_partial_cancel(feed: Feed) -> None:
    bid = feed.order(Side.BUY, 10, 100)
    msgs = feed(ReplaceOrder(symbol="ACME", member="m1", cl_ord_id="r", order_id=bid, qty=6))
    assert msgs == [OrderCancel(1, 1_000 + feed.seq, bid, 4)]
    assert feed.translator.shown(bid) == 6


def test_replace_that_loses_priority_is_one_replace_message(feed: Feed) -> None:
    bid = feed.order(Side.BUY, 10, 100)
    msgs = feed(
        ReplaceOrder(symbol="ACME", member="m1", cl_ord_id="r", order_id=bid, qty=12, price=99)
    )
    assert msgs == [OrderReplace(1, 1_000 + feed.seq, bid, bid, 12, 99)]


def test_replace_that_trades_is_delete_then_trade(feed: Feed) -> None:
    ask = feed.order(Side.SELL, 3, 101, member="m2")
    bid = feed.order(Side.BUY, 10, 100)
    msgs = feed(
        ReplaceOrder(symbol="ACME", member="m1", cl_ord_id="r", order_id=bid, qty=10, price=101)
    )
    ts = 1_000 + feed.seq
    assert msgs == [
        OrderDelete(1, ts, bid),
        OrderExecuted(1, ts, ask, 3, 1),
        AddOrder(1, ts, bid, "B", 7, "ACME", 101),
    ]


def test_self_trade_decrement_cancels_part_of_the_shown_size(feed: Feed) -> None:
    ask = feed.order(Side.SELL, 10, 101)
    msgs = feed(
        NewOrder(
            symbol="ACME",
            member="m1",
            cl_ord_id="b",
            side=Side.BUY,
            qty=4,
            price=101,
            stp=STPMode.DECREMENT,
        )
    )
    assert msgs == [OrderCancel(1, 1_000 + feed.seq, ask, 4)]


def test_auction_executions_are_non_printable_and_the_cross_prints(feed: Feed) -> None:
    feed(SetPhase(symbol="ACME", phase=Phase.OPENING_AUCTION))
    bid = feed.order(Side.BUY, 10, 102)
    ask = feed.order(Side.SELL, 6, 100, member="m2")
    hidden = feed.order(Side.SELL, 2, 101, member="m3", hidden=True)
    msgs = feed(SetPhase(symbol="ACME", phase=Phase.CONTINUOUS))
    ts = 1_000 + feed.seq
    price = msgs[2].price  # type: ignore[union-attr]
    assert msgs == [
        OrderExecutedWithPrice(1, ts, bid, 6, 1, "N", price),
        OrderExecutedWithPrice(1, ts, ask, 6, 1, "N", price),
        OrderExecutedWithPrice(1, ts, bid, 2, 2, "N", price),
        CrossTrade(1, ts, 8, "ACME", price, 1, "O"),
        TradingAction(1, ts, "T", "OPER"),
    ]
    assert feed.translator.shown(bid) == 2
    assert feed.translator.shown(hidden) == 0


def test_an_empty_uncross_still_sends_a_cross_message(feed: Feed) -> None:
    feed(Halt(symbol="ACME", reason="news pending"))
    msgs = feed(Resume(symbol="ACME"))
    ts = 1_000 + feed.seq
    assert msgs == [CrossTrade(1, ts, 0, "ACME", 0, 0, "H"), TradingAction(1, ts, "T", "RSUM")]


def test_halt_with_free_text_reason(feed: Feed) -> None:
    msgs = feed(Halt(symbol="ACME", reason="news pending"))
    assert msgs == [TradingAction(1, 1_000 + feed.seq, "H", "OTHR")]


def test_day_orders_expire_at_the_close(feed: Feed) -> None:
    bid = feed.order(Side.BUY, 10, 100)
    msgs = feed(SetPhase(symbol="ACME", phase=Phase.CLOSED))
    ts = 1_000 + feed.seq
    assert msgs == [OrderDelete(1, ts, bid), TradingAction(1, ts, "C", "OPER")]


def test_a_symbol_that_does_not_fit_is_refused() -> None:
    f = Feed()
    with pytest.raises(ItchError, match="symbol"):
        f(AddInstrument(symbol="LONGSYMBOL"))
    with pytest.raises(ItchError, match="currency"):
        f(AddInstrument(symbol="EU", currency="EURO"))
    with pytest.raises(KeyError):
        f.translator.locate("LONGSYMBOL")
    msgs = f(AddInstrument(symbol="OK"))
    assert isinstance(msgs[0], StockDirectory) and msgs[0].locate == 1  # no locate was used up


def test_state_hash_follows_the_book(feed: Feed) -> None:
    empty = feed.translator.state_hash()
    bid = feed.order(Side.BUY, 10, 100)
    assert feed.translator.state_hash() != empty
    feed(CancelOrder(symbol="ACME", member="m1", order_id=bid, cl_ord_id="x"))
    assert feed.translator.state_hash() == empty


# ------------------------------------------------------------------ the property


class ItchBook:
    """An order-by-order book rebuilt from decoded ITCH messages only."""

    def __init__(self) -> None:
        self.orders: dict[int, tuple[int, str, int]] = {}  # ref -> (locate, side, price)
        self.shares: dict[int, int] = {}
        self.queues: dict[tuple[int, str, int], list[int]] = defaultdict(list)
        self.symbols: dict[int, str] = {}
        self.printed = 0  # printable volume: E, P, printable C, Q

    def _add(self, ref: int, locate: int, side: str, price: int, shares: int) -> None:
        assert ref not in self.orders, f"ref {ref} added twice"
        assert shares > 0
        self.orders[ref] = (locate, side, price)
        self.shares[ref] = shares
        self.queues[(locate, side, price)].append(ref)

    def _remove(self, ref: int) -> tuple[int, str, int]:
        key = self.orders.pop(ref)  # KeyError: the message names an unknown ref
        del self.shares[ref]
        self.queues[key].remove(ref)
        return key

    def _reduce(self, ref: int, shares: int) -> None:
        assert 0 < shares <= self.shares[ref], (ref, shares, self.shares[ref])
        self.shares[ref] -= shares
        if self.shares[ref] == 0:
            self._remove(ref)

    def apply(self, msg: ItchMessage) -> None:
        if isinstance(msg, StockDirectory):
            self.symbols[msg.locate] = msg.symbol
        elif isinstance(msg, AddOrder):
            assert self.symbols[msg.locate] == msg.symbol
            self._add(msg.order_ref, msg.locate, msg.side, msg.price, msg.shares)
        elif isinstance(msg, OrderExecuted):
            self._reduce(msg.order_ref, msg.shares)
            self.printed += msg.shares
        elif isinstance(msg, OrderExecutedWithPrice):
            self._reduce(msg.order_ref, msg.shares)
            self.printed += msg.shares if msg.printable == "Y" else 0
        elif isinstance(msg, OrderCancel):
            assert msg.shares < self.shares[msg.order_ref]  # a full cancel is a delete
            self._reduce(msg.order_ref, msg.shares)
        elif isinstance(msg, OrderDelete):
            self._remove(msg.order_ref)
        elif isinstance(msg, OrderReplace):
            locate, side, _ = self._remove(msg.orig_ref)
            self._add(msg.new_ref, locate, side, msg.price, msg.shares)
        elif isinstance(msg, TradeMessage | CrossTrade):
            self.printed += msg.shares

    def l3(self, locate: int, side: str) -> list[tuple[int, int, int]]:
        prices = sorted(
            (p for (loc, s, p), q in self.queues.items() if loc == locate and s == side and q),
            reverse=side == "B",
        )
        return [
            (p, self.shares[ref], ref) for p in prices for ref in self.queues[(locate, side, p)]
        ]


SYMBOLS = ("AAA", "BBB")
MEMBERS = ("m1", "m2", "m3")
PHASES = (
    Phase.PRE_OPEN,
    Phase.OPENING_AUCTION,
    Phase.CONTINUOUS,
    Phase.CONTINUOUS,
    Phase.CLOSING_AUCTION,
    Phase.CLOSED,
)


@st.composite
def order_fields(draw: st.DrawFn) -> dict[str, object]:
    kind = draw(
        st.sampled_from(
            ["limit"] * 4 + ["market", "ioc", "iceberg", "iceberg", "hidden", "aon", "cls", "peg"]
        )
    )
    qty = draw(st.integers(1, 20))
    fields: dict[str, object] = {
        "member": draw(st.sampled_from(MEMBERS)),
        "side": draw(st.sampled_from([Side.BUY, Side.SELL])),
        "qty": qty,
        "price": draw(st.integers(97, 103)),
        "stp": draw(st.sampled_from([STPMode.NONE, STPMode.NONE, STPMode.DECREMENT])),
    }
    if kind == "market":
        fields.update(ord_type=OrdType.MARKET, price=0)
    elif kind == "ioc":
        fields["tif"] = TimeInForce.IOC
    elif kind == "iceberg":
        fields.update(qty=qty + 5, display_qty=draw(st.integers(1, qty + 4)))
    elif kind == "hidden":
        fields["hidden"] = True
    elif kind == "aon":
        fields["aon"] = True
    elif kind == "cls":
        fields["tif"] = TimeInForce.CLS
    elif kind == "peg":
        fields.update(
            ord_type=OrdType.PEGGED,
            price=0,
            peg=draw(st.sampled_from([PegType.PRIMARY, PegType.MARKET, PegType.MIDPOINT])),
        )
    return fields


@st.composite
def engine_streams(draw: st.DrawFn) -> list[Command]:
    cmds: list[Command] = [
        AddInstrument(symbol="AAA", collar_bps=10_000),
        AddInstrument(symbol="BBB", tick_size="0.5", phase=Phase.PRE_OPEN, collar_bps=10_000),
    ]
    placed: list[tuple[int, str, str]] = []  # (order id = seq, member, symbol) of new orders
    for i in range(draw(st.integers(1, 50))):
        symbol = draw(st.sampled_from(SYMBOLS))
        action = draw(st.sampled_from(["new"] * 5 + ["cancel", "replace", "replace", "phase"]))
        if action in ("cancel", "replace") and placed:
            order_id, member, symbol = draw(st.sampled_from(placed))  # often no longer live
        else:
            order_id, member = 0, draw(st.sampled_from(MEMBERS))
        cmd: Command
        if action == "new":
            fields = draw(order_fields())
            cmd = NewOrder(symbol=symbol, cl_ord_id=f"c{i}", **fields)  # type: ignore[arg-type]
            placed.append((len(cmds) + 1, str(fields["member"]), symbol))
        elif action == "cancel":
            cmd = CancelOrder(symbol=symbol, member=member, order_id=order_id, cl_ord_id=f"x{i}")
        elif action == "replace":
            cmd = ReplaceOrder(
                symbol=symbol,
                member=member,
                cl_ord_id=f"r{i}",
                order_id=order_id,
                qty=draw(st.integers(1, 30)),
                price=draw(st.sampled_from([0, 0, 98, 100, 102])),
            )
        else:
            set_phase = SetPhase(symbol=symbol, phase=draw(st.sampled_from(PHASES)))
            cmd = draw(
                st.sampled_from(
                    [set_phase] * 4
                    + [Halt(symbol=symbol), Resume(symbol=symbol), Resume(symbol=symbol)]
                    + [MassCancel(member=member, symbol=symbol)]
                )
            )
        cmds.append(cmd)
    return cmds


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(engine_streams())
def test_itch_book_rebuilt_from_the_wire_matches_the_engine(cmds: list[Command]) -> None:
    engine = Engine()
    translator = ItchTranslator()
    book = ItchBook()
    traded = 0
    for seq, cmd in enumerate(cmds, 1):
        events: list[Event] = engine.apply(seq, 1_000 + seq, cmd)
        traded += sum(ev.qty for ev in events if isinstance(ev, Trade))
        for msg in translator.translate(events):
            book.apply(decode(encode(msg)))
        for symbol in engine.instruments:
            locate = translator.locate(symbol)
            bids, asks = engine.l3(symbol)
            assert book.l3(locate, "B") == [(p, q, oid) for p, q, oid, _ in bids]
            assert book.l3(locate, "S") == [(p, q, oid) for p, q, oid, _ in asks]
            for _, q, oid, _ in bids + asks:
                assert translator.shown(oid) == q
        assert book.printed == traded


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(engine_streams(), st.data())
def test_a_late_joiner_starting_from_state_messages_matches_the_engine(
    cmds: list[Command], data: st.DataObject
) -> None:
    engine = Engine()
    translator = ItchTranslator()
    cut = data.draw(st.integers(2, len(cmds)), label="cut")
    late: ItchBook | None = None
    for seq, cmd in enumerate(cmds, 1):
        messages = translator.translate(engine.apply(seq, 1_000 + seq, cmd))
        if late is not None:
            for msg in messages:
                late.apply(decode(encode(msg)))
        if seq == cut:
            late = ItchBook()
            state = translator.state_messages(1_000 + seq)
            assert state[0] == SystemEvent(0, 1_000 + seq, "O")
            for msg in state:
                late.apply(decode(encode(msg)))
    assert late is not None
    for symbol in engine.instruments:
        locate = translator.locate(symbol)
        assert late.symbols[locate] == symbol
        bids, asks = engine.l3(symbol)
        assert late.l3(locate, "B") == [(p, q, oid) for p, q, oid, _ in bids]
        assert late.l3(locate, "S") == [(p, q, oid) for p, q, oid, _ in asks]
