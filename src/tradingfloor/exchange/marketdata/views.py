"""Market-data books projected from matching-engine events: L1, L2, L3 and recent trades.

``MarketDataBook.apply(event)`` takes every event of one engine, in ``seq`` order (a repeated
``seq`` is ignored, a gap raises ``MarketDataError``), and keeps per listed symbol:

- the L2 book (price -> displayed size and order count) from ``level`` events;
- the L3 book (displayed orders in priority order) from ``booked``, ``trade``, ``cancelled``,
  ``replaced``, ``expired``, ``repriced`` and ``unbooked``, by the rules of docs/engine.md;
- L1: the best bid/ask of the L2 book, the last trade price, cumulative volume and the ``ts`` of
  the last change to any of them;
- the tick size (``instrument_added``), the trading phase (``phase``) and the last
  ``MAX_TRADES`` trades.

It is a pure projection: no clock, no randomness, integer ticks and shares throughout. The
engine emits ``level`` events at the end of each command, so the views are consistent with the
engine's own ``l1``/``l2``/``l3`` after the last event of a command (not in between).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from itertools import islice
from typing import Any, Final, NamedTuple

import msgspec
from sortedcontainers import SortedDict

from tradingfloor.exchange.checkpoint import CheckpointError
from tradingfloor.exchange.engine.events import (
    Cancelled,
    Event,
    Expired,
    InstrumentAdded,
    LevelChanged,
    OrderBooked,
    OrderUnbooked,
    PhaseChanged,
    Replaced,
    Repriced,
    Trade,
)
from tradingfloor.exchange.engine.types import Phase, Side
from tradingfloor.exchange.marketdata.checkpoint_state import BookState, InstrumentState

__all__ = [
    "DEFAULT_DEPTH",
    "L1",
    "L2",
    "L3",
    "MAX_TRADES",
    "L3Order",
    "Level",
    "MarketDataBook",
    "MarketDataError",
    "TradeTick",
]

DEFAULT_DEPTH: Final = 20  # L2 levels per side in the design's feed
MAX_TRADES: Final = 1000  # recent trades kept per symbol

Level = tuple[int, int, int]  # (price ticks, displayed size, displayed orders)
L3Order = tuple[int, int, int, str]  # (price ticks, displayed qty, order id, member)


class MarketDataError(Exception):
    """The event stream cannot be projected: a sequence gap or an event for an unlisted symbol."""


class L1(NamedTuple):
    """Top of book; 0 stands for "none" in every price and size (prices are >= 1 tick)."""

    bid: int
    bid_size: int
    ask: int
    ask_size: int
    last: int
    volume: int  # shares traded since the instrument was listed
    ts: int  # ts of the last change to any field above (listing time before that)


class L2(NamedTuple):
    """Displayed price levels, best first, and the ts of the last level change."""

    bids: list[Level]
    asks: list[Level]
    ts: int


class L3(NamedTuple):
    """Displayed orders, best price first and in time priority, and the ts of the last change."""

    bids: list[L3Order]
    asks: list[L3Order]
    ts: int


class TradeTick(NamedTuple):
    trade_id: int
    ts: int
    price: int
    qty: int
    aggressor: str  # "buy" / "sell"; "" for auction trades


_new_tuple: Final = tuple.__new__  # (NamedTuple class, fields): the class(*fields), faster


class _Instrument:
    """Everything the book keeps for one symbol."""

    __slots__ = (
        "ask_top",
        "ask_window",
        "asks",
        "bid_top",
        "bid_window",
        "bids",
        "l1_ts",
        "l2_ts",
        "l3_asks",
        "l3_bids",
        "l3_ts",
        "last",
        "members",
        "phase",
        "tick",
        "tick_size",
        "trades",
        "volume",
        "where",
    )

    def __init__(self, tick_size: str, phase: Phase, ts: int) -> None:
        self.tick_size = tick_size
        self.tick = Decimal(tick_size)
        self.phase = phase
        self.bids: SortedDict = SortedDict()  # price -> (price, size, orders)
        self.asks: SortedDict = SortedDict()
        # Caches of the L2 book, derived from bids/asks only: the best (price, size) of
        # each side ((0, 0) when empty) and the top DEFAULT_DEPTH levels, best first (None
        # when a level change may have touched them; rebuilt on the next read).
        self.bid_top: tuple[int, int] = (0, 0)
        self.ask_top: tuple[int, int] = (0, 0)
        self.bid_window: list[Level] | None = []
        self.ask_window: list[Level] | None = []
        self.l3_bids: SortedDict = SortedDict()  # price -> {order id: displayed qty}, FIFO
        self.l3_asks: SortedDict = SortedDict()
        self.where: dict[int, tuple[bool, int]] = {}  # order id -> (is buy, price)
        self.members: dict[int, str] = {}
        self.last = 0
        self.volume = 0
        self.l1_ts = self.l2_ts = self.l3_ts = ts
        self.trades: deque[TradeTick] = deque(maxlen=MAX_TRADES)

    @classmethod
    def restored(cls, st: InstrumentState) -> _Instrument:
        """The instrument ``export`` described; ``CheckpointError`` if it is inconsistent."""
        try:
            tick = Decimal(st.tick_size)
        except InvalidOperation:
            tick = Decimal(0)
        if not tick.is_finite() or tick <= 0:
            raise CheckpointError(f"{st.symbol}: tick size {st.tick_size!r}")
        inst = cls(st.tick_size, st.phase, st.l1_ts)
        for levels, book in ((st.bids, inst.bids), (st.asks, inst.asks)):
            for price, level in levels.items():
                if price <= 0 or level[0] != price or level[1] <= 0 or level[2] <= 0:
                    raise CheckpointError(f"{st.symbol}: L2 level {price}: {level}")
            book.update(levels)
        if inst.bids:
            inst.bid_top = inst.bids.peekitem(-1)[1][:2]
        if inst.asks:
            inst.ask_top = inst.asks.peekitem(0)[1][:2]
        inst.bid_window = inst.ask_window = None  # rebuilt on the first read
        where = inst.where
        for is_buy, queues, side in (
            (True, st.l3_bids, inst.l3_bids),
            (False, st.l3_asks, inst.l3_asks),
        ):
            for price, queue in queues.items():
                if price <= 0 or not queue or min(queue.values()) <= 0:
                    raise CheckpointError(f"{st.symbol}: L3 queue at {price}: {queue}")
                for oid in queue:
                    if oid in where:
                        raise CheckpointError(f"{st.symbol}: order {oid} queued twice")
                    where[oid] = (is_buy, price)
            side.update(queues)
        if st.members.keys() != where.keys():
            raise CheckpointError(f"{st.symbol}: members do not match the L3 orders")
        inst.members = dict(st.members)
        if len(st.trades) > MAX_TRADES:
            raise CheckpointError(f"{st.symbol}: {len(st.trades)} trades > {MAX_TRADES}")
        inst.trades.extend(_new_tuple(TradeTick, t) for t in st.trades)
        inst.last, inst.volume = st.last, st.volume
        inst.l1_ts, inst.l2_ts, inst.l3_ts = st.l1_ts, st.l2_ts, st.l3_ts
        return inst

    def export(self, symbol: str) -> InstrumentState:
        """The instrument's state, sharing its containers (encode it before the next event)."""
        return InstrumentState(
            symbol,
            self.tick_size,
            self.phase,
            self.bids,
            self.asks,
            self.l3_bids,
            self.l3_asks,
            self.members,
            self.last,
            self.volume,
            self.l1_ts,
            self.l2_ts,
            self.l3_ts,
            list(self.trades),
        )

    def window(self, is_buy: bool) -> list[Level]:
        """The top ``DEFAULT_DEPTH`` levels of one side, best first (do not mutate)."""
        if is_buy:
            win = self.bid_window
            if win is None:
                bids = self.bids
                win = self.bid_window = list(
                    map(bids.__getitem__, islice(reversed(bids), DEFAULT_DEPTH))
                )
        else:
            win = self.ask_window
            if win is None:
                asks = self.asks
                win = self.ask_window = list(map(asks.__getitem__, islice(asks, DEFAULT_DEPTH)))
        return win

    def unqueue(self, oid: int, ts: int) -> None:
        """Take a displayed order out of the L3 book (nothing if it is not there)."""
        key = self.where.pop(oid, None)
        if key is None:
            return
        is_buy, price = key
        side = self.l3_bids if is_buy else self.l3_asks
        queue: dict[int, int] = side[price]
        del queue[oid]
        if not queue:
            del side[price]
        del self.members[oid]
        self.l3_ts = ts

    def queue_of(self, oid: int) -> dict[int, int]:
        is_buy, price = self.where[oid]
        queue: dict[int, int] = (self.l3_bids if is_buy else self.l3_asks)[price]
        return queue

    def state(self) -> list[Any]:
        return [
            self.tick_size,
            self.phase.value,
            [list(v) for v in self.bids.values()],
            [list(v) for v in self.asks.values()],
            [[p, list(q.items())] for p, q in self.l3_bids.items()],
            [[p, list(q.items())] for p, q in self.l3_asks.items()],
            sorted(self.members.items()),
            self.last,
            self.volume,
            self.l1_ts,
            self.l2_ts,
            self.l3_ts,
            [list(t) for t in self.trades],
        ]


