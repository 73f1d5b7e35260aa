"""IdentityService against a real SQLite database: users, logins with throttle, lockout and
MFA, refresh-token rotation with reuse detection, API keys and rate limits (fake clocks)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tradingfloor.broker.api.auth import RateLimitedError
from tradingfloor.broker.errors import BrokerError, ErrorCode
from tradingfloor.broker.identity.passwords import make_hasher
from tradingfloor.broker.identity.roles import Role
from tradingfloor.broker.identity.service import (
    MAX_API_KEYS_PER_USER,
    MAX_SESSION_S,
    AccountLockedError,
    IdentityService,
    TokenPair,
)
from tradingfloor.broker.identity.tokens import (
    ACCESS_TOKEN_TTL_S,
    REFRESH_TOKEN_TTL_S,
    decode_access_token,
    hash_refresh_token,
)
from tradingfloor.broker.identity.totp import MFA_EQUITY_THRESHOLD_MINOR, TOTP_STEP_S, totp_now
from tradingfloor.core.lockout import (
    LOCKOUT_SECONDS,
    LOCKOUT_THRESHOLD,
    LOGIN_ATTEMPTS_PER_MINUTE,
)
from tradingfloor.storage import tables as t
from tradingfloor.storage.db import open_database
from tradingfloor.storage.writer import WriteBehind

SECRET = b"k" * 32
PASSWORD = "Correct-horse-42"
NS = 1_000_000_000
START = 1_764_000_000 * NS


def cheap_params() -> dict[str, int]:
    return {"time_cost": 1, "memory_cost_kib": 8, "parallelism": 1}


class CountingHasher(PasswordHasher):
    """A cheap argon2id hasher that counts its verifications."""

    def __init__(self, **params: int) -> None:
        base = make_hasher(**params)
        super().__init__(
            time_cost=base.time_cost,
            memory_cost=base.memory_cost,
            parallelism=base.parallelism,
            hash_len=base.hash_len,
            salt_len=base.salt_len,
            type=base.type,
        )
        self.verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verifications += 1
        return super().verify(hash, password)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * NS)

    @property
    def seconds(self) -> float:
        return self.now / NS


@dataclass
class Env:
    engine: AsyncEngine
    store: WriteBehind
    clock: Clock
    hasher: CountingHasher
    equity: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)
    services: list[IdentityService] = field(default_factory=list)

    def service(self, **kwargs: Any) -> IdentityService:
        options: dict[str, Any] = {"clock": self.clock, "hasher": self.hasher}
        options.update(kwargs)
        return IdentityService(
            self.store,
            secret=SECRET,
            account_for_customer=self.accounts.get,
            equity_for_customer=lambda c: self.equity.get(c, 0),
            **options,
        )

    async def loaded(self, **kwargs: Any) -> IdentityService:
        svc = self.service(**kwargs)
        await svc.load()
        return svc

    async def customer(self, name: str = "c1", *, equity: int = 0) -> str:
        cid = f"cust-{name}"
        self.store.insert(
            t.customers,
            {
                "id": cid,
                "name": name,
                "email": f"{name}@example.com",
                "kyc_status": "approved",
                "kyc_note": "",
                "created_at": self.clock.now,
                "updated_at": self.clock.now,
            },
        )
        await self.store.flush()
        self.equity[cid] = equity
        self.accounts[cid] = f"acct-{name}"
        return cid


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A migrated empty database file, copied for each test (migrating takes ~0.1 s)."""
    import asyncio

    path = tmp_path_factory.mktemp("identity-template") / "broker.db"

    async def make() -> None:
        engine = await open_database(f"sqlite+aiosqlite:///{path}")
        await engine.dispose()

    asyncio.run(make())
    yield path


@pytest.fixture
async def env(tmp_path: Path, template_db: Path) -> AsyncIterator[Env]:
    path = tmp_path / "broker.db"
    shutil.copyfile(template_db, path)
    engine = await open_database(f"sqlite+aiosqlite:///{path}", migrate=False)
    store = WriteBehind(engine)
    try:
        yield Env(engine, store, Clock(), CountingHasher(**cheap_params()))
    finally:
        await store.stop()
        await engine.dispose()


