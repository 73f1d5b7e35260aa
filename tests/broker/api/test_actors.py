"""Every state-changing request stores its actor, on SQLite and PostgreSQL: the principal (user
id and role), the credential (API key id or the token's jti), the client's address and port and
the request id, on the order's history and on the administrative records. Admins (only) can
query them; the request id round-trips; the access log has one line per request."""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from sqlalchemy import select

from tradingfloor.broker.api.context import ACCESS_LOGGER
from tradingfloor.broker.errors import ErrorCode
from tradingfloor.broker.identity.roles import Role
from tradingfloor.broker.oms.requests import OrderRequest
from tradingfloor.core.actor import SYSTEM_PRINCIPAL, CredentialKind
from tradingfloor.exchange.engine.types import Side
from tradingfloor.storage import tables as t

from ..stack import PASSWORD, Stack, broker_stack

pytestmark = pytest.mark.asyncio(loop_scope="module")

CLIENT = ("203.0.113.7", 41_234)
_ids = itertools.count(1)


@dataclass
class Caller:
    user_id: str
    role: Role
    headers: dict[str, str]
    credential_kind: CredentialKind
    credential_id: str


@dataclass
class World:
    stack: Stack
    client: httpx.AsyncClient
    callers: dict[str, Caller]
    account_id: str  # the trader's account

    async def records(self, request_id: str) -> list[Any]:
        """Every record (order events and administrative records) of one request."""
        await self.stack.broker.store.flush()
        rows: list[Any] = []
        async with self.stack.broker.store.engine.connect() as conn:
            for table in (t.order_events, t.admin_actions):
                found = await conn.execute(select(table).where(table.c.request_id == request_id))
                rows += list(found)
        return rows


async def _caller(stack: Stack, role: Role, account_id: str | None) -> Caller:
    username, headers = await stack.user(role, account_id=account_id)
    user = next(u for u in stack.runtime.identity.list_users() if u["username"] == username)
    token = headers["Authorization"].split(" ", 1)[1]
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    return Caller(user["id"], role, headers, CredentialKind.TOKEN, jti)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    db_url = None
    if request.param == "postgresql":
        from pg import empty_database

        db_url = await empty_database(request.getfixturevalue("postgres_url"))
    path: Path = tmp_path_factory.mktemp(f"actors-{request.param}")
    async with broker_stack(path, db_url=db_url, symbols=("AAPL", "MSFT")) as stack:
        account = await stack.funded_account()
        callers = {
            "trader": await _caller(stack, Role.TRADER, account),
            "broker": await _caller(stack, Role.BROKER, None),
            "admin": await _caller(stack, Role.ADMIN, None),
        }
        key_id, secret = await stack.api_key(Role.TRADER, account_id=account)
        key_user = await stack.runtime.identity.principal_from_key(
            key_id, secret, stack.broker.clock()
        )
        callers["trader-key"] = Caller(
            key_user.user_id,
            Role.TRADER,
            {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret},
            CredentialKind.API_KEY,
            key_id,
        )
        transport = httpx.ASGITransport(app=stack.runtime.asgi, client=CLIENT)
        async with httpx.AsyncClient(transport=transport, base_url="http://broker") as client:
            yield World(stack, client, callers, account)


# --- each kind of state-changing request ------------------------------------------------------

Request = tuple[str, str, dict[str, Any] | None]
Prepare = Callable[[World], Awaitable[Request]]


async def _resting_order(world: World) -> str:
    order = await world.stack.broker.submit_order(
        world.account_id,
        OrderRequest(symbol="AAPL", side="buy", qty=1, order_type="limit", limit_price=100),
    )
    return order.id


async def _place(world: World) -> Request:
    return "POST", "/v2/orders", _limit_order()


def _limit_order() -> dict[str, Any]:
    return {
        "symbol": "AAPL",
        "qty": "1",
        "side": "buy",
        "type": "limit",
        "time_in_force": "day",
        "limit_price": "1.00",
    }


async def _replace(world: World) -> Request:
    return "PATCH", f"/v2/orders/{await _resting_order(world)}", {"limit_price": "1.01"}


async def _cancel(world: World) -> Request:
    return "DELETE", f"/v2/orders/{await _resting_order(world)}", None


async def _cancel_all(world: World) -> Request:
    await _resting_order(world)
    return "DELETE", "/v2/orders", None


