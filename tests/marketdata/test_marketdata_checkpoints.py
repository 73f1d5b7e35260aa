"""Projection checkpoints of the JSON feed (``marketdata``), the binary feed (``itch``) and the
operator's status (``status``): a projection restored from a checkpoint taken after any command,
then fed the rest of the journal, has the same state and publishes the same messages, ITCH bytes
and REST answers as one that never stopped; unusable bytes are refused and leave it fresh."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tradingfloor.exchange.checkpoint import (
    CheckpointError,
    decode_checkpoint,
    encode_checkpoint,
)
from tradingfloor.exchange.engine.commands import (
    AddInstrument,
    Command,
    Halt,
    MassCancel,
    NewOrder,
    Resume,
    SetKillSwitch,
    SetPhase,
    SetPriceBand,
)
from tradingfloor.exchange.engine.events import Event
from tradingfloor.exchange.engine.types import (
    OrdType,
    PegType,
    Phase,
    Side,
    TimeInForce,
)
from tradingfloor.exchange.marketdata.binaryfeed import BinaryFeed
from tradingfloor.exchange.marketdata.feed import MarketDataFeed, Subscriber
from tradingfloor.exchange.marketdata.itch import encode as itch_encode
from tradingfloor.exchange.marketdata.messages import CHANNELS, encode
from tradingfloor.exchange.operator import VenueStatus
from tradingfloor.sim.market import MarketView
from tradingfloor.sim.participant import NS_PER_S, Participant
from tradingfloor.sim.population import build_participants
from tradingfloor.sim.simulator import NS_PER_MINUTE, Simulation, default_instruments

SEED = 11
MINUTES = 6  # long enough for closed 1m and 5m bars
CLOSE_BARS_EVERY = 700  # commands between close_bars calls (the sequencer clock's role)
EARLY_SUBSCRIBER_AT = 10  # numbers channels before the split, so restored numbers matter


class Extras(Participant):
    """What the default crowd does not send: icebergs, pegs, stops, mass cancels, an auction,
    halts and price bands, kill switches on other members, a listing in the middle."""

    kind = "extras"
    interval_ns = 2 * NS_PER_S

    def __init__(self, member: str, *, seed: int, victims: Sequence[str]) -> None:
        super().__init__(member, seed=seed)
        self.victims = list(victims)
        self.turns = 0
        self.undo: list[Command] = []  # operator actions to reverse on a later turn
        self.ids = 0

    def cl(self) -> str:
        self.ids += 1
        return f"x{self.ids}"

    def decide(self, now_ns: int, market: MarketView, out: list[Command]) -> None:
        self.turns += 1
        if self.turns in (30, 150):  # TSLA halted for most of the run
            out.append(
                Halt(symbol="TSLA", reason="news") if self.turns == 30 else Resume(symbol="TSLA")
            )
            return
        if self.turns == 60:
            out.append(AddInstrument(symbol="NVDA", reference_price=13_000, band_bps=1_000))
            return
        if self.undo and self.percent(50):
            out.append(self.undo.pop())
            return
        symbols = sorted(market.symbols)
        view = market.symbols[self.rng.choice(symbols)]
        sym, anchor = view.symbol, max(view.anchor_price(), 100)
        side = Side.BUY if self.percent(50) else Side.SELL
        sign = -1 if side == Side.BUY else 1
        roll = self.rng.randrange(16)
        if roll >= 12:  # small orders deep in the book: more levels than the L2 window
            for _ in range(4):
                out.append(
                    NewOrder(
                        symbol=sym,
                        member=f"{self.member}D",  # not in this member's mass cancels
                        cl_ord_id=self.cl(),
                        side=side,
                        qty=100,
                        price=anchor + sign * self.rng.randrange(5, 60),
                        tif=TimeInForce.GTC,
                    )
                )
        elif roll < 3:  # iceberg resting near the touch
            qty = 100 * (2 + self.rng.randrange(8))
            price = anchor + sign * self.rng.randrange(1, 20)
            order = NewOrder(
                symbol=sym,
                member=self.member,
                cl_ord_id=self.cl(),
                side=side,
                qty=qty,
                price=price,
                display_qty=100,
            )
            out.append(order)
        elif roll < 5:
            out.append(
                NewOrder(
                    symbol=sym,
                    member=self.member,
                    cl_ord_id=self.cl(),
                    side=side,
                    qty=100,
                    ord_type=OrdType.PEGGED,
                    peg=PegType.PRIMARY,
                )
            )
        elif roll < 7:  # a stop a little away from the market
            out.append(
                NewOrder(
                    symbol=sym,
                    member=self.member,
                    cl_ord_id=self.cl(),
                    side=side,
                    qty=100,
                    ord_type=OrdType.STOP,
                    stop_price=anchor - sign * self.rng.randrange(1, 10),
                    tif=TimeInForce.DAY,
                )
            )
        elif roll == 7:
            out.append(MassCancel(member=self.member, cl_ord_id=self.cl(), symbol=sym))
        elif roll == 8:
            out.append(Halt(symbol=sym, reason="operator"))
            self.undo.append(Resume(symbol=sym))
        elif roll == 9:  # a closing call, then back to continuous: an uncross
            out.append(SetPhase(symbol=sym, phase=Phase.CLOSING_AUCTION))
            self.undo.append(SetPhase(symbol=sym, phase=Phase.CONTINUOUS))
        elif roll == 10:
            out.append(SetPriceBand(symbol=sym, band_bps=self.rng.choice([300, 800, 1_000])))
        else:
            victim = self.rng.choice(self.victims)
            out.append(SetKillSwitch(member=victim, active=True))
            self.undo.append(SetKillSwitch(member=victim, active=False))


Step = tuple[Command, tuple[Event, ...]]


@functools.cache
def stream() -> tuple[Step, ...]:
    """A simulated venue's commands and events (the journal a restart replays)."""
    instruments = default_instruments()
    crowd = build_participants(instruments, seed=SEED)
    extras = Extras("EXTRA", seed=SEED, victims=[p.member for p in crowd[:4]])
    steps: list[Step] = []
    Simulation(
        instruments,
        [*crowd, extras],
        duration_ns=MINUTES * NS_PER_MINUTE,
        seed=SEED,
        observer=lambda command, events: steps.append((command, tuple(events))),
    ).run()
    return tuple(steps)


