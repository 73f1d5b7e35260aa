"""The JSON market-data feed for apps: engine events in, numbered snapshot-then-update messages out.

``MarketDataFeed`` is transport-free (the WebSocket adapter is ``exchange.http``). It keeps its
own ``MarketDataBook`` and ``BarBuilder``; ``on_events(events)`` is called on the event-loop
thread once per acknowledged command with all of that command's events. The feed applies them
all, then publishes per symbol what the command changed, in this order:

- ``trade``: one message per trade, in event order;
- ``l1``: the full L1 message when any L1 field changed;
- ``l2``: the levels that changed inside the top ``L2_DEPTH`` window of each side, diffed
  against the window after the previous command, so a level entering the window is sent and a
  level leaving it (or gone) is sent with size 0 and 0 orders;
- ``l3``: order-level changes, one entry ``[price, size, order_id, op]`` per change in event
  order under ``bids``/``asks``: ``add`` (the order joins the back of the queue at ``price``,
  leaving its old place if it had one), ``update`` (new displayed size, place kept) and
  ``delete`` (size 0);
- ``bar``: every bar the command closed (``"closed": true``), then the symbol's open bar of
  each interval (``"closed": false``); a client upserts bars by ``(interval, start)``.

Each update gets the channel's next number from ``ChannelSequencer``, is encoded once and the
same ``str`` is appended to every subscriber's queue. Channels nobody subscribes to are not
built or numbered at all. Subscribers speak the JSON protocol of ``handle`` (see
docs/marketdata-ws.md); a subscriber whose queue would exceed its bound is dropped (the
publisher never waits).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Final

import msgspec

from tradingfloor.exchange.engine.events import (
    Cancelled,
    Event,
    Expired,
    LevelChanged,
    OrderBooked,
    OrderUnbooked,
    Replaced,
    Repriced,
    Trade,
)
from tradingfloor.exchange.engine.types import Side
from tradingfloor.exchange.marketdata.bars import Bar, BarBuilder
from tradingfloor.exchange.marketdata.checkpoint_state import feed_checkpoint, restore_feed
from tradingfloor.exchange.marketdata.messages import (
    CHANNELS,
    ChannelSequencer,
    Message,
    bar_message,
    decode,
    encode,
    json_string,
    l1_body,
    l1_message,
    l2_body,
    l2_message,
    l3_message,
    price_text,
    trade_body,
    trades_snapshot_message,
)
from tradingfloor.exchange.marketdata.views import (
    DEFAULT_DEPTH,
    L1,
    MAX_TRADES,
    Level,
    MarketDataBook,
    MarketDataError,
)

__all__ = [
    "ERROR_CODES",
    "L2_DEPTH",
    "MAX_INBOUND_BYTES",
    "MAX_QUEUED_MESSAGES",
    "MAX_SUBSCRIPTIONS",
    "SNAPSHOT_TRADES",
    "MarketDataFeed",
    "Subscriber",
    "pump",
]

MAX_QUEUED_MESSAGES: Final = 10_000  # per subscriber; one more and it is dropped
MAX_SUBSCRIPTIONS: Final = 1_000  # (channel, symbol) pairs per connection
MAX_INBOUND_BYTES: Final = 16_384  # largest client request accepted
_encode: Final = msgspec.json.Encoder().encode  # as messages.encode: compact, keys in order
L2_DEPTH: Final = DEFAULT_DEPTH  # levels per side in L2 snapshots and the update window
SNAPSHOT_TRADES: Final = 100  # recent trades in a trade-channel snapshot

# Error code -> when it is sent. A request that gets one changes nothing.
ERROR_CODES: Final[dict[str, str]] = {
    "message_too_large": f"the request is longer than {MAX_INBOUND_BYTES} bytes",
    "bad_json": "the request is not a JSON object",
    "unknown_op": "op is missing or not subscribe, unsubscribe, snapshot or ping",
    "bad_request": "a field is missing or has the wrong type",
    "unknown_channel": f"a channel is not one of {', '.join(CHANNELS)}",
    "unknown_symbol": "a symbol is not listed",
    "too_many_subscriptions": f"more than {MAX_SUBSCRIPTIONS} (channel, symbol) pairs",
    "not_subscribed": "a snapshot was asked for a channel the connection is not subscribed to",
}

_OPS: Final = ("subscribe", "unsubscribe", "snapshot", "ping")
_L3_EVENTS: Final = (OrderBooked, Cancelled, Replaced, Expired, Repriced, OrderUnbooked)

Key = tuple[str, str]  # (channel, symbol)


class Subscriber:
    """One connection's subscriptions and bounded outbound queue of encoded JSON messages.

    ``on_drop``, if set, is called with the reason when the feed drops the subscriber; it runs
    inside the publisher, so it must neither block nor raise (the WebSocket adapter uses it to
    stop its writer and close the connection).
    """

    __slots__ = (
        "_dropped",
        "_open",
        "_queue",
        "_ready",
        "_subs",
        "client_id",
        "max_queued",
        "on_drop",
    )

    def __init__(self, client_id: str, max_queued: int) -> None:
        if max_queued < 1:
            raise ValueError(f"max_queued {max_queued} < 1")
        self.client_id = client_id
        self.max_queued = max_queued
        self._queue: deque[str] = deque()
        self._ready = asyncio.Event()  # set when there is something to send or it is over
        self._subs: set[Key] = set()
        self._open = True
        self._dropped: str | None = None
        self.on_drop: Callable[[str], None] | None = None

    @property
    def subscriptions(self) -> frozenset[Key]:
        """The (channel, symbol) pairs subscribed to."""
        return frozenset(self._subs)

    @property
    def dropped(self) -> str | None:
        """Why the feed dropped this subscriber, or None."""
        return self._dropped

    @property
    def closed(self) -> bool:
        """Disconnected or dropped: nothing more is queued."""
        return not self._open

    @property
    def pending(self) -> int:
        """Messages queued and not yet taken by ``pop``/``drain``."""
        return len(self._queue)

    def pop(self) -> str | None:
        """The oldest queued message, or None when the queue is empty."""
        return self._queue.popleft() if self._queue else None

    def drain(self) -> list[str]:
        """Take every queued message, oldest first."""
        out = list(self._queue)
        self._queue.clear()
        return out

    async def wait(self) -> bool:
        """Wait until a message is queued (True) or the subscriber is closed (False)."""
        while self._open and not self._queue:
            self._ready.clear()
            await self._ready.wait()
        return self._open

    def _push(self, payload: str) -> bool:
        """Queue one message; False (and nothing queued) if the queue is full."""
        if len(self._queue) >= self.max_queued:
            return False
        self._queue.append(payload)
        self._ready.set()
        return True

    def _close(self, reason: str | None) -> None:
        if not self._open:
            return
        self._open = False
        self._dropped = reason
        self._queue.clear()
        self._ready.set()


async def pump(subscriber: Subscriber, send: Callable[[str], Awaitable[None]]) -> None:
    """Send the subscriber's messages in order until it is closed (the writer of a connection)."""
    while await subscriber.wait():
        while (payload := subscriber.pop()) is not None:
            await send(payload)


