"""The records of who did what, for admins (VIEW_AUDIT): ``/api/admin/actions``,
``/api/admin/order-events`` and ``/api/admin/orders/{order_id}/history``.

Each entry carries its actor as stored (``core.actor.Actor``): principal, role, credential kind
and id, source address and port, request id. Lists are newest first and filtered by principal
(``actor``), ``kind`` and time (``from`` inclusive, ``to`` exclusive, RFC 3339; a time without
a zone is UTC; outside 1970 to 2262 is 422); an order's history is in the order the broker
recorded it. What the writer has queued is committed before a query, so a record is visible as
soon as its request is answered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any, Final

import msgspec
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel
from sqlalchemy import Row, select

from tradingfloor.broker.api.alpaca_json import iso
from tradingfloor.broker.api.auth import Principal, require
from tradingfloor.broker.errors import BrokerError, ErrorCode
from tradingfloor.broker.identity.roles import Permission
from tradingfloor.core.actor import Actor
from tradingfloor.storage import queries
from tradingfloor.storage import tables as t
from tradingfloor.storage.writer import WriteBehind

__all__ = ["MAX_RECORDS_PAGE", "admin_records_router"]

#: The most entries one list request returns.
MAX_RECORDS_PAGE: Final = 1_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_NS: Final = 2**63 - 1
_decode = msgspec.json.Decoder().decode

PrincipalDep = Callable[[Request], Awaitable[Principal]]
ActorQuery = Annotated[
    str | None, Query(min_length=1, max_length=64, description="a user id, or `system`")
]
KindQuery = Annotated[str | None, Query(min_length=1, max_length=32)]
FromQuery = Annotated[datetime | None, Query(alias="from", description="RFC 3339, inclusive")]
ToQuery = Annotated[datetime | None, Query(alias="to", description="RFC 3339, exclusive")]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_RECORDS_PAGE)]


class ActorOut(BaseModel):
    principal: str
    role: str
    credential_kind: str
    credential_id: str
    address: str
    port: int
    request_id: str


class RecordOut(BaseModel):
    id: str
    seq: int
    timestamp: str
    kind: str
    detail: dict[str, Any]
    actor: ActorOut


class AdminActionOut(RecordOut):
    target: str


class OrderEventOut(RecordOut):
    order_id: str
    account_id: str


def _ns(moment: datetime | None) -> int | None:
    """A datetime as integer nanoseconds since the epoch (exact, no float); INVALID outside
    the range stored times have (1970 to 2262: a signed 64-bit count of nanoseconds)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    ns = ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1_000
    if not 0 <= ns <= _MAX_NS:
        raise BrokerError(ErrorCode.INVALID, "times must lie between 1970 and 2262")
    return ns


def _actor_out(row: Row[Any]) -> ActorOut:
    actor = Actor.from_row(row._mapping)
    return ActorOut(
        principal=actor.principal,
        role=actor.role,
        credential_kind=actor.credential_kind.value,
        credential_id=actor.credential_id,
        address=actor.address,
        port=actor.port,
        request_id=actor.request_id,
    )


def _common(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "seq": row.seq,
        "timestamp": iso(row.ts) or "",
        "kind": row.kind,
        "detail": _decode(row.detail),
        "actor": _actor_out(row),
    }


def _event_out(row: Row[Any]) -> OrderEventOut:
    return OrderEventOut(**_common(row), order_id=row.order_id, account_id=row.account_id)


def admin_records_router(store: WriteBehind, principal: PrincipalDep) -> APIRouter:
    router = APIRouter(prefix="/api/admin")
    auditor = Depends(require(principal, Permission.VIEW_AUDIT))
    tag: list[str | Enum] = ["native: records of who did what"]

    def window(start: datetime | None, end: datetime | None) -> tuple[int | None, int | None]:
        after, until = _ns(start), _ns(end)
        if after is not None and until is not None and until <= after:
            raise BrokerError(ErrorCode.INVALID, "`to` must be later than `from`")
        return after, until

    @router.get(
        "/actions",
        tags=tag,
        summary="Administrative records (operator actions, cash, KYC, users, API keys)",
    )
    async def actions(
        actor: ActorQuery = None,
        kind: KindQuery = None,
        start: FromQuery = None,
        end: ToQuery = None,
        limit: LimitQuery = 100,
        _who: Principal = auditor,
    ) -> list[AdminActionOut]:
        after, until = window(start, end)
        await store.flush()
        rows = await queries.admin_action_rows(
            store.engine, actor=actor, kind=kind, after=after, until=until, limit=limit
        )
        return [AdminActionOut(**_common(r), target=r.target) for r in rows]

    @router.get("/order-events", tags=tag, summary="Order events of every order, by actor")
    async def order_events(
        actor: ActorQuery = None,
        kind: KindQuery = None,
        start: FromQuery = None,
        end: ToQuery = None,
        limit: LimitQuery = 100,
        _who: Principal = auditor,
    ) -> list[OrderEventOut]:
        after, until = window(start, end)
        await store.flush()
        rows = await queries.order_event_rows(
            store.engine, actor=actor, kind=kind, after=after, until=until, limit=limit
        )
        return [_event_out(r) for r in rows]

    @router.get(
        "/orders/{order_id}/history", tags=tag, summary="An order's history, with each actor"
    )
    async def order_history(
        order_id: Annotated[str, Path(min_length=1, max_length=36)],
        _who: Principal = auditor,
    ) -> list[OrderEventOut]:
        await store.flush()
        async with store.engine.connect() as conn:
            found = (
                await conn.execute(select(t.orders.c.id).where(t.orders.c.id == order_id))
            ).first()
        if found is None:
            raise BrokerError(ErrorCode.ORDER_NOT_FOUND, "order not found")
        return [_event_out(r) for r in await queries.order_history_rows(store.engine, order_id)]

    return router
