"""Who did it: the one value that says which principal, with which credential, from where and in
which request, caused a state change.

An `Actor` is made once where a request enters the system (the broker's HTTP edge from the
authenticated request, a FIX session from its logon) and handed down to every service call that
changes state, which stores it next to the change (the order's history, the administrative
records). Changes nobody asked for get a *system* actor naming the component that made them
(the venue's events, the broker's contingent-order logic, the day roll, recovery after a
restart), so that no stored change is without an actor.

Request ids are the client's ``X-Request-ID`` when it is sane (`sane_request_id`), else one
made here (`new_request_id`). This module imports nothing outside the standard library.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

__all__ = [
    "ACTOR_COLUMNS",
    "ANONYMOUS",
    "IN_PROCESS",
    "MAX_ADDRESS_LENGTH",
    "MAX_CREDENTIAL_ID_LENGTH",
    "MAX_PRINCIPAL_LENGTH",
    "MAX_REQUEST_ID_LENGTH",
    "MAX_ROLE_LENGTH",
    "SYSTEM_PRINCIPAL",
    "SYSTEM_ROLE",
    "Actor",
    "CredentialKind",
    "Origin",
    "new_request_id",
    "sane_request_id",
]

#: The principal (and role) of changes the system makes on its own.
SYSTEM_PRINCIPAL: Final = "system"
SYSTEM_ROLE: Final = "system"
#: The longest request id kept as the client sent it (a UUID has 36 characters).
MAX_REQUEST_ID_LENGTH: Final = 128
#: The widths of the other facts (the columns that store them have these widths: a longer
#: value would fail the database commit, which stops the broker, so it is refused here).
MAX_PRINCIPAL_LENGTH: Final = 64
MAX_ROLE_LENGTH: Final = 16
MAX_CREDENTIAL_ID_LENGTH: Final = 64
MAX_ADDRESS_LENGTH: Final = 64
#: What a client's request id may look like: printable ASCII without spaces, quotes or
#: separators that would let it forge a log line or a header.
_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=@-]*")

#: The columns an actor is stored in (every table of records has them, with these names).
ACTOR_COLUMNS: Final = (
    "actor_principal",
    "actor_role",
    "credential_kind",
    "credential_id",
    "source_address",
    "source_port",
    "request_id",
)


class CredentialKind(StrEnum):
    """How the principal proved who it is; the string is what the database stores."""

    #: Alpaca-style API key headers; the credential id is the key id.
    API_KEY = "api_key"
    #: A bearer access token (JWT); the credential id is the token's ``jti``.
    TOKEN = "token"
    #: A FIX session at the venue; the credential id is the SenderCompID.
    FIX_SESSION = "fix_session"
    #: A username and password (a login, TOTP enrolment); the credential id is the username
    #: given, also when it names nobody.
    PASSWORD = "password"
    #: A refresh token (rotation, logout); the credential id is its session (family) id.
    REFRESH_TOKEN = "refresh_token"
    #: No credential: the system acted on its own; the credential id names the component.
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Actor:
    """The principal (user id and role), the credential (kind and id), the source address and
    port, and the request id of one state change. System actors have no address (``""``, port 0).
    """

    principal: str
    role: str
    credential_kind: CredentialKind
    credential_id: str
    address: str
    port: int
    request_id: str

    def __post_init__(self) -> None:
        # The stored facts must exist: a change by nobody is a programming error, not data.
        if not self.principal or not self.role or not self.credential_id:
            raise ValueError(f"an actor needs a principal, role and credential: {self!r}")
        if not 0 <= self.port <= 65_535:
            raise ValueError(f"port out of range: {self.port}")
        if (
            len(self.principal) > MAX_PRINCIPAL_LENGTH
            or len(self.role) > MAX_ROLE_LENGTH
            or len(self.credential_id) > MAX_CREDENTIAL_ID_LENGTH
            or len(self.address) > MAX_ADDRESS_LENGTH
            or len(self.request_id) > MAX_REQUEST_ID_LENGTH
        ):
            raise ValueError(f"a fact of the actor is longer than its column: {self!r}")

    @classmethod
    def system(cls, component: str, request_id: str | None = None) -> Actor:
        """The system acting on its own: ``component`` names what acted (e.g. ``venue:TFEX``)."""
        return cls(
            principal=SYSTEM_PRINCIPAL,
            role=SYSTEM_ROLE,
            credential_kind=CredentialKind.SYSTEM,
            credential_id=component,
            address="",
            port=0,
            request_id=new_request_id() if request_id is None else request_id,
        )

    @property
    def is_system(self) -> bool:
        return self.credential_kind is CredentialKind.SYSTEM

    def row(self) -> dict[str, Any]:
        """The actor as the values of `ACTOR_COLUMNS`."""
        return {
            "actor_principal": self.principal,
            "actor_role": self.role,
            "credential_kind": self.credential_kind.value,
            "credential_id": self.credential_id,
            "source_address": self.address,
            "source_port": self.port,
            "request_id": self.request_id,
        }

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Actor:
        """The actor stored in a row's `ACTOR_COLUMNS`."""
        return cls(
            principal=row["actor_principal"],
            role=row["actor_role"],
            credential_kind=CredentialKind(row["credential_kind"]),
            credential_id=row["credential_id"],
            address=row["source_address"],
            port=row["source_port"],
            request_id=row["request_id"],
        )


#: The principal and role of a request by somebody not (yet) known: a failed login under a
#: username that names no user.
ANONYMOUS: Final = "anonymous"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from, before its principal is known (the authentication routes):
    the client's address and port and the request id."""

    address: str
    port: int
    request_id: str

    def actor(self, principal: str, role: str, kind: CredentialKind, credential_id: str) -> Actor:
        """The actor of this request once it is known who made it (long values are cut to
        their columns' widths)."""
        return Actor(
            principal=principal[:MAX_PRINCIPAL_LENGTH],
            role=role[:MAX_ROLE_LENGTH],
            credential_kind=kind,
            credential_id=credential_id[:MAX_CREDENTIAL_ID_LENGTH] or "unknown",
            address=self.address[:MAX_ADDRESS_LENGTH],
            port=self.port if 0 <= self.port <= 65_535 else 0,
            request_id=self.request_id[:MAX_REQUEST_ID_LENGTH],
        )


#: The actor of service calls made in-process, not through an edge that knows a caller
#: (start-up seeding of the demo, command-line tools, tests that drive a service directly).
IN_PROCESS: Final = Actor.system("in-process", request_id="")


def new_request_id() -> str:
    """A fresh request id (32 hex digits)."""
    return uuid.uuid4().hex


def sane_request_id(value: str | None) -> str | None:
    """``value`` if it may be used as a request id as it is, else None.

    Sane: 1 to `MAX_REQUEST_ID_LENGTH` characters, starting with a letter or digit, then letters,
    digits and ``._:/+=@-`` (UUIDs, trace ids and base64 tokens fit; spaces, quotes, control
    characters and anything that could split a log line or a header do not).
    """
    if value is None or not 0 < len(value) <= MAX_REQUEST_ID_LENGTH:
        return None
    return value if _REQUEST_ID.fullmatch(value) else None
