"""The public surface of broker.identity: each module exports what the docs say, no more."""

from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGE = "tradingfloor.broker.identity"
PUBLIC: dict[str, set[str]] = {
    "roles": {
        "PERMISSIONS",
        "Permission",
        "Role",
        "can_assign",
        "has_permission",
        "parse_role",
        "role_at_least",
        "role_level",
    },
    "passwords": {
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
    },
    "tokens": {
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
    },
    "totp": {
        "DEFAULT_ISSUER",
        "MFA_EQUITY_THRESHOLD_MINOR",
        "TOTP_DIGITS",
        "TOTP_STEP_S",
        "TOTP_WINDOW_STEPS",
        "MfaDecision",
        "mfa_decision",
        "mfa_required",
        "new_totp_secret",
        "provisioning_qr_svg",
        "provisioning_uri",
        "time_step",
        "totp_now",
        "verify_totp",
    },
    "apikeys": {
        "DEFAULT_KEY_RATE_LIMIT_PER_MINUTE",
        "KEY_ID_LENGTH",
        "KEY_ID_PREFIX",
        "SECRET_LENGTH",
        "hash_api_secret",
        "looks_like_key_id",
        "looks_like_secret",
        "new_api_key",
        "verify_api_secret",
    },
    "sessions": {"REMEMBER_NS", "RevokedSessions"},
}


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_module_exports(name: str) -> None:
    module = importlib.import_module(f"{PACKAGE}.{name}")
    assert module.__doc__ and module.__doc__.strip()
    assert set(module.__all__) == PUBLIC[name]
    for attr in module.__all__:
        obj = getattr(module, attr)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert obj.__doc__, f"{name}.{attr} has no docstring"


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_no_wall_clock_or_web_framework(name: str) -> None:
    module = importlib.import_module(f"{PACKAGE}.{name}")
    source = inspect.getsource(module)
    for forbidden in ("time.time", "time.monotonic", "datetime.now", "fastapi", "sqlalchemy"):
        assert forbidden not in source, f"{name} uses {forbidden}"
