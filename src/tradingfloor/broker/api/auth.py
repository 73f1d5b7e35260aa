"""Who is calling: the request's principal from a bearer JWT or Alpaca's API-key headers, and RBAC.

Every broker endpoint depends on ``principal`` (authenticated, rate limited per API key or
user) and states its permission with ``require(Permission.X)``. Authenticating a request also
builds its ``core.actor.Actor`` (``api/context.py``), once, for the routes that change state.
The account a request acts on is the caller's own; brokers and admins may name another with the
``TF-Account-Id`` header.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from fastapi import Request

from tradingfloor.broker.api.context import principal_of, remember
from tradingfloor.broker.errors import BrokerError, ErrorCode
from tradingfloor.broker.identity.roles import Permission, Role, has_permission

__all__ = [
    "ACCOUNT_HEADER",
    "Authenticator",
    "Principal",
    "RateLimitedError",
    "account_of",
    "authenticate",
    "check_permission",
    "principal_dependency",
    "require",
]

ACCOUNT_HEADER = "TF-Account-Id"
KEY_HEADER = "APCA-API-KEY-ID"
SECRET_HEADER = "APCA-API-SECRET-KEY"


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    username: str
    role: Role
    customer_id: str | None
    account_id: str | None  # the account this request acts on
    key_id: str | None = None  # set when authenticated by API key
    session_id: str | None = None  # set when authenticated by a bearer token: its session
    mfa: bool = False
    token_id: str | None = None  # the access token's jti, when authenticated by bearer token

    def can(self, permission: Permission) -> bool:
        return has_permission(self.role, permission)


class RateLimitedError(BrokerError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(ErrorCode.RATE_LIMITED, "rate limit exceeded", status=429)
        self.retry_after = retry_after


class Authenticator(Protocol):
    """What the API needs from the identity service."""

    async def principal_from_token(self, token: str, now_ns: int) -> Principal: ...

    async def principal_from_key(self, key_id: str, secret: str, now_ns: int) -> Principal: ...

    def credential_active(self, principal: Principal) -> bool:
        """False once the principal's API key is revoked, its session ended or its user
        disabled (open connections are closed then)."""
        ...

    def rate_limit(self, principal: Principal, now: float) -> float:
        """0 if the request may go on, else the seconds to wait (Retry-After)."""
        ...


async def authenticate(auth: Authenticator, headers: Mapping[str, str], now: int) -> Principal:
    """The principal of a request with these (case-insensitive) headers, rate limited."""
    key_id = headers.get(KEY_HEADER)
    if key_id is not None:
        who = await auth.principal_from_key(key_id, headers.get(SECRET_HEADER, ""), now)
    else:
        header = headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise BrokerError(ErrorCode.UNAUTHORIZED, "authentication required")
        who = await auth.principal_from_token(token.strip(), now)
    wait = auth.rate_limit(who, now / 1e9)
    if wait > 0:
        raise RateLimitedError(wait)
    chosen = headers.get(ACCOUNT_HEADER)
    if chosen and chosen != who.account_id:
        if not who.can(Permission.VIEW_ALL_ACCOUNTS):
            raise BrokerError(ErrorCode.FORBIDDEN, "you may act only on your own account")
        who = replace(who, account_id=chosen)
    return who


def check_permission(who: Principal, permission: Permission) -> Principal:
    if not who.can(permission):
        raise BrokerError(ErrorCode.FORBIDDEN, f"the {who.role} role may not {permission.value}")
    return who


def principal_dependency(
    auth: Authenticator, *, clock: Callable[[], int] = time.time_ns
) -> Callable[[Request], Awaitable[Principal]]:
    async def principal(request: Request) -> Principal:
        known = principal_of(request.scope)
        if known is not None:  # another dependency of this request authenticated it already
            return known
        who = await authenticate(auth, request.headers, clock())
        remember(request.scope, who)  # the request's Actor, built once here
        return who

    return principal


def require(
    dependency: Callable[[Request], Awaitable[Principal]], permission: Permission
) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that authenticates and then insists on ``permission``."""

    async def check(request: Request) -> Principal:
        return check_permission(await dependency(request), permission)

    return check


def account_of(who: Principal) -> str:
    if who.account_id is None:
        raise BrokerError(ErrorCode.NOT_FOUND, "no account: open one first")
    return who.account_id
