"""Alpaca Market Data API v2 (stocks) over the broker's ``MarketHistory``: bars, trades, quotes.

``market_data_router(history, auth)`` serves the paths, query parameters and JSON shapes of
Alpaca's ``/v2/stocks/...`` endpoints as the alpaca-py ``StockHistoricalDataClient`` calls and
parses them (docs/alpaca-market-data.md lists them and what differs from Alpaca). ``auth`` is
a FastAPI dependency attached to every route (the integrator's API-key check).

Prices leave as JSON numbers rendered exactly from ``Decimal`` (never through float);
timestamps are RFC 3339 in UTC with up to nine fractional digits. Errors answer with Alpaca's
shape ``{"code": 42210000, "message": "..."}``: 422 for bad parameters, 404 for an unlisted
symbol on a single-symbol "latest" or snapshot endpoint. Time series of an unlisted symbol
are empty, as Alpaca answers them; multi-symbol answers leave out symbols without data.

Handlers are ``async`` so that they run on the event-loop thread, the thread that feeds the
history: a query never sees a half-applied command.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import re
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, TypeVar

import msgspec
from fastapi import APIRouter, Depends
from fastapi.responses import Response

from tradingfloor.broker.errors import ErrorCode
from tradingfloor.broker.market.history import (
    NS_PER_DAY,
    NS_PER_MINUTE,
    BarRecord,
    MarketHistory,
    QuoteRecord,
    TradeRecord,
)
from tradingfloor.exchange.engine.types import Phase

__all__ = [
    "DEFAULT_LIMIT",
    "EXCHANGE_CODE",
    "MAX_LIMIT",
    "MAX_SYMBOLS_PER_REQUEST",
    "QUOTE_CONDITIONS",
    "TAPE",
    "MarketDataParamError",
    "bar_body",
    "encode_json",
    "market_data_router",
    "parse_time",
    "parse_timeframe",
    "quote_body",
    "rfc3339",
    "trade_body",
    "trade_conditions",
]

DEFAULT_LIMIT: Final = 1_000  # items per page when the request gives no limit
MAX_LIMIT: Final = 10_000  # largest limit accepted (Alpaca's)
MAX_SYMBOLS_PER_REQUEST: Final = 1_000
MAX_SYMBOL_LENGTH: Final = 32
EXCHANGE_CODE: Final = "V"  # this venue's exchange code in trades and quotes
TAPE: Final = "C"
QUOTE_CONDITIONS: Final = ("R",)  # regular, two-sided quote
_REGULAR_SALE: Final = "@"
_AUCTION_CONDITIONS: Final = {
    Phase.OPENING_AUCTION: "O",  # opening prints
    Phase.CLOSING_AUCTION: "6",  # closing prints
}
_OTHER_AUCTION: Final = "5"  # re-opening prints (an auction ending a halt)

_encoder: Final = msgspec.json.Encoder(decimal_format="number")
_SYMBOL_RE: Final = re.compile(rf"[A-Za-z0-9.\-/:]{{1,{MAX_SYMBOL_LENGTH}}}")
_TIME_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+\- ]\d{2}:?\d{2})?)?"
)
_TIMEFRAME_RE: Final = re.compile(r"(\d{1,3})?(Min|T|Hour|H|Day|D|Week|W|Month|M)")
_UNIT_NS: Final = {"Min": NS_PER_MINUTE, "T": NS_PER_MINUTE, "Hour": 60 * NS_PER_MINUTE}
_UNIT_NS.update({"H": 60 * NS_PER_MINUTE, "Day": NS_PER_DAY, "D": NS_PER_DAY})
_UNIT_MAX: Final = {NS_PER_MINUTE: 59, 60 * NS_PER_MINUTE: 23, NS_PER_DAY: 1}


class MarketDataParamError(ValueError):
    """A request parameter is invalid: answered 422 with code 42210000."""


def encode_json(content: object) -> bytes:
    """Compact JSON with every ``Decimal`` as an exact JSON number."""
    return _encoder.encode(content)


def _json(content: object, status_code: int = 200) -> Response:
    return Response(encode_json(content), status_code, media_type="application/json")


def _error(status_code: int, code: int, message: str) -> Response:
    return _json({"code": code, "message": message}, status_code)


# ---------------------------------------------------------------------------- rendering


def rfc3339(ts_ns: int) -> str:
    """RFC 3339 in UTC: ``2024-01-02T15:04:05.123456789Z`` (no fraction when it is zero)."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{text}.{nanos:09d}Z" if nanos else f"{text}Z"


def _same(value: Decimal) -> object:
    return value


