"""The trader view fits common laptop screens: at 1400x900 and 1280x720 the open orders'
Replace and Cancel buttons and the recent orders' Status column lie inside the orders panel
(bounding boxes), also for a rejected order with a long reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from .helpers import BrokerRest, log_in


def inside(inner: Locator, panel: str) -> None:
    """``inner`` lies inside its enclosing ``panel`` (a selector): both boxes are measured in
    one step in the page, so a re-render of the table between two measurements cannot matter."""
    expect(inner).to_be_visible()
    box, frame = inner.evaluate(
        """(node, panel) => [node, node.closest(panel)]
            .map((n) => n.getBoundingClientRect())
            .map((r) => ({x: r.x, y: r.y, width: r.width, height: r.height}))""",
        panel,
    )
    assert frame["x"] <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"], (
        box,
        frame,
    )
    assert frame["y"] <= box["y"] and box["y"] + box["height"] <= frame["y"] + frame["height"], (
        box,
        frame,
    )


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
    panel = "section.panel.orders"

    row = page.locator("[data-testid=order-row]").first
    expect(row).to_be_visible()
    inside(row.get_by_test_id("order-replace"), panel)
    inside(row.get_by_test_id("order-cancel"), panel)
    fits = "(box) => box.scrollWidth <= box.clientWidth"
    assert page.locator(f"{panel} .scroll").evaluate(fits)  # no sideways scrolling

    page.get_by_test_id("orders-tab-recent").click()
    status = page.locator("[data-testid=order-row][data-status=rejected] td.status")
    expect(status).to_contain_text("band")
    inside(status, panel)
    # the reason is wrapped, not cut: nothing of it overflows the cell
    assert status.evaluate(fits)
    assert page.locator(f"{panel} .scroll").evaluate(fits)
    inside(page.locator("[data-testid=orders-table] th", has_text="Status"), panel)
    page.screenshot(path=str(artifacts / f"terminal-{width}x{height}.png"))
