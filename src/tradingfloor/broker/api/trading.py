"""The Alpaca Trading API v2 routes: account, orders, positions, assets, clock, calendar,
activities, portfolio history and watchlists, each guarded by its RBAC permission."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo

import msgspec
from fastapi import APIRouter, Depends, Query, Request, Response

from tradingfloor.broker.api import order_entry as entry
from tradingfloor.broker.api.alpaca_json import (
    account_json,
    asset_json,
    iso,
    money,
    order_json,
    position_json,
)
from tradingfloor.broker.api.auth import Principal, account_of, require
from tradingfloor.broker.api.context import actor_dependency
from tradingfloor.broker.api.schemas import (
    AccountConfigurationIn,
    OrderIn,
    ReplaceIn,
    WatchlistIn,
    WatchlistSymbolIn,
    to_replace_request,
)
from tradingfloor.broker.calendar import MarketCalendar
from tradingfloor.broker.errors import BrokerError, ErrorCode
from tradingfloor.broker.identity.roles import Permission
from tradingfloor.broker.instruments import Instrument
from tradingfloor.broker.oms.orders import CLOSED_STATUSES, BrokerOrder
from tradingfloor.broker.records import AdminAction
from tradingfloor.broker.service import Broker
from tradingfloor.core.actor import Actor
from tradingfloor.core.units import from_ticks
from tradingfloor.storage import queries
from tradingfloor.storage import tables as t

__all__ = ["MAX_ORDERS_PAGE", "trading_router"]

MAX_ORDERS_PAGE = 500
MAX_ACTIVITIES_PAGE = 100
MAX_WATCHLIST_SYMBOLS = 200
ACTIVITY_TYPES: Final = frozenset(
    [
        "FILL",
        "ACATC",
        "ACATS",
        "CFEE",
        "CIL",
        "CSD",
        "CSW",
        "DIV",
        "DIVCGL",
        "DIVCGS",
        "DIVNRA",
        "DIVROC",
        "DIVTXEX",
        "DIVWH",
        "EXTRD",
        "FEE",
        "FXTRD",
        "INT",
        "INTPNL",
        "JNLC",
        "JNLS",
        "MA",
        "MEM",
        "NC",
        "OCT",
        "OPASN",
        "OPCSH",
        "OPEXC",
        "OPEXP",
        "OPTRD",
        "PTC",
        "REORG",
        "SPIN",
        "SPLIT",
        "SWP",
        "VOF",
        "WH",
    ]
)
"""Alpaca's activity types. The broker records FILL, CSD and CSW; the others answer []."""
# times are int64 nanoseconds inside: these bound what a query may name
_EARLIEST: Final = datetime(1678, 1, 1, tzinfo=UTC)
_LATEST: Final = datetime(2261, 12, 31, tzinfo=UTC)
_NUMBERS: Final = msgspec.json.Encoder(decimal_format="number")

PrincipalDep = Callable[[Request], Awaitable[Principal]]


def _parse_time(name: str, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            stamp = datetime(day.year, day.month, day.day, tzinfo=UTC)
        else:
            stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=UTC)
    except ValueError:
        raise BrokerError(ErrorCode.INVALID, f"{name} is not an RFC 3339 time or date") from None
    if not _EARLIEST <= stamp <= _LATEST:
        raise BrokerError(ErrorCode.INVALID, f"{name} must be between 1678 and 2261")
    return int(stamp.timestamp()) * 1_000_000_000 + stamp.microsecond * 1_000


def _instrument(broker: Broker, symbol_or_id: str) -> Instrument:
    inst = broker.instruments.get(symbol_or_id.upper())
    if inst is not None:
        return inst
    for candidate in broker.instruments.values():
        if candidate.asset_id == symbol_or_id:
            return candidate
    raise BrokerError(ErrorCode.ASSET_NOT_FOUND, f"asset not found: {symbol_or_id}")