async def make_user(
    svc: IdentityService,
    username: str = "alice",
    role: Role = Role.TRADER,
    customer: str | None = None,
) -> dict[str, Any]:
    return await svc.create_user(username, PASSWORD, role, customer, actor=None)


async def login(
    svc: IdentityService,
    username: str = "alice",
    password: str = PASSWORD,
    *,
    code: str | None = None,
    address: str = "10.0.0.1",
) -> TokenPair:
    return await svc.login(username, password, totp_code=code, client_address=address)


async def refused(coro: Any, code: int) -> BrokerError:
    with pytest.raises(BrokerError) as info:
        await coro
    assert info.value.code == code, info.value
    return info.value


async def user_row(env: Env, user_id: str) -> Any:
    async with env.engine.connect() as conn:
        return (await conn.execute(select(t.users).where(t.users.c.id == user_id))).one()


# --- construction and users ---------------------------------------------------------------


async def test_short_secret_is_refused(env: Env) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        IdentityService(
            env.store,
            secret=b"short",
            account_for_customer=lambda _c: None,
            equity_for_customer=lambda _c: 0,
        )


async def test_create_user_validates_and_persists(env: Env) -> None:
    svc = await env.loaded()
    cid = await env.customer()
    user = await make_user(svc, customer=cid)
    assert user["username"] == "alice" and user["role"] == "trader"
    assert user["customer_id"] == cid and not user["disabled"] and not user["totp_enabled"]
    assert "password_hash" not in user
    row = await user_row(env, user["id"])
    assert row.password_hash.startswith("$argon2id$") and row.created_at == START

    await refused(make_user(svc, "ALICE", customer=cid), ErrorCode.DUPLICATE)
    await refused(svc.create_user("bob", "short", Role.TRADER, cid, actor=None), ErrorCode.INVALID)
    await refused(make_user(svc, "bob", Role.INVESTOR, None), ErrorCode.INVALID)
    await refused(make_user(svc, "bob", customer="no-such-customer"), ErrorCode.NOT_FOUND)
    await refused(make_user(svc, "b", customer=cid), ErrorCode.INVALID)
    await refused(make_user(svc, "bad name", customer=cid), ErrorCode.INVALID)
    staff = await make_user(svc, "staff", Role.BROKER)  # staff need no customer
    assert staff["customer_id"] is None
    assert [u["username"] for u in svc.list_users()] == ["alice", "staff"]
    assert svc.get_user(staff["id"]) == staff
    assert svc.get_user("nobody") is None


@pytest.mark.parametrize(
    ("actor", "target", "allowed"),
    [
        (Role.ADMIN, Role.ADMIN, True),
        (Role.ADMIN, Role.BROKER, True),
        (Role.BROKER, Role.INVESTOR, True),
        (Role.BROKER, Role.BROKER, False),
        (Role.BROKER, Role.ADMIN, False),
        (Role.TRADER, Role.INVESTOR, False),
        (Role.INVESTOR, Role.INVESTOR, False),
    ],
)
async def test_create_user_respects_can_assign(
    env: Env, actor: Role, target: Role, allowed: bool
) -> None:
    svc = await env.loaded()
    cid = await env.customer()
    create = svc.create_user("newbie", PASSWORD, target, cid, actor=actor)
    if allowed:
        assert (await create)["role"] == target.value
    else:
        error = await refused(create, ErrorCode.FORBIDDEN)
        assert error.status == 403


async def test_load_reads_users_and_active_keys(env: Env) -> None:
    svc = await env.loaded()
    cid = await env.customer()
    user = await make_user(svc, customer=cid)
    kept = await svc.create_api_key(user["id"], "kept")
    gone = await svc.create_api_key(user["id"], "gone")
    await svc.revoke_api_key(user["id"], gone[0])

    again = await env.loaded()
    assert again.list_users() == svc.list_users()
    assert [k["label"] for k in again.list_api_keys(user["id"])] == ["kept"]
    who = await again.principal_from_key(*kept, env.clock.now)
    assert who.user_id == user["id"] and who.key_id == kept[0]
    await refused(again.principal_from_key(*gone, env.clock.now), ErrorCode.UNAUTHORIZED)
    await login(again)


