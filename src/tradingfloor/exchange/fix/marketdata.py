"""FIX market data for members: MarketDataRequest (V) answered by snapshots (W), updates (X) or Y.

Reads the venue's market-data projection (``MarketDataBook``), never the engine. A request
names symbols (146/55), entry types (267/269: 0 bid, 1 offer, 2 trade), a depth (264: 0 = the
full published depth of ``MAX_DEPTH`` levels, 1 = top of book, N <= ``MAX_DEPTH``) and a
subscription type (263: 0 snapshot, 1 snapshot + updates, 2 unsubscribe). Updates follow each
acknowledged command that touched a subscribed symbol: with MDUpdateType 265=1 as one
incremental refresh (X) per symbol, diffing the levels last sent against the book now (new 0,
change 1, delete 2) plus new trades; with 265=0 as a fresh full snapshot (W). Subscriptions
live as long as the FIX connection that made them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, Protocol

from tradingfloor.core.units import from_ticks
from tradingfloor.exchange.engine.events import Event, Trade
from tradingfloor.exchange.fix import tags as t
from tradingfloor.exchange.fix.codec import Message
from tradingfloor.exchange.marketdata.views import Level, MarketDataBook

__all__ = [
    "MAX_DEPTH",
    "MAX_SUBSCRIPTIONS_PER_SESSION",
    "FixMarketData",
    "MdSession",
]

MAX_DEPTH: Final = 20
MAX_SUBSCRIPTIONS_PER_SESSION: Final = 100
MAX_SYMBOLS_PER_REQUEST: Final = 100
_ENTRY_TYPES: Final = frozenset({t.MD_BID, t.MD_OFFER, t.MD_TRADE})

Body = list[tuple[int, str]]


class MdSession(Protocol):
    """The parts of a FIX session handle this module uses."""

    @property
    def comp_id(self) -> str: ...

    def send(self, msg_type: str, body: Sequence[tuple[int, str]]) -> None: ...

    def reject(self, msg: Message, reason: int, ref_tag: int | None, text: str) -> None: ...


@dataclass(slots=True)
class _Subscription:
    req_id: str
    session: MdSession
    symbols: tuple[str, ...]
    bids: bool
    offers: bool
    trades: bool
    depth: int
    incremental: bool
    # Levels last sent per symbol: (bids, asks) as {price: (size, orders)}.
    sent: dict[str, tuple[dict[int, tuple[int, int]], dict[int, tuple[int, int]]]] = field(
        default_factory=dict
    )


class _RequestError(Exception):
    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text


class FixMarketData:
    """Market-data requests and subscriptions of every FIX session. See module docstring."""

    def __init__(self, book: MarketDataBook, clock: Callable[[], int]) -> None:
        self._book = book
        self._clock = clock
        self._subs: dict[tuple[str, str], _Subscription] = {}  # (comp_id, MDReqID)
        self._by_symbol: dict[str, list[_Subscription]] = {}

    def subscriptions(self, comp_id: str) -> list[str]:
        """MDReqIDs of the live subscriptions of one session."""
        return [req for (cid, req) in self._subs if cid == comp_id]

    # --- requests -------------------------------------------------------------------------------

    def on_request(self, session: MdSession, msg: Message) -> None:
        """Answer one MarketDataRequest (35=V)."""
        req_id = msg.get(t.MDReqID)
        if not req_id:
            session.reject(msg, t.SRR_REQUIRED_TAG_MISSING, t.MDReqID, "MDReqID is required")
            return
        sub_type = msg.get(t.SubscriptionRequestType)
        if sub_type is None:
            session.reject(
                msg,
                t.SRR_REQUIRED_TAG_MISSING,
                t.SubscriptionRequestType,
                "SubscriptionRequestType is required",
            )
            return
        key = (session.comp_id, req_id)
        if sub_type == t.SUB_UNSUBSCRIBE:
            self._unsubscribe(key)
            return
        try:
            sub = self._parse(session, req_id, sub_type, msg)
            if sub_type == t.SUB_SNAPSHOT_UPDATES and key in self._subs:
                raise _RequestError(t.MDRR_DUPLICATE_MDREQID, f"MDReqID {req_id} is in use")
            if (
                sub_type == t.SUB_SNAPSHOT_UPDATES
                and len(self.subscriptions(session.comp_id)) >= MAX_SUBSCRIPTIONS_PER_SESSION
            ):
                raise _RequestError(
                    t.MDRR_UNSUPPORTED_SUBSCRIPTION_TYPE,
                    f"at most {MAX_SUBSCRIPTIONS_PER_SESSION} subscriptions per session",
                )
        except _RequestError as exc:
            session.send(
                t.MT_MARKET_DATA_REQUEST_REJECT,
                [(t.MDReqID, req_id), (t.MDReqRejReason, exc.reason), (t.Text, exc.text)],
            )
            return
        for symbol in sub.symbols:
            session.send(t.MT_MARKET_DATA_SNAPSHOT, self._snapshot(sub, symbol))
        if sub_type == t.SUB_SNAPSHOT_UPDATES:
            self._subs[key] = sub
            for symbol in sub.symbols:
                self._by_symbol.setdefault(symbol, []).append(sub)

    def _parse(self, session: MdSession, req_id: str, sub_type: str, msg: Message) -> _Subscription:
        if sub_type not in (t.SUB_SNAPSHOT, t.SUB_SNAPSHOT_UPDATES):
            raise _RequestError(
                t.MDRR_UNSUPPORTED_SUBSCRIPTION_TYPE, f"SubscriptionRequestType {sub_type}"
            )
        depth_text = msg.get(t.MarketDepth) or "0"
        if not (depth_text.isascii() and depth_text.isdigit()):
            raise _RequestError(t.MDRR_UNSUPPORTED_MARKET_DEPTH, f"MarketDepth {depth_text}")
        depth = int(depth_text) or MAX_DEPTH
        if depth > MAX_DEPTH:
            raise _RequestError(
                t.MDRR_UNSUPPORTED_MARKET_DEPTH, f"MarketDepth {depth} > {MAX_DEPTH} levels"
            )
        update_type = msg.get(t.MDUpdateType)
        if sub_type == t.SUB_SNAPSHOT_UPDATES and update_type is None:
            update_type = "1"
        if update_type not in (None, "0", "1"):
            raise _RequestError(t.MDRR_UNSUPPORTED_MDUPDATETYPE, f"MDUpdateType {update_type}")
        if msg.get(t.AggregatedBook) == "N":
            raise _RequestError("7", "only aggregated books (266=Y) are published")
        types = msg.get_all(t.MDEntryType)
        if not types:
            raise _RequestError(t.MDRR_UNSUPPORTED_MDENTRYTYPE, "no MDEntryType requested")
        for entry_type in types:
            if entry_type not in _ENTRY_TYPES:
                raise _RequestError(
                    t.MDRR_UNSUPPORTED_MDENTRYTYPE,
                    f"MDEntryType {entry_type} (supported: 0 bid, 1 offer, 2 trade)",
                )
        symbols = tuple(dict.fromkeys(msg.get_all(t.Symbol)))
        if not symbols:
            raise _RequestError(t.MDRR_UNKNOWN_SYMBOL, "no Symbol requested")
        if len(symbols) > MAX_SYMBOLS_PER_REQUEST:
            raise _RequestError(
                t.MDRR_UNKNOWN_SYMBOL, f"at most {MAX_SYMBOLS_PER_REQUEST} symbols per request"
            )
        listed = set(self._book.symbols())
        for symbol in symbols:
            if symbol not in listed:
                raise _RequestError(t.MDRR_UNKNOWN_SYMBOL, f"unknown symbol {symbol}")
        return _Subscription(
            req_id=req_id,
            session=session,
            symbols=symbols,
            bids=t.MD_BID in types,
            offers=t.MD_OFFER in types,
            trades=t.MD_TRADE in types,
            depth=depth,
            incremental=update_type != "0",
        )

    def _unsubscribe(self, key: tuple[str, str]) -> None:
        sub = self._subs.pop(key, None)
        if sub is None:
            return  # nothing to stop: unsubscribing twice is harmless
        for symbol in sub.symbols:
            subs = self._by_symbol.get(symbol, [])
            if sub in subs:
                subs.remove(sub)

    def drop_session(self, comp_id: str) -> None:
        """Forget every subscription of a session (on logout or disconnect)."""
        for key in [k for k in self._subs if k[0] == comp_id]:
            self._unsubscribe(key)

    # --- messages -------------------------------------------------------------------------------

    def _levels(self, sub: _Subscription, symbol: str) -> tuple[list[Level], list[Level]]:
        l2 = self._book.l2(symbol, sub.depth)
        return (l2.bids if sub.bids else []), (l2.asks if sub.offers else [])

    def _snapshot(self, sub: _Subscription, symbol: str) -> Body:
        tick = self._book.tick_size(symbol)
        bids, asks = self._levels(sub, symbol)
        sub.sent[symbol] = (
            {p: (q, n) for p, q, n in bids},
            {p: (q, n) for p, q, n in asks},
        )
        entries: Body = []
        for entry_type, levels in ((t.MD_BID, bids), (t.MD_OFFER, asks)):
            for position, (price, qty, orders) in enumerate(levels, start=1):
                entries += _level(entry_type, price, qty, orders, tick)
                entries.append((t.MDEntryPositionNo, str(position)))
        if sub.trades:
            last = self._book.trades(symbol, 1)
            if last:
                trade = last[0]
                entries += [
                    (t.MDEntryType, t.MD_TRADE),
                    (t.MDEntryPx, str(from_ticks(trade.price, tick))),
                    (t.MDEntrySize, str(trade.qty)),
                ]
        body: Body = [(t.MDReqID, sub.req_id), (t.Symbol, symbol)]
        body.append((t.NoMDEntries, str(_count_entries(entries))))
        body += entries
        return body

    def on_events(self, events: Sequence[Event]) -> None:
        """After one acknowledged command: send what changed to the subscribers."""
        if not self._subs:
            return
        touched: dict[str, list[Trade]] = {}
        for event in events:
            symbol = getattr(event, "symbol", "")
            if self._by_symbol.get(symbol):
                trades = touched.setdefault(symbol, [])
                if isinstance(event, Trade):
                    trades.append(event)
        for symbol, trades in touched.items():
            for sub in list(self._by_symbol[symbol]):
                if sub.incremental:
                    body = self._incremental(sub, symbol, trades)
                    if body is not None:
                        sub.session.send(t.MT_MARKET_DATA_INCREMENTAL, body)
                else:
                    sub.session.send(t.MT_MARKET_DATA_SNAPSHOT, self._snapshot(sub, symbol))

    def _incremental(self, sub: _Subscription, symbol: str, trades: list[Trade]) -> Body | None:
        tick = self._book.tick_size(symbol)
        bids, asks = self._levels(sub, symbol)
        old_bids, old_asks = sub.sent.get(symbol, ({}, {}))
        entries: Body = []
        new_sent: list[dict[int, tuple[int, int]]] = []
        for entry_type, levels, old in ((t.MD_BID, bids, old_bids), (t.MD_OFFER, asks, old_asks)):
            now = {p: (q, n) for p, q, n in levels}
            new_sent.append(now)
            for price in old:
                if price not in now:
                    entries.append((t.MDUpdateAction, t.MD_ACTION_DELETE))
                    entries += _level(entry_type, price, 0, 0, tick, symbol)
            for price, qty, orders in levels:
                before = old.get(price)
                if before == (qty, orders):
                    continue
                action = t.MD_ACTION_NEW if before is None else t.MD_ACTION_CHANGE
                entries.append((t.MDUpdateAction, action))
                entries += _level(entry_type, price, qty, orders, tick, symbol)
        sub.sent[symbol] = (new_sent[0], new_sent[1])
        if sub.trades:
            for trade in trades:
                entries += [
                    (t.MDUpdateAction, t.MD_ACTION_NEW),
                    (t.MDEntryType, t.MD_TRADE),
                    (t.Symbol, symbol),
                    (t.MDEntryPx, str(from_ticks(trade.price, tick))),
                    (t.MDEntrySize, str(trade.qty)),
                ]
        if not entries:
            return None
        return [
            (t.MDReqID, sub.req_id),
            (t.NoMDEntries, str(_count_entries(entries))),
            *entries,
        ]


def _level(
    entry_type: str, price: int, qty: int, orders: int, tick: Decimal, symbol: str = ""
) -> Body:
    body: Body = [(t.MDEntryType, entry_type)]
    if symbol:
        body.append((t.Symbol, symbol))
    body += [(t.MDEntryPx, str(from_ticks(price, tick))), (t.MDEntrySize, str(qty))]
    if orders:
        body.append((t.NumberOfOrders, str(orders)))
    return body


def _count_entries(entries: Body) -> int:
    """Entries start with 279 (incremental) or, in snapshots, with 269."""
    if entries and entries[0][0] == t.MDUpdateAction:
        return sum(1 for tag, _v in entries if tag == t.MDUpdateAction)
    return sum(1 for tag, _v in entries if tag == t.MDEntryType)
