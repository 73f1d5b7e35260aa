"""The identity service: users, logins, sessions, TOTP enrolment and API keys, on the SQL store.

This is the stateful edge of ``broker.identity``: it composes the pure building blocks of the
sibling modules (passwords, tokens, totp, apikeys) and of ``core.lockout`` and
``core.ratelimit`` (shared with the FIX logon) with the ``users``,
``refresh_tokens`` and ``api_keys`` tables, and implements the API's `Authenticator` protocol.
Times are integer nanoseconds from the injected clock; writes go through the write-behind store
and are flushed before a method returns.

Users and active API keys are cached in memory (`load`), so authenticating a request never
touches the database; refresh tokens are looked up in the database (refreshes are rare).

Rules this service applies
--------------------------

Login (`login`), in this order:

1. `LoginThrottle`: at most `LOGIN_ATTEMPTS_PER_MINUTE` attempts per username and per client
   address (IPv6 per /64) -> 429 RATE_LIMITED with Retry-After. Refused attempts do not count.
2. Unknown username -> 401 UNAUTHORIZED "invalid username or password", after verifying the
   password against a dummy hash so that the answer takes as long as for a known user.
3. Locked user (see 5) -> 401 ACCOUNT_LOCKED without checking the password.
4. Wrong password -> 401 "invalid username or password" (the same message as 2).
5. Lockout: `LOCKOUT_THRESHOLD` (5) consecutive failures lock the user for `LOCKOUT_SECONDS`
   (15 min); the failure that locks answers ACCOUNT_LOCKED. A wrong TOTP code after a right
   password counts as a failure too (so a stolen password does not allow guessing codes); a
   missing code does not, and neither does MFA_ENROLMENT_REQUIRED. Only a complete login
   resets the count. The state is persisted (``failed_logins``, ``locked_until``). Enabling a
   user (`set_disabled(..., False)`) also clears a lock.
6. Disabled user (after a right password) -> 401 UNAUTHORIZED "this user is disabled".
7. MFA (`mfa_decision` on the user's TOTP status and the equity of the user's customer):

   * REQUIRED (TOTP enabled): no code -> 401 MFA_REQUIRED; a wrong or already used code ->
     401 MFA_REQUIRED (and a failure, see 5).
   * ENROLMENT_REQUIRED (equity above the threshold, no TOTP) -> 401 MFA_ENROLMENT_REQUIRED.
     The user enrols with username and password: `enrol_totp` (returns the secret and the
     ``otpauth://`` URI) then `confirm_totp` with a code from the app. Both go through steps
     1-6. Re-enrolling replaces an unconfirmed secret; once TOTP is enabled only a user manager
     can reset it (`reset_totp`), so a stolen password cannot replace the second factor.
     Confirming ends the user's existing sessions (their refresh tokens predate the factor).

   TOTP replay protection: the last accepted time step per user is kept in memory, so each code
   works once. After a restart a code already used in the last ~60 s could be used once more;
   it still needs the password, which is acceptable for this threat model.

Sessions: a login issues an access token (JWT, ``ACCESS_TOKEN_TTL_S``) and a refresh token that
starts a new family. `refresh` rotates (the old record is revoked and points to its successor);
a rotated or revoked token presented again revokes its whole family (reuse detection). A
refreshed token expires ``REFRESH_TOKEN_TTL_S`` after the refresh, but never later than
`MAX_SESSION_S` after the family's login. The ``mfa`` claim of a refreshed access token is the
user's current TOTP status (exact, because enabling TOTP ends older sessions). `logout` revokes
the family; an unknown token is ignored (RFC 7009). Disabling a user revokes all its sessions
and makes its access tokens and API keys fail at once.

The family id is the session id: access tokens carry it (``sid``), and a revoked family's access
tokens are refused at once, not only when they expire (logout, reuse detection, TOTP
confirmation, disabling). The ended sessions are kept in memory (`RevokedSessions`), added
before the revocation is written and loaded from ``refresh_tokens`` at start.

API keys: at most `MAX_API_KEYS_PER_USER` active keys per user, each limited to
``key_rate_limit_per_minute`` requests per minute (bearer tokens share one bucket per user at
the same rate). The secret is shown once; only its sha256 is stored.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from argon2 import PasswordHasher
from sqlalchemy import Select, case, func, select

from tradingfloor.broker.api.auth import Principal, RateLimitedError
from tradingfloor.broker.errors import BrokerError, ErrorCode
from tradingfloor.broker.identity.apikeys import (
    DEFAULT_KEY_RATE_LIMIT_PER_MINUTE,
    hash_api_secret,
    looks_like_key_id,
    new_api_key,
    verify_api_secret,
)
from tradingfloor.broker.identity.passwords import (
    check_password_policy,
    default_hasher,
    hash_password,
    needs_rehash,
    verify_password,
)
from tradingfloor.broker.identity.roles import Role, can_assign
from tradingfloor.broker.identity.sessions import REMEMBER_NS, RevokedSessions
from tradingfloor.broker.identity.tokens import (
    ACCESS_TOKEN_TTL_S,
    MIN_SECRET_BYTES,
    RefreshVerdict,
    TokenError,
    TokenErrorCode,
    decode_access_token,
    hash_refresh_token,
    issue_access_token,
    judge_refresh,
    new_refresh_token,
    refresh_expires_at_ns,
)
from tradingfloor.broker.identity.totp import (
    MFA_EQUITY_THRESHOLD_MINOR,
    MfaDecision,
    mfa_decision,
    new_totp_secret,
    provisioning_uri,
    verify_totp,
)
from tradingfloor.broker.records import ActionRecorder, AdminAction
from tradingfloor.core.actor import ANONYMOUS, IN_PROCESS, Actor, CredentialKind, Origin
from tradingfloor.core.lockout import (
    LoginState,
    LoginThrottle,
    after_failure,
    after_success,
    is_locked,
    retry_after_s,
)
from tradingfloor.core.ratelimit import RateLimiter
from tradingfloor.storage import tables as t
from tradingfloor.storage.writer import WriteBehind

__all__ = [
    "MAX_API_KEYS_PER_USER",
    "MAX_API_KEY_LABEL_LENGTH",
    "MAX_SESSION_S",
    "USERNAME_PATTERN",
    "AccountLockedError",
    "IdentityService",
    "TokenPair",
    "TotpEnrolment",
]

#: Active (not revoked) API keys a user may hold at once.
MAX_API_KEYS_PER_USER: Final = 10
#: Characters in an API key's label.
MAX_API_KEY_LABEL_LENGTH: Final = 100
#: A session (refresh-token family) ends this long after its login, however often refreshed.
MAX_SESSION_S: Final = 30 * 24 * 3600
#: What a username may look like: 3 to 64 letters, digits and ``._@-``, starting alphanumeric.
USERNAME_PATTERN: Final = r"[A-Za-z0-9][A-Za-z0-9._@-]{2,63}"

_NS: Final = 1_000_000_000
_BAD_CREDENTIALS: Final = "invalid username or password"
_DUMMY_PASSWORD: Final = "not-a-password-0"  # hashed only to equalise timing
_USERNAME_CHARS: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-"
)


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What a login or refresh returns (the OAuth2 token response)."""

    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int = ACCESS_TOKEN_TTL_S


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    """A TOTP secret waiting for confirmation, and the URI an authenticator app reads."""

    secret: str
    otpauth_uri: str


