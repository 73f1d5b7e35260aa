"""Role-based access to the Alpaca trading routes: who may read and write which account.

Investors read their account but may not trade or keep watchlists (403, code 40310100);
traders act on their own account and nobody else's; brokers and admins have no account of
their own and name one with the ``TF-Account-Id`` header; no credentials is 401.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from tradingfloor.broker.api.auth import ACCOUNT_HEADER
from tradingfloor.broker.errors import ErrorCode
from tradingfloor.broker.identity.roles import Role

from ..stack import Stack, broker_stack

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    write: bool
    ok: int  # the status of a successful call
    body: Callable[[], dict[str, Any]] | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _order() -> dict[str, Any]:
    return {
        "symbol": "AAPL",
        "qty": "1",
        "side": "buy",
        "type": "limit",
        "limit_price": "50",
        "time_in_force": "gtc",
    }


def _watchlist() -> dict[str, Any]:
    return {"name": f"list-{uuid.uuid4().hex[:12]}", "symbols": ["AAPL"]}


ROUTES = [
    Route("GET", "/v2/account", write=False, ok=200),
    Route("POST", "/v2/orders", write=True, ok=200, body=_order),
    Route("DELETE", "/v2/orders", write=True, ok=207),
    Route("GET", "/v2/positions", write=False, ok=200),
    Route("POST", "/v2/watchlists", write=True, ok=200, body=_watchlist),
]


@dataclass
class World:
    stack: Stack
    account: str  # the account every role below acts on
    other: str  # somebody else's account
    headers: dict[Role, dict[str, str]]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with broker_stack(tmp_path_factory.mktemp("rbac")) as s:
        account = await s.funded_account()
        other = await s.funded_account()
        headers: dict[Role, dict[str, str]] = {}
        for role in Role:
            owns = role in (Role.TRADER, Role.INVESTOR)
            _, auth = await s.user(role, account_id=account if owns else None)
            headers[role] = auth
        yield World(s, account, other, headers)


async def call(world: World, route: Route, headers: dict[str, str]) -> tuple[int, Any]:
    async with world.stack.client() as http:
        response = await http.request(
            route.method,
            route.path,
            headers=headers,
            json=route.body() if route.body else None,
        )
    return response.status_code, response.json() if response.content else None


def _ids(route: Route) -> str:
    return str(route)


@pytest.mark.parametrize("route", ROUTES, ids=_ids)
@pytest.mark.parametrize("role", list(Role), ids=str)
async def test_each_role_on_the_account_it_acts_for(world: World, role: Role, route: Route) -> None:
    headers = dict(world.headers[role])
    if role in (Role.ADMIN, Role.BROKER):  # no customer of their own: name the account
        headers[ACCOUNT_HEADER] = world.account
    status, body = await call(world, route, headers)
    if role == Role.INVESTOR and route.write:
        assert status == 403, body
        assert body["code"] == ErrorCode.FORBIDDEN and body["message"]
        assert ErrorCode.FORBIDDEN.value == 40310100
        return
    assert status == route.ok, body
    if route.path == "/v2/account":
        assert body["id"] == world.account
    if route.path == "/v2/orders" and route.method == "POST":
        assert body["status"] == "new"
        assert body["id"] in {o.id for o in world.stack.broker.open_orders(world.account)}
    if route.path == "/v2/watchlists":
        assert body["account_id"] == world.account


@pytest.mark.parametrize("route", ROUTES, ids=_ids)
@pytest.mark.parametrize("role", [Role.TRADER, Role.INVESTOR], ids=str)
async def test_customers_may_not_name_another_account(
    world: World, role: Role, route: Route
) -> None:
    orders_before = len(world.stack.broker.open_orders(world.other))
    headers = {**world.headers[role], ACCOUNT_HEADER: world.other}
    status, body = await call(world, route, headers)
    assert status == 403, body
    assert body["code"] == 40310100
    assert len(world.stack.broker.open_orders(world.other)) == orders_before


@pytest.mark.parametrize("route", ROUTES, ids=_ids)
async def test_naming_your_own_account_is_allowed(world: World, route: Route) -> None:
    headers = {**world.headers[Role.TRADER], ACCOUNT_HEADER: world.account}
    status, body = await call(world, route, headers)
    assert status == route.ok, body


@pytest.mark.parametrize("role", [Role.ADMIN, Role.BROKER], ids=str)
async def test_staff_without_an_account_header_have_no_account(world: World, role: Role) -> None:
    status, body = await call(world, ROUTES[0], world.headers[role])
    assert status == 404 and body["code"] == 40410000


@pytest.mark.parametrize("route", ROUTES, ids=_ids)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"APCA-API-KEY-ID": "PKNOSUCHKEY000000000", "APCA-API-SECRET-KEY": "x"},
    ],
    ids=["none", "bad-token", "basic", "bad-key"],
)
async def test_unauthenticated_is_401(world: World, route: Route, headers: dict[str, str]) -> None:
    orders_before = len(world.stack.broker.open_orders(world.account))
    status, body = await call(world, route, headers)
    assert status == 401, body
    assert body["code"] // 100 == 401100 and body["message"]
    assert len(world.stack.broker.open_orders(world.account)) == orders_before
