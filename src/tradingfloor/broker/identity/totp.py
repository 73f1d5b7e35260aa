"""TOTP second factor (RFC 6238: SHA-1, 6 digits, 30 s steps, via pyotp) and the MFA policy.

MFA rule at login, after the password has verified (`mfa_decision`):

* TOTP enrolled -> REQUIRED: ask for a code, whatever the equity.
* not enrolled and equity strictly above the threshold (default $100,000.00) ->
  ENROLMENT_REQUIRED: refuse the login with a code telling the user to enrol TOTP first.
* otherwise -> NOT_REQUIRED.

Enrolment shows the ``otpauth://`` URI as a QR code (`provisioning_qr_svg`, drawn by segno as an
SVG data URI) for the authenticator app to scan.
"""

from __future__ import annotations

import hmac
import re
from enum import StrEnum

import pyotp
import segno

__all__ = [
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
]

TOTP_DIGITS = 6
TOTP_STEP_S = 30
#: Codes of this many steps before and after the current one are accepted (clock drift).
TOTP_WINDOW_STEPS = 1
DEFAULT_ISSUER = "tradingfloor"
#: Equity (minor units, cents) above which a user must have TOTP enrolled: $100,000.00.
MFA_EQUITY_THRESHOLD_MINOR = 10_000_000

_CODE = re.compile(r"[0-9]{6}")


def _totp(secret: str) -> pyotp.TOTP:
    # pyotp validates the base32 secret here and raises ValueError for a malformed one.
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_S)


def new_totp_secret() -> str:
    """A fresh random base32 TOTP secret (32 characters, 160 bits)."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str, issuer: str = DEFAULT_ISSUER) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app reads (usually shown as a QR code)."""
    return _totp(secret).provisioning_uri(name=username, issuer_name=issuer)


def provisioning_qr_svg(uri: str) -> str:
    """`uri` as a QR code: an SVG ``data:`` URI (error correction M, 4 px modules, the standard
    quiet zone of 4 modules, black on white so that every camera app reads it)."""
    qr = segno.make(uri, error="m", boost_error=False)
    return qr.svg_data_uri(scale=4, border=4, dark="#000", light="#fff")


def time_step(now: float) -> int:
    """The RFC 6238 time step (counter) that contains `now` (epoch seconds, >= 0)."""
    if now < 0:
        raise ValueError("now must not be before the epoch")
    return int(now // TOTP_STEP_S)


def totp_now(secret: str, now: float) -> str:
    """The code for `secret` at time `now` (for tests and demos)."""
    return _totp(secret).generate_otp(time_step(now))


def verify_totp(
    secret: str, code: str, *, now: float, last_used_step: int | None = None
) -> int | None:
    """The time step that `code` matches, or None if it is not acceptable.

    Accepts exactly six ASCII digits matching the step of `now` or one step either side, but
    never a step <= `last_used_step` (each code works once). Store the returned step as the
    user's new `last_used_step`. Raises ValueError for a malformed secret (a server-side bug).
    """
    totp = _totp(secret)
    if _CODE.fullmatch(code) is None:
        return None
    current = time_step(now)
    for step in range(current - TOTP_WINDOW_STEPS, current + TOTP_WINDOW_STEPS + 1):
        if step < 0 or (last_used_step is not None and step <= last_used_step):
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


class MfaDecision(StrEnum):
    """What a login needs after the password has verified."""

    NOT_REQUIRED = "not_required"
    #: TOTP is enrolled: ask for a code.
    REQUIRED = "required"
    #: Equity is above the threshold and TOTP is not enrolled: refuse, tell the user to enrol.
    ENROLMENT_REQUIRED = "enrolment_required"


def mfa_decision(
    totp_enabled: bool,
    equity_minor: int,
    threshold_minor: int = MFA_EQUITY_THRESHOLD_MINOR,
) -> MfaDecision:
    """Apply the MFA rule of the module docstring (equity strictly above the threshold)."""
    if totp_enabled:
        return MfaDecision.REQUIRED
    if equity_minor > threshold_minor:
        return MfaDecision.ENROLMENT_REQUIRED
    return MfaDecision.NOT_REQUIRED


def mfa_required(
    totp_enabled: bool,
    equity_minor: int,
    threshold_minor: int = MFA_EQUITY_THRESHOLD_MINOR,
) -> bool:
    """True unless the login may complete with the password alone (see `mfa_decision`)."""
    return mfa_decision(totp_enabled, equity_minor, threshold_minor) is not MfaDecision.NOT_REQUIRED
