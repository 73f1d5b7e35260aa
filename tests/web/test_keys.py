"""The API keys page: a user creates a key in the terminal (the secret shown once, with the
alpaca-py lines for this broker), alpaca-py connects with it, and revoking it in the page stops
it at once; leaving the page takes the secret off the screen."""

from __future__ import annotations

import re
from pathlib import Path

from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from playwright.sync_api import Page, expect

from .helpers import BrokerRest, log_in


def test_create_use_and_revoke_an_api_key(page: Page, server: BrokerRest, artifacts: Path) -> None:
    trader = server.trader("wanda")
    log_in(page, trader.username, trader.password)
    page.get_by_test_id("nav-keys").click()
    view = page.get_by_test_id("keys-view")
    expect(view).to_be_visible()
    expect(page.get_by_test_id("keys-table")).to_contain_text("No API keys yet")

    page.get_by_test_id("key-label").fill("my bot")
    page.get_by_test_id("key-create").click()
    expect(page.get_by_test_id("new-key")).to_be_visible()
    key_id = page.get_by_test_id("new-key-id").inner_text()
    secret = page.get_by_test_id("new-key-secret").inner_text()
    assert re.fullmatch(r"PK[A-Z0-9]{18}", key_id) and re.fullmatch(r"[A-Za-z0-9]{40}", secret)
    snippet = page.get_by_test_id("new-key-snippet").inner_text()
    assert f'TradingClient("{key_id}", "{secret}"' in snippet
    assert f'url_override="{server.base_url}"' in snippet
    row = page.locator(f"[data-testid=key-row][data-key-id={key_id}]")
    expect(row).to_contain_text("my bot")
    expect(row).to_contain_text("200")  # requests a minute: serve's default
    page.screenshot(path=str(artifacts / "terminal-api-keys.png"))

    # the pair works with the official SDK, as the page says
    client = TradingClient(key_id, secret, paper=True, url_override=server.base_url)
    assert client.get_account().cash == "50000.00"

    # leaving the page takes the secret off the screen; the key stays listed
    page.get_by_test_id("nav-trade").click()
    page.get_by_test_id("nav-keys").click()
    expect(page.get_by_test_id("new-key")).to_be_hidden()
    expect(page.get_by_test_id("new-key-secret")).to_have_text("")
    expect(row).to_have_count(1)

    row.get_by_test_id("key-revoke").click()
    page.get_by_test_id("confirm-yes").click()
    expect(row).to_have_count(0)
    expect(page.get_by_test_id("keys-message")).to_contain_text(f"Revoked {key_id}")
    try:
        client.get_account()
        raise AssertionError("a revoked key still works")
    except APIError as exc:
        assert exc.status_code == 401