async def _own_shares(world: World) -> None:
    await world.stack.counterparty("MSFT", Side.SELL, 10_000, 1)
    await world.stack.broker.submit_order(
        world.account_id, OrderRequest(symbol="MSFT", side="buy", qty=1)
    )


async def _close_position(world: World) -> Request:
    await _own_shares(world)
    return "DELETE", "/v2/positions/MSFT", None


async def _close_all(world: World) -> Request:
    await _own_shares(world)
    return "DELETE", "/v2/positions", None


async def _create_key(world: World) -> Request:
    return "POST", "/api/me/api-keys", {"label": "actors"}


async def _admin_key(world: World) -> str:
    key_id, _ = await world.stack.runtime.identity.create_api_key(world.callers["admin"].user_id)
    return key_id


async def _revoke_key(world: World) -> Request:
    return "DELETE", f"/api/me/api-keys/{await _admin_key(world)}", None


async def _rotate_key(world: World) -> Request:
    return "POST", f"/api/me/api-keys/{await _admin_key(world)}/rotate", None


async def _create_user(world: World) -> Request:
    body = {"username": f"actor{next(_ids)}", "password": PASSWORD, "role": "broker"}
    return "POST", "/api/users", body


async def _other_user(world: World) -> str:
    user = await world.stack.runtime.identity.create_user(
        f"other{next(_ids)}", PASSWORD, Role.BROKER, None, actor=None
    )
    return str(user["id"])


async def _disable_user(world: World) -> Request:
    return "POST", f"/api/users/{await _other_user(world)}/disable", None


async def _enable_user(world: World) -> Request:
    return "POST", f"/api/users/{await _other_user(world)}/enable", None


async def _reset_totp(world: World) -> Request:
    return "POST", f"/api/users/{await _other_user(world)}/totp/reset", None


async def _create_customer(world: World) -> Request:
    return "POST", "/api/customers", {"name": "Ada Lovelace", "email": "ada@example.com"}


async def _kyc(world: World) -> Request:
    customer = await world.stack.broker.create_customer("K", "k@example.com")
    return "POST", f"/api/customers/{customer}/kyc", {"status": "approved", "note": "ok"}


async def _open_account(world: World) -> Request:
    customer = await world.stack.broker.create_customer("A", "a@example.com")
    return "POST", f"/api/customers/{customer}/accounts", {"account_type": "margin"}


async def _deposit(world: World) -> Request:
    return "POST", f"/api/accounts/{world.account_id}/deposits", {"amount": "5.00"}


async def _withdraw(world: World) -> Request:
    return "POST", f"/api/accounts/{world.account_id}/withdrawals", {"amount": "1.00"}


async def _trading_block(world: World) -> Request:
    account = await world.stack.funded_account(0)
    return "POST", f"/api/accounts/{account}/trading-block", {"blocked": True}


async def _configure(_world: World) -> Request:
    return "PATCH", "/v2/account/configurations", {"no_shorting": True}


async def _restrict(world: World) -> Request:
    return "PUT", "/api/admin/restricted/MSFT", {"reason": "news"}


async def _unrestrict(world: World) -> Request:
    await world.stack.broker.set_restricted("AAPL", True, "news")
    return "DELETE", "/api/admin/restricted/AAPL", None


async def _halt(world: World) -> Request:
    return "POST", "/api/admin/venue/instruments/MSFT/halt", {"reason": "news pending"}


async def _resume(world: World) -> Request:
    return "POST", "/api/admin/venue/instruments/MSFT/resume", None


async def _band(world: World) -> Request:
    return "PUT", "/api/admin/venue/instruments/MSFT/price-band", {"band_bps": 900}


async def _kill_switch(world: World) -> Request:
    await world.stack.counterparty("AAPL", Side.BUY, 50, 1, member="KILLME")
    return "PUT", "/api/admin/venue/members/KILLME/kill-switch", {"active": True}


async def _create_watchlist(world: World) -> Request:
    return "POST", "/v2/watchlists", {"name": f"list{next(_ids)}", "symbols": ["AAPL"]}


async def _watchlist(world: World) -> str:
    trader = world.callers["trader"].headers
    body = {"name": f"list{next(_ids)}", "symbols": ["AAPL"]}
    created = await world.client.post("/v2/watchlists", json=body, headers=trader)
    assert created.status_code == 200, created.text
    return str(created.json()["id"])


async def _put_watchlist(world: World) -> Request:
    body = {"name": f"list{next(_ids)}", "symbols": ["MSFT"]}
    return "PUT", f"/v2/watchlists/{await _watchlist(world)}", body