Touched = dict[int, LevelChanged]  # price -> the command's last level event at that price


class _SentL2:
    """The top-of-L2 window of one symbol as of the last update (both sides)."""

    __slots__ = ("ask_map", "asks", "bid_map", "bids")

    def __init__(self, bids: list[Level], asks: list[Level]) -> None:
        self.bids = bids  # the book's window lists (never mutated)
        self.asks = asks
        self.bid_map = {lv[0]: lv for lv in bids}  # the same levels by price
        self.ask_map = {lv[0]: lv for lv in asks}


def _in_place_changes(
    before: list[Level], old: dict[int, Level], touched: Touched, best_high: bool
) -> list[Level] | None:
    """The window's changes, best first, if the command only resized levels already in it
    (or touched levels below a full window); None, and nothing changed, otherwise.

    ``before``/``old`` as for ``_window_changes`` (only the prices of ``before`` are used, so
    it may hold older sizes); ``old`` is updated.
    """
    full = len(old) >= L2_DEPTH
    worst = before[-1][0] if before else 0
    out: list[Level] = []
    for price, ev in touched.items():
        was = old.get(price)
        if was is not None:
            if ev.qty <= 0:
                return None  # a level left the window
            now = (price, ev.qty, ev.orders)
            if now != was:
                out.append(now)
        elif not full or ((price >= worst) if best_high else (price <= worst)):
            return None  # a level joined the window
    for lv in out:
        old[lv[0]] = lv
    out.sort(reverse=best_high)
    return out


