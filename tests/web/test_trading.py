"""The trader view in a real browser: a resting order in the ladder and open orders, a crossing
order filled into a position, cancel and replace from the orders table, and the ticket's
client-side and server-side error messages."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from .helpers import BrokerRest, fill_ticket, ladder_row, log_in, pick_symbol


def test_resting_order_then_crossing_fill(page: Page, server: BrokerRest, artifacts: Path) -> None:
    trader = server.trader("alice")
    maker = server.trader("maker", account_type="margin")  # sells short
    log_in(page, trader.username, trader.password)
    expect(page.get_by_test_id("sum-equity")).to_have_text("50,000.00")
    pick_symbol(page, "AAPL")

    # a limit buy that rests: nobody sells at 189.50
    fill_ticket(page, side="buy", qty="10", limit="189.50")
    page.get_by_test_id("ticket-submit").click()
    expect(page.get_by_test_id("ticket-message")).to_contain_text("buy 10 AAPL limit @ 189.50")
    bid = ladder_row(page, "bid", "189.50")
    expect(bid).to_have_attribute("data-size", "10")
    expect(bid).to_have_class("bid own")  # marked as the caller's own order
    expect(bid.locator("td.mine")).to_have_text("10")
    resting = page.locator("[data-testid=order-row][data-symbol=AAPL]")
    expect(resting).to_have_count(1)
    expect(resting).to_have_attribute("data-status", "new")
    expect(resting).to_contain_text("189.50")
    expect(page.locator("[data-testid=position-row]")).to_have_count(0)

    # the counterparty offers 5 at 190.00 through the API; the ladder shows the new ask
    server.order(
        server.token(maker.username, maker.password),
        symbol="AAPL",
        side="sell",
        qty="5",
        type="limit",
        limit_price="190.00",
        time_in_force="day",
    )
    expect(ladder_row(page, "ask", "190.00")).to_have_attribute("data-size", "5")

    # a crossing buy through the page takes it
    fill_ticket(page, side="buy", qty="5", limit="190.00")
    page.get_by_test_id("ticket-submit").click()
    position = page.locator("[data-testid=position-row][data-symbol=AAPL]")
    expect(position).to_have_attribute("data-qty", "5")
    expect(position).to_contain_text("190")
    expect(ladder_row(page, "ask", "190.00")).to_have_count(0)
    expect(page.locator("[data-testid=tape-row][data-price='190.00']").first).to_have_attribute(
        "data-size", "5"
    )
    # the resting order is still open; the filled one is not
    expect(page.locator("[data-testid=order-row]")).to_have_count(1)
    expect(page.get_by_test_id("chart")).to_have_attribute("data-bars", "1")

    page.get_by_test_id("tab-activities").click()
    fill = page.locator("[data-testid=activity-row][data-type=FILL]")
    expect(fill).to_have_count(1)
    expect(fill).to_contain_text("190.00")

    shot = artifacts / "terminal-fill.png"
    page.get_by_test_id("tab-positions").click()
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000


def test_cancel_and_replace_from_the_orders_table(page: Page, server: BrokerRest) -> None:
    trader = server.trader("carol", account_type="margin")
    server.order(
        server.token(trader.username, trader.password),
        symbol="MSFT",
        side="sell",
        qty="20",
        type="limit",
        limit_price="430.00",
        time_in_force="gtc",
    )
    log_in(page, trader.username, trader.password)
    pick_symbol(page, "MSFT")
    row = page.locator("[data-testid=order-row][data-symbol=MSFT]")
    expect(row).to_have_attribute("data-status", "new")
    expect(ladder_row(page, "ask", "430.00")).to_have_attribute("data-size", "20")

    # replace: quantity 20 -> 7 and price 430.00 -> 431.00 in the dialog
    row.get_by_test_id("order-replace").click()
    dialog = page.get_by_test_id("replace-dialog")
    expect(dialog).to_be_visible()
    page.get_by_test_id("replace-qty").fill("7")
    page.get_by_test_id("replace-limit").fill("431.005")
    page.get_by_test_id("replace-submit").click()
    expect(page.get_by_test_id("replace-errors")).to_contain_text("multiple of the tick size 0.01")
    page.get_by_test_id("replace-limit").fill("431.00")
    page.get_by_test_id("replace-submit").click()
    expect(dialog).to_be_hidden()
    expect(ladder_row(page, "ask", "431.00")).to_have_attribute("data-size", "7")
    expect(ladder_row(page, "ask", "430.00")).to_have_count(0)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("431.00")

    # cancel
    row.get_by_test_id("order-cancel").click()
    expect(row).to_have_count(0)
    expect(page.get_by_test_id("orders-table")).to_contain_text("No open orders")
    expect(ladder_row(page, "ask", "431.00")).to_have_count(0)
    page.get_by_test_id("orders-tab-recent").click()
    expect(page.locator("[data-testid=order-row][data-status=canceled]")).to_have_count(1)


def test_ticket_validation_messages(page: Page, server: BrokerRest) -> None:
    trader = server.trader("dave")
    log_in(page, trader.username, trader.password)
    pick_symbol(page, "AAPL")
    errors = page.get_by_test_id("ticket-errors")

    # a limit order without a price never leaves the page
    fill_ticket(page, side="buy", qty="10")
    page.get_by_test_id("ticket-limit").fill("")
    page.get_by_test_id("ticket-submit").click()
    expect(errors).to_contain_text("Limit price is required for a limit order.")
    expect(page.get_by_test_id("ticket-limit")).to_have_attribute("aria-invalid", "true")

    # fractional shares and off-tick prices
    fill_ticket(page, side="buy", qty="1.5", limit="189.001")
    page.get_by_test_id("ticket-submit").click()
    expect(errors).to_contain_text("Quantity must be a whole number of shares above zero.")
    expect(errors).to_contain_text("Limit price must be a multiple of the tick size 0.01.")

    # fields follow the type and class: a bracket needs both exits, ordered around the entry
    page.get_by_test_id("ticket-class").select_option("bracket")
    expect(page.get_by_test_id("ticket-tp-limit")).to_be_visible()
    fill_ticket(page, side="buy", qty="10", limit="189.00")
    page.get_by_test_id("ticket-tp-limit").fill("185.00")
    page.get_by_test_id("ticket-submit").click()
    expect(errors).to_contain_text("need both a take-profit limit and a stop-loss stop")
    page.get_by_test_id("ticket-sl-stop").fill("180.00")
    page.get_by_test_id("ticket-submit").click()
    expect(errors).to_contain_text("Take profit must be above the entry limit price.")
    page.get_by_test_id("ticket-class").select_option("simple")
    expect(page.get_by_test_id("ticket-tp-limit")).to_be_hidden()
    page.get_by_test_id("ticket-type").select_option("trailing_stop")
    expect(page.get_by_test_id("ticket-limit")).to_be_hidden()
    expect(page.get_by_test_id("ticket-trail")).to_be_visible()
    page.get_by_test_id("ticket-submit").click()
    expect(errors).to_contain_text("Trail is required for a trailing stop")

    # nothing reached the server so far
    expect(page.get_by_test_id("orders-table")).to_contain_text("No open orders")

    # the server's answer is shown verbatim with its code: 1000 x 190 is above the cash
    fill_ticket(page, side="buy", qty="1000", limit="190.00")
    page.get_by_test_id("ticket-submit").click()
    expect(errors).to_be_empty()
    expect(page.get_by_test_id("ticket-message")).to_contain_text("(40310000)")
    expect(page.get_by_test_id("ticket-message")).to_contain_text("buying power")
    expect(page.get_by_test_id("orders-table")).to_contain_text("No open orders")

    # the venue refuses a price outside its band: the order exists, rejected, with the reason
    fill_ticket(page, side="buy", qty="10", limit="250.00")
    page.get_by_test_id("ticket-submit").click()
    message = page.get_by_test_id("ticket-message")
    expect(message).to_contain_text("Rejected by the venue: price outside the instrument's price")
    page.get_by_test_id("orders-tab-recent").click()
    expect(page.locator("[data-testid=order-row][data-status=rejected]")).to_contain_text("band")


def test_replace_offers_only_what_the_api_accepts(page: Page, server: BrokerRest) -> None:
    """The replace dialog offers the times in force PATCH /v2/orders/{id} accepts for the
    order (a trailing stop has no OPG or CLS) and a trailing stop's trail; a trailing stop's
    quantity alone is not sent (the venue cannot change one in place); what it sends is taken."""
    trader = server.trader("ruth", account_type="margin")
    headers = server.token(trader.username, trader.password)
    maker = server.trader("sam")
    bid = {"symbol": "MSFT", "side": "buy", "qty": "1", "type": "limit", "limit_price": "420.00"}
    server.order(server.token(maker.username, maker.password), **bid, time_in_force="day")
    server.order(
        headers,
        symbol="MSFT",
        side="sell",
        qty="5",
        type="limit",
        limit_price="440.00",
        time_in_force="gtc",
    )
    server.order(
        headers,
        symbol="MSFT",
        side="sell",
        qty="3",
        type="trailing_stop",
        trail_price="5.00",
        time_in_force="day",
    )
    log_in(page, trader.username, trader.password)
    rows = page.locator("[data-testid=order-row][data-symbol=MSFT]")
    limit = rows.filter(has_text="440.00")
    trailing = rows.filter(has_text="trailing_stop")
    expect(limit).to_have_count(1)
    expect(trailing).to_have_count(1)
    dialog = page.get_by_test_id("replace-dialog")
    tif = page.get_by_test_id("replace-tif")
    disabled = "(s) => [...s.options].filter((o) => o.disabled).map((o) => o.value)"

    # a simple limit order may take any TIF: GTC -> DAY is sent and accepted
    limit.get_by_test_id("order-replace").click()
    expect(dialog).to_be_visible()
    expect(tif).to_have_value("gtc")
    assert tif.evaluate(disabled) == []
    tif.select_option("day")
    page.get_by_test_id("replace-submit").click()
    expect(dialog).to_be_hidden()
    expect(rows.filter(has_text="440.00")).to_contain_text("DAY")

    # a trailing stop: no OPG/CLS; its trail is offered; its quantity alone is not sent
    trailing.get_by_test_id("order-replace").click()
    expect(dialog).to_be_visible()
    assert tif.evaluate(disabled) == ["opg", "cls"]
    expect(page.get_by_test_id("replace-trail")).to_have_value("5.00")
    expect(page.get_by_test_id("replace-stop")).to_be_hidden()
    page.get_by_test_id("replace-qty").fill("2")
    page.get_by_test_id("replace-submit").click()
    expect(page.get_by_test_id("replace-errors")).to_contain_text("trail or time in force")
    page.get_by_test_id("replace-trail").fill("6.00")
    page.get_by_test_id("replace-submit").click()
    expect(dialog).to_be_hidden()
    replaced = rows.filter(has_text="trailing_stop")
    expect(replaced).to_have_count(1)
    expect(replaced.locator("td.num").first).to_have_text("2")
    orders = server.check(server.http.get("/v2/orders", headers=headers))
    trail = [o["trail_price"] for o in orders if o["type"] == "trailing_stop"]
    assert trail == ["6.00"]
