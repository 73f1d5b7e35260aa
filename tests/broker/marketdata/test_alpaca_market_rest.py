"""The Alpaca v2 market-data REST routes over a running venue (httpx in process)."""

from __future__ import annotations

import importlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tradingfloor.broker.api.market_data import (
    MAX_LIMIT,
    parse_time,
    parse_timeframe,
    rfc3339,
)
from tradingfloor.exchange.engine.types import Side

from .support import (
    HEADERS,
    LISTED_AT,
    M0,
    MINUTE,
    Clock,
    S,
    VenueHarness,
    cross,
    make_app,
    no_fsync,
)

Json = dict[str, Any]


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, VenueHarness]]:
    with no_fsync():
        harness = VenueHarness(tmp_path / "venue", Clock(LISTED_AT))
        await harness.start("AAPL", "MSFT", "IDLE")
        await harness.run(*cross("AAPL", 19000, 10), at=M0 + S)
        await harness.run(*cross("MSFT", 40000, 1), at=M0 + 2 * S)
        await harness.run(*cross("AAPL", 19010, 5, taker=Side.SELL), at=M0 + 30 * S)
        await harness.run(*cross("AAPL", 18990, 3), at=M0 + MINUTE + 5 * S)
        await harness.run(*cross("AAPL", 19050, 2), at=M0 + 7 * MINUTE)
        app, _stream = make_app(harness.history)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=HEADERS
        ) as client:
            yield client, harness
        await harness.stop()


async def get(client: httpx.AsyncClient, path: str, **params: Any) -> Json:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


async def test_every_route_needs_the_api_key(http: tuple[httpx.AsyncClient, VenueHarness]) -> None:
    client, _ = http
    for path in ("/v2/stocks/AAPL/trades", "/v2/stocks/snapshots?symbols=AAPL"):
        response = await client.get(
            path, headers={"APCA-API-KEY-ID": "x", "APCA-API-SECRET-KEY": "y"}
        )
        assert response.status_code == 401


