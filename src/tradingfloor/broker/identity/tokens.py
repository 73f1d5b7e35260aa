"""Access tokens (HS256 JWTs, PyJWT) and opaque rotating refresh tokens.

Access token claims: ``iss`` "tradingfloor", ``typ`` "access", ``sub`` user id, ``role``,
``jti``, ``iat``, ``exp`` (epoch seconds), ``mfa`` (whether the login passed a second factor) and
``sid``, the session (refresh-token family) the token was issued in, so that ending the session
(logout, refresh-token reuse) refuses its access tokens at once (see `sessions`).
Time is the caller's ``now``: PyJWT's own clock checks are switched off and done here.

Refresh rotation protocol (the store keeps, per refresh token, the sha256 of the token,
family_id, user_id, expires_at_ns, revoked and replaced_by):

1. Login: ``token, digest = new_refresh_token()``; store a record with a new family_id.
2. Refresh: look the record up by ``hash_refresh_token(presented)``; unknown -> 401.
   ``judge_refresh(...)``:

   * ACCEPT: issue a new refresh token in the same family, set the old record's replaced_by to
     the new one, and issue a new access token.
   * REUSE_DETECTED: a token that was already rotated or revoked came back, so it was copied;
     revoke every token of the family (the thief and the user both have to log in again) -> 401.
   * EXPIRED: -> 401; nothing else changes.
3. Logout: revoke the family.

The family id is the session id (``sid``) of the access tokens issued with the family's refresh
tokens.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt

from tradingfloor.broker.identity.roles import Role, parse_role

__all__ = [
    "ACCESS_TOKEN_TTL_S",
    "ACCESS_TOKEN_TYPE",
    "ALGORITHM",
    "ISSUER",
    "MAX_IAT_SKEW_S",
    "MIN_SECRET_BYTES",
    "REFRESH_TOKEN_BYTES",
    "REFRESH_TOKEN_TTL_S",
    "AccessClaims",
    "RefreshVerdict",
    "TokenError",
    "TokenErrorCode",
    "decode_access_token",
    "hash_refresh_token",
    "issue_access_token",
    "judge_refresh",
    "new_refresh_token",
    "refresh_expires_at_ns",
]

ACCESS_TOKEN_TTL_S = 15 * 60
REFRESH_TOKEN_TTL_S = 7 * 24 * 3600
ALGORITHM = "HS256"
ISSUER = "tradingfloor"
ACCESS_TOKEN_TYPE = "access"
#: HS256 keys shorter than the hash output (32 bytes) are refused (RFC 7518 section 3.2).
MIN_SECRET_BYTES = 32
#: How far in the future ``iat`` may be (clock difference between the issuing and checking hosts).
MAX_IAT_SKEW_S = 60
#: Bytes of randomness in a refresh token (before base64url).
REFRESH_TOKEN_BYTES = 32

_NS_PER_S = 1_000_000_000
_REQUIRED_CLAIMS = ["iss", "typ", "sub", "role", "jti", "iat", "exp", "mfa", "sid"]


class TokenErrorCode(StrEnum):
    """Why an access token was refused; stable strings for the API's error body."""

    #: ``now`` is at or after ``exp``.
    EXPIRED = "token_expired"
    #: The signature does not verify with the secret, or the algorithm is not HS256.
    BAD_SIGNATURE = "token_bad_signature"
    #: Not a JWT, or a claim is missing or has the wrong type or an unknown value.
    MALFORMED = "token_malformed"
    #: A well-signed token of another type (``typ`` is not "access").
    WRONG_TYPE = "token_wrong_type"
    #: A well-signed token from another issuer.
    WRONG_ISSUER = "token_wrong_issuer"
    #: ``iat`` is more than `MAX_IAT_SKEW_S` after ``now``.
    NOT_YET_VALID = "token_not_yet_valid"


