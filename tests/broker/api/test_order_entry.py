"""POST /v2/orders through the order-entry front and through the FastAPI route: same answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.stack import Stack, broker_stack
from tradingfloor.broker.identity.roles import Role

ORDER = {
    "symbol": "AAPL",
    "qty": "2",
    "side": "buy",
    "type": "limit",
    "time_in_force": "day",
    "limit_price": "100.00",
}


def clients(s: Stack) -> list[httpx.AsyncClient]:
    front = httpx.ASGITransport(app=s.runtime.asgi)
    route = httpx.ASGITransport(app=s.app)
    return [httpx.AsyncClient(transport=t, base_url="http://broker") for t in (front, route)]


@pytest.fixture
async def world(tmp_path: Path) -> Any:
    async with broker_stack(tmp_path) as s:
        account = await s.funded_account(1_000_000)
        key_id, secret = await s.api_key(Role.TRADER, account_id=account)
        _, investor = await s.user(Role.INVESTOR, account_id=account)
        yield s, {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret}, investor


async def post(client: httpx.AsyncClient, body: Any, headers: dict[str, str]) -> httpx.Response:
    if isinstance(body, bytes):
        return await client.post(
            "/v2/orders", content=body, headers={**headers, "content-type": "application/json"}
        )
    return await client.post("/v2/orders", json=body, headers=headers)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({**ORDER, "side": "hold"}, 422, 42210000),
        ({k: v for k, v in ORDER.items() if k != "side"}, 422, 42210000),
        ({**ORDER, "limit_price": "100.001"}, 422, 42210000),
        ({**ORDER, "qty": "1.5"}, 422, 42210000),
        ({**ORDER, "symbol": "NOPE"}, 404, 40410003),
        ({**ORDER, "qty": "20000"}, 403, 40310004),
        (b"{not json", 422, 42210000),
    ],
)
async def test_bad_orders_get_the_same_answer_from_front_and_route(
    world: Any, body: Any, status: int, code: int
) -> None:
    s, key, _ = world
    answers = []
    for client in clients(s):
        async with client:
            response = await post(client, body, key)
            answers.append((response.status_code, response.json()["code"]))
    assert answers == [(status, code), (status, code)]
    assert not s.broker.open_orders(next(iter(s.broker.accounts)))


async def test_an_order_is_placed_the_same_way_by_both(world: Any) -> None:
    s, key, _ = world
    bodies = []
    for n, client in enumerate(clients(s)):
        async with client:
            response = await post(client, {**ORDER, "client_order_id": f"c{n}"}, key)
            assert response.status_code == 200
            bodies.append(response.json())
    assert bodies[0].keys() == bodies[1].keys()
    assert [b["status"] for b in bodies] == ["new", "new"]
    assert bodies[0]["limit_price"] == bodies[1]["limit_price"] == "100.00"


async def test_auth_and_permission_at_the_front(world: Any) -> None:
    s, key, investor = world
    client = clients(s)[0]
    async with client:
        assert (await post(client, ORDER, {})).json()["code"] == 40110000
        bad = {**key, "APCA-API-SECRET-KEY": "x" * 40}
        assert (await post(client, ORDER, bad)).status_code == 401
        denied = await post(client, ORDER, investor)
        assert (denied.status_code, denied.json()["code"]) == (403, 40310100)
        big = await post(client, b"{" + b" " * 20_000 + b"}", key)
        assert big.status_code == 413
        other = await client.get("/v2/account", headers=key)  # not the front's: passed on
        assert other.status_code == 200


async def test_rate_limit_answers_429_with_retry_after(world: Any) -> None:
    s, key, _ = world
    s.runtime.identity._key_limiter.check = lambda *_args: 7.2  # type: ignore[method-assign]
    client = clients(s)[0]
    async with client:
        response = await post(client, ORDER, key)
    assert response.status_code == 429 and response.headers["retry-after"] == "8"


async def test_the_front_answers_with_a_content_length(world: Any) -> None:
    s, key, _ = world
    client = clients(s)[0]
    async with client:
        response = await post(client, ORDER, key)
    assert int(response.headers["content-length"]) == len(response.content)
