"""REST set-up for the web terminal tests (users, funded accounts, counterparty orders) and
page actions shared by the tests (log in, pick a symbol, fill the order ticket)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx
import zxingcpp
from playwright.sync_api import Locator, Page, expect

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "Trader-pass-123"
_names = itertools.count(1)


@dataclass(frozen=True)
class Trader:
    username: str
    password: str
    account_id: str
    customer_id: str


class BrokerRest:
    """The broker's REST API as the admin user (httpx, synchronous)."""

    def __init__(self, base_url: str, admin_password: str) -> None:
        self.base_url = base_url
        self.admin_password = admin_password
        self.http = httpx.Client(base_url=base_url, timeout=10)
        self._admin: dict[str, str] | None = None

    def close(self) -> None:
        self.http.close()

    def check(self, response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, f"{response.request.url}: {response.text}"
        return response.json() if response.content else None

    def token(self, username: str, password: str, totp: str | None = None) -> dict[str, str]:
        form = {"username": username, "password": password, "grant_type": "password"}
        if totp:
            form["totp"] = totp
        answer = self.check(self.http.post("/api/auth/token", data=form))
        return {"Authorization": f"Bearer {answer['access_token']}"}

    @property
    def admin(self) -> dict[str, str]:
        if self._admin is None:
            self._admin = self.token("admin", self.admin_password)
        return self._admin

    def as_admin(self, path: str, body: dict[str, Any], status: int = 200) -> Any:
        """POST ``body`` to ``path`` with the admin's token; the answer's JSON."""
        return self.check(self.http.post(path, json=body, headers=self.admin), status)

    def customer(self, name: str, *, kyc: str | None = "approved") -> str:
        """A new customer's id, with its KYC decided (``None`` leaves it pending)."""
        email = f"{name.lower().replace(' ', '.')}@example.com"
        cid: str = self.as_admin("/api/customers", {"name": name, "email": email}, 201)["id"]
        if kyc is not None:
            self.as_admin(f"/api/customers/{cid}/kyc", {"status": kyc})
        return cid

    def trader(
        self,
        prefix: str = "trader",
        *,
        deposit: str = "50000",
        account_type: str = "cash",
        role: str = "trader",
    ) -> Trader:
        """A KYC-approved customer with a funded account and a user of ``role`` (a trader by
        default; deposits stay below $100,000, above which TOTP enrolment is required; a margin
        account may sell short)."""
        username = f"{prefix}{next(_names)}"
        cid = self.customer(f"Customer {username}")
        account = self.as_admin(
            f"/api/customers/{cid}/accounts", {"account_type": account_type}, 201
        )
        self.as_admin(f"/api/accounts/{account['id']}/deposits", {"amount": deposit}, 201)
        user = {"username": username, "password": PASSWORD, "role": role, "customer_id": cid}
        self.as_admin("/api/users", user, 201)
        return Trader(username, PASSWORD, account["id"], cid)

    def order(self, headers: dict[str, str], **body: Any) -> dict[str, Any]:
        """Place an order as the user of ``headers``; it must not be refused."""
        answer: dict[str, Any] = self.check(
            self.http.post("/v2/orders", json=body, headers=headers)
        )
        assert answer["status"] not in ("rejected", "canceled"), answer
        return answer


# --- page actions ------------------------------------------------------------------------------


def log_in(page: Page, username: str, password: str) -> None:
    """Open the terminal and log in; waits for the trader view."""
    page.goto("/")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("who")).to_contain_text(username)


def pick_symbol(page: Page, symbol: str) -> None:
    page.locator(f'[data-testid=watchlist-row][data-symbol="{symbol}"]').click()
    expect(page.locator("#ladder-symbol")).to_have_text(symbol)


def fill_ticket(
    page: Page, *, side: str, qty: str, type_: str = "limit", limit: str | None = None
) -> None:
    page.get_by_test_id(f"ticket-side-{side}").click()
    page.get_by_test_id("ticket-type").select_option(type_)
    page.get_by_test_id("ticket-qty").fill(qty)
    if limit is not None:
        page.get_by_test_id("ticket-limit").fill(limit)


def ladder_row(page: Page, side: str, price: str) -> Any:
    return page.locator(f'[data-testid=ladder-{side}-row][data-price="{price}"]')


def read_qr(page: Page, image: Locator) -> list[str]:
    """The texts of the QR codes in ``image`` (an <img> on the page) as a reader sees them: the
    browser draws the image at its natural size on a canvas, and zxing-cpp decodes the pixels."""
    expect(image).to_be_visible()
    width, height, grey = image.evaluate(
        """(img) => {
            const canvas = document.createElement("canvas");
            canvas.width = img.naturalWidth;
            canvas.height = img.naturalHeight;
            const ctx = canvas.getContext("2d");
            ctx.fillStyle = "#fff";
            ctx.fillRect(0, 0, canvas.width, canvas.height);
            ctx.drawImage(img, 0, 0);
            const rgba = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
            const grey = [];
            for (let i = 0; i < rgba.length; i += 4) grey.push(rgba[i]);
            return [canvas.width, canvas.height, grey];
        }"""
    )
    pixels = memoryview(bytes(grey)).cast("B", shape=[height, width])
    return [result.text for result in zxingcpp.read_barcodes(pixels)]
