"""Alpaca's real-time stock data WebSocket (``/v2/{feed}``) over the broker's ``MarketHistory``.

``add_market_stream(app_or_router, history, check_key)`` adds the route and returns the
``MarketStream`` serving it. The protocol is Alpaca's, as alpaca-py's ``StockDataStream``
speaks it (docs/alpaca-market-data.md has the details):

- on connect the server sends ``[{"T":"success","msg":"connected"}]``; the client
  authenticates with ``{"action":"auth","key":..,"secret":..}`` within ``AUTH_TIMEOUT_S``
  (or with the ``APCA-API-KEY-ID``/``APCA-API-SECRET-KEY`` headers of the handshake) and gets
  ``[{"T":"success","msg":"authenticated"}]``, or an error and the connection is closed;
- ``{"action":"subscribe"|"unsubscribe","trades":[..],"quotes":[..],"bars":[..],
  "updatedBars":[..],"dailyBars":[..],"statuses":[..],"lulds":[..]}`` (``"*"`` = every
  symbol) is answered with the whole subscription as ``{"T":"subscription",...}``;
- data arrive in arrays: trades ``{"T":"t"}``, quotes ``{"T":"q"}``, minute bars ``{"T":"b"}``
  when a minute is complete, ``{"T":"u"}`` when a late trade changed a minute already sent,
  daily bars ``{"T":"d"}`` after each minute bar;
- errors are ``{"T":"error","code":..,"msg":..}`` with Alpaca's codes (``ERROR_CODES``).

Frames are MessagePack (binary; times as MessagePack timestamps with nanoseconds, prices as
float64, which MessagePack needs) when the handshake says ``Content-Type: application/msgpack``
(alpaca-py always does), JSON text otherwise (times RFC 3339, prices exact JSON numbers).

Each batch of history updates is encoded once per format and fanned out; a connection whose
queue would exceed ``max_queued`` messages is dropped (error 407 "slow client", then closed):
the publisher never waits. While connections are open, a clock task calls
``history.close_until(clock() - BAR_CLOSE_GRACE_NS)`` every ``BAR_CLOCK_INTERVAL_S`` so that
minute bars are sent in a quiet market too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, Final

import msgspec
from fastapi import APIRouter, FastAPI, WebSocket

from tradingfloor.broker.api.market_data import bar_body, encode_json, quote_body, trade_body
from tradingfloor.broker.market.history import (
    MarketHistory,
    MarketUpdate,
    QuoteUpdate,
    TradeUpdate,
)

__all__ = [
    "AUTH_TIMEOUT_S",
    "BAR_CLOCK_INTERVAL_S",
    "BAR_CLOSE_GRACE_NS",
    "CHANNELS",
    "CLOSE_TIMEOUT_S",
    "ERROR_CODES",
    "FEEDS",
    "MAX_CONNECTIONS",
    "MAX_INBOUND_BYTES",
    "MAX_QUEUED_MESSAGES",
    "MAX_SUBSCRIPTIONS",
    "STREAM_PATH",
    "KeyCheck",
    "MarketStream",
    "add_market_stream",
]

_log = logging.getLogger(__name__)

STREAM_PATH: Final = "/v2/{feed}"
FEEDS: Final = frozenset({"iex", "sip", "delayed_sip", "boats", "overnight", "otc", "test"})
AUTH_TIMEOUT_S: Final = 10.0
MAX_QUEUED_MESSAGES: Final = 10_000  # per connection; one more and it is dropped
MAX_SUBSCRIPTIONS: Final = 10_000  # (channel, symbol) pairs per connection
MAX_CONNECTIONS: Final = 1_000
MAX_INBOUND_BYTES: Final = 1 << 20
MAX_SYMBOL_LENGTH: Final = 32
CLOSE_TIMEOUT_S: Final = 5.0  # give up sending the last frames to a peer that never reads
BAR_CLOCK_INTERVAL_S: Final = 1.0
BAR_CLOSE_GRACE_NS: Final = 1_000_000_000  # let the venue's last events of a minute arrive

# Subscribable channels, in the order of the subscription message.
CHANNELS: Final = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")
_TRADE_ECHOES: Final = ("corrections", "cancelErrors")  # follow "trades", as at Alpaca

ERROR_CODES: Final[dict[int, str]] = {
    400: "invalid syntax",
    401: "not authenticated",
    402: "auth failed",
    403: "already authenticated",
    404: "auth timeout",
    405: "symbol limit exceeded",
    406: "connection limit exceeded",
    407: "slow client",
    500: "internal error",
}
_WS_NORMAL: Final = 1000
_WS_POLICY: Final = 1008
_WS_TRY_AGAIN: Final = 1013

# bar kind -> (message type, channel)
_BAR_TYPES: Final = {
    "bar": ("b", "bars"),
    "updated_bar": ("u", "updatedBars"),
    "daily_bar": ("d", "dailyBars"),
}

KeyCheck = Callable[[str, str], Awaitable[bool]]
"""``check_key(key_id, secret)``: True when the pair may read market data."""


def _msgpack_time(ts_ns: int) -> msgspec.msgpack.Ext:
    """A MessagePack timestamp (extension -1) with nanoseconds."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    if 0 <= seconds < 1 << 34:
        return msgspec.msgpack.Ext(-1, struct.pack(">Q", nanos << 34 | seconds))
    return msgspec.msgpack.Ext(-1, struct.pack(">Iq", nanos, seconds))