# --- logins ---------------------------------------------------------------------------------


async def test_login_issues_tokens_for_the_principal(env: Env) -> None:
    svc = await env.loaded()
    cid = await env.customer()
    user = await make_user(svc, customer=cid)
    pair = await login(svc)
    assert pair.token_type == "bearer" and pair.expires_in == ACCESS_TOKEN_TTL_S
    claims = decode_access_token(SECRET, pair.access_token, now=int(env.clock.seconds))
    assert claims.user_id == user["id"] and claims.role == "trader" and not claims.mfa

    who = await svc.principal_from_token(pair.access_token, env.clock.now)
    assert (who.user_id, who.username, who.role) == (user["id"], "alice", Role.TRADER)
    assert (who.customer_id, who.account_id, who.key_id, who.mfa) == (
        cid,
        "acct-c1",
        None,
        False,
    )
    staff = await make_user(svc, "staff", Role.ADMIN)
    admin = await svc.principal_from_token((await login(svc, "staff")).access_token, env.clock.now)
    assert admin.user_id == staff["id"] and admin.account_id is None
    assert (await login(svc, "ALICE")).access_token  # usernames ignore case


async def test_unknown_user_and_wrong_password_look_the_same(env: Env) -> None:
    svc = await env.loaded()
    await make_user(svc, customer=await env.customer())
    before = env.hasher.verifications
    unknown = await refused(login(svc, "mallory"), ErrorCode.UNAUTHORIZED)
    assert env.hasher.verifications == before + 1  # a dummy hash was verified
    wrong = await refused(login(svc, password="Wrong-horse-42"), ErrorCode.UNAUTHORIZED)
    assert env.hasher.verifications == before + 2
    assert unknown.message == wrong.message == "invalid username or password"
    assert unknown.status == wrong.status == 401


async def test_lockout_after_five_failures_is_persisted_and_expires(env: Env) -> None:
    svc = await env.loaded()
    user = await make_user(svc, customer=await env.customer())
    for _ in range(LOCKOUT_THRESHOLD - 1):
        await refused(login(svc, password="Wrong-horse-1"), ErrorCode.UNAUTHORIZED)
    row = await user_row(env, user["id"])
    assert row.failed_logins == LOCKOUT_THRESHOLD - 1 and row.locked_until == 0

    with pytest.raises(AccountLockedError) as info:
        await login(svc, password="Wrong-horse-1")
    assert info.value.code == ErrorCode.ACCOUNT_LOCKED and info.value.status == 401
    assert info.value.retry_after == LOCKOUT_SECONDS
    row = await user_row(env, user["id"])
    assert row.locked_until == START + LOCKOUT_SECONDS * NS

    # The right password does not help while locked, and is not even checked.
    before = env.hasher.verifications
    await refused(login(svc), ErrorCode.ACCOUNT_LOCKED)
    assert env.hasher.verifications == before

    restarted = await env.loaded()  # the lock survives a restart
    env.clock.advance(LOCKOUT_SECONDS - 1)
    error = await refused(login(restarted, address="10.0.0.2"), ErrorCode.ACCOUNT_LOCKED)
    assert isinstance(error, AccountLockedError) and error.retry_after == 1
    env.clock.advance(1)
    await login(restarted, address="10.0.0.2")
    row = await user_row(env, user["id"])
    assert (row.failed_logins, row.locked_until) == (0, 0)


async def test_success_resets_the_failure_count(env: Env) -> None:
    svc = await env.loaded()
    user = await make_user(svc, customer=await env.customer())
    for _ in range(LOCKOUT_THRESHOLD - 1):
        await refused(login(svc, password="Wrong-horse-1"), ErrorCode.UNAUTHORIZED)
    await login(svc)
    assert (await user_row(env, user["id"])).failed_logins == 0
    await refused(login(svc, password="Wrong-horse-1"), ErrorCode.UNAUTHORIZED)
    assert (await user_row(env, user["id"])).failed_logins == 1