async def _add_to_watchlist(world: World) -> Request:
    return "POST", f"/v2/watchlists/{await _watchlist(world)}", {"symbol": "MSFT"}


async def _remove_from_watchlist(world: World) -> Request:
    return "DELETE", f"/v2/watchlists/{await _watchlist(world)}/AAPL", None


async def _delete_watchlist(world: World) -> Request:
    return "DELETE", f"/v2/watchlists/{await _watchlist(world)}", None


#: (name, who calls, preparation, record kinds the request must leave).
CASES: list[tuple[str, str, Prepare, set[str]]] = [
    ("POST /v2/orders (token)", "trader", _place, {"submitted"}),
    ("POST /v2/orders (API key)", "trader-key", _place, {"submitted"}),
    ("PATCH /v2/orders/{id}", "trader", _replace, {"replace_requested", "submitted"}),
    ("DELETE /v2/orders/{id}", "trader", _cancel, {"cancel_requested"}),
    ("DELETE /v2/orders", "trader", _cancel_all, {"cancel_requested"}),
    ("DELETE /v2/positions/{symbol}", "trader", _close_position, {"submitted"}),
    ("DELETE /v2/positions", "trader", _close_all, {"submitted"}),
    ("POST /v2/watchlists", "trader", _create_watchlist, {"watchlist.create"}),
    ("PUT /v2/watchlists/{id}", "trader", _put_watchlist, {"watchlist.update"}),
    ("POST /v2/watchlists/{id}", "trader-key", _add_to_watchlist, {"watchlist.update"}),
    ("DELETE /v2/watchlists/{id}/{symbol}", "trader", _remove_from_watchlist, {"watchlist.update"}),
    ("DELETE /v2/watchlists/{id}", "trader", _delete_watchlist, {"watchlist.delete"}),
    ("POST /api/me/api-keys", "admin", _create_key, {"api_key.create"}),
    ("DELETE /api/me/api-keys/{id}", "admin", _revoke_key, {"api_key.revoke"}),
    ("POST /api/me/api-keys/{id}/rotate", "admin", _rotate_key, {"api_key.rotate"}),
    ("POST /api/users", "admin", _create_user, {"user.create"}),
    ("POST /api/users/{id}/disable", "admin", _disable_user, {"user.disable"}),
    ("POST /api/users/{id}/enable", "admin", _enable_user, {"user.enable"}),
    ("POST /api/users/{id}/totp/reset", "admin", _reset_totp, {"user.totp_reset"}),
    ("POST /api/customers", "broker", _create_customer, {"customer.create"}),
    ("POST /api/customers/{id}/kyc", "broker", _kyc, {"customer.kyc"}),
    ("POST /api/customers/{id}/accounts", "broker", _open_account, {"account.open"}),
    ("POST /api/accounts/{id}/deposits", "broker", _deposit, {"cash.deposit"}),
    ("POST /api/accounts/{id}/withdrawals", "broker", _withdraw, {"cash.withdrawal"}),
    ("POST /api/accounts/{id}/trading-block", "broker", _trading_block, {"account.trading_block"}),
    ("PATCH /v2/account/configurations", "trader", _configure, {"account.configure"}),
    ("PUT /api/admin/restricted/{symbol}", "admin", _restrict, {"restricted.add"}),
    ("DELETE /api/admin/restricted/{symbol}", "admin", _unrestrict, {"restricted.remove"}),
    ("POST /api/admin/venue/instruments/{symbol}/halt", "admin", _halt, {"venue.halt"}),
    ("POST /api/admin/venue/instruments/{symbol}/resume", "admin", _resume, {"venue.resume"}),
    ("PUT /api/admin/venue/instruments/{symbol}/price-band", "admin", _band, {"venue.price_band"}),
    ("PUT /api/admin/venue/members/{id}/kill-switch", "admin", _kill_switch, {"venue.kill_switch"}),
]


