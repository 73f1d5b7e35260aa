"""Alpaca's ``trade_updates`` stream over WebSocket at ``/stream``.

The client authenticates first (``{"action": "authenticate", "data": {"key_id", "secret_key"}}``
or ``{"oauth_token": <access token>}``), then listens (``{"action": "listen", "data":
{"streams": ["trade_updates"]}}``) and receives every order event of its account as
``{"stream": "trade_updates", "data": {"event", "order", "timestamp", ...}}``. The broker
never waits for a client: a connection whose queue is full is closed with 1008. Revocation
reaches open streams too: every ``REVALIDATE_S`` the connection's credential is checked, and
once its API key is revoked, its session ended (logout) or its user disabled, the client gets
an ``unauthorized`` authorization message and the connection is closed with 1008.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any, Final

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from tradingfloor.broker.api.alpaca_json import trade_update_json
from tradingfloor.broker.api.auth import Authenticator, Principal
from tradingfloor.broker.errors import BrokerError
from tradingfloor.broker.identity.roles import Permission
from tradingfloor.broker.service import Broker, TradeUpdate

__all__ = ["MAX_QUEUED_UPDATES", "REVALIDATE_S", "STREAM_PATH", "trade_stream_router"]

STREAM_PATH: Final = "/stream"
MAX_QUEUED_UPDATES: Final = 10_000
AUTH_TIMEOUT_S: Final = 10.0
MAX_CLIENT_MESSAGE: Final = 4_096
REVALIDATE_S: Final = 1.0  # how often an open stream's credential is checked


class _Subscriber:
    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(MAX_QUEUED_UPDATES)
        self.listening = False
        self.dropped = False


def trade_stream_router(
    broker: Broker, auth: Authenticator, *, clock: Callable[[], int] = time.time_ns
) -> APIRouter:
    router = APIRouter()
    by_account: dict[str, set[_Subscriber]] = {}

    def publish(update: TradeUpdate) -> None:
        subscribers = by_account.get(update.account_id)
        if not subscribers:
            return
        text = json.dumps(trade_update_json(broker, update), separators=(",", ":"))
        for sub in list(subscribers):
            if not sub.listening or sub.dropped:
                continue
            try:
                sub.queue.put_nowait(text)
            except asyncio.QueueFull:
                sub.dropped = True
                with contextlib.suppress(asyncio.QueueEmpty):
                    sub.queue.get_nowait()
                sub.queue.put_nowait(None)

    broker.add_trade_update_listener(publish, wants=by_account.__contains__)

    async def authenticate(message: Any) -> Principal:
        if not isinstance(message, dict):
            raise BrokerError(40110000, "first message must authenticate")
        data = message.get("data")
        if message.get("action") not in ("authenticate", "auth") or not isinstance(data, dict):
            raise BrokerError(40110000, "first message must authenticate")
        token = data.get("oauth_token")
        if isinstance(token, str) and token:
            return await auth.principal_from_token(token, clock())
        key_id, secret = data.get("key_id"), data.get("secret_key")
        if not isinstance(key_id, str) or not isinstance(secret, str):
            raise BrokerError(40110000, "key_id and secret_key are required")
        return await auth.principal_from_key(key_id, secret, clock())

    async def send(ws: WebSocket, stream: str, data: dict[str, Any]) -> None:
        await ws.send_text(json.dumps({"stream": stream, "data": data}, separators=(",", ":")))

    async def guard_credential(ws: WebSocket, who: Principal) -> None:
        """Close the stream once its credential is revoked (checked every REVALIDATE_S)."""
        while auth.credential_active(who):
            await asyncio.sleep(REVALIDATE_S)
        with contextlib.suppress(Exception):
            await send(
                ws,
                "authorization",
                {"action": "authenticate", "status": "unauthorized", "message": "revoked"},
            )
            await ws.close(code=1008, reason="the credential was revoked")

    @router.websocket(STREAM_PATH)
    async def stream(ws: WebSocket) -> None:
        await ws.accept()
        try:
            raw = await asyncio.wait_for(ws.receive_text(), AUTH_TIMEOUT_S)
            who = await authenticate(json.loads(raw[:MAX_CLIENT_MESSAGE]))
            if not who.can(Permission.VIEW_ACCOUNT) or who.account_id is None:
                raise BrokerError(40310100, "no account to stream")
        except (TimeoutError, ValueError, BrokerError, WebSocketDisconnect) as exc:
            reason = exc.message if isinstance(exc, BrokerError) else "authentication failed"
            with contextlib.suppress(Exception):
                await send(
                    ws,
                    "authorization",
                    {"action": "authenticate", "status": "unauthorized", "message": reason},
                )
                await ws.close(code=1008, reason=reason[:120])
            return
        await send(ws, "authorization", {"action": "authenticate", "status": "authorized"})
        sub = _Subscriber(who.account_id)
        by_account.setdefault(sub.account_id, set()).add(sub)
        writer = asyncio.create_task(_write(ws, sub))
        guard = asyncio.create_task(guard_credential(ws, who))
        try:
            while True:
                raw = await ws.receive_text()
                try:
                    message = json.loads(raw[:MAX_CLIENT_MESSAGE])
                except ValueError:
                    await send(ws, "error", {"message": "messages must be JSON"})
                    continue
                if not isinstance(message, dict):
                    message = {}
                data = message.get("data")
                streams = data.get("streams") if isinstance(data, dict) else None
                if message.get("action") != "listen" or not isinstance(streams, list):
                    await send(ws, "error", {"message": "expected a listen action"})
                    continue
                sub.listening = "trade_updates" in streams
                await send(ws, "listening", {"streams": ["trade_updates"] if sub.listening else []})
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            subs = by_account.get(sub.account_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del by_account[sub.account_id]
            for task in (writer, guard):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    return router


async def _write(ws: WebSocket, sub: _Subscriber) -> None:
    while True:
        text = await sub.queue.get()
        if text is None:
            with contextlib.suppress(Exception):
                await ws.close(code=1008, reason="slow consumer: updates were dropped")
            return
        await ws.send_text(text)