async def test_enabling_a_user_clears_its_lock(env: Env) -> None:
    svc = await env.loaded()
    user = await make_user(svc, customer=await env.customer())
    for _ in range(LOCKOUT_THRESHOLD - 1):
        await refused(login(svc, password="Wrong-horse-1"), ErrorCode.UNAUTHORIZED)
    await refused(login(svc, password="Wrong-horse-1"), ErrorCode.ACCOUNT_LOCKED)
    await refused(login(svc), ErrorCode.ACCOUNT_LOCKED)
    await svc.set_disabled(user["id"], False)
    await login(svc)


async def test_login_throttle_per_username_and_per_address(env: Env) -> None:
    svc = await env.loaded()
    await make_user(svc, customer=await env.customer())
    for i in range(LOGIN_ATTEMPTS_PER_MINUTE):
        await refused(login(svc, "ghost", address=f"10.1.0.{i}"), ErrorCode.UNAUTHORIZED)
    with pytest.raises(RateLimitedError) as info:
        await login(svc, "ghost", address="10.2.0.1")
    assert info.value.status == 429 and info.value.code == ErrorCode.RATE_LIMITED
    assert 0 < info.value.retry_after <= 60
    await login(svc, address="10.2.0.1")  # another user from another address is fine

    for i in range(LOGIN_ATTEMPTS_PER_MINUTE - 1):  # the address has one attempt already
        await refused(login(svc, f"ghost{i}", address="10.2.0.1"), ErrorCode.UNAUTHORIZED)
    await refused(login(svc, address="10.2.0.1"), ErrorCode.RATE_LIMITED)

    env.clock.advance(60)
    await login(svc, address="10.2.0.1")
    await refused(login(svc, "ghost", address="10.3.0.1"), ErrorCode.UNAUTHORIZED)


async def test_disabled_user_cannot_log_in_or_use_tokens_or_keys(env: Env) -> None:
    svc = await env.loaded()
    user = await make_user(svc, customer=await env.customer())
    pair = await login(svc)
    key = await svc.create_api_key(user["id"])
    assert (await svc.set_disabled(user["id"], True))["disabled"] is True
    assert (await user_row(env, user["id"])).disabled

    await refused(svc.principal_from_token(pair.access_token, env.clock.now), 40110000)
    await refused(svc.principal_from_key(*key, env.clock.now), ErrorCode.UNAUTHORIZED)
    await refused(svc.refresh(pair.refresh_token), ErrorCode.UNAUTHORIZED)
    wrong = await refused(login(svc, password="Wrong-horse-1"), ErrorCode.UNAUTHORIZED)
    right = await refused(login(svc), ErrorCode.UNAUTHORIZED)
    assert wrong.message != right.message == "this user is disabled"

    await svc.set_disabled(user["id"], False)
    await svc.principal_from_key(*key, env.clock.now)
    await refused(svc.refresh(pair.refresh_token), ErrorCode.UNAUTHORIZED)  # sessions ended
    await login(svc)


async def test_set_disabled_checks_the_actor(env: Env) -> None:
    svc = await env.loaded()
    admin = await make_user(svc, "root", Role.ADMIN)
    await refused(svc.set_disabled(admin["id"], True, actor=Role.BROKER), ErrorCode.FORBIDDEN)
    await refused(svc.set_disabled("nobody", True), ErrorCode.NOT_FOUND)
    assert (await svc.set_disabled(admin["id"], True, actor=Role.ADMIN))["disabled"]


async def test_password_hash_is_upgraded_at_login(env: Env) -> None:
    svc = await env.loaded()
    user = await make_user(svc, customer=await env.customer())
    old = (await user_row(env, user["id"])).password_hash
    stronger = make_hasher(time_cost=2, memory_cost_kib=16, parallelism=1)
    upgraded = await env.loaded(hasher=stronger)
    await login(upgraded)
    new = (await user_row(env, user["id"])).password_hash
    assert new != old and "t=2" in new and "m=16" in new
    await login(await env.loaded(hasher=stronger), address="10.9.9.9")