def trade_conditions(trade: TradeRecord) -> list[str]:
    """CTA-style sale conditions: regular sale, or the kind of auction print."""
    if trade.taker_side:
        return [_REGULAR_SALE]
    return [_REGULAR_SALE, _AUCTION_CONDITIONS.get(trade.phase, _OTHER_AUCTION)]


def trade_body(
    history: MarketHistory,
    symbol: str,
    trade: TradeRecord,
    *,
    ts: Callable[[int], object] = rfc3339,
    number: Callable[[Decimal], object] = _same,
) -> dict[str, Any]:
    """A trade in Alpaca's fields; ``ts``/``number`` render the time and prices."""
    return {
        "t": ts(trade.ts),
        "x": EXCHANGE_CODE,
        "p": number(history.price(symbol, trade.price)),
        "s": trade.size,
        "c": trade_conditions(trade),
        "i": trade.trade_id,
        "z": TAPE,
    }


def quote_body(
    history: MarketHistory,
    symbol: str,
    quote: QuoteRecord,
    *,
    ts: Callable[[int], object] = rfc3339,
    number: Callable[[Decimal], object] = _same,
) -> dict[str, Any]:
    """A quote in Alpaca's fields; an empty side has price 0 and size 0."""
    return {
        "t": ts(quote.ts),
        "ax": EXCHANGE_CODE,
        "ap": number(history.price(symbol, quote.ask)),
        "as": quote.ask_size,
        "bx": EXCHANGE_CODE,
        "bp": number(history.price(symbol, quote.bid)),
        "bs": quote.bid_size,
        "c": list(QUOTE_CONDITIONS),
        "z": TAPE,
    }


def bar_body(
    history: MarketHistory,
    symbol: str,
    bar: BarRecord,
    *,
    ts: Callable[[int], object] = rfc3339,
    number: Callable[[Decimal], object] = _same,
) -> dict[str, Any]:
    """A bar in Alpaca's fields (``t`` is the bar's start)."""
    return {
        "t": ts(bar.start),
        "o": number(history.price(symbol, bar.open)),
        "h": number(history.price(symbol, bar.high)),
        "l": number(history.price(symbol, bar.low)),
        "c": number(history.price(symbol, bar.close)),
        "v": bar.volume,
        "n": bar.trade_count,
        "vw": number(history.vwap(symbol, bar)),
    }


# ---------------------------------------------------------------------------- parameters


def parse_time(value: str, name: str = "time") -> int:
    """RFC 3339 (any offset, up to nine fractional digits; no offset = UTC) or a date
    (midnight UTC) to ns since the epoch. A space stands for "+" (an unencoded query)."""
    m = _TIME_RE.fullmatch(value.strip())
    if m is None:
        raise MarketDataParamError(f"invalid {name}: {value!r} is not RFC 3339 or a date")
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in m.groups()[:6])
    fraction, offset = m.group(7), m.group(8)
    try:
        datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise MarketDataParamError(f"invalid {name}: {value!r}: {exc}") from None
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if offset and offset not in ("Z", "z"):
        digits = offset[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:])
        if hours > 23 or minutes > 59:
            raise MarketDataParamError(f"invalid {name}: {value!r}: bad offset")
        shift = (hours * 60 + minutes) * 60
        seconds -= -shift if offset[0] == "-" else shift
    nanos = int((fraction or "").ljust(9, "0"))
    return seconds * 1_000_000_000 + nanos


def parse_timeframe(value: str) -> int:
    """An Alpaca timeframe (``1Min``..``59Min``, ``1Hour``..``23Hour``, ``1Day``; ``T``,
    ``H``, ``D`` as aliases) to its length in ns; weeks and months are not supported."""
    m = _TIMEFRAME_RE.fullmatch(value.strip())
    if m is None:
        raise MarketDataParamError(f"invalid timeframe: {value!r}")
    amount = int(m.group(1) or 1)
    unit = _UNIT_NS.get(m.group(2))
    if unit is None:
        raise MarketDataParamError(f"unsupported timeframe: {value!r} (weeks and months)")
    if not 1 <= amount <= _UNIT_MAX[unit]:
        raise MarketDataParamError(f"invalid timeframe: {value!r}: amount out of range")
    return amount * unit


