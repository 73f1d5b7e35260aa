"""The trader view fits common laptop screens: at 1400x900 and 1280x720 the open orders'
Replace and Cancel buttons and the recent orders' Status column lie inside the orders panel
(bounding boxes), also for a rejected order with a long reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .helpers import BrokerRest, log_in

PANEL = "section.panel.orders"


def inside(page: Page, selector: str) -> None:
    """The element at ``selector`` lies inside the orders panel. Both boxes are measured in one
    step in the page, on the element in the document at that moment (the table is re-rendered
    when orders reload, so a handle taken earlier may already be detached)."""
    box, frame = page.wait_for_function(
        """([selector, panel]) => {
            const node = document.querySelector(selector);
            if (!node || !node.isConnected) return null;
            return [node, node.closest(panel)]
                .map((n) => n.getBoundingClientRect())
                .map((r) => ({x: r.x, y: r.y, width: r.width, height: r.height}));
        }""",
        arg=[selector, PANEL],
    ).json_value()
    assert frame["x"] <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"], (
        selector,
        box,
        frame,
    )
    assert frame["y"] <= box["y"] and box["y"] + box["height"] <= frame["y"] + frame["height"], (
        selector,
        box,
        frame,
    )


def fits(page: Page, selector: str) -> bool:
    """Nothing in the element at ``selector`` overflows it sideways."""
    result: bool = page.wait_for_function(
        """(selector) => {
            const node = document.querySelector(selector);
            return node ? [node.scrollWidth <= node.clientWidth] : null;
        }""",
        arg=selector,
    ).json_value()[0]
    return result


@pytest.mark.parametrize(("width", "height"), [(1400, 900), (1280, 720)])
def test_order_actions_and_status_fit_the_orders_panel(
    page: Page, server: BrokerRest, artifacts: Path, width: int, height: int
) -> None:
    trader = server.trader("lena")
    headers = server.token(trader.username, trader.password)
    server.order(
        headers,
        symbol="AAPL",
        side="buy",
        qty="240",
        type="stop_limit",
        stop_price="199.00",
        limit_price="199.50",
        time_in_force="gtc",
    )
    rejected = server.check(
        server.http.post(
            "/v2/orders",
            json={
                "symbol": "AAPL",
                "side": "buy",
                "qty": "1",
                "type": "limit",
                "limit_price": "250.00",
                "time_in_force": "day",
            },
            headers=headers,
        )
    )
    assert rejected["status"] == "rejected"
    page.set_viewport_size({"width": width, "height": height})
    log_in(page, trader.username, trader.password)
    row = "[data-testid=order-row][data-status=new]"
    expect(page.locator(row)).to_be_visible()
    inside(page, f"{row} [data-testid=order-replace]")
    inside(page, f"{row} [data-testid=order-cancel]")
    assert fits(page, f"{PANEL} .scroll")  # no sideways scrolling

    page.get_by_test_id("orders-tab-recent").click()
    status = "[data-testid=order-row][data-status=rejected] td.status"
    expect(page.locator(status)).to_contain_text("band")
    inside(page, status)
    assert fits(page, status)  # the reason is wrapped, not cut
    assert fits(page, f"{PANEL} .scroll")
    inside(page, "[data-testid=orders-table] thead th:nth-last-child(2)")  # Status
    expect(page.locator("[data-testid=orders-table] thead th:nth-last-child(2)")).to_have_text(
        "Status"
    )
    page.screenshot(path=str(artifacts / f"terminal-{width}x{height}.png"))