# --- MFA ------------------------------------------------------------------------------------


async def test_mfa_enrolment_required_above_the_threshold(env: Env) -> None:
    svc = await env.loaded()
    cid = await env.customer(equity=MFA_EQUITY_THRESHOLD_MINOR)
    await make_user(svc, customer=cid)
    await login(svc)  # exactly at the threshold: no MFA
    env.equity[cid] = MFA_EQUITY_THRESHOLD_MINOR + 1
    error = await refused(login(svc), ErrorCode.MFA_ENROLMENT_REQUIRED)
    assert error.status == 401

    enrolment = await svc.enrol_totp("alice", PASSWORD, client_address="10.0.0.1")
    assert enrolment.otpauth_uri.startswith("otpauth://totp/")
    assert "alice" in enrolment.otpauth_uri and enrolment.secret in enrolment.otpauth_uri
    await refused(login(svc), ErrorCode.MFA_ENROLMENT_REQUIRED)  # not confirmed yet

    code = totp_now(enrolment.secret, env.clock.seconds)
    wrong = "000000" if code != "000000" else "111111"
    await refused(svc.confirm_totp("alice", PASSWORD, wrong, client_address="x"), ErrorCode.INVALID)
    await refused(
        svc.confirm_totp("alice", "Wrong-horse-1", code, client_address="x"),
        ErrorCode.UNAUTHORIZED,
    )
    await svc.confirm_totp("alice", PASSWORD, code, client_address="x")
    await refused(svc.enrol_totp("alice", PASSWORD, client_address="x"), ErrorCode.CONFLICT)

    await refused(login(svc), ErrorCode.MFA_REQUIRED)
    await refused(login(svc, code=code), ErrorCode.MFA_REQUIRED)  # used by the confirmation
    env.clock.advance(TOTP_STEP_S)
    pair = await login(svc, code=totp_now(enrolment.secret, env.clock.seconds))
    who = await svc.principal_from_token(pair.access_token, env.clock.now)
    assert who.mfa is True


async def test_totp_code_works_once_and_wrong_codes_lock(env: Env) -> None:
    svc = await env.loaded()
    user = await make_user(svc, customer=await env.customer())
    enrolment = await svc.enrol_totp("alice", PASSWORD, client_address="x")
    await svc.confirm_totp(
        "alice", PASSWORD, totp_now(enrolment.secret, env.clock.seconds), client_address="x"
    )
    env.clock.advance(TOTP_STEP_S)
    code = totp_now(enrolment.secret, env.clock.seconds)
    await login(svc, code=code)
    error = await refused(login(svc, code=code), ErrorCode.MFA_REQUIRED)  # replay
    assert error.message == "the TOTP code is wrong or was used"
    assert (await user_row(env, user["id"])).failed_logins == 1

    # A missing code does not count as a failure; wrong codes do, and lock the user.
    for _ in range(3):
        await refused(login(svc), ErrorCode.MFA_REQUIRED)
    assert (await user_row(env, user["id"])).failed_logins == 1
    for _ in range(LOCKOUT_THRESHOLD - 2):
        await refused(login(svc, code="12345x"), ErrorCode.MFA_REQUIRED)
    await refused(login(svc, code="12345x"), ErrorCode.ACCOUNT_LOCKED)


async def test_previous_and_next_step_codes_are_accepted(env: Env) -> None:
    svc = await env.loaded()
    await make_user(svc, customer=await env.customer())
    secret = (await svc.enrol_totp("alice", PASSWORD, client_address="x")).secret
    await svc.confirm_totp(
        "alice", PASSWORD, totp_now(secret, env.clock.seconds), client_address="x"
    )
    env.clock.advance(10 * TOTP_STEP_S)
    await login(svc, code=totp_now(secret, env.clock.seconds - TOTP_STEP_S))
    await login(svc, code=totp_now(secret, env.clock.seconds + TOTP_STEP_S))
    # Only steps after the last used one are accepted: the current one is now too old.
    await refused(login(svc, code=totp_now(secret, env.clock.seconds)), ErrorCode.MFA_REQUIRED)