async def test_trades_of_one_symbol_in_alpaca_shape(
    http: tuple[httpx.AsyncClient, VenueHarness],
) -> None:
    client, _ = http
    response = await client.get("/v2/stocks/AAPL/trades", params={"feed": "iex"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["symbol"] == "AAPL" and body["next_page_token"] is None
    first = body["trades"][0]
    assert first == {
        "t": "2023-11-14T22:13:01.000001000Z",
        "x": "V",
        "p": 190.0,
        "s": 10,
        "c": ["@"],
        "i": first["i"],
        "z": "C",
    }
    # Prices are JSON numbers written from the Decimal, digit for digit.
    assert '"p":190.00,' in response.text and '"p":190.10,' in response.text
    assert [(t["p"], t["s"]) for t in body["trades"]] == [
        (190.0, 10),
        (190.1, 5),
        (189.9, 3),
        (190.5, 2),
    ]
    ids = [t["i"] for t in body["trades"]]
    assert ids == sorted(ids)


async def test_quotes_follow_the_top_of_book(http: tuple[httpx.AsyncClient, VenueHarness]) -> None:
    client, _ = http
    body = await get(client, "/v2/stocks/AAPL/quotes", limit=2)
    first = body["quotes"][0]
    assert first == {
        "t": "2023-11-14T22:13:01Z",
        "ax": "V",
        "ap": 190.0,
        "as": 10,
        "bx": "V",
        "bp": 0.0,
        "bs": 0,
        "c": ["R"],
        "z": "C",
    }
    assert body["quotes"][1]["as"] == 0 and body["next_page_token"] is not None
    everything = await get(client, "/v2/stocks/AAPL/quotes")
    # each cross: the maker's order is quoted, the trade empties the side again
    assert len(everything["quotes"]) == 8


async def test_bars_in_every_supported_timeframe(
    http: tuple[httpx.AsyncClient, VenueHarness],
) -> None:
    client, _ = http
    minute = (await get(client, "/v2/stocks/AAPL/bars", timeframe="1Min"))["bars"]
    assert [b["t"] for b in minute] == [
        "2023-11-14T22:13:00Z",
        "2023-11-14T22:14:00Z",
        "2023-11-14T22:20:00Z",
    ]
    assert minute[0] == {
        "t": "2023-11-14T22:13:00Z",
        "o": 190.0,
        "h": 190.1,
        "l": 190.0,
        "c": 190.1,
        "v": 15,
        "n": 2,
        "vw": 190.033333,
    }
    five = (await get(client, "/v2/stocks/AAPL/bars", timeframe="5Min"))["bars"]
    assert [(b["t"], b["o"], b["h"], b["l"], b["c"], b["v"], b["n"]) for b in five] == [
        ("2023-11-14T22:10:00Z", 190.0, 190.1, 189.9, 189.9, 18, 3),
        ("2023-11-14T22:20:00Z", 190.5, 190.5, 190.5, 190.5, 2, 1),
    ]
    assert five[0]["vw"] == 190.011111
    fifteen = (await get(client, "/v2/stocks/AAPL/bars", timeframe="15T"))["bars"]
    assert [(b["t"][11:16], b["v"]) for b in fifteen] == [("22:00", 18), ("22:15", 2)]
    for timeframe in ("1Hour", "1H", "1Day", "1D"):
        [bar] = (await get(client, "/v2/stocks/AAPL/bars", timeframe=timeframe))["bars"]
        assert (bar["o"], bar["c"], bar["v"], bar["n"]) == (190.0, 190.5, 20, 4), timeframe
    [day] = (await get(client, "/v2/stocks/AAPL/bars", timeframe="1Day"))["bars"]
    assert day["t"] == "2023-11-14T00:00:00Z"
    newest = await get(client, "/v2/stocks/AAPL/bars", timeframe="1Min", sort="desc", limit=1)
    assert newest["bars"][0]["t"] == "2023-11-14T22:20:00Z"
    assert newest["next_page_token"] is not None


async def test_start_and_inclusive_end_in_rfc3339_or_dates(
    http: tuple[httpx.AsyncClient, VenueHarness],
) -> None:
    client, _ = http

    async def starts(**params: Any) -> list[str]:
        body = await get(client, "/v2/stocks/AAPL/bars", timeframe="1Min", **params)
        return [b["t"][11:16] for b in body["bars"]]

    assert await starts(start="2023-11-14T22:14:00Z") == ["22:14", "22:20"]
    assert await starts(start="2023-11-14T17:14:00-05:00") == ["22:14", "22:20"]
    assert await starts(start="2023-11-14T22:13:00.000000001Z") == ["22:14", "22:20"]
    assert await starts(end="2023-11-14T22:14:00Z") == ["22:13", "22:14"]  # inclusive
    assert await starts(end="2023-11-14T22:13:59.999999999Z") == ["22:13"]
    assert await starts(start="2023-11-14", end="2023-11-14T23:00:00+00:00") == [
        "22:13",
        "22:14",
        "22:20",
    ]
    assert await starts(start="2023-11-15") == []
    # An unencoded "+" arrives as a space.
    response = await client.get(
        "/v2/stocks/AAPL/bars?timeframe=1Min&start=2023-11-14T22:14:00+00:00"
    )
    assert [b["t"][11:16] for b in response.json()["bars"]] == ["22:14", "22:20"]


async def test_pages_over_several_symbols_join_up(
    http: tuple[httpx.AsyncClient, VenueHarness],
) -> None:
    client, _ = http
    for sort in ("asc", "desc"):
        whole = await get(client, "/v2/stocks/trades", symbols="MSFT,AAPL,IDLE,NOPE", sort=sort)
        assert list(whole["trades"]) == ["AAPL", "MSFT"] and whole["next_page_token"] is None
        pages: list[Json] = []
        token = None
        while True:
            params: dict[str, Any] = {"symbols": "MSFT,AAPL", "limit": 2, "sort": sort}
            if token is not None:
                params["page_token"] = token
            page = await get(client, "/v2/stocks/trades", **params)
            pages.append(page["trades"])
            token = page["next_page_token"]
            if token is None:
                break
        assert [{s: len(v) for s, v in p.items()} for p in pages] == [
            {"AAPL": 2},
            {"AAPL": 2},
            {"MSFT": 1},
        ]
        joined: dict[str, list[Json]] = {}
        for p in pages:
            for symbol, items in p.items():
                joined.setdefault(symbol, []).extend(items)
        assert joined == whole["trades"]
        times = [t["t"] for t in joined["AAPL"]]
        assert times == sorted(times, reverse=sort == "desc")


async def test_multi_symbol_bars_and_quotes(http: tuple[httpx.AsyncClient, VenueHarness]) -> None:
    client, _ = http
    bars = await get(client, "/v2/stocks/bars", symbols="AAPL,MSFT", timeframe="1Hour")
    assert {s: [b["v"] for b in v] for s, v in bars["bars"].items()} == {
        "AAPL": [20],
        "MSFT": [1],
    }
    quotes = await get(client, "/v2/stocks/quotes", symbols="MSFT", limit=1)
    assert list(quotes["quotes"]) == ["MSFT"] and quotes["next_page_token"] is not None
    lower = await get(client, "/v2/stocks/bars", symbols="aapl", timeframe="1Day")
    assert list(lower["bars"]) == ["AAPL"]


async def test_latest_and_snapshots(http: tuple[httpx.AsyncClient, VenueHarness]) -> None:
    client, harness = http
    latest = await get(client, "/v2/stocks/trades/latest", symbols="AAPL,MSFT,IDLE,NOPE")
    assert {s: t["p"] for s, t in latest["trades"].items()} == {"AAPL": 190.5, "MSFT": 400.0}
    one = await get(client, "/v2/stocks/AAPL/trades/latest")
    assert one == {"symbol": "AAPL", "trade": latest["trades"]["AAPL"]}
    quotes = await get(client, "/v2/stocks/quotes/latest", symbols="AAPL")
    quote = quotes["quotes"]["AAPL"]
    assert (quote["bp"], quote["bs"], quote["ap"], quote["as"]) == (0.0, 0, 0.0, 0)
    assert (await get(client, "/v2/stocks/AAPL/quotes/latest"))["quote"] == quote
    bars = await get(client, "/v2/stocks/bars/latest", symbols="AAPL")
    assert bars["bars"]["AAPL"]["t"] == "2023-11-14T22:20:00Z"
    assert (await get(client, "/v2/stocks/AAPL/bars/latest"))["bar"] == bars["bars"]["AAPL"]
    snap = await get(client, "/v2/stocks/AAPL/snapshot")
    assert set(snap) == {
        "symbol",
        "latestTrade",
        "latestQuote",
        "minuteBar",
        "dailyBar",
        "prevDailyBar",
    }
    assert snap["latestTrade"] == latest["trades"]["AAPL"]
    assert snap["minuteBar"] == bars["bars"]["AAPL"]
    assert snap["dailyBar"]["v"] == 20 and snap["prevDailyBar"] is None
    snaps = await get(client, "/v2/stocks/snapshots", symbols="AAPL,IDLE,NOPE")
    assert set(snaps) == {"AAPL", "IDLE"}
    assert snaps["AAPL"] == {k: v for k, v in snap.items() if k != "symbol"}
    assert snaps["IDLE"] == dict.fromkeys(
        ("latestTrade", "latestQuote", "minuteBar", "dailyBar", "prevDailyBar")
    )
    assert harness.history.latest_trade("AAPL") is not None


async def test_unknown_symbols(http: tuple[httpx.AsyncClient, VenueHarness]) -> None:
    client, _ = http
    series = await get(client, "/v2/stocks/NOPE/bars", timeframe="1Min")
    assert series == {"bars": [], "symbol": "NOPE", "next_page_token": None}
    assert (await get(client, "/v2/stocks/bars", symbols="NOPE", timeframe="1Min"))["bars"] == {}
    for path in (
        "/v2/stocks/NOPE/trades/latest",
        "/v2/stocks/NOPE/quotes/latest",
        "/v2/stocks/NOPE/bars/latest",
        "/v2/stocks/NOPE/snapshot",
        "/v2/stocks/IDLE/trades/latest",  # listed, but nothing traded yet
    ):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json()["code"] == 40410000


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/v2/stocks/AAPL/bars", {"timeframe": "7Weeks"}, "invalid timeframe"),
        ("/v2/stocks/AAPL/bars", {"timeframe": "1Week"}, "unsupported timeframe"),
        ("/v2/stocks/AAPL/bars", {"timeframe": "60Min"}, "out of range"),
        ("/v2/stocks/AAPL/bars", {"timeframe": "2Day"}, "out of range"),
        ("/v2/stocks/AAPL/bars", {}, "invalid timeframe"),
        ("/v2/stocks/AAPL/trades", {"limit": "0"}, "invalid limit"),
        ("/v2/stocks/AAPL/trades", {"limit": str(MAX_LIMIT + 1)}, "invalid limit"),
        ("/v2/stocks/AAPL/trades", {"limit": "ten"}, "invalid limit"),
        ("/v2/stocks/AAPL/trades", {"start": "yesterday"}, "invalid start"),
        ("/v2/stocks/AAPL/trades", {"end": "2023-02-30"}, "invalid end"),
        ("/v2/stocks/AAPL/trades", {"start": "2023-11-14T25:00:00Z"}, "invalid start"),
        ("/v2/stocks/AAPL/trades", {"start": "2023-11-14T10:00:00+24:00"}, "bad offset"),
        (
            "/v2/stocks/AAPL/trades",
            {"start": "2023-11-14T10:00:00Z", "end": "2023-11-14T09:00:00Z"},
            "end is before start",
        ),
        ("/v2/stocks/AAPL/quotes", {"sort": "up"}, "invalid sort"),
        ("/v2/stocks/AAPL/quotes", {"page_token": "!!!"}, "invalid page_token"),
        ("/v2/stocks/AAPL/quotes", {"page_token": "AAAA"}, "invalid page_token"),
        ("/v2/stocks/trades", {}, "missing symbols"),
        ("/v2/stocks/trades", {"symbols": " , "}, "missing symbols"),
        ("/v2/stocks/trades/latest", {"symbols": "A B"}, "invalid symbol"),
        ("/v2/stocks/snapshots", {"symbols": "X" * 40}, "invalid symbol"),
        ("/v2/stocks/A%20B/snapshot", {}, "invalid symbol"),
    ],
)
async def test_bad_parameters_get_alpacas_422(
    http: tuple[httpx.AsyncClient, VenueHarness], path: str, params: Json, message: str
) -> None:
    client, _ = http
    response = await client.get(path, params=params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == 42210000 and message in body["message"], body


async def test_a_page_token_is_bound_to_its_sort_order(
    http: tuple[httpx.AsyncClient, VenueHarness],
) -> None:
    client, _ = http
    page = await get(client, "/v2/stocks/AAPL/trades", limit=1)
    response = await client.get(
        "/v2/stocks/AAPL/trades", params={"page_token": page["next_page_token"], "sort": "desc"}
    )
    assert response.status_code == 422 and "other sort order" in response.json()["message"]


def test_time_helpers() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert parse_time("2023-11-14T22:13:20.123456789Z") == 1_700_000_000_123_456_789
    assert parse_time("2023-11-14T23:13:20.1+01:00") == 1_700_000_000_100_000_000
    assert parse_time("2023-11-14T22:13:20") == 1_700_000_000 * S
    assert parse_time("1970-01-01") == 0
    assert parse_timeframe("1Min") == MINUTE and parse_timeframe("Hour") == 60 * MINUTE
    assert parse_timeframe("15T") == 15 * MINUTE and parse_timeframe("23H") == 23 * 60 * MINUTE
    assert json.loads('{"p":190.10}')["p"] == 190.1


DOC = Path(__file__).resolve().parents[3] / "docs" / "alpaca-market-data.md"


@pytest.mark.parametrize(
    "module",
    [
        "tradingfloor.broker.market.history",
        "tradingfloor.broker.api.market_data",
        "tradingfloor.broker.api.market_stream",
    ],
)
def test_every_public_name_is_documented(module: str) -> None:
    text = DOC.read_text()
    names = importlib.import_module(module).__all__
    missing = [n for n in names if f"`{n}`" not in text and f"`{n}(" not in text]
    assert missing == []