class AccountLockedError(BrokerError):
    """401 ACCOUNT_LOCKED; ``retry_after`` is the whole seconds until the lock ends."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            ErrorCode.ACCOUNT_LOCKED,
            f"too many failed logins: the user is locked for {retry_after} more seconds",
        )
        self.retry_after = retry_after


@dataclass(slots=True)
class _User:
    id: str
    username: str
    password_hash: str
    role: Role
    customer_id: str | None
    totp_secret: str | None
    totp_enabled: bool
    failed_logins: int
    locked_until: int
    disabled: bool
    created_at: int

    def login_state(self) -> LoginState:
        return LoginState(failed=self.failed_logins, locked_until_ns=self.locked_until)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "role": self.role.value,
            "customer_id": self.customer_id,
            "totp_enabled": self.totp_enabled,
            "disabled": self.disabled,
            "locked_until": self.locked_until,
            "created_at": self.created_at,
        }


@dataclass(slots=True)
class _ApiKey:
    key_id: str
    user_id: str
    secret_hash: str
    label: str
    rate_limit_per_minute: int
    created_at: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "label": self.label,
            "rate_limit_per_minute": self.rate_limit_per_minute,
            "created_at": self.created_at,
        }


def _unauthorized(message: str = "invalid or expired credentials") -> BrokerError:
    return BrokerError(ErrorCode.UNAUTHORIZED, message)


def _ended_sessions_query(now_ns: int) -> Select[Any]:
    """Sessions with no live refresh token whose newest access token may still be valid.

    Rows: ``family_id`` and ``last_issued`` (the newest ``created_at`` in the family, ns).
    """
    rt = t.refresh_tokens
    last_issued = func.max(rt.c.created_at).label("last_issued")
    live = func.sum(case((rt.c.revoked.is_(False), 1), else_=0))
    return (
        select(rt.c.family_id, last_issued)
        .group_by(rt.c.family_id)
        .having(func.max(rt.c.created_at) > now_ns - REMEMBER_NS, live == 0)
    )


def _valid_username(username: str) -> bool:
    return (
        3 <= len(username) <= 64
        and username[0].isascii()
        and username[0].isalnum()
        and all(char in _USERNAME_CHARS for char in username)
    )


class IdentityService:
    """Users, logins, sessions and API keys (see the module docstring for the rules)."""

    def __init__(
        self,
        store: WriteBehind,
        *,
        secret: bytes,
        account_for_customer: Callable[[str], str | None],
        equity_for_customer: Callable[[str], int],
        clock: Callable[[], int] = time.time_ns,
        hasher: PasswordHasher | None = None,
        mfa_threshold_minor: int = MFA_EQUITY_THRESHOLD_MINOR,
        key_rate_limit_per_minute: int = DEFAULT_KEY_RATE_LIMIT_PER_MINUTE,
        records: ActionRecorder | None = None,
    ) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the token secret must have at least {MIN_SECRET_BYTES} bytes")
        if key_rate_limit_per_minute < 1:
            raise ValueError("key_rate_limit_per_minute must be at least 1")
        self._store = store
        # who changed users and keys (shared with the broker's services in one process)
        self._records = records if records is not None else ActionRecorder(store)
        self._secret = secret
        self._account_for_customer = account_for_customer
        self._equity_for_customer = equity_for_customer
        self._clock = clock
        self._hasher = hasher if hasher is not None else default_hasher()
        self._mfa_threshold = mfa_threshold_minor
        self._key_rate = key_rate_limit_per_minute
        self._users: dict[str, _User] = {}
        self._by_name: dict[str, str] = {}  # casefolded username -> user id
        self._keys: dict[str, _ApiKey] = {}  # active keys only
        self._last_totp_step: dict[str, int] = {}  # user id -> last accepted step (memory only)
        self._throttle = LoginThrottle()
        self._key_limiter = RateLimiter(self._rate_of_key)
        self._user_limiter = RateLimiter(key_rate_limit_per_minute)
        self._session_lock = asyncio.Lock()  # serialises refresh-token reads and writes
        self._ended_sessions = RevokedSessions()
        self._dummy_hash: str | None = None

    # --- start-up -----------------------------------------------------------------------------

    async def load(self) -> None:
        """Read users, active API keys and recently ended sessions into memory (call once,
        before serving)."""
        users: dict[str, _User] = {}
        keys: dict[str, _ApiKey] = {}
        now = self._clock()
        async with self._store.engine.connect() as conn:
            ended = [
                (r.family_id, int(r.last_issued))
                for r in await conn.execute(_ended_sessions_query(now))
            ]
            for r in await conn.execute(select(t.users)):
                users[r.id] = _User(
                    id=r.id,
                    username=r.username,
                    password_hash=r.password_hash,
                    role=Role(r.role),
                    customer_id=r.customer_id,
                    totp_secret=r.totp_secret,
                    totp_enabled=bool(r.totp_enabled),
                    failed_logins=r.failed_logins,
                    locked_until=r.locked_until,
                    disabled=bool(r.disabled),
                    created_at=r.created_at,
                )
            await self._records.load(conn)
            rows = await conn.execute(select(t.api_keys).where(t.api_keys.c.revoked_at.is_(None)))
            for r in rows:
                keys[r.key_id] = _ApiKey(
                    key_id=r.key_id,
                    user_id=r.user_id,
                    secret_hash=r.secret_hash,
                    label=r.label,
                    rate_limit_per_minute=r.rate_limit_per_minute,
                    created_at=r.created_at,
                )
        self._users = users
        self._by_name = {u.username.casefold(): u.id for u in users.values()}
        self._keys = keys
        self._ended_sessions.replace_all(ended, now)

    # --- users --------------------------------------------------------------------------------

    def list_users(self) -> list[dict[str, Any]]:
        """Every user (without secrets), oldest first."""
        users = sorted(self._users.values(), key=lambda u: (u.created_at, u.username))
        return [u.as_dict() for u in users]

    def get_user(self, user_id: str) -> dict[str, Any] | None:
        """The user with `user_id` (without secrets), or None."""
        user = self._users.get(user_id)
        return user.as_dict() if user is not None else None

    async def create_user(
        self,
        username: str,
        password: str,
        role: Role,
        customer_id: str | None,
        *,
        actor: Role | None,
        by: Actor = IN_PROCESS,
    ) -> dict[str, Any]:
        """Create a user; `actor` is the creating user's role (None: bootstrap or CLI), `by`
        who did it (recorded as an administrative action).

        Usernames are unique ignoring case (DUPLICATE otherwise) and match `USERNAME_PATTERN`;
        the password must pass the policy; traders and investors need an existing customer;
        `actor` must be allowed to assign `role` (`can_assign`, else FORBIDDEN).
        """
        if actor is not None and not can_assign(actor, role):
            raise BrokerError(ErrorCode.FORBIDDEN, f"the {actor} role may not create {role} users")
        if not _valid_username(username):
            raise BrokerError(
                ErrorCode.INVALID,
                "username must have 3 to 64 characters: letters, digits and ._@- "
                "(starting with a letter or digit)",
            )
        problem = check_password_policy(password, username=username)
        if problem is not None:
            raise BrokerError(ErrorCode.INVALID, problem)
        if customer_id is None and role in (Role.TRADER, Role.INVESTOR):
            raise BrokerError(ErrorCode.INVALID, f"a {role} user needs a customer_id")
        self._check_free(username)
        if customer_id is not None:
            async with self._store.engine.connect() as conn:
                found = (
                    await conn.execute(
                        select(t.customers.c.id).where(t.customers.c.id == customer_id)
                    )
                ).first()
            if found is None:
                raise BrokerError(ErrorCode.NOT_FOUND, "customer not found")
        password_hash = await asyncio.to_thread(hash_password, password, hasher=self._hasher)
        self._check_free(username)  # again: another request may have taken it meanwhile
        user = _User(
            id=str(uuid.uuid4()),
            username=username,
            password_hash=password_hash,
            role=role,
            customer_id=customer_id,
            totp_secret=None,
            totp_enabled=False,
            failed_logins=0,
            locked_until=0,
            disabled=False,
            created_at=self._clock(),
        )
        self._users[user.id] = user
        self._by_name[username.casefold()] = user.id
        self._store.insert(
            t.users,
            {
                "id": user.id,
                "username": user.username,
                "password_hash": user.password_hash,
                "role": user.role.value,
                "customer_id": user.customer_id,
                "totp_secret": None,
                "totp_enabled": False,
                "failed_logins": 0,
                "locked_until": 0,
                "disabled": False,
                "created_at": user.created_at,
            },
        )
        self._records.admin_action(
            AdminAction.USER_CREATE,
            user.id,
            by,
            user.created_at,
            {"username": user.username, "role": user.role.value, "customer_id": customer_id},
        )
        await self._store.flush()
        return user.as_dict()

    def _check_free(self, username: str) -> None:
        if username.casefold() in self._by_name:
            raise BrokerError(ErrorCode.DUPLICATE, "the username is taken")

    def _user(self, user_id: str) -> _User:
        user = self._users.get(user_id)
        if user is None:
            raise BrokerError(ErrorCode.NOT_FOUND, "user not found")
        return user

    def _check_actor(self, actor: Role | None, user: _User) -> None:
        if actor is not None and not can_assign(actor, user.role):
            raise BrokerError(
                ErrorCode.FORBIDDEN, f"the {actor} role may not manage {user.role} users"
            )

    async def set_disabled(
        self, user_id: str, disabled: bool, *, actor: Role | None = None, by: Actor = IN_PROCESS
    ) -> dict[str, Any]:
        """Disable (ending every session at once) or enable (also clearing a lock) a user.

        With `actor`, the actor must be allowed to assign the user's role (else FORBIDDEN).
        """
        user = self._user(user_id)
        self._check_actor(actor, user)
        user.disabled = disabled
        values: dict[str, Any] = {"id": user.id, "disabled": disabled}
        if not disabled:
            user.failed_logins, user.locked_until = 0, 0
            values.update(failed_logins=0, locked_until=0)
        self._store.update(t.users, values)
        kind = AdminAction.USER_DISABLE if disabled else AdminAction.USER_ENABLE
        self._records.admin_action(kind, user.id, by, self._clock(), {"username": user.username})
        if disabled:
            async with self._session_lock:
                await self._revoke_sessions(user.id)
                await self._store.flush()
        else:
            await self._store.flush()
        return user.as_dict()

    async def reset_totp(
        self, user_id: str, *, actor: Role | None = None, by: Actor = IN_PROCESS
    ) -> dict[str, Any]:
        """Remove a user's TOTP factor (a lost device), so the user can enrol again."""
        user = self._user(user_id)
        self._check_actor(actor, user)
        user.totp_secret, user.totp_enabled = None, False
        self._last_totp_step.pop(user.id, None)
        self._store.update(t.users, {"id": user.id, "totp_secret": None, "totp_enabled": False})
        self._records.admin_action(
            AdminAction.USER_TOTP_RESET, user.id, by, self._clock(), {"username": user.username}
        )
        await self._store.flush()
        return user.as_dict()

    # --- passwords and logins -----------------------------------------------------------------

    async def _verify(self, stored_hash: str, password: str) -> bool:
        return await asyncio.to_thread(verify_password, stored_hash, password, hasher=self._hasher)

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await asyncio.to_thread(
                hash_password, _DUMMY_PASSWORD, hasher=self._hasher
            )
        return self._dummy_hash

    async def _fail(self, user: _User, now: int, error: BrokerError) -> BrokerError:
        """Count a failed login for `user`; the error to raise (ACCOUNT_LOCKED if it locked)."""
        state = after_failure(user.login_state(), now)
        user.failed_logins, user.locked_until = state.failed, state.locked_until_ns
        self._store.update(
            t.users,
            {"id": user.id, "failed_logins": state.failed, "locked_until": state.locked_until_ns},
        )
        await self._store.flush()
        if is_locked(state, now):
            return AccountLockedError(retry_after_s(state, now))
        return error

    async def _authenticate(
        self, username: str, password: str, client_address: str
    ) -> tuple[_User, int]:
        """Steps 1-6 of the login rules: the user whose password this is, and "now"."""
        now = self._clock()
        wait = self._throttle.check(username, client_address, now / _NS)
        if wait > 0:
            raise RateLimitedError(wait)
        user_id = self._by_name.get(username.casefold())
        user = self._users.get(user_id) if user_id is not None else None
        if user is None:
            await self._verify(await self._dummy(), password)
            raise _unauthorized(_BAD_CREDENTIALS)
        if is_locked(user.login_state(), now):
            raise AccountLockedError(retry_after_s(user.login_state(), now))
        stored = user.password_hash
        if not await self._verify(stored, password):
            raise await self._fail(user, now, _unauthorized(_BAD_CREDENTIALS))
        if is_locked(user.login_state(), now):  # locked by a concurrent attempt meanwhile
            raise AccountLockedError(retry_after_s(user.login_state(), now))
        if user.disabled:
            raise _unauthorized("this user is disabled")
        if user.password_hash == stored and needs_rehash(stored, hasher=self._hasher):
            user.password_hash = await asyncio.to_thread(
                hash_password, password, hasher=self._hasher
            )
            self._store.update(t.users, {"id": user.id, "password_hash": user.password_hash})
        return user, now

    def _equity(self, user: _User) -> int:
        return self._equity_for_customer(user.customer_id) if user.customer_id else 0

    async def login(
        self,
        username: str,
        password: str,
        *,
        totp_code: str | None,
        client_address: str,
        origin: Origin | None = None,
    ) -> TokenPair:
        """Check the credentials (and second factor) and start a session; see the rules.

        Every outcome but a throttled attempt is an administrative record (``auth.login`` with
        the session it started, or ``auth.login_failed`` with the reason), whose actor is the
        user (``anonymous`` for a username that names nobody) with the username as credential.
        """
        where = origin if origin is not None else Origin(client_address, 0, "")
        try:
            pair, user, session = await self._login(username, password, totp_code, where.address)
        except RateLimitedError:
            raise  # counted by the throttle, not recorded: a flood must not fill the table
        except BrokerError as exc:
            await self._record_session(
                AdminAction.AUTH_LOGIN_FAILED,
                self._login_actor(where, username),
                {"username": username[:64], "code": int(exc.code), "reason": exc.message},
            )
            raise
        await self._record_session(
            AdminAction.AUTH_LOGIN,
            where.actor(user.id, user.role.value, CredentialKind.PASSWORD, username),
            {"username": user.username, "session": session},
        )
        return pair

    def _login_actor(self, origin: Origin, username: str) -> Actor:
        user_id = self._by_name.get(username.casefold())
        user = self._users.get(user_id) if user_id is not None else None
        if user is None:
            return origin.actor(ANONYMOUS, ANONYMOUS, CredentialKind.PASSWORD, username)
        return origin.actor(user.id, user.role.value, CredentialKind.PASSWORD, username)

    async def _record_session(
        self, kind: AdminAction, actor: Actor, detail: dict[str, Any]
    ) -> None:
        await self._records.record_admin_action(kind, actor.principal, actor, self._clock(), detail)

    async def _login(
        self, username: str, password: str, totp_code: str | None, client_address: str
    ) -> tuple[TokenPair, _User, str]:
        user, now = await self._authenticate(username, password, client_address)
        decision = mfa_decision(
            user.totp_enabled and user.totp_secret is not None,
            self._equity(user),
            self._mfa_threshold,
        )
        if decision is MfaDecision.ENROLMENT_REQUIRED:
            raise BrokerError(
                ErrorCode.MFA_ENROLMENT_REQUIRED,
                "accounts with this much equity need TOTP: enrol at /api/auth/totp/enrol",
            )
        mfa = False
        if decision is MfaDecision.REQUIRED:
            if not totp_code:
                raise BrokerError(ErrorCode.MFA_REQUIRED, "a TOTP code is required")
            if user.totp_secret is None:  # pragma: no cover - guarded by mfa_decision above
                raise RuntimeError("TOTP enabled without a secret")
            step = verify_totp(
                user.totp_secret,
                totp_code.strip(),
                now=now / _NS,
                last_used_step=self._last_totp_step.get(user.id),
            )
            if step is None:
                raise await self._fail(
                    user,
                    now,
                    BrokerError(ErrorCode.MFA_REQUIRED, "the TOTP code is wrong or was used"),
                )
            self._last_totp_step[user.id] = step
            mfa = True
        if user.login_state() != after_success():
            user.failed_logins, user.locked_until = 0, 0
            self._store.update(t.users, {"id": user.id, "failed_logins": 0, "locked_until": 0})
        pair, session = await self._start_session(user, now, mfa=mfa)
        return pair, user, session

    async def enrol_totp(
        self, username: str, password: str, *, client_address: str, origin: Origin | None = None
    ) -> TotpEnrolment:
        """Start TOTP enrolment with username and password: a new secret to confirm
        (recorded as ``auth.totp_enrol``).

        CONFLICT if TOTP is enabled already; an unconfirmed secret is replaced.
        """
        user, _ = await self._authenticate(username, password, client_address)
        if user.totp_enabled:
            raise BrokerError(ErrorCode.CONFLICT, "TOTP is enabled already")
        secret = new_totp_secret()
        user.totp_secret = secret
        self._store.update(t.users, {"id": user.id, "totp_secret": secret, "totp_enabled": False})
        where = origin if origin is not None else Origin(client_address, 0, "")
        actor = where.actor(user.id, user.role.value, CredentialKind.PASSWORD, username)
        await self._record_session(AdminAction.AUTH_TOTP_ENROL, actor, {"username": username})
        return TotpEnrolment(secret=secret, otpauth_uri=provisioning_uri(secret, user.username))

    async def confirm_totp(
        self,
        username: str,
        password: str,
        code: str,
        *,
        client_address: str,
        origin: Origin | None = None,
    ) -> None:
        """Enable TOTP with a code from the app; ends the user's existing sessions.

        CONFLICT if already enabled or not enrolled; INVALID if the code does not match.
        """
        user, now = await self._authenticate(username, password, client_address)
        if user.totp_enabled:
            raise BrokerError(ErrorCode.CONFLICT, "TOTP is enabled already")
        if user.totp_secret is None:
            raise BrokerError(ErrorCode.CONFLICT, "start with /api/auth/totp/enrol")
        step = verify_totp(
            user.totp_secret,
            code.strip(),
            now=now / _NS,
            last_used_step=self._last_totp_step.get(user.id),
        )
        if step is None:
            raise BrokerError(
                ErrorCode.INVALID, "the code does not match: check the authenticator's clock"
            )
        self._last_totp_step[user.id] = step
        user.totp_enabled = True
        self._store.update(t.users, {"id": user.id, "totp_enabled": True})
        where = origin if origin is not None else Origin(client_address, 0, "")
        actor = where.actor(user.id, user.role.value, CredentialKind.PASSWORD, username)
        async with self._session_lock:
            await self._revoke_sessions(user.id)
            await self._record_session(AdminAction.AUTH_TOTP_CONFIRM, actor, {"username": username})

    # --- sessions -----------------------------------------------------------------------------

    def _access_token(self, user: _User, now: int, *, mfa: bool, session_id: str) -> str:
        return issue_access_token(
            self._secret, user.id, user.role, now=now // _NS, mfa=mfa, session_id=session_id
        )

    async def _start_session(self, user: _User, now: int, *, mfa: bool) -> tuple[TokenPair, str]:
        """A new session (refresh token family) for ``user``: its tokens and its id."""
        token, digest = new_refresh_token()
        family_id = str(uuid.uuid4())
        self._store.insert(
            t.refresh_tokens,
            {
                "id": str(uuid.uuid4()),
                "user_id": user.id,
                "family_id": family_id,
                "token_hash": digest,
                "expires_at": refresh_expires_at_ns(now),
                "revoked": False,
                "replaced_by": None,
                "created_at": now,
            },
        )
        await self._store.flush()
        access = self._access_token(user, now, mfa=mfa, session_id=family_id)
        return TokenPair(access_token=access, refresh_token=token), family_id

    async def _revoke_where(self, condition: Any) -> None:
        """End every session with a live refresh token matching `condition`: its access tokens
        are refused from now on, and the revocation of its tokens is queued (no flush)."""
        rt = t.refresh_tokens
        now = self._clock()
        async with self._store.engine.connect() as conn:
            rows = await conn.execute(
                select(rt.c.id, rt.c.family_id).where(condition, rt.c.revoked.is_(False))
            )
            for row in rows:
                self._ended_sessions.add(row.family_id, now, now)
                self._store.update(rt, {"id": row.id, "revoked": True})

    async def _revoke_sessions(self, user_id: str) -> None:
        await self._revoke_where(t.refresh_tokens.c.user_id == user_id)

    async def _revoke_family(self, family_id: str) -> None:
        # Also when no token of it is live any more: its access tokens may still be unexpired.
        self._ended_sessions.add(family_id, self._clock(), self._clock())
        await self._revoke_where(t.refresh_tokens.c.family_id == family_id)

    async def _find_refresh(self, token: str) -> Any:
        rt = t.refresh_tokens
        async with self._store.engine.connect() as conn:
            return (
                await conn.execute(select(rt).where(rt.c.token_hash == hash_refresh_token(token)))
            ).first()

    def _session_actor(self, origin: Origin | None, user_id: str, family_id: str) -> Actor:
        where = origin if origin is not None else Origin("", 0, "")
        user = self._users.get(user_id)
        role = user.role.value if user is not None else ANONYMOUS
        return where.actor(user_id, role, CredentialKind.REFRESH_TOKEN, family_id)

    async def refresh(self, refresh_token: str, *, origin: Origin | None = None) -> TokenPair:
        """Rotate `refresh_token` into a new pair (see the session rules).

        Unknown or reused -> UNAUTHORIZED (reuse also revokes the family); expired ->
        TOKEN_EXPIRED; a disabled or deleted user -> UNAUTHORIZED. A rotation is recorded as
        ``auth.refresh``, a reuse as ``auth.refresh_reused`` (its session ended).
        """
        rt = t.refresh_tokens
        async with self._session_lock:
            now = self._clock()
            row = await self._find_refresh(refresh_token)
            if row is None:
                raise _unauthorized("invalid refresh token")
            verdict = judge_refresh(bool(row.revoked), row.replaced_by, row.expires_at, now)
            if verdict is RefreshVerdict.REUSE_DETECTED:
                await self._revoke_family(row.family_id)
                actor = self._session_actor(origin, row.user_id, row.family_id)
                await self._record_session(
                    AdminAction.AUTH_REFRESH_REUSED, actor, {"session": row.family_id}
                )
                raise _unauthorized("the refresh token was used before: log in again")
            if verdict is RefreshVerdict.EXPIRED:
                raise BrokerError(ErrorCode.TOKEN_EXPIRED, "the refresh token has expired")
            user = self._users.get(row.user_id)
            if user is None or user.disabled:
                raise _unauthorized("invalid refresh token")
            async with self._store.engine.connect() as conn:
                started = (
                    await conn.execute(
                        select(func.min(rt.c.created_at)).where(rt.c.family_id == row.family_id)
                    )
                ).scalar_one()
            expires_at = min(refresh_expires_at_ns(now), int(started) + MAX_SESSION_S * _NS)
            if expires_at <= now:
                raise BrokerError(ErrorCode.TOKEN_EXPIRED, "the session has ended: log in again")
            token, digest = new_refresh_token()
            new_id = str(uuid.uuid4())
            self._store.insert(
                rt,
                {
                    "id": new_id,
                    "user_id": user.id,
                    "family_id": row.family_id,
                    "token_hash": digest,
                    "expires_at": expires_at,
                    "revoked": False,
                    "replaced_by": None,
                    "created_at": now,
                },
            )
            self._store.update(rt, {"id": row.id, "revoked": True, "replaced_by": new_id})
            actor = self._session_actor(origin, user.id, row.family_id)
            await self._record_session(AdminAction.AUTH_REFRESH, actor, {"session": row.family_id})
        access = self._access_token(user, now, mfa=user.totp_enabled, session_id=row.family_id)
        return TokenPair(access_token=access, refresh_token=token)

    async def logout(self, refresh_token: str, *, origin: Origin | None = None) -> None:
        """End the session `refresh_token` belongs to (recorded as ``auth.logout``); an
        unknown token is ignored."""
        async with self._session_lock:
            row = await self._find_refresh(refresh_token)
            if row is None:
                return
            await self._revoke_family(row.family_id)
            actor = self._session_actor(origin, row.user_id, row.family_id)
            await self._record_session(AdminAction.AUTH_LOGOUT, actor, {"session": row.family_id})

    # --- the Authenticator protocol -----------------------------------------------------------

    def _principal(
        self,
        user: _User,
        *,
        key_id: str | None,
        session_id: str | None,
        mfa: bool,
        token_id: str | None = None,
    ) -> Principal:
        account = self._account_for_customer(user.customer_id) if user.customer_id else None
        return Principal(
            user_id=user.id,
            username=user.username,
            role=user.role,
            customer_id=user.customer_id,
            account_id=account,
            key_id=key_id,
            session_id=session_id,
            mfa=mfa,
            token_id=token_id,
        )

    async def principal_from_token(self, token: str, now_ns: int) -> Principal:
        """The caller of a bearer access token; TOKEN_EXPIRED or UNAUTHORIZED if not valid.

        The role is the user's current one; a disabled or unknown user, and a token of an ended
        session (logout, refresh-token reuse), are refused.
        """
        try:
            claims = decode_access_token(self._secret, token, now=now_ns // _NS)
        except TokenError as exc:
            if exc.code is TokenErrorCode.EXPIRED:
                raise BrokerError(ErrorCode.TOKEN_EXPIRED, "the access token has expired") from None
            raise _unauthorized("invalid access token") from None
        if claims.session_id in self._ended_sessions:
            raise _unauthorized("the session has ended: log in again")
        user = self._users.get(claims.user_id)
        if user is None or user.disabled:
            raise _unauthorized("invalid access token")
        return self._principal(
            user, key_id=None, session_id=claims.session_id, mfa=claims.mfa, token_id=claims.jti
        )

    async def principal_from_key(self, key_id: str, secret: str, now_ns: int) -> Principal:
        """The caller of an API key pair (from the cache, no database access)."""
        key = self._keys.get(key_id) if looks_like_key_id(key_id) else None
        stored = key.secret_hash if key is not None else hash_api_secret(key_id)
        matches = verify_api_secret(stored, secret)
        if key is None or not matches:
            raise _unauthorized("invalid API key")
        user = self._users.get(key.user_id)
        if user is None or user.disabled:
            raise _unauthorized("invalid API key")
        return self._principal(user, key_id=key_id, session_id=None, mfa=False)

    def credential_active(self, principal: Principal) -> bool:
        """Whether the credential ``principal`` was authenticated with still stands: its user
        is enabled and its API key not revoked, or its session not ended (no database access).

        Long-lived connections (the ``trade_updates`` stream) ask this while they stay open.
        """
        user = self._users.get(principal.user_id)
        if user is None or user.disabled:
            return False
        if principal.key_id is not None:
            return principal.key_id in self._keys
        return principal.session_id is None or principal.session_id not in self._ended_sessions

    def _rate_of_key(self, key_id: str) -> int:
        key = self._keys.get(key_id)
        return key.rate_limit_per_minute if key is not None else self._key_rate

    def rate_limit(self, principal: Principal, now: float) -> float:
        """0 if the request may go on, else Retry-After seconds: per API key, else per user."""
        if principal.key_id is not None:
            return self._key_limiter.check(principal.key_id, now)
        return self._user_limiter.check(principal.user_id, now)

    # --- API keys -----------------------------------------------------------------------------

    def list_api_keys(self, user_id: str) -> list[dict[str, Any]]:
        """The user's active API keys (never the secrets), oldest first."""
        keys = [k for k in self._keys.values() if k.user_id == user_id]
        return [k.as_dict() for k in sorted(keys, key=lambda k: (k.created_at, k.key_id))]

    def _new_key(self, user_id: str, label: str, rate: int, now: int) -> tuple[str, str]:
        key_id, secret = new_api_key()
        while key_id in self._keys:  # pragma: no cover - 93 random bits
            key_id, secret = new_api_key()
        key = _ApiKey(key_id, user_id, hash_api_secret(secret), label, rate, now)
        self._keys[key_id] = key
        self._store.insert(
            t.api_keys,
            {
                "key_id": key_id,
                "user_id": user_id,
                "secret_hash": key.secret_hash,
                "label": label,
                "rate_limit_per_minute": rate,
                "created_at": now,
                "revoked_at": None,
            },
        )
        return key_id, secret

    def _revoke_key(self, key: _ApiKey, now: int) -> None:
        del self._keys[key.key_id]
        self._key_limiter.reset(key.key_id)
        self._store.update(t.api_keys, {"key_id": key.key_id, "revoked_at": now})

    def _own_key(self, user_id: str, key_id: str) -> _ApiKey:
        key = self._keys.get(key_id)
        if key is None or key.user_id != user_id:
            raise BrokerError(ErrorCode.NOT_FOUND, "API key not found")
        return key

    async def create_api_key(
        self, user_id: str, label: str = "", *, by: Actor = IN_PROCESS
    ) -> tuple[str, str]:
        """A new ``(key_id, secret)`` for the user; show the secret once.

        INVALID for a label over `MAX_API_KEY_LABEL_LENGTH` characters; CONFLICT when the user
        has `MAX_API_KEYS_PER_USER` active keys already.
        """
        self._user(user_id)
        if len(label) > MAX_API_KEY_LABEL_LENGTH:
            raise BrokerError(
                ErrorCode.INVALID, f"label must have at most {MAX_API_KEY_LABEL_LENGTH} characters"
            )
        active = sum(1 for k in self._keys.values() if k.user_id == user_id)
        if active >= MAX_API_KEYS_PER_USER:
            raise BrokerError(
                ErrorCode.CONFLICT,
                f"at most {MAX_API_KEYS_PER_USER} active API keys: revoke one first",
            )
        now = self._clock()
        pair = self._new_key(user_id, label, self._key_rate, now)
        self._records.admin_action(
            AdminAction.API_KEY_CREATE, pair[0], by, now, {"user_id": user_id, "label": label}
        )
        await self._store.flush()
        return pair

    async def revoke_api_key(self, user_id: str, key_id: str, *, by: Actor = IN_PROCESS) -> None:
        """Revoke one of the user's active keys (NOT_FOUND otherwise); effective at once."""
        key = self._own_key(user_id, key_id)
        now = self._clock()
        self._revoke_key(key, now)
        self._records.admin_action(
            AdminAction.API_KEY_REVOKE, key_id, by, now, {"user_id": user_id}
        )
        await self._store.flush()

    async def rotate_api_key(
        self, user_id: str, key_id: str, *, by: Actor = IN_PROCESS
    ) -> tuple[str, str]:
        """Replace one of the user's keys with a new one (same label and limit); old revoked."""
        key = self._own_key(user_id, key_id)
        now = self._clock()
        pair = self._new_key(user_id, key.label, key.rate_limit_per_minute, now)
        self._revoke_key(key, now)
        self._records.admin_action(
            AdminAction.API_KEY_ROTATE, key_id, by, now, {"user_id": user_id, "new_key_id": pair[0]}
        )
        await self._store.flush()
        return pair
