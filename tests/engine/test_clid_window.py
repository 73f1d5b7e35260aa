"""The engine's memory of client order ids is bounded: each member's last ``CL_ORD_ID_WINDOW``
accepted ids plus the current ids of its live orders (exchange/engine/clids.py). Before the
window, the set of every id ever used grew with every order for as long as the venue ran."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradingfloor.exchange.engine.clids import CL_ORD_ID_WINDOW, ClOrdIdWindow
from tradingfloor.exchange.engine.commands import NewOrder
from tradingfloor.exchange.engine.engine import Engine
from tradingfloor.exchange.engine.events import Accepted
from tradingfloor.exchange.engine.reasons import Reject
from tradingfloor.exchange.engine.types import Side, TimeInForce

BUY = Side.BUY


def _remembered(h: Any, member: str) -> list[str]:
    rows = msgspec.msgpack.decode(h.e.snapshot())["used_clids"]
    return next((ids for m, ids in rows if m == member), [])


def _unfilled_iocs(h: Any, count: int, prefix: str = "ioc") -> None:
    """``count`` accepted orders of M1 that leave nothing behind (an IOC buy with no seller)."""
    for n in range(count):
        assert h.buy(1, 100, cl_ord_id=f"{prefix}{n}", tif=TimeInForce.IOC).has(Accepted)


def test_remembered_ids_stay_bounded_after_many_orders(h: Any) -> None:
    _unfilled_iocs(h, CL_ORD_ID_WINDOW + 500)
    ids = _remembered(h, "M1")
    assert len(ids) == CL_ORD_ID_WINDOW
    assert ids[0] == "ioc500" and ids[-1] == f"ioc{CL_ORD_ID_WINDOW + 499}"


def test_an_id_in_the_window_is_a_duplicate_an_older_one_is_not(h: Any) -> None:
    _unfilled_iocs(h, CL_ORD_ID_WINDOW + 1)
    out = h.buy(1, 100, cl_ord_id="ioc1")  # the oldest id still remembered
    assert out.reject_code() == Reject.DUPLICATE_CL_ORD_ID
    assert h.buy(1, 100, cl_ord_id="ioc0").has(Accepted)  # forgotten: usable again


def test_a_live_orders_id_is_a_duplicate_however_old(h: Any) -> None:
    live = h.rest(BUY, 10, 90, cl_ord_id="keep")
    _unfilled_iocs(h, CL_ORD_ID_WINDOW + 1)
    assert "keep" not in _remembered(h, "M1")
    assert h.buy(1, 90, cl_ord_id="keep").reject_code() == Reject.DUPLICATE_CL_ORD_ID
    other = h.rest(BUY, 10, 80, cl_ord_id="other")
    out = h.replace(other, 5, cl_ord_id="keep")
    assert out.reject_code() == Reject.DUPLICATE_CL_ORD_ID
    h.cancel(live)
    assert h.buy(1, 90, cl_ord_id="keep").has(Accepted)


def test_restore_then_replay_gives_the_same_events_and_state(h: Any) -> None:
    """A snapshot taken with a full window, restored, continues exactly as the original."""
    a = h
    _unfilled_iocs(a, CL_ORD_ID_WINDOW + 10)
    b = Engine.restore(a.e.snapshot())
    assert b.state_hash() == a.e.state_hash()
    for n in range(20):  # reuses forgotten ids, duplicates and fresh ones
        clid = f"ioc{n}" if n % 2 else f"fresh{n}"
        cmd = NewOrder(
            symbol="ACME",
            member="M1",
            cl_ord_id=clid,
            side=BUY,
            qty=1,
            price=100,
            tif=TimeInForce.IOC,
        )
        a.seq += 1
        a.ts += 1
        assert list(a.e.apply(a.seq, a.ts, cmd)) == list(b.apply(a.seq, a.ts, cmd))
    assert b.state_hash() == a.e.state_hash()


def test_restoring_an_older_unbounded_snapshot_keeps_the_newest_ids() -> None:
    old = [["M1", [f"c{n}" for n in range(CL_ORD_ID_WINDOW + 3)]], ["M2", ["x"]]]
    window = ClOrdIdWindow.restore(old)
    assert window.state() == [
        ["M1", [f"c{n}" for n in range(3, CL_ORD_ID_WINDOW + 3)]],
        ["M2", ["x"]],
    ]
    assert not window.used("M1", "c2") and window.used("M1", "c3")


def test_a_snapshot_listing_an_id_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        ClOrdIdWindow.restore([["M1", ["a", "b", "a"]]])


@given(
    size=st.integers(1, 6),
    steps=st.lists(st.tuples(st.sampled_from(["M1", "M2"]), st.integers(0, 12)), max_size=80),
)
def test_window_matches_a_model_of_the_last_n_accepted_ids(
    size: int, steps: list[tuple[str, int]]
) -> None:
    window = ClOrdIdWindow(size)
    model: dict[str, list[str]] = {}
    for member, n in steps:
        clid = f"c{n}"
        recent = model.setdefault(member, [])
        assert window.used(member, clid) == (clid in recent)
        if clid not in recent:  # the engine adds only ids it accepted
            window.add(member, clid)
            recent.append(clid)
            del recent[:-size]
        assert window.count(member) == len(recent)
    assert window.state() == [[m, ids] for m, ids in model.items() if ids]
