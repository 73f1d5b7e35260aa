"""The broker's stable error codes and the exception that carries one to the API edge.

Codes follow Alpaca's eight-digit style: the first three digits are the HTTP status. Risk
rejections (4031xxxx) live in ``broker.risk.codes``; everything else is listed here.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["BrokerError", "ErrorCode"]


class ErrorCode(IntEnum):
    BAD_REQUEST = 40010000  # malformed JSON or parameters
    UNAUTHORIZED = 40110000  # no or bad credentials
    TOKEN_EXPIRED = 40110001
    MFA_REQUIRED = 40110002  # the login needs a TOTP code
    MFA_ENROLMENT_REQUIRED = 40110003  # equity above the MFA threshold and no TOTP set up
    ACCOUNT_LOCKED = 40110004  # too many failed logins
    FORBIDDEN = 40310100  # the role lacks the permission
    NOT_FOUND = 40410000
    ORDER_NOT_FOUND = 40410001
    POSITION_NOT_FOUND = 40410002
    ASSET_NOT_FOUND = 40410003
    CONFLICT = 40910000
    ORDER_NOT_CANCELABLE = 42210001  # the order is closed already or pending a change
    ORDER_NOT_REPLACEABLE = 42210002
    INVALID = 42210000  # a well-formed request with invalid values
    DUPLICATE = 42210003  # e.g. the user name is taken
    RATE_LIMITED = 42910000
    VENUE_UNAVAILABLE = 50310000  # the venue refused or is not running; nothing was done


class BrokerError(Exception):
    """A request the broker refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, code: int, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message
        self.status = status if status is not None else int(str(int(code))[:3])

    def __repr__(self) -> str:
        return f"BrokerError({self.code}, {self.message!r})"
