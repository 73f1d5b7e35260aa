"""The official alpaca-py SDK against the broker over real HTTP and WebSocket.

Each test serves the broker app with uvicorn on a free port of 127.0.0.1 inside the test's
event loop and calls the synchronous ``TradingClient`` in a worker thread, so the loop keeps
serving while the SDK waits. The SDK validates every response with its own pydantic models,
so a test passing here means the JSON shapes are what Alpaca clients expect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Generator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast
from uuid import UUID

import pytest
import uvicorn
from alpaca.common.exceptions import APIError
from alpaca.common.types import RawData
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import (
    ActivityType,
    AssetExchange,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionSide,
    QueryOrderStatus,
    TimeInForce,
    TradeEvent,
)
from alpaca.trading.models import (
    AccountConfiguration,
    Asset,
    NonTradeActivity,
    Order,
    TradeActivity,
    TradeUpdate,
)
from alpaca.trading.requests import (
    ClosePositionRequest,
    CreateWatchlistRequest,
    GetCalendarRequest,
    GetOrdersRequest,
    GetPortfolioHistoryRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLimitOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
    TrailingStopOrderRequest,
    UpdateWatchlistRequest,
)
from alpaca.trading.stream import TradingStream
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from tradingfloor.broker.identity.roles import Role
from tradingfloor.exchange.engine.types import Side

from ..stack import PASSWORD, Stack, broker_stack

T = TypeVar("T")
P = ParamSpec("P")

CASH_MINOR = 10_000_000  # $100,000.00


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the test owns the process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class Sdk:
    stack: Stack
    port: int
    account_id: str
    key_id: str
    secret: str
    client: TradingClient

    async def call(self, fn: Callable[P, T | RawData], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one blocking SDK call in a worker thread while the loop serves it.

        The SDK's methods return ``Model | RawData``; with ``raw_data=False`` it is the model.
        """
        result = await asyncio.wait_for(asyncio.to_thread(fn, *args, **kwargs), 10)
        return cast(T, result)

    async def raw(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET ``/v2{path}`` through the SDK's REST client (for routes it has no method for)."""
        return await asyncio.wait_for(asyncio.to_thread(self.client.get, path, params), 10)

    async def order_until(self, order_id: UUID | str, done: Callable[[Order], bool]) -> Order:
        """Poll ``get_order_by_id`` until ``done`` (fills arrive asynchronously)."""
        order: Order | None = None
        for _ in range(100):
            got = await self.call(self.client.get_order_by_id, order_id)
            assert isinstance(got, Order)
            order = got
            if done(order):
                return order
            await asyncio.sleep(0.02)
        raise AssertionError(f"order {order_id} stayed {order.status if order else None}")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[int]:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_config=None,  # leave the test process's logging alone
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(), name="broker-http")
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped during start-up")
        await asyncio.sleep(0.01)
    try:
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def sdk(tmp_path: Path) -> AsyncIterator[Sdk]:
    async with broker_stack(tmp_path) as s, serving(s.app) as port:
        account_id = await s.funded_account(CASH_MINOR)
        key_id, secret = await s.api_key(Role.TRADER, account_id=account_id)
        client = TradingClient(key_id, secret, paper=True, url_override=f"http://127.0.0.1:{port}")
        try:
            yield Sdk(s, port, account_id, key_id, secret, client)
        finally:
            client._session.close()


async def last_trade(stack: Stack, symbol: str, price: int) -> None:
    """Two other members trade one share at ``price``: the symbol's last price."""
    await stack.counterparty(symbol, Side.SELL, price, 1, member="MM")
    await stack.counterparty(symbol, Side.BUY, price, 1, member="MM2")


def _is(*statuses: OrderStatus) -> Callable[[Order], bool]:
    return lambda order: order.status in statuses


def _d(value: object) -> float:
    assert value is not None
    return float(str(value))


# --- account, assets, clock, calendar ------------------------------------------------------------


async def test_account_assets_clock_and_calendar(sdk: Sdk) -> None:
    account = await sdk.call(sdk.client.get_account)
    assert str(account.id) == sdk.account_id
    assert account.status == "ACTIVE" and account.currency == "USD"
    assert account.cash == "100000.00" and account.buying_power == "100000.00"
    assert account.equity == "100000.00" and account.portfolio_value == "100000.00"
    assert account.trading_blocked is False and account.multiplier == "1"

    assets = await sdk.call(sdk.client.get_all_assets)
    assert [a.symbol for a in assets] == ["AAPL", "MSFT"]
    assert all(a.tradable and a.exchange == AssetExchange.OTC for a in assets)
    by_symbol = await sdk.call(sdk.client.get_asset, "MSFT")
    by_id = await sdk.call(sdk.client.get_asset, by_symbol.id)
    assert isinstance(by_id, Asset) and by_id.symbol == "MSFT" and by_id.id == by_symbol.id
    assert by_id.price_increment == 0.01 and by_id.min_order_size == 1

    clock = await sdk.call(sdk.client.get_clock)
    assert clock.is_open  # the test stack's calendar is always open
    # open: the next close first, then the next open (distinct, as Alpaca orders them)
    assert clock.timestamp < clock.next_close < clock.next_open

    start = date(2026, 3, 2)
    days = await sdk.call(
        sdk.client.get_calendar, GetCalendarRequest(start=start, end=start + timedelta(days=6))
    )
    assert [d.date for d in days] == [start + timedelta(days=n) for n in range(7)]
    assert days[0].open == datetime(2026, 3, 2, 0, 0)
    assert days[0].close == datetime(2026, 3, 2, 23, 59)