MEMBERS = ("MEMBER1", "MEMBER2")  # the status's configured members


class Packets:
    """Stands in for the UDP publisher: what the binary feed hands it, command by command."""

    def __init__(self) -> None:
        self.sent: list[list[bytes]] = []

    def publish(self, messages: list[bytes]) -> None:
        self.sent.append(messages)


@dataclass
class Projections:
    """The three checkpointed projections of one venue process, fed as the venue feeds them."""

    feed: MarketDataFeed = field(default_factory=MarketDataFeed)
    binary: BinaryFeed = field(default_factory=BinaryFeed)
    status: VenueStatus = field(default_factory=lambda: VenueStatus(MEMBERS))
    last_ts: int = 0

    @property
    def parts(self) -> list[Any]:
        return [self.feed, self.binary, self.status]

    def apply(self, i: int, step: Step) -> None:
        command, events = step
        self.feed.on_events(events)
        self.binary.on_events(command, events)
        self.status.on_events(command, events)
        if events:
            self.last_ts = events[-1].ts
        if i % CLOSE_BARS_EVERY == CLOSE_BARS_EVERY - 1:
            self.feed.close_bars(self.last_ts)

    def checkpoint(self, seq: int) -> bytes:
        parts = {p.checkpoint_name: p.checkpoint() for p in self.parts}
        return encode_checkpoint(seq, self.feed.book.last_seq, parts)

    @classmethod
    def restored(cls, body: bytes) -> Projections:
        fresh = cls()
        parts = decode_checkpoint(body).parts
        for p in fresh.parts:
            p.restore_checkpoint(parts[p.checkpoint_name])
        return fresh

    def subscribe_all(self, client_id: str) -> Subscriber:
        sub = self.feed.connect(client_id, max_queued=10**8)
        request = {"op": "subscribe", "channels": list(CHANNELS), "symbols": self.symbols()}
        self.feed.handle(sub, encode(request))
        return sub

    def symbols(self) -> list[str]:
        return self.feed.book.symbols()

    def listen(self) -> Packets:
        packets = Packets()
        self.binary.publisher = packets  # type: ignore[assignment]
        return packets

    def rest(self) -> list[Any]:
        """What the REST and snapshot requests answer now."""
        feed, out = self.feed, []
        for sym in self.symbols():
            out.extend(feed.snapshot(channel, sym) for channel in CHANNELS)
            for interval in feed.bars.intervals:
                out.append(feed.bar_history(sym, interval, 5_000))
        return out

    def itch_state(self) -> tuple[int, list[bytes]]:
        """What a session opened now would start with (at the binary feed's start time)."""
        messages = self.binary.translator.state_messages(self.binary.last_ts)
        return self.binary.last_ts, [itch_encode(m) for m in messages]

    def status_view(self) -> tuple[list[Any], list[tuple[str, bool]]]:
        return list(self.status.instruments.values()), list(self.status.kill_switch.items())