def _float(value: Decimal) -> object:
    # MessagePack has no decimal type; Alpaca sends float64. A price of at most 15
    # significant digits survives the round trip to its shortest repr exactly.
    return float(value)


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def _channel(update: MarketUpdate) -> str:
    if isinstance(update, TradeUpdate):
        return "trades"
    if isinstance(update, QuoteUpdate):
        return "quotes"
    return _BAR_TYPES[update.kind][1]


def _message(history: MarketHistory, update: MarketUpdate, binary: bool) -> dict[str, Any]:
    fmt: dict[str, Any] = {"ts": _msgpack_time, "number": _float} if binary else {}
    symbol = update.symbol
    if isinstance(update, TradeUpdate):
        body = trade_body(history, symbol, update.trade, **fmt)
        return {"T": "t", "S": symbol, **body}
    if isinstance(update, QuoteUpdate):
        body = quote_body(history, symbol, update.quote, **fmt)
        return {"T": "q", "S": symbol, **body}
    body = bar_body(history, symbol, update.bar, **fmt)
    return {"T": _BAR_TYPES[update.kind][0], "S": symbol, **body}


class _Connection:
    """One client: its subscriptions and bounded queue of encoded frames."""

    __slots__ = (
        "authenticated",
        "binary",
        "closing",
        "dropped",
        "max_queued",
        "on_drop",
        "pending",
        "queue",
        "ready",
        "subs",
    )

    def __init__(self, binary: bool, max_queued: int) -> None:
        self.binary = binary
        self.max_queued = max_queued
        self.authenticated = False
        self.subs: dict[str, dict[str, None]] = {c: {} for c in CHANNELS}
        # (frame, messages in it, close code to send after it or 0)
        self.queue: deque[tuple[bytes | str, int, int]] = deque()
        self.pending = 0
        self.ready = asyncio.Event()
        self.closing = False  # a close is queued: nothing more is taken
        self.dropped = False
        self.on_drop: Callable[[], None] | None = None

    def wants(self, channel: str, symbol: str) -> bool:
        subs = self.subs[channel]
        return bool(subs) and (symbol in subs or "*" in subs)

    def encode(self, messages: list[dict[str, Any]]) -> bytes | str:
        if self.binary:
            return msgspec.msgpack.encode(messages)
        return encode_json(messages).decode()

    def push(self, frame: bytes | str, n: int, close_code: int = 0) -> bool:
        """Queue a frame; False (nothing queued) when it would exceed the bound."""
        if self.closing:
            return True
        if self.pending + n > self.max_queued:
            return False
        self.queue.append((frame, n, close_code))
        self.pending += n
        if close_code:
            self.closing = True
        self.ready.set()
        return True

    def control(self, message: dict[str, Any], close_code: int = 0) -> bool:
        return self.push(self.encode([message]), 1, close_code)

    def error(self, code: int, close_code: int = 0) -> bool:
        return self.control({"T": "error", "code": code, "msg": ERROR_CODES[code]}, close_code)

    def subscription(self) -> dict[str, Any]:
        message: dict[str, Any] = {"T": "subscription"}
        for channel in CHANNELS:
            message[channel] = list(self.subs[channel])
        for channel in _TRADE_ECHOES:
            message[channel] = list(self.subs["trades"])
        return message


