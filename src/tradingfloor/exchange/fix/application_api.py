"""The interface between the FIX session layer and the application on top of it.

``FixApplication`` is what the application implements; ``SessionHandle`` is what it gets back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tradingfloor.exchange.config import MemberConfig
from tradingfloor.exchange.fix.codec import Message, MessageFields

__all__ = ["FixApplication", "SessionHandle"]


class SessionHandle(Protocol):
    """One member's FIX session, connected or not; stable across reconnections and restarts."""

    @property
    def comp_id(self) -> str: ...

    @property
    def member(self) -> MemberConfig: ...

    @property
    def logged_on(self) -> bool: ...

    def send(
        self, msg_type: str, body: Sequence[tuple[int, str]], *, poss_resend: bool = False
    ) -> None:
        """Send an application message: sequenced and stored, then written if logged on.

        ``poss_resend`` marks it PossResend (97=Y): it may have gone out before under another
        seq num (the gateway's reports regenerated at start-up after a crash).

        While the member is offline the message is only stored; the member gets it by
        ResendRequest after its next logon. Market data (W, X) is sequenced but not stored:
        a resend replaces it with a gap fill, and it is dropped while the member is offline.
        """
        ...

    def reject(self, msg: MessageFields, reason: int, ref_tag: int | None, text: str) -> None:
        """Session-level Reject (35=3) of an inbound message, e.g. a malformed field."""
        ...

    def business_reject(self, msg: MessageFields, reason: int, text: str, ref_id: str = "") -> None:
        """BusinessMessageReject (35=j) of an inbound application message."""
        ...


class FixApplication(Protocol):
    """Callbacks of the application; synchronous, on the event-loop thread."""

    supported_msg_types: frozenset[str]
    """Application MsgTypes it handles; a valid FIX 4.4 type outside this set is answered with
    BusinessMessageReject 380=3, an undefined type with Reject 373=11."""

    def on_logon(self, session: SessionHandle) -> None: ...

    def on_logout(self, session: SessionHandle, reason: str) -> None:
        """A logged-on session ended: Logout either way, heartbeat timeout or a dropped socket."""
        ...

    def on_message(self, session: SessionHandle, msg: Message) -> None:
        """An inbound application message: in sequence, duplicates removed, throttle applied."""
        ...
