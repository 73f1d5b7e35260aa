"""The broker wired to a venue: database, identity, order management and the HTTP app, with the
start-up order that makes recovery work.

``BrokerRuntime.open`` must run before the venue replays its journal (so the broker sees the
events its database has not), ``after_replay`` right after it, ``start`` once the venue runs.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from tradingfloor.broker.api.app import create_broker_app
from tradingfloor.broker.calendar import MarketCalendar
from tradingfloor.broker.identity.apikeys import DEFAULT_KEY_RATE_LIMIT_PER_MINUTE
from tradingfloor.broker.identity.roles import Role
from tradingfloor.broker.identity.service import IdentityService
from tradingfloor.broker.market.history import MarketHistory
from tradingfloor.broker.risk.pretrade import RiskLimits
from tradingfloor.broker.service import Broker, Quotes
from tradingfloor.broker.venue_adapter import InProcessVenue
from tradingfloor.core.actor import Actor
from tradingfloor.exchange.marketdata.views import MarketDataBook, MarketDataError
from tradingfloor.exchange.operator import VenueOperator
from tradingfloor.exchange.venue import Venue
from tradingfloor.storage.db import open_database
from tradingfloor.storage.writer import WriteBehind

__all__ = ["BROKER_MEMBER", "BrokerRuntime", "book_quotes", "load_or_create_secret"]

BROKER_MEMBER: Final = "TFBROKER"  # not a FIX comp id: no FIX reports are stored or sent
SECRET_BYTES: Final = 32


def book_quotes(book: MarketDataBook) -> Quotes:
    """Best bid and ask from a market-data book, for the broker's market-order valuation."""

    def quotes(symbol: str) -> tuple[int | None, int | None]:
        try:
            l1 = book.l1(symbol)
        except MarketDataError:  # not listed: no quotes
            return None, None
        return l1.bid or None, l1.ask or None

    return quotes


def load_or_create_secret(path: Path) -> bytes:
    """The JWT signing key: random on first use, then read back (owner-only file)."""
    if path.exists():
        secret = bytes.fromhex(path.read_text().strip())
        if len(secret) >= SECRET_BYTES:
            return secret
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(SECRET_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret.hex())
    return secret


@dataclass(slots=True)
class BrokerRuntime:
    broker: Broker
    identity: IdentityService
    store: WriteBehind
    engine: AsyncEngine
    app: FastAPI
    history: MarketHistory

    @classmethod
    async def open(
        cls,
        venue: Venue,
        *,
        db_url: str,
        secret: bytes,
        member: str = BROKER_MEMBER,
        venue_name: str = "TFEX",
        quotes: Quotes | None = None,
        calendar: MarketCalendar | None = None,
        limits: RiskLimits | None = None,
        clock: Callable[[], int] = time.time_ns,
        hasher: PasswordHasher | None = None,
        api_rate_limit: int = DEFAULT_KEY_RATE_LIMIT_PER_MINUTE,
        operator: VenueOperator | None = None,
        marketdata: Any = None,
    ) -> BrokerRuntime:
        """``operator`` and ``marketdata``: see ``create_broker_app``."""
        engine = await open_database(db_url)
        store = WriteBehind(engine)
        broker = Broker(
            store,
            InProcessVenue(venue, member=member, name=venue_name),
            calendar=calendar,
            limits=limits,
            quotes=quotes,
            clock=clock,
        )
        identity = IdentityService(
            store,
            secret=secret,
            account_for_customer=broker.primary_account,
            equity_for_customer=broker.customer_equity,
            clock=clock,
            hasher=hasher,
            key_rate_limit_per_minute=api_rate_limit,
            records=broker.records,
        )
        history = MarketHistory()
        venue.add_listener(lambda _command, events: history.on_events(events), state=history)
        await broker.load()
        await identity.load()
        app = create_broker_app(broker, identity, history, operator=operator, marketdata=marketdata)
        return cls(broker, identity, store, engine, app, history)

    async def ensure_admin(self, password: str | None) -> str | None:
        """Create the ``admin`` user if there is no admin yet; return a generated password."""
        if any(user["role"] == Role.ADMIN for user in self.identity.list_users()):
            return None
        chosen = password or f"{secrets.token_urlsafe(12)}-A1"
        await self.identity.create_user(
            "admin", chosen, Role.ADMIN, None, actor=None, by=Actor.system("serve:first-admin")
        )
        return None if password else chosen

    @property
    def asgi(self) -> Any:
        """What to serve: the app behind its order-entry front (api/order_entry.py)."""
        return self.app.state.asgi

    def after_replay(self) -> None:
        self.broker.finish_replay()

    async def start(self) -> None:
        await self.broker.start()

    async def stop(self) -> None:
        stream = getattr(self.app.state, "market_stream", None)
        if stream is not None:
            stream.close()
        await self.broker.stop()
        await self.engine.dispose()
