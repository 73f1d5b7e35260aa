"""A broker customer made the way an operator makes one: through the broker's native HTTP API.

``api_customer`` logs in as ``admin``, creates an approved customer with a cash account, funds
it, creates a trader user for it and an API key, and returns the key's Alpaca headers and the
account id. ``extra_deposit`` is booked after the key exists: a large equity needs TOTP at login.
"""

from __future__ import annotations

import httpx

__all__ = ["api_customer"]


async def api_customer(
    http: httpx.AsyncClient,
    admin_password: str,
    *,
    username: str = "trader1",
    password: str = "Lovelace-1815",
    deposit: str = "5000",
    extra_deposit: str | None = None,
) -> tuple[dict[str, str], str]:
    form = {"username": "admin", "password": admin_password}
    token = (await http.post("/api/auth/token", data=form)).json()["access_token"]
    admin = {"Authorization": f"Bearer {token}"}
    customer = (
        await http.post("/api/customers", json={"name": "Ada", "email": "a@x.test"}, headers=admin)
    ).json()
    kyc = {"status": "approved"}
    await http.post(f"/api/customers/{customer['id']}/kyc", json=kyc, headers=admin)
    account = (
        await http.post(
            f"/api/customers/{customer['id']}/accounts",
            json={"account_type": "cash"},
            headers=admin,
        )
    ).json()
    deposits = f"/api/accounts/{account['id']}/deposits"
    funded = await http.post(deposits, json={"amount": deposit}, headers=admin)
    assert funded.status_code == 201, funded.text
    user = {"username": username, "password": password, "role": "trader"}
    user["customer_id"] = customer["id"]
    assert (await http.post("/api/users", json=user, headers=admin)).status_code == 201
    login = (
        await http.post("/api/auth/token", data={"username": username, "password": password})
    ).json()
    assert "access_token" in login, login
    key = (
        await http.post(
            "/api/me/api-keys",
            json={"label": "t"},
            headers={"Authorization": f"Bearer {login['access_token']}"},
        )
    ).json()
    if extra_deposit is not None:
        funded = await http.post(deposits, json={"amount": extra_deposit}, headers=admin)
        assert funded.status_code == 201, funded.text
    alpaca = {"APCA-API-KEY-ID": key["key_id"], "APCA-API-SECRET-KEY": key["secret"]}
    return alpaca, account["id"]