@pytest.mark.parametrize(
    ("route", "caller", "prepare", "kinds"), CASES, ids=[name for name, *_ in CASES]
)
async def test_state_changing_request_stores_its_actor(
    world: World, route: str, caller: str, prepare: Prepare, kinds: set[str]
) -> None:
    who = world.callers[caller]
    method, path, body = await prepare(world)
    rid = f"req-{next(_ids)}-{route.split(' ')[0].lower()}"
    headers = {**who.headers, "X-Request-ID": rid}
    response = await world.client.request(method, path, json=body, headers=headers)
    assert 200 <= response.status_code < 300, (route, response.text)
    assert response.headers["x-request-id"] == rid

    rows = await world.records(rid)
    assert kinds <= {row.kind for row in rows}, (route, [row.kind for row in rows])
    for row in rows:
        assert (row.actor_principal, row.actor_role) == (who.user_id, who.role.value)
        assert (row.credential_kind, row.credential_id) == (
            who.credential_kind.value,
            who.credential_id,
        )
        assert (row.source_address, row.source_port) == CLIENT


async def test_every_state_changing_route_has_a_case(world: World) -> None:
    """A new state-changing route must be added to CASES (or, with a reason, to the exempt)."""
    covered = {name.split(" (")[0] for name, *_ in CASES}
    exempt = {
        # the caller's own session: credentials in the request, no principal yet; recorded
        # with the user they name (test_logins_refreshes_and_logouts_are_recorded_...)
        "POST /api/auth/token",
        "POST /api/auth/refresh",
        "POST /api/auth/logout",
        "POST /api/auth/totp/enrol",
        "POST /api/auth/totp/confirm",
    }
    routes = {
        f"{method.upper()} {path}"
        for path, operations in world.stack.app.openapi()["paths"].items()
        for method in operations
        if method != "get"
    }

    def shape(route: str) -> str:
        method, path = route.split(" ")
        parts = ["{x}" if p.startswith("{") else p for p in path.split("/")]
        return f"{method} {'/'.join(parts)}"

    assert {shape(r) for r in routes - exempt} == {shape(r) for r in covered}


# --- sessions ---------------------------------------------------------------------------------


async def test_logins_refreshes_and_logouts_are_recorded_with_who_and_where(
    world: World,
) -> None:
    """The authentication routes have no principal yet: their records name the user the
    credentials belong to (``anonymous`` for a username of nobody), the credential (the
    username, then the session), the client's address and port and the request id."""
    # a user without an account: a large one would need TOTP to log in
    username, _ = await world.stack.user(Role.BROKER)
    user_id = next(
        u["id"] for u in world.stack.runtime.identity.list_users() if u["username"] == username
    )

    async def post(path: str, rid: str, **kwargs: Any) -> httpx.Response:
        return await world.client.post(path, headers={"X-Request-ID": rid}, **kwargs)

    def login_form(password: str, name: str = username) -> dict[str, Any]:
        return {"data": {"username": name, "password": password, "grant_type": "password"}}

    wrong = await post("/api/auth/token", "auth-wrong", **login_form("not-the-password"))
    nobody = await post("/api/auth/token", "auth-nobody", **login_form("x", "no-such-user"))
    good = await post("/api/auth/token", "auth-good", **login_form(PASSWORD))
    assert (wrong.status_code, nobody.status_code, good.status_code) == (401, 401, 200)
    refresh_token = good.json()["refresh_token"]
    rotated = await post("/api/auth/refresh", "auth-refresh", json={"refresh_token": refresh_token})
    assert rotated.status_code == 200
    reused = await post("/api/auth/refresh", "auth-reuse", json={"refresh_token": refresh_token})
    assert reused.status_code == 401
    again = await post("/api/auth/token", "auth-again", **login_form(PASSWORD))
    out = await post(
        "/api/auth/logout", "auth-out", json={"refresh_token": again.json()["refresh_token"]}
    )
    assert out.status_code == 204

    expected = {
        "auth-wrong": ("auth.login_failed", user_id, "broker", "password", username),
        "auth-nobody": ("auth.login_failed", "anonymous", "anonymous", "password", "no-such-user"),
        "auth-good": ("auth.login", user_id, "broker", "password", username),
        "auth-refresh": ("auth.refresh", user_id, "broker", "refresh_token", None),
        "auth-reuse": ("auth.refresh_reused", user_id, "broker", "refresh_token", None),
        "auth-again": ("auth.login", user_id, "broker", "password", username),
        "auth-out": ("auth.logout", user_id, "broker", "refresh_token", None),
    }
    sessions: dict[str, str] = {}
    for rid, (kind, principal, role, credential_kind, credential_id) in expected.items():
        [row] = await world.records(rid)
        assert (row.kind, row.actor_principal, row.actor_role) == (kind, principal, role), rid
        assert row.credential_kind == credential_kind, rid
        if credential_id is not None:
            assert row.credential_id == credential_id, rid
        assert (row.source_address, row.source_port, row.request_id) == (*CLIENT, rid)
        sessions[rid] = row.credential_id if credential_kind == "refresh_token" else ""
        if kind == "auth.login":
            sessions[rid] = jwt.decode(
                (good if rid == "auth-good" else again).json()["access_token"],
                options={"verify_signature": False},
            )["sid"]
        if kind == "auth.login_failed":
            assert str(int(ErrorCode.UNAUTHORIZED)) in row.detail
    # the refresh, its reuse and the logout name the session the logins started
    assert sessions["auth-refresh"] == sessions["auth-reuse"] == sessions["auth-good"]
    assert sessions["auth-out"] == sessions["auth-again"] != sessions["auth-good"]