# --- order types and classes ----------------------------------------------------------------------


async def test_market_order_fills_against_a_resting_ask(sdk: Sdk) -> None:
    await sdk.stack.counterparty("AAPL", Side.SELL, 10_000, 10)
    placed = await sdk.call(
        sdk.client.submit_order,
        MarketOrderRequest(symbol="AAPL", qty=4, side=OrderSide.BUY, time_in_force=TimeInForce.DAY),
    )
    assert placed.type == OrderType.MARKET and placed.order_class == OrderClass.SIMPLE
    filled = await sdk.order_until(placed.id, _is(OrderStatus.FILLED))
    assert filled.filled_qty == "4" and _d(filled.filled_avg_price) == 100.0
    assert filled.filled_at is not None
    account = await sdk.call(sdk.client.get_account)
    assert account.cash == "99600.00"


async def test_resting_orders_of_every_type(sdk: Sdk) -> None:
    c = sdk.client
    await last_trade(sdk.stack, "AAPL", 10_000)  # trailing stops trail from the last price
    placed: dict[str, Order] = {}
    placed["limit"] = await sdk.call(
        c.submit_order,
        LimitOrderRequest(
            symbol="AAPL",
            qty=2,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            limit_price=95.5,
        ),
    )
    placed["stop"] = await sdk.call(
        c.submit_order,
        StopOrderRequest(
            symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, stop_price=105
        ),
    )
    placed["stop_limit"] = await sdk.call(
        c.submit_order,
        StopLimitOrderRequest(
            symbol="AAPL",
            qty=1,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.DAY,
            stop_price=105,
            limit_price=106,
        ),
    )
    placed["trail_price"] = await sdk.call(
        c.submit_order,
        TrailingStopOrderRequest(
            symbol="AAPL",
            qty=1,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.DAY,
            trail_price=2.5,
        ),
    )
    placed["trail_percent"] = await sdk.call(
        c.submit_order,
        TrailingStopOrderRequest(
            symbol="AAPL",
            qty=1,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            trail_percent=1.5,
        ),
    )
    limit = placed["limit"]
    assert limit.type == OrderType.LIMIT and _d(limit.limit_price) == 95.5
    assert limit.time_in_force == TimeInForce.GTC and limit.status == OrderStatus.NEW
    assert placed["stop"].type == OrderType.STOP and _d(placed["stop"].stop_price) == 105
    stop_limit = placed["stop_limit"]
    assert stop_limit.type == OrderType.STOP_LIMIT
    assert (_d(stop_limit.stop_price), _d(stop_limit.limit_price)) == (105, 106)
    assert placed["trail_price"].type == OrderType.TRAILING_STOP
    assert _d(placed["trail_price"].trail_price) == 2.5
    assert placed["trail_price"].trail_percent is None
    assert _d(placed["trail_percent"].trail_percent) == 1.5
    assert placed["trail_percent"].trail_price is None
    for order in placed.values():
        raw = await sdk.raw(f"/orders/{order.id}")
        assert raw["status"] not in ("rejected", "canceled"), (raw["type"], raw["reject_reason"])

    open_orders = await sdk.call(c.get_orders, GetOrdersRequest(status=QueryOrderStatus.OPEN))
    assert {o.id for o in open_orders} == {o.id for o in placed.values()}
    only_limit = await sdk.call(
        c.get_orders, GetOrdersRequest(status=QueryOrderStatus.ALL, symbols=["MSFT"])
    )
    assert only_limit == []


