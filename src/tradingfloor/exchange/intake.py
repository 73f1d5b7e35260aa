"""The venue's command intake check: nothing outside the shared limits reaches the journal.

Gateways (FIX, the broker's venue adapter, the operator's routes, JSON-lines replay, the
simulated crowd) validate their own input and answer with their own rejections; this is the
check behind all of them, run by ``Venue.submit_nowait`` before a command is queued. Every
integer field must fit the journal's signed 64-bit width and every text field its length
limit (``tradingfloor.core.limits``); the engine then judges the values (a quantity of 2^62 is
journaled and rejected with 3001, as a quantity of 0 is). A command that fails here is refused
with ``CommandOutOfRangeError`` and never sequenced, so one bad command cannot fail a journal
batch and stop the venue.
"""

from __future__ import annotations

from typing import Final

import msgspec

from tradingfloor.core.limits import (
    INT64_MAX,
    INT64_MIN,
    MAX_ACCOUNT_LEN,
    MAX_CL_ORD_ID_LEN,
    MAX_MEMBER_LEN,
    MAX_SYMBOL_LEN,
)
from tradingfloor.exchange.engine.commands import Command, NewOrder

__all__ = ["MAX_TEXT_LEN", "command_problem"]

MAX_TEXT_LEN: Final = 256
"""Longest free-text field (a halt reason, a tick size, a currency)."""

_TEXT_LIMITS: Final = {
    "symbol": MAX_SYMBOL_LEN,
    "member": MAX_MEMBER_LEN,
    "account": MAX_ACCOUNT_LEN,
    "cl_ord_id": MAX_CL_ORD_ID_LEN,
    "orig_cl_ord_id": MAX_CL_ORD_ID_LEN,
}


def command_problem(command: Command) -> str | None:
    """What makes ``command`` unfit to journal, or None when it fits."""
    if type(command) is NewOrder:
        # The hot path: one comparison pair over the order's integers.
        c = command
        values = (
            c.qty,
            c.price,
            c.stop_price,
            c.expire_ts,
            c.display_qty,
            c.peg_offset,
            c.trail_amount,
            c.trail_bps,
            c.limit_offset,
            c.min_qty,
        )
        if min(values) < INT64_MIN or max(values) > INT64_MAX:
            return _first_wide_field(command)
        if (
            len(c.cl_ord_id) > MAX_CL_ORD_ID_LEN
            or len(c.symbol) > MAX_SYMBOL_LEN
            or len(c.member) > MAX_MEMBER_LEN
            or len(c.account) > MAX_ACCOUNT_LEN
        ):
            return _first_long_field(command)
        return None
    return _first_wide_field(command) or _first_long_field(command)


def _fields(command: msgspec.Struct) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for name in command.__struct_fields__:
        value = getattr(command, name)
        if isinstance(value, msgspec.Struct):  # a nested schedule
            out.extend((f"{name}.{sub}", v) for sub, v in _fields(value))
        else:
            out.append((name, value))
    return out


def _first_wide_field(command: msgspec.Struct) -> str | None:
    for name, value in _fields(command):
        if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            return f"{type(command).__name__}.{name} is outside the signed 64-bit range"
    return None


def _first_long_field(command: msgspec.Struct) -> str | None:
    for name, value in _fields(command):
        if isinstance(value, str):
            limit = _TEXT_LIMITS.get(name.rsplit(".", 1)[-1], MAX_TEXT_LEN)
            if len(value) > limit:
                return f"{type(command).__name__}.{name} is longer than {limit} characters"
    return None
