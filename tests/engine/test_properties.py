"""Property-based tests of engine invariants over random command streams (hypothesis)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradingfloor.exchange.engine.commands import (
    AddInstrument,
    CancelOrder,
    Command,
    NewOrder,
    ReplaceOrder,
    SetPhase,
)
from tradingfloor.exchange.engine.engine import Engine
from tradingfloor.exchange.engine.events import (
    Accepted,
    Cancelled,
    Event,
    Expired,
    OrderBooked,
    OrderUnbooked,
    Replaced,
    Repriced,
    Trade,
)
from tradingfloor.exchange.engine.types import OrdType, Phase, Side, STPMode, TimeInForce

SYMBOL = "PROP"
# Phase changes drawn into rich streams: calls, auctions (uncrosses), halts and re-opening.
PHASES = (
    Phase.PRE_OPEN,
    Phase.OPENING_AUCTION,
    Phase.CONTINUOUS,
    Phase.CONTINUOUS,
    Phase.CLOSING_AUCTION,
    Phase.HALTED,
)
MEMBERS = ("m1", "m2", "m3")

side_st = st.sampled_from([Side.BUY, Side.SELL])
price_st = st.integers(min_value=95, max_value=105)
qty_st = st.integers(min_value=1, max_value=20)


@st.composite
def plain_order(draw: st.DrawFn, rich: bool) -> dict[str, object]:
    kind = draw(
        st.sampled_from(
            ["limit", "limit", "limit", "ioc", "fok", "market"]
            + (
                ["iceberg", "hidden", "aon", "stop", "stop_limit", "post_only", "mtl", "cls"]
                if rich
                else []
            )
        )
    )
    qty = draw(qty_st)
    fields: dict[str, object] = {
        "member": draw(st.sampled_from(MEMBERS)),
        "side": draw(side_st),
        "qty": qty,
        "price": draw(price_st),
    }
    if rich:
        fields["stp"] = draw(st.sampled_from(list(STPMode)))
    if kind == "ioc":
        fields["tif"] = TimeInForce.IOC
    elif kind == "fok":
        fields["tif"] = TimeInForce.FOK
    elif kind == "market":
        fields.update(ord_type=OrdType.MARKET, price=0)
    elif kind == "mtl":
        fields.update(ord_type=OrdType.MARKET_TO_LIMIT, price=0)
    elif kind == "iceberg":
        fields["qty"] = qty + 5
        fields["display_qty"] = draw(st.integers(min_value=1, max_value=qty + 4))
    elif kind == "hidden":
        fields["hidden"] = True
    elif kind == "aon":
        fields["aon"] = True
    elif kind == "stop":
        fields.update(ord_type=OrdType.STOP, stop_price=draw(price_st), price=0)
    elif kind == "stop_limit":
        fields.update(ord_type=OrdType.STOP_LIMIT, stop_price=draw(price_st))
    elif kind == "cls":
        fields["tif"] = TimeInForce.CLS
    elif kind == "post_only":
        fields["post_only"] = draw(st.sampled_from(["reject", "reprice"]))
    return fields


@st.composite
def streams(draw: st.DrawFn, rich: bool = False) -> list[Command]:
    n = draw(st.integers(min_value=1, max_value=60))
    cmds: list[Command] = [AddInstrument(symbol=SYMBOL, collar_bps=10_000)]
    for i in range(n):
        action = draw(
            st.sampled_from(
                ["new", "new", "new", "cancel", "replace"] + (["phase"] if rich else [])
            )
        )
        # Order ids are command seqs: any earlier seq is a plausible (maybe dead) order id.
        target = draw(st.integers(min_value=2, max_value=len(cmds) + 1))
        member = draw(st.sampled_from(MEMBERS))
        if action == "new":
            cmds.append(
                NewOrder(symbol=SYMBOL, cl_ord_id=f"c{i}", **plain_order_fields(draw, rich))
            )
        elif action == "phase":
            cmds.append(SetPhase(symbol=SYMBOL, phase=draw(st.sampled_from(PHASES))))
        elif action == "cancel":
            cmds.append(
                CancelOrder(symbol=SYMBOL, member=member, order_id=target, cl_ord_id=f"x{i}")
            )
        else:
            cmds.append(
                ReplaceOrder(
                    symbol=SYMBOL,
                    member=member,
                    order_id=target,
                    cl_ord_id=f"r{i}",
                    qty=draw(st.integers(min_value=1, max_value=30)),
                    price=draw(st.sampled_from([0, 95, 99, 100, 101, 105])),
                )
            )
    return cmds


def plain_order_fields(draw: st.DrawFn, rich: bool) -> dict[str, object]:
    return draw(plain_order(rich))


def run(cmds: list[Command], engine: Engine | None = None, start: int = 1) -> list[Event]:
    engine = engine or Engine()
    out: list[Event] = []
    for seq, cmd in enumerate(cmds, start):
        out.extend(engine.apply(seq, 1000 + seq, cmd))
    return out


def best_prices(engine: Engine) -> tuple[int | None, int | None]:
    """Best bid/ask over resting orders that can trade immediately (all-or-none excluded)."""
    if SYMBOL not in engine.instruments:
        return None, None
    book = engine.instrument(SYMBOL).book
    bids = [o.price for lv in book.bids.iter_levels() for o in lv.orders() if not o.aon]
    asks = [o.price for lv in book.asks.iter_levels() for o in lv.orders() if not o.aon]
    return (max(bids) if bids else None), (min(asks) if asks else None)


@dataclass
class Ledger:
    """Per-order quantity accounting rebuilt from events alone."""

    qty: dict[int, int] = field(default_factory=dict)
    filled: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    closed: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def feed(self, ev: Event) -> None:
        if isinstance(ev, Accepted | Replaced):
            # A replace restates the total quantity (filled part included): earlier partial
            # cancels (self-trade decrements) are inside it.
            self.qty[ev.order_id] = ev.qty
            self.closed[ev.order_id] = 0
        elif isinstance(ev, Trade):
            self.filled[ev.maker_order_id] += ev.qty
            self.filled[ev.taker_order_id] += ev.qty
        elif isinstance(ev, Cancelled):
            self.closed[ev.order_id] += ev.cancelled_qty
        elif isinstance(ev, Expired):
            self.closed[ev.order_id] += ev.expired_qty


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(streams(rich=True))
def test_book_never_crossed_and_quantity_conserved(cmds: list[Command]) -> None:
    engine = Engine()
    ledger = Ledger()
    for seq, cmd in enumerate(cmds, 1):
        for ev in engine.apply(seq, 1000 + seq, cmd):
            ledger.feed(ev)
        bid, ask = best_prices(engine)
        if engine.phase(SYMBOL) == Phase.CONTINUOUS:  # a call may cross until it uncrosses
            assert bid is None or ask is None or bid < ask, f"crossed book {bid} >= {ask}"
        for oid, o in engine.orders.items():
            assert o.qty == o.cum_qty + o.leaves
            assert ledger.filled[oid] == o.cum_qty
        # Every order ever accepted: quantity = filled + cancelled/expired + still open.
        # (A replace that lowers quantity shrinks ``qty``; it is not a cancel event.)
        for oid, qty in ledger.qty.items():
            live = engine.orders.get(oid)
            open_qty = live.leaves if live is not None else 0
            assert ledger.filled[oid] + ledger.closed[oid] + open_qty == qty, oid
        level_sizes_match(engine)


def level_sizes_match(engine: Engine) -> None:
    for side in (engine.instrument(SYMBOL).book.bids, engine.instrument(SYMBOL).book.asks):
        for level in side.iter_levels():
            shown = [o for o in level.orders() if o.shows]
            assert level.qty == sum(o.visible for o in shown)
            assert level.count == len(shown)
            assert all(0 < o.visible <= o.leaves for o in shown)


@SETTINGS
@given(streams(rich=False))
def test_no_trade_through_and_fifo(cmds: list[Command]) -> None:
    engine = Engine()
    priority: dict[int, int] = {}  # order id -> time priority (seq of entry or last re-queue)
    for seq, cmd in enumerate(cmds, 1):
        before_bid, before_ask = best_prices(engine)
        resting = {oid: (o.price, o.is_buy) for oid, o in engine.orders.items()}
        events = engine.apply(seq, 1000 + seq, cmd)
        for ev in events:
            if isinstance(ev, Accepted) or (isinstance(ev, Replaced) and not ev.priority_kept):
                priority[ev.order_id] = seq
        trades = [ev for ev in events if isinstance(ev, Trade)]
        if not trades:
            continue
        first = trades[0]
        # The first fill is at the best opposite price: nothing better was skipped.
        assert first.price == (before_ask if first.aggressor == "buy" else before_bid)
        prices = [t.price for t in trades]
        assert prices == sorted(prices, reverse=first.aggressor == "sell")
        for t in trades:
            assert resting[t.maker_order_id][0] == t.price  # trades print at the maker price
        # FIFO within a level: makers at one price fill in time-priority order.
        by_price: dict[int, list[int]] = defaultdict(list)
        for t in trades:
            ids = by_price[t.price]
            if not ids or ids[-1] != priority[t.maker_order_id]:
                ids.append(priority[t.maker_order_id])
        for ids in by_price.values():
            assert ids == sorted(ids)


@SETTINGS
@given(streams(rich=True))
def test_fok_and_aon_are_all_or_nothing(cmds: list[Command]) -> None:
    engine = Engine()
    watched: dict[int, int] = {}
    for seq, cmd in enumerate(cmds, 1):
        events = engine.apply(seq, 1000 + seq, cmd)
        if isinstance(cmd, NewOrder) and (cmd.tif == TimeInForce.FOK or cmd.aon):
            watched[seq] = cmd.qty
        if isinstance(cmd, ReplaceOrder) and cmd.order_id in watched:
            replaced = [ev for ev in events if isinstance(ev, Replaced)]
            if replaced:
                watched[cmd.order_id] = replaced[0].leaves_qty
        fills: dict[int, int] = defaultdict(int)
        for ev in events:
            if isinstance(ev, Cancelled) and ev.order_id in watched and ev.leaves_qty:
                watched[ev.order_id] -= ev.cancelled_qty  # self-trade decrement shrinks it
            if isinstance(ev, Trade):
                fills[ev.maker_order_id] += ev.qty
                fills[ev.taker_order_id] += ev.qty
        for oid, qty in watched.items():
            if oid in fills:
                assert fills[oid] == qty, f"order {oid} part-filled {fills[oid]} of {qty}"


@SETTINGS
@given(streams(rich=True), st.integers(min_value=0, max_value=60))
def test_replay_and_snapshot_restore_are_byte_identical(cmds: list[Command], cut: int) -> None:
    enc = msgspec.msgpack.Encoder()
    first = Engine()
    events_a = run(cmds, first)
    second = Engine()
    events_b = run(cmds, second)
    assert enc.encode(events_a) == enc.encode(events_b)
    assert first.state_hash() == second.state_hash()

    cut = min(cut, len(cmds))
    head = Engine()
    events_head = run(cmds[:cut], head)
    restored = Engine.restore(head.snapshot())
    assert restored.state_hash() == head.state_hash()
    events_tail = run(cmds[cut:], restored, start=cut + 1)
    assert enc.encode(events_head + events_tail) == enc.encode(events_a)
    assert restored.state_hash() == first.state_hash()


@SETTINGS
@given(streams(rich=True))
def test_rejected_commands_change_nothing(cmds: list[Command]) -> None:
    engine = Engine()
    for seq, cmd in enumerate(cmds, 1):
        before = engine.snapshot()
        events = engine.apply(seq, 1000 + seq, cmd)
        if len(events) == 1 and events[0].__struct_config__.tag == "rejected":
            probe = Engine.restore(before)
            probe.last_seq, probe._ts = engine.last_seq, engine._ts
            probe.event_seq = engine.event_seq
            assert probe.state_hash() == engine.state_hash()


class L3Projection:
    """The order-by-order book rebuilt from events alone, as a market-data consumer would."""

    def __init__(self) -> None:
        self.queues: dict[tuple[bool, int], list[int]] = defaultdict(list)
        self.where: dict[int, tuple[bool, int]] = {}
        self.shown: dict[int, int] = {}
        self.member: dict[int, str] = {}

    def remove(self, oid: int) -> None:
        key = self.where.pop(oid, None)
        if key is not None:
            self.queues[key].remove(oid)
            del self.shown[oid]

    def feed(self, ev: Event) -> None:
        if isinstance(ev, OrderBooked):
            self.remove(ev.order_id)
            key = (ev.side == Side.BUY, ev.price)
            self.queues[key].append(ev.order_id)
            self.where[ev.order_id] = key
            self.shown[ev.order_id] = ev.qty
            self.member[ev.order_id] = ev.member
        elif isinstance(ev, Trade):
            sides = ((ev.maker_order_id, ev.maker_leaves), (ev.taker_order_id, ev.taker_leaves))
            for oid, leaves in sides:
                if oid in self.where:
                    self.shown[oid] -= ev.qty
                    if leaves == 0 or self.shown[oid] <= 0:
                        self.remove(oid)  # a refill, if any, is booked afresh
        elif isinstance(ev, Replaced) and not ev.priority_kept:
            self.remove(ev.order_id)
        elif isinstance(ev, Cancelled | Replaced) and ev.order_id in self.where:
            if ev.leaves_qty == 0:
                self.remove(ev.order_id)
            else:
                self.shown[ev.order_id] = min(self.shown[ev.order_id], ev.leaves_qty)
        elif isinstance(ev, Expired | Repriced | OrderUnbooked):
            self.remove(ev.order_id)

    def l3(self, is_buy: bool) -> list[tuple[int, int, int, str]]:
        prices = sorted(
            (p for (b, p), queue in self.queues.items() if b == is_buy and queue), reverse=is_buy
        )
        return [
            (p, self.shown[oid], oid, self.member[oid])
            for p in prices
            for oid in self.queues[(is_buy, p)]
        ]


@SETTINGS
@given(streams(rich=True))
def test_l3_book_rebuilt_from_events_matches_the_engine(cmds: list[Command]) -> None:
    engine = Engine()
    projection = L3Projection()
    for seq, cmd in enumerate(cmds, 1):
        for ev in engine.apply(seq, 1000 + seq, cmd):
            projection.feed(ev)
        if SYMBOL in engine.instruments:
            bids, asks = engine.l3(SYMBOL)
            assert projection.l3(True) == bids
            assert projection.l3(False) == asks