def _parse_limit(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        raise MarketDataParamError(f"invalid limit: {value!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise MarketDataParamError(f"invalid limit: {limit} is not between 1 and {MAX_LIMIT}")
    return limit


def _parse_sort(value: str | None) -> bool:
    if value is None or value == "" or value == "asc":
        return True
    if value == "desc":
        return False
    raise MarketDataParamError(f"invalid sort: {value!r} (asc or desc)")


def _parse_symbols(value: str | None) -> list[str]:
    symbols = list(dict.fromkeys(s.strip() for s in (value or "").split(",") if s.strip()))
    if not symbols:
        raise MarketDataParamError("missing symbols")
    if len(symbols) > MAX_SYMBOLS_PER_REQUEST:
        raise MarketDataParamError(f"more than {MAX_SYMBOLS_PER_REQUEST} symbols")
    for symbol in symbols:
        _check_symbol(symbol)
    return symbols


def _check_symbol(symbol: str) -> None:
    if _SYMBOL_RE.fullmatch(symbol) is None:
        raise MarketDataParamError(f"invalid symbol: {symbol!r}")


class _Token(msgspec.Struct, array_like=True, frozen=True):
    symbol: str
    key: int
    ascending: bool


def _encode_token(symbol: str, key: int, ascending: bool) -> str:
    raw = msgspec.msgpack.encode(_Token(symbol, key, ascending))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(value: str | None, ascending: bool) -> _Token | None:
    if value is None or value == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        token = msgspec.msgpack.decode(raw, type=_Token)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise MarketDataParamError("invalid page_token") from None
    if token.ascending != ascending:
        raise MarketDataParamError("invalid page_token: it was made for the other sort order")
    return token


class _Range(msgspec.Struct, frozen=True):
    start_ns: int | None
    end_ns: int | None  # exclusive
    limit: int
    ascending: bool
    token: _Token | None


def _parse_range(
    start: str | None, end: str | None, limit: str | None, sort: str | None, page: str | None
) -> _Range:
    start_ns = None if not start else parse_time(start, "start")
    # Alpaca's end is inclusive; the history's is exclusive.
    end_ns = None if not end else parse_time(end, "end") + 1
    if start_ns is not None and end_ns is not None and end_ns <= start_ns:
        raise MarketDataParamError("invalid time range: end is before start")
    ascending = _parse_sort(sort)
    return _Range(start_ns, end_ns, _parse_limit(limit), ascending, _decode_token(page, ascending))


# ---------------------------------------------------------------------------- queries

_R = TypeVar("_R", TradeRecord, QuoteRecord, BarRecord)


def _resolve(history: MarketHistory, symbol: str) -> str | None:
    """The listed symbol ``symbol`` names (exactly, or in upper case), or None."""
    if history.has_symbol(symbol):
        return symbol
    upper = symbol.upper()
    return upper if history.has_symbol(upper) else None


def _page(
    history: MarketHistory,
    symbols: list[str],
    rng: _Range,
    fetch: Callable[[str, int, int | None], Sequence[_R]],
    key: Callable[[_R], int],
) -> tuple[dict[str, Sequence[_R]], str | None]:
    """One page over ``symbols`` (by symbol, then time): the items and the next page token."""
    listed = sorted({s for s in (_resolve(history, x) for x in symbols) if s is not None})
    token = rng.token
    if token is not None:
        listed = [s for s in listed if s >= token.symbol]
    remaining = rng.limit
    out: dict[str, Sequence[_R]] = {}
    for i, symbol in enumerate(listed):
        after = token.key if token is not None and symbol == token.symbol else None
        items = fetch(symbol, remaining + 1, after)
        if len(items) > remaining:
            items = items[:remaining]
            out[symbol] = items
            return out, _encode_token(symbol, key(items[-1]), rng.ascending)
        if items:
            out[symbol] = items
            remaining -= len(items)
        if remaining == 0:
            if any(fetch(later, 1, None) for later in listed[i + 1 :]):
                return out, _encode_token(symbol, key(items[-1]), rng.ascending)
            break
    return out, None


def _trades_page(
    history: MarketHistory, symbols: list[str], rng: _Range
) -> tuple[dict[str, list[dict[str, Any]]], str | None]:
    def fetch(symbol: str, limit: int, after: int | None) -> list[TradeRecord]:
        return history.trades(
            symbol, rng.start_ns, rng.end_ns, limit=limit, ascending=rng.ascending, after=after
        )

    page, token = _page(history, symbols, rng, fetch, lambda t: t.trade_id)
    return {s: [trade_body(history, s, t) for t in items] for s, items in page.items()}, token


def _quotes_page(
    history: MarketHistory, symbols: list[str], rng: _Range
) -> tuple[dict[str, list[dict[str, Any]]], str | None]:
    def fetch(symbol: str, limit: int, after: int | None) -> list[QuoteRecord]:
        return history.quotes(
            symbol, rng.start_ns, rng.end_ns, limit=limit, ascending=rng.ascending, after=after
        )

    page, token = _page(history, symbols, rng, fetch, lambda q: q.key)
    return {s: [quote_body(history, s, q) for q in items] for s, items in page.items()}, token


def _bars_page(
    history: MarketHistory, symbols: list[str], rng: _Range, length: int
) -> tuple[dict[str, list[dict[str, Any]]], str | None]:
    def fetch(symbol: str, limit: int, after: int | None) -> list[BarRecord]:
        return history.bars(
            symbol,
            length,
            rng.start_ns,
            rng.end_ns,
            limit=limit,
            ascending=rng.ascending,
            after=after,
        )

    page, token = _page(history, symbols, rng, fetch, lambda b: b.start)
    return {s: [bar_body(history, s, b) for b in items] for s, items in page.items()}, token


def _snapshot(history: MarketHistory, symbol: str) -> dict[str, Any]:
    trade = history.latest_trade(symbol)
    quote = history.latest_quote(symbol)
    minute = history.latest_bar(symbol)
    day = history.daily_bar(symbol)
    previous = history.previous_daily_bar(symbol)
    return {
        "latestTrade": None if trade is None else trade_body(history, symbol, trade),
        "latestQuote": None if quote is None else quote_body(history, symbol, quote),
        "minuteBar": None if minute is None else bar_body(history, symbol, minute),
        "dailyBar": None if day is None else bar_body(history, symbol, day),
        "prevDailyBar": None if previous is None else bar_body(history, symbol, previous),
    }


# ---------------------------------------------------------------------------- the router


def _latest(
    history: MarketHistory,
    symbols: str | None,
    latest: Callable[[str], Any],
    body: Callable[[MarketHistory, str, Any], object],
) -> dict[str, object]:
    """The latest bar/trade/quote of each listed symbol that has one."""
    out: dict[str, object] = {}
    for s in _parse_symbols(symbols):
        listed = _resolve(history, s)
        item = None if listed is None else latest(listed)
        if listed is not None and item is not None:
            out[listed] = body(history, listed, item)
    return out


def market_data_router(history: MarketHistory, auth: Callable[..., Any]) -> APIRouter:
    """The ``/v2/stocks`` market-data routes over ``history``; ``auth`` guards each one."""
    router = APIRouter(dependencies=[Depends(auth)], tags=["market data (Alpaca v2)"])

    def answer(build: Callable[[], object]) -> Response:
        try:
            return _json(build())
        except MarketDataParamError as exc:
            return _error(422, ErrorCode.INVALID, str(exc))

    def single(symbol: str) -> str:
        _check_symbol(symbol)
        return _resolve(history, symbol) or symbol

    def not_found(message: str) -> Response:
        return _error(404, ErrorCode.NOT_FOUND, message)

    # --- multi-symbol time series (what alpaca-py calls)

    @router.get("/v2/stocks/bars", summary="Bars of several symbols")
    async def bars(
        symbols: str | None = None,
        timeframe: str | None = None,
        start: str | None = None,
        end: str | None = None,
        limit: str | None = None,
        page_token: str | None = None,
        sort: str | None = None,
    ) -> Response:
        def build() -> object:
            length = parse_timeframe(timeframe or "")
            rng = _parse_range(start, end, limit, sort, page_token)
            data, token = _bars_page(history, _parse_symbols(symbols), rng, length)
            return {"bars": data, "next_page_token": token}

        return answer(build)

    @router.get("/v2/stocks/trades", summary="Trades of several symbols")
    async def trades(
        symbols: str | None = None,
        start: str | None = None,
        end: str | None = None,
        limit: str | None = None,
        page_token: str | None = None,
        sort: str | None = None,
    ) -> Response:
        def build() -> object:
            rng = _parse_range(start, end, limit, sort, page_token)
            data, token = _trades_page(history, _parse_symbols(symbols), rng)
            return {"trades": data, "next_page_token": token}

        return answer(build)

    @router.get("/v2/stocks/quotes", summary="Quotes of several symbols")
    async def quotes(
        symbols: str | None = None,
        start: str | None = None,
        end: str | None = None,
        limit: str | None = None,
        page_token: str | None = None,
        sort: str | None = None,
    ) -> Response:
        def build() -> object:
            rng = _parse_range(start, end, limit, sort, page_token)
            data, token = _quotes_page(history, _parse_symbols(symbols), rng)
            return {"quotes": data, "next_page_token": token}

        return answer(build)

    # --- multi-symbol latest and snapshots

    @router.get("/v2/stocks/bars/latest", summary="Latest minute bar of several symbols")
    async def latest_bars(symbols: str | None = None) -> Response:
        def build() -> object:
            return {"bars": _latest(history, symbols, history.latest_bar, bar_body)}

        return answer(build)

    @router.get("/v2/stocks/trades/latest", summary="Latest trade of several symbols")
    async def latest_trades(symbols: str | None = None) -> Response:
        def build() -> object:
            return {"trades": _latest(history, symbols, history.latest_trade, trade_body)}

        return answer(build)

    @router.get("/v2/stocks/quotes/latest", summary="Latest quote of several symbols")
    async def latest_quotes(symbols: str | None = None) -> Response:
        def build() -> object:
            return {"quotes": _latest(history, symbols, history.latest_quote, quote_body)}

        return answer(build)

    @router.get("/v2/stocks/snapshots", summary="Snapshots of several symbols")
    async def snapshots(symbols: str | None = None) -> Response:
        def build() -> object:
            out: dict[str, object] = {}
            for s in _parse_symbols(symbols):
                listed = _resolve(history, s)
                if listed is not None:
                    out[listed] = _snapshot(history, listed)
            return out

        return answer(build)

    # --- single-symbol forms

    @router.get("/v2/stocks/{symbol}/bars", summary="Bars of one symbol")
    async def symbol_bars(
        symbol: str,
        timeframe: str | None = None,
        start: str | None = None,
        end: str | None = None,
        limit: str | None = None,
        page_token: str | None = None,
        sort: str | None = None,
    ) -> Response:
        def build() -> object:
            name = single(symbol)
            length = parse_timeframe(timeframe or "")
            rng = _parse_range(start, end, limit, sort, page_token)
            data, token = _bars_page(history, [name], rng, length)
            return {"bars": data.get(name, []), "symbol": name, "next_page_token": token}

        return answer(build)

    @router.get("/v2/stocks/{symbol}/trades", summary="Trades of one symbol")
    async def symbol_trades(
        symbol: str,
        start: str | None = None,
        end: str | None = None,
        limit: str | None = None,
        page_token: str | None = None,
        sort: str | None = None,
    ) -> Response:
        def build() -> object:
            name = single(symbol)
            rng = _parse_range(start, end, limit, sort, page_token)
            data, token = _trades_page(history, [name], rng)
            return {"trades": data.get(name, []), "symbol": name, "next_page_token": token}

        return answer(build)

    @router.get("/v2/stocks/{symbol}/quotes", summary="Quotes of one symbol")
    async def symbol_quotes(
        symbol: str,
        start: str | None = None,
        end: str | None = None,
        limit: str | None = None,
        page_token: str | None = None,
        sort: str | None = None,
    ) -> Response:
        def build() -> object:
            name = single(symbol)
            rng = _parse_range(start, end, limit, sort, page_token)
            data, token = _quotes_page(history, [name], rng)
            return {"quotes": data.get(name, []), "symbol": name, "next_page_token": token}

        return answer(build)

    def latest_one(
        symbol: str,
        kind: str,
        latest: Callable[[str], Any],
        body: Callable[[MarketHistory, str, Any], object],
    ) -> Response:
        try:
            name = single(symbol)
        except MarketDataParamError as exc:
            return _error(422, ErrorCode.INVALID, str(exc))
        if not history.has_symbol(name):
            return not_found(f"symbol not found: {symbol}")
        item = latest(name)
        if item is None:
            return not_found(f"no {kind} found for {name}")
        return _json({"symbol": name, kind: body(history, name, item)})

    @router.get("/v2/stocks/{symbol}/bars/latest", summary="Latest minute bar of one symbol")
    async def symbol_latest_bar(symbol: str) -> Response:
        return latest_one(symbol, "bar", history.latest_bar, bar_body)

    @router.get("/v2/stocks/{symbol}/trades/latest", summary="Latest trade of one symbol")
    async def symbol_latest_trade(symbol: str) -> Response:
        return latest_one(symbol, "trade", history.latest_trade, trade_body)

    @router.get("/v2/stocks/{symbol}/quotes/latest", summary="Latest quote of one symbol")
    async def symbol_latest_quote(symbol: str) -> Response:
        return latest_one(symbol, "quote", history.latest_quote, quote_body)

    @router.get("/v2/stocks/{symbol}/snapshot", summary="Snapshot of one symbol")
    async def symbol_snapshot(symbol: str) -> Response:
        try:
            name = single(symbol)
        except MarketDataParamError as exc:
            return _error(422, ErrorCode.INVALID, str(exc))
        if not history.has_symbol(name):
            return not_found(f"symbol not found: {symbol}")
        return _json({"symbol": name, **_snapshot(history, name)})

    return router