async def test_confirming_totp_ends_older_sessions_and_reset_allows_reenrolment(
    env: Env,
) -> None:
    svc = await env.loaded()
    user = await make_user(svc, customer=await env.customer())
    old = await login(svc)
    await refused(
        svc.confirm_totp("alice", PASSWORD, "123456", client_address="x"), ErrorCode.CONFLICT
    )
    first = await svc.enrol_totp("alice", PASSWORD, client_address="x")
    second = await svc.enrol_totp("alice", PASSWORD, client_address="x")  # replaces it
    assert first.secret != second.secret
    await svc.confirm_totp(
        "alice", PASSWORD, totp_now(second.secret, env.clock.seconds), client_address="x"
    )
    await refused(svc.refresh(old.refresh_token), ErrorCode.UNAUTHORIZED)

    env.clock.advance(TOTP_STEP_S)
    pair = await login(svc, code=totp_now(second.secret, env.clock.seconds))
    refreshed = await svc.refresh(pair.refresh_token)
    who = await svc.principal_from_token(refreshed.access_token, env.clock.now)
    assert who.mfa is True  # the refreshed token keeps the second factor

    await refused(svc.reset_totp(user["id"], actor=Role.TRADER), ErrorCode.FORBIDDEN)
    assert (await svc.reset_totp(user["id"], actor=Role.BROKER))["totp_enabled"] is False
    await login(svc)  # no second factor any more
    await svc.enrol_totp("alice", PASSWORD, client_address="x")


# --- sessions -------------------------------------------------------------------------------


async def test_refresh_rotates_and_reuse_revokes_the_family(env: Env) -> None:
    svc = await env.loaded()
    await make_user(svc, customer=await env.customer())
    first = await login(svc)
    other = await login(svc)  # another session (family) of the same user
    env.clock.advance(60)
    second = await svc.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert await svc.principal_from_token(second.access_token, env.clock.now)

    async with env.engine.connect() as conn:
        rows = {
            r.token_hash: r
            for r in await conn.execute(select(t.refresh_tokens))
            if r.token_hash
            in (hash_refresh_token(first.refresh_token), hash_refresh_token(second.refresh_token))
        }
    old = rows[hash_refresh_token(first.refresh_token)]
    new = rows[hash_refresh_token(second.refresh_token)]
    assert old.revoked and old.replaced_by == new.id and old.family_id == new.family_id
    assert not new.revoked and new.expires_at == env.clock.now + REFRESH_TOKEN_TTL_S * NS

    third = await svc.refresh(second.refresh_token)
    error = await refused(svc.refresh(first.refresh_token), ErrorCode.UNAUTHORIZED)  # replayed
    assert "log in again" in error.message
    await refused(svc.refresh(third.refresh_token), ErrorCode.UNAUTHORIZED)  # family revoked
    await svc.refresh(other.refresh_token)  # other sessions live on
    await refused(svc.refresh("not-a-token"), ErrorCode.UNAUTHORIZED)


async def test_refresh_token_expiry_and_session_cap(env: Env) -> None:
    svc = await env.loaded()
    await make_user(svc, customer=await env.customer())
    pair = await login(svc)
    env.clock.advance(REFRESH_TOKEN_TTL_S)
    await refused(svc.refresh(pair.refresh_token), ErrorCode.TOKEN_EXPIRED)

    pair = await login(svc)
    started = env.clock.now
    for _ in range(4):  # refreshed every six days: the last one would outlive 30 days
        env.clock.advance(6 * 24 * 3600)
        pair = await svc.refresh(pair.refresh_token)
    async with env.engine.connect() as conn:
        row = (
            await conn.execute(
                select(t.refresh_tokens).where(
                    t.refresh_tokens.c.token_hash == hash_refresh_token(pair.refresh_token)
                )
            )
        ).one()
    assert row.expires_at == started + MAX_SESSION_S * NS
    env.clock.advance(MAX_SESSION_S - 24 * 24 * 3600)
    await refused(svc.refresh(pair.refresh_token), ErrorCode.TOKEN_EXPIRED)


