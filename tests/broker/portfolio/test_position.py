"""Tests of the average-cost position: fills, flips, the rounding rule, day roll, P&L identities."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tradingfloor.broker.portfolio.position as position_mod
from tradingfloor.broker.portfolio.position import Position


def test_public_api() -> None:
    assert position_mod.__all__ == ["Position"]


def test_open_add_and_close_long() -> None:
    pos = Position("ACME")
    assert pos.apply_fill("buy", 100, 1_000) == 0
    assert pos.apply_fill("buy", 100, 1_100) == 0
    assert (pos.qty, pos.cost_basis) == (200, 210_000)
    assert pos.avg_entry_price() == 1_050
    assert pos.side == "long"
    assert pos.market_value(1_200) == 240_000
    assert pos.unrealized_pnl(1_200) == 30_000
    assert pos.apply_fill("sell", 50, 1_200) == 50 * 150
    assert (pos.qty, pos.cost_basis) == (150, 157_500)
    assert pos.apply_fill("sell", 150, 1_000) == -150 * 50
    assert (pos.qty, pos.cost_basis, pos.realized_pnl) == (0, 0, 7_500 - 7_500)
    assert pos.avg_entry_price() == 0


def test_short_open_and_cover() -> None:
    pos = Position("ACME")
    pos.apply_fill("sell", 10, 500)
    assert (pos.qty, pos.cost_basis, pos.side) == (-10, -5_000, "short")
    assert pos.avg_entry_price() == 500
    assert pos.market_value(400) == -4_000
    assert pos.unrealized_pnl(400) == 1_000  # price fell: the short gains
    assert pos.apply_fill("buy", 4, 400) == 400
    assert (pos.qty, pos.cost_basis) == (-6, -3_000)
    assert pos.apply_fill("buy", 6, 600) == -600
    assert (pos.qty, pos.cost_basis, pos.realized_pnl) == (0, 0, -200)


def test_flip_long_to_short_realizes_the_closing_part_and_opens_the_rest_at_the_fill() -> None:
    pos = Position("ACME")
    pos.apply_fill("buy", 10, 100)
    assert pos.apply_fill("sell", 25, 120) == 10 * 20
    assert (pos.qty, pos.cost_basis, pos.realized_pnl) == (-15, -15 * 120, 200)
    assert pos.avg_entry_price() == 120
    assert pos.apply_fill("buy", 20, 110) == 15 * 10  # short -> long flip
    assert (pos.qty, pos.cost_basis, pos.realized_pnl) == (5, 550, 350)


def test_rounding_rule_long_partial_close_floors_the_closed_cost() -> None:
    pos = Position("ACME")
    pos.apply_fill("buy", 1, 10)
    pos.apply_fill("buy", 2, 11)  # basis 32 for 3 shares: average 10 2/3
    assert pos.avg_entry_price() == Fraction(32, 3)
    # closed cost = 32 * 1 // 3 = 10 (exact 10.67): realized 2 (exact 1.33), basis 22 keeps the rest
    assert pos.apply_fill("sell", 1, 12) == 2
    assert (pos.qty, pos.cost_basis) == (2, 22)
    assert pos.apply_fill("sell", 2, 12) == 2
    assert pos.realized_pnl == 36 - 32  # the round trip is exact
    assert pos.cost_basis == 0


def test_rounding_rule_short_partial_close_floors_the_closed_cost() -> None:
    pos = Position("ACME")
    pos.apply_fill("sell", 1, 10)
    pos.apply_fill("sell", 2, 11)  # basis -32 for -3 shares
    # closed cost = -32 * 1 // 3 = -11 (exact -10.67): realized -9 + 11 = 2 (exact 1.67)
    assert pos.apply_fill("buy", 1, 9) == 2
    assert (pos.qty, pos.cost_basis) == (-2, -21)
    assert pos.apply_fill("buy", 2, 9) == 3
    assert pos.realized_pnl == 32 - 27
    assert pos.cost_basis == 0


def test_roll_day_restarts_the_day_ledger_at_the_prior_close() -> None:
    pos = Position("ACME")
    pos.roll_day(20260305, 0)
    pos.apply_fill("buy", 100, 1_000)
    assert pos.intraday_pnl(1_010) == 1_000
    pos.roll_day(20260306, 1_020)
    assert (pos.day, pos.day_cost_basis, pos.day_realized) == (20260306, 102_000, 0)
    assert pos.intraday_pnl(1_020) == 0
    assert pos.intraday_pnl(1_030) == 1_000
    assert pos.apply_fill("sell", 50, 1_030) == 50 * 30  # life ledger: against the 1_000 cost
    assert pos.day_realized == 50 * 10  # day ledger: against the prior close
    assert pos.intraday_pnl(1_030) == 1_000
    assert pos.unrealized_pnl(1_030) == 50 * 30
    pos.roll_day(20260306, 9_999)  # same day: no-op
    assert pos.day_cost_basis == 51_000
    with pytest.raises(ValueError, match="roll back"):
        pos.roll_day(20260305, 1_000)


@pytest.mark.parametrize(
    ("side", "qty", "price", "error"),
    [
        ("hold", 1, 1, ValueError),
        ("BUY", 1, 1, ValueError),
        ("buy", 0, 1, ValueError),
        ("sell", -1, 1, ValueError),
        ("buy", 1, 0, ValueError),
        ("buy", 1.0, 1, TypeError),
        ("buy", 1, 1.5, TypeError),
        ("buy", True, 1, TypeError),
    ],
)
def test_bad_fills_raise_and_change_nothing(
    side: str, qty: int, price: int, error: type[Exception]
) -> None:
    pos = Position("ACME", qty=5, cost_basis=50)
    before = Position("ACME", qty=5, cost_basis=50)
    with pytest.raises(error):
        pos.apply_fill(side, qty, price)
    assert pos == before


def test_flat_position_side_is_long() -> None:
    assert Position("ACME").side == "long"


# -- properties ---------------------------------------------------------------------------------

fills = st.lists(
    st.tuples(
        st.sampled_from(["buy", "sell"]),
        st.integers(min_value=1, max_value=1_000),
        st.integers(min_value=1, max_value=100_000),
    ),
    max_size=40,
)
prices = st.integers(min_value=1, max_value=100_000)


def signed(side: str, qty: int) -> int:
    return qty if side == "buy" else -qty


def cash_flow(batch: list[tuple[str, int, int]]) -> int:
    return sum(-signed(side, qty) * price for side, qty, price in batch)


@settings(max_examples=200, deadline=None)
@given(fills, prices)
def test_life_ledger_conserves_value(batch: list[tuple[str, int, int]], mark: int) -> None:
    pos = Position("ACME")
    realized_sum = 0
    for side, qty, price in batch:
        realized_sum += pos.apply_fill(side, qty, price)
        if pos.qty == 0:
            assert pos.cost_basis == 0  # (d)
    assert pos.qty == sum(signed(s, q) for s, q, _ in batch)  # (c)
    assert realized_sum == pos.realized_pnl
    # (a): realized + unrealized == position valued at the mark + all cash flows
    assert pos.realized_pnl + pos.unrealized_pnl(mark) == pos.qty * mark + cash_flow(batch)


@settings(max_examples=150, deadline=None)
@given(fills, fills, prices, prices)
def test_day_ledger_conserves_value_after_a_roll(
    before: list[tuple[str, int, int]],
    today: list[tuple[str, int, int]],
    prior_close: int,
    mark: int,
) -> None:
    pos = Position("ACME", day=20260305)
    for side, qty, price in before:
        pos.apply_fill(side, qty, price)
    start_qty = pos.qty
    pos.roll_day(20260306, prior_close)
    for side, qty, price in today:
        pos.apply_fill(side, qty, price)
        if pos.qty == 0:
            assert pos.day_cost_basis == 0
    # (b): the day ledger starts from the open quantity valued at the prior close
    assert pos.intraday_pnl(mark) == pos.qty * mark - start_qty * prior_close + cash_flow(today)
    # (a) still holds for the life ledger across the roll
    assert pos.realized_pnl + pos.unrealized_pnl(mark) == pos.qty * mark + cash_flow(before + today)


@settings(max_examples=100, deadline=None)
@given(fills)
def test_average_price_stays_within_the_fill_prices(
    batch: list[tuple[str, int, int]],
) -> None:
    pos = Position("ACME")
    for side, qty, price in batch:
        pos.apply_fill(side, qty, price)
    if pos.qty:
        assert pos.cost_basis * pos.qty > 0  # the basis has the position's sign
        lo = min(p for _, _, p in batch)
        hi = max(p for _, _, p in batch)
        assert lo <= pos.avg_entry_price() <= hi  # the rounding never pushes it outside
