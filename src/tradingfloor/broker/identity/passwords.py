"""Password hashing with argon2id (argon2-cffi) and the password policy for new passwords.

Hashes are PHC strings (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``) that carry their own
parameters, so raising the cost later only needs `needs_rehash` at the next successful login.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "HASH_LENGTH",
    "MAX_PASSWORD_LENGTH",
    "MEMORY_COST_KIB",
    "MIN_CHARACTER_CLASSES",
    "MIN_PASSWORD_LENGTH",
    "PARALLELISM",
    "SALT_LENGTH",
    "TIME_COST",
    "check_password_policy",
    "default_hasher",
    "hash_password",
    "make_hasher",
    "needs_rehash",
    "verify_password",
]

#: argon2id cost parameters: OWASP's minimum recommendation for argon2id (19 MiB, 2 passes, 1 lane).
TIME_COST = 2
MEMORY_COST_KIB = 19_456
PARALLELISM = 1
HASH_LENGTH = 32
SALT_LENGTH = 16

#: Policy for new passwords, in characters (Unicode code points).
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
#: Of: lower-case letters, upper-case letters, digits, anything else (symbols, spaces, ...).
MIN_CHARACTER_CLASSES = 2


def make_hasher(
    *,
    time_cost: int = TIME_COST,
    memory_cost_kib: int = MEMORY_COST_KIB,
    parallelism: int = PARALLELISM,
) -> PasswordHasher:
    """An argon2id `PasswordHasher`; the defaults are the production parameters.

    Tests pass cheaper parameters and hand the hasher to the functions below.
    """
    return PasswordHasher(
        time_cost=time_cost,
        memory_cost=memory_cost_kib,
        parallelism=parallelism,
        hash_len=HASH_LENGTH,
        salt_len=SALT_LENGTH,
        type=Type.ID,
    )


_DEFAULT_HASHER = make_hasher()


def default_hasher() -> PasswordHasher:
    """The production hasher (shared; `PasswordHasher` is immutable and thread-safe)."""
    return _DEFAULT_HASHER


def hash_password(password: str, *, hasher: PasswordHasher | None = None) -> str:
    """Hash `password` with a fresh random salt; returns the PHC string to store.

    Does not apply the policy: call `check_password_policy` first for new passwords. Raises
    UnicodeEncodeError (a ValueError) for a string with lone surrogates, which the policy refuses.
    """
    return (hasher or _DEFAULT_HASHER).hash(password)


def verify_password(
    stored_hash: str, password: str, *, hasher: PasswordHasher | None = None
) -> bool:
    """True if `password` matches `stored_hash`; False on mismatch or a malformed hash.

    The cost parameters come from `stored_hash` itself. A password longer than
    `MAX_PASSWORD_LENGTH` never matches (no stored password can be that long), which keeps a
    huge request body from being hashed.
    """
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        encoded = password.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. from JSON "\\ud800"
        return False
    try:
        return (hasher or _DEFAULT_HASHER).verify(stored_hash, encoded)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str, *, hasher: PasswordHasher | None = None) -> bool:
    """True if `stored_hash` was made with other parameters (or another type) than `hasher`.

    Call it after a successful `verify_password` and, if True, store `hash_password(password)`.
    A malformed hash also needs a rehash.
    """
    try:
        return (hasher or _DEFAULT_HASHER).check_needs_rehash(stored_hash)
    except (InvalidHashError, ValueError):
        return True


def _character_classes(password: str) -> int:
    lower = upper = digit = other = False
    for char in password:
        if char.islower():
            lower = True
        elif char.isupper():
            upper = True
        elif char.isdigit():
            digit = True
        else:
            other = True
    return lower + upper + digit + other


def check_password_policy(password: str, *, username: str | None = None) -> str | None:
    """None if `password` is acceptable as a new password, else a message saying why not.

    The rules: at least `MIN_PASSWORD_LENGTH` and at most `MAX_PASSWORD_LENGTH` characters; at
    least `MIN_CHARACTER_CLASSES` of the classes lower-case letters, upper-case letters, digits
    and other characters; and, when `username` is given, not containing the username (ignoring
    case). Length counts Unicode code points; a string with lone surrogates is refused.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"password must have at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"password must have at most {MAX_PASSWORD_LENGTH} characters"
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        return "password contains characters that are not valid Unicode"
    if _character_classes(password) < MIN_CHARACTER_CLASSES:
        return (
            "password must mix at least two of: lower-case letters, upper-case letters, "
            "digits, other characters"
        )
    if username and username.casefold() in password.casefold():
        return "password must not contain the username"
    return None
