"""Alpaca-style API keys: a public key id (``PK`` + 18 characters) and a 40-character secret.

Clients send them as the ``APCA-API-KEY-ID`` and ``APCA-API-SECRET-KEY`` headers. The store
keeps the key id in clear and only the sha256 of the secret: the secret is ~238 random bits,
so it cannot be brute-forced offline and a fast hash is the standard choice (a slow password
hash would only cost CPU on every API request).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string

__all__ = [
    "DEFAULT_KEY_RATE_LIMIT_PER_MINUTE",
    "KEY_ID_LENGTH",
    "KEY_ID_PREFIX",
    "SECRET_LENGTH",
    "hash_api_secret",
    "looks_like_key_id",
    "looks_like_secret",
    "new_api_key",
    "verify_api_secret",
]

KEY_ID_PREFIX = "PK"
KEY_ID_LENGTH = 20
SECRET_LENGTH = 40
#: Requests per minute per key unless configured otherwise (Alpaca's documented default).
DEFAULT_KEY_RATE_LIMIT_PER_MINUTE = 200

_KEY_ID_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits
_KEY_ID = re.compile(rf"{KEY_ID_PREFIX}[A-Z0-9]{{{KEY_ID_LENGTH - len(KEY_ID_PREFIX)}}}")
_SECRET = re.compile(rf"[A-Za-z0-9]{{{SECRET_LENGTH}}}")


def new_api_key() -> tuple[str, str]:
    """A fresh ``(key_id, secret)``. Show the secret to the user once; store its hash."""
    body = "".join(
        secrets.choice(_KEY_ID_ALPHABET) for _ in range(KEY_ID_LENGTH - len(KEY_ID_PREFIX))
    )
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(SECRET_LENGTH))
    return KEY_ID_PREFIX + body, secret


def hash_api_secret(secret: str) -> str:
    """The sha256 hex digest of `secret`: what the store keeps."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def verify_api_secret(stored_hash: str, secret: str) -> bool:
    """True if `secret` hashes to `stored_hash` (constant-time comparison)."""
    return hmac.compare_digest(
        hash_api_secret(secret).encode("ascii"), stored_hash.encode("utf-8", "surrogatepass")
    )


def looks_like_key_id(value: str) -> bool:
    """True if `value` has the shape of a key id (checked before any database lookup)."""
    return _KEY_ID.fullmatch(value) is not None


def looks_like_secret(value: str) -> bool:
    """True if `value` has the shape of a secret made by `new_api_key`."""
    return _SECRET.fullmatch(value) is not None
