"""The native ``/api`` routes over HTTP (ASGI, no server): the login, refresh, logout and TOTP
flows, API keys, users, customers, money handling, the restricted list, and the RBAC matrix:
every protected route against each of the four roles (2xx if the role holds the permission,
else 403 with code 40310100).

One broker stack serves the whole module (the tests share its event loop); each test makes
its own users, customers and accounts, and logs in from its own client address so that the
login throttle (per address) never trips by accident.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pyotp
import pytest
import pytest_asyncio

from tradingfloor.broker.errors import ErrorCode
from tradingfloor.broker.identity.roles import PERMISSIONS, Permission, Role
from tradingfloor.broker.identity.totp import MFA_EQUITY_THRESHOLD_MINOR
from tradingfloor.broker.oms.requests import OrderRequest
from tradingfloor.core.lockout import LOGIN_ATTEMPTS_PER_MINUTE
from tradingfloor.exchange.engine.commands import Halt, Resume
from tradingfloor.exchange.engine.types import Side

from ..stack import PASSWORD, SYMBOLS, Stack, broker_stack

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: The venue-operator routes halt and resume this symbol, which no other test here trades.
RBAC_SYMBOL = "RBAC"

_addresses = itertools.count(1)
_names = itertools.count(1)


def fresh_address() -> str:
    n = next(_addresses)
    return f"10.{n // 65536}.{n // 256 % 256}.{n % 256}"


def fresh_name(prefix: str = "user") -> str:
    return f"{prefix}{next(_names)}"


@dataclass
class World:
    stack: Stack
    client: httpx.AsyncClient
    headers: dict[Role, dict[str, str]]
    user_ids: dict[Role, str]
    account_id: str  # the trader's and investor's account
    customer_id: str

    def client_from(self, address: str | None = None) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(
            app=self.stack.app, client=(address or fresh_address(), 40000)
        )
        return httpx.AsyncClient(transport=transport, base_url="http://broker")

    async def new_user(
        self, role: Role, *, account_id: str | None = None, log_in: bool = True
    ) -> tuple[str, str, dict[str, str]]:
        """(user id, username, bearer header) of a new user, logged in from a new address."""
        identity = self.stack.runtime.identity
        customer = self.stack.broker.accounts[account_id].customer_id if account_id else None
        if customer is None and role in (Role.TRADER, Role.INVESTOR):
            customer = self.customer_id
        username = fresh_name(f"native-{role.value}-")
        user = await identity.create_user(username, PASSWORD, role, customer, actor=None)
        if not log_in:
            return user["id"], username, {}
        pair = await identity.login(
            username, PASSWORD, totp_code=None, client_address=fresh_address()
        )
        return user["id"], username, {"Authorization": f"Bearer {pair.access_token}"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with broker_stack(
        tmp_path_factory.mktemp("native"), symbols=(*SYMBOLS, RBAC_SYMBOL)
    ) as stack:
        account = await stack.funded_account()
        headers: dict[Role, dict[str, str]] = {}
        user_ids: dict[Role, str] = {}
        for role in Role:
            owned = account if role in (Role.TRADER, Role.INVESTOR) else None
            username, headers[role] = await stack.user(role, account_id=owned)
            user_ids[role] = next(
                u["id"] for u in stack.runtime.identity.list_users() if u["username"] == username
            )
        async with stack.client() as client:
            yield World(
                stack,
                client,
                headers,
                user_ids,
                account,
                stack.broker.accounts[account].customer_id,
            )


def assert_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code and isinstance(body["message"], str), body
    return body


async def token_request(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD, **extra: str
) -> httpx.Response:
    form = {"username": username, "password": password, "grant_type": "password", **extra}
    return await client.post("/api/auth/token", data=form)


# --- authentication flows -------------------------------------------------------------------


async def test_password_flow_refresh_and_logout(world: World) -> None:
    _, username, _ = await world.new_user(Role.TRADER, account_id=world.account_id)
    async with world.client_from() as client:
        response = await token_request(client, username)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        pair = response.json()
        assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
        assert pair["token_type"] == "bearer" and pair["expires_in"] == 900

        me = await client.get(
            "/api/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
        )
        assert me.status_code == 200, me.text
        body = me.json()
        assert body["username"] == username and body["role"] == "trader"
        assert body["account_id"] == world.account_id and body["customer_id"] == world.customer_id
        assert body["auth"] == "bearer" and body["mfa"] is False and not body["totp_enabled"]
        assert "trade" in body["permissions"] and "manage_users" not in body["permissions"]

        refreshed = await client.post(
            "/api/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text
        newer = refreshed.json()
        assert newer["refresh_token"] != pair["refresh_token"]
        reused = await client.post(
            "/api/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert_error(reused, 401, ErrorCode.UNAUTHORIZED)
        revoked = await client.post(
            "/api/auth/refresh", json={"refresh_token": newer["refresh_token"]}
        )
        assert_error(revoked, 401, ErrorCode.UNAUTHORIZED)  # the reuse ended the family

        again = (await token_request(client, username)).json()
        out = await client.post("/api/auth/logout", json={"refresh_token": again["refresh_token"]})
        assert out.status_code == 204 and out.content == b""
        after = await client.post(
            "/api/auth/refresh", json={"refresh_token": again["refresh_token"]}
        )
        assert_error(after, 401, ErrorCode.UNAUTHORIZED)


async def test_bad_logins(world: World) -> None:
    _, username, _ = await world.new_user(Role.INVESTOR)
    async with world.client_from() as client:
        wrong = await token_request(client, username, "Wrong-horse-42")
        unknown = await token_request(client, "nobody-at-all")
        assert assert_error(wrong, 401, ErrorCode.UNAUTHORIZED) == assert_error(
            unknown, 401, ErrorCode.UNAUTHORIZED
        )
        assert_error(
            await token_request(client, username, grant_type="client_credentials"),
            422,
            ErrorCode.INVALID,
        )
        assert_error(
            await client.post("/api/auth/token", data={"username": username}),
            422,
            ErrorCode.INVALID,
        )
        assert_error(await client.get("/api/me"), 401, ErrorCode.UNAUTHORIZED)
        assert_error(
            await client.get("/api/me", headers={"Authorization": "Bearer nonsense"}),
            401,
            ErrorCode.UNAUTHORIZED,
        )


async def test_login_throttle_answers_429_with_retry_after(world: World) -> None:
    async with world.client_from() as client:
        for i in range(LOGIN_ATTEMPTS_PER_MINUTE):
            response = await token_request(client, f"ghost-{i}")
            assert_error(response, 401, ErrorCode.UNAUTHORIZED)
        throttled = await token_request(client, "ghost-x")
        assert_error(throttled, 429, ErrorCode.RATE_LIMITED)
        assert 1 <= int(throttled.headers["retry-after"]) <= 60


async def test_lockout_over_http(world: World) -> None:
    _, username, _ = await world.new_user(Role.INVESTOR)
    async with world.client_from() as client:
        for _ in range(4):
            assert_error(await token_request(client, username, "Wrong-horse-42"), 401, 40110000)
        assert_error(
            await token_request(client, username, "Wrong-horse-42"),
            401,
            ErrorCode.ACCOUNT_LOCKED,
        )
        assert_error(await token_request(client, username), 401, ErrorCode.ACCOUNT_LOCKED)


async def test_totp_enrolment_and_mfa_login(world: World) -> None:
    rich = await world.stack.funded_account(MFA_EQUITY_THRESHOLD_MINOR + 1)
    _, username, _ = await world.new_user(Role.TRADER, account_id=rich, log_in=False)
    credentials = {"username": username, "password": PASSWORD}
    async with world.client_from() as client:
        needs = await token_request(client, username)
        assert_error(needs, 401, ErrorCode.MFA_ENROLMENT_REQUIRED)

        enrol = await client.post("/api/auth/totp/enrol", json=credentials)
        assert enrol.status_code == 200, enrol.text
        secret = enrol.json()["secret"]
        assert enrol.json()["otpauth_uri"].startswith("otpauth://totp/")
        assert enrol.json()["otpauth_qr_svg"].startswith("data:image/svg+xml")
        totp = pyotp.TOTP(secret)
        now = time.time()
        bad = await client.post(
            "/api/auth/totp/confirm", json={**credentials, "code": "12345"}
        )  # five digits: malformed
        assert_error(bad, 422, ErrorCode.INVALID)
        confirm = await client.post(
            "/api/auth/totp/confirm", json={**credentials, "code": totp.at(now)}
        )
        assert confirm.status_code == 200, confirm.text
        assert confirm.json() == {"totp_enabled": True}
        again = await client.post("/api/auth/totp/enrol", json=credentials)
        assert_error(again, 409, ErrorCode.CONFLICT)

        assert_error(await token_request(client, username), 401, ErrorCode.MFA_REQUIRED)
        response = await token_request(client, username, totp=totp.at(now + 30))
        assert response.status_code == 200, response.text
        headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        me = (await client.get("/api/me", headers=headers)).json()
        assert me["mfa"] is True and me["totp_enabled"] is True


# --- API keys -------------------------------------------------------------------------------


async def test_api_key_lifecycle(world: World) -> None:
    _, _, headers = await world.new_user(Role.TRADER, account_id=world.account_id)
    client = world.client
    created = await client.post("/api/me/api-keys", json={"label": "bot"}, headers=headers)
    assert created.status_code == 201, created.text
    key = created.json()
    assert set(key) == {"key_id", "secret", "label", "rate_limit_per_minute", "created_at"}
    assert key["label"] == "bot" and key["created_at"].endswith("Z")
    pair = {"APCA-API-KEY-ID": key["key_id"], "APCA-API-SECRET-KEY": key["secret"]}

    me = (await client.get("/api/me", headers=pair)).json()
    assert me["auth"] == "api_key" and me["account_id"] == world.account_id
    # An API key cannot mint or list API keys: that needs a password login.
    assert_error(await client.get("/api/me/api-keys", headers=pair), 403, ErrorCode.FORBIDDEN)
    assert_error(
        await client.post("/api/me/api-keys", json={}, headers=pair), 403, ErrorCode.FORBIDDEN
    )

    listed = (await client.get("/api/me/api-keys", headers=headers)).json()
    assert [k["key_id"] for k in listed] == [key["key_id"]] and "secret" not in listed[0]

    rotated = await client.post(f"/api/me/api-keys/{key['key_id']}/rotate", headers=headers)
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["key_id"] != key["key_id"] and new["label"] == "bot"
    assert_error(await client.get("/api/me", headers=pair), 401, ErrorCode.UNAUTHORIZED)
    new_pair = {"APCA-API-KEY-ID": new["key_id"], "APCA-API-SECRET-KEY": new["secret"]}
    assert (await client.get("/api/me", headers=new_pair)).status_code == 200

    deleted = await client.delete(f"/api/me/api-keys/{new['key_id']}", headers=headers)
    assert deleted.status_code == 204
    assert_error(await client.get("/api/me", headers=new_pair), 401, ErrorCode.UNAUTHORIZED)
    again = await client.delete(f"/api/me/api-keys/{new['key_id']}", headers=headers)
    assert_error(again, 404, ErrorCode.NOT_FOUND)
    long_label = await client.post("/api/me/api-keys", json={"label": "x" * 101}, headers=headers)
    assert_error(long_label, 422, ErrorCode.INVALID)


# --- users ----------------------------------------------------------------------------------


async def test_user_management(world: World) -> None:
    client = world.client
    broker_headers = world.headers[Role.BROKER]
    body = {
        "username": fresh_name("newbie"),
        "password": PASSWORD,
        "role": "investor",
        "customer_id": world.customer_id,
    }
    created = await client.post("/api/users", json=body, headers=broker_headers)
    assert created.status_code == 201, created.text
    user = created.json()
    assert set(user) == {
        "id",
        "username",
        "role",
        "customer_id",
        "totp_enabled",
        "disabled",
        "locked",
        "created_at",
    }
    assert user["role"] == "investor" and not user["disabled"] and not user["locked"]
    duplicate = await client.post(
        "/api/users", json={**body, "username": body["username"].upper()}, headers=broker_headers
    )
    assert_error(duplicate, 422, ErrorCode.DUPLICATE)
    weak = await client.post(
        "/api/users",
        json={**body, "username": fresh_name(), "password": "password"},
        headers=broker_headers,
    )
    assert_error(weak, 422, ErrorCode.INVALID)
    bad_role = await client.post(
        "/api/users", json={**body, "username": fresh_name(), "role": "god"}, headers=broker_headers
    )
    assert_error(bad_role, 422, ErrorCode.INVALID)
    admin = await client.post(
        "/api/users",
        json={**body, "username": fresh_name(), "role": "admin", "customer_id": None},
        headers=broker_headers,
    )
    assert_error(admin, 403, ErrorCode.FORBIDDEN)  # a broker may not create admins

    # Disabling takes effect at once, for tokens too.
    victim_id, victim_name, victim = await world.new_user(Role.INVESTOR)
    assert (await client.get("/api/me", headers=victim)).status_code == 200
    off = await client.post(f"/api/users/{victim_id}/disable", headers=broker_headers)
    assert off.status_code == 200 and off.json()["disabled"] is True
    assert_error(await client.get("/api/me", headers=victim), 401, ErrorCode.UNAUTHORIZED)
    on = await client.post(f"/api/users/{victim_id}/enable", headers=broker_headers)
    assert on.status_code == 200 and on.json()["disabled"] is False
    # Disabling ended the session: its access token stays refused; a new login works.
    assert_error(await client.get("/api/me", headers=victim), 401, ErrorCode.UNAUTHORIZED)
    async with world.client_from() as fresh:
        again = await token_request(fresh, victim_name)
        assert again.status_code == 200, again.text

    me = world.user_ids[Role.BROKER]
    assert_error(
        await client.post(f"/api/users/{me}/disable", headers=broker_headers),
        422,
        ErrorCode.INVALID,
    )
    admin_id = world.user_ids[Role.ADMIN]
    assert_error(
        await client.post(f"/api/users/{admin_id}/disable", headers=broker_headers),
        403,
        ErrorCode.FORBIDDEN,
    )
    assert_error(
        await client.post("/api/users/no-such-user/disable", headers=broker_headers),
        404,
        ErrorCode.NOT_FOUND,
    )
    listed = (await client.get("/api/users", headers=broker_headers)).json()
    assert user["id"] in {u["id"] for u in listed}


# --- customers, accounts and money ----------------------------------------------------------


async def test_customer_account_and_money(world: World) -> None:
    client = world.client
    staff = world.headers[Role.BROKER]
    created = await client.post(
        "/api/customers", json={"name": "Ada Lovelace", "email": "ada@example.com"}, headers=staff
    )
    assert created.status_code == 201, created.text
    customer = created.json()
    assert customer["kyc_status"] == "pending" and customer["account_ids"] == []
    cid = customer["id"]
    bad_email = await client.post(
        "/api/customers", json={"name": "X", "email": "not-an-email"}, headers=staff
    )
    assert_error(bad_email, 422, ErrorCode.INVALID)

    kyc = await client.post(
        f"/api/customers/{cid}/kyc", json={"status": "approved", "note": "ok"}, headers=staff
    )
    assert kyc.status_code == 200 and kyc.json()["kyc_status"] == "approved"
    assert kyc.json()["kyc_note"] == "ok"
    bad_kyc = await client.post(
        f"/api/customers/{cid}/kyc", json={"status": "maybe"}, headers=staff
    )
    assert_error(bad_kyc, 422, ErrorCode.INVALID)
    missing = await client.post(
        "/api/customers/nope/kyc", json={"status": "approved"}, headers=staff
    )
    assert_error(missing, 404, ErrorCode.NOT_FOUND)

    opened = await client.post(
        f"/api/customers/{cid}/accounts", json={"account_type": "margin"}, headers=staff
    )
    assert opened.status_code == 201, opened.text
    account = opened.json()
    assert account["account_type"] == "margin" and account["kyc_status"] == "approved"
    assert account["cash"] == "0.00" and account["equity"] == "0.00"
    aid = account["id"]
    listed = (await client.get("/api/customers", headers=staff, params={"limit": 1000})).json()
    assert next(c for c in listed if c["id"] == cid)["account_ids"] == [aid]

    deposit = await client.post(
        f"/api/accounts/{aid}/deposits", json={"amount": "1000.10"}, headers=staff
    )
    assert deposit.status_code == 201, deposit.text
    assert deposit.json()["kind"] == "deposit" and deposit.json()["amount"] == "1000.10"
    assert deposit.json()["cash"] == "1000.10" and deposit.json()["id"]
    as_number = await client.post(
        f"/api/accounts/{aid}/deposits", json={"amount": 12.5}, headers=staff
    )
    assert as_number.status_code == 201 and as_number.json()["cash"] == "1012.60"
    trailing_zero = await client.post(
        f"/api/accounts/{aid}/deposits", json={"amount": "1.100"}, headers=staff
    )
    assert trailing_zero.status_code == 201 and trailing_zero.json()["amount"] == "1.10"
    for amount in ("1.001", "0", "-5", "10000000.01", "NaN", "abc", 0.001):
        response = await client.post(
            f"/api/accounts/{aid}/deposits", json={"amount": amount}, headers=staff
        )
        assert_error(response, 422, ErrorCode.INVALID)
    biggest = await client.post(
        f"/api/accounts/{aid}/deposits", json={"amount": "10000000"}, headers=staff
    )
    assert biggest.status_code == 201

    withdrawal = await client.post(
        f"/api/accounts/{aid}/withdrawals", json={"amount": "13.70"}, headers=staff
    )
    assert withdrawal.status_code == 201, withdrawal.text
    assert withdrawal.json()["kind"] == "withdrawal" and withdrawal.json()["amount"] == "13.70"
    assert withdrawal.json()["cash"] == "10001000.00"
    too_much = await client.post(
        f"/api/accounts/{aid}/withdrawals", json={"amount": "10000000"}, headers=staff
    )
    assert too_much.status_code == 201  # exactly what is left minus 1000.00
    overdraw = await client.post(
        f"/api/accounts/{aid}/withdrawals", json={"amount": "1000.01"}, headers=staff
    )
    assert_error(overdraw, 403, 40310000)
    missing_account = await client.post(
        "/api/accounts/nope/deposits", json={"amount": "1"}, headers=staff
    )
    assert_error(missing_account, 404, ErrorCode.NOT_FOUND)

    blocked = await client.post(
        f"/api/accounts/{aid}/trading-block", json={"blocked": True}, headers=staff
    )
    assert blocked.json() == {"account_id": aid, "trading_blocked": True}
    accounts = (
        await client.get("/api/accounts", headers=staff, params={"customer_id": cid})
    ).json()
    assert len(accounts) == 1
    assert accounts[0]["trading_blocked"] is True and accounts[0]["cash"] == "1000.00"
    assert accounts[0]["equity"] == "1000.00" and accounts[0]["account_number"].startswith("TF")


async def test_restricted_list(world: World) -> None:
    client = world.client
    admin = world.headers[Role.ADMIN]
    put = await client.put("/api/admin/restricted/MSFT", json={"reason": "news"}, headers=admin)
    assert put.status_code == 200 and put.json() == {"symbol": "MSFT", "reason": "news"}
    listed = (await client.get("/api/admin/restricted", headers=admin)).json()
    assert {"symbol": "MSFT", "reason": "news"} in listed
    assert world.stack.broker.restricted["MSFT"] == "news"
    assert (await client.delete("/api/admin/restricted/MSFT", headers=admin)).status_code == 204
    assert "MSFT" not in world.stack.broker.restricted
    assert_error(await client.delete("/api/admin/restricted/MSFT", headers=admin), 404, 40410000)
    assert_error(
        await client.put("/api/admin/restricted/ZZZZ", json={}, headers=admin),
        404,
        ErrorCode.ASSET_NOT_FOUND,
    )
    assert_error(
        await client.put("/api/admin/restricted/msft", json={}, headers=admin),
        422,
        ErrorCode.INVALID,
    )


# --- the RBAC matrix ------------------------------------------------------------------------

Request = tuple[str, str, dict[str, Any] | None]  # method, path, JSON body
Prepare = Callable[[World, Role], Awaitable[Request]]


async def _me(world: World, role: Role) -> Request:
    return "GET", "/api/me", None


async def _list_keys(world: World, role: Role) -> Request:
    return "GET", "/api/me/api-keys", None


async def _create_key(world: World, role: Role) -> Request:
    return "POST", "/api/me/api-keys", {"label": "rbac"}


async def _own_key(world: World, role: Role) -> str:
    identity = world.stack.runtime.identity
    key_id, _ = await identity.create_api_key(world.user_ids[role], "rbac")
    return key_id


async def _delete_key(world: World, role: Role) -> Request:
    return "DELETE", f"/api/me/api-keys/{await _own_key(world, role)}", None


async def _rotate_key(world: World, role: Role) -> Request:
    return "POST", f"/api/me/api-keys/{await _own_key(world, role)}/rotate", None


async def _list_users(world: World, role: Role) -> Request:
    return "GET", "/api/users", None


async def _create_user(world: World, role: Role) -> Request:
    body = {
        "username": fresh_name("rbac"),
        "password": PASSWORD,
        "role": "investor",
        "customer_id": world.customer_id,
    }
    return "POST", "/api/users", body


async def _investor_id(world: World) -> str:
    user_id, _, _ = await world.new_user(Role.INVESTOR)
    return user_id


async def _disable_user(world: World, role: Role) -> Request:
    return "POST", f"/api/users/{await _investor_id(world)}/disable", None


async def _enable_user(world: World, role: Role) -> Request:
    return "POST", f"/api/users/{await _investor_id(world)}/enable", None


async def _reset_totp(world: World, role: Role) -> Request:
    return "POST", f"/api/users/{await _investor_id(world)}/totp/reset", None


async def _create_customer(world: World, role: Role) -> Request:
    return "POST", "/api/customers", {"name": "Grace Hopper", "email": "grace@example.com"}


async def _list_customers(world: World, role: Role) -> Request:
    return "GET", "/api/customers", None


async def _kyc(world: World, role: Role) -> Request:
    customer = await world.stack.broker.create_customer("K", "k@example.com")
    return "POST", f"/api/customers/{customer}/kyc", {"status": "approved", "note": ""}


async def _open_account(world: World, role: Role) -> Request:
    customer = await world.stack.broker.create_customer("A", "a@example.com")
    return "POST", f"/api/customers/{customer}/accounts", {"account_type": "cash"}


async def _list_accounts(world: World, role: Role) -> Request:
    return "GET", "/api/accounts", None


async def _deposit(world: World, role: Role) -> Request:
    account = await world.stack.funded_account(0)
    return "POST", f"/api/accounts/{account}/deposits", {"amount": "5.00"}


async def _withdraw(world: World, role: Role) -> Request:
    account = await world.stack.funded_account(1_000)
    return "POST", f"/api/accounts/{account}/withdrawals", {"amount": "5.00"}


async def _trading_block(world: World, role: Role) -> Request:
    account = await world.stack.funded_account(0)
    return "POST", f"/api/accounts/{account}/trading-block", {"blocked": True}


async def _list_restricted(world: World, role: Role) -> Request:
    return "GET", "/api/admin/restricted", None


async def _restrict(world: World, role: Role) -> Request:
    return "PUT", "/api/admin/restricted/AAPL", {"reason": "rbac"}


async def _unrestrict(world: World, role: Role) -> Request:
    await world.stack.broker.set_restricted("AAPL", True, "rbac")
    return "DELETE", "/api/admin/restricted/AAPL", None


async def _venue_instruments(world: World, role: Role) -> Request:
    return "GET", "/api/admin/venue/instruments", None


async def _venue_instrument(world: World, role: Role) -> Request:
    return "GET", "/api/admin/venue/instruments/AAPL", None


async def _venue_halt(world: World, role: Role) -> Request:
    await world.stack.venue.submit(Resume(symbol=RBAC_SYMBOL))  # a no-op when trading
    return "POST", f"/api/admin/venue/instruments/{RBAC_SYMBOL}/halt", {"reason": "rbac"}


async def _venue_resume(world: World, role: Role) -> Request:
    await world.stack.venue.submit(Halt(symbol=RBAC_SYMBOL))
    return "POST", f"/api/admin/venue/instruments/{RBAC_SYMBOL}/resume", None


async def _venue_band(world: World, role: Role) -> Request:
    return "PUT", f"/api/admin/venue/instruments/{RBAC_SYMBOL}/price-band", {"band_bps": 500}


async def _venue_members(world: World, role: Role) -> Request:
    return "GET", "/api/admin/venue/members", None


async def _venue_kill_switch(world: World, role: Role) -> Request:
    await world.stack.venue.submit(Resume(symbol=RBAC_SYMBOL))  # a no-op when trading
    await world.stack.counterparty(RBAC_SYMBOL, Side.BUY, 100, 1, member="RBACMM")
    return "PUT", "/api/admin/venue/members/RBACMM/kill-switch", {"active": True}


async def _actions(world: World, role: Role) -> Request:
    return "GET", "/api/admin/actions?kind=cash.deposit&limit=5", None


async def _order_events(world: World, role: Role) -> Request:
    return "GET", "/api/admin/order-events?actor=system", None


async def _order_history(world: World, role: Role) -> Request:
    order = await world.stack.broker.submit_order(
        world.account_id,
        OrderRequest(symbol="MSFT", side="buy", qty=1, order_type="limit", limit_price=100),
    )
    return "GET", f"/api/admin/orders/{order.id}/history", None


#: Every authenticated native route: (name, the permission it needs or None, preparation).
ROUTES: list[tuple[str, Permission | None, Prepare]] = [
    ("GET /api/me", None, _me),
    ("GET /api/me/api-keys", Permission.MANAGE_API_KEYS, _list_keys),
    ("POST /api/me/api-keys", Permission.MANAGE_API_KEYS, _create_key),
    ("DELETE /api/me/api-keys/{id}", Permission.MANAGE_API_KEYS, _delete_key),
    ("POST /api/me/api-keys/{id}/rotate", Permission.MANAGE_API_KEYS, _rotate_key),
    ("GET /api/users", Permission.MANAGE_USERS, _list_users),
    ("POST /api/users", Permission.MANAGE_USERS, _create_user),
    ("POST /api/users/{id}/disable", Permission.MANAGE_USERS, _disable_user),
    ("POST /api/users/{id}/enable", Permission.MANAGE_USERS, _enable_user),
    ("POST /api/users/{id}/totp/reset", Permission.MANAGE_USERS, _reset_totp),
    ("POST /api/customers", Permission.MANAGE_CUSTOMERS, _create_customer),
    ("GET /api/customers", Permission.MANAGE_CUSTOMERS, _list_customers),
    ("POST /api/customers/{id}/kyc", Permission.MANAGE_CUSTOMERS, _kyc),
    ("POST /api/customers/{id}/accounts", Permission.MANAGE_CUSTOMERS, _open_account),
    ("GET /api/accounts", Permission.VIEW_ALL_ACCOUNTS, _list_accounts),
    ("POST /api/accounts/{id}/deposits", Permission.MANAGE_CUSTOMERS, _deposit),
    ("POST /api/accounts/{id}/withdrawals", Permission.MANAGE_CUSTOMERS, _withdraw),
    ("POST /api/accounts/{id}/trading-block", Permission.MANAGE_CUSTOMERS, _trading_block),
    ("GET /api/admin/restricted", Permission.ADMIN_VENUE, _list_restricted),
    ("PUT /api/admin/restricted/{symbol}", Permission.ADMIN_VENUE, _restrict),
    ("DELETE /api/admin/restricted/{symbol}", Permission.ADMIN_VENUE, _unrestrict),
    ("GET /api/admin/venue/instruments", Permission.ADMIN_VENUE, _venue_instruments),
    ("GET /api/admin/venue/instruments/{symbol}", Permission.ADMIN_VENUE, _venue_instrument),
    ("POST /api/admin/venue/instruments/{symbol}/halt", Permission.ADMIN_VENUE, _venue_halt),
    ("POST /api/admin/venue/instruments/{symbol}/resume", Permission.ADMIN_VENUE, _venue_resume),
    ("PUT /api/admin/venue/instruments/{symbol}/price-band", Permission.ADMIN_VENUE, _venue_band),
    ("GET /api/admin/venue/members", Permission.ADMIN_VENUE, _venue_members),
    ("PUT /api/admin/venue/members/{id}/kill-switch", Permission.ADMIN_VENUE, _venue_kill_switch),
    ("GET /api/admin/actions", Permission.VIEW_AUDIT, _actions),
    ("GET /api/admin/order-events", Permission.VIEW_AUDIT, _order_events),
    ("GET /api/admin/orders/{id}/history", Permission.VIEW_AUDIT, _order_history),
]


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
@pytest.mark.parametrize(
    ("route", "permission", "prepare"), ROUTES, ids=[name for name, _, _ in ROUTES]
)
async def test_rbac(
    world: World, route: str, permission: Permission | None, prepare: Prepare, role: Role
) -> None:
    method, path, body = await prepare(world, role)
    response = await world.client.request(method, path, json=body, headers=world.headers[role])
    if permission is None or permission in PERMISSIONS[role]:
        assert 200 <= response.status_code < 300, (route, role, response.text)
    else:
        assert_error(response, 403, ErrorCode.FORBIDDEN)


async def test_rbac_matrix_covers_every_protected_route(world: World) -> None:
    """Every native route either needs no principal (the auth flows) or is in ROUTES."""
    public = {
        "POST /api/auth/token",
        "POST /api/auth/refresh",
        "POST /api/auth/logout",
        "POST /api/auth/totp/enrol",
        "POST /api/auth/totp/confirm",
    }
    native = {
        f"{method.upper()} {path}"
        for path, operations in world.stack.app.openapi()["paths"].items()
        if path.startswith("/api/")
        for method in operations
    }
    named = {
        name.replace("{id}/", "{x}/").replace("{id}", "{x}").replace("{symbol}", "{x}")
        for name, _, _ in ROUTES
    }
    normalised = set()
    for entry in native - public:
        method, path = entry.split(" ")
        parts = ["{x}" if p.startswith("{") else p for p in path.split("/")]
        normalised.add(f"{method} {'/'.join(parts)}")
    assert normalised == named


async def test_openapi_documents_every_native_route(world: World) -> None:
    schema = world.stack.app.openapi()
    for path, operations in schema["paths"].items():
        if path.startswith("/api/"):
            for operation in operations.values():
                assert operation.get("summary"), path