class MarketDataBook:
    """L1/L2/L3 books and recent trades of every symbol of one engine. See module docstring."""

    def __init__(self) -> None:
        self.last_seq = 0  # seq of the last event applied
        self._instruments: dict[str, _Instrument] = {}
        self._handlers: dict[type[Any], Callable[[Any], None]] = {
            InstrumentAdded: self._on_instrument_added,
            PhaseChanged: self._on_phase,
            LevelChanged: self._on_level,
            Trade: self._on_trade,
            OrderBooked: self._on_booked,
            Cancelled: self._on_cancelled_or_replaced,
            Replaced: self._on_cancelled_or_replaced,
            Expired: self._on_removed,
            Repriced: self._on_removed,
            OrderUnbooked: self._on_removed,
        }

    # ------------------------------------------------------------------ feeding

    def apply(self, event: Event) -> bool:
        """Project one event; False if its ``seq`` was already applied (idempotent replay)."""
        seq = event.seq
        if seq <= self.last_seq:
            return False
        if seq != self.last_seq + 1:
            raise MarketDataError(f"event seq {seq} after {self.last_seq}: events were missed")
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)
        self.last_seq = seq
        return True

    def _get(self, symbol: str) -> _Instrument:
        inst = self._instruments.get(symbol)
        if inst is None:
            raise MarketDataError(f"event for unlisted symbol {symbol!r}")
        return inst

    def _on_instrument_added(self, ev: InstrumentAdded) -> None:
        if ev.symbol in self._instruments:
            raise MarketDataError(f"symbol {ev.symbol!r} listed twice")
        self._instruments[ev.symbol] = _Instrument(ev.tick_size, ev.phase, ev.ts)

    def _on_phase(self, ev: PhaseChanged) -> None:
        self._get(ev.symbol).phase = ev.phase

    def _on_level(self, ev: LevelChanged) -> None:
        inst = self._instruments.get(ev.symbol)
        if inst is None:
            raise MarketDataError(f"event for unlisted symbol {ev.symbol!r}")
        price, qty, ts = ev.price, ev.qty, ev.ts
        inst.l2_ts = ts
        if ev.side == Side.BUY:
            win = inst.bid_window
            # A change below a full window cannot touch it.
            if win is not None and (len(win) < DEFAULT_DEPTH or price >= win[-1][0]):
                inst.bid_window = None
            bids = inst.bids
            top = inst.bid_top
            if qty > 0:
                bids[price] = (price, qty, ev.orders)
                if price >= top[0]:
                    inst.bid_top = (price, qty)
            elif bids.pop(price, None) is not None and price == top[0]:
                inst.bid_top = bids.peekitem(-1)[1][:2] if bids else (0, 0)
            if inst.bid_top != top:
                inst.l1_ts = ts
        else:
            win = inst.ask_window
            if win is not None and (len(win) < DEFAULT_DEPTH or price <= win[-1][0]):
                inst.ask_window = None
            asks = inst.asks
            top = inst.ask_top
            if qty > 0:
                asks[price] = (price, qty, ev.orders)
                if price <= top[0] or not top[0]:
                    inst.ask_top = (price, qty)
            elif asks.pop(price, None) is not None and price == top[0]:
                inst.ask_top = asks.peekitem(0)[1][:2] if asks else (0, 0)
            if inst.ask_top != top:
                inst.l1_ts = ts

    def _on_trade(self, ev: Trade) -> None:
        inst = self._instruments.get(ev.symbol)
        if inst is None:
            raise MarketDataError(f"event for unlisted symbol {ev.symbol!r}")
        price, qty, ts = ev.price, ev.qty, ev.ts
        inst.last = price
        inst.volume += qty
        inst.l1_ts = ts
        # TradeTick(...) without its Python-level __new__ (hot path).
        inst.trades.append(_new_tuple(TradeTick, (ev.trade_id, ts, price, qty, ev.aggressor)))
        # The maker's displayed slice shrinks (in an auction both sides may be in the book);
        # a spent slice leaves the book and an iceberg refill is booked afresh.
        # (The same steps for the maker, then the taker; written out: hot path.)
        where = inst.where
        oid = ev.maker_order_id
        key = where.get(oid)
        if key is not None:
            queue: dict[int, int] = (inst.l3_bids if key[0] else inst.l3_asks)[key[1]]
            shown = queue[oid] - qty
            if ev.maker_leaves == 0 or shown <= 0:
                inst.unqueue(oid, ts)
            else:
                queue[oid] = shown
                inst.l3_ts = ts
        oid = ev.taker_order_id
        key = where.get(oid)
        if key is not None:
            queue = (inst.l3_bids if key[0] else inst.l3_asks)[key[1]]
            shown = queue[oid] - qty
            if ev.taker_leaves == 0 or shown <= 0:
                inst.unqueue(oid, ts)
            else:
                queue[oid] = shown
                inst.l3_ts = ts

    def _on_booked(self, ev: OrderBooked) -> None:
        inst = self._get(ev.symbol)
        inst.unqueue(ev.order_id, ev.ts)
        is_buy = ev.side == Side.BUY
        side = inst.l3_bids if is_buy else inst.l3_asks
        queue: dict[int, int] = side.setdefault(ev.price, {})
        queue[ev.order_id] = ev.qty
        inst.where[ev.order_id] = (is_buy, ev.price)
        inst.members[ev.order_id] = ev.member
        inst.l3_ts = ev.ts

    def _on_cancelled_or_replaced(self, ev: Cancelled | Replaced) -> None:
        inst = self._get(ev.symbol)
        if ev.order_id not in inst.where:
            return
        if ev.leaves_qty == 0 or (isinstance(ev, Replaced) and not ev.priority_kept):
            inst.unqueue(ev.order_id, ev.ts)
            return
        queue = inst.queue_of(ev.order_id)
        shown = min(queue[ev.order_id], ev.leaves_qty)
        if shown != queue[ev.order_id]:
            queue[ev.order_id] = shown
            inst.l3_ts = ev.ts

    def _on_removed(self, ev: Expired | Repriced | OrderUnbooked) -> None:
        self._get(ev.symbol).unqueue(ev.order_id, ev.ts)

    # ------------------------------------------------------------------ checkpoints

    def export_state(self) -> BookState:
        """Everything the book holds (for ``checkpoint_state``), sharing the book's containers:
        encode it before the next event is applied."""
        return BookState(self.last_seq, [i.export(s) for s, i in self._instruments.items()])

    def restore_state(self, state: BookState) -> None:
        """Become the book ``export_state`` described (``BookState(0, [])`` is a fresh book).

        Takes over the state's containers (give it a state decoded from bytes, not another
        book's export). ``CheckpointError``, and nothing changed, if the state is inconsistent.
        """
        if state.last_seq < 0:
            raise CheckpointError(f"last seq {state.last_seq} < 0")
        instruments: dict[str, _Instrument] = {}
        for st in state.instruments:
            if st.symbol in instruments:
                raise CheckpointError(f"symbol {st.symbol!r} listed twice")
            instruments[st.symbol] = _Instrument.restored(st)
        self._instruments = instruments
        self.last_seq = state.last_seq

    # ------------------------------------------------------------------ views

    def symbols(self) -> list[str]:
        """Listed symbols in listing order."""
        return list(self._instruments)

    def tick_size(self, symbol: str) -> Decimal:
        """The instrument's tick size, for rendering ticks as prices at the edge."""
        return self._instruments[symbol].tick

    def phase(self, symbol: str) -> Phase:
        return self._instruments[symbol].phase

    def l1(self, symbol: str) -> L1:
        inst = self._instruments[symbol]
        bid, bid_size = inst.bid_top
        ask, ask_size = inst.ask_top
        fields = (bid, bid_size, ask, ask_size, inst.last, inst.volume, inst.l1_ts)
        l1: L1 = _new_tuple(L1, fields)  # L1(*fields) without its Python-level __new__
        return l1

    def l2(self, symbol: str, depth: int = DEFAULT_DEPTH) -> L2:
        """Up to ``depth`` displayed levels per side as (price, size, orders), best first."""
        if depth < 0:
            raise ValueError(f"depth {depth} < 0")
        inst = self._instruments[symbol]
        if depth <= DEFAULT_DEPTH:
            return L2(inst.window(True)[:depth], inst.window(False)[:depth], inst.l2_ts)
        bids, asks = inst.bids, inst.asks
        return L2(
            [bids[p] for p in islice(reversed(bids), depth)],
            [asks[p] for p in islice(asks, depth)],
            inst.l2_ts,
        )

    def l2_window(self, symbol: str) -> L2:
        """The top ``DEFAULT_DEPTH`` levels per side as ``l2`` gives them, without copying.

        The lists are the book's own: they must not be mutated, and a side's list stays the
        same object until a level change may have touched that side's window (so ``is``
        against an earlier result means "unchanged").
        """
        inst = self._instruments[symbol]
        return L2(inst.window(True), inst.window(False), inst.l2_ts)

    def l3(self, symbol: str) -> L3:
        """Displayed orders as (price, displayed qty, order id, member) in priority order."""
        inst = self._instruments[symbol]
        members = inst.members
        bids = [
            (p, qty, oid, members[oid])
            for p in reversed(inst.l3_bids)
            for oid, qty in inst.l3_bids[p].items()
        ]
        asks = [
            (p, qty, oid, members[oid])
            for p in inst.l3_asks
            for oid, qty in inst.l3_asks[p].items()
        ]
        return L3(bids, asks, inst.l3_ts)

    def trades(self, symbol: str, n: int = MAX_TRADES) -> list[TradeTick]:
        """The last ``n`` trades (at most ``MAX_TRADES``), oldest first."""
        if n < 0:
            raise ValueError(f"n {n} < 0")
        ticks = self._instruments[symbol].trades
        return list(islice(ticks, max(len(ticks) - n, 0), None))

    def state_hash(self) -> str:
        """SHA-256 of a canonical encoding of everything the book holds."""
        state = [self.last_seq, [[s, i.state()] for s, i in self._instruments.items()]]
        return hashlib.sha256(msgspec.msgpack.encode(state)).hexdigest()