def _window_changes(
    before: list[Level],
    old: dict[int, Level],
    after: list[Level],
    touched: Touched,
    best_high: bool,
) -> list[Level]:
    """Levels of ``after`` that differ from ``before``, and those gone as (price, 0, 0), best
    first, found from the command's level events (``touched``) rather than by comparing the
    windows level by level.

    ``old`` holds the levels of the window last sent by price, and ``before`` the window they
    were taken from (its prices are those of ``old``; its sizes may be older); ``old`` is
    updated to the levels of ``after``.
    Only a touched price, or an untouched level pushed into or out of the bottom of a full
    window, can differ.
    """
    out: dict[int, Level] = {}
    full = len(after) >= L2_DEPTH
    worst = after[-1][0] if after else 0
    for price, ev in touched.items():
        now: Level | None = None
        if ev.qty > 0 and (not full or (price >= worst if best_high else price <= worst)):
            now = (price, ev.qty, ev.orders)
        if now != old.get(price):
            out[price] = (price, 0, 0) if now is None else now
    # Untouched levels entering a full window from below (a level above them left).
    if len(before) >= L2_DEPTH:
        bound = before[-1][0]
        for lv in reversed(after):
            price = lv[0]
            if (price >= bound) if best_high else (price <= bound):
                break
            if price not in touched:
                out[price] = lv
    # Untouched levels pushed out of the bottom of a full window.
    if full:
        for lv in reversed(before):
            price = lv[0]
            if (price >= worst) if best_high else (price <= worst):
                break
            if price not in touched:
                out[price] = (price, 0, 0)
    if not out:
        return []
    for price, lv in out.items():
        if lv[1]:
            old[price] = lv
        else:
            del old[price]
    return [out[price] for price in sorted(out, reverse=best_high)]


class _Watch:
    """Which channels of one symbol have watchers (``(channel, symbol) in feed._subs``, kept
    in step by ``_add``/``_remove``), and the symbol's tick size and JSON string literal."""

    __slots__ = ("bar", "json", "l1", "l2", "l3", "tick", "trade")

    def __init__(self, tick: Decimal, json: str) -> None:
        self.tick = tick
        self.json = json
        self.l1 = self.l2 = self.l3 = self.trade = self.bar = False


L3Change = tuple[bool, int, int, int, str]  # (is buy, price, displayed size, order id, op)


def _track_l3(orders: dict[int, list[int]], ev: Event, out: list[L3Change]) -> None:
    """Apply an order-level event to ``orders`` (id -> [is buy, price, shown]), noting changes.

    Mirrors ``MarketDataBook``'s L3 rules (docs/engine.md), so ``orders`` stays equal to the
    book's displayed orders while the symbol's L3 channel is watched.
    """
    if isinstance(ev, OrderBooked):
        is_buy = ev.side == Side.BUY
        orders[ev.order_id] = [is_buy, ev.price, ev.qty]
        out.append((is_buy, ev.price, ev.qty, ev.order_id, "add"))
    elif isinstance(ev, Trade):
        for oid, leaves in (
            (ev.maker_order_id, ev.maker_leaves),
            (ev.taker_order_id, ev.taker_leaves),
        ):
            entry = orders.get(oid)
            if entry is None:
                continue
            shown = entry[2] - ev.qty
            if leaves == 0 or shown <= 0:
                del orders[oid]
                out.append((bool(entry[0]), entry[1], 0, oid, "delete"))
            else:
                entry[2] = shown
                out.append((bool(entry[0]), entry[1], shown, oid, "update"))
    elif isinstance(ev, Cancelled | Replaced):
        entry = orders.get(ev.order_id)
        if entry is None:
            return
        if ev.leaves_qty == 0 or (isinstance(ev, Replaced) and not ev.priority_kept):
            del orders[ev.order_id]
            out.append((bool(entry[0]), entry[1], 0, ev.order_id, "delete"))
        elif ev.leaves_qty < entry[2]:
            entry[2] = ev.leaves_qty
            out.append((bool(entry[0]), entry[1], ev.leaves_qty, ev.order_id, "update"))
    elif isinstance(ev, Expired | Repriced | OrderUnbooked):
        gone = orders.pop(ev.order_id, None)
        if gone is not None:
            out.append((bool(gone[0]), gone[1], 0, ev.order_id, "delete"))


