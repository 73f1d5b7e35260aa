"""MarketDataFeed: a client rebuilding from snapshot + numbered updates equals the feed's book."""

from __future__ import annotations

import importlib
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradingfloor.exchange.engine.commands import (
    AddInstrument,
    CancelOrder,
    Command,
    NewOrder,
    ReplaceOrder,
)
from tradingfloor.exchange.engine.engine import Engine
from tradingfloor.exchange.engine.events import Event
from tradingfloor.exchange.engine.types import OrdType, PegType, Side, STPMode
from tradingfloor.exchange.marketdata.feed import (
    ERROR_CODES,
    L2_DEPTH,
    MAX_INBOUND_BYTES,
    MarketDataFeed,
    Subscriber,
)
from tradingfloor.exchange.marketdata.messages import (
    CHANNELS,
    ChannelTracker,
    Message,
    Sync,
    decode,
    encode,
    l1_message,
    l2_message,
    l3_message,
    price_text,
)
from tradingfloor.exchange.marketdata.views import MarketDataError

DOC = Path(__file__).resolve().parents[2] / "docs" / "marketdata-ws.md"
SYMBOLS = ("AAA", "BBB")
MINUTE = 60_000_000_000
T0 = 1_700_000_000 * 1_000_000_000


class Client:
    """What a WebSocket client does: track numbers per channel and rebuild the books."""

    def __init__(self) -> None:
        self.tracker = ChannelTracker()
        self.l1: dict[str, Message] = {}
        self.l2: dict[str, tuple[dict[str, list[Any]], dict[str, list[Any]]]] = {}
        self.l3: dict[str, dict[int, list[Any]]] = {}  # order id -> [is buy, price, size, rank]
        self.l3_ts: dict[str, object] = {}
        self.rank = 0  # time priority: later adds rank behind
        self.trades: dict[str, list[int]] = {}
        self.bars: dict[str, dict[tuple[str, int], Message]] = {}
        self.control: list[Message] = []  # acks, pongs, errors
        self.resyncs: list[tuple[str, str]] = []

    def receive(self, sub: Subscriber, lose: int | None = None) -> None:
        for i, raw in enumerate(sub.drain()):
            if i != lose:
                self.apply(decode(raw))

    def apply(self, msg: Message) -> None:
        if "seq" not in msg:
            self.control.append(msg)
            return
        action = self.tracker.on_message(msg)
        channel, symbol = str(msg["type"]), str(msg["symbol"])
        if action == Sync.RESYNC:
            self.resyncs.append((channel, symbol))
            return
        if action == Sync.IGNORE:
            return
        snap = msg["snapshot"] is True
        body = {k: v for k, v in msg.items() if k not in ("seq", "snapshot")}
        if channel == "l1":
            self.l1[symbol] = body
        elif channel == "l2":
            bids, asks = ({}, {}) if snap else self.l2[symbol]
            for side, rows in ((bids, body["bids"]), (asks, body["asks"])):
                for price, size, orders in rows:  # type: ignore[attr-defined]
                    if size:
                        side[price] = [price, size, orders]
                    else:
                        del side[price]
            self.l2[symbol] = (bids, asks)
        elif channel == "l3":
            self.apply_l3(symbol, body, snap)
        elif channel == "trade":
            if snap:
                self.trades[symbol] = [t["tradeId"] for t in body["trades"]]  # type: ignore[attr-defined]
            else:
                self.trades[symbol].append(int(body["tradeId"]))  # type: ignore[call-overload]
        else:
            bars = self.bars.setdefault(symbol, {}) if not snap else {}
            for bar in body["bars"] if snap else [body]:  # type: ignore[attr-defined]
                bars[(bar["interval"], bar["start"])] = bar
            self.bars[symbol] = bars

    def apply_l3(self, symbol: str, body: Message, snap: bool) -> None:
        orders = {} if snap else self.l3[symbol]
        for is_buy, rows in ((True, body["bids"]), (False, body["asks"])):
            for row in rows:  # type: ignore[attr-defined]
                price, size, oid = row[:3]
                op = "add" if snap else row[3]
                if op == "add":
                    orders.pop(oid, None)
                    self.rank += 1
                    orders[oid] = [is_buy, price, size, self.rank]
                elif op == "update":
                    assert orders[oid][:2] == [is_buy, price]
                    orders[oid][2] = size
                else:
                    assert (op, size) == ("delete", 0)
                    assert orders.pop(oid)[:2] == [is_buy, price]
        self.l3[symbol] = orders
        self.l3_ts[symbol] = body["timestamp"]

    def l3_message(self, symbol: str) -> Message:
        """The rebuilt L3 book in the shape of an l3 snapshot."""
        orders = self.l3[symbol]

        def rows(is_buy: bool) -> list[list[Any]]:
            mine = [(Decimal(o[1]), o[3], oid) for oid, o in orders.items() if o[0] == is_buy]
            mine.sort(key=lambda r: (-r[0] if is_buy else r[0], r[1]))
            return [[orders[oid][1], orders[oid][2], oid] for _p, _r, oid in mine]

        return {
            "type": "l3",
            "symbol": symbol,
            "bids": rows(True),
            "asks": rows(False),
            "timestamp": self.l3_ts[symbol],
        }

    def l2_rows(self, symbol: str) -> tuple[list[list[Any]], list[list[Any]]]:
        bids, asks = self.l2[symbol]
        return (
            sorted(bids.values(), key=lambda r: Decimal(r[0]), reverse=True),
            sorted(asks.values(), key=lambda r: Decimal(r[0])),
        )


