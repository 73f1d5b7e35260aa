"""Ended sessions, in memory: so that an access token of a revoked session is refused at once.

An access token is a signed JWT that stays valid until its ``exp``; without a check, logging out
or a detected refresh-token reuse would leave the session's access tokens working for up to
`ACCESS_TOKEN_TTL_S`. Every access token names its session (``sid``, the refresh-token family),
and every authenticated request asks `RevokedSessions` whether that session has ended: a set
lookup, no database access.

The set is a projection of the ``refresh_tokens`` table: a session has ended when none of its
refresh tokens is live (every one is revoked: logout, reuse detection, TOTP confirmation, a
disabled user). The identity service adds a session here before it writes the revocation, and
loads the ended sessions from the table at start, so a restart does not bring a revoked
session's access tokens back.

A session is remembered only as long as one of its access tokens can still be valid: until
`ACCESS_TOKEN_TTL_S` after its newest access token was issued (its newest refresh token's
``created_at``, or the time of revocation when added live). Later, every such token has expired
anyway, so the set stays as small as the number of sessions ended in the last quarter hour.
"""

from __future__ import annotations

import heapq
from typing import Final

from tradingfloor.broker.identity.tokens import ACCESS_TOKEN_TTL_S

__all__ = ["REMEMBER_NS", "RevokedSessions"]

_NS: Final = 1_000_000_000
#: How long after its newest access token was issued an ended session must be remembered.
REMEMBER_NS: Final = ACCESS_TOKEN_TTL_S * _NS


class RevokedSessions:
    """The ids of ended sessions whose access tokens have not all expired yet."""

    def __init__(self) -> None:
        self._forget_at: dict[str, int] = {}  # session id -> when it may be forgotten (ns)
        self._queue: list[tuple[int, str]] = []  # (forget at, session id), a min-heap

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._forget_at

    def __len__(self) -> int:
        return len(self._forget_at)

    def add(self, session_id: str, last_issued_ns: int, now_ns: int) -> None:
        """Remember that `session_id` has ended; its newest access token was issued at
        `last_issued_ns` (pass `now_ns` when not known: no token is newer than now)."""
        self._forget_expired(now_ns)
        forget_at = last_issued_ns + REMEMBER_NS
        if forget_at <= now_ns or self._forget_at.get(session_id, -1) >= forget_at:
            return  # every access token of the session has expired, or it is known already
        self._forget_at[session_id] = forget_at
        heapq.heappush(self._queue, (forget_at, session_id))

    def replace_all(self, ended: list[tuple[str, int]], now_ns: int) -> None:
        """Start again from ``(session id, last issued ns)`` pairs read from the database."""
        self._forget_at.clear()
        self._queue.clear()
        for session_id, last_issued in ended:
            self.add(session_id, last_issued, now_ns)

    def _forget_expired(self, now_ns: int) -> None:
        while self._queue and self._queue[0][0] <= now_ns:
            forget_at, session_id = heapq.heappop(self._queue)
            if self._forget_at.get(session_id) == forget_at:
                del self._forget_at[session_id]
