"""The client order ids the engine remembers per member for duplicate detection, bounded.

A member may not reuse a ``cl_ord_id`` it used on one of its last ``CL_ORD_ID_WINDOW``
accepted ``new_order``/``replace`` commands (the engine also refuses the current id of any
live order, whatever its age; that check reads the engine's live-order index). Older ids are
forgotten, so the engine's memory is bounded by the members, not by the history: before this
window the set of every id ever used grew by about 80 bytes per order for as long as the venue
ran (docs/engine.md, "Units and identifiers").

The window is counted in accepted ids, never in time, and is part of the snapshot in
first-use order, so replay and restore give the same state and the same events.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Final

__all__ = ["CL_ORD_ID_WINDOW", "ClOrdIdWindow"]

CL_ORD_ID_WINDOW: Final = 10_000
"""Accepted client order ids remembered per member (oldest forgotten first)."""


class _MemberIds:
    __slots__ = ("ids", "order")

    def __init__(self) -> None:
        # A dict, not a set: about 40 bytes per id against a set's 60-100 (a set's table is
        # resized to four times its size); its order is not used (a dict whose oldest keys are
        # deleted one by one makes finding the next oldest a scan over the holes).
        self.ids: dict[str, None] = {}
        self.order: deque[str] = deque()  # the same ids, oldest first


class ClOrdIdWindow:
    """Per member, the last ``size`` client order ids used on accepted orders and replaces."""

    __slots__ = ("_members", "size")

    def __init__(self, size: int = CL_ORD_ID_WINDOW) -> None:
        if size < 1:
            raise ValueError(f"window size must be at least 1, got {size}")
        self.size = size
        self._members: dict[str, _MemberIds] = {}

    def used(self, member: str, cl_ord_id: str) -> bool:
        """True if ``member`` used ``cl_ord_id`` within the window."""
        m = self._members.get(member)
        return m is not None and cl_ord_id in m.ids

    def add(self, member: str, cl_ord_id: str) -> None:
        """Record an accepted id (not in the window: callers check ``used`` first)."""
        m = self._members.get(member)
        if m is None:
            m = self._members[member] = _MemberIds()
        m.ids[cl_ord_id] = None
        m.order.append(cl_ord_id)
        if len(m.order) > self.size:
            del m.ids[m.order.popleft()]

    def count(self, member: str) -> int:
        """How many ids of ``member`` are remembered."""
        m = self._members.get(member)
        return 0 if m is None else len(m.order)

    def state(self) -> list[list[object]]:
        """``[[member, [ids oldest first]], ...]`` in first-use order of the members (the
        engine snapshot's ``used_clids``)."""
        return [[member, list(m.order)] for member, m in self._members.items()]

    @classmethod
    def restore(
        cls, rows: Iterable[tuple[str, Iterable[str]]], size: int = CL_ORD_ID_WINDOW
    ) -> ClOrdIdWindow:
        """The window ``state()`` described. A snapshot taken before the window existed (or
        with a larger one) keeps only each member's newest ``size`` ids: the same state an
        engine with this window would have reached on the same commands."""
        window = cls(size)
        for member, ids in rows:
            for cl_ord_id in ids:
                if window.used(member, cl_ord_id):
                    raise ValueError(f"client order id {cl_ord_id!r} of {member!r} listed twice")
                window.add(member, cl_ord_id)
        return window
