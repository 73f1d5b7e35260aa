"""Read-side SQL for the broker's API: order history, activities, equity history, watchlists, and
the records of who did what (``order_events``, ``admin_actions``).

Every function takes the async engine and returns plain rows; callers flush the write-behind
queue first when they must see their own writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, and_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tradingfloor.storage import tables as t

__all__ = [
    "activities",
    "admin_action_rows",
    "equity_points",
    "order_event_rows",
    "order_history_rows",
    "order_rows",
    "orders_by_parent",
    "watchlist_rows",
]


async def order_rows(
    engine: AsyncEngine,
    account_id: str,
    *,
    statuses: Sequence[str] | None,
    after: int | None,
    until: int | None,
    symbols: Sequence[str] | None,
    limit: int,
    ascending: bool,
    top_level_only: bool,
) -> list[Row[Any]]:
    cond = [t.orders.c.account_id == account_id]
    if statuses is not None:
        cond.append(t.orders.c.status.in_(list(statuses)))
    if after is not None:
        cond.append(t.orders.c.created_at > after)
    if until is not None:
        cond.append(t.orders.c.created_at < until)
    if symbols:
        cond.append(t.orders.c.symbol.in_(list(symbols)))
    if top_level_only:
        cond.append(t.orders.c.parent_id.is_(None))
    order = t.orders.c.created_at.asc() if ascending else t.orders.c.created_at.desc()
    async with engine.connect() as conn:
        result = await conn.execute(
            select(t.orders).where(and_(*cond)).order_by(order).limit(limit)
        )
        return list(result)


async def orders_by_parent(engine: AsyncEngine, parent_ids: Sequence[str]) -> list[Row[Any]]:
    if not parent_ids:
        return []
    async with engine.connect() as conn:
        stmt = select(t.orders).where(t.orders.c.parent_id.in_(list(parent_ids)))
        return list(await conn.execute(stmt.order_by(t.orders.c.created_at)))


async def activities(
    engine: AsyncEngine,
    account_id: str,
    *,
    kinds: Sequence[str] | None,
    after: int | None,
    until: int | None,
    limit: int,
    ascending: bool,
) -> list[tuple[str, Row[Any]]]:
    """Fills ("FILL") and cash movements ("CSD", "CSW") of an account, newest first by default."""
    want_fills = kinds is None or "FILL" in kinds
    cash_kinds = [
        k
        for k, code in (("deposit", "CSD"), ("withdrawal", "CSW"))
        if kinds is None or code in kinds
    ]
    out: list[tuple[int, str, str, Row[Any]]] = []
    async with engine.connect() as conn:
        if want_fills:
            cond = [t.fills.c.account_id == account_id]
            if after is not None:
                cond.append(t.fills.c.ts > after)
            if until is not None:
                cond.append(t.fills.c.ts < until)
            order = t.fills.c.ts.asc() if ascending else t.fills.c.ts.desc()
            stmt = (
                select(
                    t.fills,
                    t.orders.c.qty.label("order_qty"),
                    t.orders.c.status.label("order_status"),
                    t.orders.c.filled_qty.label("order_filled_qty"),
                )
                .join(t.orders, t.orders.c.id == t.fills.c.order_id)
                .where(and_(*cond))
                .order_by(order)
                .limit(limit)
            )
            for row in await conn.execute(stmt):
                out.append((row.ts, row.id, "FILL", row))
        if cash_kinds:
            cond = [t.ledger.c.account_id == account_id, t.ledger.c.kind.in_(cash_kinds)]
            if after is not None:
                cond.append(t.ledger.c.created_at > after)
            if until is not None:
                cond.append(t.ledger.c.created_at < until)
            order = t.ledger.c.created_at.asc() if ascending else t.ledger.c.created_at.desc()
            stmt = select(t.ledger).where(and_(*cond)).order_by(order).limit(limit)
            for row in await conn.execute(stmt):
                code = "CSD" if row.kind == "deposit" else "CSW"
                out.append((row.created_at, row.id, code, row))
    out.sort(key=lambda item: (item[0], item[1]), reverse=not ascending)
    return [(code, row) for _, _, code, row in out[:limit]]


async def equity_points(engine: AsyncEngine, account_id: str, *, since: int) -> list[Row[Any]]:
    async with engine.connect() as conn:
        stmt = (
            select(t.equity_history)
            .where(t.equity_history.c.account_id == account_id, t.equity_history.c.ts >= since)
            .order_by(t.equity_history.c.ts)
        )
        return list(await conn.execute(stmt))


async def watchlist_rows(
    engine: AsyncEngine, account_id: str, watchlist_id: str | None = None
) -> list[tuple[Row[Any], list[str]]]:
    async with engine.connect() as conn:
        cond = [t.watchlists.c.account_id == account_id]
        if watchlist_id is not None:
            cond.append(t.watchlists.c.id == watchlist_id)
        lists = list(
            await conn.execute(
                select(t.watchlists).where(and_(*cond)).order_by(t.watchlists.c.created_at)
            )
        )
        if not lists:
            return []
        assets = await conn.execute(
            select(t.watchlist_assets)
            .where(t.watchlist_assets.c.watchlist_id.in_([w.id for w in lists]))
            .order_by(t.watchlist_assets.c.position)
        )
        by_list: dict[str, list[str]] = {}
        for a in assets:
            by_list.setdefault(a.watchlist_id, []).append(a.symbol)
        return [(w, by_list.get(w.id, [])) for w in lists]


async def order_history_rows(engine: AsyncEngine, order_id: str) -> list[Row[Any]]:
    """The order's history, in the order the broker recorded it."""
    e = t.order_events
    async with engine.connect() as conn:
        stmt = select(e).where(e.c.order_id == order_id).order_by(e.c.seq, e.c.ts)
        return list(await conn.execute(stmt))


def _record_filters(
    table: Any, actor: str | None, kind: str | None, after: int | None, until: int | None
) -> list[Any]:
    cond: list[Any] = []
    if actor is not None:
        cond.append(table.c.actor_principal == actor)
    if kind is not None:
        cond.append(table.c.kind == kind)
    if after is not None:
        cond.append(table.c.ts >= after)
    if until is not None:
        cond.append(table.c.ts < until)
    return cond


async def admin_action_rows(
    engine: AsyncEngine,
    *,
    actor: str | None,
    kind: str | None,
    after: int | None,
    until: int | None,
    limit: int,
) -> list[Row[Any]]:
    """Administrative records, newest first: by principal, kind and time (``after`` <= ts <
    ``until``, nanoseconds)."""
    a = t.admin_actions
    cond = _record_filters(a, actor, kind, after, until)
    async with engine.connect() as conn:
        stmt = select(a).where(and_(True, *cond)).order_by(a.c.ts.desc(), a.c.seq.desc())
        return list(await conn.execute(stmt.limit(limit)))


async def order_event_rows(
    engine: AsyncEngine,
    *,
    actor: str | None,
    kind: str | None,
    after: int | None,
    until: int | None,
    limit: int,
) -> list[Row[Any]]:
    """Order events of every order, newest first, filtered as `admin_action_rows`."""
    e = t.order_events
    cond = _record_filters(e, actor, kind, after, until)
    async with engine.connect() as conn:
        stmt = select(e).where(and_(True, *cond)).order_by(e.c.ts.desc(), e.c.seq.desc())
        return list(await conn.execute(stmt.limit(limit)))