def expected_l2(feed: MarketDataFeed, symbol: str) -> tuple[list[Any], list[Any]]:
    book = feed.book
    msg = decode(encode(l2_message(symbol, *book.l2(symbol, L2_DEPTH), book.tick_size(symbol))))
    return msg["bids"], msg["asks"]  # type: ignore[return-value]


def assert_client_matches(client: Client, feed: MarketDataFeed, symbol: str) -> None:
    book, tick = feed.book, feed.book.tick_size(symbol)
    assert client.l1[symbol] == decode(encode(l1_message(symbol, book.l1(symbol), tick)))
    bids, asks = client.l2_rows(symbol)
    assert (bids, asks) == expected_l2(feed, symbol)
    assert client.l3_message(symbol) == decode(encode(l3_message(symbol, book.l3(symbol), tick)))
    ids = [t.trade_id for t in book.trades(symbol)]
    got = client.trades[symbol]
    assert got == ids[len(ids) - len(got) :]
    for interval in feed.bars.intervals:
        bar = feed.bars.current(symbol, interval)
        if bar is not None:
            got_bar = client.bars[symbol][(interval, bar.start)]
            assert got_bar["close"] == price_text(bar.close, tick)
            assert got_bar["volume"] == bar.volume


def subscribe(
    feed: MarketDataFeed, sub: Subscriber, channels: list[str], symbols: list[str]
) -> None:
    req = {"op": "subscribe", "channels": channels, "symbols": symbols}
    feed.handle(sub, encode(req).decode())


class Driver:
    """A real engine whose per-command events go to the feed."""

    def __init__(self, feed: MarketDataFeed) -> None:
        self.engine = Engine()
        self.feed = feed
        self.seq = 0
        self.ts = T0

    def run(self, cmd: Command, *, ts_step: int = 1_000) -> list[Event]:
        self.seq += 1
        self.ts += ts_step
        events = self.engine.apply(self.seq, self.ts, cmd)
        self.feed.on_events(events)
        return events


def order(sym: str, side: Side, qty: int, price: int, member: str = "m1", **kw: Any) -> NewOrder:
    clid = f"{member}-{side}-{qty}-{price}-{kw.get('ord_type', '')}"
    return NewOrder(
        symbol=sym, member=member, cl_ord_id=clid, side=side, qty=qty, price=price, **kw
    )


