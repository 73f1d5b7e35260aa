"""Test helpers: a real venue (journal in a tmp dir) with the broker attached on SQLite or
PostgreSQL, in the same order ``serve`` starts them, plus shortcuts to create funded accounts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from tradingfloor.broker.calendar import MarketCalendar
from tradingfloor.broker.identity.passwords import make_hasher
from tradingfloor.broker.identity.roles import Role
from tradingfloor.broker.oms.requests import OrderRequest
from tradingfloor.broker.risk.pretrade import RiskLimits
from tradingfloor.broker.runtime import BROKER_MEMBER, BrokerRuntime, book_quotes
from tradingfloor.broker.service import Broker
from tradingfloor.exchange.engine.commands import AddInstrument, NewOrder
from tradingfloor.exchange.engine.events import Event
from tradingfloor.exchange.engine.types import Side
from tradingfloor.exchange.marketdata.views import MarketDataBook
from tradingfloor.exchange.operator import VenueOperator, VenueStatus
from tradingfloor.exchange.venue import Venue
from tradingfloor.storage import tables as t

SYMBOLS = ("AAPL", "MSFT")
SECRET = b"s" * 32
PASSWORD = "correct-horse-42"


class FakeClock:
    """Nanoseconds that only move when told to (and never backwards)."""

    def __init__(self, start: int = 1_764_000_000_000_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1_000_000_000)


@dataclass
class Stack:
    venue: Venue
    runtime: BrokerRuntime
    book: MarketDataBook
    data_dir: Path
    counter: list[int] = field(default_factory=lambda: [0])

    @property
    def broker(self) -> Broker:
        return self.runtime.broker

    @property
    def app(self) -> Any:
        return self.runtime.app

    async def funded_account(
        self,
        cash_minor: int = 10_000_000,
        *,
        account_type: str = "cash",
        kyc: str = "approved",
    ) -> str:
        broker = self.broker
        self.counter[0] += 1
        cid = await broker.create_customer(f"Customer {self.counter[0]}", "c@example.com")
        acct = await broker.open_account(cid, account_type)
        if kyc != "pending":
            await broker.set_kyc(cid, kyc)
        if cash_minor:
            await broker.transfer(acct.id, cash_minor)
        return acct.id

    async def user(
        self, role: Role = Role.TRADER, *, account_id: str | None = None, name: str | None = None
    ) -> tuple[str, dict[str, str]]:
        """A user of ``role`` (owning ``account_id``'s customer) and an auth header for it."""
        self.counter[0] += 1
        username = name or f"{role.value}{self.counter[0]}"
        customer = self.broker.accounts[account_id].customer_id if account_id else None
        identity = self.runtime.identity
        await identity.create_user(username, PASSWORD, role, customer, actor=None)
        pair = await identity.login(
            username, PASSWORD, totp_code=None, client_address=f"192.0.2.{self.counter[0] % 250}"
        )
        return username, {"Authorization": f"Bearer {pair.access_token}"}

    async def api_key(self, role: Role = Role.TRADER, *, account_id: str) -> tuple[str, str]:
        username, _ = await self.user(role, account_id=account_id)
        identity = self.runtime.identity
        user = next(u for u in identity.list_users() if u["username"] == username)
        return await identity.create_api_key(user["id"])

    async def counterparty(
        self, symbol: str, side: Side, price: int, qty: int, member: str = "MM"
    ) -> list[Event]:
        """Another member's order straight into the venue (a market maker)."""
        self.counter[0] += 1
        return await self.venue.submit(
            NewOrder(
                symbol=symbol,
                member=member,
                cl_ord_id=f"mm-{self.counter[0]}",
                side=side,
                qty=qty,
                price=price,
            )
        )

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.runtime.asgi), base_url="http://broker"
        )


@contextlib.asynccontextmanager
async def broker_stack(
    data_dir: Path,
    *,
    db_url: str | None = None,
    symbols: Sequence[str] = SYMBOLS,
    clock: Callable[[], int] | None = None,
    calendar: MarketCalendar | None = None,
    limits: RiskLimits | None = None,
) -> AsyncIterator[Stack]:
    """Open (or reopen, recovering) venue + broker in ``data_dir``; stop both on exit."""
    kwargs: dict[str, Any] = {}
    if clock is not None:
        kwargs["clock"] = clock
    venue = Venue.open(data_dir / "venue", **kwargs)
    book = MarketDataBook()

    def on_events(_command: object, events: Sequence[Event]) -> None:
        for event in events:
            book.apply(event)

    venue.add_listener(on_events)
    status = VenueStatus([BROKER_MEMBER])
    venue.add_listener(status.on_events)

    runtime = await BrokerRuntime.open(
        venue,
        db_url=db_url or f"sqlite+aiosqlite:///{data_dir / 'broker.db'}",
        secret=SECRET,
        quotes=book_quotes(book),
        calendar=calendar,
        limits=limits,
        hasher=make_hasher(time_cost=1, memory_cost_kib=8, parallelism=1),
        operator=VenueOperator(venue, status),
        **kwargs,
    )
    # as serve does: a projection checkpoint must lie at or below the broker's mark
    venue.replay_history(horizon_event_seq=runtime.broker.venue_mark().seq)
    runtime.after_replay()
    missing = venue.missing_instruments(AddInstrument(symbol=s) for s in symbols)
    await venue.start(tick_interval=None)
    for command in missing:
        await venue.submit(command)
    await runtime.start()
    stack = Stack(venue, runtime, book, data_dir)
    try:
        yield stack
    finally:
        await runtime.stop()
        await venue.stop()


__all__ = ["BROKER_MEMBER", "PASSWORD", "FakeClock", "Stack", "broker_stack"]


async def settle() -> None:
    """Let the venue's and the broker's pending callbacks run."""
    for _ in range(5):
        await asyncio.sleep(0.01)


async def history(broker: Broker, order_id: str) -> list[Any]:
    """The order's history rows, in recording order."""
    await broker.store.flush()
    e = t.order_events
    async with broker.store.engine.connect() as conn:
        rows = await conn.execute(select(e).where(e.c.order_id == order_id).order_by(e.c.seq))
        return list(rows)


def trailing_stops() -> list[OrderRequest]:
    """One share of AAPL, GTC, each way: a buy and a sell trailing by 3.50 and by 2.75%."""
    return [
        OrderRequest(
            symbol="AAPL",
            side=side,
            qty=1,
            order_type="trailing_stop",
            time_in_force="gtc",
            **trail,  # type: ignore[arg-type]
        )
        for side in ("buy", "sell")
        for trail in ({"trail_price": 350}, {"trail_percent_bps": 275})
    ]