# --- request ids ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "caller"),
    [
        ("POST", "/v2/orders", "trader"),  # the order-entry front
        ("GET", "/v2/account", "trader"),  # the app
        ("GET", "/v2/account", None),  # 401
        ("GET", "/no/such/route", None),  # 404
    ],
)
async def test_a_sane_request_id_round_trips_and_others_are_replaced(
    world: World, method: str, path: str, caller: str | None
) -> None:
    auth = world.callers[caller].headers if caller else {}
    body = _limit_order() if method == "POST" else None

    async def send(headers: dict[str, str]) -> httpx.Response:
        return await world.client.request(method, path, json=body, headers={**auth, **headers})

    sane = "6f1c1e8e-3b9a-4c43-9a6e-0c0f7c1d2b3a"
    assert (await send({"X-Request-ID": sane})).headers["x-request-id"] == sane
    for insane in ("", "a b", "x" * 129, '"quoted"', "-leading-dash", "semi;colon"):
        got = (await send({"X-Request-ID": insane})).headers["x-request-id"]
        assert got != insane and len(got) == 32 and int(got, 16) >= 0
    first = (await send({})).headers["x-request-id"]
    second = (await send({})).headers["x-request-id"]
    assert first != second and len(first) == 32


# --- queries ----------------------------------------------------------------------------------


async def test_admin_queries_actions_by_actor_kind_and_time(world: World) -> None:
    broker = world.callers["broker"]
    clock = world.stack.broker.clock
    before = clock()
    rid = f"deposit-{next(_ids)}"
    response = await world.client.post(
        f"/api/accounts/{world.account_id}/deposits",
        json={"amount": "7.00"},
        headers={**broker.headers, "X-Request-ID": rid},
    )
    assert response.status_code == 201, response.text
    admin = world.callers["admin"].headers

    async def query(**params: str) -> list[dict[str, Any]]:
        answer = await world.client.get("/api/admin/actions", params=params, headers=admin)
        assert answer.status_code == 200, answer.text
        entries: list[dict[str, Any]] = answer.json()
        return entries

    found = await query(actor=broker.user_id, kind="cash.deposit")
    mine = [e for e in found if e["actor"]["request_id"] == rid]
    assert len(mine) == 1
    entry = mine[0]
    assert entry["target"] == world.account_id
    assert entry["detail"]["amount_minor"] == 700
    assert entry["actor"] == {
        "principal": broker.user_id,
        "role": "broker",
        "credential_kind": "token",
        "credential_id": broker.credential_id,
        "address": CLIENT[0],
        "port": CLIENT[1],
        "request_id": rid,
    }
    assert all(e["kind"] == "cash.deposit" for e in found)
    assert all(e["actor"]["principal"] == broker.user_id for e in found)
    # newest first
    assert [e["seq"] for e in found] == sorted((e["seq"] for e in found), reverse=True)

    def stamp(ns: int) -> str:
        from tradingfloor.broker.api.alpaca_json import iso

        return iso(ns) or ""

    inside = await query(kind="cash.deposit", **{"from": stamp(before)})
    assert rid in {e["actor"]["request_id"] for e in inside}
    later = await query(kind="cash.deposit", **{"from": stamp(clock() + 1_000_000_000)})
    assert rid not in {e["actor"]["request_id"] for e in later}
    earlier = await query(kind="cash.deposit", to=stamp(before))
    assert rid not in {e["actor"]["request_id"] for e in earlier}

    bad = await world.client.get(
        "/api/admin/actions", params={"from": "9999-01-01T00:00:00Z"}, headers=admin
    )
    assert (bad.status_code, bad.json()["code"]) == (422, ErrorCode.INVALID)