def run(k: int) -> tuple[Projections, Projections, Subscriber, Subscriber, Packets, Packets]:
    """A applies the whole stream; after its first ``k`` commands it is checkpointed (it is
    then the B of the brief) and C is restored from those bytes and applies the rest. A late
    subscriber and a packet recorder join A and C right after the split."""
    steps = stream()
    a = Projections()
    for i, step in enumerate(steps[:k]):
        a.apply(i, step)
        if i == EARLY_SUBSCRIBER_AT:
            a.subscribe_all("early")
    before = (a.feed.state_hash(), a.rest(), a.itch_state(), a.status_view())
    body = a.checkpoint(k)
    assert (a.feed.state_hash(), a.rest(), a.itch_state(), a.status_view()) == before
    c = Projections.restored(body)
    c.last_ts = a.last_ts  # the venue's clock, not a projection's state
    for pa, pc in zip(a.parts, c.parts, strict=True):  # nothing lost on the way
        assert pc.checkpoint() == pa.checkpoint(), pa.checkpoint_name
    assert c.feed.state_hash() == a.feed.state_hash()
    assert c.binary.translator.state_hash() == a.binary.translator.state_hash()
    assert (c.rest(), c.itch_state(), c.status_view()) == before[1:]
    late_a, late_c = a.subscribe_all("late"), c.subscribe_all("late")
    packets_a, packets_c = a.listen(), c.listen()
    for i, step in enumerate(steps[k:], k):
        a.apply(i, step)
        c.apply(i, step)
    return a, c, late_a, late_c, packets_a, packets_c


def assert_same(a: Projections, c: Projections) -> None:
    assert c.feed.state_hash() == a.feed.state_hash()
    assert c.feed.book.state_hash() == a.feed.book.state_hash()
    assert c.feed.bars.state_hash() == a.feed.bars.state_hash()
    for sym in a.symbols():
        for channel in CHANNELS:
            assert c.feed.channel_seq(channel, sym) == a.feed.channel_seq(channel, sym)
    assert c.rest() == a.rest()
    assert c.binary.translator.state_hash() == a.binary.translator.state_hash()
    assert c.itch_state() == a.itch_state()
    assert c.status_view() == a.status_view()
    for pa, pc in zip(a.parts, c.parts, strict=True):  # checkpoints are deterministic too
        assert pc.checkpoint() == pa.checkpoint(), pa.checkpoint_name