async def test_bracket_oto_and_oco(sdk: Sdk) -> None:
    c = sdk.client
    bracket = await sdk.call(
        c.submit_order,
        LimitOrderRequest(
            symbol="AAPL",
            qty=5,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            limit_price=100,
            order_class=OrderClass.BRACKET,
            take_profit=TakeProfitRequest(limit_price=108),
            stop_loss=StopLossRequest(stop_price=92, limit_price=91),
        ),
    )
    assert bracket.order_class == OrderClass.BRACKET and bracket.status == OrderStatus.NEW
    assert bracket.legs is not None and len(bracket.legs) == 2
    legs = {leg.type: leg for leg in bracket.legs}
    take_profit, stop_loss = legs[OrderType.LIMIT], legs[OrderType.STOP_LIMIT]
    assert take_profit.side == stop_loss.side == OrderSide.SELL
    assert _d(take_profit.limit_price) == 108
    assert (_d(stop_loss.stop_price), _d(stop_loss.limit_price)) == (92, 91)
    assert take_profit.status == stop_loss.status == OrderStatus.HELD
    again = await sdk.call(c.get_order_by_id, bracket.id)
    assert again.legs is not None and {leg.id for leg in again.legs} == {
        leg.id for leg in bracket.legs
    }

    # the entry fills: both exits go to the venue
    await sdk.stack.counterparty("AAPL", Side.SELL, 10_000, 5)
    await sdk.order_until(bracket.id, _is(OrderStatus.FILLED))
    working = await sdk.order_until(take_profit.id, _is(OrderStatus.NEW))
    assert working.status == OrderStatus.NEW

    oto = await sdk.call(
        c.submit_order,
        LimitOrderRequest(
            symbol="MSFT",
            qty=3,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.DAY,
            limit_price=50,
            order_class=OrderClass.OTO,
            stop_loss=StopLossRequest(stop_price=47),
        ),
    )
    assert oto.order_class == OrderClass.OTO
    assert oto.legs is not None and len(oto.legs) == 1
    assert oto.legs[0].type == OrderType.STOP and _d(oto.legs[0].stop_price) == 47

    # an OCO exit pair on a position: take profit (limit) and stop loss, either cancels the other
    await sdk.stack.counterparty("MSFT", Side.SELL, 5_000, 3)
    await sdk.order_until(oto.id, _is(OrderStatus.FILLED))
    await sdk.call(c.cancel_order_by_id, oto.legs[0].id)
    await sdk.order_until(oto.legs[0].id, _is(OrderStatus.CANCELED))
    oco = await sdk.call(
        c.submit_order,
        LimitOrderRequest(
            symbol="MSFT",
            qty=3,
            side=OrderSide.SELL,
            time_in_force=TimeInForce.GTC,
            order_class=OrderClass.OCO,
            take_profit=TakeProfitRequest(limit_price=54),
            stop_loss=StopLossRequest(stop_price=46),
        ),
    )
    assert oco.order_class == OrderClass.OCO
    assert oco.legs is not None and len(oco.legs) == 1
    assert _d(oco.limit_price) == 54 and _d(oco.legs[0].stop_price) == 46
    await sdk.stack.counterparty("MSFT", Side.BUY, 5_400, 3)
    await sdk.order_until(oco.id, _is(OrderStatus.FILLED))
    await sdk.order_until(oco.legs[0].id, _is(OrderStatus.CANCELED))


async def test_client_order_id_lookup_and_idempotency(sdk: Sdk) -> None:
    c = sdk.client

    def request(qty: int) -> LimitOrderRequest:
        return LimitOrderRequest(
            symbol="AAPL",
            qty=qty,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.DAY,
            limit_price=90,
            client_order_id="my-order-1",
        )

    first = await sdk.call(c.submit_order, request(1))
    second = await sdk.call(c.submit_order, request(7))
    assert second.id == first.id and second.qty == "1"
    assert first.client_order_id == "my-order-1"
    by_id = await sdk.call(c.get_order_by_id, first.id)
    by_client = await sdk.call(c.get_order_by_client_id, "my-order-1")
    assert by_id.id == by_client.id == first.id
    open_orders = await sdk.call(c.get_orders)
    assert [o.id for o in open_orders] == [first.id]
    with pytest.raises(APIError) as info:
        await sdk.call(c.get_order_by_client_id, "nobody")
    assert info.value.status_code == 404 and info.value.code == 40410001


async def test_replace_and_cancel(sdk: Sdk) -> None:
    c = sdk.client

    def limit(price: float) -> LimitOrderRequest:
        return LimitOrderRequest(
            symbol="AAPL",
            qty=5,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.DAY,
            limit_price=price,
        )

    old = await sdk.call(c.submit_order, limit(90))
    new = await sdk.call(
        c.replace_order_by_id, old.id, ReplaceOrderRequest(qty=3, limit_price=91.25)
    )
    assert new.id != old.id and new.replaces == old.id
    assert new.qty == "3" and _d(new.limit_price) == 91.25
    old_now = await sdk.order_until(old.id, _is(OrderStatus.REPLACED))
    assert old_now.replaced_by == new.id and old_now.replaced_at is not None

    await sdk.call(c.cancel_order_by_id, new.id)  # 204, no body
    canceled = await sdk.order_until(new.id, _is(OrderStatus.CANCELED))
    assert canceled.canceled_at is not None
    with pytest.raises(APIError) as info:
        await sdk.call(c.cancel_order_by_id, new.id)
    assert info.value.status_code == 422 and info.value.code == 42210001

    others = [await sdk.call(c.submit_order, limit(80 + n)) for n in range(3)]
    responses = await sdk.call(c.cancel_orders)
    assert sorted(str(r.id) for r in responses) == sorted(str(o.id) for o in others)
    assert all(r.status == 200 for r in responses)
    for order in others:
        await sdk.order_until(order.id, _is(OrderStatus.CANCELED))
    assert await sdk.call(c.get_orders) == []
    closed = await sdk.call(c.get_orders, GetOrdersRequest(status=QueryOrderStatus.CLOSED))
    assert {o.id for o in closed} == {old.id, new.id, *(o.id for o in others)}