class MarketStream:
    """The WebSocket side of ``add_market_stream``: connections and the fan-out of updates."""

    def __init__(
        self,
        history: MarketHistory,
        check_key: KeyCheck,
        *,
        clock: Callable[[], int] = time.time_ns,
        max_queued: int = MAX_QUEUED_MESSAGES,
        max_connections: int = MAX_CONNECTIONS,
        max_subscriptions: int = MAX_SUBSCRIPTIONS,
    ) -> None:
        if max_queued < 2:
            raise ValueError(f"max_queued {max_queued} < 2")
        self.history = history
        self._check_key = check_key
        self._clock = clock
        self._max_queued = max_queued
        self._max_connections = max_connections
        self._max_subscriptions = max_subscriptions
        self._connections: set[_Connection] = set()
        self._clock_task: asyncio.Task[None] | None = None
        self._remove_listener: Callable[[], None] | None = history.add_listener(self._on_updates)
        self.drops = 0  # connections dropped as slow clients
        self.published = 0  # data messages queued, over all connections

    @property
    def connections(self) -> int:
        return len(self._connections)

    def subscribers(self, channel: str, symbol: str) -> int:
        """Authenticated connections that receive ``channel`` for ``symbol``."""
        return sum(1 for c in self._connections if c.authenticated and c.wants(channel, symbol))

    def close(self) -> None:
        """Stop listening to the history (connections end with the server)."""
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None
        if self._clock_task is not None:
            self._clock_task.cancel()
            self._clock_task = None

    # ------------------------------------------------------------------ fan-out

    def _on_updates(self, updates: Sequence[MarketUpdate]) -> None:
        if not self._connections:
            return
        channels = [_channel(u) for u in updates]
        encoded: dict[bool, list[bytes | None]] = {
            False: [None] * len(updates),
            True: [None] * len(updates),
        }
        for conn in list(self._connections):
            if not conn.authenticated or conn.closing:
                continue
            picked = [i for i, u in enumerate(updates) if conn.wants(channels[i], u.symbol)]
            if not picked:
                continue
            parts = encoded[conn.binary]
            for i in picked:
                if parts[i] is None:
                    message = _message(self.history, updates[i], conn.binary)
                    parts[i] = (
                        msgspec.msgpack.encode(message) if conn.binary else encode_json(message)
                    )
            chosen = [p for p in (parts[i] for i in picked) if p is not None]
            frame: bytes | str
            if conn.binary:
                frame = _array_header(len(chosen)) + b"".join(chosen)
            else:
                frame = (b"[" + b",".join(chosen) + b"]").decode()
            if conn.push(frame, len(chosen)):
                self.published += len(chosen)
            else:
                self._drop(conn)

    def _drop(self, conn: _Connection) -> None:
        """A slow client: forget its queue, tell it why and close (never wait for it)."""
        self.drops += 1
        conn.dropped = True
        conn.queue.clear()
        conn.pending = 0
        conn.error(407, _WS_POLICY)
        if conn.on_drop is not None:
            conn.on_drop()

    # ------------------------------------------------------------------ bar clock

    def _attach(self, conn: _Connection) -> None:
        self._connections.add(conn)
        if self._clock_task is None or self._clock_task.done():
            self._clock_task = asyncio.create_task(self._run_clock(), name="alpaca-bar-clock")

    def _detach(self, conn: _Connection) -> None:
        self._connections.discard(conn)
        if not self._connections and self._clock_task is not None:
            self._clock_task.cancel()
            self._clock_task = None

    async def _run_clock(self) -> None:
        while True:
            await asyncio.sleep(BAR_CLOCK_INTERVAL_S)
            try:
                self.history.close_until(self._clock() - BAR_CLOSE_GRACE_NS)
            except Exception:
                _log.exception("closing minute bars failed")

    # ------------------------------------------------------------------ a connection

    async def serve(self, websocket: WebSocket, feed: str) -> None:
        """Run one client connection until it or the server goes away."""
        if feed not in FEEDS:
            await websocket.close(code=_WS_POLICY)  # before accept: HTTP 403
            return
        await websocket.accept()
        binary = "msgpack" in websocket.headers.get("content-type", "").lower()
        conn = _Connection(binary, self._max_queued)
        conn.control({"T": "success", "msg": "connected"})
        if len(self._connections) >= self._max_connections:
            conn.error(406, _WS_TRY_AGAIN)
            await self._flush_and_close(websocket, conn)
            return
        self._attach(conn)
        try:
            key = websocket.headers.get("apca-api-key-id")
            secret = websocket.headers.get("apca-api-secret-key")
            if key is not None and secret is not None:
                await self._authenticate(conn, key, secret)
            writer = asyncio.create_task(self._write(websocket, conn))

            def stop_writer() -> None:
                writer.cancel()

            conn.on_drop = stop_writer
            reader = asyncio.create_task(self._read(websocket, conn))
            try:
                await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
            finally:
                reader.cancel()
                writer.cancel()
                await asyncio.gather(reader, writer, return_exceptions=True)
        finally:
            self._detach(conn)
        if conn.dropped:
            await self._flush_and_close(websocket, conn)

    async def _flush_and_close(self, websocket: WebSocket, conn: _Connection) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._write(websocket, conn), CLOSE_TIMEOUT_S)

    async def _write(self, websocket: WebSocket, conn: _Connection) -> None:
        """Send queued frames in order; after a frame that carries a close code, close."""
        while True:
            while conn.queue:
                frame, n, close_code = conn.queue.popleft()
                conn.pending -= n
                if isinstance(frame, bytes):
                    await websocket.send_bytes(frame)
                else:
                    await websocket.send_text(frame)
                if close_code:
                    await websocket.close(close_code)
                    return
            conn.ready.clear()
            await conn.ready.wait()

    async def _read(self, websocket: WebSocket, conn: _Connection) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + AUTH_TIMEOUT_S
        while True:
            if conn.authenticated or conn.closing:
                message = await websocket.receive()
            else:
                try:
                    message = await asyncio.wait_for(
                        websocket.receive(), max(deadline - loop.time(), 0.0)
                    )
                except TimeoutError:
                    conn.error(404, _WS_POLICY)
                    continue
            if message["type"] == "websocket.disconnect":
                return
            if conn.closing:
                continue
            text = message.get("text")
            data: bytes | str = text if text is not None else (message.get("bytes") or b"")
            await self._handle(conn, data)

    async def _handle(self, conn: _Connection, data: bytes | str) -> None:
        request = _decode(data)
        if request is None:
            conn.error(400)
            return
        action = request.get("action")
        if action == "auth":
            key, secret = request.get("key"), request.get("secret")
            if conn.authenticated:
                conn.error(403)
            elif not isinstance(key, str) or not isinstance(secret, str):
                conn.error(400)
            else:
                await self._authenticate(conn, key, secret)
            return
        if action not in ("subscribe", "unsubscribe"):
            conn.error(400)
            return
        if not conn.authenticated:
            conn.error(401)
            return
        changes: dict[str, list[str]] = {}
        for channel in CHANNELS:
            symbols = request.get(channel)
            if symbols is None:
                continue
            if not isinstance(symbols, list) or not all(
                isinstance(s, str) and 0 < len(s) <= MAX_SYMBOL_LENGTH for s in symbols
            ):
                conn.error(400)
                return
            changes[channel] = symbols
        if action == "subscribe":
            added = sum(
                1 for c, symbols in changes.items() for s in set(symbols) if s not in conn.subs[c]
            )
            if sum(map(len, conn.subs.values())) + added > self._max_subscriptions:
                conn.error(405)
                return
            for channel, symbols in changes.items():
                conn.subs[channel].update(dict.fromkeys(symbols))
        else:
            for channel, symbols in changes.items():
                for s in symbols:
                    conn.subs[channel].pop(s, None)
        conn.control(conn.subscription())

    async def _authenticate(self, conn: _Connection, key: str, secret: str) -> None:
        try:
            ok = await self._check_key(key, secret)
        except Exception:
            _log.exception("checking an API key failed")
            conn.error(500, _WS_TRY_AGAIN)
            return
        if ok:
            conn.authenticated = True
            conn.control({"T": "success", "msg": "authenticated"})
        else:
            conn.error(402, _WS_POLICY)


