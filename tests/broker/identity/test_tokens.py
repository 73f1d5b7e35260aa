"""Tests of access tokens (JWT) and refresh tokens (opaque, rotating)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradingfloor.broker.identity.roles import Role
from tradingfloor.broker.identity.tokens import (
    ACCESS_TOKEN_TTL_S,
    MAX_IAT_SKEW_S,
    REFRESH_TOKEN_TTL_S,
    AccessClaims,
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

SECRET = b"k" * 32
OTHER_SECRET = b"o" * 32
NOW = 1_750_000_000
NS = 1_000_000_000


def _payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "iss": "tradingfloor",
        "typ": "access",
        "sub": "u1",
        "role": "trader",
        "jti": "j1",
        "iat": NOW,
        "exp": NOW + 60,
        "mfa": False,
        "sid": "s1",
    }
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not None}


def _code(token: str, now: int = NOW) -> TokenErrorCode:
    with pytest.raises(TokenError) as info:
        decode_access_token(SECRET, token, now=now)
    assert info.value.message
    return info.value.code


def test_ttls() -> None:
    assert ACCESS_TOKEN_TTL_S == 900
    assert REFRESH_TOKEN_TTL_S == 604_800


def test_round_trip_and_claims() -> None:
    token = issue_access_token(
        SECRET, "user-1", Role.BROKER, now=NOW, mfa=True, session_id="s1", jti="abc"
    )
    claims = decode_access_token(SECRET, token, now=NOW)
    assert claims == AccessClaims(
        user_id="user-1",
        role="broker",
        jti="abc",
        issued_at=NOW,
        expires_at=NOW + ACCESS_TOKEN_TTL_S,
        mfa=True,
        session_id="s1",
    )
    raw = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert raw["iss"] == "tradingfloor"
    assert raw["typ"] == "access"
    assert raw["sub"] == "user-1"
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_default_jti_is_random() -> None:
    a = decode_access_token(
        SECRET,
        issue_access_token(SECRET, "u", "trader", now=NOW, mfa=False, session_id="s1"),
        now=NOW,
    )
    b = decode_access_token(
        SECRET,
        issue_access_token(SECRET, "u", "trader", now=NOW, mfa=False, session_id="s1"),
        now=NOW,
    )
    assert a.jti != b.jti
    assert re.fullmatch(r"[0-9a-f]{32}", a.jti)


def test_valid_until_expiry_then_expired() -> None:
    # PyJWT's own clock is not consulted: these times are decades away from the wall clock.
    for now in (NOW, 100, 4_000_000_000):
        token = issue_access_token(SECRET, "u", Role.TRADER, now=now, mfa=False, session_id="s1")
        assert decode_access_token(SECRET, token, now=now).user_id == "u"
        assert decode_access_token(SECRET, token, now=now + ACCESS_TOKEN_TTL_S - 1).user_id == "u"
        assert _code(token, now + ACCESS_TOKEN_TTL_S) is TokenErrorCode.EXPIRED
        assert _code(token, now + ACCESS_TOKEN_TTL_S + 1) is TokenErrorCode.EXPIRED


def test_leeway() -> None:
    token = issue_access_token(
        SECRET, "u", Role.TRADER, now=NOW, mfa=False, session_id="s1", ttl=10
    )
    assert decode_access_token(SECRET, token, now=NOW + 12, leeway=5).user_id == "u"
    with pytest.raises(TokenError):
        decode_access_token(SECRET, token, now=NOW + 15, leeway=5)


def test_issued_in_the_future() -> None:
    token = issue_access_token(SECRET, "u", Role.TRADER, now=NOW, mfa=False, session_id="s1")
    assert decode_access_token(SECRET, token, now=NOW - MAX_IAT_SKEW_S).user_id == "u"
    assert _code(token, NOW - MAX_IAT_SKEW_S - 1) is TokenErrorCode.NOT_YET_VALID


def test_bad_signature() -> None:
    token = issue_access_token(OTHER_SECRET, "u", Role.ADMIN, now=NOW, mfa=True, session_id="s1")
    assert _code(token) is TokenErrorCode.BAD_SIGNATURE
    good = issue_access_token(SECRET, "u", Role.TRADER, now=NOW, mfa=False, session_id="s1")
    head, body, sig = good.split(".")
    forged_body = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(body).replace(b'"trader"', b'"admin"')
    ).decode()
    assert _code(f"{head}.{forged_body}.{sig}") is TokenErrorCode.BAD_SIGNATURE
    assert _code(f"{head}.{body}.") is TokenErrorCode.BAD_SIGNATURE  # signature stripped


def test_algorithm_confusion_is_refused() -> None:
    none_token = jwt.encode(_payload(), None, algorithm="none")
    assert _code(none_token) is TokenErrorCode.BAD_SIGNATURE
    hs512 = jwt.encode(_payload(), SECRET * 2, algorithm="HS512")
    assert _code(hs512) is TokenErrorCode.BAD_SIGNATURE


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "bm90IGpzb24.e30.c2ln", "x" * 5000, "é.é.é"])
def test_malformed(token: str) -> None:
    assert _code(token) is TokenErrorCode.MALFORMED


@pytest.mark.parametrize(
    "overrides",
    [
        {"sub": None},
        {"exp": None},
        {"iat": None},
        {"jti": None},
        {"role": None},
        {"mfa": None},
        {"typ": None},
        {"iss": None},
        {"sub": ""},
        {"sub": 42},
        {"role": "root"},
        {"role": 1},
        {"exp": "soon"},
        {"exp": 1.5},
        {"iat": True},
        {"mfa": "yes"},
        {"jti": 7},
        {"sid": None},
        {"sid": ""},
        {"sid": 3},
    ],
)
def test_missing_or_ill_typed_claims_are_malformed(overrides: dict[str, Any]) -> None:
    token = jwt.encode(_payload(**overrides), SECRET, algorithm="HS256")
    assert _code(token) is TokenErrorCode.MALFORMED


def test_wrong_type_and_issuer() -> None:
    assert _code(jwt.encode(_payload(typ="refresh"), SECRET)) is TokenErrorCode.WRONG_TYPE
    assert _code(jwt.encode(_payload(iss="evil"), SECRET)) is TokenErrorCode.WRONG_ISSUER


def test_issue_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="secret"):
        issue_access_token(b"short", "u", Role.TRADER, now=NOW, mfa=False, session_id="s1")
    with pytest.raises(ValueError, match="secret"):
        decode_access_token(b"short", "x", now=NOW)
    with pytest.raises(ValueError, match="user_id"):
        issue_access_token(SECRET, "", Role.TRADER, now=NOW, mfa=False, session_id="s1")
    with pytest.raises(ValueError, match="session_id"):
        issue_access_token(SECRET, "u", Role.TRADER, now=NOW, mfa=False, session_id="")
    with pytest.raises(ValueError, match="role"):
        issue_access_token(SECRET, "u", "root", now=NOW, mfa=False, session_id="s1")
    with pytest.raises(ValueError, match="ttl"):
        issue_access_token(SECRET, "u", Role.TRADER, now=NOW, mfa=False, session_id="s1", ttl=0)


def test_error_carries_code_and_message() -> None:
    err = TokenError(TokenErrorCode.EXPIRED, "token has expired")
    assert err.code == "token_expired"
    assert str(err) == "token_expired: token has expired"


@given(
    user_id=st.text(min_size=1, max_size=64),
    role=st.sampled_from(list(Role)),
    now=st.integers(min_value=0, max_value=2**40),
    ttl=st.integers(min_value=1, max_value=10**6),
    mfa=st.booleans(),
    jti=st.text(max_size=40),
)
def test_round_trip_property(
    user_id: str, role: Role, now: int, ttl: int, mfa: bool, jti: str
) -> None:
    token = issue_access_token(
        SECRET, user_id, role, now=now, mfa=mfa, session_id="s1", ttl=ttl, jti=jti
    )
    claims = decode_access_token(SECRET, token, now=now + ttl - 1)
    assert claims == AccessClaims(user_id, role.value, jti, now, now + ttl, mfa, "s1")
    with pytest.raises(TokenError) as info:
        decode_access_token(SECRET, token, now=now + ttl)
    assert info.value.code is TokenErrorCode.EXPIRED
    with pytest.raises(TokenError) as info:
        decode_access_token(OTHER_SECRET, token, now=now)
    assert info.value.code is TokenErrorCode.BAD_SIGNATURE


# --- refresh tokens -------------------------------------------------------------------------


def test_new_refresh_token() -> None:
    token, digest = new_refresh_token()
    assert len(token) == 43  # 32 bytes in unpadded base64url
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert digest == hashlib.sha256(token.encode()).hexdigest() == hash_refresh_token(token)
    assert new_refresh_token()[0] != token


def test_refresh_expiry() -> None:
    assert refresh_expires_at_ns(5) == 5 + REFRESH_TOKEN_TTL_S * NS


@pytest.mark.parametrize(
    ("revoked", "replaced_by", "expires_at_ns", "now_ns", "verdict"),
    [
        (False, None, 100, 99, RefreshVerdict.ACCEPT),
        (False, None, 100, 100, RefreshVerdict.EXPIRED),
        (False, None, 100, 101, RefreshVerdict.EXPIRED),
        (False, "next", 100, 50, RefreshVerdict.REUSE_DETECTED),
        (True, None, 100, 50, RefreshVerdict.REUSE_DETECTED),
        (True, "next", 100, 50, RefreshVerdict.REUSE_DETECTED),
        # Reuse wins over expiry: an old rotated token coming back is still evidence of a copy.
        (False, "next", 100, 200, RefreshVerdict.REUSE_DETECTED),
        (True, None, 100, 200, RefreshVerdict.REUSE_DETECTED),
    ],
)
def test_judge_refresh(
    revoked: bool, replaced_by: str | None, expires_at_ns: int, now_ns: int, verdict: RefreshVerdict
) -> None:
    assert judge_refresh(revoked, replaced_by, expires_at_ns, now_ns) is verdict


def test_rotation_story() -> None:
    """A thief replays a rotated token: the family is revoked and the user's new token dies."""
    store: dict[str, dict[str, Any]] = {}
    now = NOW * NS

    def issue(family: str) -> str:
        token, digest = new_refresh_token()
        store[digest] = {
            "family": family,
            "revoked": False,
            "replaced_by": None,
            "expires_at_ns": refresh_expires_at_ns(now),
        }
        return token

    def refresh(token: str) -> str | RefreshVerdict:
        record = store[hash_refresh_token(token)]
        verdict = judge_refresh(
            record["revoked"], record["replaced_by"], record["expires_at_ns"], now
        )
        if verdict is RefreshVerdict.ACCEPT:
            new = issue(record["family"])
            record["replaced_by"] = hash_refresh_token(new)
            return new
        if verdict is RefreshVerdict.REUSE_DETECTED:
            for other in store.values():
                if other["family"] == record["family"]:
                    other["revoked"] = True
        return verdict

    first = issue("f1")
    second = refresh(first)
    assert isinstance(second, str)
    assert refresh(first) is RefreshVerdict.REUSE_DETECTED  # the copy comes back
    assert refresh(second) is RefreshVerdict.REUSE_DETECTED  # so the family is dead