def _l3_update(symbol: str, changes: list[L3Change], ts: int, tick_size: Decimal) -> Message:
    bids: list[list[object]] = []
    asks: list[list[object]] = []
    for is_buy, price, size, oid, op in changes:
        (bids if is_buy else asks).append([price_text(price, tick_size), size, oid, op])
    return {"type": "l3", "symbol": symbol, "bids": bids, "asks": asks, "timestamp": ts}


def _bar_fields(bar: Bar, tick_size: Decimal, closed: bool) -> Message:
    msg = bar_message(bar, tick_size)
    del msg["type"], msg["symbol"]
    msg["closed"] = closed
    return msg


class MarketDataFeed:
    """Books, bars, subscribers and channel numbers of one engine's feed. See module docstring.

    Not thread-safe: call every method on the event-loop thread that runs the subscribers.
    """

    def __init__(
        self,
        *,
        max_queued: int = MAX_QUEUED_MESSAGES,
        max_subscriptions: int = MAX_SUBSCRIPTIONS,
        max_inbound_bytes: int = MAX_INBOUND_BYTES,
        intervals: Iterable[str] | None = None,
    ) -> None:
        if max_queued < 1 or max_subscriptions < 1 or max_inbound_bytes < 1:
            raise ValueError("feed limits must be positive")
        self.max_queued = max_queued
        self.max_subscriptions = max_subscriptions
        self.max_inbound_bytes = max_inbound_bytes
        self._book = MarketDataBook()
        self._bars = BarBuilder() if intervals is None else BarBuilder(intervals)
        self._seq = ChannelSequencer()
        self._seqs = self._seq._seq  # the numbers, for ``_send`` (as ``self._seq.advance``)
        self._watch: dict[str, _Watch] = {}  # symbols ever watched
        self._subs: dict[Key, dict[Subscriber, None]] = {}  # only non-empty entries
        # The L1 and top-of-L2 window as of the last command, kept while someone watches
        # them: an update is the difference to it.
        self._l1_sent: dict[str, L1] = {}
        self._l2_sent: dict[str, _SentL2] = {}
        self._l3_sent: dict[str, dict[int, list[int]]] = {}  # order id -> [is buy, price, shown]
        self._clients: dict[str, Subscriber] = {}
        # Counters for observation (no clocks on the hot path).
        self.published = 0  # updates encoded
        self.enqueued = 0  # update copies queued to subscribers
        self.drops = 0  # subscribers dropped as slow consumers

    # ------------------------------------------------------------------ state

    @property
    def book(self) -> MarketDataBook:
        """The L1/L2/L3/trades projection (read it; only the feed applies events to it)."""
        return self._book

    @property
    def bars(self) -> BarBuilder:
        """The OHLCV bars projection."""
        return self._bars

    def state_hash(self) -> str:
        """SHA-256 over the book's and the bars' hashes (not connections or channel numbers)."""
        both = f"{self._book.state_hash()}:{self._bars.state_hash()}"
        return hashlib.sha256(both.encode()).hexdigest()

    # ``Checkpointed`` (exchange.checkpoint); the format is ``checkpoint_state.FeedState``.

    @property
    def checkpoint_name(self) -> str:
        return "marketdata/1"

    def checkpoint(self) -> bytes:
        """The book, the bars and the channel numbers (not subscribers) after the last command."""
        return feed_checkpoint(self._book, self._bars, self._seq)

    def restore_checkpoint(self, data: bytes) -> None:
        """Continue from ``checkpoint()``'s bytes: call on a feed that has applied no event and
        has no subscriber. ``CheckpointError``, and the feed stays fresh, for unusable bytes."""
        if self._book.last_seq or self._book.symbols() or self._bars.now or self._clients:
            raise RuntimeError("restore_checkpoint needs a fresh feed")
        restore_feed(data, self._book, self._bars, self._seq)

    def channel_seq(self, channel: str, symbol: str) -> int:
        """Number of the last update published on the channel (0 if none)."""
        return self._seq.seq(channel, symbol)

    def subscriber_count(self, channel: str, symbol: str) -> int:
        return len(self._subs.get((channel, symbol), ()))

    @property
    def clients(self) -> list[Subscriber]:
        return list(self._clients.values())

    # ------------------------------------------------------------------ events in

    def on_events(self, events: Sequence[Event]) -> None:
        """Apply one command's events (seq order; already-applied seqs are skipped) and publish.

        Raises ``MarketDataError`` on a sequence gap, as ``MarketDataBook.apply`` does.
        """
        book, bars, subs = self._book, self._bars, self._subs
        if not subs:  # nobody listens (e.g. replay at startup): just project
            for ev in events:
                if book.apply(ev) and isinstance(ev, Trade):
                    bars.apply(ev)
            return
        # Symbols whose L1 / top of L2 / open bars may have changed, if watched; trades and
        # closed bars to send; L3 changes per symbol: (changes, [ts of the last]).
        # Allocated only when needed (most commands touch one or two of them).
        l1_syms: dict[str, None] | None = None
        l2_syms: dict[str, tuple[Touched, Touched, list[int]]] | None = None  # bids, asks, [ts]
        bar_syms: dict[str, None] | None = None
        trades: list[Trade] | None = None
        closed: list[Bar] | None = None
        l3_changes: dict[str, tuple[list[L3Change], list[int]]] | None = None
        l3_sent = self._l3_sent
        # ``book.apply`` inlined: the same checks, the same handlers, one type lookup.
        handlers = book._handlers
        watch = self._watch
        last_seq = book.last_seq
        try:
            for ev in events:
                seq = ev.seq
                if seq <= last_seq:
                    continue
                if seq != last_seq + 1:
                    raise MarketDataError(f"event seq {seq} after {last_seq}: events were missed")
                handler = handlers.get(type(ev))
                if handler is not None:
                    handler(ev)
                book.last_seq = last_seq = seq
                if type(ev) is LevelChanged:  # engine events are never subclassed
                    sym = ev.symbol
                    w = watch.get(sym)
                    if w is None:
                        continue
                    if w.l2:
                        if l2_syms is None:
                            l2_syms = {}
                        touched = l2_syms.get(sym)
                        if touched is None:
                            touched = l2_syms[sym] = ({}, {}, [0])
                        if ev.side == Side.BUY:
                            touched[0][ev.price] = ev
                        else:
                            touched[1][ev.price] = ev
                        touched[2][0] = ev.ts  # the book's L2 ts after the command
                    if w.l1:
                        if l1_syms is None:
                            l1_syms = {sym: None}
                        else:
                            l1_syms[sym] = None
                elif type(ev) is Trade:
                    sym = ev.symbol
                    done = bars.add_trade(sym, ev.ts, ev.price, ev.qty)  # bars.apply(ev)
                    if done:
                        if closed is None:
                            closed = done
                        else:
                            closed.extend(done)
                    w = watch.get(sym)
                    if w is None:
                        continue
                    if w.trade:
                        if trades is None:
                            trades = [ev]
                        else:
                            trades.append(ev)
                    if w.l1:
                        if l1_syms is None:
                            l1_syms = {sym: None}
                        else:
                            l1_syms[sym] = None
                    if w.bar:
                        if bar_syms is None:
                            bar_syms = {sym: None}
                        else:
                            bar_syms[sym] = None
                    if w.l3:
                        if l3_changes is None:
                            l3_changes = {}
                        changes, at = l3_changes.setdefault(sym, ([], [0]))
                        _track_l3(l3_sent[sym], ev, changes)
                        at[0] = ev.ts
                elif l3_sent and isinstance(ev, _L3_EVENTS) and ev.symbol in l3_sent:
                    if l3_changes is None:
                        l3_changes = {}
                    changes, at = l3_changes.setdefault(ev.symbol, ([], [0]))
                    _track_l3(l3_sent[ev.symbol], ev, changes)
                    at[0] = ev.ts
        finally:  # on a sequence gap, still publish what was applied before it
            publish = self._publish
            send = self._send
            if trades is not None:
                for t in trades:
                    key = ("trade", t.symbol)
                    targets = subs.get(key)
                    if targets:
                        w = watch[t.symbol]
                        send(key, targets, trade_body(w.json, t, w.tick))
            if l1_syms is not None:
                l1_sent = self._l1_sent
                for sym in l1_syms:
                    sent = l1_sent.get(sym)  # None: its last watcher was dropped just now
                    l1 = book.l1(sym)
                    if sent is not None and l1 != sent:
                        l1_sent[sym] = l1
                        key = ("l1", sym)
                        targets = subs.get(key)
                        if targets:
                            w = watch[sym]
                            send(key, targets, l1_body(w.json, l1, w.tick))
            if l2_syms is not None:
                self._publish_l2(l2_syms)
            if l3_changes is not None:
                for sym, (changes, at) in l3_changes.items():
                    if changes:
                        msg = _l3_update(sym, changes, at[0], book.tick_size(sym))
                        publish(("l3", sym), msg)
            if closed:
                self._publish_bars(closed, True)
            if bar_syms is not None:
                for sym in bar_syms:
                    current = [bars.current(sym, i) for i in bars.intervals]
                    self._publish_bars([b for b in current if b is not None], False)

    def _publish_l2(self, symbols: Mapping[str, tuple[Touched, Touched, list[int]]]) -> None:
        """Send each symbol's changes inside the top-of-L2 window since the last command."""
        l2_sent = self._l2_sent
        for sym, (touched_bids, touched_asks, at) in symbols.items():
            sent = l2_sent.get(sym)  # None: its last watcher was dropped just now
            if sent is None:
                continue
            bid_changes = (
                _in_place_changes(sent.bids, sent.bid_map, touched_bids, True)
                if touched_bids
                else []
            )
            ask_changes = (
                _in_place_changes(sent.asks, sent.ask_map, touched_asks, False)
                if touched_asks
                else []
            )
            if bid_changes is None or ask_changes is None:
                # Levels joined or left: compare with the book's window. Its lists are the
                # book's own (L2_DEPTH == DEFAULT_DEPTH) and stay the same object until a
                # level change may have touched that side's window.
                bids, asks, _ts = self._book.l2_window(sym)
                if bid_changes is None:
                    bid_changes = (
                        _window_changes(sent.bids, sent.bid_map, bids, touched_bids, True)
                        if bids is not sent.bids
                        else []
                    )
                    sent.bids = bids
                if ask_changes is None:
                    ask_changes = (
                        _window_changes(sent.asks, sent.ask_map, asks, touched_asks, False)
                        if asks is not sent.asks
                        else []
                    )
                    sent.asks = asks
            if bid_changes or ask_changes:
                key = ("l2", sym)
                targets = self._subs.get(key)
                if targets:
                    w = self._watch[sym]
                    body = l2_body(w.json, bid_changes, ask_changes, at[0], w.tick)
                    self._send(key, targets, body)

    def close_bars(self, ts: int) -> list[Bar]:
        """Close the bars that end at or before ``ts`` and publish them; returns them.

        ``ts`` must come from the sequencer's clock (it must not be older than any event
        already applied), so that bars stay a deterministic projection of the journal.
        """
        closed = self._bars.close_until(ts)
        self._publish_bars(closed, True)
        return closed

    def _publish_bars(self, bars: Iterable[Bar], closed: bool) -> None:
        for bar in bars:
            key = ("bar", bar.symbol)
            if key in self._subs:
                msg = bar_message(bar, self._book.tick_size(bar.symbol))
                msg["closed"] = closed
                self._publish(key, msg)

    def _publish(self, key: Key, message: Message) -> None:
        """Number, encode once, queue the same payload to every subscriber of the channel."""
        targets = self._subs.get(key)
        if targets:
            self._send(key, targets, _encode(message).decode()[1:])

    def _send(self, key: Key, targets: dict[Subscriber, None], body: str) -> None:
        """Queue one update to the channel's (non-empty) ``targets``; ``body`` is its compact
        JSON without the opening brace (as ``messages.*_body`` build it)."""
        # ``encode(self._seq.update(message))`` without re-checking the channel or copying
        # the message: the same compact JSON, the numbering keys spliced in front.
        seqs = self._seqs
        n = seqs[key] = seqs.get(key, 0) + 1  # self._seq.advance(key)
        payload = f'{{"seq":{n},"snapshot":false,{body}'
        victims: list[Subscriber] | None = None
        for sub in targets:
            queue = sub._queue
            queued = len(queue)
            if queued < sub.max_queued:
                queue.append(payload)
                if not queued:  # a non-empty queue has already woken the writer
                    sub._ready.set()
            elif victims is None:
                victims = [sub]
            else:
                victims.append(sub)
        self.published += 1
        if victims is None:
            self.enqueued += len(targets)
        else:
            self.enqueued += len(targets) - len(victims)
            for sub in victims:
                self._drop(sub)

    def _drop(self, sub: Subscriber) -> None:
        reason = f"slow consumer: {sub.pending} messages queued"
        self._unregister(sub)
        sub._close(reason)
        self.drops += 1
        if sub.on_drop is not None:
            sub.on_drop(reason)

    # ------------------------------------------------------------------ snapshots

    def snapshot(
        self, channel: str, symbol: str, *, depth: int = L2_DEPTH, limit: int = SNAPSHOT_TRADES
    ) -> Message:
        """The channel's current state as a snapshot envelope (``seq`` = last update in it).

        ``depth`` applies to l2 (1..``L2_DEPTH``), ``limit`` to trade (0..``MAX_TRADES``).
        Raises KeyError for an unlisted symbol, ValueError for a bad channel or argument.
        """
        book = self._book
        tick = book.tick_size(symbol)  # KeyError if unlisted
        msg: Message
        if channel == "l1":
            msg = l1_message(symbol, book.l1(symbol), tick)
        elif channel == "l2":
            if not 1 <= depth <= L2_DEPTH:
                raise ValueError(f"depth {depth} not in 1..{L2_DEPTH}")
            msg = l2_message(symbol, *book.l2(symbol, depth), tick)
        elif channel == "l3":
            msg = l3_message(symbol, book.l3(symbol), tick)
        elif channel == "trade":
            if not 0 <= limit <= MAX_TRADES:
                raise ValueError(f"limit {limit} not in 0..{MAX_TRADES}")
            msg = trades_snapshot_message(symbol, book.trades(symbol, limit), tick)
        elif channel == "bar":
            current = (self._bars.current(symbol, i) for i in self._bars.intervals)
            bars = [_bar_fields(b, tick, False) for b in current if b is not None]
            msg = {"type": "bar", "symbol": symbol, "bars": bars}
        else:
            raise ValueError(f"unknown channel {channel!r}")
        return self._seq.snapshot(msg)

    def bar_history(self, symbol: str, interval: str, limit: int) -> Message:
        """The last ``limit`` bars of one interval, oldest first, the open bar (if any) last.

        Raises KeyError for an unlisted symbol or an interval not built.
        """
        tick = self._book.tick_size(symbol)
        bars = [_bar_fields(b, tick, True) for b in self._bars.history(symbol, interval)]
        current = self._bars.current(symbol, interval)
        if current is not None:
            bars.append(_bar_fields(current, tick, False))
        chosen = bars[max(len(bars) - limit, 0) :] if limit > 0 else []
        return {"type": "bar", "symbol": symbol, "interval": interval, "bars": chosen}

    # ------------------------------------------------------------------ subscribers

    def connect(self, client_id: str, *, max_queued: int | None = None) -> Subscriber:
        """Register a connection; ``max_queued`` overrides the feed's queue bound for it."""
        if client_id in self._clients:
            raise ValueError(f"client {client_id!r} is already connected")
        sub = Subscriber(client_id, self.max_queued if max_queued is None else max_queued)
        self._clients[client_id] = sub
        return sub

    def disconnect(self, sub: Subscriber) -> None:
        """Forget a connection and its subscriptions (idempotent)."""
        self._unregister(sub)
        sub._close(sub.dropped)

    def _unregister(self, sub: Subscriber) -> None:
        if self._clients.get(sub.client_id) is sub:
            del self._clients[sub.client_id]
        for key in sub._subs:
            self._remove(key, sub)
        sub._subs.clear()

    def _add(self, key: Key, sub: Subscriber) -> None:
        targets = self._subs.get(key)
        if targets is None:  # the first watcher: remember the state updates start from
            targets = self._subs[key] = {}
            channel, symbol = key
            w = self._watch.get(symbol)
            if w is None:  # the book's tick size object never changes once listed
                tick = self._book.tick_size(symbol)
                w = self._watch[symbol] = _Watch(tick, json_string(symbol))
            setattr(w, channel, True)
            if channel == "l1":
                self._l1_sent[symbol] = self._book.l1(symbol)
            elif channel == "l2":
                bids, asks, _ts = self._book.l2_window(symbol)
                self._l2_sent[symbol] = _SentL2(bids, asks)
            elif channel == "l3":
                l3 = self._book.l3(symbol)
                orders = {oid: [True, p, q] for p, q, oid, _member in l3.bids}
                orders.update({oid: [False, p, q] for p, q, oid, _member in l3.asks})
                self._l3_sent[symbol] = orders
        targets[sub] = None
        sub._subs.add(key)

    def _remove(self, key: Key, sub: Subscriber) -> None:
        targets = self._subs.get(key)
        if targets is not None:
            targets.pop(sub, None)
            if not targets:
                del self._subs[key]
                channel, symbol = key
                setattr(self._watch[symbol], channel, False)
                if channel == "l1":
                    del self._l1_sent[symbol]
                elif channel == "l2":
                    del self._l2_sent[symbol]
                elif channel == "l3":
                    del self._l3_sent[symbol]

    def handle(self, sub: Subscriber, raw: str | bytes) -> None:
        """Act on one client request; replies (and snapshots) go to the subscriber's queue.

        A bad request is answered with ``{"type":"error","code":...,"message":...}`` (codes in
        ``ERROR_CODES``) and changes nothing.
        """
        if sub.closed:
            return
        size = len(raw.encode()) if isinstance(raw, str) else len(raw)
        if size > self.max_inbound_bytes:
            self._error(sub, "message_too_large", f"requests are at most {self.max_inbound_bytes}")
            return
        try:
            request = decode(raw)
        except msgspec.DecodeError as exc:
            self._error(sub, "bad_json", f"not a JSON object: {exc}")
            return
        op = request.get("op")
        if op == "ping":
            self._reply(sub, {"type": "pong"})
        elif op in ("subscribe", "unsubscribe"):
            self._on_subscription(sub, request, op == "subscribe")
        elif op == "snapshot":
            self._on_snapshot(sub, request)
        else:
            self._error(sub, "unknown_op", f"op {op!r} is not one of {', '.join(_OPS)}")

    def _names(self, sub: Subscriber, request: Mapping[str, object], field: str) -> list[str]:
        value = request.get(field)
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, str) and v for v in value)
        ):
            self._error(sub, "bad_request", f"{field} must be a non-empty list of strings")
            return []
        return list(dict.fromkeys(value))

    def _check_names(self, sub: Subscriber, channels: list[str], symbols: list[str]) -> bool:
        bad_channels = [c for c in channels if c not in CHANNELS]
        if bad_channels:
            self._error(sub, "unknown_channel", f"unknown channels {bad_channels}")
            return False
        listed = set(self._book.symbols())
        bad_symbols = [s for s in symbols if s not in listed]
        if bad_symbols:
            self._error(sub, "unknown_symbol", f"unknown symbols {bad_symbols}")
            return False
        return True

    def _on_subscription(self, sub: Subscriber, request: Message, subscribe: bool) -> None:
        channels = self._names(sub, request, "channels")
        symbols = self._names(sub, request, "symbols") if channels else []
        if not symbols or not self._check_names(sub, channels, symbols):
            return
        pairs = [(c, s) for s in symbols for c in channels]
        if not subscribe:
            for key in pairs:
                if key in sub._subs:
                    sub._subs.discard(key)
                    self._remove(key, sub)
            self._reply(sub, {"type": "unsubscribed", "channels": channels, "symbols": symbols})
            return
        new = [key for key in pairs if key not in sub._subs]
        if len(sub._subs) + len(new) > self.max_subscriptions:
            self._error(
                sub,
                "too_many_subscriptions",
                f"{len(sub._subs) + len(new)} subscriptions > {self.max_subscriptions}",
            )
            return
        for key in new:
            self._add(key, sub)
        if not self._reply(sub, {"type": "subscribed", "channels": channels, "symbols": symbols}):
            return
        for channel, symbol in pairs:
            if not self._reply(sub, self.snapshot(channel, symbol)):
                return

    def _on_snapshot(self, sub: Subscriber, request: Message) -> None:
        channel, symbol = request.get("channel"), request.get("symbol")
        if not isinstance(channel, str) or not isinstance(symbol, str):
            self._error(sub, "bad_request", "channel and symbol must be strings")
            return
        if not self._check_names(sub, [channel], [symbol]):
            return
        if (channel, symbol) not in sub._subs:
            self._error(sub, "not_subscribed", f"not subscribed to {channel} {symbol}")
            return
        self._reply(sub, self.snapshot(channel, symbol))

    def _reply(self, sub: Subscriber, message: Message) -> bool:
        """Queue a message for one subscriber; False if that dropped it."""
        if sub._push(encode(message).decode()):
            return True
        self._drop(sub)
        return False

    def _error(self, sub: Subscriber, code: str, message: str) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"undocumented error code {code!r}")
        self._reply(sub, {"type": "error", "code": code, "message": message})
