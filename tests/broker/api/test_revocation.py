"""Revocation takes effect at once, over HTTP: after logout, and after a refresh-token reuse
ends a session, the session's access tokens are refused on the very next request (native and
Alpaca routes), also after a restart; a revoked API key is refused at once too. On SQLite and
PostgreSQL (the start-up query that reloads ended sessions runs on both)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tradingfloor.broker.errors import ErrorCode
from tradingfloor.broker.identity.roles import Role

from ..stack import PASSWORD, broker_stack


def bearer(pair: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


async def log_in(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await client.post(
        "/api/auth/token",
        data={"username": username, "password": PASSWORD, "grant_type": "password"},
    )
    assert response.status_code == 200, response.text
    pair: dict[str, str] = response.json()
    return pair


async def assert_refused(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    for path in ("/api/me", "/v2/account", "/v2/orders"):
        response = await client.get(path, headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert response.json()["code"] == ErrorCode.UNAUTHORIZED


async def assert_accepted(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    for path in ("/api/me", "/v2/account", "/v2/orders"):
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)


async def test_logout_and_refresh_reuse_end_access_tokens_at_once(
    tmp_path: Path, db_url: str | None
) -> None:
    async with broker_stack(tmp_path, db_url=db_url) as stack:
        account = await stack.funded_account()
        username, _ = await stack.user(Role.TRADER, account_id=account)
        async with stack.client() as client:
            out = await log_in(client, username)
            stolen = await log_in(client, username)
            kept = await log_in(client, username)
            for pair in (out, stolen, kept):
                await assert_accepted(client, bearer(pair))

            response = await client.post(
                "/api/auth/logout", json={"refresh_token": out["refresh_token"]}
            )
            assert response.status_code == 204
            await assert_refused(client, bearer(out))

            rotated = await client.post(
                "/api/auth/refresh", json={"refresh_token": stolen["refresh_token"]}
            )
            assert rotated.status_code == 200, rotated.text
            await assert_accepted(client, bearer(rotated.json()))
            reused = await client.post(
                "/api/auth/refresh", json={"refresh_token": stolen["refresh_token"]}
            )
            assert reused.status_code == 401
            await assert_refused(client, bearer(stolen))
            await assert_refused(client, bearer(rotated.json()))  # the whole family ended

            await assert_accepted(client, bearer(kept))  # another session of the same user

    async with broker_stack(tmp_path, db_url=db_url) as stack, stack.client() as client:
        await assert_refused(client, bearer(out))
        await assert_refused(client, bearer(rotated.json()))
        await assert_accepted(client, bearer(kept))


async def test_revoked_api_key_is_refused_at_once(tmp_path: Path) -> None:
    async with broker_stack(tmp_path) as stack:
        account = await stack.funded_account()
        username, _ = await stack.user(Role.TRADER, account_id=account)
        async with stack.client() as client:
            session = bearer(await log_in(client, username))
            created = await client.post("/api/me/api-keys", json={"label": "bot"}, headers=session)
            assert created.status_code == 201, created.text
            key = created.json()
            pair = {"APCA-API-KEY-ID": key["key_id"], "APCA-API-SECRET-KEY": key["secret"]}
            await assert_accepted(client, pair)
            revoked = await client.delete(f"/api/me/api-keys/{key['key_id']}", headers=session)
            assert revoked.status_code == 204
            await assert_refused(client, pair)
    async with broker_stack(tmp_path) as stack, stack.client() as client:
        await assert_refused(client, pair)
