"""The investor role in a real browser: read-only. It sees quotes, the depth and its account,
and the ticket refuses to send (disabled, with a message saying why); no order controls."""

from __future__ import annotations

from playwright.sync_api import Page, Request, expect

from .helpers import BrokerRest, fill_ticket, ladder_row, log_in, pick_symbol


def test_investor_sees_quotes_and_account_but_cannot_trade(page: Page, server: BrokerRest) -> None:
    investor = server.trader("olga", role="investor")
    maker = server.trader("maker")
    server.order(
        server.token(maker.username, maker.password),
        symbol="AAPL",
        side="buy",
        qty="10",
        type="limit",
        limit_price="189.50",
        time_in_force="day",
    )
    sent: list[str] = []

    def on_request(request: Request) -> None:
        if request.url.endswith("/v2/orders") and request.method == "POST":
            sent.append(request.url)

    page.on("request", on_request)
    log_in(page, investor.username, investor.password)
    expect(page.get_by_test_id("who")).to_contain_text("investor")

    # quotes: the watchlist and the depth of AAPL show the resting bid
    row = page.locator("[data-testid=watchlist-row][data-symbol=AAPL]")
    expect(row.locator("td").nth(1)).to_have_text("189.50")
    pick_symbol(page, "AAPL")
    expect(ladder_row(page, "bid", "189.50")).to_have_attribute("data-size", "10")

    # the account: header summary and the Account tab
    expect(page.get_by_test_id("sum-equity")).to_have_text("50,000.00")
    expect(page.get_by_test_id("sum-buying-power")).to_have_text("50,000.00")
    page.get_by_test_id("tab-account").click()
    expect(page.get_by_test_id("account-details")).to_contain_text("Buying power")

    # the ticket: disabled, says why, and Enter in a field sends nothing either
    submit = page.get_by_test_id("ticket-submit")
    expect(submit).to_be_disabled()
    expect(page.get_by_test_id("ticket-message")).to_contain_text("cannot place orders")
    fill_ticket(page, side="buy", qty="10", limit="189.00")
    page.get_by_test_id("ticket-qty").press("Enter")
    page.wait_for_timeout(300)
    assert sent == []
    expect(page.get_by_test_id("cancel-all")).to_be_disabled()
    expect(page.get_by_test_id("order-cancel")).to_have_count(0)

    # the broker agrees: an investor's order is refused
    answer = server.http.post(
        "/v2/orders",
        json={
            "symbol": "AAPL",
            "side": "buy",
            "qty": "1",
            "type": "market",
            "time_in_force": "day",
        },
        headers=server.token(investor.username, investor.password),
    )
    assert answer.status_code == 403, answer.text