def draw_command(data: st.DataObject, engine: Engine, i: int) -> Command:
    draw = data.draw
    kinds = ["limit"] * 6 + ["market", "cancel", "cancel", "replace", "replace", "ice", "peg"]
    kind = draw(st.sampled_from(kinds))
    sym = draw(st.sampled_from(SYMBOLS))
    side = draw(st.sampled_from([Side.BUY, Side.SELL]))
    member = draw(st.sampled_from(["m1", "m2", "m3"]))
    qty = draw(st.integers(1, 30))
    if kind in ("cancel", "replace") and engine.orders:
        live = engine.orders[draw(st.sampled_from(sorted(engine.orders)))]
        if kind == "cancel":
            return CancelOrder(symbol=live.symbol, member=live.member, order_id=live.order_id)
        return ReplaceOrder(
            symbol=live.symbol,
            member=live.member,
            cl_ord_id=f"r{i}",
            order_id=live.order_id,
            qty=qty,
            price=draw(st.sampled_from([0, 85, 100, 115])),
        )
    # Buys mostly low, sells mostly high: books often deeper than the 20-level window.
    price = draw(st.integers(70, 108) if side == Side.BUY else st.integers(92, 130))
    fields: dict[str, Any] = {"stp": draw(st.sampled_from([STPMode.NONE, STPMode.DECREMENT]))}
    if kind == "market":
        fields["ord_type"] = OrdType.MARKET
        price = 0
    elif kind == "ice":
        fields["display_qty"] = draw(st.integers(1, qty))
    elif kind == "peg":
        fields.update(ord_type=OrdType.PEGGED, peg=draw(st.sampled_from(list(PegType)[1:])))
        price = 0
    return NewOrder(
        symbol=sym,
        member=member,
        cl_ord_id=f"c{i}",
        side=side,
        qty=qty,
        price=price,
        **fields,
    )


