"""Order entry, the API's hot path: ``POST /v2/orders`` as one function, and an ASGI front that
serves it without FastAPI's routing and dependency machinery.

``place_order`` is the whole request: instrument lookup, units, the broker's checks and routing.
The FastAPI route (which documents the endpoint in OpenAPI) and ``OrderEntryFront`` both call
it, so they answer alike. The front handles only ``POST /v2/orders`` and passes every other
request to the app; it parses the body with the same pydantic model and formats errors as the
app's handlers do (``api/errors.py``). It exists because the framework's per-request work cost
more than the order itself (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from tradingfloor.broker.api.alpaca_json import order_json
from tradingfloor.broker.api.auth import (
    Authenticator,
    Principal,
    account_of,
    authenticate,
    check_permission,
)
from tradingfloor.broker.api.context import remember
from tradingfloor.broker.api.errors import describe_problems, retry_after
from tradingfloor.broker.api.schemas import OrderIn, to_order_request
from tradingfloor.broker.errors import BrokerError, ErrorCode
from tradingfloor.broker.identity.roles import Permission
from tradingfloor.broker.oms.orders import BrokerOrder
from tradingfloor.broker.service import Broker
from tradingfloor.core.actor import Actor
from tradingfloor.storage import queries

__all__ = ["MAX_ORDER_BODY", "OrderEntryFront", "current_order", "order_out", "place_order"]

MAX_ORDER_BODY: Final = 16_384  # bytes; an order is a few hundred
_JSON: Final = [(b"content-type", b"application/json")]
_encode = msgspec.json.Encoder().encode


def current_order(broker: Broker, order: BrokerOrder) -> BrokerOrder:
    """The live copy of an order read from the database, if the broker holds one."""
    cached = broker.cached_order(order.id)
    return cached if cached is not None else order


async def order_out(broker: Broker, order: BrokerOrder, nested: bool = True) -> dict[str, Any]:
    """The order's JSON, with its legs (from memory while open, else from the database)."""
    body = order_json(broker, order, nested=nested)
    if nested and body["legs"] is None and order.order_class != "simple" and not order.parent_id:
        rows = await queries.orders_by_parent(broker.store.engine, [order.id])
        if rows:
            body["legs"] = [
                order_json(broker, current_order(broker, BrokerOrder.from_row(r)), nested=False)
                for r in rows
            ]
    return body


async def place_order(
    broker: Broker, who: Principal, body: OrderIn, actor: Actor
) -> dict[str, Any]:
    inst = broker.instruments.get(body.symbol.strip().upper())  # as the data API reads it
    if inst is None:
        raise BrokerError(ErrorCode.ASSET_NOT_FOUND, f"asset not found: {body.symbol}")
    order = await broker.submit_order(account_of(who), to_order_request(body, inst), actor=actor)
    return await order_out(broker, order)


class OrderEntryFront:
    """ASGI: ``POST /v2/orders`` straight to ``place_order``; anything else to ``app``."""

    def __init__(
        self, app: ASGIApp, broker: Broker, auth: Authenticator, clock: Callable[[], int]
    ) -> None:
        self.app = app
        self.broker = broker
        self.auth = auth
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/v2/orders":
            await self.app(scope, receive, send)
            return
        status, headers, payload = await self._handle(scope, receive)
        headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, list[Any], bytes]:
        try:
            headers = Headers(scope=scope)  # case-insensitive, as HTTP header names are
            chunks: list[bytes] = []
            size = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return 400, list(_JSON), b""
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > MAX_ORDER_BODY:
                    raise BrokerError(ErrorCode.BAD_REQUEST, "request body too large", status=413)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            who = await authenticate(self.auth, headers, self.clock())
            actor = remember(scope, who)  # the request's Actor, as the app's dependency makes it
            check_permission(who, Permission.TRADE)
            try:
                body = OrderIn.model_validate_json(b"".join(chunks))
            except ValidationError as exc:
                problems = describe_problems(exc.errors()) or "invalid request"
                raise BrokerError(ErrorCode.INVALID, problems) from None
            return 200, list(_JSON), _encode(await place_order(self.broker, who, body, actor))
        except BrokerError as exc:
            out = list(_JSON)
            wait = retry_after(exc)
            if wait is not None:
                out.append((b"retry-after", wait.encode()))
            return exc.status, out, _encode({"code": exc.code, "message": exc.message})
