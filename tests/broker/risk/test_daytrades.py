"""Tests of the day-trade tracker: what counts as a day trade, the window count, persistence."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tradingfloor.broker.risk.daytrades as daytrades_mod
from tradingfloor.broker.risk.daytrades import DayTradeTracker

MON, TUE, WED = 20260309, 20260310, 20260311


def test_public_api() -> None:
    assert daytrades_mod.__all__ == ["DayTradeTracker"]


def test_buy_then_sell_the_same_day_is_a_day_trade_per_closing_fill() -> None:
    t = DayTradeTracker()
    assert t.on_fill(MON, "ACME", "buy", 100, 0) is False
    assert t.opened_today(MON, "ACME") == 100
    assert t.on_fill(MON, "ACME", "sell", 40, 100) is True
    assert t.opened_today(MON, "ACME") == 60
    assert t.on_fill(MON, "ACME", "sell", 60, 60) is True
    assert t.opened_today(MON, "ACME") == 0
    assert t.count([MON]) == 2
    assert t.day_trades(MON) == ("ACME", "ACME")


def test_selling_overnight_shares_is_not_a_day_trade() -> None:
    t = DayTradeTracker()
    t.on_fill(MON, "ACME", "buy", 100, 0)
    assert t.opened_today(TUE, "ACME") == 0
    assert t.on_fill(TUE, "ACME", "sell", 100, 100) is False
    assert t.on_fill(TUE, "ACME", "buy", 100, 0) is False  # buying back: opens, no day trade
    assert t.count([MON, TUE]) == 0


def test_closing_fill_takes_todays_shares_first() -> None:
    t = DayTradeTracker()
    t.on_fill(MON, "ACME", "buy", 100, 0)
    t.on_fill(TUE, "ACME", "buy", 10, 100)  # 110 held, 10 opened today
    assert t.on_fill(TUE, "ACME", "sell", 50, 110) is True
    assert t.opened_today(TUE, "ACME") == 0
    assert t.on_fill(TUE, "ACME", "sell", 50, 60) is False  # only overnight shares remain


def test_short_then_cover_is_a_day_trade() -> None:
    t = DayTradeTracker()
    t.on_fill(MON, "ACME", "sell", 30, 0)
    assert t.opened_today(MON, "ACME") == 30
    assert t.on_fill(MON, "ACME", "buy", 10, -30) is True
    assert t.opened_today(MON, "ACME") == 20


def test_flip_opens_the_remainder_today() -> None:
    t = DayTradeTracker()
    t.on_fill(MON, "ACME", "buy", 100, 0)
    assert t.on_fill(TUE, "ACME", "sell", 150, 100) is False  # closes overnight, opens 50 short
    assert t.opened_today(TUE, "ACME") == 50
    assert t.on_fill(TUE, "ACME", "buy", 80, -50) is True  # covers today's short, opens 30 long
    assert t.opened_today(TUE, "ACME") == 30


def test_symbols_are_tracked_separately() -> None:
    t = DayTradeTracker()
    t.on_fill(MON, "ACME", "buy", 10, 0)
    assert t.on_fill(MON, "BOLT", "sell", 10, 10) is False  # BOLT shares were not bought today
    assert t.opened_today(MON, "BOLT") == 0
    assert t.on_fill(MON, "ACME", "sell", 10, 10) is True


def test_position_given_by_the_caller_wins_over_stale_state() -> None:
    t = DayTradeTracker()
    t.on_fill(MON, "ACME", "buy", 100, 0)
    # the position became short by other means (e.g. a corporate action or a manual booking)
    assert t.on_fill(MON, "ACME", "buy", 10, -20) is False
    assert t.opened_today(MON, "ACME") == 0
    t.on_fill(MON, "BOLT", "buy", 100, 0)
    assert t.on_fill(MON, "BOLT", "sell", 10, 30) is True  # opened clamped to the 30 held
    assert t.opened_today(MON, "BOLT") == 20


def test_count_over_a_window() -> None:
    t = DayTradeTracker()
    for day in (MON, TUE, TUE, WED):
        t.on_fill(day, "ACME", "buy", 1, 0)
        t.on_fill(day, "ACME", "sell", 1, 1)
    assert t.count([MON, TUE, WED]) == 4
    assert t.count([TUE, WED]) == 3
    assert t.count([TUE, TUE]) == 2  # a day listed twice counts once
    assert t.count([]) == 0
    t.prune(TUE)
    assert t.count([MON, TUE, WED]) == 3


def test_state_round_trips_through_a_plain_json_dict() -> None:
    t = DayTradeTracker()
    t.on_fill(MON, "ACME", "buy", 5, 0)
    t.on_fill(MON, "ACME", "sell", 2, 5)
    t.on_fill(MON, "BOLT", "sell", 7, 0)
    state = t.to_dict()
    assert state == {
        "version": 1,
        "opened": {"ACME": [MON, 3], "BOLT": [MON, -7]},
        "day_trades": {str(MON): ["ACME"]},
    }
    copy = DayTradeTracker.from_dict(json.loads(json.dumps(state)))
    assert copy == t
    assert copy.state_hash() == t.state_hash()
    assert copy.on_fill(MON, "BOLT", "buy", 7, -7) is True
    assert copy != t
    assert copy.state_hash() != t.state_hash()
    assert DayTradeTracker() == DayTradeTracker.from_dict(DayTradeTracker().to_dict())


@pytest.mark.parametrize(
    "state",
    [
        {},
        {"version": 2, "opened": {}, "day_trades": {}},
        {"version": 1, "opened": {}},
        {"version": 1, "opened": {"ACME": [MON]}, "day_trades": {}},
        {"version": 1, "opened": {"ACME": [MON, 0]}, "day_trades": {}},
        {"version": 1, "opened": {"ACME": [0, 5]}, "day_trades": {}},
        {"version": 1, "opened": {}, "day_trades": {"x": ["ACME"]}},
        {"version": 1, "opened": {}, "day_trades": {str(MON): [1]}},
        {"version": 1, "opened": {}, "day_trades": {str(MON): []}},
        {"version": 1, "opened": [], "day_trades": {}},
    ],
)
def test_malformed_state_is_refused(state: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        DayTradeTracker.from_dict(state)


@pytest.mark.parametrize(
    ("day", "side", "qty", "position"),
    [(MON, "hold", 1, 0), (MON, "buy", 0, 0), (0, "buy", 1, 0), (MON, "buy", 1, 1.0)],
)
def test_bad_fills_raise(day: int, side: str, qty: int, position: Any) -> None:
    with pytest.raises(ValueError):
        DayTradeTracker().on_fill(day, "ACME", side, qty, position)


def test_days_do_not_go_backwards() -> None:
    t = DayTradeTracker()
    t.on_fill(TUE, "ACME", "buy", 1, 0)
    with pytest.raises(ValueError, match="before"):
        t.on_fill(MON, "ACME", "sell", 1, 1)


# -- property: agrees with a share-by-share LIFO model --------------------------------------------


class LotModel:
    """Reference: each symbol's position as a stack of (day, signed qty) lots, closed LIFO."""

    def __init__(self) -> None:
        self.lots: dict[str, list[list[int]]] = {}

    def position(self, symbol: str) -> int:
        return sum(q for _, q in self.lots.get(symbol, []))

    def fill(self, day: int, symbol: str, delta: int) -> bool:
        lots = self.lots.setdefault(symbol, [])
        day_trade = False
        remaining = delta
        while remaining and lots and (lots[-1][1] > 0) != (remaining > 0):
            lot = lots[-1]
            take = min(abs(remaining), abs(lot[1]))
            day_trade = day_trade or lot[0] == day
            lot[1] += take if lot[1] < 0 else -take
            remaining += take if remaining < 0 else -take
            if lot[1] == 0:
                lots.pop()
        if remaining:
            lots.append([day, remaining])
        return day_trade

    def opened_today(self, day: int, symbol: str) -> int:
        return sum(abs(q) for d, q in self.lots.get(symbol, []) if d == day)


fill_steps = st.lists(
    st.tuples(
        st.integers(0, 2),  # days to advance
        st.sampled_from(["ACME", "BOLT"]),
        st.sampled_from(["buy", "sell"]),
        st.integers(1, 50),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(fill_steps, st.integers(0, 60))
def test_tracker_agrees_with_the_lot_model(
    steps: list[tuple[int, str, str, int]], restore_at: int
) -> None:
    tracker = DayTradeTracker()
    model = LotModel()
    day = MON
    expected_count = 0
    days = [day]
    for i, (advance, symbol, side, qty) in enumerate(steps):
        if i == restore_at:  # persistence in the middle changes nothing
            tracker = DayTradeTracker.from_dict(json.loads(json.dumps(tracker.to_dict())))
        day += advance
        if advance:
            days.append(day)
        before = model.position(symbol)
        expected = model.fill(day, symbol, qty if side == "buy" else -qty)
        assert tracker.on_fill(day, symbol, side, qty, before) is expected
        expected_count += expected
        for sym in ("ACME", "BOLT"):
            assert tracker.opened_today(day, sym) == model.opened_today(day, sym)
            assert tracker.opened_today(day, sym) <= abs(model.position(sym))
    assert tracker.count(days) == expected_count