async def test_logout_revokes_the_family(env: Env) -> None:
    svc = await env.loaded()
    await make_user(svc, customer=await env.customer())
    first = await login(svc)
    second = await svc.refresh(first.refresh_token)
    await svc.logout(first.refresh_token)  # any token of the family ends the session
    await refused(svc.refresh(second.refresh_token), ErrorCode.UNAUTHORIZED)
    await svc.logout(second.refresh_token)  # idempotent
    await svc.logout("unknown")  # ignored (RFC 7009)


async def test_ended_sessions_refuse_their_access_tokens_at_once_and_after_a_restart(
    env: Env,
) -> None:
    svc = await env.loaded()
    await make_user(svc, customer=await env.customer())
    out, reused, kept = await login(svc), await login(svc), await login(svc)
    rotated = await svc.refresh(reused.refresh_token)
    who = await svc.principal_from_token(kept.access_token, env.clock.now)
    assert (
        who.session_id
        == decode_access_token(SECRET, kept.access_token, now=int(env.clock.seconds)).session_id
    )

    await svc.logout(out.refresh_token)
    await refused(svc.refresh(reused.refresh_token), ErrorCode.UNAUTHORIZED)  # reuse
    for token in (out.access_token, reused.access_token, rotated.access_token):
        error = await refused(svc.principal_from_token(token, env.clock.now), 40110000)
        assert "session has ended" in error.message
    await svc.principal_from_token(kept.access_token, env.clock.now)  # other sessions live on

    env.clock.advance(60)
    restarted = await env.loaded()  # the ended sessions are read back from the database
    for token in (out.access_token, rotated.access_token):
        await refused(restarted.principal_from_token(token, env.clock.now), 40110000)
    await restarted.principal_from_token(kept.access_token, env.clock.now)

    env.clock.advance(ACCESS_TOKEN_TTL_S)
    later = await env.loaded()
    await refused(
        later.principal_from_token(out.access_token, env.clock.now), ErrorCode.TOKEN_EXPIRED
    )


async def test_confirming_totp_and_disabling_end_access_tokens_at_once(env: Env) -> None:
    svc = await env.loaded()
    user = await make_user(svc, customer=await env.customer())
    before = await login(svc)
    enrolment = await svc.enrol_totp("alice", PASSWORD, client_address="x")
    await svc.confirm_totp(
        "alice", PASSWORD, totp_now(enrolment.secret, env.clock.seconds), client_address="x"
    )
    await refused(svc.principal_from_token(before.access_token, env.clock.now), 40110000)
    env.clock.advance(TOTP_STEP_S)
    after = await login(svc, code=totp_now(enrolment.secret, env.clock.seconds))
    await svc.set_disabled(user["id"], True)
    await svc.set_disabled(user["id"], False)
    error = await refused(svc.principal_from_token(after.access_token, env.clock.now), 40110000)
    assert "session has ended" in error.message  # enabling again does not revive it


async def test_access_token_checks(env: Env) -> None:
    svc = await env.loaded()
    await make_user(svc, customer=await env.customer())
    pair = await login(svc)
    env.clock.advance(ACCESS_TOKEN_TTL_S - 1)
    await svc.principal_from_token(pair.access_token, env.clock.now)
    env.clock.advance(1)
    error = await refused(
        svc.principal_from_token(pair.access_token, env.clock.now), ErrorCode.TOKEN_EXPIRED
    )
    assert error.status == 401
    await refused(svc.principal_from_token("garbage", env.clock.now), ErrorCode.UNAUTHORIZED)
    forged = IdentityService(
        env.store,
        secret=b"x" * 32,
        account_for_customer=lambda _c: None,
        equity_for_customer=lambda _c: 0,
        clock=env.clock,
        hasher=env.hasher,
    )
    await forged.load()
    token = (await login(forged, address="10.7.7.7")).access_token
    await refused(svc.principal_from_token(token, env.clock.now), ErrorCode.UNAUTHORIZED)


# --- API keys and rate limits ---------------------------------------------------------------


