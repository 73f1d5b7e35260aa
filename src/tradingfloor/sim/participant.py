"""The base of every simulated participant: an exchange member that decides what to send when it
wakes and follows its own orders, position and cash (integers) from the engine's events.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Final

from tradingfloor.exchange.engine.commands import (
    CancelOrder,
    Command,
    MassCancel,
    NewOrder,
    ReplaceOrder,
)
from tradingfloor.exchange.engine.events import (
    Accepted,
    Cancelled,
    Event,
    Expired,
    KillSwitchChanged,
    Rejected,
    Replaced,
    Trade,
)
from tradingfloor.exchange.engine.types import PostOnly, Side, STPMode, TimeInForce
from tradingfloor.sim.checkpoint_state import OrderRecord, ParticipantRecord
from tradingfloor.sim.market import MarketView, SymbolView

__all__ = [
    "ID_PREFIX",
    "MIN_WAKE_NS",
    "NEVER",
    "NS_PER_MS",
    "NS_PER_S",
    "OrderState",
    "Participant",
    "ParticipantStats",
    "participant_seed",
]

NS_PER_MS: Final = 1_000_000
NS_PER_S: Final = 1_000_000_000
NEVER: Final = 1 << 62  # a wake-up time that never comes
MIN_WAKE_NS: Final = NS_PER_MS  # a participant sleeps at least this long between two turns
ID_PREFIX: Final = "s"  # client order ids are "s1", "s2", ... per member, never reused
STP: Final = STPMode.CANCEL_NEWEST  # simulated members never trade with themselves


def participant_seed(seed: int, name: str) -> int:
    """The seed of one participant's generator: the same for the same (seed, name), anywhere."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(slots=True)
class OrderState:
    """One of the participant's orders: sent (``order_id`` 0 until accepted) or live."""

    symbol: str
    side: Side
    cl_ord_id: str  # current client order id (changes with each replace)
    price: int
    qty: int  # total quantity, filled part included
    tif: TimeInForce = TimeInForce.DAY
    order_id: int = 0
    cum_qty: int = 0
    leaves: int = 0
    sent_ns: int = 0  # simulated time it was sent or last replaced; 0 if learned from history
    replace_cl: str = ""  # client id of a replace in flight
    cancelling: bool = False
    tag: int = 0  # free for the strategy (e.g. which parent order a child belongs to)

    @property
    def busy(self) -> bool:
        """Not accepted yet, or a replace or cancel is in flight: leave it alone for now."""
        return self.order_id == 0 or bool(self.replace_cl) or self.cancelling


@dataclass(slots=True)
class ParticipantStats:
    """What one participant sent and what came of it."""

    orders: int = 0
    cancels: int = 0
    replaces: int = 0
    rejects: int = 0
    fills: int = 0
    filled_qty: int = 0