def test_the_stream_exercises_what_the_checkpoints_hold() -> None:
    steps = stream()
    kinds = {type(ev).__name__ for _cmd, events in steps for ev in events}
    assert {"Trade", "OrderBooked", "Replaced", "Cancelled", "AuctionUncrossed"} <= kinds
    assert {"PhaseChanged", "KillSwitchChanged", "InstrumentUpdated", "Repriced"} <= kinds
    a = Projections()
    deepest = 0
    for i, step in enumerate(steps):
        a.apply(i, step)
        if i == EARLY_SUBSCRIBER_AT:
            a.subscribe_all("early")
        if i % 50 == 0:
            deepest = max(deepest, *(len(a.feed.book.l2(s, 100).asks) for s in a.symbols()))
    assert deepest > 20  # levels enter and leave the top-20 window
    assert "NVDA" in a.symbols()
    assert all(a.feed.bars.history("AAPL", i) for i in ("1m", "5m"))
    assert a.feed.channel_seq("l3", "AAPL") > 0
    assert any(a.status.kill_switch.values()) or any(
        isinstance(cmd, SetKillSwitch) for cmd, _ in steps
    )


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 1000))
@example(0)
@example(1)
@example(300)
@example(700)
@example(1000)
def test_restored_projections_continue_as_if_never_stopped(permille: int) -> None:
    """Split at command ``k`` = ``permille`` thousandths of the stream (1000: after the last)."""
    k = len(stream()) * permille // 1000
    a, c, late_a, late_c, packets_a, packets_c = run(k)
    got = late_c.drain()
    assert got == late_a.drain()
    assert packets_c.sent == packets_a.sent
    assert_same(a, c)
    if EARLY_SUBSCRIBER_AT < k < len(stream()):  # numbers continue from before the split
        messages = [msgspec.json.decode(m) for m in got]
        assert any(m.get("snapshot") is True and m["seq"] > 0 for m in messages)
        assert any(m.get("snapshot") is False for m in messages) and packets_c.sent


# ------------------------------------------------------------------ unusable bytes


def fed(k: int) -> Projections:
    p = Projections()
    for i, step in enumerate(stream()[:k]):
        p.apply(i, step)
    return p


def fresh_views(p: Projections) -> tuple[object, ...]:
    return (
        p.feed.state_hash(),
        p.symbols(),
        p.feed.bars.now,
        p.binary.translator.state_hash(),
        p.itch_state(),
        p.status_view(),
    )


