"""The order ticket offers only combinations the broker and the venue can take, and estimates
the cost and the buying power left, exactly (BigInt cents, never floats).

The combination test is against the real server: every class x type x time in force is sent to
POST /v2/orders, and what the ticket offers (validate.js typesFor/tifsFor) must be exactly what
is not refused for its shape (422 from the broker's request rules, or a venue rejection for the
time in force or the combination)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from tradingfloor.broker.risk.pretrade import RiskLimits

from .helpers import BrokerRest, log_in, pick_symbol

#: Venue rejections that mean "this combination is never accepted" (engine reasons).
SHAPE_REJECTS = {3006, 3015}  # INVALID_TIF, INVALID_COMBINATION
CLASSES = ["simple", "bracket", "oco", "oto"]
TYPES = ["market", "limit", "stop", "stop_limit", "trailing_stop"]
TIFS = ["day", "gtc", "opg", "cls", "ioc", "fok"]


def js(page: Page, script: str, arg: Any = None) -> Any:
    """Evaluate ``script`` (an arrow taking ``[estimate, validate, arg]``) in the page."""
    return page.evaluate(
        f"""async (arg) => {{
            const estimate = await import("/web/js/estimate.js");
            const validate = await import("/web/js/validate.js");
            return ({script})(estimate, validate, arg);
        }}""",
        arg,
    )


def order_body(cls: str, type_: str, tif: str) -> dict[str, Any]:
    """A buy of one AAPL share of this class, type and TIF, with fields that make sense."""
    body: dict[str, Any] = {
        "symbol": "AAPL",
        "side": "buy",
        "qty": "1",
        "type": type_,
        "time_in_force": tif,
    }
    if type_ in ("limit", "stop_limit") and cls != "oco":
        body["limit_price"] = "196.00" if type_ == "stop_limit" else "189.00"
    if type_ in ("stop", "stop_limit"):
        body["stop_price"] = "195.00"
    if type_ == "trailing_stop":
        body["trail_price"] = "1.00"
    if cls == "bracket":
        body["take_profit"] = {"limit_price": "205.00"}
        body["stop_loss"] = {"stop_price": "180.00"}
    elif cls == "oto":
        body["take_profit"] = {"limit_price": "205.00"}
    elif cls == "oco":  # an exit pair that buys: take profit below the stop
        body["take_profit"] = {"limit_price": "180.00"}
        body["stop_loss"] = {"stop_price": "200.00"}
    if cls != "simple":
        body["order_class"] = cls
    return body


def test_offered_combinations_are_the_ones_the_server_takes(page: Page, server: BrokerRest) -> None:
    trader = server.trader("tess", account_type="margin")
    maker = server.trader("mark", account_type="margin")
    maker_headers = server.token(maker.username, maker.password)
    for side, price in (("buy", "188.00"), ("sell", "191.00")):
        server.order(
            maker_headers,
            symbol="AAPL",
            side=side,
            qty="100",
            type="limit",
            limit_price=price,
            time_in_force="gtc",
        )
    headers = server.token(trader.username, trader.password)
    page.goto("/")
    offered: dict[str, dict[str, list[str]]] = js(
        page,
        """(e, v, [classes, types]) => Object.fromEntries(classes.map((cls) => [cls,
            Object.fromEntries(v.typesFor(cls).map((type) => [type, v.tifsFor(type, cls)]))]))""",
        [CLASSES, TYPES],
    )
    wrong = []
    for cls in CLASSES:
        for type_ in TYPES:
            for tif in TIFS:
                response = server.http.post(
                    "/v2/orders", json=order_body(cls, type_, tif), headers=headers
                )
                answer = response.json()
                refused = response.status_code == 422 or (
                    response.status_code == 200
                    and answer["status"] == "rejected"
                    and answer["reject_code"] in SHAPE_REJECTS
                )
                offers = tif in offered[cls].get(type_, [])
                if offers == refused:
                    code = answer.get("reject_code") or answer.get("code")
                    wrong.append((cls, type_, tif, offers, response.status_code, code))
    assert not wrong, "\n".join(map(str, wrong))


def test_the_ticket_disables_what_is_always_rejected(page: Page, server: BrokerRest) -> None:
    trader = server.trader("uma")
    log_in(page, trader.username, trader.password)
    pick_symbol(page, "AAPL")
    type_ = page.get_by_test_id("ticket-type")
    tif = page.get_by_test_id("ticket-tif")

    def disabled(select: Any) -> list[str]:
        values: list[str] = select.evaluate(
            "(s) => [...s.options].filter((o) => o.disabled).map((o) => o.value)"
        )
        return values

    assert disabled(type_) == [] and disabled(tif) == []
    tif.select_option("opg")
    type_.select_option("stop")  # the auctions take no stop orders: back to DAY
    expect(tif).to_have_value("day")
    assert disabled(tif) == ["opg", "cls"]

    page.get_by_test_id("ticket-class").select_option("bracket")
    expect(type_).to_have_value("limit")  # a bracket's entry is market or limit
    assert disabled(type_) == ["stop", "stop_limit", "trailing_stop"]
    assert disabled(tif) == ["ioc", "fok", "opg", "cls"]
    page.get_by_test_id("ticket-class").select_option("oco")
    assert disabled(type_) == ["market", "stop", "stop_limit", "trailing_stop"]

    page.get_by_test_id("ticket-class").select_option("simple")
    type_.select_option("limit")
    page.locator("details.more summary").click()
    extended = page.get_by_test_id("ticket-ext")
    expect(extended).to_be_enabled()
    extended.check()
    tif.select_option("gtc")  # extended hours are for DAY limit orders only
    expect(extended).to_be_disabled()
    expect(extended).not_to_be_checked()


def test_estimate_arithmetic_is_exact(page: Page, server: BrokerRest) -> None:
    page.goto("/")
    buffer = js(page, "(e) => String(e.MARKET_BUFFER_BPS)")
    assert int(buffer) == RiskLimits().market_order_buffer_bps

    def est(values: dict[str, str], quote: dict[str, str], position: str, bp: str | None) -> Any:
        base = {"side": "buy", "qty": "10", "type": "limit", "order_class": "simple"}
        base |= {"limit_price": "", "stop_price": "", "take_profit": ""}
        result: Any = js(
            page,
            """(e, v, [values, quote, position, bp]) => {
                const r = e.estimate(values, quote, position, bp);
                return r && {notional: e.formatCents(r.notional), hold: e.formatCents(r.hold),
                             after: r.after === null ? null : e.formatCents(r.after),
                             price: r.price, source: r.source};
            }""",
            [base | values, quote, position, bp],
        )
        return result

    assert est({"limit_price": "190.10"}, {}, "0", "50000") == {
        "notional": "1,901.00",
        "hold": "1,901.00",
        "after": "48,099.00",
        "price": "190.10",
        "source": "limit",
    }
    # 3 x 0.10 is 0.30 exactly (a float would give 0.30000000000000004)
    assert est({"qty": "3", "limit_price": "0.10"}, {}, "0", "0.30")["after"] == "0.00"
    big = est({"qty": "9999", "limit_price": "99999.99"}, {}, "0", None)
    assert big["notional"] == "999,899,900.01" and big["after"] is None
    # a market buy at the ask plus the 5% buffer
    market = est({"type": "market"}, {"bid": "189.00", "ask": "190.00"}, "0", "50000")
    assert (market["notional"], market["hold"], market["after"]) == (
        "1,900.00",
        "1,995.00",
        "48,005.00",
    )
    assert market["source"] == "ask"
    # selling 10 with 4 held: only the 6 that go short hold buying power
    sell = est({"side": "sell", "type": "market"}, {"bid": "189.50"}, "4", "1000")
    assert (sell["notional"], sell["hold"], sell["after"]) == ("1,895.00", "1,193.85", "-193.85")
    closing = est({"side": "sell", "limit_price": "185.00"}, {"bid": "190.00"}, "10", "100")
    assert (closing["price"], closing["hold"], closing["after"]) == ("190.00", "0.00", "100.00")
    stop = est({"type": "stop", "stop_price": "195.00", "qty": "5"}, {}, "0", "2000")
    assert stop["hold"] == "1,023.75"
    assert est({"type": "market"}, {}, "0", "1") is None  # nothing to value it at
    assert est({"qty": "1.5", "limit_price": "190"}, {}, "0", "1") is None
    assert js(page, "(e) => [e.formatCents(-123405n), String(e.toCents('0.001'))]") == [
        "-1,234.05",
        "1",
    ]


def test_the_estimate_follows_the_form(page: Page, server: BrokerRest) -> None:
    trader = server.trader("vera")
    maker = server.trader("max", account_type="margin")
    server.order(
        server.token(maker.username, maker.password),
        symbol="AAPL",
        side="sell",
        qty="50",
        type="limit",
        limit_price="190.00",
        time_in_force="gtc",
    )
    log_in(page, trader.username, trader.password)
    pick_symbol(page, "AAPL")
    box = page.get_by_test_id("ticket-estimate")
    expect(box).to_be_empty()
    page.get_by_test_id("ticket-type").select_option("market")
    page.get_by_test_id("ticket-qty").fill("10")
    expect(page.get_by_test_id("estimate-notional")).to_contain_text("Est. cost 1,900.00")
    expect(page.get_by_test_id("estimate-buying-power")).to_have_text(
        "Buying power 50,000.00 → 48,005.00 (incl. 5% buffer)"
    )
    page.get_by_test_id("ticket-type").select_option("limit")
    page.get_by_test_id("ticket-limit").fill("189.50")
    page.get_by_test_id("ticket-qty").fill("20")
    expect(page.get_by_test_id("estimate-notional")).to_contain_text("Est. cost 3,790.00")
    expect(box).to_have_attribute("data-after", "46,210.00")
    page.get_by_test_id("ticket-side-sell").click()
    expect(page.get_by_test_id("estimate-notional")).to_contain_text("Est. proceeds")
    page.get_by_test_id("ticket-qty").fill("")
    expect(box).to_be_empty()
