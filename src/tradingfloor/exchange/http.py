"""The exchange's HTTP edge: read-only market-data REST endpoints and the WebSocket feed.

A thin FastAPI adapter over ``marketdata.feed.MarketDataFeed``; docs/marketdata-ws.md describes
the endpoints, the WebSocket protocol and the error envelope ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Annotated, Final

import msgspec
from fastapi import FastAPI, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tradingfloor.exchange.marketdata.bars import MAX_BAR_HISTORY
from tradingfloor.exchange.marketdata.feed import (
    L2_DEPTH,
    SNAPSHOT_TRADES,
    MarketDataFeed,
    Subscriber,
    pump,
)
from tradingfloor.exchange.marketdata.views import MAX_TRADES

__all__ = ["CLOSE_POLICY_VIOLATION", "CLOSE_TIMEOUT_S", "WS_PATH", "create_app"]

WS_PATH: Final = "/ws/marketdata"
CLOSE_POLICY_VIOLATION: Final = 1008  # WebSocket close code for a dropped slow consumer
CLOSE_TIMEOUT_S: Final = 5.0  # give up sending the close frame to a peer that never reads

_STATUS_CODES: Final = {404: "not_found", 405: "method_not_allowed"}


def _json(content: object, status_code: int = 200) -> Response:
    return Response(msgspec.json.encode(content), status_code, media_type="application/json")


def _error(status_code: int, code: str, message: str) -> Response:
    return _json({"error": {"code": code, "message": message}}, status_code)


def _unknown_symbol(symbol: str) -> Response:
    return _error(404, "unknown_symbol", f"symbol {symbol!r} is not listed")


async def _read(websocket: WebSocket, feed: MarketDataFeed, sub: Subscriber) -> None:
    """Hand each client frame (text or binary) to the feed until the client goes away."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        feed.handle(sub, text if text is not None else (message.get("bytes") or b""))


def create_app(
    feed: MarketDataFeed,
    *,
    instruments_info: Callable[[], list[dict[str, object]]] | None = None,
) -> FastAPI:
    """The app serving ``feed``; ``instruments_info`` replaces the book's instrument list."""
    app = FastAPI(
        title="tradingfloor exchange market data",
        description="Read-only market data (REST) and the JSON WebSocket feed "
        f"at `{WS_PATH}`; see docs/marketdata-ws.md.",
        version="1",
    )
    ids = itertools.count(1)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', '')}"
            for err in exc.errors()
        )
        return _error(422, "bad_request", problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        return _error(exc.status_code, _STATUS_CODES.get(exc.status_code, "http_error"), exc.detail)

    @app.get("/health", summary="Liveness")
    async def health() -> Response:
        return _json({"status": "ok"})

    @app.get("/api/v1/instruments", summary="Listed instruments")
    async def instruments() -> Response:
        if instruments_info is not None:
            return _json(instruments_info())
        book = feed.book
        return _json(
            [
                {"symbol": s, "tick_size": str(book.tick_size(s)), "phase": book.phase(s).value}
                for s in book.symbols()
            ]
        )

    @app.get("/api/v1/marketdata/{symbol}/l1", summary="Top of book (L1 snapshot)")
    async def l1(symbol: str) -> Response:
        try:
            return _json(feed.snapshot("l1", symbol))
        except KeyError:
            return _unknown_symbol(symbol)

    @app.get("/api/v1/marketdata/{symbol}/l2", summary="Price levels (L2 snapshot)")
    async def l2(
        symbol: str, depth: Annotated[int, Query(ge=1, le=L2_DEPTH)] = L2_DEPTH
    ) -> Response:
        try:
            return _json(feed.snapshot("l2", symbol, depth=depth))
        except KeyError:
            return _unknown_symbol(symbol)

    @app.get("/api/v1/marketdata/{symbol}/l3", summary="Displayed orders (L3 snapshot)")
    async def l3(symbol: str) -> Response:
        try:
            return _json(feed.snapshot("l3", symbol))
        except KeyError:
            return _unknown_symbol(symbol)

    @app.get("/api/v1/marketdata/{symbol}/trades", summary="Recent trades, oldest first")
    async def trades(
        symbol: str, limit: Annotated[int, Query(ge=1, le=MAX_TRADES)] = SNAPSHOT_TRADES
    ) -> Response:
        try:
            return _json(feed.snapshot("trade", symbol, limit=limit))
        except KeyError:
            return _unknown_symbol(symbol)

    @app.get("/api/v1/marketdata/{symbol}/bars", summary="OHLCV bars, oldest first")
    async def bars(
        symbol: str,
        interval: str = "1m",
        limit: Annotated[int, Query(ge=1, le=MAX_BAR_HISTORY + 1)] = 100,
    ) -> Response:
        if interval not in feed.bars.intervals:
            known = ", ".join(feed.bars.intervals)
            return _error(422, "unknown_interval", f"interval {interval!r} not in {known}")
        try:
            return _json(feed.bar_history(symbol, interval, limit))
        except KeyError:
            return _unknown_symbol(symbol)

    @app.websocket(WS_PATH)
    async def marketdata_ws(websocket: WebSocket) -> None:
        await websocket.accept()
        peer = websocket.client
        client_id = f"{peer.host}:{peer.port}#{next(ids)}" if peer else f"ws#{next(ids)}"
        sub = feed.connect(client_id)
        writer = asyncio.create_task(pump(sub, websocket.send_text))

        def stop_writer(_reason: str) -> None:
            writer.cancel()

        sub.on_drop = stop_writer
        reader = asyncio.create_task(_read(websocket, feed, sub))
        try:
            await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            reader.cancel()
            writer.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
            feed.disconnect(sub)
        if sub.dropped is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    websocket.close(CLOSE_POLICY_VIOLATION, sub.dropped), CLOSE_TIMEOUT_S
                )

    return app