# --- positions, activities, history ---------------------------------------------------------------


async def test_positions_close_and_activities(sdk: Sdk) -> None:
    c, s = sdk.client, sdk.stack
    await s.counterparty("AAPL", Side.SELL, 10_000, 10)
    await s.counterparty("MSFT", Side.SELL, 20_000, 2)
    for symbol, qty in (("AAPL", 10), ("MSFT", 2)):
        order = await sdk.call(
            c.submit_order,
            MarketOrderRequest(
                symbol=symbol, qty=qty, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
            ),
        )
        await sdk.order_until(order.id, _is(OrderStatus.FILLED))

    positions = await sdk.call(c.get_all_positions)
    assert [(p.symbol, p.qty, p.side) for p in positions] == [
        ("AAPL", "10", PositionSide.LONG),
        ("MSFT", "2", PositionSide.LONG),
    ]
    aapl = await sdk.call(c.get_open_position, "AAPL")
    assert _d(aapl.avg_entry_price) == 100 and _d(aapl.cost_basis) == 1000
    assert aapl.exchange == AssetExchange.OTC and aapl.qty_available == "10"
    by_asset_id = await sdk.call(c.get_open_position, aapl.asset_id)
    assert by_asset_id.symbol == "AAPL"

    # close part of AAPL against a bid
    await s.counterparty("AAPL", Side.BUY, 10_100, 10)
    closing = await sdk.call(c.close_position, "AAPL", ClosePositionRequest(qty="4"))
    assert closing.side == OrderSide.SELL and closing.qty == "4"
    await sdk.order_until(closing.id, _is(OrderStatus.FILLED))
    aapl = await sdk.call(c.get_open_position, "AAPL")
    assert aapl.qty == "6"

    # close everything
    await s.counterparty("MSFT", Side.BUY, 20_000, 2)
    results = await sdk.call(c.close_all_positions)
    assert sorted((r.symbol, r.status) for r in results) == [("AAPL", 200), ("MSFT", 200)]
    for result in results:
        assert result.order_id is not None
        await sdk.order_until(result.order_id, _is(OrderStatus.FILLED))
    assert await sdk.call(c.get_all_positions) == []
    with pytest.raises(APIError) as info:
        await sdk.call(c.get_open_position, "AAPL")
    assert info.value.status_code == 404 and info.value.code == 40410002

    # activities: the SDK's TradingClient has no method for them; its models still apply
    raw = await sdk.raw("/account/activities", {"direction": "asc"})
    assert isinstance(raw, list)
    fills: list[TradeActivity] = []
    cash: list[NonTradeActivity] = []
    for entry in raw:
        if entry["activity_type"] == "FILL":
            fills.append(TradeActivity(**entry))
        else:
            cash.append(NonTradeActivity(**entry))
    assert [(a.activity_type, a.net_amount) for a in cash] == [(ActivityType.CSD, 100_000.0)]
    assert sorted((f.symbol, f.side, f.qty) for f in fills) == [
        ("AAPL", OrderSide.BUY, 10.0),
        ("AAPL", OrderSide.SELL, 4.0),
        ("AAPL", OrderSide.SELL, 6.0),
        ("MSFT", OrderSide.BUY, 2.0),
        ("MSFT", OrderSide.SELL, 2.0),
    ]
    assert all(str(f.account_id) == sdk.account_id for f in fills)
    only_fills = await sdk.raw("/account/activities/FILL")
    assert len(only_fills) == len(fills)

    history = await sdk.call(
        c.get_portfolio_history, GetPortfolioHistoryRequest(period="1W", timeframe="1D")
    )
    assert history.timeframe == "1D" and history.timestamp
    assert len(history.equity) == len(history.profit_loss) == len(history.timestamp)
    account = await sdk.call(c.get_account)
    assert history.equity[-1] == float(account.equity or 0) == 100_000 + 6 * 1 + 4 * 1


# --- watchlists -----------------------------------------------------------------------------------