def damaged(good: bytes, name: str) -> list[bytes]:
    """Garbage, truncations, another version, and a well-typed part that cannot be true."""
    out = [b"", b"\x00", b"\xc1", b"garbage" * 5, good[: len(good) // 2], good[:-1], good + b"x"]
    raw = msgspec.msgpack.decode(good)
    out.append(msgspec.msgpack.encode([raw[0] + 1, *raw[1:]]))  # version
    out.append(msgspec.msgpack.encode(raw[:-1]))  # a field missing
    out.append(msgspec.msgpack.encode({"version": raw[0]}))  # not the array layout
    if name == "marketdata":
        book = raw[1]
        inst = book[1][0]
        broken = [*inst]
        broken[1] = "-0.01"  # tick size
        out.append(msgspec.msgpack.encode([raw[0], [book[0], [broken]], *raw[2:]]))
        broken = [*inst]
        broken[7] = {}  # members of the queued orders
        out.append(msgspec.msgpack.encode([raw[0], [book[0], [broken]], *raw[2:]]))
        out.append(msgspec.msgpack.encode([*raw[:3], [["l9", "AAPL", 3]]]))  # channel
        out.append(msgspec.msgpack.encode([*raw[:3], [["l1", "ZZZZ", 3]]]))  # unlisted
        bars = [["1m"], *raw[2][1:]]
        out.append(msgspec.msgpack.encode([*raw[:2], bars, raw[3]]))  # other intervals
    elif name == "itch":
        listings, book = raw[1]
        out.append(msgspec.msgpack.encode([raw[0], [listings[1:], book], raw[2]]))  # locates
        ref, (_locate, *rest) = next(iter(book.items()))
        unlisted = {**book, ref: [len(listings) + 1, *rest]}  # an order of no listed symbol
        out.append(msgspec.msgpack.encode([raw[0], [listings, unlisted], raw[2]]))
        shown_zero = {**book, ref: [_locate, *rest[:-1], 0]}
        out.append(msgspec.msgpack.encode([raw[0], [listings, shown_zero], raw[2]]))
    else:
        instruments = [[i[0], "zero", *i[2:]] for i in raw[1]]
        out.append(msgspec.msgpack.encode([raw[0], instruments, raw[2]]))
    return out


@pytest.mark.parametrize("name", ["marketdata", "itch", "status"])
def test_unusable_bytes_are_refused_and_leave_the_projection_fresh(name: str) -> None:
    source = fed(len(stream()) // 3)
    good = {p.checkpoint_name: p for p in source.parts}[f"{name}/1"].checkpoint()
    blank = fresh_views(Projections())
    for bad in damaged(good, name):
        p = Projections()
        part = {q.checkpoint_name: q for q in p.parts}[f"{name}/1"]
        with pytest.raises(CheckpointError):
            part.restore_checkpoint(bad)
        assert fresh_views(p) == blank
        # Still usable: the good bytes restore, or a full replay works.
        part.restore_checkpoint(good)
        assert part.checkpoint() == good
        q = Projections()
        with pytest.raises(CheckpointError):
            {r.checkpoint_name: r for r in q.parts}[f"{name}/1"].restore_checkpoint(bad)
        for i, step in enumerate(stream()[:50]):
            q.apply(i, step)
        assert q.feed.state_hash() == fed(50).feed.state_hash()


def test_restore_needs_a_fresh_projection() -> None:
    source = fed(100)
    for p in source.parts:
        with pytest.raises(RuntimeError):
            p.restore_checkpoint(p.checkpoint())


def test_every_field_of_the_feed_state_matters() -> None:
    """Changing any one field of the checkpoint's book, bars or channel numbers changes what a
    restored feed holds or answers, or is refused: no field is carried for nothing."""
    k = len(stream()) * 2 // 3
    b = fed(k)
    b.subscribe_all("early")  # numbers channels
    for i, step in enumerate(stream()[k : k + 200], k):
        b.apply(i, step)
    body = b.feed.checkpoint()
    reference = Projections()
    reference.feed.restore_checkpoint(body)
    want = (reference.feed.state_hash(), reference.rest())
    version, (last_seq, instruments), bars, numbers = msgspec.msgpack.decode(body)
    variants: dict[str, list[Any]] = {
        "channel numbers": [version, [last_seq, instruments], bars, []],
        "last seq": [version, [last_seq + 1, instruments], bars, numbers],
    }
    for f in range(len(instruments[0])):
        changed = [[*inst[:f], _other(inst[f]), *inst[f + 1 :]] for inst in instruments]
        variants[f"instrument field {f}"] = [version, [last_seq, changed], bars, numbers]
    for f in range(len(bars)):
        changed = [*bars[:f], _other(bars[f]), *bars[f + 1 :]]
        variants[f"bars field {f}"] = [version, [last_seq, instruments], changed, numbers]
    for what, raw in variants.items():
        p = Projections()
        try:
            p.feed.restore_checkpoint(msgspec.msgpack.encode(raw))
        except CheckpointError:
            continue  # refused: noticed as well
        assert (p.feed.state_hash(), p.rest()) != want, what


def _other(value: Any) -> Any:
    """A different value of the same msgpack type (empty for containers)."""
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return "closed" if value != "closed" else "halted"
    return type(value)()
