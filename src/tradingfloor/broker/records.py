"""The broker's records of who did what: the order history and the administrative records.

`ActionRecorder` queues one row per change, with its `core.actor.Actor`, on the write-behind
store, so that a record commits in the same transaction as the change it describes (callers
queue the record before they flush). Two tables:

* ``order_events``: each event of an order's life the broker records: ``submitted``,
  ``cancel_requested``, ``replace_requested`` (by the requester), the venue's answers and fills
  (``new``, ``rejected``, ``fill``, ``partial_fill``, ``canceled``, ``expired``, ``replaced``,
  ``order_cancel_rejected``, ``order_replace_rejected``; by the venue as system actor), and the
  broker's own actions (``leg_released``, a sibling's or a DAY order's cancel, recovery).
* ``admin_actions``: operator actions on the venue, cash movements, KYC decisions, customers,
  accounts, trading blocks, the restricted list, users, API keys, the customers' own
  watchlists, and sessions: logins (failed ones too), refreshes, logouts and TOTP enrolment
  (`AdminAction`).

``seq`` numbers records in the order this process made them (continuing after a restart from
the largest stored), so an order's history reads in order even when several events share a
timestamp. Details are small JSON objects.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tradingfloor.core.actor import Actor
from tradingfloor.storage import tables as t
from tradingfloor.storage.writer import WriteBehind

__all__ = ["ActionRecorder", "AdminAction"]

_encode = msgspec.json.Encoder().encode
_ids = random.Random(random.SystemRandom().getrandbits(128))


def _new_id() -> str:
    """A unique, not secret, record id (128 random bits; no system call per record)."""
    return f"{_ids.getrandbits(128):032x}"


class AdminAction(StrEnum):
    """The kinds of administrative record; the string is stored and queried (``?kind=``)."""

    VENUE_HALT = "venue.halt"
    VENUE_RESUME = "venue.resume"
    VENUE_PRICE_BAND = "venue.price_band"
    VENUE_KILL_SWITCH = "venue.kill_switch"
    CASH_DEPOSIT = "cash.deposit"
    CASH_WITHDRAWAL = "cash.withdrawal"
    CUSTOMER_CREATE = "customer.create"
    CUSTOMER_KYC = "customer.kyc"
    ACCOUNT_OPEN = "account.open"
    ACCOUNT_TRADING_BLOCK = "account.trading_block"
    ACCOUNT_CONFIGURE = "account.configure"
    RESTRICTED_ADD = "restricted.add"
    RESTRICTED_REMOVE = "restricted.remove"
    USER_CREATE = "user.create"
    USER_DISABLE = "user.disable"
    USER_ENABLE = "user.enable"
    USER_TOTP_RESET = "user.totp_reset"
    API_KEY_CREATE = "api_key.create"
    API_KEY_REVOKE = "api_key.revoke"
    API_KEY_ROTATE = "api_key.rotate"
    WATCHLIST_CREATE = "watchlist.create"
    WATCHLIST_UPDATE = "watchlist.update"
    WATCHLIST_DELETE = "watchlist.delete"
    AUTH_LOGIN = "auth.login"
    AUTH_LOGIN_FAILED = "auth.login_failed"
    AUTH_REFRESH = "auth.refresh"
    AUTH_REFRESH_REUSED = "auth.refresh_reused"
    AUTH_LOGOUT = "auth.logout"
    AUTH_TOTP_ENROL = "auth.totp_enrol"
    AUTH_TOTP_CONFIRM = "auth.totp_confirm"


class ActionRecorder:
    """See module docstring. One per broker process, shared by its services."""

    def __init__(self, store: WriteBehind) -> None:
        self._store = store
        self._seq = 0

    async def load(self, conn: AsyncConnection) -> None:
        """Continue numbering after the largest stored ``seq`` (call at start-up)."""
        for table in (t.order_events, t.admin_actions):
            top = (await conn.execute(select(func.max(table.c.seq)))).scalar()
            if top is not None and top > self._seq:
                self._seq = int(top)

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def order_event(
        self,
        order_id: str,
        account_id: str,
        kind: str,
        actor: Actor,
        ts: int,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue one entry of an order's history (committed with the next flush)."""
        row = self._row(actor, ts, detail, order_id=order_id, account_id=account_id, kind=kind)
        self._store.insert(t.order_events, row)

    def admin_action(
        self,
        kind: AdminAction,
        target: str,
        actor: Actor,
        ts: int,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue one administrative record (committed with the next flush)."""
        row = self._row(actor, ts, detail, kind=kind.value, target=target)
        self._store.insert(t.admin_actions, row)

    def _row(
        self, actor: Actor, ts: int, detail: Mapping[str, Any] | None, **fields: str
    ) -> dict[str, Any]:
        """A record's row: the actor's columns, a new id and seq, the time and the detail."""
        row = actor.row()
        row.update(id=_new_id(), seq=self._next(), ts=ts, detail=_encode(detail or {}).decode())
        row.update(fields)
        return row

    async def record_admin_action(
        self,
        kind: AdminAction,
        target: str,
        actor: Actor,
        ts: int,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """`admin_action`, then wait until it is committed (for changes made elsewhere, such as
        the venue's, whose record must be durable before the request is answered)."""
        self.admin_action(kind, target, actor, ts, detail)
        await self._store.flush()