async def test_watchlists(sdk: Sdk) -> None:
    c = sdk.client
    created = await sdk.call(
        c.create_watchlist, CreateWatchlistRequest(name="tech", symbols=["AAPL"])
    )
    assert created.name == "tech" and str(created.account_id) == sdk.account_id
    assert [a.symbol for a in created.assets or []] == ["AAPL"]
    lists = await sdk.call(c.get_watchlists)
    assert [w.id for w in lists] == [created.id]
    added = await sdk.call(c.add_asset_to_watchlist_by_id, created.id, "MSFT")
    assert [a.symbol for a in added.assets or []] == ["AAPL", "MSFT"]
    fetched = await sdk.call(c.get_watchlist_by_id, created.id)
    assert [a.symbol for a in fetched.assets or []] == ["AAPL", "MSFT"]
    removed = await sdk.call(c.remove_asset_from_watchlist_by_id, created.id, "AAPL")
    assert [a.symbol for a in removed.assets or []] == ["MSFT"]
    with pytest.raises(APIError) as info:
        await sdk.call(c.create_watchlist, CreateWatchlistRequest(name="tech", symbols=[]))
    assert info.value.status_code == 422
    await sdk.call(c.delete_watchlist_by_id, created.id)
    assert await sdk.call(c.get_watchlists) == []
    with pytest.raises(APIError) as info:
        await sdk.call(c.get_watchlist_by_id, created.id)
    assert info.value.status_code == 404


async def test_renaming_a_watchlist_to_a_taken_name_is_refused(sdk: Sdk) -> None:
    c = sdk.client
    await sdk.call(c.create_watchlist, CreateWatchlistRequest(name="first", symbols=["AAPL"]))
    second = await sdk.call(c.create_watchlist, CreateWatchlistRequest(name="second", symbols=[]))
    with pytest.raises(APIError) as info:
        await sdk.call(c.update_watchlist_by_id, second.id, UpdateWatchlistRequest(name="first"))
    assert info.value.status_code == 422 and info.value.code == 42210003
    names = sorted(w.name for w in await sdk.call(c.get_watchlists))
    assert names == ["first", "second"]
    order = await sdk.call(
        c.submit_order,
        LimitOrderRequest(
            symbol="AAPL",
            qty=1,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.DAY,
            limit_price=90,
        ),
    )
    assert order.status == OrderStatus.NEW


# --- errors ---------------------------------------------------------------------------------------


async def test_risk_rejection_is_an_api_error_with_its_code(sdk: Sdk) -> None:
    too_big = LimitOrderRequest(
        symbol="AAPL",
        qty=2_000,
        side=OrderSide.BUY,
        time_in_force=TimeInForce.DAY,
        limit_price=100,  # $200,000 > $100,000 buying power
    )
    with pytest.raises(APIError) as info:
        await sdk.call(sdk.client.submit_order, too_big)
    assert info.value.status_code == 403 and info.value.code == 40310000
    assert info.value.message
    assert await sdk.call(sdk.client.get_orders) == []

    wrong = TradingClient(sdk.key_id, "not-the-secret", paper=True, url_override=sdk.base_url)
    with pytest.raises(APIError) as info:
        await sdk.call(wrong.get_account)
    assert info.value.status_code == 401 and info.value.code == 40110000


# --- trade_updates stream -------------------------------------------------------------------------