def _decode(data: bytes | str) -> dict[str, Any] | None:
    """A client request: JSON text, or MessagePack (or JSON) bytes; None if not an object."""
    if len(data) > MAX_INBOUND_BYTES:
        return None
    request: object
    try:
        if isinstance(data, str):
            request = msgspec.json.decode(data)
        else:
            try:
                request = msgspec.msgpack.decode(data)
            except msgspec.DecodeError:
                request = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return None
    return request if isinstance(request, dict) else None


def add_market_stream(
    app_or_router: FastAPI | APIRouter,
    history: MarketHistory,
    check_key: KeyCheck,
    *,
    clock: Callable[[], int] = time.time_ns,
    max_queued: int = MAX_QUEUED_MESSAGES,
    max_connections: int = MAX_CONNECTIONS,
    max_subscriptions: int = MAX_SUBSCRIPTIONS,
) -> MarketStream:
    """Add the ``/v2/{feed}`` WebSocket route to ``app_or_router``; return its stream.

    The route authenticates in-band with ``check_key``: add it where no HTTP auth dependency
    applies (alpaca-py sends no credentials in the handshake).
    """
    stream = MarketStream(
        history,
        check_key,
        clock=clock,
        max_queued=max_queued,
        max_connections=max_connections,
        max_subscriptions=max_subscriptions,
    )

    @app_or_router.websocket(STREAM_PATH, name="alpaca_market_stream")
    async def alpaca_market_stream(websocket: WebSocket, feed: str) -> None:
        await stream.serve(websocket, feed)

    return stream