async def test_api_key_create_list_rotate_revoke(env: Env) -> None:
    svc = await env.loaded()
    cid = await env.customer()
    user = await make_user(svc, customer=cid)
    other = await make_user(svc, "bob", customer=cid)
    key_id, secret = await svc.create_api_key(user["id"], "bot")
    who = await svc.principal_from_key(key_id, secret, env.clock.now)
    assert (who.user_id, who.key_id, who.account_id, who.mfa) == (
        user["id"],
        key_id,
        "acct-c1",
        False,
    )
    await refused(svc.principal_from_key(key_id, secret[::-1], 0), ErrorCode.UNAUTHORIZED)
    await refused(svc.principal_from_key("nonsense", secret, 0), ErrorCode.UNAUTHORIZED)
    assert svc.list_api_keys(user["id"]) == [
        {"key_id": key_id, "label": "bot", "rate_limit_per_minute": 200, "created_at": START}
    ]
    assert svc.list_api_keys(other["id"]) == []

    await refused(svc.revoke_api_key(other["id"], key_id), ErrorCode.NOT_FOUND)
    await refused(svc.rotate_api_key(other["id"], key_id), ErrorCode.NOT_FOUND)

    env.clock.advance(5)
    new_id, new_secret = await svc.rotate_api_key(user["id"], key_id)
    assert new_id != key_id
    await refused(svc.principal_from_key(key_id, secret, 0), ErrorCode.UNAUTHORIZED)
    assert (await svc.principal_from_key(new_id, new_secret, 0)).key_id == new_id
    assert [k["label"] for k in svc.list_api_keys(user["id"])] == ["bot"]

    await svc.revoke_api_key(user["id"], new_id)
    await refused(svc.principal_from_key(new_id, new_secret, 0), ErrorCode.UNAUTHORIZED)
    await refused(svc.revoke_api_key(user["id"], new_id), ErrorCode.NOT_FOUND)
    async with env.engine.connect() as conn:
        rows = {r.key_id: r for r in await conn.execute(select(t.api_keys))}
    assert rows[key_id].revoked_at == START + 5 * NS
    assert rows[new_id].revoked_at == START + 5 * NS
    assert new_secret not in {r.secret_hash for r in rows.values()}


async def test_api_keys_per_user_are_limited(env: Env) -> None:
    svc = await env.loaded()
    user = await make_user(svc, customer=await env.customer())
    keys = [await svc.create_api_key(user["id"], f"k{i}") for i in range(MAX_API_KEYS_PER_USER)]
    await refused(svc.create_api_key(user["id"]), ErrorCode.CONFLICT)
    await svc.rotate_api_key(user["id"], keys[0][0])  # rotation keeps the count
    await refused(svc.create_api_key(user["id"]), ErrorCode.CONFLICT)
    await svc.revoke_api_key(user["id"], keys[1][0])
    await svc.create_api_key(user["id"])
    await refused(svc.create_api_key(user["id"], "x" * 101), ErrorCode.INVALID)
    await refused(svc.create_api_key("nobody"), ErrorCode.NOT_FOUND)


async def test_rate_limit_per_key_and_per_user(env: Env) -> None:
    svc = await env.loaded(key_rate_limit_per_minute=3)
    user = await make_user(svc, customer=await env.customer())
    key_a = await svc.create_api_key(user["id"])
    key_b = await svc.create_api_key(user["id"])
    by_a = await svc.principal_from_key(*key_a, env.clock.now)
    by_b = await svc.principal_from_key(*key_b, env.clock.now)
    by_token = await svc.principal_from_token((await login(svc)).access_token, env.clock.now)
    now = env.clock.seconds
    assert [svc.rate_limit(by_a, now) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = svc.rate_limit(by_a, now)
    assert 19 < wait <= 20.001  # 3 per minute: one more every 20 s
    assert svc.rate_limit(by_b, now) == 0.0  # each key has its own bucket
    assert [svc.rate_limit(by_token, now) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert svc.rate_limit(by_token, now) > 0
    assert svc.rate_limit(by_a, now + wait) == 0.0