class _Stream(TradingStream):
    """The SDK's stream, noting the server's ``listening`` answer (the SDK ignores it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.listening = asyncio.Event()

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        if msg.get("stream") == "listening" and "trade_updates" in msg["data"]["streams"]:
            self.listening.set()
        await super()._dispatch(msg)


async def test_trade_updates_stream_delivers_new_then_fill(sdk: Sdk) -> None:
    stream = _Stream(
        sdk.key_id, sdk.secret, paper=True, url_override=f"ws://127.0.0.1:{sdk.port}/stream"
    )
    updates: list[TradeUpdate] = []
    got_fill = asyncio.Event()

    async def on_update(update: TradeUpdate) -> None:
        updates.append(update)
        if update.event == TradeEvent.FILL:
            got_fill.set()

    stream.subscribe_trade_updates(on_update)
    runner = asyncio.create_task(stream._run_forever())  # type: ignore[no-untyped-call]
    try:
        await asyncio.wait_for(stream.listening.wait(), 5)
        await sdk.stack.counterparty("AAPL", Side.SELL, 10_000, 3)
        order = await sdk.call(
            sdk.client.submit_order,
            LimitOrderRequest(
                symbol="AAPL",
                qty=3,
                side=OrderSide.BUY,
                time_in_force=TimeInForce.DAY,
                limit_price=100,
            ),
        )
        await asyncio.wait_for(got_fill.wait(), 5)
    finally:
        await stream.stop_ws()
        await stream.close()  # wakes the SDK's receive loop, which then sees the stop
        await asyncio.wait_for(runner, 5)
    mine = [u for u in updates if u.order.id == order.id]
    assert [u.event for u in mine] == [TradeEvent.NEW, TradeEvent.FILL]
    fill = mine[-1]
    assert fill.price == 100.0 and fill.qty == 3.0 and fill.position_qty == 3.0
    assert fill.execution_id is not None
    assert fill.order.status == OrderStatus.FILLED and fill.order.filled_qty == "3"
    assert fill.timestamp.tzinfo is not None and fill.timestamp <= datetime.now(UTC)


async def test_trade_updates_stream_refuses_a_bad_secret(sdk: Sdk) -> None:
    stream = TradingStream(
        sdk.key_id, "wrong", paper=True, url_override=f"ws://127.0.0.1:{sdk.port}/stream"
    )
    await stream._connect()  # type: ignore[no-untyped-call]
    try:
        with pytest.raises(ValueError, match="failed to authenticate"):
            await stream._auth()  # type: ignore[no-untyped-call]
    finally:
        await stream.close()


@pytest.mark.parametrize("authenticated", [False, True], ids=["first-message", "after-auth"])
async def test_trade_updates_stream_answers_a_message_that_is_not_an_object(
    sdk: Sdk, authenticated: bool
) -> None:
    async with ws_connect(f"ws://127.0.0.1:{sdk.port}/stream") as ws:
        if authenticated:
            auth = {
                "action": "authenticate",
                "data": {"key_id": sdk.key_id, "secret_key": sdk.secret},
            }
            await ws.send(json.dumps(auth))
            assert json.loads(await ws.recv())["data"]["status"] == "authorized"
        await ws.send("[]")
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
    if authenticated:
        assert reply["stream"] == "error"
    else:
        assert reply["stream"] == "authorization" and reply["data"]["status"] == "unauthorized"


async def test_an_open_stream_is_closed_once_its_api_key_is_revoked(sdk: Sdk) -> None:
    identity = sdk.stack.runtime.identity
    async with ws_connect(f"ws://127.0.0.1:{sdk.port}/stream") as ws:
        auth = {"action": "authenticate", "data": {"key_id": sdk.key_id, "secret_key": sdk.secret}}
        await ws.send(json.dumps(auth))
        assert json.loads(await ws.recv())["data"]["status"] == "authorized"
        owner = next(
            u["id"]
            for u in identity.list_users()
            if any(k["key_id"] == sdk.key_id for k in identity.list_api_keys(u["id"]))
        )
        await identity.revoke_api_key(owner, sdk.key_id)
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert reply["stream"] == "authorization" and reply["data"]["status"] == "unauthorized"
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_an_open_stream_is_closed_once_its_session_logs_out(sdk: Sdk) -> None:
    identity = sdk.stack.runtime.identity
    username, _ = await sdk.stack.user(Role.TRADER, account_id=sdk.account_id)
    pair = await identity.login(username, PASSWORD, totp_code=None, client_address="192.0.2.9")
    async with ws_connect(f"ws://127.0.0.1:{sdk.port}/stream") as ws:
        await ws.send(
            json.dumps({"action": "authenticate", "data": {"oauth_token": pair.access_token}})
        )
        assert json.loads(await ws.recv())["data"]["status"] == "authorized"
        await identity.logout(pair.refresh_token)
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert reply["data"]["status"] == "unauthorized"
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)


# --- behaviours real clients depend on ------------------------------------------------------------


def _bracket(price: float, tif: TimeInForce = TimeInForce.GTC) -> LimitOrderRequest:
    return LimitOrderRequest(
        symbol="AAPL",
        qty=5,
        side=OrderSide.BUY,
        time_in_force=tif,
        limit_price=price,
        order_class=OrderClass.BRACKET,
        take_profit=TakeProfitRequest(limit_price=108),
        stop_loss=StopLossRequest(stop_price=92),
    )


async def test_replacing_a_bracket_entry_carries_its_legs(sdk: Sdk) -> None:
    c = sdk.client
    old = await sdk.call(c.submit_order, _bracket(100))
    assert old.legs is not None
    leg_ids = {leg.id for leg in old.legs}
    new = await sdk.call(c.replace_order_by_id, old.id, ReplaceOrderRequest(limit_price=101))
    assert new.replaces == old.id and _d(new.limit_price) == 101
    assert new.legs is not None and {leg.id for leg in new.legs} == leg_ids
    assert {leg.status for leg in new.legs} == {OrderStatus.HELD}
    nested = await sdk.call(c.get_orders, GetOrdersRequest(nested=True))
    assert [o.id for o in nested] == [new.id]
    assert {leg.id for leg in nested[0].legs or []} == leg_ids

    # the replacement fills: its exits go to the venue for the filled quantity
    await sdk.stack.counterparty("AAPL", Side.SELL, 10_100, 5)
    await sdk.order_until(new.id, _is(OrderStatus.FILLED))
    for leg_id in leg_ids:
        working = await sdk.order_until(leg_id, _is(OrderStatus.NEW))
        assert working.qty == "5"


async def test_mass_cancel_takes_held_legs_and_reports_them_cancelled(sdk: Sdk) -> None:
    c = sdk.client
    old = await sdk.call(c.submit_order, _bracket(100))
    new = await sdk.call(c.replace_order_by_id, old.id, ReplaceOrderRequest(limit_price=99))
    assert new.legs is not None
    responses = await sdk.call(c.cancel_orders)
    expected = {str(new.id), *(str(leg.id) for leg in new.legs)}
    assert {str(r.id) for r in responses} == expected
    assert all(r.status == 200 for r in responses)
    for leg in new.legs:
        await sdk.order_until(leg.id, _is(OrderStatus.CANCELED))
    assert await sdk.call(c.get_orders) == []


async def test_close_all_with_cancel_orders_leaves_no_held_leg(sdk: Sdk) -> None:
    c, s = sdk.client, sdk.stack
    await s.counterparty("AAPL", Side.SELL, 10_000, 2)
    bought = await sdk.call(
        c.submit_order,
        MarketOrderRequest(symbol="AAPL", qty=2, side=OrderSide.BUY, time_in_force=TimeInForce.DAY),
    )
    await sdk.order_until(bought.id, _is(OrderStatus.FILLED))
    entry = await sdk.call(c.submit_order, _bracket(95))
    replaced = await sdk.call(c.replace_order_by_id, entry.id, ReplaceOrderRequest(limit_price=96))
    await s.counterparty("AAPL", Side.BUY, 10_000, 2)  # a bid the closing sale meets
    results = await sdk.call(c.close_all_positions, True)
    assert [(r.symbol, r.status) for r in results] == [("AAPL", 200)]
    assert replaced.legs is not None
    for leg in replaced.legs:
        await sdk.order_until(leg.id, _is(OrderStatus.CANCELED))
    await sdk.order_until(replaced.id, _is(OrderStatus.CANCELED))
    assert await sdk.call(c.get_orders) == []


async def test_market_orders_with_gtc_are_accepted(sdk: Sdk) -> None:
    c, s = sdk.client, sdk.stack
    await s.counterparty("AAPL", Side.SELL, 10_000, 10)
    simple = await sdk.call(
        c.submit_order,
        MarketOrderRequest(symbol="AAPL", qty=2, side=OrderSide.BUY, time_in_force=TimeInForce.GTC),
    )
    filled = await sdk.order_until(simple.id, _is(OrderStatus.FILLED))
    assert filled.time_in_force == TimeInForce.GTC and filled.filled_qty == "2"
    # Alpaca's own bracket example: a market entry, gtc
    bracket = await sdk.call(
        c.submit_order,
        MarketOrderRequest(
            symbol="AAPL",
            qty=3,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            order_class=OrderClass.BRACKET,
            take_profit=TakeProfitRequest(limit_price=110),
            stop_loss=StopLossRequest(stop_price=95),
        ),
    )
    assert bracket.status != OrderStatus.REJECTED
    await sdk.order_until(bracket.id, _is(OrderStatus.FILLED))
    assert bracket.legs is not None
    for leg in bracket.legs:
        working = await sdk.order_until(leg.id, _is(OrderStatus.NEW))
        assert working.time_in_force == TimeInForce.GTC


async def test_last_equity_on_the_first_day_is_the_deposits(sdk: Sdk) -> None:
    c, s = sdk.client, sdk.stack
    await s.counterparty("AAPL", Side.SELL, 10_000, 10)
    order = await sdk.call(
        c.submit_order,
        MarketOrderRequest(
            symbol="AAPL", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
        ),
    )
    await sdk.order_until(order.id, _is(OrderStatus.FILLED))
    await last_trade(s, "AAPL", 10_500)
    account = await sdk.call(c.get_account)
    assert account.equity == "100050.00"
    assert account.last_equity == "100000.00"


# --- differences from Alpaca, fixed ---------------------------------------------------------------


async def test_account_configurations_read_change_and_apply(sdk: Sdk) -> None:
    c, s = sdk.client, sdk.stack
    config = await sdk.call(c.get_account_configurations)
    assert isinstance(config, AccountConfiguration)
    assert config.suspend_trade is False and config.no_shorting is False
    config.suspend_trade = True
    changed = await sdk.call(c.set_account_configurations, config)
    assert changed.suspend_trade is True
    assert (await sdk.call(c.get_account_configurations)).suspend_trade is True
    request = LimitOrderRequest(
        symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, limit_price=90
    )
    with pytest.raises(APIError) as info:
        await sdk.call(c.submit_order, request)
    assert info.value.status_code == 403 and info.value.code == 40310002
    changed.suspend_trade = False
    changed.fractional_trading = True  # whole shares only: refused, nothing changes
    with pytest.raises(APIError) as info:
        await sdk.call(c.set_account_configurations, changed)
    assert info.value.status_code == 422
    assert (await sdk.call(c.get_account_configurations)).suspend_trade is True
    changed.fractional_trading = False
    await sdk.call(c.set_account_configurations, changed)
    assert (await sdk.call(c.submit_order, request)).status == OrderStatus.NEW
    assert s.broker.configuration(sdk.account_id).suspend_trade is False


async def test_every_alpaca_activity_type_is_accepted(sdk: Sdk) -> None:
    assert await sdk.raw("/account/activities/DIV") == []
    assert await sdk.raw("/account/activities", {"activity_types": "DIV,INT"}) == []
    deposits = await sdk.raw("/account/activities", {"activity_types": "CSD,DIV"})
    assert [a["activity_type"] for a in deposits] == ["CSD"]
    with pytest.raises(APIError) as info:
        await sdk.raw("/account/activities/NOPE")
    assert info.value.status_code == 422


async def test_lower_case_symbols_are_normalised(sdk: Sdk) -> None:
    placed = await sdk.call(
        sdk.client.submit_order,
        LimitOrderRequest(
            symbol="aapl", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, limit_price=90
        ),
    )
    assert placed.symbol == "AAPL" and placed.status == OrderStatus.NEW


async def test_trailing_stops_show_their_mark_and_stop_and_take_a_new_trail(sdk: Sdk) -> None:
    c, s = sdk.client, sdk.stack
    await last_trade(s, "AAPL", 10_000)
    placed = await sdk.call(
        c.submit_order,
        TrailingStopOrderRequest(
            symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, trail_price=2
        ),
    )
    assert (_d(placed.hwm), _d(placed.stop_price)) == (100, 102)
    await last_trade(s, "AAPL", 9_700)  # a buy trails the low: the stop follows down
    moved = await sdk.call(c.get_order_by_id, placed.id)
    assert (_d(moved.hwm), _d(moved.stop_price)) == (97, 99)
    await last_trade(s, "AAPL", 9_800)  # not lower: nothing moves
    same = await sdk.call(c.get_order_by_id, placed.id)
    assert (_d(same.hwm), _d(same.stop_price)) == (97, 99)

    retrailed = await sdk.call(c.replace_order_by_id, placed.id, ReplaceOrderRequest(trail=3))
    assert retrailed.replaces == placed.id and retrailed.status == OrderStatus.NEW
    assert _d(retrailed.trail_price) == 3 and _d(retrailed.stop_price) == 98 + 3
    old = await sdk.order_until(placed.id, _is(OrderStatus.REPLACED))
    assert old.replaced_by == retrailed.id
    percent = await sdk.call(
        c.submit_order,
        TrailingStopOrderRequest(
            symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, trail_percent=1
        ),
    )
    assert (_d(percent.hwm), _d(percent.stop_price)) == (98, 98.98)
    repercent = await sdk.call(c.replace_order_by_id, percent.id, ReplaceOrderRequest(trail=2))
    assert _d(repercent.trail_percent) == 2 and _d(repercent.stop_price) == 99.96


async def test_time_in_force_can_be_replaced(sdk: Sdk) -> None:
    c = sdk.client
    day = await sdk.call(
        c.submit_order,
        LimitOrderRequest(
            symbol="AAPL", qty=3, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, limit_price=90
        ),
    )
    gtc = await sdk.call(
        c.replace_order_by_id, day.id, ReplaceOrderRequest(time_in_force=TimeInForce.GTC)
    )
    assert gtc.time_in_force == TimeInForce.GTC and gtc.replaces == day.id
    assert gtc.status == OrderStatus.NEW and gtc.qty == "3" and _d(gtc.limit_price) == 90
    await sdk.order_until(day.id, _is(OrderStatus.REPLACED))
    open_orders = await sdk.call(c.get_orders)
    assert [o.id for o in open_orders] == [gtc.id]
    with pytest.raises(APIError) as info:  # a bracket stays day or gtc
        bracket = await sdk.call(c.submit_order, _bracket(95))
        await sdk.call(
            c.replace_order_by_id, bracket.id, ReplaceOrderRequest(time_in_force=TimeInForce.IOC)
        )
    assert info.value.status_code == 422


async def test_mass_cancel_reports_a_brackets_held_legs_as_cancelled(sdk: Sdk) -> None:
    bracket = await sdk.call(sdk.client.submit_order, _bracket(100))
    assert bracket.legs is not None
    responses = await sdk.call(sdk.client.cancel_orders)
    assert sorted((str(r.id), r.status) for r in responses) == sorted(
        (str(o.id), 200) for o in (bracket, *bracket.legs)
    )
    for order in (bracket, *bracket.legs):
        await sdk.order_until(order.id, _is(OrderStatus.CANCELED))
