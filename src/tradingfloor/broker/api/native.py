"""The broker's native REST API (``/api/...``): what Alpaca's trading API has no place for.

* Authentication: the OAuth2 password flow (``POST /api/auth/token``, form fields ``username``,
  ``password``, ``grant_type=password`` and ``totp`` when MFA applies), refresh-token rotation,
  logout, TOTP enrolment with username and password, and ``GET /api/me``.
* The caller's API keys (MANAGE_API_KEYS; only with a password login, never with an API key).
* Users (MANAGE_USERS, within `can_assign`), customers, KYC, accounts, deposits and withdrawals,
  trading blocks (MANAGE_CUSTOMERS; the account list needs VIEW_ALL_ACCOUNTS) and the
  restricted list (ADMIN_VENUE).

Money is a JSON string or number of dollars with at most two decimals, converted once to
integer cents; more decimals, zero, negative or above `MAX_TRANSFER` is 422 with code 42210000.
Money in answers is a decimal string, times are RFC 3339 UTC. Errors are `BrokerError` only.
The rules of logins, lockout, MFA and sessions are those of ``broker.identity.service``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Form, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from tradingfloor.broker.accounts.state import AccountState
from tradingfloor.broker.api.alpaca_json import iso, money
from tradingfloor.broker.api.auth import Principal, require
from tradingfloor.broker.api.context import actor_dependency, request_id_of
from tradingfloor.broker.errors import BrokerError, ErrorCode
from tradingfloor.broker.identity.passwords import MAX_PASSWORD_LENGTH
from tradingfloor.broker.identity.roles import PERMISSIONS, Permission, Role
from tradingfloor.broker.identity.service import (
    MAX_API_KEY_LABEL_LENGTH,
    IdentityService,
    TokenPair,
)
from tradingfloor.broker.identity.totp import provisioning_qr_svg
from tradingfloor.broker.service import Broker
from tradingfloor.core.actor import Actor, Origin
from tradingfloor.storage import tables as t

__all__ = ["MAX_CUSTOMERS_PAGE", "MAX_TRANSFER", "native_router"]

#: The largest single deposit or withdrawal, in dollars.
MAX_TRANSFER: Final = Decimal(10_000_000)
#: The most customers or accounts one list request returns.
MAX_CUSTOMERS_PAGE: Final = 1_000
MAX_OFFSET: Final = 1_000_000_000  # page offsets beyond this are refused (SQL needs 64 bits)
_CENTS: Final = Decimal(100)
_NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}

PrincipalDep = Callable[[Request], Awaitable[Principal]]
IdPath = Annotated[str, Path(min_length=1, max_length=36)]
KeyIdPath = Annotated[str, Path(min_length=1, max_length=32)]
SymbolPath = Annotated[str, Path(min_length=1, max_length=16, pattern=r"^[A-Z0-9][A-Z0-9.\-]*$")]


# --- request bodies -------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RefreshIn(_Body):
    refresh_token: str = Field(min_length=1, max_length=256)


class CredentialsIn(_Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class TotpConfirmIn(CredentialsIn):
    code: str = Field(min_length=6, max_length=6, pattern=r"^[0-9]{6}$")


class ApiKeyIn(_Body):
    label: str = Field(default="", max_length=MAX_API_KEY_LABEL_LENGTH)


class UserIn(_Body):
    username: str = Field(min_length=3, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)
    role: Role
    customer_id: str | None = Field(default=None, min_length=1, max_length=36)


class CustomerIn(_Body):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")


class KycIn(_Body):
    status: Literal["pending", "approved", "rejected"]
    note: str = Field(default="", max_length=1_000)


class AccountIn(_Body):
    account_type: Literal["cash", "margin"] = "cash"


class TransferIn(_Body):
    amount: Decimal
    description: str = Field(default="", max_length=200)


class TradingBlockIn(_Body):
    blocked: bool


class RestrictIn(_Body):
    reason: str = Field(default="", max_length=500)


# --- answers --------------------------------------------------------------------------------


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int


class TotpEnrolmentOut(BaseModel):
    secret: str
    otpauth_uri: str
    otpauth_qr_svg: str = Field(description="`otpauth_uri` as a QR code: an SVG data URI")


class TotpConfirmOut(BaseModel):
    totp_enabled: bool


class MeOut(BaseModel):
    user_id: str
    username: str
    role: str
    customer_id: str | None
    account_id: str | None
    permissions: list[str]
    totp_enabled: bool
    mfa: bool
    auth: Literal["bearer", "api_key"]


class ApiKeyOut(BaseModel):
    key_id: str
    label: str
    rate_limit_per_minute: int
    created_at: str


class NewApiKeyOut(ApiKeyOut):
    secret: str


class UserOut(BaseModel):
    id: str
    username: str
    role: str
    customer_id: str | None
    totp_enabled: bool
    disabled: bool
    locked: bool
    created_at: str


class CustomerOut(BaseModel):
    id: str
    name: str
    email: str
    kyc_status: str
    kyc_note: str
    created_at: str
    account_ids: list[str]


class AccountOut(BaseModel):
    id: str
    account_number: str
    customer_id: str
    account_type: str
    status: str
    kyc_status: str
    trading_blocked: bool
    currency: str
    cash: str
    equity: str
    created_at: str


class TransferOut(BaseModel):
    id: str
    account_id: str
    kind: Literal["deposit", "withdrawal"]
    amount: str
    cash: str


class TradingBlockOut(BaseModel):
    account_id: str
    trading_blocked: bool


class RestrictedOut(BaseModel):
    symbol: str
    reason: str


# --- conversions ----------------------------------------------------------------------------


def _cents(amount: Decimal) -> int:
    """Dollars with at most two decimals, 0 < amount <= MAX_TRANSFER, as integer cents."""
    if not amount.is_finite() or amount <= 0:
        raise BrokerError(ErrorCode.INVALID, "amount must be a positive number of dollars")
    if amount > MAX_TRANSFER:
        raise BrokerError(ErrorCode.INVALID, f"amount must be at most {MAX_TRANSFER}")
    try:
        cents = amount * _CENTS
        whole = cents == cents.to_integral_value()
    except InvalidOperation:  # pragma: no cover - bounded above
        whole = False
    if not whole:
        raise BrokerError(ErrorCode.INVALID, "amount must have at most two decimals")
    return int(cents)


def _token_out(pair: TokenPair) -> TokenOut:
    return TokenOut(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        token_type=pair.token_type,
        expires_in=pair.expires_in,
    )


def _user_out(user: dict[str, Any], now: int) -> UserOut:
    return UserOut(
        id=user["id"],
        username=user["username"],
        role=user["role"],
        customer_id=user["customer_id"],
        totp_enabled=user["totp_enabled"],
        disabled=user["disabled"],
        locked=user["locked_until"] > now,
        created_at=iso(user["created_at"]) or "",
    )


def _key_out(key: dict[str, Any]) -> ApiKeyOut:
    return ApiKeyOut(
        key_id=key["key_id"],
        label=key["label"],
        rate_limit_per_minute=key["rate_limit_per_minute"],
        created_at=iso(key["created_at"]) or "",
    )


def _client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _origin(request: Request) -> Origin:
    """Where an authentication request came from (its records' actor before a principal)."""
    client = request.client
    host, port = (client.host, client.port) if client is not None else ("unknown", 0)
    return Origin(host, port, request_id_of(request.scope))


def native_router(broker: Broker, identity: IdentityService, principal: PrincipalDep) -> APIRouter:
    """The ``/api`` routes, each guarded by its permission (see the module docstring)."""
    router = APIRouter(prefix="/api")
    anyone = Depends(principal)
    key_manager = Depends(require(principal, Permission.MANAGE_API_KEYS))
    user_manager = Depends(require(principal, Permission.MANAGE_USERS))
    customer_manager = Depends(require(principal, Permission.MANAGE_CUSTOMERS))
    account_viewer = Depends(require(principal, Permission.VIEW_ALL_ACCOUNTS))
    venue_admin = Depends(require(principal, Permission.ADMIN_VENUE))
    acting = Depends(actor_dependency(principal))  # who, for the records of state changes
    auth_tag: list[str | Enum] = ["native: authentication"]
    keys_tag: list[str | Enum] = ["native: API keys"]
    users_tag: list[str | Enum] = ["native: users"]
    customers_tag: list[str | Enum] = ["native: customers and accounts"]
    admin_tag: list[str | Enum] = ["native: administration"]

    # --- authentication -----------------------------------------------------------------------

    @router.post(
        "/auth/token",
        tags=auth_tag,
        summary="Log in (OAuth2 password flow)",
        description="Form fields `username`, `password`, `grant_type=password` and `totp` "
        "(six digits) when the user has TOTP enabled. 401 with codes 40110000 (bad "
        "credentials), 40110002 (TOTP code needed or wrong), 40110003 (TOTP enrolment "
        "needed), 40110004 (locked); 429 when throttled.",
    )
    async def token(
        request: Request,
        response: Response,
        username: Annotated[str, Form(min_length=1, max_length=64)],
        password: Annotated[str, Form(min_length=1, max_length=MAX_PASSWORD_LENGTH)],
        grant_type: Annotated[str | None, Form(pattern=r"^password$")] = None,
        totp: Annotated[str | None, Form(max_length=6)] = None,
    ) -> TokenOut:
        pair = await identity.login(
            username,
            password,
            totp_code=totp or None,
            client_address=_client_address(request),
            origin=_origin(request),
        )
        response.headers.update(_NO_STORE)
        return _token_out(pair)

    @router.post("/auth/refresh", tags=auth_tag, summary="Rotate a refresh token")
    async def refresh(request: Request, body: RefreshIn, response: Response) -> TokenOut:
        pair = await identity.refresh(body.refresh_token, origin=_origin(request))
        response.headers.update(_NO_STORE)
        return _token_out(pair)

    @router.post(
        "/auth/logout", tags=auth_tag, status_code=204, summary="End the refresh token's session"
    )
    async def logout(request: Request, body: RefreshIn) -> Response:
        await identity.logout(body.refresh_token, origin=_origin(request))
        return Response(status_code=204)

    @router.post(
        "/auth/totp/enrol",
        tags=auth_tag,
        summary="Start TOTP enrolment (username and password)",
        description="Returns a new TOTP secret, its `otpauth://` URI for an authenticator "
        "app and that URI as a QR code (an SVG data URI); confirm with "
        "`/api/auth/totp/confirm`. 409 if TOTP is enabled already.",
    )
    async def totp_enrol(
        body: CredentialsIn, request: Request, response: Response
    ) -> TotpEnrolmentOut:
        enrolment = await identity.enrol_totp(
            body.username,
            body.password,
            client_address=_client_address(request),
            origin=_origin(request),
        )
        response.headers.update(_NO_STORE)
        return TotpEnrolmentOut(
            secret=enrolment.secret,
            otpauth_uri=enrolment.otpauth_uri,
            otpauth_qr_svg=provisioning_qr_svg(enrolment.otpauth_uri),
        )

    @router.post(
        "/auth/totp/confirm",
        tags=auth_tag,
        summary="Enable TOTP with a code from the app",
        description="Ends the user's existing sessions; log in again with a code.",
    )
    async def totp_confirm(body: TotpConfirmIn, request: Request) -> TotpConfirmOut:
        await identity.confirm_totp(
            body.username,
            body.password,
            body.code,
            client_address=_client_address(request),
            origin=_origin(request),
        )
        return TotpConfirmOut(totp_enabled=True)

    @router.get("/me", tags=auth_tag, summary="Who the caller is")
    async def me(who: Principal = anyone) -> MeOut:
        user = identity.get_user(who.user_id)
        return MeOut(
            user_id=who.user_id,
            username=who.username,
            role=who.role.value,
            customer_id=who.customer_id,
            account_id=who.account_id,
            permissions=sorted(p.value for p in PERMISSIONS[who.role]),
            totp_enabled=bool(user and user["totp_enabled"]),
            mfa=who.mfa,
            auth="api_key" if who.key_id is not None else "bearer",
        )

    # --- API keys -----------------------------------------------------------------------------

    def password_login(who: Principal) -> str:
        if who.key_id is not None:
            raise BrokerError(
                ErrorCode.FORBIDDEN, "API keys cannot manage API keys: log in with a password"
            )
        return who.user_id

    def new_key_out(user_id: str, key_id: str, secret: str) -> NewApiKeyOut:
        info = next(k for k in identity.list_api_keys(user_id) if k["key_id"] == key_id)
        return NewApiKeyOut(**_key_out(info).model_dump(), secret=secret)

    @router.get("/me/api-keys", tags=keys_tag, summary="The caller's active API keys")
    async def list_keys(who: Principal = key_manager) -> list[ApiKeyOut]:
        return [_key_out(k) for k in identity.list_api_keys(password_login(who))]

    @router.post(
        "/me/api-keys",
        tags=keys_tag,
        status_code=201,
        summary="Create an API key (the secret is shown only in this answer)",
    )
    async def create_key(
        body: ApiKeyIn, who: Principal = key_manager, actor: Actor = acting
    ) -> NewApiKeyOut:
        user_id = password_login(who)
        key_id, secret = await identity.create_api_key(user_id, body.label, by=actor)
        return new_key_out(user_id, key_id, secret)

    @router.delete(
        "/me/api-keys/{key_id}", tags=keys_tag, status_code=204, summary="Revoke an API key"
    )
    async def revoke_key(
        key_id: KeyIdPath, who: Principal = key_manager, actor: Actor = acting
    ) -> Response:
        await identity.revoke_api_key(password_login(who), key_id, by=actor)
        return Response(status_code=204)

    @router.post(
        "/me/api-keys/{key_id}/rotate",
        tags=keys_tag,
        status_code=201,
        summary="Replace an API key by a new one (the old one stops working)",
    )
    async def rotate_key(
        key_id: KeyIdPath, who: Principal = key_manager, actor: Actor = acting
    ) -> NewApiKeyOut:
        user_id = password_login(who)
        new_id, secret = await identity.rotate_api_key(user_id, key_id, by=actor)
        return new_key_out(user_id, new_id, secret)

    # --- users --------------------------------------------------------------------------------

    @router.get("/users", tags=users_tag, summary="Every user")
    async def list_users(_who: Principal = user_manager) -> list[UserOut]:
        now = broker.clock()
        return [_user_out(u, now) for u in identity.list_users()]

    @router.post("/users", tags=users_tag, status_code=201, summary="Create a user")
    async def create_user(
        body: UserIn, who: Principal = user_manager, actor: Actor = acting
    ) -> UserOut:
        user = await identity.create_user(
            body.username, body.password, body.role, body.customer_id, actor=who.role, by=actor
        )
        return _user_out(user, broker.clock())

    async def set_disabled(user_id: str, disabled: bool, who: Principal, actor: Actor) -> UserOut:
        if user_id == who.user_id:
            raise BrokerError(ErrorCode.INVALID, "you cannot disable or enable yourself")
        user = await identity.set_disabled(user_id, disabled, actor=who.role, by=actor)
        return _user_out(user, broker.clock())

    @router.post(
        "/users/{user_id}/disable",
        tags=users_tag,
        summary="Disable a user (ends its sessions and API keys at once)",
    )
    async def disable_user(
        user_id: IdPath, who: Principal = user_manager, actor: Actor = acting
    ) -> UserOut:
        return await set_disabled(user_id, True, who, actor)

    @router.post(
        "/users/{user_id}/enable", tags=users_tag, summary="Enable a user (and clear a lockout)"
    )
    async def enable_user(
        user_id: IdPath, who: Principal = user_manager, actor: Actor = acting
    ) -> UserOut:
        return await set_disabled(user_id, False, who, actor)

    @router.post(
        "/users/{user_id}/totp/reset",
        tags=users_tag,
        summary="Remove a user's TOTP factor (lost device) so that it can enrol again",
    )
    async def reset_totp(
        user_id: IdPath, who: Principal = user_manager, actor: Actor = acting
    ) -> UserOut:
        user = await identity.reset_totp(user_id, actor=who.role, by=actor)
        return _user_out(user, broker.clock())

    # --- customers and accounts ---------------------------------------------------------------

    def account_ids(customer_id: str) -> list[str]:
        owned = [a for a in broker.accounts.values() if a.customer_id == customer_id]
        return [a.id for a in sorted(owned, key=lambda a: (a.created_at, a.id))]

    def customer_out(row: Any) -> CustomerOut:
        return CustomerOut(
            id=row.id,
            name=row.name,
            email=row.email,
            kyc_status=row.kyc_status,
            kyc_note=row.kyc_note,
            created_at=iso(row.created_at) or "",
            account_ids=account_ids(row.id),
        )

    async def read_customer(customer_id: str) -> CustomerOut:
        async with broker.store.engine.connect() as conn:
            row = (
                await conn.execute(select(t.customers).where(t.customers.c.id == customer_id))
            ).first()
        if row is None:
            raise BrokerError(ErrorCode.NOT_FOUND, "customer not found")
        return customer_out(row)

    def account_out(acct: AccountState) -> AccountOut:
        equity, _long, _short = broker.valuation(acct)
        return AccountOut(
            id=acct.id,
            account_number=acct.account_number,
            customer_id=acct.customer_id,
            account_type=acct.account_type,
            status=acct.status,
            kyc_status=acct.kyc_status,
            trading_blocked=acct.trading_blocked,
            currency=acct.currency,
            cash=money(acct.cash),
            equity=money(equity),
            created_at=iso(acct.created_at) or "",
        )

    @router.post("/customers", tags=customers_tag, status_code=201, summary="Create a customer")
    async def create_customer(
        body: CustomerIn, _who: Principal = customer_manager, actor: Actor = acting
    ) -> CustomerOut:
        customer_id = await broker.create_customer(body.name, body.email, actor=actor)
        return await read_customer(customer_id)

    @router.get("/customers", tags=customers_tag, summary="Customers, oldest first")
    async def list_customers(
        limit: Annotated[int, Query(ge=1, le=MAX_CUSTOMERS_PAGE)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
        _who: Principal = customer_manager,
    ) -> list[CustomerOut]:
        c = t.customers
        query = select(c).order_by(c.c.created_at, c.c.id).limit(limit).offset(offset)
        async with broker.store.engine.connect() as conn:
            rows = list(await conn.execute(query))
        return [customer_out(r) for r in rows]

    @router.post(
        "/customers/{customer_id}/kyc", tags=customers_tag, summary="Record a KYC decision"
    )
    async def set_kyc(
        body: KycIn,
        customer_id: IdPath,
        _who: Principal = customer_manager,
        actor: Actor = acting,
    ) -> CustomerOut:
        await broker.set_kyc(customer_id, body.status, body.note, actor=actor)
        return await read_customer(customer_id)

    @router.post(
        "/customers/{customer_id}/accounts",
        tags=customers_tag,
        status_code=201,
        summary="Open an account for a customer",
    )
    async def open_account(
        body: AccountIn,
        customer_id: IdPath,
        _who: Principal = customer_manager,
        actor: Actor = acting,
    ) -> AccountOut:
        acct = await broker.open_account(customer_id, body.account_type, actor=actor)
        return account_out(acct)

    @router.get("/accounts", tags=customers_tag, summary="Accounts, oldest first")
    async def list_accounts(
        customer_id: Annotated[str | None, Query(max_length=36)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_CUSTOMERS_PAGE)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
        _who: Principal = account_viewer,
    ) -> list[AccountOut]:
        accounts = sorted(
            (
                a
                for a in broker.accounts.values()
                if customer_id is None or a.customer_id == customer_id
            ),
            key=lambda a: (a.created_at, a.id),
        )
        return [account_out(a) for a in accounts[offset : offset + limit]]

    async def transfer(account_id: str, body: TransferIn, sign: int, actor: Actor) -> TransferOut:
        cents = _cents(body.amount)
        acct = broker.account(account_id)
        entry = await broker.transfer(
            acct.id, sign * cents, description=body.description, actor=actor
        )
        return TransferOut(
            id=entry,
            account_id=acct.id,
            kind="deposit" if sign > 0 else "withdrawal",
            amount=money(cents),
            cash=money(acct.cash),
        )

    @router.post(
        "/accounts/{account_id}/deposits",
        tags=customers_tag,
        status_code=201,
        summary="Book a deposit",
    )
    async def deposit(
        body: TransferIn,
        account_id: IdPath,
        _who: Principal = customer_manager,
        actor: Actor = acting,
    ) -> TransferOut:
        return await transfer(account_id, body, 1, actor)

    @router.post(
        "/accounts/{account_id}/withdrawals",
        tags=customers_tag,
        status_code=201,
        summary="Book a withdrawal (at most the withdrawable settled cash)",
    )
    async def withdrawal(
        body: TransferIn,
        account_id: IdPath,
        _who: Principal = customer_manager,
        actor: Actor = acting,
    ) -> TransferOut:
        return await transfer(account_id, body, -1, actor)

    @router.post(
        "/accounts/{account_id}/trading-block",
        tags=customers_tag,
        summary="Block or unblock trading on an account",
    )
    async def trading_block(
        body: TradingBlockIn,
        account_id: IdPath,
        _who: Principal = customer_manager,
        actor: Actor = acting,
    ) -> TradingBlockOut:
        acct = broker.account(account_id)
        await broker.set_trading_blocked(acct.id, body.blocked, actor=actor)
        return TradingBlockOut(account_id=acct.id, trading_blocked=acct.trading_blocked)

    # --- administration -----------------------------------------------------------------------

    @router.get("/admin/restricted", tags=admin_tag, summary="The restricted list")
    async def list_restricted(_who: Principal = venue_admin) -> list[RestrictedOut]:
        return [RestrictedOut(symbol=s, reason=r) for s, r in sorted(broker.restricted.items())]

    @router.put(
        "/admin/restricted/{symbol}",
        tags=admin_tag,
        summary="Put a listed symbol on the restricted list (no new customer orders)",
    )
    async def restrict(
        body: RestrictIn,
        symbol: SymbolPath,
        _who: Principal = venue_admin,
        actor: Actor = acting,
    ) -> RestrictedOut:
        inst = broker.instrument(symbol)
        await broker.set_restricted(inst.symbol, True, body.reason, actor=actor)
        return RestrictedOut(symbol=inst.symbol, reason=body.reason)

    @router.delete(
        "/admin/restricted/{symbol}",
        tags=admin_tag,
        status_code=204,
        summary="Take a symbol off the restricted list",
    )
    async def unrestrict(
        symbol: SymbolPath, _who: Principal = venue_admin, actor: Actor = acting
    ) -> Response:
        if symbol not in broker.restricted:
            raise BrokerError(ErrorCode.NOT_FOUND, f"{symbol} is not restricted")
        await broker.set_restricted(symbol, False, actor=actor)
        return Response(status_code=204)

    return router
