"""The broker as a running service: accounts, order management, risk and portfolio in one place.

State lives in memory and is written behind to SQL (``storage.writer``). The only path by which
orders change state is ``on_venue_events``: the venue's events, in sequence order, live or
replayed at start-up. Each batch of events also records the venue's sequence number as a
durable mark in the same transaction, so a restart replays exactly the events the database has
not seen yet. Next to it the ``marks`` table holds the venue id and epoch the mark belongs to
(``venue_mark``); when the venue starts a new epoch, ``begin_epoch`` cancels every order the
broker believes open, with a reason the customer sees, and releases their holds.

Requests run on the event loop; every check and every hold happens before the first ``await``,
so two requests can never spend the same buying power. A new order is committed (as
``pending_new``) before it is sent to the venue; the answer is given once the venue has
journaled it and its events have been applied.

Every command takes the ``Actor`` who asked for it (``core.actor``; the API builds it once per
request) and records it with the change, in the same commit, on the order's history or as an
administrative record (``broker/records.py``); what the venue or the broker does on its own is
recorded with a system actor (`_acting`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from sqlalchemy import select

from tradingfloor.broker.accounts.configuration import AccountConfiguration
from tradingfloor.broker.accounts.state import AccountState
from tradingfloor.broker.calendar import MarketCalendar
from tradingfloor.broker.errors import BrokerError, ErrorCode
from tradingfloor.broker.instruments import Instrument
from tradingfloor.broker.market.venue_view import MarketView
from tradingfloor.broker.oms.orders import (
    CLOSED_STATUSES,
    BrokerOrder,
    LegRole,
    OrderClass,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from tradingfloor.broker.oms.requests import (
    OrderRequest,
    ReplaceRequest,
    validate_order,
    validate_replace,
)
from tradingfloor.broker.oms.trailing import TrailTracker
from tradingfloor.broker.portfolio.position import Position
from tradingfloor.broker.records import ActionRecorder, AdminAction
from tradingfloor.broker.risk.codes import RiskCode, RiskReject
from tradingfloor.broker.risk.pretrade import (
    AccountRisk,
    OrderIntent,
    RiskLimits,
    SymbolRisk,
    buying_power,
    check_collar,
    check_order,
    order_hold,
)
from tradingfloor.broker.venue_adapter import VenueAdapter
from tradingfloor.core.actor import IN_PROCESS, Actor
from tradingfloor.core.limits import MAX_CASH_MINOR
from tradingfloor.exchange.engine import commands as cmd
from tradingfloor.exchange.engine import events as ev
from tradingfloor.exchange.engine.types import OrdType, Side
from tradingfloor.exchange.engine.types import TimeInForce as VenueTif
from tradingfloor.exchange.identity import ConsumerMark, VenueIdentity
from tradingfloor.storage import tables as t
from tradingfloor.storage.writer import WriteBehind

__all__ = ["MAX_OPEN_ORDERS_PER_ACCOUNT", "Broker", "Quotes", "TradeUpdate"]

_log = logging.getLogger(__name__)

MAX_OPEN_ORDERS_PER_ACCOUNT: Final = 1_000
CLOSED_CACHE: Final = 10_000  # closed orders kept in memory for quick lookups
SETTLEMENT_DAYS: Final = 1  # T+1
EQUITY_INTERVAL_NS: Final = 60 * 1_000_000_000  # portfolio history resolution
NS: Final = 1_000_000_000

_TRANSFER_KINDS: Final = ("deposit", "withdrawal")

Quotes = Callable[[str], tuple[int | None, int | None]]
"""Best bid and best ask (ticks) of a symbol, or None for an empty side."""

_VENUE_TYPES: Final = {
    OrderType.MARKET: OrdType.MARKET,
    OrderType.LIMIT: OrdType.LIMIT,
    OrderType.STOP: OrdType.STOP,
    OrderType.STOP_LIMIT: OrdType.STOP_LIMIT,
    OrderType.TRAILING_STOP: OrdType.TRAILING_STOP,
}
#: Trade-update events that name a request in the order's history.
_HISTORY_KINDS: Final = {"pending_cancel": "cancel_requested"}

_VENUE_TIFS: Final = {
    TimeInForce.DAY: VenueTif.DAY,
    TimeInForce.GTC: VenueTif.GTC,
    TimeInForce.OPG: VenueTif.OPG,
    TimeInForce.CLS: VenueTif.CLS,
    TimeInForce.IOC: VenueTif.IOC,
    TimeInForce.FOK: VenueTif.FOK,
}


def _venue_tif(order: BrokerOrder) -> VenueTif:
    """The venue's time in force for ``order``. A market order with ``gtc`` (which Alpaca
    accepts) goes as ``day``: the venue takes no GTC market orders, and a market order never
    rests in continuous trading anyway (its unfilled rest is cancelled), so the two differ
    only in name; the order keeps ``gtc`` at the broker."""
    tif = _VENUE_TIFS[TimeInForce(order.time_in_force)]
    if tif == VenueTif.GTC and order.order_type == OrderType.MARKET:
        return VenueTif.DAY
    return tif


def _check_rebooking(old: BrokerOrder, tif: str, trail: int | None) -> None:
    """What a replacement with a new time in force or trail must satisfy (422 otherwise)."""
    if tif not in set(TimeInForce):
        raise BrokerError(ErrorCode.INVALID, f"unknown time_in_force {tif!r}")
    if trail is not None and old.order_type != OrderType.TRAILING_STOP:
        raise BrokerError(ErrorCode.INVALID, "trail is only for trailing_stop orders")
    if old.order_class != OrderClass.SIMPLE and tif not in (TimeInForce.DAY, TimeInForce.GTC):
        raise BrokerError(ErrorCode.INVALID, f"{old.order_class} orders must be day or gtc")
    if old.extended_hours and tif != TimeInForce.DAY:
        raise BrokerError(ErrorCode.INVALID, "extended_hours orders must be day orders")
    if tif in (TimeInForce.OPG, TimeInForce.CLS) and old.order_type not in (
        OrderType.MARKET,
        OrderType.LIMIT,
    ):
        raise BrokerError(ErrorCode.INVALID, "opg and cls orders must be market or limit orders")


@dataclass(frozen=True, slots=True)
class TradeUpdate:
    """One entry of the trade_updates stream; ``order`` is a copy taken when it happened."""

    account_id: str
    event: str  # new | fill | partial_fill | canceled | expired | replaced | rejected | ...
    order: BrokerOrder
    timestamp: int
    price: int | None = None
    qty: int | None = None
    position_qty: int | None = None
    execution_id: str | None = None


TradeUpdateListener = Callable[[TradeUpdate], None]


_ids = random.SystemRandom(), random.Random()
_ids[1].seed(_ids[0].getrandbits(128))


def _new_id() -> str:
    """A random (version 4) UUID: unique, not secret, so no system call per id."""
    return str(uuid.UUID(int=_ids[1].getrandbits(128), version=4))


class Broker:
    """See module docstring."""

    def __init__(
        self,
        store: WriteBehind,
        venue: VenueAdapter,
        *,
        calendar: MarketCalendar | None = None,
        limits: RiskLimits | None = None,
        quotes: Quotes | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.store = store
        self.venue = venue
        self.calendar = calendar if calendar is not None else MarketCalendar(always_open=True)
        self.limits = limits if limits is not None else RiskLimits()
        self.quotes: Quotes = quotes if quotes is not None else (lambda _symbol: (None, None))
        self.clock = clock
        # the venue's market as every event builds it (checkpointed with the venue's projections)
        self.market = MarketView(venue.name)
        self.accounts: dict[str, AccountState] = {}
        self.restricted: dict[str, str] = {}
        self.prior_close: dict[str, int] = {}
        self._orders: dict[str, BrokerOrder] = {}  # open orders, plus a cache of closed ones
        self._closed: dict[str, None] = {}  # insertion-ordered ids of cached closed orders
        self._by_client_id: dict[tuple[str, str], str] = {}
        self._by_venue_id: dict[int, str] = {}
        self._open_by_account: dict[str, dict[str, BrokerOrder]] = {}
        self._prior_status: dict[str, str] = {}  # before pending_cancel / pending_replace
        self._expiring: set[str] = set()  # cancels the broker sent to end DAY orders
        self._deferred: list[Callable[[], Any]] = []  # venue actions found while replaying
        self._sending: set[str] = set()  # exit legs on their way to the venue
        self._rebooking: dict[str, str] = {}  # cancelled to be replaced: old id -> new id
        # listeners, each with an optional filter of the accounts it wants updates of
        self._listeners: list[tuple[TradeUpdateListener, Callable[[str], bool] | None]] = []
        self._mark = 0
        self._mark_venue_id: int | None = None
        self._mark_epoch: int | None = None
        self._command: cmd.Command | None = None  # the command whose events are being applied
        self._day = 0
        self._equity_at = 0
        self._window: tuple[date | None, list[int]] = (None, [])
        self._last_equity: dict[str, int] = {}
        self._configurations: dict[str, AccountConfiguration] = {}
        self._replaying = True
        self._tasks: set[asyncio.Task[Any]] = set()
        # who acts when no request does (see _acting): the venue while its events are applied,
        # a named broker component (recovery, the day roll) while it runs, else the OMS
        self.records = ActionRecorder(store)
        self._system_actor: Actor | None = None
        self._event_seq = 0  # the venue event being applied, while on_venue_events runs
        self._venue_actor: tuple[int, Actor] | None = None
        venue.attach(self.on_venue_events, state=self.market)

    @property
    def instruments(self) -> dict[str, Instrument]:
        """Every listing of the venue, by symbol."""
        return self.market.instruments

    @property
    def last_price(self) -> dict[str, int]:
        """Each symbol's last trade price at the venue, in ticks."""
        return self.market.last_price

    @property
    def trails(self) -> TrailTracker:
        """The venue's trailing stops of the broker's open orders, followed from its events."""
        return self.market.trails

    # --- start-up ---------------------------------------------------------------------------

    async def load(self) -> None:
        """Read the database into memory; call before the venue replays its history."""
        async with self.store.engine.connect() as conn:
            customers = {r.id: r for r in await conn.execute(select(t.customers))}
            for r in await conn.execute(select(t.accounts)):
                self.accounts[r.id] = AccountState(
                    id=r.id,
                    account_number=r.account_number,
                    customer_id=r.customer_id,
                    account_type=r.account_type,
                    status=r.status,
                    currency=r.currency,
                    created_at=r.created_at,
                    kyc_status=customers[r.customer_id].kyc_status,
                    trading_blocked=r.trading_blocked,
                    pattern_day_trader=r.pattern_day_trader,
                )
            for r in await conn.execute(select(t.ledger)):
                acct = self.accounts[r.account_id]
                acct.credit(r.amount, r.settle_at, self.clock())
                if r.kind in _TRANSFER_KINDS:
                    acct.net_transfers += r.amount
            for r in await conn.execute(select(t.opening_equity)):
                acct = self.accounts[r.account_id]
                if r.day > acct.last_equity_day:
                    acct.last_equity, acct.last_equity_day = r.equity, r.day
            for r in await conn.execute(select(t.positions)):
                acct = self.accounts[r.account_id]
                acct.positions[r.symbol] = Position(
                    symbol=r.symbol,
                    qty=r.qty,
                    cost_basis=r.cost_basis,
                    realized_pnl=r.realized_pnl,
                    day_cost_basis=r.day_cost_basis,
                    day_realized=r.day_realized,
                    day=r.day,
                )
            open_statuses = [s.value for s in OrderStatus if s not in CLOSED_STATUSES]
            rows = await conn.execute(select(t.orders).where(t.orders.c.status.in_(open_statuses)))
            for r in rows:
                self._index(BrokerOrder.from_row(r))
            await self._load_related(conn)
            for r in await conn.execute(select(t.account_configurations)):
                self._configurations[r.account_id] = AccountConfiguration.loads(r.settings)
            for r in await conn.execute(select(t.restricted_symbols)):
                self.restricted[r.symbol] = r.reason
            for r in await conn.execute(select(t.marks)):
                if r.name == self._mark_name:
                    self._mark = r.value
                elif r.name == self._mark_name + ":id":
                    self._mark_venue_id = r.value
                elif r.name == self._mark_name + ":epoch":
                    self._mark_epoch = r.value
            for acct in self.accounts.values():
                acct.held = sum(o.hold for o in self._open_by_account.get(acct.id, {}).values())
            await self._load_day_trades(conn)
            await self.records.load(conn)

    async def _load_related(self, conn: Any) -> None:
        """Closed orders the open ones depend on, into the cache: the parents of open exit legs
        (and their replacements, to find the live one) and the orders an open entry with legs
        replaced (what they filled is covered by the legs)."""
        for _ in range(100):
            wanted: set[str] = set()
            for order in self._orders.values():
                if order.is_open and order.parent_id:
                    wanted.add(order.parent_id)
                if order.order_class != OrderClass.SIMPLE and order.parent_id is None:
                    if order.is_open and order.replaces:
                        wanted.add(order.replaces)
                    if not order.is_open and order.replaced_by:
                        wanted.add(order.replaced_by)
            wanted -= self._orders.keys()
            if not wanted:
                return
            rows = await conn.execute(select(t.orders).where(t.orders.c.id.in_(sorted(wanted))))
            found = [BrokerOrder.from_row(r) for r in rows]
            if not found:
                return
            for order in found:  # closed (a replaced one shares its venue id: not indexed)
                self._orders[order.id] = order
                self._by_client_id[(order.account_id, order.client_order_id)] = order.id
                self._closed[order.id] = None

    async def _load_day_trades(self, conn: Any) -> None:
        """Rebuild day-trade counts from the last five trading days' fills."""
        today = self.calendar.trading_day(self.clock())
        window = self.calendar.last_n_trading_days(today, 5)
        start_ns = self.calendar.session(window[0])
        if start_ns is None:
            return
        since = start_ns[0] - 24 * 3600 * NS
        rows = await conn.execute(
            select(t.fills).where(t.fills.c.ts >= since).order_by(t.fills.c.venue_seq)
        )
        replay: dict[str, dict[str, int]] = {}
        for r in rows:
            acct = self.accounts.get(r.account_id)
            if acct is None:
                continue
            before = replay.setdefault(acct.id, {}).get(r.symbol, 0)
            day = self._day_number(r.ts)
            acct.day_trades.on_fill(day, r.symbol, r.side, r.qty, before)
            signed = r.qty if r.side == "buy" else -r.qty
            replay[acct.id][r.symbol] = before + signed

    @property
    def _mark_name(self) -> str:
        return f"venue:{self.venue.name}"

    # --- the venue's identity ------------------------------------------------------------------

    def venue_mark(self) -> ConsumerMark:
        """The venue identity and last event seq the database has (checked at start-up)."""
        return ConsumerMark("broker database", self._mark_venue_id, self._mark_epoch, self._mark)

    async def adopt_identity(self, identity: VenueIdentity) -> None:
        """Record the venue's identity with the mark (committed before this returns)."""
        self._mark_venue_id, self._mark_epoch = identity.venue_id, identity.epoch
        self.store.upsert(t.marks, {"name": self._mark_name + ":id", "value": identity.venue_id})
        self.store.upsert(t.marks, {"name": self._mark_name + ":epoch", "value": identity.epoch})
        self.store.upsert(t.marks, {"name": self._mark_name, "value": self._mark})
        await self.store.flush()

    async def begin_epoch(self, identity: VenueIdentity) -> int:
        """The venue started a new epoch (its journal was lost or replaced): every order the
        broker believes open is cancelled with a reason and its hold released, and the mark
        moves to the new epoch's start; all in one commit. Returns how many were cancelled.

        Call before the replay; the venue's own copies of these orders (if its journal still
        has them) are cancelled by the mass cancel ``serve`` sends once the venue runs.
        """
        now = self.clock()
        reason = (
            f"canceled: the venue started a new epoch ({identity.epoch}) and no longer knows "
            "this order; nothing more will fill"
        )
        cancelled = 0
        for opened in list(self._open_by_account.values()):
            for order in list(opened.values()):
                order.reject_reason = reason
                self._prior_status.pop(order.id, None)
                self._expiring.discard(order.id)
                self._sending.discard(order.id)
                self._close(order, OrderStatus.CANCELED, now)
                cancelled += 1
        self._by_venue_id.clear()  # the old epoch's venue order ids mean nothing now
        self._mark = identity.current.start_event_seq
        await self.adopt_identity(identity)
        _log.warning("venue epoch %d: cancelled %d open broker orders", identity.epoch, cancelled)
        return cancelled

    def finish_replay(self) -> None:
        """After the venue's history is applied: settle what the crash left half done."""
        self._system_actor = Actor.system("broker:recovery")
        try:
            self._settle_after_replay()
        finally:
            self._system_actor = None

    def _settle_after_replay(self) -> None:
        now = self.clock()
        # a market view restored from a checkpoint may follow stops closed before the mark
        self.market.retain_trails(
            {o.venue_order_id for o in self._orders.values() if o.is_open and o.venue_order_id}
        )
        self._settle_orphaned_legs(now)  # still replaying: the venue actions it finds wait
        self._replaying = False
        deferred, self._deferred = self._deferred, []
        for order in list(self._orders.values()):
            if order.status == OrderStatus.PENDING_NEW and order.venue_order_id is None:
                if order.leg_role:  # the broker's own exit order: send it (again)
                    deferred.append(functools.partial(self._send_leg, order))
                else:  # the customer never had an answer; a retry finds it rejected
                    self._reject(
                        order, 0, "the broker restarted before the order reached the venue"
                    )
            elif order.status in (OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE):
                order.status = OrderStatus.PARTIALLY_FILLED if order.filled_qty else OrderStatus.NEW
                self._touch(order, now)
        for action in deferred:
            action()
        self._roll_day(now)

    def _settle_orphaned_legs(self, now: int) -> None:
        """No exit leg outlives its entry: a held leg whose entry closed (in a database written
        before entries' replacements took their legs along) goes to the live replacement, or
        is activated for what the entry filled, or cancelled."""
        for leg in [o for o in self._orders.values() if o.status == OrderStatus.HELD]:
            parent = self._orders.get(leg.parent_id or "")
            seen: set[str] = set()
            while (
                parent is not None
                and parent.status == OrderStatus.REPLACED
                and parent.replaced_by
                and parent.id not in seen
            ):
                seen.add(parent.id)
                parent = self._orders.get(parent.replaced_by)
            if parent is not None and parent.is_open:
                if leg.parent_id != parent.id:
                    leg.parent_id = parent.id
                    self._touch(leg, now)
                continue
            if parent is None:
                self._close(leg, OrderStatus.CANCELED, now)
                continue
            leg.parent_id = parent.id
            self._after_close(parent, now)

    async def start(self, *, maintenance_interval: float = 1.0) -> None:
        self.store.start()
        self._spawn(self._maintain(maintenance_interval))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.store.stop()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def add_trade_update_listener(
        self, listener: TradeUpdateListener, wants: Callable[[str], bool] | None = None
    ) -> None:
        """``listener`` gets the updates of every account, or of those ``wants`` accepts (no
        update is even built for an account nobody wants)."""
        self._listeners.append((listener, wants))

    def remove_trade_update_listener(self, listener: TradeUpdateListener) -> None:
        self._listeners = [(fn, wants) for fn, wants in self._listeners if fn is not listener]

    # --- reference data ------------------------------------------------------------------------

    def instrument(self, symbol: str) -> Instrument:
        inst = self.instruments.get(symbol)
        if inst is None:
            raise BrokerError(ErrorCode.ASSET_NOT_FOUND, f"asset not found: {symbol}")
        return inst

    def account(self, account_id: str) -> AccountState:
        acct = self.accounts.get(account_id)
        if acct is None:
            raise BrokerError(ErrorCode.NOT_FOUND, "account not found")
        return acct

    def primary_account(self, customer_id: str) -> str | None:
        """The customer's first account: the one Alpaca-style requests act on."""
        owned = [a for a in self.accounts.values() if a.customer_id == customer_id]
        return min(owned, key=lambda a: (a.created_at, a.id)).id if owned else None

    def customer_equity(self, customer_id: str) -> int:
        return sum(
            self.valuation(a)[0] for a in self.accounts.values() if a.customer_id == customer_id
        )

    def mark_price(self, symbol: str) -> int | None:
        return self.last_price.get(symbol, self.prior_close.get(symbol))

    def _day_number(self, ts: int) -> int:
        return self.calendar.day_number(self.calendar.trading_day(ts))

    # --- customers, accounts and cash ------------------------------------------------------------

    async def create_customer(
        self, name: str, email: str, *, kyc_status: str = "pending", actor: Actor = IN_PROCESS
    ) -> str:
        if not name.strip() or "@" not in email:
            raise BrokerError(ErrorCode.INVALID, "a customer needs a name and an email address")
        now = self.clock()
        cid = _new_id()
        self.store.insert(
            t.customers,
            {
                "id": cid,
                "name": name.strip(),
                "email": email.strip(),
                "kyc_status": kyc_status,
                "kyc_note": "",
                "created_at": now,
                "updated_at": now,
            },
        )
        self.records.admin_action(
            AdminAction.CUSTOMER_CREATE, cid, actor, now, {"kyc_status": kyc_status}
        )
        await self.store.flush()
        return cid

    async def open_account(
        self, customer_id: str, account_type: str = "cash", *, actor: Actor = IN_PROCESS
    ) -> AccountState:
        if account_type not in ("cash", "margin"):
            raise BrokerError(ErrorCode.INVALID, "account_type must be cash or margin")
        async with self.store.engine.connect() as conn:
            row = (
                await conn.execute(select(t.customers).where(t.customers.c.id == customer_id))
            ).first()
        if row is None:
            raise BrokerError(ErrorCode.NOT_FOUND, "customer not found")
        now = self.clock()
        acct = AccountState(
            id=_new_id(),
            account_number=f"TF{uuid.uuid4().int % 10**10:010d}",
            customer_id=customer_id,
            account_type=account_type,
            status="ACTIVE",
            currency="USD",
            created_at=now,
            kyc_status=row.kyc_status,
        )
        self.store.insert(
            t.accounts,
            {
                "id": acct.id,
                "account_number": acct.account_number,
                "customer_id": customer_id,
                "account_type": account_type,
                "status": acct.status,
                "currency": acct.currency,
                "trading_blocked": False,
                "pattern_day_trader": False,
                "created_at": now,
            },
        )
        self.records.admin_action(
            AdminAction.ACCOUNT_OPEN,
            acct.id,
            actor,
            now,
            {"customer_id": customer_id, "account_type": account_type},
        )
        await self.store.flush()
        self.accounts[acct.id] = acct
        return acct

    async def set_kyc(
        self, customer_id: str, status: str, note: str = "", *, actor: Actor = IN_PROCESS
    ) -> None:
        if status not in ("pending", "approved", "rejected"):
            raise BrokerError(ErrorCode.INVALID, "kyc status must be pending, approved or rejected")
        touched = [a for a in self.accounts.values() if a.customer_id == customer_id]
        async with self.store.engine.connect() as conn:
            row = (
                await conn.execute(select(t.customers.c.id).where(t.customers.c.id == customer_id))
            ).first()
        if row is None:
            raise BrokerError(ErrorCode.NOT_FOUND, "customer not found")
        now = self.clock()
        self.store.update(
            t.customers,
            {"id": customer_id, "kyc_status": status, "kyc_note": note, "updated_at": now},
        )
        self.records.admin_action(
            AdminAction.CUSTOMER_KYC, customer_id, actor, now, {"status": status, "note": note}
        )
        for acct in touched:
            acct.kyc_status = status
        await self.store.flush()

    async def set_trading_blocked(
        self, account_id: str, blocked: bool, *, actor: Actor = IN_PROCESS
    ) -> None:
        acct = self.account(account_id)
        acct.trading_blocked = blocked
        self.store.update(t.accounts, {"id": acct.id, "trading_blocked": blocked})
        self.records.admin_action(
            AdminAction.ACCOUNT_TRADING_BLOCK, acct.id, actor, self.clock(), {"blocked": blocked}
        )
        await self.store.flush()

    async def transfer(
        self, account_id: str, amount: int, *, description: str = "", actor: Actor = IN_PROCESS
    ) -> str:
        """A deposit (amount > 0) or withdrawal (< 0) of minor units, as a ledger entry."""
        acct = self.account(account_id)
        if amount == 0:
            raise BrokerError(ErrorCode.INVALID, "amount must not be zero")
        now = self.clock()
        if amount < 0 and -amount > self.withdrawable(acct, now):
            raise BrokerError(40310000, "insufficient settled cash for the withdrawal", status=403)
        if acct.cash + amount > MAX_CASH_MINOR:
            raise BrokerError(ErrorCode.INVALID, "the deposit would take cash above the maximum")
        entry_id = _new_id()
        acct.credit(amount, now, now)
        acct.net_transfers += amount
        kind = "deposit" if amount > 0 else "withdrawal"
        self.store.insert(
            t.ledger,
            {
                "id": entry_id,
                "account_id": acct.id,
                "kind": kind,
                "amount": amount,
                "settle_at": now,
                "ref": "",
                "description": description or kind,
                "created_at": now,
            },
        )
        self.records.admin_action(
            AdminAction.CASH_DEPOSIT if amount > 0 else AdminAction.CASH_WITHDRAWAL,
            acct.id,
            actor,
            now,
            {"amount_minor": amount, "ledger_id": entry_id, "description": description},
        )
        await self.store.flush()
        return entry_id

    def configuration(self, account_id: str) -> AccountConfiguration:
        """The account's settings (Alpaca's account configurations); defaults until changed."""
        self.account(account_id)
        return self._configurations.get(account_id) or AccountConfiguration()

    async def configure(
        self, account_id: str, changes: dict[str, Any], *, actor: Actor = IN_PROCESS
    ) -> AccountConfiguration:
        """Apply ``changes`` to the account's configuration, durably; invalid ones change
        nothing (42210000)."""
        config = self.configuration(account_id).changed(changes)
        self._configurations[account_id] = config
        now = self.clock()
        self.store.upsert(
            t.account_configurations,
            {"account_id": account_id, "settings": config.dumps(), "updated_at": now},
        )
        self.records.admin_action(AdminAction.ACCOUNT_CONFIGURE, account_id, actor, now, changes)
        await self.store.flush()
        return config

    def _check_configuration(self, acct: AccountState, inst: Instrument, req: OrderRequest) -> None:
        config = self._configurations.get(acct.id)
        if config is None:
            return
        if config.suspend_trade:
            raise RiskReject(RiskCode.TRADING_BLOCKED, "suspend_trade is set for the account")
        if config.no_shorting and req.side == "sell":
            symbol = self._symbol_risk(acct, inst, None)
            if symbol.position_qty - symbol.open_sell_qty < req.qty:
                raise RiskReject(RiskCode.SHORT_NOT_ALLOWED, "no_shorting is set for the account")

    def withdrawable(self, acct: AccountState, now: int) -> int:
        return max(0, min(acct.settled_cash(now), acct.cash) - acct.held)

    async def set_restricted(
        self, symbol: str, restricted: bool, reason: str = "", *, actor: Actor = IN_PROCESS
    ) -> None:
        kind = AdminAction.RESTRICTED_ADD if restricted else AdminAction.RESTRICTED_REMOVE
        self.records.admin_action(kind, symbol, actor, self.clock(), {"reason": reason})
        if restricted:
            self.restricted[symbol] = reason
            self.store.upsert(
                t.restricted_symbols,
                {"symbol": symbol, "reason": reason, "created_at": self.clock()},
            )
        else:
            self.restricted.pop(symbol, None)
            self.store.delete(t.restricted_symbols, {"symbol": symbol})
        await self.store.flush()

    # --- valuation ------------------------------------------------------------------------------

    def valuation(self, acct: AccountState) -> tuple[int, int, int]:
        """(equity, long market value, short market value as a positive number), minor units."""
        long_mv = short_mv = 0
        for pos in acct.positions.values():
            if pos.qty == 0:
                continue
            price = self.mark_price(pos.symbol)
            inst = self.instruments.get(pos.symbol)
            if price is None or inst is None:
                value = pos.cost_basis * (inst.tick_minor if inst else 1)
            else:
                value = pos.qty * price * inst.tick_minor
            if value >= 0:
                long_mv += value
            else:
                short_mv -= value
        return acct.cash + long_mv - short_mv, long_mv, short_mv

    def account_risk(self, acct: AccountState, now: int) -> AccountRisk:
        equity, long_mv, short_mv = self.valuation(acct)
        return AccountRisk(
            account_type=acct.account_type,
            kyc_status=acct.kyc_status,
            trading_blocked=acct.trading_blocked or acct.status != "ACTIVE",
            cash=acct.cash,
            settled_cash=acct.settled_cash(now),
            equity=equity,
            long_market_value=long_mv,
            short_market_value=short_mv,
            held=acct.held,
            day_trade_count=acct.day_trades.count(self._day_trade_window(now)),
        )

    def _day_trade_window(self, now: int) -> list[int]:
        """The last five trading days (as YYYYMMDD), computed once per trading day."""
        today = self.calendar.trading_day(now)
        if self._window[0] != today:
            days = self.calendar.last_n_trading_days(today, 5)
            self._window = (today, [self.calendar.day_number(d) for d in days])
        return self._window[1]

    def buying_power(self, acct: AccountState, now: int | None = None) -> int:
        return buying_power(
            self.account_risk(acct, self.clock() if now is None else now), self.limits
        )

    def _symbol_risk(self, acct: AccountState, inst: Instrument, exclude: str | None) -> SymbolRisk:
        buys = sells = 0
        for order in self._open_by_account.get(acct.id, {}).values():
            if order.symbol != inst.symbol or order.id == exclude or not order.is_working:
                continue
            if order.leg_role == LegRole.TAKE_PROFIT and self._sibling(order) is not None:
                continue  # an OCO pair sells its quantity once
            if order.side == "buy":
                buys += order.leaves_qty
            else:
                sells += order.leaves_qty
        pos = acct.positions.get(inst.symbol)
        bid, ask = self.quotes(inst.symbol)
        return SymbolRisk(
            symbol=inst.symbol,
            tick_minor=inst.tick_minor,
            last_price=self.last_price.get(inst.symbol),
            best_bid=bid,
            best_ask=ask,
            position_qty=pos.qty if pos else 0,
            open_buy_qty=buys,
            open_sell_qty=sells,
            restricted=inst.symbol in self.restricted,
            opened_today_qty=acct.day_trades.opened_today(self._day, inst.symbol),
        )

    # --- orders: queries ------------------------------------------------------------------------

    def open_orders(self, account_id: str) -> list[BrokerOrder]:
        return sorted(
            self._open_by_account.get(account_id, {}).values(), key=lambda o: o.created_at
        )

    def legs_of(self, order: BrokerOrder) -> list[BrokerOrder]:
        return [
            o
            for o in self._open_by_account.get(order.account_id, {}).values()
            if o.parent_id == order.id
        ]

    def cached_order(self, order_id: str) -> BrokerOrder | None:
        return self._orders.get(order_id)

    def order_by_client_id(self, account_id: str, client_order_id: str) -> BrokerOrder | None:
        oid = self._by_client_id.get((account_id, client_order_id))
        return self._orders.get(oid) if oid else None

    # --- orders: commands -----------------------------------------------------------------------

    async def submit_order(
        self, account_id: str, req: OrderRequest, *, actor: Actor = IN_PROCESS
    ) -> BrokerOrder:
        """Check, record, route; returns the order after the venue's answer has been applied
        and the order's history (with ``actor``) is committed."""
        acct = self.account(account_id)
        if req.client_order_id is not None:
            existing = await self.find_by_client_id(account_id, req.client_order_id)
            if existing is not None:
                return existing  # idempotent: the original order, never a second one
        validate_order(req)
        inst = self.instrument(req.symbol)
        if not inst.tradable:
            raise BrokerError(ErrorCode.INVALID, f"{req.symbol} is not tradable at this broker")
        if len(self._open_by_account.get(account_id, {})) >= MAX_OPEN_ORDERS_PER_ACCOUNT:
            raise BrokerError(
                ErrorCode.INVALID, f"at most {MAX_OPEN_ORDERS_PER_ACCOUNT} open orders per account"
            )
        if req.client_order_id is not None and (account_id, req.client_order_id) in (
            self._by_client_id
        ):
            existing_id = self._by_client_id[(account_id, req.client_order_id)]
            return self._orders[existing_id]
        if not self.venue.running:
            raise BrokerError(ErrorCode.VENUE_UNAVAILABLE, "the venue is not available")
        self._check_configuration(acct, inst, req)
        now = self.clock()
        is_oco = req.order_class == OrderClass.OCO
        limit = req.take_profit_limit if is_oco else req.limit_price
        hold = self._check(
            acct, inst, req.side, req.qty, req.order_type, limit, req.stop_price, now, exclude=None
        )
        order_id = _new_id()
        parent = BrokerOrder(
            id=order_id,
            account_id=account_id,
            client_order_id=req.client_order_id or order_id,
            symbol=req.symbol,
            side=req.side,
            order_type=req.order_type,
            time_in_force=req.time_in_force,
            order_class=req.order_class,
            qty=req.qty,
            status=OrderStatus.PENDING_NEW,
            created_at=now,
            updated_at=now,
            limit_price=limit,
            stop_price=req.stop_price,
            trail_price=req.trail_price,
            trail_percent_bps=req.trail_percent_bps,
            extended_hours=req.extended_hours,
            hold=hold,
            leg_role=LegRole.TAKE_PROFIT if is_oco else LegRole.NONE,
        )
        legs = self._make_legs(parent, req, now)
        self._check_leg_collars(acct, inst, legs)
        for order in (parent, *legs):
            self._index(order)
            self.store.insert(t.orders, order.row())
            self._record_submitted(order, actor, now)
        acct.held += hold
        # Durable before it is routed, unless the venue's journal alone can restore it: a simple
        # order whose client order id is its own id is rebuilt from the venue's NewOrder if the
        # broker stops before its write-behind commit (see _rebuild).
        if legs or req.client_order_id is not None:
            try:
                await self.store.flush()
            except Exception:
                self._release(parent)
                raise
        to_send = [parent, *legs] if is_oco else [parent]
        results = [self._route(order) for order in to_send]
        for result in results:
            try:
                await result
            except Exception as exc:
                _log.warning("venue refused order %s: %s", parent.id, exc)
        for order in to_send:
            if order.status == OrderStatus.PENDING_NEW:
                self._reject(order, 0, "the venue did not accept the order")
        # Answered only once its history is durable: the venue's journal could rebuild the
        # order after a crash, but not who placed it.
        await self.store.flush()
        return parent

    def _record_submitted(self, order: BrokerOrder, actor: Actor, ts: int) -> None:
        detail: dict[str, Any] = {
            "client_order_id": order.client_order_id,
            "symbol": order.symbol,
            "side": order.side,
            "qty": order.qty,
            "type": order.order_type,
        }
        if order.parent_id is not None:
            detail["parent_id"] = order.parent_id
            detail["leg_role"] = order.leg_role
        if order.replaces is not None:
            detail["replaces"] = order.replaces
        self.records.order_event(order.id, order.account_id, "submitted", actor, ts, detail)

    def _make_legs(self, parent: BrokerOrder, req: OrderRequest, now: int) -> list[BrokerOrder]:
        if req.order_class == OrderClass.SIMPLE:
            return []
        exit_side = "sell" if req.side == "buy" else "buy"
        if req.order_class == OrderClass.OCO:
            exit_side = req.side
        status = OrderStatus.PENDING_NEW if req.order_class == OrderClass.OCO else OrderStatus.HELD

        def leg(role: LegRole, order_type: str, limit: int | None, stop: int | None) -> BrokerOrder:
            return BrokerOrder(
                id=_new_id(),
                account_id=parent.account_id,
                client_order_id=_new_id(),
                symbol=parent.symbol,
                side=exit_side,
                order_type=order_type,
                time_in_force=parent.time_in_force,
                order_class=parent.order_class,
                qty=parent.qty,
                status=status,
                created_at=now,
                updated_at=now,
                parent_id=parent.id,
                limit_price=limit,
                stop_price=stop,
                leg_role=role,
            )

        legs: list[BrokerOrder] = []
        if req.take_profit_limit is not None and req.order_class != OrderClass.OCO:
            legs.append(leg(LegRole.TAKE_PROFIT, OrderType.LIMIT, req.take_profit_limit, None))
        if req.stop_loss_stop is not None:
            kind = OrderType.STOP_LIMIT if req.stop_loss_limit else OrderType.STOP
            legs.append(leg(LegRole.STOP_LOSS, kind, req.stop_loss_limit, req.stop_loss_stop))
        return legs

    def _check_leg_collars(
        self, acct: AccountState, inst: Instrument, legs: list[BrokerOrder]
    ) -> None:
        """Exit legs face the price collar at submission, as the entry does (nothing stored)."""
        if not legs:
            return
        sym = self._symbol_risk(acct, inst, None)
        for leg in legs:
            intent = OrderIntent(
                side=leg.side,
                qty=leg.qty,
                order_type=leg.order_type,
                limit_price=leg.limit_price,
                stop_price=leg.stop_price,
            )
            check_collar(intent, sym, self.limits)

    def _check(
        self,
        acct: AccountState,
        inst: Instrument,
        side: str,
        qty: int,
        order_type: str,
        limit: int | None,
        stop: int | None,
        now: int,
        *,
        exclude: str | None,
    ) -> int:
        intent = OrderIntent(
            side=side, qty=qty, order_type=order_type, limit_price=limit, stop_price=stop
        )
        risk = self.account_risk(acct, now)
        if exclude is not None:
            old = self._orders[exclude]
            risk = dataclasses.replace(risk, held=risk.held - old.hold)
        # a RiskReject is a BrokerError: 403 with the check's stable code
        return check_order(intent, risk, self._symbol_risk(acct, inst, exclude), self.limits)

    def _venue_command(self, order: BrokerOrder) -> cmd.NewOrder:
        trail_amount = order.trail_price or 0
        trail_bps = order.trail_percent_bps or 0
        return cmd.NewOrder(
            symbol=order.symbol,
            member=self.venue.member,
            cl_ord_id=order.id,
            side=Side.BUY if order.side == "buy" else Side.SELL,
            qty=order.qty,
            ord_type=_VENUE_TYPES[OrderType(order.order_type)],
            price=order.limit_price or 0,
            stop_price=order.stop_price or 0,
            tif=_venue_tif(order),
            account=order.account_id,
            trail_amount=trail_amount,
            trail_bps=trail_bps,
        )

    async def _route(self, order: BrokerOrder) -> None:
        await self.venue.submit(self._venue_command(order))

    async def find_by_client_id(self, account_id: str, client_order_id: str) -> BrokerOrder | None:
        cached = self.order_by_client_id(account_id, client_order_id)
        if cached is not None:
            return cached
        # Orders created by this process stay cached until long after they are committed, so
        # only older ones are looked up, without waiting for a flush.
        async with self.store.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(t.orders).where(
                        t.orders.c.account_id == account_id,
                        t.orders.c.client_order_id == client_order_id,
                    )
                )
            ).first()
        return BrokerOrder.from_row(row) if row is not None else None

    async def find_order(self, account_id: str, order_id: str) -> BrokerOrder | None:
        order = self._orders.get(order_id)
        if order is not None:
            return order if order.account_id == account_id else None
        await self.store.flush()
        async with self.store.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(t.orders).where(
                        t.orders.c.id == order_id, t.orders.c.account_id == account_id
                    )
                )
            ).first()
        return BrokerOrder.from_row(row) if row is not None else None

    async def cancel_order(
        self, account_id: str, order_id: str, *, actor: Actor = IN_PROCESS
    ) -> BrokerOrder:
        order = self._orders.get(order_id)
        if order is None or order.account_id != account_id:
            found = await self.find_order(account_id, order_id)
            if found is None:
                raise BrokerError(ErrorCode.ORDER_NOT_FOUND, "order not found")
            raise BrokerError(ErrorCode.ORDER_NOT_CANCELABLE, f"order is {found.status}")
        if not order.is_open or order.status in (
            OrderStatus.PENDING_CANCEL,
            OrderStatus.PENDING_REPLACE,
        ):
            raise BrokerError(ErrorCode.ORDER_NOT_CANCELABLE, f"order is {order.status}")
        if order.status == OrderStatus.HELD or (
            order.status == OrderStatus.PENDING_NEW
            and order.venue_order_id is None
            and order.parent_id is not None
        ):
            self._close(order, OrderStatus.CANCELED, self.clock())
            self._emit(order, "canceled", actor=actor)
            await self.store.flush()  # the request's record is durable before the answer
            return order
        # a bracket/OTO entry's held legs follow it once the venue confirms (_after_close)
        await self._send_cancel(order, actor)
        await self.store.flush()
        return order

    async def _send_cancel(self, order: BrokerOrder, actor: Actor) -> None:
        if order.venue_order_id is None:
            raise BrokerError(ErrorCode.ORDER_NOT_CANCELABLE, "order is not at the venue yet")
        self._prior_status[order.id] = order.status
        order.status = OrderStatus.PENDING_CANCEL
        self._touch(order, self.clock())
        self._emit(order, "pending_cancel", actor=actor)
        try:
            await self.venue.submit(
                cmd.CancelOrder(
                    symbol=order.symbol,
                    member=self.venue.member,
                    cl_ord_id=_new_id(),
                    order_id=order.venue_order_id,
                )
            )
        except Exception as exc:
            self._restore(order)
            raise BrokerError(ErrorCode.VENUE_UNAVAILABLE, f"the venue refused: {exc}") from None

    async def cancel_all(
        self, account_id: str, *, actor: Actor = IN_PROCESS
    ) -> list[tuple[str, int, BrokerOrder]]:
        """Cancel every open order of the account: (order id, HTTP status, order) each."""
        self.account(account_id)
        results: list[tuple[str, int, BrokerOrder]] = []
        opened = self.open_orders(account_id)
        # entries first: their held legs are cancelled with them, and reported as cancelled
        for order in sorted(opened, key=lambda o: o.parent_id is not None):
            if order.status in (OrderStatus.CANCELED, OrderStatus.PENDING_CANCEL):
                results.append((order.id, 200, order))  # on its way out already
                continue
            try:
                await self.cancel_order(account_id, order.id, actor=actor)
                results.append((order.id, 200, order))
            except BrokerError as exc:
                results.append((order.id, exc.status, order))
        return results

    async def replace_order(
        self, account_id: str, order_id: str, change: ReplaceRequest, *, actor: Actor = IN_PROCESS
    ) -> BrokerOrder:
        """Alpaca's PATCH: a new order replaces the working one (the venue keeps one order)."""
        old = self._orders.get(order_id)
        if old is None or old.account_id != account_id:
            if await self.find_order(account_id, order_id) is None:
                raise BrokerError(ErrorCode.ORDER_NOT_FOUND, "order not found")
            raise BrokerError(ErrorCode.ORDER_NOT_REPLACEABLE, "order is closed")
        if old.status not in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED) or (
            old.venue_order_id is None
        ):
            raise BrokerError(ErrorCode.ORDER_NOT_REPLACEABLE, f"order is {old.status}")
        validate_replace(change, trail_percent=old.trail_percent_bps is not None)
        tif = change.time_in_force or old.time_in_force
        rebook = tif != old.time_in_force or change.trail is not None
        if rebook:
            _check_rebooking(old, tif, change.trail)
        if change.client_order_id is not None and (
            (account_id, change.client_order_id) in self._by_client_id
        ):
            raise BrokerError(ErrorCode.INVALID, "client_order_id must be unique")
        qty = change.qty if change.qty is not None else old.qty - old.filled_qty
        if qty <= 0:
            raise BrokerError(ErrorCode.INVALID, "qty must be positive")
        limit = change.limit_price if change.limit_price is not None else old.limit_price
        stop = change.stop_price if change.stop_price is not None else old.stop_price
        if change.limit_price is not None and old.order_type not in (
            OrderType.LIMIT,
            OrderType.STOP_LIMIT,
        ):
            raise BrokerError(ErrorCode.INVALID, f"{old.order_type} orders have no limit_price")
        if change.stop_price is not None and old.order_type not in (
            OrderType.STOP,
            OrderType.STOP_LIMIT,
        ):
            raise BrokerError(ErrorCode.INVALID, f"{old.order_type} orders have no stop_price")
        for value in (limit, stop):
            if value is not None and value <= 0:
                raise BrokerError(ErrorCode.INVALID, "prices must be positive")
        acct = self.account(account_id)
        inst = self.instrument(old.symbol)
        now = self.clock()
        hold = self._check(
            acct, inst, old.side, qty, old.order_type, limit, stop, now, exclude=old.id
        )
        new = dataclasses.replace(
            old,
            id=_new_id(),
            client_order_id=change.client_order_id or _new_id(),
            qty=qty,
            filled_qty=0,
            filled_notional=0,
            limit_price=limit,
            stop_price=stop,
            status=OrderStatus.PENDING_NEW,
            created_at=now,
            updated_at=now,
            submitted_at=None,
            filled_at=None,
            hold=hold,
            venue_order_id=None,
            replaces=old.id,
            replaced_by=None,
            time_in_force=tif,
        )
        if change.trail is not None:
            if old.trail_percent_bps is not None:
                new.trail_percent_bps = change.trail
            else:
                new.trail_price = change.trail
        self._index(new)
        acct.held += hold
        self.store.insert(t.orders, new.row())
        self._record_submitted(new, actor, now)
        self.records.order_event(
            old.id,
            account_id,
            "replace_requested",
            actor,
            now,
            {"replacement": new.id, "qty": qty, "limit_price": limit, "stop_price": stop},
        )
        self._prior_status[old.id] = old.status
        old.status = OrderStatus.PENDING_REPLACE
        self._touch(old, now)
        await self.store.flush()
        if rebook:
            return await self._rebook(old, new, keep_qty=change.qty is not None)
        try:
            await self.venue.submit(
                cmd.ReplaceOrder(
                    symbol=old.symbol,
                    member=self.venue.member,
                    cl_ord_id=new.id,
                    order_id=old.venue_order_id,
                    qty=old.filled_qty + qty,
                    price=limit or 0,
                    stop_price=stop or 0,
                )
            )
        except Exception as exc:
            _log.warning("venue refused replace of %s: %s", old.id, exc)
        if new.status == OrderStatus.PENDING_NEW:
            self._reject(new, 0, "the venue did not accept the replacement")
            self._restore(old)
        if new.status == OrderStatus.REJECTED:
            raise BrokerError(
                ErrorCode.ORDER_NOT_REPLACEABLE, new.reject_reason or "replacement rejected"
            )
        return new

    async def _rebook(self, old: BrokerOrder, new: BrokerOrder, *, keep_qty: bool) -> BrokerOrder:
        """A replacement the venue's replace cannot make (a new time in force or trail): the
        venue cancels the old order, then takes the new one. The old order ends ``replaced``
        when the venue confirms the cancel (``_on_cancelled``); if it filled first, the
        replacement is rejected and the old order stands."""
        if old.venue_order_id is None:  # replace_order checked it; for the type checker
            raise BrokerError(ErrorCode.ORDER_NOT_REPLACEABLE, "order is not at the venue")
        self._rebooking[old.id] = new.id
        try:
            await self.venue.submit(
                cmd.CancelOrder(
                    symbol=old.symbol,
                    member=self.venue.member,
                    cl_ord_id=_new_id(),
                    order_id=old.venue_order_id,
                )
            )
        except Exception as exc:
            _log.warning("venue refused the cancel to replace %s: %s", old.id, exc)
        self._rebooking.pop(old.id, None)
        if old.status != OrderStatus.REPLACED:
            if old.status == OrderStatus.PENDING_REPLACE:
                self._restore(old)
            self._reject(new, 0, f"the order could not be replaced: it is {old.status}")
            raise BrokerError(ErrorCode.ORDER_NOT_REPLACEABLE, new.reject_reason or "")
        if not keep_qty:  # what was left when the venue cancelled it
            new.qty = min(new.qty, old.qty - old.filled_qty)
        try:
            await self._route(new)
        except Exception as exc:
            _log.warning("venue refused replacement %s: %s", new.id, exc)
        if new.status == OrderStatus.PENDING_NEW:
            self._reject(new, 0, "the venue did not accept the replacement")
        return new

    async def close_position(
        self, account_id: str, symbol: str, qty: int | None = None, *, actor: Actor = IN_PROCESS
    ) -> BrokerOrder:
        acct = self.account(account_id)
        pos = acct.positions.get(symbol)
        if pos is None or pos.qty == 0:
            raise BrokerError(ErrorCode.POSITION_NOT_FOUND, "position does not exist")
        size = abs(pos.qty) if qty is None else qty
        if not 0 < size <= abs(pos.qty):
            raise BrokerError(ErrorCode.INVALID, "qty must be between 1 and the position's size")
        # open orders on the closing side would double count the shares: cancel them first
        side = "sell" if pos.qty > 0 else "buy"
        for order in self.open_orders(account_id):
            if order.symbol == symbol and order.side == side and order.is_working:
                await self.cancel_order(account_id, order.id, actor=actor)
        return await self.submit_order(
            account_id,
            OrderRequest(symbol=symbol, side=side, qty=size, order_type="market"),
            actor=actor,
        )

    # --- the venue's events ------------------------------------------------------------------

    def on_venue_events(
        self, events: Sequence[ev.Event], command: cmd.Command | None = None
    ) -> None:
        member = self.venue.member
        self._command = command
        last = 0
        self._event_seq = -1  # the venue acts (see _acting) until the end of the batch
        try:
            last = self._apply_venue_events(events, member)
        finally:
            self._event_seq = 0
        if last > self._mark:
            self._mark = last
            self.store.upsert(t.marks, {"name": self._mark_name, "value": last})

    def _apply_venue_events(self, events: Sequence[ev.Event], member: str) -> int:
        last = 0
        traded: dict[str, int] = {}  # symbol -> its last price after this command
        for event in events:
            seq = event.seq
            last = seq
            self._event_seq = seq
            kind = type(event)
            # market state (listings, last prices) comes from every event, replayed or not;
            # the broker's own state only from events its database has not seen
            if kind is ev.InstrumentAdded:
                self.market.list_instrument(event)  # type: ignore[arg-type]
                continue
            if kind is ev.Trade:
                traded[event.symbol] = event.price  # type: ignore[union-attr]
            if seq <= self._mark:
                if kind is ev.Trade:
                    self.last_price[event.symbol] = event.price  # type: ignore[union-attr]
                elif kind is ev.Accepted and getattr(event, "member", None) == member:
                    known = self._order_for_venue_id(event.order_id)  # type: ignore[union-attr]
                    if known is not None and known.is_open:
                        self._track_trail(known, event)  # type: ignore[arg-type]
                continue
            if kind is ev.Trade:
                self._on_trade(event)  # type: ignore[arg-type]
            elif getattr(event, "member", None) != member:
                continue
            elif kind is ev.Accepted:
                self._on_accepted(event)  # type: ignore[arg-type]
            elif kind is ev.Rejected:
                self._on_rejected(event)  # type: ignore[arg-type]
            elif kind is ev.Cancelled:
                self._on_cancelled(event)  # type: ignore[arg-type]
            elif kind is ev.Expired:
                self._on_expired(event)  # type: ignore[arg-type]
            elif kind is ev.Replaced:
                self._on_replaced(event)  # type: ignore[arg-type]
        for symbol, price in traded.items():
            self.trails.on_last_price(symbol, price)
        return last

    def _track_trail(self, order: BrokerOrder, e: ev.Accepted) -> None:
        if order.order_type != OrderType.TRAILING_STOP:
            return
        self.trails.start(
            e.order_id,
            order.symbol,
            is_buy=order.side == "buy",
            amount=order.trail_price or 0,
            bps=order.trail_percent_bps or 0,
            last_price=self.last_price.get(order.symbol),
            accepted_stop=e.stop_price,
        )

    def _rebuild(self, order_id: str, ts: int) -> BrokerOrder | None:
        """A simple order the venue journaled but the database never recorded (the broker
        stopped before its write-behind commit): rebuilt from the venue's ``NewOrder``."""
        new = self._command
        if not isinstance(new, cmd.NewOrder) or new.cl_ord_id != order_id:
            return None
        acct = self.accounts.get(new.account)
        inst = self.instruments.get(new.symbol)
        kinds = {v: k for k, v in _VENUE_TYPES.items()}
        tifs = {v: k for k, v in _VENUE_TIFS.items()}
        if acct is None or inst is None or new.ord_type not in kinds or new.tif not in tifs:
            return None
        order = BrokerOrder(
            id=order_id,
            account_id=acct.id,
            client_order_id=order_id,
            symbol=new.symbol,
            side=new.side.value,
            order_type=kinds[new.ord_type],
            time_in_force=tifs[new.tif],
            order_class=OrderClass.SIMPLE,
            qty=new.qty,
            status=OrderStatus.PENDING_NEW,
            created_at=ts,
            updated_at=ts,
            limit_price=new.price or None,
            stop_price=new.stop_price or None,
            trail_price=new.trail_amount or None,
            trail_percent_bps=new.trail_bps or None,
        )
        intent = OrderIntent(
            side=order.side,
            qty=order.qty,
            order_type=order.order_type,
            limit_price=order.limit_price,
            stop_price=order.stop_price,
        )
        try:
            order.hold = order_hold(intent, self._symbol_risk(acct, inst, None), self.limits)
        except RiskReject:
            order.hold = 0
        acct.held += order.hold
        self._index(order)
        self.store.insert(t.orders, order.row())
        self._record_submitted(
            order, Actor.system("broker:recovery", request_id=f"rebuilt:{self._event_seq}"), ts
        )
        return order

    def _order_for_venue_id(self, venue_order_id: int) -> BrokerOrder | None:
        oid = self._by_venue_id.get(venue_order_id)
        return self._orders.get(oid) if oid is not None else None

    def _on_accepted(self, e: ev.Accepted) -> None:
        order = self._orders.get(e.cl_ord_id) or self._rebuild(e.cl_ord_id, e.ts)
        if order is None:
            return
        order.venue_order_id = e.order_id
        self._by_venue_id[e.order_id] = order.id
        if order.status == OrderStatus.PENDING_NEW:
            order.status = OrderStatus.NEW
        order.submitted_at = e.ts
        self._track_trail(order, e)
        self._touch(order, e.ts)
        self._emit(order, "new", e.ts)

    def _on_rejected(self, e: ev.Rejected) -> None:
        if e.command == "new_order":
            order = self._orders.get(e.cl_ord_id) or self._rebuild(e.cl_ord_id, e.ts)
            if order is not None and order.status == OrderStatus.PENDING_NEW:
                self._reject(order, e.code, e.text, e.ts)
        elif e.command == "cancel":
            order = self._order_for_venue_id(e.order_id)
            if order is not None and order.status == OrderStatus.PENDING_CANCEL:
                self._restore(order, e.ts)
                self._emit(order, "order_cancel_rejected", e.ts)
        elif e.command == "replace":
            new = self._orders.get(e.cl_ord_id)
            if new is not None and new.status == OrderStatus.PENDING_NEW:
                self._reject(new, e.code, e.text, e.ts)
                old = self._orders.get(new.replaces or "")
                if old is not None and old.status == OrderStatus.PENDING_REPLACE:
                    self._restore(old, e.ts)
                    self._emit(old, "order_replace_rejected", e.ts)

    def _on_replaced(self, e: ev.Replaced) -> None:
        old = self._order_for_venue_id(e.order_id)
        new = self._orders.get(e.cl_ord_id)
        if old is None or new is None:
            return
        self._prior_status.pop(old.id, None)
        old.replaced_by = new.id
        old.replaced_at = e.ts
        self._close(old, OrderStatus.REPLACED, e.ts)
        new.venue_order_id = e.order_id
        new.submitted_at = e.ts
        new.status = OrderStatus.NEW
        self._by_venue_id[e.order_id] = new.id
        self._touch(new, e.ts)
        self._adopt_legs(old, new, e.ts)
        self._emit(old, "replaced", e.ts)

    def _on_cancelled(self, e: ev.Cancelled) -> None:
        order = self._order_for_venue_id(e.order_id)
        if order is None or not order.is_open:
            return
        if e.leaves_qty > 0:  # self-trade "decrement": the order lives on, smaller
            leaves_before = order.qty - order.filled_qty
            order.qty -= e.cancelled_qty
            self._rehold(order, leaves_before)
            self._touch(order, e.ts)
            self.records.order_event(
                order.id, order.account_id, "qty_reduced", self._acting(), e.ts, {"qty": order.qty}
            )
            return
        self._prior_status.pop(order.id, None)
        replacement = self._orders.get(self._rebooking.pop(order.id, ""))
        if replacement is not None and replacement.status == OrderStatus.PENDING_NEW:
            order.replaced_by = replacement.id
            order.replaced_at = e.ts
            self.trails.stop(order.venue_order_id)  # the replacement is a new venue order
            self._close(order, OrderStatus.REPLACED, e.ts)
            self._adopt_legs(order, replacement, e.ts)
            self._emit(order, "replaced", e.ts)
            return
        expiring = order.id in self._expiring
        self._expiring.discard(order.id)
        status = OrderStatus.EXPIRED if expiring else OrderStatus.CANCELED
        self._close(order, status, e.ts)
        self._emit(order, status.value, e.ts)
        self._after_close(order, e.ts)

    def _on_expired(self, e: ev.Expired) -> None:
        order = self._order_for_venue_id(e.order_id)
        if order is None or not order.is_open:
            return
        self._close(order, OrderStatus.EXPIRED, e.ts)
        self._emit(order, "expired", e.ts)
        self._after_close(order, e.ts)

    def _on_trade(self, e: ev.Trade) -> None:
        self.last_price[e.symbol] = e.price
        member = self.venue.member
        if e.maker_member == member:
            self._fill(e, e.maker_order_id, e.maker_leaves)
        if e.taker_member == member:
            self._fill(e, e.taker_order_id, e.taker_leaves)

    def _fill(self, e: ev.Trade, venue_order_id: int, leaves: int) -> None:
        order = self._order_for_venue_id(venue_order_id)
        if order is None:
            return
        acct = self.accounts.get(order.account_id)
        inst = self.instruments.get(order.symbol)
        if acct is None or inst is None:
            return
        side = "buy" if e.buy_order_id == venue_order_id else "sell"
        qty, price = e.qty, e.price
        day = self._day_number(e.ts)
        if day != self._day:
            self._roll_day(e.ts)
        pos = acct.position(order.symbol)
        if pos.day != day:
            pos.roll_day(day, self.prior_close.get(order.symbol, price))
        position_before = pos.qty
        leaves_before = order.qty - order.filled_qty
        pos.apply_fill(side, qty, price)
        acct.day_trades.on_fill(day, order.symbol, side, qty, position_before)
        order.filled_qty += qty
        order.filled_notional += qty * price
        notional = qty * price * inst.tick_minor
        fill_id = f"{e.trade_id}-{side}"
        if side == "buy":
            acct.credit(-notional, e.ts, e.ts)
            amount, settle_at = -notional, e.ts
        else:
            settle_at = self._settlement_time(e.ts)
            acct.credit(notional, settle_at, e.ts)
            amount = notional
        self.store.insert(
            t.ledger,
            {
                "id": _new_id(),
                "account_id": acct.id,
                "kind": side,
                "amount": amount,
                "settle_at": settle_at,
                "ref": fill_id,
                "description": f"{side} {qty} {order.symbol}",
                "created_at": e.ts,
            },
        )
        self.store.insert(
            t.fills,
            {
                "id": fill_id,
                "order_id": order.id,
                "account_id": acct.id,
                "symbol": order.symbol,
                "side": side,
                "qty": qty,
                "price": price,
                "leaves_qty": leaves,
                "venue_seq": e.seq,
                "ts": e.ts,
            },
        )
        self._save_position(acct, pos, e.ts)
        filled = leaves == 0 or order.filled_qty >= order.qty
        if filled:
            order.filled_at = e.ts
            self._close(order, OrderStatus.FILLED, e.ts)
        else:
            order.status = OrderStatus.PARTIALLY_FILLED
            self._rehold(order, leaves_before)
            self._touch(order, e.ts)
        self._emit(
            order,
            "fill" if filled else "partial_fill",
            e.ts,
            price=price,
            qty=qty,
            position_qty=pos.qty,
            execution_id=fill_id,
        )
        self._after_fill(order, e.ts)
        if filled:
            self._after_close(order, e.ts)

    def _save_position(self, acct: AccountState, pos: Position, ts: int) -> None:
        self.store.upsert(
            t.positions,
            {
                "account_id": acct.id,
                "symbol": pos.symbol,
                "qty": pos.qty,
                "cost_basis": pos.cost_basis,
                "realized_pnl": pos.realized_pnl,
                "day_cost_basis": pos.day_cost_basis,
                "day_realized": pos.day_realized,
                "day": pos.day,
                "updated_at": ts,
            },
        )

    def _settlement_time(self, ts: int) -> int:
        day = self.calendar.trading_day(ts)
        for _ in range(SETTLEMENT_DAYS):
            day = self.calendar.next_trading_day(day)
        session = self.calendar.session(day)
        return session[0] if session else ts

    # --- contingent orders ----------------------------------------------------------------------

    def _sibling(self, order: BrokerOrder) -> BrokerOrder | None:
        """The other half of an exit pair (bracket legs, or an OCO's parent and leg)."""
        if order.order_class not in (OrderClass.BRACKET, OrderClass.OCO) or not order.leg_role:
            return None
        group = order.parent_id or order.id
        for other in self._open_by_account.get(order.account_id, {}).values():
            if other.id != order.id and other.leg_role and ((other.parent_id or other.id) == group):
                return other
        return None

    def _adopt_legs(self, old: BrokerOrder, new: BrokerOrder, ts: int) -> None:
        """A replaced entry's held exits belong to its replacement, as at Alpaca."""
        for leg in self.legs_of(old):
            leg.parent_id = new.id
            self._touch(leg, ts)

    def _filled_before(self, order: BrokerOrder) -> int:
        """What the orders ``order`` replaced had filled (their exits cover it too)."""
        total, seen = 0, {order.id}
        prior = self._orders.get(order.replaces or "")
        while prior is not None and prior.id not in seen:
            seen.add(prior.id)
            total += prior.filled_qty
            prior = self._orders.get(prior.replaces or "")
        return total

    def _after_fill(self, order: BrokerOrder, ts: int) -> None:
        sibling = self._sibling(order) if order.leg_role else None
        if sibling is not None and sibling.is_working:
            self._later(lambda: self._cancel_quietly(sibling))

    def _after_close(self, order: BrokerOrder, ts: int) -> None:
        """An entry closed: activate its held exits for what filled, or cancel them."""
        held = [leg for leg in self.legs_of(order) if leg.status == OrderStatus.HELD]
        if not held:
            return
        filled = order.filled_qty + self._filled_before(order)
        if filled == 0:
            for leg in held:
                self._close(leg, OrderStatus.CANCELED, ts)
                self._emit(leg, "canceled", ts)
            return
        for leg in held:
            leg.qty = filled
            leg.status = OrderStatus.PENDING_NEW
            self._touch(leg, ts)
            self.records.order_event(
                leg.id, leg.account_id, "leg_released", self._acting(), ts, {"qty": leg.qty}
            )
            self._later(lambda leg=leg: self._send_leg(leg))  # type: ignore[misc]

    def _later(self, action: Callable[[], Any]) -> None:
        if self._replaying:
            self._deferred.append(action)
        else:
            asyncio.get_running_loop().call_soon(action)

    def _send_leg(self, leg: BrokerOrder) -> None:
        if leg.status != OrderStatus.PENDING_NEW or leg.venue_order_id is not None:
            return
        if leg.id in self._sending:
            return
        self._sending.add(leg.id)

        async def send() -> None:
            try:
                await self._route(leg)
            except Exception as exc:
                _log.warning("venue refused leg %s: %s", leg.id, exc)
            finally:
                self._sending.discard(leg.id)
            if leg.status == OrderStatus.PENDING_NEW:
                self._reject(leg, 0, "the venue did not accept the order")

        self._spawn(send())

    def _cancel_quietly(self, order: BrokerOrder) -> None:
        if not order.is_working or order.status == OrderStatus.PENDING_CANCEL:
            return
        actor = self._acting()
        if order.venue_order_id is None:
            self._close(order, OrderStatus.CANCELED, self.clock())
            self._emit(order, "canceled", actor=actor)
            return

        async def cancel() -> None:
            try:
                await self._send_cancel(order, actor)
            except BrokerError as exc:
                _log.warning("could not cancel %s: %s", order.id, exc.message)

        self._spawn(cancel())

    # --- day roll and DAY-order expiry ----------------------------------------------------------

    async def _maintain(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                self.maintain()
            except Exception:
                _log.exception("broker maintenance failed")

    def maintain(self) -> None:
        """Roll the trading day and expire DAY orders once the session has closed."""
        self._system_actor = Actor.system("broker:day-roll")
        try:
            self._maintain_now()
        finally:
            self._system_actor = None

    def _maintain_now(self) -> None:
        now = self.clock()
        self._roll_day(now)
        self._record_equity(now)
        if self.calendar.is_open(now):
            return
        for order in list(self._orders.values()):
            if (
                order.time_in_force == TimeInForce.DAY
                and order.is_working
                and order.status != OrderStatus.PENDING_CANCEL
                and order.venue_order_id is not None
                and order.id not in self._expiring
                and order.submitted_at is not None
                and self._session_closed_since(order.submitted_at, now)
            ):
                self._expiring.add(order.id)
                self._cancel_quietly(order)

    def _record_equity(self, now: int) -> None:
        if now - self._equity_at < EQUITY_INTERVAL_NS:
            return
        self._equity_at = now
        for acct in self.accounts.values():
            if acct.cash == 0 and not any(p.qty for p in acct.positions.values()):
                continue
            equity, _, _ = self.valuation(acct)
            previous = self._last_equity.get(acct.id, equity)
            self._last_equity[acct.id] = equity
            self.store.insert(
                t.equity_history,
                {
                    "account_id": acct.id,
                    "ts": now,
                    "equity": equity,
                    "profit_loss": equity - previous,
                },
            )

    def _session_closed_since(self, submitted_at: int, now: int) -> bool:
        session = self.calendar.session(self.calendar.trading_day(submitted_at))
        return session is not None and session[1] <= now

    def _roll_day(self, now: int) -> None:
        day = self._day_number(now)
        if day == self._day:
            return
        first = self._day == 0
        self._day = day
        for symbol, price in self.last_price.items():
            self.prior_close[symbol] = price
        for acct in self.accounts.values():
            if not (first and not self.prior_close):
                for pos in acct.positions.values():
                    close = self.prior_close.get(pos.symbol)
                    if pos.day != day and close is not None:
                        pos.roll_day(day, close)
                        self._save_position(acct, pos, now)
            self._open_day(acct, day)

    def _open_day(self, acct: AccountState, day: int) -> None:
        """Store the account's equity as the new day begins: the previous session's close.

        Kept if stored before a restart; not taken on the account's first day, whose start is
        its deposits (``last_equity``)."""
        if acct.last_equity_day >= day or self._day_number(acct.created_at) == day:
            return
        equity, _, _ = self.valuation(acct)
        acct.last_equity, acct.last_equity_day = equity, day
        self.store.upsert(t.opening_equity, {"account_id": acct.id, "day": day, "equity": equity})

    def last_equity(self, acct: AccountState) -> int:
        """Alpaca's ``last_equity``: the equity at the previous session's close (on the
        account's first day, what it started the day with: its deposits)."""
        return acct.net_transfers if acct.last_equity is None else acct.last_equity

    # --- bookkeeping ------------------------------------------------------------------------------

    def _acting(self) -> Actor:
        """Who acts when no request does: the venue while its events are applied (request id
        ``venue-seq:<n>``, the event's sequence number), a named broker component while it
        runs (recovery, the day roll), else the order management system itself."""
        if self._event_seq:
            cached = self._venue_actor
            if cached is None or cached[0] != self._event_seq:
                actor = Actor.system(
                    f"venue:{self.venue.name}", request_id=f"venue-seq:{self._event_seq}"
                )
                cached = self._venue_actor = (self._event_seq, actor)
            return cached[1]
        if self._system_actor is not None:
            return self._system_actor
        return Actor.system("broker:oms")

    def _index(self, order: BrokerOrder) -> None:
        self._orders[order.id] = order
        self._by_client_id[(order.account_id, order.client_order_id)] = order.id
        if order.venue_order_id is not None:
            self._by_venue_id[order.venue_order_id] = order.id
        if order.is_open:
            self._open_by_account.setdefault(order.account_id, {})[order.id] = order

    def _touch(self, order: BrokerOrder, ts: int) -> None:
        order.updated_at = ts
        self.store.update(t.orders, order.row())

    def _release(self, order: BrokerOrder) -> None:
        acct = self.accounts.get(order.account_id)
        if acct is not None:
            acct.held -= order.hold
        order.hold = 0

    def _rehold(self, order: BrokerOrder, leaves_before: int) -> None:
        """Shrink the hold in proportion to what is left to fill (rounded up)."""
        remaining = max(order.qty - order.filled_qty, 0)
        if order.hold == 0 or leaves_before <= 0:
            return
        new_hold = -(-order.hold * remaining // leaves_before)
        acct = self.accounts.get(order.account_id)
        if acct is not None:
            acct.held += new_hold - order.hold
        order.hold = new_hold

    def _close(self, order: BrokerOrder, status: OrderStatus, ts: int) -> None:
        order.status = status
        if status == OrderStatus.CANCELED:
            order.canceled_at = ts
        elif status == OrderStatus.EXPIRED:
            order.expired_at = ts
        elif status == OrderStatus.REJECTED:
            order.failed_at = ts
        self._release(order)
        if status != OrderStatus.REPLACED:  # a replacement keeps the venue's order
            self.trails.stop(order.venue_order_id)
        self._touch(order, ts)
        opened = self._open_by_account.get(order.account_id)
        if opened is not None:
            opened.pop(order.id, None)
        self._closed[order.id] = None
        if len(self._closed) > CLOSED_CACHE:
            old_id = next(iter(self._closed))
            del self._closed[old_id]
            old = self._orders.pop(old_id, None)
            if old is not None:
                self._by_client_id.pop((old.account_id, old.client_order_id), None)
                # only its own entry: after a new venue epoch the id may name a newer order
                if self._by_venue_id.get(old.venue_order_id or 0) == old.id:
                    del self._by_venue_id[old.venue_order_id or 0]

    def _reject(self, order: BrokerOrder, code: int, text: str, ts: int | None = None) -> None:
        ts = self.clock() if ts is None else ts
        order.reject_code = code
        order.reject_reason = text
        self._close(order, OrderStatus.REJECTED, ts)
        self._emit(order, "rejected", ts)
        for leg in self.legs_of(order):
            if leg.status == OrderStatus.HELD or (
                leg.status == OrderStatus.PENDING_NEW and leg.venue_order_id is None
            ):
                self._close(leg, OrderStatus.CANCELED, ts)
                self._emit(leg, "canceled", ts)
        if order.leg_role:
            sibling = self._sibling(order)
            if sibling is not None:
                self._cancel_quietly(sibling)

    def _restore(self, order: BrokerOrder, ts: int | None = None) -> None:
        prior = self._prior_status.pop(order.id, None)
        order.status = prior or (
            OrderStatus.PARTIALLY_FILLED if order.filled_qty else OrderStatus.NEW
        )
        self._touch(order, self.clock() if ts is None else ts)

    def _emit(
        self,
        order: BrokerOrder,
        event: str,
        ts: int | None = None,
        *,
        price: int | None = None,
        qty: int | None = None,
        position_qty: int | None = None,
        execution_id: str | None = None,
        actor: Actor | None = None,
    ) -> None:
        """Record the event in the order's history (by ``actor``, else `_acting`), then tell
        the trade-update listeners (not while replaying)."""
        when = self.clock() if ts is None else ts
        detail: dict[str, Any] = {"status": str(order.status)}
        if execution_id is not None:
            detail.update(qty=qty, price=price, execution_id=execution_id)
        elif order.status == OrderStatus.REJECTED:
            detail.update(code=order.reject_code, reason=order.reject_reason)
        elif order.replaced_by is not None:
            detail["replaced_by"] = order.replaced_by
        self.records.order_event(
            order.id,
            order.account_id,
            _HISTORY_KINDS.get(event, event),
            actor if actor is not None else self._acting(),
            when,
            detail,
        )
        if self._replaying or not self._listeners:
            return
        account_id = order.account_id
        targets = [fn for fn, wants in self._listeners if wants is None or wants(account_id)]
        if not targets:
            return
        update = TradeUpdate(
            account_id=order.account_id,
            event=event,
            order=dataclasses.replace(order),
            timestamp=when,
            price=price,
            qty=qty,
            position_qty=position_qty,
            execution_id=execution_id,
        )
        for listener in targets:
            try:
                listener(update)
            except Exception:
                _log.exception("trade update listener failed")
