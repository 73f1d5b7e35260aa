"""Tests of TOTP verification (RFC 6238 vectors, window, replay) and the MFA policy."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradingfloor.broker.identity.totp import (
    MFA_EQUITY_THRESHOLD_MINOR,
    MfaDecision,
    mfa_decision,
    mfa_required,
    new_totp_secret,
    provisioning_uri,
    time_step,
    totp_now,
    verify_totp,
)

# RFC 6238 appendix B, SHA-1 key "12345678901234567890", last six of the eight digits.
RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
RFC_VECTORS = [
    (59, "287082"),
    (1_111_111_109, "081804"),
    (1_111_111_111, "050471"),
    (1_234_567_890, "005924"),
    (2_000_000_000, "279037"),
    (20_000_000_000, "353130"),
]
NOW = 1_750_000_005.5


@pytest.mark.parametrize(("now", "code"), RFC_VECTORS)
def test_rfc_6238_vectors(now: int, code: str) -> None:
    assert totp_now(RFC_SECRET, now) == code
    assert verify_totp(RFC_SECRET, code, now=now) == now // 30


def test_agrees_with_pyotp() -> None:
    secret = new_totp_secret()
    assert totp_now(secret, NOW) == pyotp.TOTP(secret).at(NOW)


def test_new_secret() -> None:
    secret = new_totp_secret()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert new_totp_secret() != secret


def test_provisioning_uri() -> None:
    uri = provisioning_uri(RFC_SECRET, "alice@example.com")
    parsed = urlparse(uri)
    assert (parsed.scheme, parsed.netloc) == ("otpauth", "totp")
    assert parsed.path == "/tradingfloor:alice%40example.com"
    query = parse_qs(parsed.query)
    assert query["secret"] == [RFC_SECRET]
    assert query["issuer"] == ["tradingfloor"]
    assert "issuer=Other" in provisioning_uri(RFC_SECRET, "bob", issuer="Other")


def test_window_is_one_step_either_side() -> None:
    step = time_step(NOW)
    for offset in (-1, 0, 1):
        code = totp_now(RFC_SECRET, NOW + 30 * offset)
        assert verify_totp(RFC_SECRET, code, now=NOW) == step + offset
    for offset in (-2, 2):
        code = totp_now(RFC_SECRET, NOW + 30 * offset)
        assert verify_totp(RFC_SECRET, code, now=NOW) is None


def test_replay_is_refused() -> None:
    code = totp_now(RFC_SECRET, NOW)
    used = verify_totp(RFC_SECRET, code, now=NOW)
    assert used is not None
    assert verify_totp(RFC_SECRET, code, now=NOW, last_used_step=used) is None
    assert verify_totp(RFC_SECRET, code, now=NOW + 29, last_used_step=used) is None
    # An older code inside the window is refused too once a newer step was used.
    older = totp_now(RFC_SECRET, NOW - 30)
    assert verify_totp(RFC_SECRET, older, now=NOW, last_used_step=used) is None
    # The next step's code works.
    nxt = totp_now(RFC_SECRET, NOW + 30)
    assert verify_totp(RFC_SECRET, nxt, now=NOW + 30, last_used_step=used) == used + 1


@pytest.mark.parametrize(
    "code",
    [
        "",
        "12345",
        "1234567",
        " 287082",
        "287082 ",
        "28708a",
        "\uff12\uff18\uff17\uff10\uff18\uff12",
        "+87082",
        "28 082",
    ],
)
def test_only_six_ascii_digits(code: str) -> None:
    assert verify_totp(RFC_SECRET, code, now=59) is None


def test_early_time_steps() -> None:
    assert verify_totp(RFC_SECRET, totp_now(RFC_SECRET, 0), now=0) == 0
    with pytest.raises(ValueError):
        time_step(-1)


def test_malformed_secret_raises() -> None:
    with pytest.raises(ValueError):
        verify_totp("not base32!", "123456", now=NOW)


@given(now=st.floats(min_value=30, max_value=4e9), offset=st.integers(-1, 1))
def test_codes_in_window_verify(now: float, offset: int) -> None:
    code = totp_now(RFC_SECRET, now + 30 * offset)
    step = verify_totp(RFC_SECRET, code, now=now)
    assert step is not None
    assert abs(step - time_step(now)) <= 1
    assert verify_totp(RFC_SECRET, code, now=now, last_used_step=step) is None


@pytest.mark.parametrize(
    ("enrolled", "equity", "decision"),
    [
        (False, 0, MfaDecision.NOT_REQUIRED),
        (False, MFA_EQUITY_THRESHOLD_MINOR, MfaDecision.NOT_REQUIRED),  # exactly $100,000.00
        (False, MFA_EQUITY_THRESHOLD_MINOR + 1, MfaDecision.ENROLMENT_REQUIRED),
        (True, 0, MfaDecision.REQUIRED),
        (True, MFA_EQUITY_THRESHOLD_MINOR + 1, MfaDecision.REQUIRED),
    ],
)
def test_mfa_policy(enrolled: bool, equity: int, decision: MfaDecision) -> None:
    assert MFA_EQUITY_THRESHOLD_MINOR == 10_000_000
    assert mfa_decision(enrolled, equity) is decision
    assert mfa_required(enrolled, equity) == (decision is not MfaDecision.NOT_REQUIRED)


def test_mfa_custom_threshold() -> None:
    assert mfa_decision(False, 101, threshold_minor=100) is MfaDecision.ENROLMENT_REQUIRED
    assert not mfa_required(False, 100, threshold_minor=100)
