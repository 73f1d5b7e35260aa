"""The official alpaca-py SDK against the market-data API: historical client and data stream."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.enums import DataFeed
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.live import StockDataStream
from alpaca.data.models import Quote, Trade
from alpaca.data.requests import (
    StockBarsRequest,
    StockLatestBarRequest,
    StockLatestQuoteRequest,
    StockLatestTradeRequest,
    StockQuotesRequest,
    StockSnapshotRequest,
    StockTradesRequest,
)
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

from tradingfloor.exchange.engine.types import Side

from .support import (
    KEY,
    LISTED_AT,
    M0,
    MINUTE,
    SECRET,
    Clock,
    S,
    VenueHarness,
    cross,
    make_app,
    no_fsync,
    serving,
)

_T = TypeVar("_T")
_Req = TypeVar("_Req")


def at(minute: int, second: int, micro: int = 0) -> datetime:
    return datetime(2023, 11, 14, 22, minute, second, micro, tzinfo=UTC)


async def call(method: Callable[[_Req], _T], request: _Req) -> _T:
    """A blocking SDK call in a worker thread, while the server runs on this loop."""
    return await asyncio.to_thread(method, request)


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_the_historical_data_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with no_fsync():
        harness = VenueHarness(tmp_path / "venue", Clock(LISTED_AT))
        await harness.start("AAPL", "MSFT")
        await harness.run(*cross("AAPL", 19000, 10), at=M0 + S)
        await harness.run(*cross("AAPL", 19010, 5, taker=Side.SELL), at=M0 + 30 * S)
        await harness.run(*cross("MSFT", 40025, 3), at=M0 + 40 * S)
        await harness.run(*cross("AAPL", 18990, 3), at=M0 + MINUTE + 5 * S)
        app, stream = make_app(harness.history)
        try:
            async with serving(app) as port:
                sdk = StockHistoricalDataClient(
                    KEY, SECRET, url_override=f"http://127.0.0.1:{port}"
                )

                bars = await call(
                    sdk.get_stock_bars,
                    StockBarsRequest(
                        symbol_or_symbols=["AAPL", "MSFT"],
                        timeframe=TimeFrame.Minute,
                        start=datetime(2023, 11, 14, tzinfo=UTC),
                        feed=DataFeed.IEX,
                    ),
                )
                aapl = bars["AAPL"]
                assert [b.timestamp for b in aapl] == [at(13, 0), at(14, 0)]
                first = aapl[0]
                assert (first.open, first.high, first.low, first.close) == (
                    190.0,
                    190.1,
                    190.0,
                    190.1,
                )
                assert (first.volume, first.trade_count, first.vwap) == (15, 2, 190.033333)
                assert [b.close for b in bars["MSFT"]] == [400.25]
                five = await call(
                    sdk.get_stock_bars,
                    StockBarsRequest(
                        symbol_or_symbols="AAPL", timeframe=TimeFrame(5, TimeFrameUnit.Minute)
                    ),
                )
                [bar5] = five["AAPL"]
                assert (bar5.timestamp, bar5.volume, bar5.low) == (at(10, 0), 18, 189.9)
                daily = await call(
                    sdk.get_stock_bars,
                    StockBarsRequest(symbol_or_symbols="AAPL", timeframe=TimeFrame.Day),
                )
                assert daily["AAPL"][0].timestamp == datetime(2023, 11, 14, tzinfo=UTC)

                trades = await call(
                    sdk.get_stock_trades, StockTradesRequest(symbol_or_symbols="AAPL", limit=2)
                )
                assert [(t.price, t.size) for t in trades["AAPL"]] == [(190.0, 10), (190.1, 5)]
                trade = trades["AAPL"][0]
                assert (trade.exchange, trade.conditions, trade.tape) == ("V", ["@"], "C")
                assert trade.timestamp == at(13, 1, 1)  # 1 µs: the sequencer's +1000 ns
                window = await call(
                    sdk.get_stock_trades,
                    StockTradesRequest(
                        symbol_or_symbols=["AAPL", "MSFT"],
                        start=at(13, 20),
                        end=at(13, 59),
                    ),
                )
                assert {s: [t.price for t in v] for s, v in window.data.items()} == {
                    "AAPL": [190.1],
                    "MSFT": [400.25],
                }
                quotes = await call(
                    sdk.get_stock_quotes, StockQuotesRequest(symbol_or_symbols="AAPL")
                )
                asks = [(q.ask_price, q.ask_size, q.bid_price) for q in quotes["AAPL"]][:2]
                assert asks == [(190.0, 10, 0.0), (0.0, 0, 0.0)]

                latest_trade = await call(
                    sdk.get_stock_latest_trade,
                    StockLatestTradeRequest(symbol_or_symbols=["AAPL", "MSFT"]),
                )
                assert {s: t.price for s, t in latest_trade.items()} == {
                    "AAPL": 189.9,
                    "MSFT": 400.25,
                }
                latest_quote = await call(
                    sdk.get_stock_latest_quote, StockLatestQuoteRequest(symbol_or_symbols="AAPL")
                )
                assert isinstance(latest_quote["AAPL"], Quote)
                latest_bar = await call(
                    sdk.get_stock_latest_bar, StockLatestBarRequest(symbol_or_symbols="AAPL")
                )
                assert latest_bar["AAPL"].timestamp == at(14, 0)
                snapshots = await call(
                    sdk.get_stock_snapshot,
                    StockSnapshotRequest(symbol_or_symbols=["AAPL", "MSFT", "NOPE"]),
                )
                assert set(snapshots) == {"AAPL", "MSFT"}
                snap = snapshots["AAPL"]
                assert snap.latest_trade is not None and snap.latest_trade.price == 189.9
                assert snap.minute_bar is not None and snap.minute_bar.timestamp == at(14, 0)
                assert snap.daily_bar is not None and snap.daily_bar.volume == 18
                assert snap.previous_daily_bar is None

                wrong = StockHistoricalDataClient(
                    KEY, "wrong", url_override=f"http://127.0.0.1:{port}"
                )
                with pytest.raises(APIError) as denied:
                    await call(
                        wrong.get_stock_latest_trade,
                        StockLatestTradeRequest(symbol_or_symbols="AAPL"),
                    )
                assert denied.value.status_code == 401
                with pytest.raises(APIError) as invalid:
                    await call(
                        sdk.get_stock_bars,
                        StockBarsRequest(
                            symbol_or_symbols="AAPL", timeframe=TimeFrame(1, TimeFrameUnit.Week)
                        ),
                    )
                assert invalid.value.status_code == 422 and invalid.value.code == 42210000
        finally:
            stream.close()
            await harness.stop()


async def test_the_stock_data_stream_receives_trades_and_quotes(tmp_path: Path) -> None:
    with no_fsync():
        harness = VenueHarness(tmp_path / "venue", Clock(LISTED_AT))
        await harness.start("AAPL")
        app, stream = make_app(harness.history, clock=lambda: 0)
        try:
            async with serving(app) as port:
                sdk = StockDataStream(KEY, SECRET, url_override=f"ws://127.0.0.1:{port}/v2/iex")
                trades: list[Trade] = []
                quotes: list[Quote] = []

                async def on_trade(trade: Trade) -> None:
                    trades.append(trade)

                async def on_quote(quote: Quote) -> None:
                    quotes.append(quote)

                sdk.subscribe_trades(on_trade, "AAPL")
                sdk.subscribe_quotes(on_quote, "AAPL")
                task = asyncio.create_task(sdk._run_forever())
                try:
                    await wait_until(
                        lambda: (
                            stream.subscribers("trades", "AAPL") == 1
                            and stream.subscribers("quotes", "AAPL") == 1
                        )
                    )
                    await harness.run(*cross("AAPL", 19012, 7), at=M0 + S)
                    await wait_until(lambda: len(trades) == 1 and len(quotes) == 2)
                finally:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    await sdk.close()
                [trade] = trades
                assert (trade.symbol, trade.price, trade.size, trade.exchange) == (
                    "AAPL",
                    190.12,
                    7,
                    "V",
                )
                assert trade.timestamp == at(13, 1, 1)
                assert (trade.conditions, trade.tape) == (["@"], "C")
                assert [(q.ask_price, q.ask_size, q.bid_price) for q in quotes] == [
                    (190.12, 7, 0.0),
                    (0.0, 0, 0.0),
                ]
                assert quotes[0].timestamp == at(13, 1)
        finally:
            stream.close()
            await harness.stop()