class Participant:
    """A simulated exchange member. Subclasses implement ``decide`` (and maybe ``on_fill``).

    The runner calls ``begin(now)`` once, then ``act(now, market)`` whenever ``now`` reaches
    ``next_wake_ns`` and sends the returned commands in order; it routes every event that names
    the member to ``on_events``. Client order ids are ``s<n>`` with ``n`` above every id the
    member has used, as far as the events and commands seen so far tell (replaying a venue's
    history therefore makes a fresh participant continue after its predecessor's ids).
    """

    kind: ClassVar[str] = "participant"
    interval_ns: int = NS_PER_S  # mean time between turns

    def __init__(self, member: str, *, seed: int) -> None:
        if not member:
            raise ValueError("a participant needs a member id")
        self.member = member
        self.seed = seed
        self.rng = random.Random(participant_seed(seed, member))
        self.next_wake_ns = NEVER
        self.now_ns = 0
        self.position: dict[str, int] = {}  # shares, negative when short
        self.cash: dict[str, int] = {}  # ticks x shares received minus paid, per symbol
        self.stats = ParticipantStats()
        self.killed = False  # the member's kill switch is on: sit out until it is released
        self._last_id = 0  # highest id used or seen: the next one is above it
        self._seen_id = 0  # highest id seen in the venue's commands and events
        self._pending: dict[str, OrderState] = {}  # sent, not accepted yet, by cl_ord_id
        self._live: dict[int, OrderState] = {}  # accepted and open, by order_id

    # --- scheduling ------------------------------------------------------------------------------

    def begin(self, now_ns: int) -> None:
        """First turn somewhere in the next interval, so that participants do not move together."""
        self.now_ns = now_ns
        self.next_wake_ns = now_ns + 1 + self.rng.randrange(self.interval_ns)

    def act(self, now_ns: int, market: MarketView) -> list[Command]:
        """Take a turn: return the commands to send now; then ``next_wake_ns`` is the next turn."""
        self.now_ns = now_ns
        self.next_wake_ns = now_ns + self.jitter(self.interval_ns)
        out: list[Command] = []
        if not self.killed:  # every order would be refused: wait for the release
            try:
                self.decide(now_ns, market, out)
            except Exception:
                # The turn's commands are dropped (the runner sends none of them): forget them,
                # or their orders would wait for an answer forever.
                for command in reversed(out):
                    self.unsent(command)
                raise
        if self.next_wake_ns < now_ns + MIN_WAKE_NS:
            self.next_wake_ns = now_ns + MIN_WAKE_NS
        return out

    def decide(self, now_ns: int, market: MarketView, out: list[Command]) -> None:
        """Append this turn's commands to ``out`` (helpers: new_order, replace, cancel)."""
        raise NotImplementedError

    def wake_at(self, ns: int) -> None:
        """Ask for a turn no later than ``ns``."""
        self.next_wake_ns = min(self.next_wake_ns, ns)

    def jitter(self, mean_ns: int) -> int:
        """A delay drawn uniformly from [mean/2, 3*mean/2) (integer draws only: portable)."""
        half = max(1, mean_ns // 2)
        return half + self.rng.randrange(2 * half)

    def percent(self, chance: int) -> bool:
        """True with probability ``chance``/100."""
        return self.rng.randrange(100) < chance

    # --- orders ----------------------------------------------------------------------------------

    def next_cl_ord_id(self) -> str:
        self._last_id += 1
        return f"{ID_PREFIX}{self._last_id}"

    @property
    def last_cl_ord_number(self) -> int:
        """The highest ``n`` of an ``s<n>`` client order id used (or learned) so far."""
        return self._last_id

    def new_order(
        self,
        out: list[Command],
        view: SymbolView,
        side: Side,
        qty: int,
        price: int,
        *,
        tif: TimeInForce = TimeInForce.DAY,
        post_only: PostOnly = PostOnly.NONE,
    ) -> OrderState | None:
        """Append a limit order (price moved into the band, qty rounded down to the lot)."""
        lot = max(1, view.lot_size)
        qty -= qty % lot
        price = view.clamp(price)
        if qty <= 0:
            return None
        cl = self.next_cl_ord_id()
        out.append(
            NewOrder(
                symbol=view.symbol,
                member=self.member,
                cl_ord_id=cl,
                side=side,
                qty=qty,
                price=price,
                tif=tif,
                post_only=post_only,
                stp=STP,
            )
        )
        order = OrderState(
            symbol=view.symbol,
            side=side,
            cl_ord_id=cl,
            price=price,
            qty=qty,
            tif=tif,
            leaves=qty,
            sent_ns=self.now_ns,
        )
        self._pending[cl] = order
        self.stats.orders += 1
        return order

    def replace(
        self, out: list[Command], view: SymbolView, order: OrderState, *, price: int, leaves: int
    ) -> bool:
        """Append a replace to ``price`` with ``leaves`` shares open; False if not possible now."""
        lot = max(1, view.lot_size)
        leaves -= leaves % lot
        price = view.clamp(price)
        if order.busy or leaves <= 0:
            return False
        if price == order.price and leaves == order.leaves:
            return False
        cl = self.next_cl_ord_id()
        out.append(
            ReplaceOrder(
                symbol=order.symbol,
                member=self.member,
                cl_ord_id=cl,
                qty=order.cum_qty + leaves,
                order_id=order.order_id,
                price=price,
            )
        )
        order.replace_cl = cl
        order.sent_ns = self.now_ns
        self.stats.replaces += 1
        return True

    def cancel(self, out: list[Command], order: OrderState) -> bool:
        """Append a cancel of ``order``; False if it is not accepted yet or already changing."""
        if order.busy:
            return False
        out.append(
            CancelOrder(
                symbol=order.symbol,
                member=self.member,
                cl_ord_id=self.next_cl_ord_id(),
                order_id=order.order_id,
            )
        )
        order.cancelling = True
        self.stats.cancels += 1
        return True

    def open_orders(self, symbol: str, side: Side | None = None) -> list[OrderState]:
        """Orders sent or live in ``symbol`` (on ``side``) that are not being cancelled."""
        found = [
            o
            for orders in (self._live.values(), self._pending.values())
            for o in orders
            if o.symbol == symbol and not o.cancelling and (side is None or o.side is side)
        ]
        found.sort(key=lambda o: (o.order_id == 0, o.order_id, o.cl_ord_id))
        return found

    def live_orders(self) -> list[OrderState]:
        """Every accepted open order, in order id order."""
        return [self._live[k] for k in sorted(self._live)]

    def working_qty(self, symbol: str, side: Side) -> int:
        """Open shares on ``side`` in ``symbol``, sent or live."""
        return sum(o.leaves for o in self.open_orders(symbol, side))

    # --- checkpoint ------------------------------------------------------------------------------

    def history_record(self) -> ParticipantRecord:
        """What a fresh participant would know after the commands and events seen so far.

        Only what the venue's history tells: accepted open orders (without what only the
        sender knows: send time, tag, a replace or cancel in flight), position, cash, fill and
        reject counts, the kill switch and the highest client order id the venue has seen.
        Orders not accepted yet, the generator's draws, turn times and what a subclass decided
        in its turns are left out, as a restart without a checkpoint loses them too. A subclass
        that learns more from events (``on_events``, ``on_fill``) must extend the record.
        """
        return ParticipantRecord(
            member=self.member,
            kind=self.kind,
            last_cl_ord_number=self._seen_id,
            killed=self.killed,
            position={s: self.position[s] for s in sorted(self.position)},
            cash={s: self.cash[s] for s in sorted(self.cash)},
            fills=self.stats.fills,
            filled_qty=self.stats.filled_qty,
            rejects=self.stats.rejects,
            orders=[
                OrderRecord(
                    order_id=o.order_id,
                    symbol=o.symbol,
                    side=o.side,
                    cl_ord_id=o.cl_ord_id,
                    price=o.price,
                    qty=o.qty,
                    cum_qty=o.cum_qty,
                    leaves=o.leaves,
                    tif=o.tif,
                )
                for o in self.live_orders()
            ],
        )

    def restore_history(self, record: ParticipantRecord) -> None:
        """Continue from ``record`` (checked by ``decode_sim_state``) as if its history had been
        replayed; call on a fresh participant, before ``begin``."""
        if record.member != self.member or record.kind != self.kind:
            raise ValueError(f"the record is of {record.kind} {record.member!r}")
        self._last_id = self._seen_id = record.last_cl_ord_number
        self.killed = record.killed
        self.position = dict(record.position)
        self.cash = dict(record.cash)
        self.stats = ParticipantStats(
            fills=record.fills, filled_qty=record.filled_qty, rejects=record.rejects
        )
        self._pending = {}
        self._live = {
            o.order_id: OrderState(
                symbol=o.symbol,
                side=o.side,
                cl_ord_id=o.cl_ord_id,
                price=o.price,
                qty=o.qty,
                tif=o.tif,
                order_id=o.order_id,
                cum_qty=o.cum_qty,
                leaves=o.leaves,
            )
            for o in record.orders
        }

    # --- bookkeeping -----------------------------------------------------------------------------

    def pnl_ticks(self, market: MarketView) -> dict[str, int]:
        """Cash plus position marked at the last trade (or fair price), per symbol, in ticks."""
        result: dict[str, int] = {}
        for symbol in sorted(set(self.position) | set(self.cash)):
            view = market.get(symbol)
            mark = view.anchor_price() if view is not None else 0
            result[symbol] = self.cash.get(symbol, 0) + self.position.get(symbol, 0) * mark
        return result

    def pnl(self, market: MarketView) -> Decimal:
        """Mark-to-market profit and loss over every symbol, in currency units."""
        total = Decimal(0)
        for symbol, ticks in self.pnl_ticks(market).items():
            view = market.get(symbol)
            if view is not None:
                total += view.tick_size * ticks
        return total

    def on_fill(self, order: OrderState | None, side: Side, qty: int, price: int) -> None:
        """Hook: one of the participant's orders traded ``qty`` at ``price``."""

    def on_events(self, events: Iterable[Event], now_ns: int) -> None:
        """Follow the member's orders, fills and ids; other members' events are ignored."""
        self.now_ns = max(self.now_ns, now_ns)
        me = self.member
        for ev in events:
            if isinstance(ev, Trade):
                if ev.maker_member == me:
                    self._on_trade(ev, ev.maker_order_id, ev.maker_leaves)
                if ev.taker_member == me:
                    self._on_trade(ev, ev.taker_order_id, ev.taker_leaves)
            elif getattr(ev, "member", None) != me:
                continue
            elif isinstance(ev, Accepted):
                self._note_id(ev.cl_ord_id)
                order = self._pending.pop(ev.cl_ord_id, None)
                if order is None:  # learned from history: sent by an earlier run
                    order = OrderState(
                        symbol=ev.symbol,
                        side=ev.side,
                        cl_ord_id=ev.cl_ord_id,
                        price=ev.price,
                        qty=ev.qty,
                        tif=ev.tif,
                    )
                order.order_id = ev.order_id
                order.price = ev.price
                order.qty = ev.qty
                order.leaves = ev.qty
                self._live[ev.order_id] = order
            elif isinstance(ev, Cancelled):
                self._note_id(ev.cl_ord_id)
                order = self._live.get(ev.order_id)
                if order is not None:
                    order.leaves = ev.leaves_qty
                    order.qty = order.cum_qty + ev.leaves_qty
                    order.cancelling = False
                    if ev.leaves_qty == 0:
                        del self._live[ev.order_id]
            elif isinstance(ev, Replaced):
                self._note_id(ev.cl_ord_id)
                order = self._live.get(ev.order_id)
                if order is not None:
                    order.cl_ord_id = ev.cl_ord_id
                    order.price = ev.price
                    order.qty = ev.qty
                    order.leaves = ev.leaves_qty
                    order.replace_cl = ""
            elif isinstance(ev, Expired):
                self._live.pop(ev.order_id, None)
            elif isinstance(ev, Rejected):
                self._on_rejected(ev)
            elif isinstance(ev, KillSwitchChanged):
                released = self.killed and not ev.active
                self.killed = ev.active
                if released:
                    self.wake_at(self.now_ns)  # quote again right away

    def _on_trade(self, ev: Trade, order_id: int, leaves: int) -> None:
        side = Side.BUY if ev.buy_order_id == order_id else Side.SELL
        signed = ev.qty if side is Side.BUY else -ev.qty
        self.position[ev.symbol] = self.position.get(ev.symbol, 0) + signed
        self.cash[ev.symbol] = self.cash.get(ev.symbol, 0) - signed * ev.price
        self.stats.fills += 1
        self.stats.filled_qty += ev.qty
        order = self._live.get(order_id)
        if order is not None:
            order.cum_qty += ev.qty
            order.leaves = leaves
            if leaves == 0:
                del self._live[order_id]
        self.on_fill(order, side, ev.qty, ev.price)

    def _on_rejected(self, ev: Rejected) -> None:
        self._note_id(ev.cl_ord_id)
        self.stats.rejects += 1
        if ev.command == "new_order":
            self._pending.pop(ev.cl_ord_id, None)
            return
        order = self._live.get(ev.order_id)
        if order is None:
            return
        if ev.command == "replace" and order.replace_cl == ev.cl_ord_id:
            order.replace_cl = ""
        elif ev.command == "cancel":
            order.cancelling = False

    def _note_id(self, cl_ord_id: str) -> None:
        if cl_ord_id.startswith(ID_PREFIX):
            digits = cl_ord_id[len(ID_PREFIX) :]
            if digits.isascii() and digits.isdigit():
                number = int(digits)
                self._seen_id = max(self._seen_id, number)
                self._last_id = max(self._last_id, number)

    def note_command(self, command: Command) -> None:
        """A command of this member reached the venue (live runs): never reuse its client id."""
        if isinstance(command, NewOrder | ReplaceOrder | CancelOrder | MassCancel):
            self._note_id(command.cl_ord_id)

    def unsent(self, command: Command) -> None:
        """``command`` from ``act`` could not be sent: forget what it was going to do.

        Its client order id stays used (ids only ever go up).
        """
        if isinstance(command, NewOrder):
            if self._pending.pop(command.cl_ord_id, None) is not None:
                self.stats.orders -= 1
        elif isinstance(command, ReplaceOrder):
            order = self._live.get(command.order_id)
            if order is not None and order.replace_cl == command.cl_ord_id:
                order.replace_cl = ""
                self.stats.replaces -= 1
        elif isinstance(command, CancelOrder):
            order = self._live.get(command.order_id)
            if order is not None and order.cancelling:
                order.cancelling = False
                self.stats.cancels -= 1
