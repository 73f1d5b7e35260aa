"""The broker's HTTP application: Alpaca-compatible trading and market-data API, native API,
the trade_updates and market-data streams (``/stream``, ``/v2/{feed}``), OpenAPI at ``/docs``,
the web terminal at ``/``, and (when the exchange runs in the same process) the venue
operator's routes and the exchange's market data under ``/md`` for the terminal."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from tradingfloor.broker.api.admin_records import admin_records_router
from tradingfloor.broker.api.auth import principal_dependency, require
from tradingfloor.broker.api.context import RequestContext
from tradingfloor.broker.api.errors import ERROR_RESPONSES, install_error_handlers
from tradingfloor.broker.api.market_data import market_data_router
from tradingfloor.broker.api.market_stream import add_market_stream
from tradingfloor.broker.api.native import native_router
from tradingfloor.broker.api.order_entry import OrderEntryFront
from tradingfloor.broker.api.trade_stream import trade_stream_router
from tradingfloor.broker.api.trading import trading_router
from tradingfloor.broker.api.venue_admin import venue_admin_router
from tradingfloor.broker.api.web import add_web_terminal
from tradingfloor.broker.errors import BrokerError
from tradingfloor.broker.identity.roles import Permission
from tradingfloor.broker.identity.service import IdentityService
from tradingfloor.broker.market.history import MarketHistory
from tradingfloor.broker.service import Broker
from tradingfloor.exchange.operator import VenueOperator

__all__ = ["MARKETDATA_PREFIX", "create_broker_app"]

MARKETDATA_PREFIX = "/md"


def create_broker_app(
    broker: Broker,
    identity: IdentityService,
    history: MarketHistory | None = None,
    *,
    operator: VenueOperator | None = None,
    marketdata: Any = None,
) -> FastAPI:
    """The FastAPI app (``app.state.asgi`` is what to serve: the app behind the order-entry
    front of api/order_entry.py, behind the request context of api/context.py: request ids,
    the access log). ``operator`` adds ``/api/admin/venue/...``; ``marketdata``
    (the exchange's market-data ASGI app) is mounted at ``/md``, so that the web terminal
    reads depth, trades and bars from its own origin."""
    app = FastAPI(
        title="tradingfloor broker",
        description=(
            "Alpaca Trading API v2 compatible REST (`/v2/...`) and the `trade_updates` stream "
            "(`/stream`), plus native endpoints (`/api/...`) for users, customers, KYC and "
            "administration. Errors are JSON `{code, message}`; see docs/broker-api.md."
        ),
        version="1",
    )
    install_error_handlers(app)
    principal = principal_dependency(identity, clock=broker.clock)
    app.include_router(trading_router(broker, principal), responses=ERROR_RESPONSES)
    app.include_router(native_router(broker, identity, principal), responses=ERROR_RESPONSES)
    app.include_router(admin_records_router(broker.store, principal), responses=ERROR_RESPONSES)
    app.include_router(trade_stream_router(broker, identity, clock=broker.clock))
    if history is not None:
        viewer = require(principal, Permission.VIEW_ACCOUNT)
        app.include_router(market_data_router(history, auth=viewer), responses=ERROR_RESPONSES)

        async def check_key(key_id: str, secret: str) -> bool:
            try:
                who = await identity.principal_from_key(key_id, secret, broker.clock())
            except BrokerError:
                return False
            return who.can(Permission.VIEW_ACCOUNT)

        app.state.market_stream = add_market_stream(app, history, check_key)

    if operator is not None:
        app.include_router(
            venue_admin_router(operator, principal, broker.records, broker.clock),
            responses=ERROR_RESPONSES,
        )
    if marketdata is not None:
        app.mount(MARKETDATA_PREFIX, marketdata, name="marketdata")
    add_web_terminal(app)
    app.state.asgi = RequestContext(OrderEntryFront(app, broker, identity, broker.clock))

    @app.get("/health", summary="Liveness", tags=["operations"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
