"""Logging in through the page: bad credentials, the TOTP code prompt, enrolment when the
account requires it, session restore on reload, token refresh after a 401, and logout."""

from __future__ import annotations

import time

import pyotp
from playwright.sync_api import Page, expect

from .helpers import BrokerRest, log_in, read_qr


def test_bad_password_shows_the_servers_message(page: Page, server: BrokerRest) -> None:
    trader = server.trader("erin")
    page.goto("/")
    page.get_by_test_id("login-username").fill(trader.username)
    page.get_by_test_id("login-password").fill("Wrong-pass-999")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-message")).to_contain_text("(40110000)")
    expect(page.locator("#app-view")).to_be_hidden()


def test_totp_login_asks_for_the_code(page: Page, server: BrokerRest) -> None:
    trader = server.trader("frank")
    credentials = {"username": trader.username, "password": trader.password}
    secret = server.check(server.http.post("/api/auth/totp/enrol", json=credentials))["secret"]
    totp = pyotp.TOTP(secret)
    now = time.time()
    server.check(
        server.http.post("/api/auth/totp/confirm", json={**credentials, "code": totp.at(now)})
    )

    page.goto("/")
    page.get_by_test_id("login-username").fill(trader.username)
    page.get_by_test_id("login-password").fill(trader.password)
    page.get_by_test_id("login-submit").click()
    code = page.get_by_test_id("login-totp")
    expect(code).to_be_visible()
    expect(page.get_by_test_id("login-message")).to_contain_text("6-digit code")
    expect(page.locator("#app-view")).to_be_hidden()

    code.fill("12345")  # five digits: refused by the page
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-message")).to_contain_text("Enter the 6-digit code")

    code.fill(totp.at(now + 30))  # the confirm used this step's code; each code works once
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("who")).to_contain_text(trader.username)
    expect(page.get_by_test_id("sum-equity")).to_have_text("50,000.00")


def test_enrolment_required_above_the_threshold(page: Page, server: BrokerRest) -> None:
    rich = server.trader("grace", deposit="150000")  # equity above $100,000 requires TOTP
    page.goto("/")
    page.get_by_test_id("login-username").fill(rich.username)
    page.get_by_test_id("login-password").fill(rich.password)
    page.get_by_test_id("login-submit").click()
    enrol = page.get_by_test_id("totp-enrol")
    expect(enrol).to_be_visible()
    secret = page.get_by_test_id("totp-secret").inner_text().replace(" ", "")
    totp = pyotp.TOTP(secret)
    # the QR code the page shows reads (zxing-cpp, from the pixels Chromium drew) as the
    # otpauth URI of this secret
    uri = page.locator("#enrol-uri").get_attribute("href")
    assert uri == totp.provisioning_uri(name=rich.username, issuer_name="tradingfloor")
    assert read_qr(page, page.get_by_test_id("totp-qr")) == [uri]
    now = time.time()
    page.get_by_test_id("totp-code").fill(totp.at(now))
    page.get_by_test_id("totp-confirm").click()
    expect(page.get_by_test_id("login-message")).to_contain_text("Two-factor authentication is on")
    page.get_by_test_id("login-totp").fill(totp.at(now + 30))
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("who")).to_contain_text(rich.username)


def test_reload_refresh_and_logout(page: Page, server: BrokerRest) -> None:
    trader = server.trader("heidi")
    log_in(page, trader.username, trader.password)
    page.reload()
    expect(page.get_by_test_id("who")).to_contain_text(trader.username)
    # a spoiled access token: the first request answers 401, the page refreshes and retries
    page.evaluate(
        """() => {
            const s = JSON.parse(sessionStorage.getItem("tradingfloor.session"));
            s.access = "spoiled";
            sessionStorage.setItem("tradingfloor.session", JSON.stringify(s));
        }"""
    )
    page.reload()
    expect(page.get_by_test_id("who")).to_contain_text(trader.username)
    expect(page.get_by_test_id("sum-equity")).to_have_text("50,000.00")
    token = page.evaluate('() => JSON.parse(sessionStorage.getItem("tradingfloor.session")).access')
    assert token != "spoiled"
    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("login-form")).to_be_visible()
    expect(page.get_by_test_id("login-message")).to_contain_text("logged out")
    page.reload()
    expect(page.get_by_test_id("login-form")).to_be_visible()


def test_logout_while_a_refresh_is_on_its_way_ends_the_session(
    page: Page, server: BrokerRest
) -> None:
    """The refresh's answer arrives after the logout: it must not bring the session back, and
    the refresh token it carries is revoked."""
    trader = server.trader("ivy")
    log_in(page, trader.username, trader.password)
    result = page.evaluate(
        """async () => {
            const api = await import("/web/js/api.js");
            const realFetch = window.fetch;
            let release;
            const gate = new Promise((resolve) => (release = resolve));
            const logouts = [];
            let rotated = null;
            window.fetch = async (url, init) => {
                const answer = realFetch(url, init);
                if (String(url).endsWith("/api/auth/logout")) logouts.push(answer);
                const res = await answer;
                if (String(url).endsWith("/api/auth/refresh")) {
                    rotated = (await res.clone().json()).refresh_token;
                    await gate; // answered by the server, held back from the page
                }
                return res;
            };
            try {
                const refreshing = api.refresh().then(() => "refreshed", (exc) => exc.message);
                while (rotated === null) await new Promise((r) => setTimeout(r, 20));
                await api.logout();
                release();
                const outcome = await refreshing;
                await Promise.all(logouts);
                return {
                    outcome,
                    loggedIn: api.loggedIn(),
                    saved: sessionStorage.getItem("tradingfloor.session"),
                    rotated,
                    logouts: logouts.length,
                };
            } finally {
                window.fetch = realFetch;
            }
        }"""
    )
    rotated = result.pop("rotated")
    assert result == {
        "outcome": "the session ended",
        "loggedIn": False,
        "saved": None,
        "logouts": 2,  # the logout, and the revocation of the refresh's answer
    }
    refused = server.http.post("/api/auth/refresh", json={"refresh_token": rotated})
    assert refused.status_code == 401, refused.text
    page.reload()
    expect(page.get_by_test_id("login-form")).to_be_visible()