def trading_router(broker: Broker, principal: PrincipalDep) -> APIRouter:
    router = APIRouter(prefix="/v2", tags=["trading (Alpaca v2)"])
    viewer = Depends(require(principal, Permission.VIEW_ACCOUNT))
    trader = Depends(require(principal, Permission.TRADE))
    lists = Depends(require(principal, Permission.MANAGE_WATCHLISTS))
    acting = Depends(actor_dependency(principal))  # who, for the records of state changes

    def now() -> int:
        return broker.clock()

    async def order_out(order: BrokerOrder, nested: bool = True) -> dict[str, Any]:
        return await entry.order_out(broker, order, nested)

    def _current(order: BrokerOrder) -> BrokerOrder:
        return entry.current_order(broker, order)

    # --- account --------------------------------------------------------------------------

    @router.get("/account", summary="The caller's account")
    async def get_account(who: Principal = viewer) -> dict[str, Any]:
        return account_json(broker, broker.account(account_of(who)), now())

    @router.get("/account/configurations", summary="The account's configuration")
    async def get_configurations(who: Principal = viewer) -> dict[str, Any]:
        return broker.configuration(account_of(who)).as_json()

    @router.patch("/account/configurations", summary="Change the account's configuration")
    async def patch_configurations(
        body: AccountConfigurationIn, who: Principal = trader, actor: Actor = acting
    ) -> dict[str, Any]:
        config = await broker.configure(account_of(who), body.changes(), actor=actor)
        return config.as_json()

    # --- orders ---------------------------------------------------------------------------

    @router.post("/orders", summary="Place an order")
    async def post_order(
        body: OrderIn, who: Principal = trader, actor: Actor = acting
    ) -> dict[str, Any]:
        # served by api/order_entry.py's front in the broker app; the same function either way
        return await entry.place_order(broker, who, body, actor)

    @router.get("/orders", summary="List orders")
    async def list_orders(
        who: Principal = viewer,
        status: Literal["open", "closed", "all"] = "open",
        limit: Annotated[int, Query(ge=1, le=MAX_ORDERS_PAGE)] = 50,
        after: str | None = None,
        until: str | None = None,
        direction: Literal["asc", "desc"] = "desc",
        nested: bool = False,
        symbols: str | None = None,
    ) -> list[dict[str, Any]]:
        account_id = account_of(who)
        wanted = [s for s in (symbols or "").split(",") if s]
        after_ns, until_ns = _parse_time("after", after), _parse_time("until", until)
        if status == "open":
            found = [
                o
                for o in broker.open_orders(account_id)
                if (not wanted or o.symbol in wanted)
                and (after_ns is None or o.created_at > after_ns)
                and (until_ns is None or o.created_at < until_ns)
                and (not nested or o.parent_id is None)
            ]
            found.sort(key=lambda o: o.created_at, reverse=direction == "desc")
            return [await order_out(o, nested) for o in found[:limit]]
        await broker.store.flush()
        statuses = [s.value for s in CLOSED_STATUSES] if status == "closed" else None
        rows = await queries.order_rows(
            broker.store.engine,
            account_id,
            statuses=statuses,
            after=after_ns,
            until=until_ns,
            symbols=wanted or None,
            limit=limit,
            ascending=direction == "asc",
            top_level_only=nested,
        )
        return [await order_out(_current(BrokerOrder.from_row(r)), nested) for r in rows]

    @router.get("/orders:by_client_order_id", summary="An order by its client order id")
    async def order_by_client_id(client_order_id: str, who: Principal = viewer) -> dict[str, Any]:
        order = await broker.find_by_client_id(account_of(who), client_order_id)
        if order is None:
            raise BrokerError(ErrorCode.ORDER_NOT_FOUND, "order not found")
        return await order_out(_current(order))

    @router.get("/orders/{order_id}", summary="An order by id")
    async def get_order(order_id: str, who: Principal = viewer, nested: bool = True) -> Any:
        # one order: its legs come with it unless ?nested=false
        order = await broker.find_order(account_of(who), order_id)
        if order is None:
            raise BrokerError(ErrorCode.ORDER_NOT_FOUND, "order not found")
        return await order_out(_current(order), nested)

    @router.patch("/orders/{order_id}", summary="Replace an order")
    async def patch_order(
        order_id: str, body: ReplaceIn, who: Principal = trader, actor: Actor = acting
    ) -> Any:
        account_id = account_of(who)
        old = await broker.find_order(account_id, order_id)
        if old is None:
            raise BrokerError(ErrorCode.ORDER_NOT_FOUND, "order not found")
        if not body.model_fields_set - {"client_order_id"}:
            raise BrokerError(ErrorCode.INVALID, "nothing to change: give qty, prices or trail")
        change = to_replace_request(
            body,
            broker.instrument(old.symbol),
            trail_percent=old.trail_percent_bps is not None,
        )
        return await order_out(
            await broker.replace_order(account_id, order_id, change, actor=actor)
        )

    @router.delete("/orders/{order_id}", status_code=204, summary="Cancel an order")
    async def delete_order(
        order_id: str, who: Principal = trader, actor: Actor = acting
    ) -> Response:
        await broker.cancel_order(account_of(who), order_id, actor=actor)
        return Response(status_code=204)

    @router.delete("/orders", status_code=207, summary="Cancel all open orders")
    async def delete_orders(who: Principal = trader, actor: Actor = acting) -> list[dict[str, Any]]:
        results = await broker.cancel_all(account_of(who), actor=actor)
        return [
            {"id": oid, "status": code, "body": order_json(broker, order, nested=False)}
            for oid, code, order in results
        ]

    # --- positions ------------------------------------------------------------------------

    @router.get("/positions", summary="Open positions")
    async def get_positions(who: Principal = viewer) -> list[dict[str, Any]]:
        acct = broker.account(account_of(who))
        return [
            position_json(broker, acct, pos)
            for pos in sorted(acct.positions.values(), key=lambda p: p.symbol)
            if pos.qty != 0
        ]

    @router.get("/positions/{symbol_or_asset_id}", summary="One open position")
    async def get_position(symbol_or_asset_id: str, who: Principal = viewer) -> Any:
        acct = broker.account(account_of(who))
        inst = _instrument(broker, symbol_or_asset_id)
        pos = acct.positions.get(inst.symbol)
        if pos is None or pos.qty == 0:
            raise BrokerError(ErrorCode.POSITION_NOT_FOUND, "position does not exist")
        return position_json(broker, acct, pos)

    @router.delete("/positions/{symbol_or_asset_id}", summary="Close (part of) a position")
    async def close_position(
        symbol_or_asset_id: str,
        who: Principal = trader,
        qty: Decimal | None = None,
        percentage: Decimal | None = None,
        actor: Actor = acting,
    ) -> Any:
        account_id = account_of(who)
        acct = broker.account(account_id)
        inst = _instrument(broker, symbol_or_asset_id)
        pos = acct.positions.get(inst.symbol)
        if pos is None or pos.qty == 0:
            raise BrokerError(ErrorCode.POSITION_NOT_FOUND, "position does not exist")
        size: int | None = None
        if qty is not None and percentage is not None:
            raise BrokerError(ErrorCode.INVALID, "give qty or percentage, not both")
        if qty is not None:
            if not qty.is_finite() or qty != qty.to_integral_value():
                raise BrokerError(ErrorCode.INVALID, "qty must be a whole number of shares")
            size = int(qty)
        elif percentage is not None:
            if not percentage.is_finite() or not 0 < percentage <= 100:
                raise BrokerError(ErrorCode.INVALID, "percentage must be in (0, 100]")
            size = int(abs(pos.qty) * percentage / 100)
            if size == 0:
                raise BrokerError(ErrorCode.INVALID, "percentage is less than one share")
        order = await broker.close_position(account_id, inst.symbol, size, actor=actor)
        return await order_out(order)

    @router.delete("/positions", status_code=207, summary="Close every position")
    async def close_all(
        who: Principal = trader, cancel_orders: bool = False, actor: Actor = acting
    ) -> Any:
        account_id = account_of(who)
        acct = broker.account(account_id)
        if cancel_orders:
            await broker.cancel_all(account_id, actor=actor)
        out = []
        for symbol, pos in sorted(acct.positions.items()):
            if pos.qty == 0:
                continue
            try:
                order = await broker.close_position(account_id, symbol, actor=actor)
                out.append(
                    {
                        "symbol": symbol,
                        "status": 200,
                        "order_id": order.id,
                        "body": order_json(broker, order, nested=False),
                    }
                )
            except BrokerError as exc:
                out.append(
                    {
                        "symbol": symbol,
                        "status": exc.status,
                        "body": {"code": exc.code, "message": exc.message},
                    }
                )
        return out

    # --- assets, clock, calendar --------------------------------------------------------------

    @router.get("/assets", summary="Listed assets")
    async def get_assets(
        who: Principal = viewer, status: str | None = None, asset_class: str | None = None
    ) -> list[dict[str, Any]]:
        if asset_class not in (None, "us_equity") or status not in (None, "active"):
            return []
        return [
            asset_json(inst, restricted=inst.symbol in broker.restricted)
            for inst in sorted(broker.instruments.values(), key=lambda i: i.symbol)
        ]

    @router.get("/assets/{symbol_or_asset_id}", summary="One asset")
    async def get_asset(symbol_or_asset_id: str, who: Principal = viewer) -> dict[str, Any]:
        inst = _instrument(broker, symbol_or_asset_id)
        return asset_json(inst, restricted=inst.symbol in broker.restricted)

    @router.get("/clock", summary="Is the market open")
    async def get_clock(who: Principal = viewer) -> dict[str, Any]:
        ts = now()
        is_open, next_open, next_close = broker.calendar.clock(ts)
        return {
            "timestamp": iso(ts),
            "is_open": is_open,
            "next_open": iso(next_open),
            "next_close": iso(next_close),
        }

    @router.get("/calendar", summary="Trading days and their sessions")
    async def get_calendar(
        who: Principal = viewer, start: date | None = None, end: date | None = None
    ) -> list[dict[str, Any]]:
        cal = broker.calendar
        today = datetime.fromtimestamp(now() // 1_000_000_000, UTC).date()
        first = start or today
        if not _EARLIEST.date() <= first <= _LATEST.date() or (
            end is not None and not _EARLIEST.date() <= end <= _LATEST.date()
        ):
            raise BrokerError(ErrorCode.INVALID, "dates must be between 1678 and 2261")
        last = end or first + timedelta(days=30)
        if last < first or (last - first).days > 3660:
            raise BrokerError(ErrorCode.INVALID, "end must follow start, at most ten years on")
        out = []
        for day in cal.trading_days(first, last):
            session = cal.session(day)
            if session is None:
                continue
            opened, closed = _local(cal, session[0]), _local(cal, session[1] - 1)
            out.append(
                {
                    "date": day.isoformat(),
                    "open": opened.strftime("%H:%M"),
                    "close": closed.strftime("%H:%M"),
                    "session_open": opened.strftime("%H%M"),
                    "session_close": closed.strftime("%H%M"),
                }
            )
        return out

    # --- activities and portfolio history -------------------------------------------------------

    async def _activities(
        who: Principal,
        kinds: list[str] | None,
        after: str | None,
        until: str | None,
        direction: str,
        page_size: int,
    ) -> Any:
        account_id = account_of(who)
        await broker.store.flush()
        rows = await queries.activities(
            broker.store.engine,
            account_id,
            kinds=kinds,
            after=_parse_time("after", after),
            until=_parse_time("until", until),
            limit=page_size,
            ascending=direction == "asc",
        )
        out = []
        for code, row in rows:
            if code == "FILL":
                inst = broker.instruments.get(row.symbol)
                tick = inst.tick_size if inst else Decimal("0.01")
                cum = row.order_qty - row.leaves_qty if row.leaves_qty else row.order_filled_qty
                out.append(
                    {
                        "id": row.id,
                        "account_id": account_id,
                        "activity_type": "FILL",
                        "transaction_time": iso(row.ts),
                        "type": "fill" if row.leaves_qty == 0 else "partial_fill",
                        "price": str(from_ticks(row.price, tick)),
                        "qty": str(row.qty),
                        "side": row.side,
                        "symbol": row.symbol,
                        "leaves_qty": str(row.leaves_qty),
                        "order_id": row.order_id,
                        "cum_qty": str(cum),
                        "order_status": "filled" if row.leaves_qty == 0 else "partially_filled",
                    }
                )
            else:
                out.append(
                    {
                        "id": row.id,
                        "account_id": account_id,
                        "activity_type": code,
                        "date": datetime.fromtimestamp(row.created_at // 1_000_000_000, UTC)
                        .date()
                        .isoformat(),
                        "net_amount": money(row.amount),
                        "description": row.description,
                        "status": "executed",
                    }
                )
        return out

    @router.get("/account/activities", summary="Fills and cash activities")
    async def get_activities(
        who: Principal = viewer,
        activity_types: str | None = None,
        after: str | None = None,
        until: str | None = None,
        direction: Literal["asc", "desc"] = "desc",
        page_size: Annotated[int, Query(ge=1, le=MAX_ACTIVITIES_PAGE)] = MAX_ACTIVITIES_PAGE,
    ) -> Any:
        kinds = [k for k in (activity_types or "").split(",") if k] or None
        unknown = sorted(set(kinds or ()) - ACTIVITY_TYPES)
        if unknown:
            raise BrokerError(ErrorCode.INVALID, f"unknown activity type {', '.join(unknown)}")
        return await _activities(who, kinds, after, until, direction, page_size)

    @router.get("/account/activities/{activity_type}", summary="Activities of one type")
    async def get_activities_of(
        activity_type: str,
        who: Principal = viewer,
        after: str | None = None,
        until: str | None = None,
        direction: Literal["asc", "desc"] = "desc",
        page_size: Annotated[int, Query(ge=1, le=MAX_ACTIVITIES_PAGE)] = MAX_ACTIVITIES_PAGE,
    ) -> Any:
        if activity_type not in ACTIVITY_TYPES:
            raise BrokerError(ErrorCode.INVALID, f"unknown activity type {activity_type}")
        return await _activities(who, [activity_type], after, until, direction, page_size)

    @router.get("/account/portfolio/history", summary="Equity over time")
    async def portfolio_history(
        who: Principal = viewer,
        period: str = "1M",
        timeframe: Literal["1Min", "5Min", "15Min", "1H", "1D"] = "1D",
    ) -> Response:
        acct = broker.account(account_of(who))
        span = _period_ns(period)
        ts = now()
        await broker.store.flush()
        rows = await queries.equity_points(broker.store.engine, acct.id, since=ts - span)
        step = {"1Min": 60, "5Min": 300, "15Min": 900, "1H": 3600, "1D": 86400}[timeframe]
        step_ns = step * 1_000_000_000
        buckets: dict[int, int] = {}
        for row in rows:
            buckets[row.ts // step_ns] = row.equity
        equity_now, _, _ = broker.valuation(acct)
        buckets[ts // step_ns] = equity_now
        keys = sorted(buckets)
        base = buckets[keys[0]]
        cent = Decimal("0.01")
        stamps: list[int] = []
        equity: list[Decimal] = []
        pnl: list[Decimal] = []
        pnl_pct: list[Decimal] = []
        for key in keys:
            value = buckets[key]
            stamps.append(key * step)
            equity.append(Decimal(value) * cent)
            pnl.append(Decimal(value - base) * cent)
            pnl_pct.append(
                (Decimal(value - base) / base).quantize(Decimal("0.000001")) if base else Decimal(0)
            )
        body = {
            "timestamp": stamps,
            "equity": equity,
            "profit_loss": pnl,
            "profit_loss_pct": pnl_pct,
            "base_value": Decimal(base) * cent,
            "timeframe": timeframe,
        }
        # Alpaca sends these as JSON numbers: written from Decimal, exactly, never via float
        return Response(_NUMBERS.encode(body), media_type="application/json")

    # --- watchlists ---------------------------------------------------------------------------

    async def watchlist_out(account_id: str, wid: str) -> dict[str, Any]:
        await broker.store.flush()
        found = await queries.watchlist_rows(broker.store.engine, account_id, wid)
        if not found:
            raise BrokerError(ErrorCode.NOT_FOUND, "watchlist not found")
        row, symbols = found[0]
        return _watchlist_json(broker, row, symbols)

    def _record(kind: AdminAction, watchlist_id: str, actor: Actor, **detail: Any) -> None:
        broker.records.admin_action(kind, watchlist_id, actor, now(), detail)

    def _check_symbols(symbols: list[str]) -> list[str]:
        if len(symbols) > MAX_WATCHLIST_SYMBOLS:
            raise BrokerError(ErrorCode.INVALID, f"at most {MAX_WATCHLIST_SYMBOLS} symbols")
        out: list[str] = []
        for symbol in symbols:
            inst = _instrument(broker, symbol)
            if inst.symbol not in out:
                out.append(inst.symbol)
        return out

    @router.get("/watchlists", summary="The account's watchlists")
    async def get_watchlists(who: Principal = viewer) -> list[dict[str, Any]]:
        await broker.store.flush()
        found = await queries.watchlist_rows(broker.store.engine, account_of(who))
        return [_watchlist_json(broker, row, []) for row, _ in found]

    @router.post("/watchlists", summary="Create a watchlist")
    async def create_watchlist(
        body: WatchlistIn, who: Principal = lists, actor: Actor = acting
    ) -> dict[str, Any]:
        account_id = account_of(who)
        symbols = _check_symbols(body.symbols or [])
        await broker.store.flush()
        existing = await queries.watchlist_rows(broker.store.engine, account_id)
        if any(row.name == body.name for row, _ in existing):
            raise BrokerError(ErrorCode.DUPLICATE, "a watchlist with this name exists")
        wid, ts = str(uuid.uuid4()), now()
        broker.store.insert(
            t.watchlists,
            {
                "id": wid,
                "account_id": account_id,
                "name": body.name,
                "created_at": ts,
                "updated_at": ts,
            },
        )
        for n, symbol in enumerate(symbols):
            broker.store.insert(
                t.watchlist_assets, {"watchlist_id": wid, "symbol": symbol, "position": n}
            )
        _record(AdminAction.WATCHLIST_CREATE, wid, actor, name=body.name, symbols=symbols)
        return await watchlist_out(account_id, wid)

    @router.get("/watchlists/{watchlist_id}", summary="One watchlist")
    async def get_watchlist(watchlist_id: str, who: Principal = viewer) -> dict[str, Any]:
        return await watchlist_out(account_of(who), watchlist_id)

    @router.put("/watchlists/{watchlist_id}", summary="Rename a watchlist / set its symbols")
    async def put_watchlist(
        watchlist_id: str, body: WatchlistIn, who: Principal = lists, actor: Actor = acting
    ) -> dict[str, Any]:
        account_id = account_of(who)
        current = await watchlist_out(account_id, watchlist_id)
        symbols = _check_symbols(body.symbols or [])
        others = await queries.watchlist_rows(broker.store.engine, account_id)
        if any(row.name == body.name and row.id != watchlist_id for row, _ in others):
            # checked here: a unique-constraint failure in the write-behind commit is fatal
            raise BrokerError(ErrorCode.DUPLICATE, "a watchlist with this name exists")
        broker.store.update(
            t.watchlists, {"id": watchlist_id, "name": body.name, "updated_at": now()}
        )
        for asset in current["assets"]:
            broker.store.delete(
                t.watchlist_assets, {"watchlist_id": watchlist_id, "symbol": asset["symbol"]}
            )
        for n, symbol in enumerate(symbols):
            broker.store.upsert(
                t.watchlist_assets, {"watchlist_id": watchlist_id, "symbol": symbol, "position": n}
            )
        _record(AdminAction.WATCHLIST_UPDATE, watchlist_id, actor, name=body.name, symbols=symbols)
        return await watchlist_out(account_id, watchlist_id)

    @router.post("/watchlists/{watchlist_id}", summary="Add a symbol to a watchlist")
    async def add_to_watchlist(
        watchlist_id: str, body: WatchlistSymbolIn, who: Principal = lists, actor: Actor = acting
    ) -> dict[str, Any]:
        account_id = account_of(who)
        current = await watchlist_out(account_id, watchlist_id)
        symbol = _check_symbols([body.symbol])[0]
        have = [a["symbol"] for a in current["assets"]]
        if symbol not in have:
            _check_symbols([*have, symbol])
            broker.store.upsert(
                t.watchlist_assets,
                {"watchlist_id": watchlist_id, "symbol": symbol, "position": len(have)},
            )
            broker.store.update(t.watchlists, {"id": watchlist_id, "updated_at": now()})
            _record(AdminAction.WATCHLIST_UPDATE, watchlist_id, actor, added=symbol)
        return await watchlist_out(account_id, watchlist_id)

    @router.delete("/watchlists/{watchlist_id}/{symbol}", summary="Remove a symbol")
    async def remove_from_watchlist(
        watchlist_id: str, symbol: str, who: Principal = lists, actor: Actor = acting
    ) -> dict[str, Any]:
        account_id = account_of(who)
        current = await watchlist_out(account_id, watchlist_id)
        if symbol not in [a["symbol"] for a in current["assets"]]:
            raise BrokerError(ErrorCode.NOT_FOUND, f"{symbol} is not in the watchlist")
        broker.store.delete(t.watchlist_assets, {"watchlist_id": watchlist_id, "symbol": symbol})
        broker.store.update(t.watchlists, {"id": watchlist_id, "updated_at": now()})
        _record(AdminAction.WATCHLIST_UPDATE, watchlist_id, actor, removed=symbol)
        return await watchlist_out(account_id, watchlist_id)

    @router.delete("/watchlists/{watchlist_id}", status_code=204, summary="Delete a watchlist")
    async def delete_watchlist(
        watchlist_id: str, who: Principal = lists, actor: Actor = acting
    ) -> Response:
        account_id = account_of(who)
        current = await watchlist_out(account_id, watchlist_id)
        for asset in current["assets"]:
            broker.store.delete(
                t.watchlist_assets, {"watchlist_id": watchlist_id, "symbol": asset["symbol"]}
            )
        broker.store.delete(t.watchlists, {"id": watchlist_id})
        _record(AdminAction.WATCHLIST_DELETE, watchlist_id, actor)
        await broker.store.flush()
        return Response(status_code=204)

    return router


def _watchlist_json(broker: Broker, row: Any, symbols: list[str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "account_id": row.account_id,
        "name": row.name,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "assets": [
            asset_json(broker.instruments[s], restricted=s in broker.restricted)
            for s in symbols
            if s in broker.instruments
        ],
    }


def _period_ns(period: str) -> int:
    units = {"D": 86_400, "W": 7 * 86_400, "M": 30 * 86_400, "A": 365 * 86_400}
    number, unit = period[:-1], period[-1:]
    if (
        unit not in units
        or not (number.isascii() and number.isdigit())
        or not 0 < int(number) <= 100
    ):
        raise BrokerError(ErrorCode.INVALID, "period is a number and one of D, W, M, A")
    return int(number) * units[unit] * 1_000_000_000


def _local(cal: MarketCalendar, ns: int) -> datetime:
    zone = ZoneInfo("UTC" if cal.always_open else cal.tz)
    return datetime.fromtimestamp(ns // 1_000_000_000, zone)