@pytest.mark.parametrize("caller", ["trader", "broker", "trader-key"])
@pytest.mark.parametrize(
    "path", ["/api/admin/actions", "/api/admin/order-events", "/api/admin/orders/x/history"]
)
async def test_only_admins_read_the_records(world: World, caller: str, path: str) -> None:
    response = await world.client.get(path, headers=world.callers[caller].headers)
    assert (response.status_code, response.json()["code"]) == (403, ErrorCode.FORBIDDEN)


async def test_order_history_names_the_trader_then_the_venue(world: World) -> None:
    trader = world.callers["trader"]
    await world.stack.counterparty("AAPL", Side.SELL, 10_000, 1)
    rid = f"buy-{next(_ids)}"
    placed = await world.client.post(
        "/v2/orders",
        json={
            "symbol": "AAPL",
            "qty": "1",
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
        },
        headers={**trader.headers, "X-Request-ID": rid},
    )
    assert placed.status_code == 200 and placed.json()["status"] == "filled", placed.text
    order_id = placed.json()["id"]
    admin = world.callers["admin"].headers
    answer = await world.client.get(f"/api/admin/orders/{order_id}/history", headers=admin)
    assert answer.status_code == 200, answer.text
    history = answer.json()
    assert [e["kind"] for e in history] == ["submitted", "new", "fill"]
    assert history[0]["actor"]["principal"] == trader.user_id
    assert history[0]["actor"]["request_id"] == rid
    assert history[0]["detail"]["symbol"] == "AAPL"
    for event in history[1:]:
        assert event["actor"]["principal"] == SYSTEM_PRINCIPAL
        assert event["actor"]["credential_kind"] == "system"
        assert event["actor"]["credential_id"] == "venue:TFEX"
        assert event["actor"]["request_id"].startswith("venue-seq:")
    assert history[2]["detail"]["qty"] == 1 and history[2]["detail"]["price"] == 10_000
    missing = await world.client.get("/api/admin/orders/nope/history", headers=admin)
    assert (missing.status_code, missing.json()["code"]) == (404, ErrorCode.ORDER_NOT_FOUND)
    # the trader's own order events, by actor
    events = await world.client.get(
        "/api/admin/order-events", params={"actor": trader.user_id}, headers=admin
    )
    assert rid in {e["actor"]["request_id"] for e in events.json()}


async def test_bracket_legs_are_released_by_the_system(world: World) -> None:
    trader = world.callers["trader"]
    await world.stack.counterparty("AAPL", Side.SELL, 10_000, 1)
    placed = await world.client.post(
        "/v2/orders",
        json={
            "symbol": "AAPL",
            "qty": "1",
            "side": "buy",
            "type": "limit",
            "limit_price": "100.00",
            "time_in_force": "gtc",
            "order_class": "bracket",
            "take_profit": {"limit_price": "105.00"},
            "stop_loss": {"stop_price": "95.00"},
        },
        headers=trader.headers,
    )
    assert placed.status_code == 200, placed.text
    await world.stack.broker.store.flush()
    legs = placed.json()["legs"]
    assert len(legs) == 2
    admin = world.callers["admin"].headers
    for leg in legs:
        history = (
            await world.client.get(f"/api/admin/orders/{leg['id']}/history", headers=admin)
        ).json()
        kinds = [e["kind"] for e in history]
        assert kinds[0] == "submitted" and history[0]["actor"]["principal"] == trader.user_id
        assert history[0]["detail"]["parent_id"] == placed.json()["id"]
        released = next(e for e in history if e["kind"] == "leg_released")
        assert released["actor"]["principal"] == SYSTEM_PRINCIPAL


# --- the access log ---------------------------------------------------------------------------


async def test_access_log_has_one_line_per_request(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    trader = world.callers["trader"]
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        await world.client.get("/v2/account", headers={**trader.headers, "X-Request-ID": "log-1"})
        await world.client.get("/v2/account%0Aforged", headers={"X-Request-ID": "log-2"})
    lines = [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(lines) == 2
    assert lines[0].startswith("GET /v2/account 200 ")
    assert f"principal={trader.user_id}/trader" in lines[0]
    assert f"address={CLIENT[0]}:{CLIENT[1]}" in lines[0]
    assert lines[0].endswith("request_id=log-1")
    assert lines[1].startswith("GET /v2/account\\nforged 40")
    assert "principal=- " in lines[1] and "\n" not in lines[1]