class TokenError(Exception):
    """An access token was refused; `code` is a `TokenErrorCode`, `message` is for humans."""

    def __init__(self, code: TokenErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """The verified contents of an access token (times in epoch seconds)."""

    user_id: str
    role: str
    jti: str
    issued_at: int
    expires_at: int
    mfa: bool
    session_id: str


def _check_secret(secret: bytes) -> None:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the token secret must have at least {MIN_SECRET_BYTES} bytes")


def issue_access_token(
    secret: bytes,
    user_id: str,
    role: Role | str,
    *,
    now: int,
    mfa: bool,
    session_id: str,
    ttl: int = ACCESS_TOKEN_TTL_S,
    jti: str | None = None,
) -> str:
    """A signed access token for `user_id` with `role` in session `session_id`, valid from `now`
    for `ttl` seconds.

    Raises ValueError for a short secret, an empty user or session id, an unknown role or a
    non-positive ttl.
    `jti` defaults to 128 random bits in hex.
    """
    _check_secret(secret)
    if not user_id:
        raise ValueError("user_id must not be empty")
    if not session_id:
        raise ValueError("session_id must not be empty")
    if parse_role(str(role)) is None:
        raise ValueError(f"unknown role {role!r}")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "typ": ACCESS_TOKEN_TYPE,
        "sub": user_id,
        "role": str(role),
        "jti": jti if jti is not None else secrets.token_hex(16),
        "iat": now,
        "exp": now + ttl,
        "mfa": mfa,
        "sid": session_id,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def decode_access_token(secret: bytes, token: str, *, now: int, leeway: int = 0) -> AccessClaims:
    """Verify `token` at time `now` (epoch seconds) and return its claims.

    Valid while ``iat - MAX_IAT_SKEW_S <= now < exp + leeway``. Raises `TokenError`; the checks
    run in this order: structure and signature, claim types, ``typ``, ``iss``, time.
    """
    _check_secret(secret)
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={
                "require": _REQUIRED_CLAIMS,
                # Time is checked below against the caller's `now`, not PyJWT's clock.
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_iss": False,
                "verify_aud": False,
                "enforce_minimum_key_length": True,
            },
        )
    except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError) as exc:
        raise TokenError(TokenErrorCode.BAD_SIGNATURE, str(exc)) from None
    except jwt.PyJWTError as exc:
        raise TokenError(TokenErrorCode.MALFORMED, str(exc)) from None

    sub, role, jti = payload["sub"], payload["role"], payload["jti"]
    iat, exp, mfa, sid = payload["iat"], payload["exp"], payload["mfa"], payload["sid"]
    if not (isinstance(sub, str) and sub):
        raise TokenError(TokenErrorCode.MALFORMED, "sub must be a non-empty string")
    if not (isinstance(role, str) and parse_role(role) is not None):
        raise TokenError(TokenErrorCode.MALFORMED, "role is not a known role")
    if not isinstance(jti, str):
        raise TokenError(TokenErrorCode.MALFORMED, "jti must be a string")
    if not (_is_int(iat) and _is_int(exp)):
        raise TokenError(TokenErrorCode.MALFORMED, "iat and exp must be integers")
    if not isinstance(mfa, bool):
        raise TokenError(TokenErrorCode.MALFORMED, "mfa must be a boolean")
    if not (isinstance(sid, str) and sid):
        raise TokenError(TokenErrorCode.MALFORMED, "sid must be a non-empty string")
    if payload["typ"] != ACCESS_TOKEN_TYPE:
        raise TokenError(TokenErrorCode.WRONG_TYPE, "not an access token")
    if payload["iss"] != ISSUER:
        raise TokenError(TokenErrorCode.WRONG_ISSUER, "token from another issuer")
    if iat > now + MAX_IAT_SKEW_S:
        raise TokenError(TokenErrorCode.NOT_YET_VALID, "token issued in the future")
    if now >= exp + leeway:
        raise TokenError(TokenErrorCode.EXPIRED, "token has expired")
    return AccessClaims(
        user_id=sub, role=role, jti=jti, issued_at=iat, expires_at=exp, mfa=mfa, session_id=sid
    )


# --- refresh tokens -------------------------------------------------------------------------


def hash_refresh_token(token: str) -> str:
    """The sha256 hex digest of `token`: what the store keeps and looks tokens up by.

    A fast hash is right here: the token is 256 random bits, so it cannot be guessed offline.
    """
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_refresh_token() -> tuple[str, str]:
    """A fresh opaque refresh token and its digest: ``(token, hash_refresh_token(token))``.

    Give the token to the client once; store only the digest.
    """
    token = secrets.token_urlsafe(REFRESH_TOKEN_BYTES)
    return token, hash_refresh_token(token)


def refresh_expires_at_ns(now_ns: int, ttl_s: int = REFRESH_TOKEN_TTL_S) -> int:
    """The expiry to store for a refresh token issued at `now_ns`."""
    return now_ns + ttl_s * _NS_PER_S


class RefreshVerdict(StrEnum):
    """What to do with a presented refresh token (see the module docstring)."""

    ACCEPT = "accept"
    REUSE_DETECTED = "reuse_detected"
    EXPIRED = "expired"


def judge_refresh(
    record_revoked: bool, replaced_by: str | None, expires_at_ns: int, now_ns: int
) -> RefreshVerdict:
    """Judge a presented refresh token from its stored record.

    Reuse is checked before expiry: a rotated or revoked token coming back is evidence of a
    copy even after it expired. Valid while ``now_ns < expires_at_ns``.
    """
    if record_revoked or replaced_by is not None:
        return RefreshVerdict.REUSE_DETECTED
    if now_ns >= expires_at_ns:
        return RefreshVerdict.EXPIRED
    return RefreshVerdict.ACCEPT
