"""The terminal's pure JavaScript modules run in Chromium: exact decimal-string arithmetic and the
order ticket's checks and request bodies (the user's own strings, never floats)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

from .helpers import BrokerRest

ASSET = {"symbol": "AAPL", "tradable": True, "price_increment": "0.01", "min_trade_increment": "1"}


def run(page: Page, script: str, arg: Any = None) -> Any:
    """Evaluate ``script`` (an async arrow taking ``[decimal, validate, arg]``) in the page."""
    return page.evaluate(
        f"""async (arg) => {{
            const decimal = await import("/web/js/decimal.js");
            const validate = await import("/web/js/validate.js");
            return ({script})(decimal, validate, arg);
        }}""",
        arg,
    )


def test_decimal_strings(page: Page, server: BrokerRest) -> None:
    page.goto("/")
    got = run(
        page,
        """(d) => [
            d.cmp("189.50", "189.5"), d.cmp("0.1", "0.09"), d.cmp("-1", "0"),
            d.add("0.1", "0.2"), d.sub("190.05", "189.95"), d.sub("1", "1.25"),
            d.isMultiple("190.05", "0.01"), d.isMultiple("190.005", "0.01"),
            d.isMultiple("300", "100"), d.norm("189.50"), d.norm("190.00"), d.norm("007.10"),
            d.parse("1e5"), d.parse("."), d.sign("-0.00"), d.sign("-0.01"),
        ]""",
    )
    assert got == [
        0,
        1,
        -1,
        "0.3",
        "0.10",
        "-0.25",
        True,
        False,
        True,
        "189.5",
        "190",
        "7.1",
        None,
        None,
        0,
        -1,
    ]


def ticket(**fields: Any) -> dict[str, Any]:
    base = {
        "symbol": "aapl",
        "side": "buy",
        "qty": "10",
        "type": "limit",
        "time_in_force": "day",
        "limit_price": "",
        "stop_price": "",
        "trail_kind": "trail_price",
        "trail": "",
        "order_class": "simple",
        "take_profit": "",
        "stop_loss": "",
        "stop_loss_limit": "",
        "client_order_id": "",
        "extended_hours": False,
    }
    return {**base, **fields}


def check(page: Page, form: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = run(
        page,
        "(d, v, [form, asset]) => v.checkOrder(form, form.symbol.toUpperCase() === asset.symbol"
        " ? asset : undefined)",
        [form, ASSET],
    )
    return result


def test_order_bodies_and_messages(page: Page, server: BrokerRest) -> None:
    page.goto("/")
    simple = check(page, ticket(limit_price=" 190.10 ", stop_price="999"))
    assert simple == {
        "errors": [],
        "body": {
            "symbol": "AAPL",
            "side": "buy",
            "qty": "10",
            "type": "limit",
            "time_in_force": "day",
            "limit_price": "190.10",  # the typed string: hidden fields (stop) are not sent
        },
    }
    bracket = check(
        page,
        ticket(
            order_class="bracket",
            limit_price="190.00",
            take_profit="195.00",
            stop_loss="185.00",
            stop_loss_limit="184.50",
            time_in_force="gtc",
        ),
    )
    assert bracket["errors"] == []
    assert bracket["body"]["take_profit"] == {"limit_price": "195.00"}
    assert bracket["body"]["stop_loss"] == {"stop_price": "185.00", "limit_price": "184.50"}

    # an OCO exit pair after a buy: buys back, so take profit below the stop; no entry price
    oco = check(
        page, ticket(side="sell", order_class="oco", take_profit="195.00", stop_loss="185.00")
    )
    assert oco["errors"] == [] and "limit_price" not in oco["body"]
    wrong = check(
        page, ticket(side="buy", order_class="oco", take_profit="195.00", stop_loss="185.00")
    )
    assert [e["message"] for e in wrong["errors"]] == [
        "Take profit must be below the stop loss (the exits buy)."
    ]

    trailing = check(page, ticket(type="trailing_stop", trail_kind="trail_percent", trail="1.5"))
    assert trailing["errors"] == [] and trailing["body"]["trail_percent"] == "1.5"
    too_fine = check(page, ticket(type="trailing_stop", trail_kind="trail_percent", trail="1.555"))
    assert [e["field"] for e in too_fine["errors"]] == ["trail"]

    messages = {
        e["field"]: e["message"]
        for e in check(
            page,
            ticket(
                symbol="NOPE",
                qty="0",
                type="stop_limit",
                limit_price="-1",
                stop_price="abc",
                order_class="oto",
                time_in_force="ioc",
                extended_hours=True,
            ),
        )["errors"]
    }
    assert messages == {
        "symbol": "NOPE is not a listed symbol.",
        "qty": "Quantity must be a whole number of shares above zero.",
        "limit_price": "Limit price must be above zero.",
        "stop_price": "Stop price must be a number like 190.25.",
        "time_in_force": "OTO orders must be DAY or GTC.",
        "type": "An OTO order's entry must be a market or limit order.",
        "take_profit": "OTO orders need exactly one of take profit and stop loss.",
    }


def test_feed_reconnects_back_off_and_the_chart_keeps_a_bounded_history(
    page: Page, server: BrokerRest
) -> None:
    page.goto("/")
    # A server that accepts and drops at once (a slow-consumer close, a proxy): the client
    # backs off instead of reconnecting every half second.
    connects = page.evaluate(
        """async () => {
            const { MarketData } = await import("/web/js/marketdata.js");
            let made = 0;
            class DroppingSocket {
                static OPEN = 1;
                constructor() {
                    made += 1;
                    this.readyState = 0;
                    setTimeout(() => {
                        this.readyState = 1;
                        this.onopen?.();
                        setTimeout(() => {
                            this.readyState = 3;
                            this.onclose?.();
                        }, 5);
                    }, 5);
                }
                send() {}
                close() {}
            }
            const real = window.WebSocket;
            window.WebSocket = DroppingSocket;
            const md = new MarketData("ws://nowhere/");
            md.subscribe(["l1"], ["AAPL"]);
            try {
                md.connect();
                await new Promise((resolve) => setTimeout(resolve, 2500));
                return made;
            } finally {
                md.close();
                window.WebSocket = real;
            }
        }"""
    )
    assert 2 <= connects <= 3  # 0.5 s, 1 s, 2 s apart (+-25 %); it was one every 0.5 s

    # Live bars for days: the chart keeps the newest MAX_BARS.
    kept = page.evaluate(
        """async () => {
            const { CandleChart, MAX_BARS } = await import("/web/js/chart.js");
            const canvas = document.createElement("canvas");
            document.body.append(canvas);
            const chart = new CandleChart(canvas, null);
            chart.setSymbol("AAPL", "0.01");
            const start = 1767623400000000000;
            const n = MAX_BARS + 300;
            for (let i = 0; i < n; i += 1) {
                chart.onBar({
                    symbol: "AAPL", snapshot: false, interval: "1m", start: start + i * 6e10,
                    open: "190.00", high: "190.10", low: "189.90", close: "190.05", volume: 100,
                });
            }
            canvas.remove();
            return {
                max: MAX_BARS,
                list: chart.list.length,
                map: chart.bars.size,
                newest: chart.last.start === start + (n - 1) * 6e10,
                oldest: chart.list[0].start === start + 300 * 6e10,
            };
        }"""
    )
    assert kept == {"max": 2000, "list": 2000, "map": 2000, "newest": True, "oldest": True}