def listed() -> tuple[MarketDataFeed, Driver]:
    feed = MarketDataFeed()
    driver = Driver(feed)
    driver.run(AddInstrument(symbol="AAA", collar_bps=10_000))
    driver.run(AddInstrument(symbol="BBB", tick_size="0.05", collar_bps=10_000))
    return feed, driver


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.integers(0, 40), st.integers(1, 60))
def test_snapshot_then_updates_rebuild_the_book_after_every_command(
    data: st.DataObject, before: int, after: int
) -> None:
    feed, driver = listed()
    for i in range(before):  # history the subscriber never sees as updates
        driver.run(draw_command(data, driver.engine, i), ts_step=7 * MINUTE // 3)
    sub = feed.connect("c1")
    client = Client()
    subscribe(feed, sub, list(CHANNELS), list(SYMBOLS))
    client.receive(sub)
    assert [m["type"] for m in client.control] == ["subscribed"]
    for symbol in SYMBOLS:
        assert_client_matches(client, feed, symbol)
    for i in range(before, before + after):
        driver.run(draw_command(data, driver.engine, i), ts_step=7 * MINUTE // 3)
        client.receive(sub)
        assert not client.resyncs
        for symbol in SYMBOLS:
            assert_client_matches(client, feed, symbol)
            for channel in CHANNELS:
                assert client.tracker.last_seq(channel, symbol) == feed.channel_seq(channel, symbol)


def deep_bids(driver: Driver, n: int) -> None:
    for k in range(n):  # bids at 100, 99, ..., one order each
        driver.run(order("AAA", Side.BUY, 1 + k, 100 - k, member=f"b{k}"))


def l2_updates(sub: Subscriber) -> list[Message]:
    return [m for m in map(decode, sub.drain()) if m["type"] == "l2"]


def test_l2_window_entry_and_exit_are_sent() -> None:
    feed, driver = listed()
    deep_bids(driver, 25)  # 100 .. 76; the window holds 100 .. 81
    sub = feed.connect("c1")
    subscribe(feed, sub, ["l2"], ["AAA"])
    (snap,) = l2_updates(sub)
    assert snap["seq"] == 0 and snap["snapshot"] is True
    assert len(snap["bids"]) == L2_DEPTH  # type: ignore[arg-type]

    driver.run(order("AAA", Side.SELL, 1, 100, member="s1"))  # the best bid goes: 80 enters
    (upd,) = l2_updates(sub)
    assert (upd["seq"], upd["snapshot"]) == (1, False)
    assert upd["bids"] == [["1.00", 0, 0], ["0.80", 21, 1]]
    assert upd["asks"] == []

    driver.run(order("AAA", Side.BUY, 9, 101, member="b9"))  # a new best: 80 leaves
    (upd,) = l2_updates(sub)
    assert upd["seq"] == 2
    assert upd["bids"] == [["1.01", 9, 1], ["0.80", 0, 0]]

    driver.run(order("AAA", Side.BUY, 3, 50, member="deep"))  # outside the window: no l2
    assert l2_updates(sub) == []
    assert feed.channel_seq("l2", "AAA") == 2


def test_updates_follow_the_snapshot_and_stop_after_unsubscribe() -> None:
    feed, driver = listed()
    driver.run(order("AAA", Side.SELL, 5, 101))
    sub = feed.connect("c1")
    subscribe(feed, sub, ["l1", "trade"], ["AAA"])
    msgs = [decode(m) for m in sub.drain()]
    assert [(m["type"], m.get("seq"), m.get("snapshot")) for m in msgs] == [
        ("subscribed", None, None),
        ("l1", 0, True),
        ("trade", 0, True),
    ]
    assert msgs[0] == {"type": "subscribed", "channels": ["l1", "trade"], "symbols": ["AAA"]}
    driver.run(order("AAA", Side.SELL, 5, 102, member="m2"))  # behind the best: no l1
    assert sub.drain() == []
    driver.run(order("AAA", Side.BUY, 7, 102, member="m3"))  # two trades, new ask
    msgs = [decode(m) for m in sub.drain()]
    assert [(m["type"], m["seq"]) for m in msgs] == [("trade", 1), ("trade", 2), ("l1", 1)]
    assert [m["price"] for m in msgs[:2]] == ["1.01", "1.02"]
    assert msgs[2]["ask"] == "1.02" and msgs[2]["askSize"] == 3 and msgs[2]["volume"] == 7
    feed.handle(sub, '{"op":"unsubscribe","channels":["trade"],"symbols":["AAA"]}')
    assert decode(sub.drain()[0])["type"] == "unsubscribed"
    assert sub.subscriptions == frozenset({("l1", "AAA")})
    driver.run(order("AAA", Side.BUY, 1, 102, member="m4"))
    assert [decode(m)["type"] for m in sub.drain()] == ["l1"]
    feed.handle(sub, '{"op":"ping"}')
    assert decode(sub.drain()[0]) == {"type": "pong"}


def test_one_encoding_is_shared_by_every_subscriber() -> None:
    feed, driver = listed()
    subs = [feed.connect(f"c{i}") for i in range(3)]
    for sub in subs:
        subscribe(feed, sub, ["l2"], ["AAA"])
        sub.drain()
    driver.run(order("AAA", Side.BUY, 1, 100))
    payloads = [sub.drain() for sub in subs]
    assert payloads[0][0] is payloads[1][0] is payloads[2][0]
    assert (feed.published, feed.enqueued) == (1, 3)


def test_a_slow_consumer_is_dropped_and_the_others_keep_receiving() -> None:
    feed, driver = listed()
    slow = feed.connect("slow", max_queued=3)
    fast = feed.connect("fast")
    reasons: list[str] = []
    slow.on_drop = reasons.append
    for sub in (slow, fast):
        subscribe(feed, sub, ["l1", "l2"], ["AAA"])  # ack + 2 snapshots: slow's queue is full
    fast_client = Client()
    fast_client.receive(fast)
    assert slow.pending == 3 and not slow.closed
    for k in range(4):
        driver.run(order("AAA", Side.BUY, 1, 100 + k, member=f"b{k}"))
        fast_client.receive(fast)
    assert slow.dropped == "slow consumer: 3 messages queued"
    assert reasons == [slow.dropped]
    assert slow.closed and slow.pending == 0 and slow.subscriptions == frozenset()
    assert feed.subscriber_count("l1", "AAA") == 1 and feed.drops == 1
    assert [s.client_id for s in feed.clients] == ["fast"]
    assert fast_client.tracker.last_seq("l2", "AAA") == 4
    assert_l1_l2(fast_client, feed)
    feed.handle(slow, '{"op":"ping"}')  # a dropped subscriber gets nothing more
    assert slow.pending == 0


def test_dropping_the_last_watcher_mid_command_is_safe() -> None:
    feed, driver = listed()
    sub = feed.connect("c1", max_queued=4)
    subscribe(feed, sub, list(CHANNELS), ["AAA"])  # ack + 5 snapshots: dropped at once
    assert sub.dropped is not None
    sub = feed.connect("c2", max_queued=6)
    subscribe(feed, sub, list(CHANNELS), ["AAA"])  # full queue: the next update drops it
    driver.run(order("AAA", Side.SELL, 2, 100))
    driver.run(order("AAA", Side.BUY, 3, 100, member="m2"))  # trade, l1, l2, l3, bar
    assert sub.dropped == "slow consumer: 6 messages queued"
    assert all(feed.subscriber_count(c, "AAA") == 0 for c in CHANNELS)
    assert feed.clients == []
    watcher = feed.connect("c3")
    client = Client()
    subscribe(feed, watcher, list(CHANNELS), ["AAA"])
    driver.run(order("AAA", Side.BUY, 1, 101, member="m3"))
    client.receive(watcher)
    assert_client_matches(client, feed, "AAA")


def assert_l1_l2(client: Client, feed: MarketDataFeed) -> None:
    book = feed.book
    assert client.l1["AAA"] == decode(
        encode(l1_message("AAA", book.l1("AAA"), book.tick_size("AAA")))
    )
    assert client.l2_rows("AAA") == expected_l2(feed, "AAA")


def test_replies_count_against_the_queue_bound() -> None:
    feed, _driver = listed()
    sub = feed.connect("c1", max_queued=2)
    subscribe(feed, sub, ["l1", "l2"], ["AAA"])  # ack, l1 snapshot, then no room for l2
    assert sub.dropped == "slow consumer: 2 messages queued"
    assert feed.subscriber_count("l1", "AAA") == 0


def test_resync_after_a_gap_with_the_snapshot_op() -> None:
    feed, driver = listed()
    sub = feed.connect("c1")
    client = Client()
    subscribe(feed, sub, ["l2", "l1"], ["AAA"])
    client.receive(sub)
    driver.run(order("AAA", Side.BUY, 1, 100))
    client.receive(sub, lose=0)  # the l1 update (sent before l2) is lost in transit
    driver.run(order("AAA", Side.BUY, 2, 101))
    client.receive(sub)
    assert client.resyncs == [("l1", "AAA")]
    assert client.tracker.needs_snapshot("l1", "AAA")
    assert client.l1["AAA"]["bid"] is None  # stale until resynchronised
    for channel, symbol in client.resyncs:
        feed.handle(sub, encode({"op": "snapshot", "channel": channel, "symbol": symbol}))
    client.receive(sub)
    driver.run(order("AAA", Side.BUY, 3, 102))
    client.receive(sub)
    assert client.tracker.last_seq("l1", "AAA") == feed.channel_seq("l1", "AAA") == 3
    assert_l1_l2(client, feed)


BAD_REQUESTS = [
    ("not json", "bad_json"),
    ("[1, 2]", "bad_json"),
    ("{}", "unknown_op"),
    ('{"op": "dance"}', "unknown_op"),
    ('{"op": "subscribe", "channels": "l1", "symbols": ["AAA"]}', "bad_request"),
    ('{"op": "subscribe", "channels": [], "symbols": ["AAA"]}', "bad_request"),
    ('{"op": "subscribe", "channels": ["l1"]}', "bad_request"),
    ('{"op": "unsubscribe", "channels": ["l1"], "symbols": [7]}', "bad_request"),
    ('{"op": "snapshot", "channel": 1, "symbol": "AAA"}', "bad_request"),
    ('{"op": "subscribe", "channels": ["l1", "l9"], "symbols": ["AAA"]}', "unknown_channel"),
    ('{"op": "subscribe", "channels": ["l1"], "symbols": ["AAA", "ZZZ"]}', "unknown_symbol"),
    ('{"op": "snapshot", "channel": "l1", "symbol": "ZZZ"}', "unknown_symbol"),
    ('{"op": "snapshot", "channel": "l3", "symbol": "AAA"}', "not_subscribed"),
    ('{"op": "subscribe", "channels": ["l1", "l2"], "symbols": ["AAA", "BBB"]}', "too_many"),
    ('{"op": "ping", "pad": "' + "x" * MAX_INBOUND_BYTES + '"}', "message_too_large"),
]


@pytest.mark.parametrize(("raw", "code"), BAD_REQUESTS)
def test_bad_requests_get_a_documented_code_and_change_nothing(raw: str, code: str) -> None:
    feed = MarketDataFeed(max_subscriptions=3)
    driver = Driver(feed)
    driver.run(AddInstrument(symbol="AAA"))
    driver.run(AddInstrument(symbol="BBB"))
    sub = feed.connect("c1")
    subscribe(feed, sub, ["l1"], ["AAA"])
    sub.drain()
    before = (sub.subscriptions, feed.subscriber_count("l1", "AAA"), feed.state_hash())
    feed.handle(sub, raw.encode() if code == "bad_json" else raw)
    (reply,) = (decode(m) for m in sub.drain())
    code = "too_many_subscriptions" if code == "too_many" else code
    assert reply["type"] == "error" and reply["code"] == code
    assert isinstance(reply["message"], str) and reply["message"]
    assert code in ERROR_CODES
    assert (sub.subscriptions, feed.subscriber_count("l1", "AAA"), feed.state_hash()) == before
    assert all(feed.subscriber_count(c, s) == 0 for c in CHANNELS for s in ("BBB",))


def test_every_error_code_is_tested_and_documented() -> None:
    tested = {c if c != "too_many" else "too_many_subscriptions" for _, c in BAD_REQUESTS}
    assert tested == set(ERROR_CODES)
    doc = DOC.read_text()
    for code in ERROR_CODES:
        assert f"`{code}`" in doc, code


def test_replayed_events_publish_nothing_and_gaps_raise() -> None:
    feed, driver = listed()
    sub = feed.connect("c1")
    subscribe(feed, sub, list(CHANNELS), ["AAA"])
    sub.drain()
    events = driver.run(order("AAA", Side.BUY, 5, 100))
    events += driver.run(order("AAA", Side.SELL, 2, 100, member="m2"))
    sub.drain()
    state = feed.state_hash()
    feed.on_events(events)  # a replay: already applied
    assert sub.drain() == [] and feed.state_hash() == state
    later = driver.engine.apply(driver.seq + 1, driver.ts + 1, order("AAA", Side.BUY, 1, 99))
    with pytest.raises(MarketDataError, match="missed"):
        feed.on_events(later[1:])
    client = Client()
    feed.handle(sub, encode({"op": "subscribe", "channels": list(CHANNELS), "symbols": ["AAA"]}))
    client.receive(sub)
    more = driver.engine.apply(driver.seq + 2, driver.ts + 2, order("AAA", Side.SELL, 1, 99))
    with pytest.raises(MarketDataError, match="missed"):  # applied up to the gap, then raises
        feed.on_events(later + more[1:])
    client.receive(sub)
    assert feed.book.last_seq == later[-1].seq
    assert_client_matches(client, feed, "AAA")  # what was applied was also published


def test_state_is_the_same_with_or_without_subscribers() -> None:
    quiet, loud = MarketDataFeed(), MarketDataFeed()
    sub = loud.connect("c1")
    engine = Engine()
    cmds: list[Command] = [AddInstrument(symbol="AAA")]
    cmds += [order("AAA", Side.BUY, 1 + k, 100 - k % 7, member=f"b{k}") for k in range(10)]
    cmds += [order("AAA", Side.SELL, 20, 95, member="s")]
    for seq, cmd in enumerate(cmds, 1):
        events = engine.apply(seq, T0 + seq * MINUTE, cmd)
        quiet.on_events(events)
        loud.on_events(events)
        if seq == 1:
            subscribe(loud, sub, list(CHANNELS), ["AAA"])
    assert quiet.state_hash() == loud.state_hash()
    assert quiet.book.state_hash() != MarketDataFeed().book.state_hash()


def test_bars_close_with_trades_in_a_later_minute_and_with_close_bars() -> None:
    feed = MarketDataFeed(intervals=["1m"])
    driver = Driver(feed)
    driver.ts = T0 - T0 % MINUTE  # at a minute boundary
    driver.run(AddInstrument(symbol="AAA"))
    sub = feed.connect("c1")
    subscribe(feed, sub, ["bar"], ["AAA"])
    snap = decode(sub.drain()[1])
    assert snap == {"seq": 0, "snapshot": True, "type": "bar", "symbol": "AAA", "bars": []}
    driver.run(order("AAA", Side.SELL, 5, 100))
    driver.run(order("AAA", Side.BUY, 2, 100, member="m2"))
    (bar,) = map(decode, sub.drain())
    assert (bar["seq"], bar["closed"], bar["close"], bar["volume"]) == (1, False, "1.00", 2)
    driver.run(order("AAA", Side.BUY, 1, 100, member="m3"), ts_step=MINUTE)  # next minute
    closed, current = map(decode, sub.drain())
    assert (closed["seq"], closed["closed"], closed["volume"]) == (2, True, 2)
    assert (current["seq"], current["closed"], current["volume"]) == (3, False, 1)
    assert current["start"] == closed["start"] + MINUTE  # type: ignore[operator]
    assert [b.volume for b in feed.close_bars(driver.ts + MINUTE)] == [1]
    (last,) = map(decode, sub.drain())
    assert (last["seq"], last["closed"]) == (4, True)
    history = feed.bar_history("AAA", "1m", 10)
    assert [(b["volume"], b["closed"]) for b in history["bars"]] == [(2, True), (1, True)]  # type: ignore[attr-defined]
    assert feed.bar_history("AAA", "1m", 1)["bars"][0]["volume"] == 1  # type: ignore[index]


def test_snapshot_arguments_are_checked() -> None:
    feed, _driver = listed()
    with pytest.raises(KeyError):
        feed.snapshot("l1", "ZZZ")
    with pytest.raises(ValueError):
        feed.snapshot("news", "AAA")
    with pytest.raises(ValueError):
        feed.snapshot("l2", "AAA", depth=L2_DEPTH + 1)
    with pytest.raises(ValueError):
        feed.connect("c1", max_queued=0)
    feed.connect("c2")
    with pytest.raises(ValueError, match="already"):
        feed.connect("c2")


@pytest.mark.parametrize("name", ["marketdata.feed", "http"])
def test_public_names_are_documented(name: str) -> None:
    module = importlib.import_module(f"tradingfloor.exchange.{name}")
    section = DOC.read_text().split("## Public API", 1)[1]
    entry = re.search(rf"- `{re.escape(name)}`:(.*?)(?=\n- |\Z)", section, re.S)
    assert entry is not None, f"{name} is missing from docs/marketdata-ws.md"
    assert set(module.__all__) == set(re.findall(r"`(\w+)`", entry.group(1)))


def test_the_docs_show_what_the_feed_sends() -> None:
    feed = MarketDataFeed(intervals=["1m"])
    engine, seq = Engine(), 0
    t0 = 1_700_000_000_000_000_000

    def run(cmd: Command) -> None:
        nonlocal seq
        seq += 1
        feed.on_events(engine.apply(seq, t0 + 1_000 * seq, cmd))

    def acme(member: str, side: Side, qty: int, price: int) -> NewOrder:
        return NewOrder(
            symbol="ACME",
            member=member,
            cl_ord_id=f"{member}{qty}",
            side=side,
            qty=qty,
            price=price,
        )

    run(AddInstrument(symbol="ACME", tick_size="0.01"))
    run(acme("m1", Side.BUY, 300, 10_050))
    run(acme("m2", Side.BUY, 200, 10_050))
    run(acme("m1", Side.BUY, 100, 10_025))
    run(acme("m3", Side.SELL, 400, 10_075))
    run(acme("m4", Side.SELL, 150, 10_075))
    sub = feed.connect("doc")
    subscribe(feed, sub, list(CHANNELS), ["ACME"])
    sent = sub.drain()
    run(acme("m5", Side.BUY, 100, 10_075))
    sent += sub.drain()
    run(CancelOrder(symbol="ACME", member="m2", order_id=3))
    sent += sub.drain()
    assert len(sent) == 14
    doc = DOC.read_text()
    for line in sent:
        assert f"\n{line}\n" in doc, line
