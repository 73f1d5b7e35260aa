"""The request's context at the HTTP edge: its request id, its caller, its `Actor`, and the access
log.

`RequestContext` is the outermost ASGI layer of the broker's app (and of the exchange's market
data app in ``serve``). For each HTTP request it

* takes the client's ``X-Request-ID`` when it is sane (``core.actor.sane_request_id``), else
  makes one, and returns it in the response's ``X-Request-ID`` header;
* writes one access-log line when the response is complete, to the ``tradingfloor.access``
  logger at INFO: method, path, status, duration, principal (user id and role, or ``-``),
  client address and port, and request id. ``serve`` sends that logger to a file
  (`open_access_log`), never to the console; nothing is formatted when the logger is off.

WebSocket connections get a request id too (for the actor of what they change), no log line.

Authentication (``api/auth.py``) calls `remember` once per request: it keeps the principal and
builds the request's `Actor` from it, the credential it used and the connection's address. Every
state-changing route takes that actor (`actor_dependency`) and hands it to the service, which
stores it with the change. Nothing below this module derives an actor from a request.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tradingfloor.core.actor import (
    MAX_ADDRESS_LENGTH,
    MAX_CREDENTIAL_ID_LENGTH,
    Actor,
    CredentialKind,
    new_request_id,
    sane_request_id,
)

if TYPE_CHECKING:
    from tradingfloor.broker.api.auth import Principal

__all__ = [
    "ACCESS_LOGGER",
    "REQUEST_ID_HEADER",
    "RequestContext",
    "actor_dependency",
    "actor_of",
    "open_access_log",
    "principal_of",
    "remember",
    "request_id_of",
]

REQUEST_ID_HEADER: Final = "X-Request-ID"
ACCESS_LOGGER: Final = "tradingfloor.access"

_access = logging.getLogger(ACCESS_LOGGER)
_HEADER: Final = REQUEST_ID_HEADER.lower().encode()
# keys in the ASGI scope's per-request "state" dict (uvicorn gives each request its own)
_REQUEST_ID: Final = "tf.request_id"
_PRINCIPAL: Final = "tf.principal"
_ACTOR: Final = "tf.actor"


def _state(scope: Scope) -> MutableMapping[str, Any]:
    state: MutableMapping[str, Any] = scope.setdefault("state", {})
    return state


def request_id_of(scope: Scope) -> str:
    """The request's id: set by `RequestContext`, else (an app served without it) made now."""
    state = _state(scope)
    rid: str | None = state.get(_REQUEST_ID)
    if rid is None:
        rid = state[_REQUEST_ID] = new_request_id()
    return rid


def principal_of(scope: Scope) -> Principal | None:
    """The request's authenticated principal, once `remember` has been called."""
    who: Principal | None = _state(scope).get(_PRINCIPAL)
    return who


def actor_of(scope: Scope) -> Actor | None:
    """The request's actor, once `remember` has been called."""
    actor: Actor | None = _state(scope).get(_ACTOR)
    return actor


def remember(scope: Scope, who: Principal) -> Actor:
    """Keep the request's principal and build its `Actor` (once per request)."""
    if who.key_id is not None:
        kind, credential = CredentialKind.API_KEY, who.key_id
    else:
        kind, credential = CredentialKind.TOKEN, who.token_id or "unknown"
    client = scope.get("client")
    host, port = (str(client[0]), int(client[1])) if client else ("", 0)
    actor = Actor(
        principal=who.user_id,
        role=who.role.value,
        credential_kind=kind,
        credential_id=credential[:MAX_CREDENTIAL_ID_LENGTH],
        address=host[:MAX_ADDRESS_LENGTH],
        port=port,
        request_id=request_id_of(scope),
    )
    state = _state(scope)
    state[_PRINCIPAL] = who
    state[_ACTOR] = actor
    return actor


def actor_dependency(
    principal: Callable[[Request], Awaitable[Principal]],
) -> Callable[[Request], Awaitable[Actor]]:
    """A route dependency giving the request's actor; authenticates through ``principal``
    (which remembers its answer) if no other dependency has yet, so the caller is
    authenticated, and rate limited, once."""

    async def acting(request: Request) -> Actor:
        actor = actor_of(request.scope)
        if actor is None:
            await principal(request)
            actor = actor_of(request.scope)
        if actor is None:  # pragma: no cover - the principal dependency always remembers
            raise RuntimeError("the principal dependency did not remember the request's actor")
        return actor

    return acting


class RequestContext:
    """ASGI middleware: request ids and the access log (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(REQUEST_ID_HEADER)
        rid = sane_request_id(given) or new_request_id()
        _state(scope)[_REQUEST_ID] = rid
        if kind != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        header = (_HEADER, rid.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if _access.isEnabledFor(logging.INFO):
                self._log(scope, status, time.perf_counter() - started, rid)

    @staticmethod
    def _log(scope: Scope, status: int, seconds: float, rid: str) -> None:
        who = principal_of(scope)
        client = scope.get("client")
        path: str = scope["path"]
        if not path.isprintable():  # a decoded %0A must not start a forged log line
            path = path.encode("unicode_escape").decode("ascii")
        _access.info(
            "%s %s %d %.2fms principal=%s address=%s:%s request_id=%s",
            scope["method"],
            path,
            status,
            seconds * 1000,
            f"{who.user_id}/{who.role.value}" if who is not None else "-",
            client[0] if client else "-",
            client[1] if client else "-",
            rid,
        )


def open_access_log(path: Path) -> Callable[[], None]:
    """Send the access log to ``path`` (appended; reopened if logrotate moves it), and only
    there: not to the console. The file is written by a thread of its own, so a slow disk
    does not hold up requests. Returns the function that flushes and closes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    front = logging.handlers.QueueHandler(lines)
    listener = logging.handlers.QueueListener(lines, handler)
    level, propagate = _access.level, _access.propagate
    _access.addHandler(front)
    _access.setLevel(logging.INFO)
    _access.propagate = False
    listener.start()

    def close() -> None:
        _access.removeHandler(front)
        _access.setLevel(level)
        _access.propagate = propagate
        listener.stop()
        handler.close()

    return close
