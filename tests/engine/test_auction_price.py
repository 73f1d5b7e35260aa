"""Unit and property tests of the call-auction price rule, ``auction.uncross_price``."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tradingfloor.exchange.engine.auction import uncross_price

Book = list[tuple[int, int]]


def cum(bids: Book, asks: Book, mkt_buy: int, mkt_sell: int, price: int) -> tuple[int, int]:
    """Brute force: (buy qty willing at ``price``, sell qty willing at ``price``)."""
    buy = mkt_buy + sum(q for p, q in bids if p >= price)
    sell = mkt_sell + sum(q for p, q in asks if p <= price)
    return buy, sell


def oracle(
    bids: Book, asks: Book, mkt_buy: int, mkt_sell: int, reference: int
) -> tuple[int, int, int] | None:
    """The rule written out naively over the limit prices, plus the reference price when
    market orders stand on both sides."""
    prices = sorted(
        {p for p, _ in bids}
        | {p for p, _ in asks}
        | ({reference} if reference > 0 and mkt_buy and mkt_sell else set())
    )
    best: tuple[int, int, int, int] | None = None
    result = None
    for p in prices:
        buy, sell = cum(bids, asks, mkt_buy, mkt_sell, p)
        vol = min(buy, sell)
        if vol <= 0:
            continue
        key = (-vol, abs(buy - sell), abs(p - reference) if reference > 0 else 0, p)
        if best is None or key < best:
            best, result = key, (p, vol, buy - sell)
    return result


# ------------------------------------------------------------------ the rule, case by case


def test_single_crossing_pair_trades_at_a_limit_price() -> None:
    assert uncross_price([(101, 10)], [(99, 10)], 0, 0, 100) in ((99, 10, 0), (101, 10, 0))


def test_maximum_volume_wins_over_reference_distance() -> None:
    # 100: buy 30, sell 10 -> 10. 101 and 102: buy 20, sell 35 -> 20 (imbalance -15 each);
    # 101 is nearer the reference.
    bids = [(102, 20), (100, 10)]
    asks = [(100, 10), (101, 25)]
    price, volume, imbalance = uncross_price(bids, asks, 0, 0, 100) or (0, 0, 0)
    assert (price, volume, imbalance) == (101, 20, 20 - 35)
    # The reference sits on 100, where only 10 could trade: volume still decides.
    assert cum(bids, asks, 0, 0, 100) == (30, 10)


def test_volume_tie_is_broken_by_minimum_imbalance() -> None:
    # 99: buy 15 sell 10 (vol 10, imb +5); 100: buy 10 sell 10 (vol 10, imb 0);
    # 101: buy 10 sell 14 (vol 10, imb -4). The reference (99) is nearest to 99 but loses.
    bids = [(101, 10), (99, 5)]
    asks = [(99, 10), (101, 4), (100, 0)]
    assert uncross_price(bids, [a for a in asks if a[1]], 0, 0, 99) == (101, 10, -4)
    bids2 = [(101, 10), (100, 0), (99, 5)]
    asks2 = [(99, 10), (101, 4)]
    # Adding an empty-qty bid level at 100 makes 100 a candidate: imbalance 0 beats 4 and 5.
    assert uncross_price(bids2, asks2, 0, 0, 99) == (100, 10, 0)


def test_volume_and_imbalance_tie_is_broken_by_nearest_reference() -> None:
    # Bid 10 @ 105 and ask 10 @ 95: every price 95..105 in the set trades 10 with imbalance 0.
    bids = [(105, 10)]
    asks = [(95, 10)]
    assert uncross_price(bids, asks, 0, 0, 104) == (105, 10, 0)
    assert uncross_price(bids, asks, 0, 0, 96) == (95, 10, 0)
    # With extra zero-imbalance candidates in between, the one closest to the reference wins.
    bids3 = [(105, 10), (100, 0), (98, 0)]
    assert uncross_price(bids3, asks, 0, 0, 97) == (98, 10, 0)
    assert uncross_price(bids3, asks, 0, 0, 99) == (98, 10, 0)  # 98 and 100 tie: lower
    assert uncross_price(bids3, asks, 0, 0, 101) == (100, 10, 0)


def test_full_tie_takes_the_lower_price() -> None:
    bids = [(105, 10)]
    asks = [(95, 10)]
    # Reference exactly between 95 and 105.
    assert uncross_price(bids, asks, 0, 0, 100) == (95, 10, 0)
    # No reference at all: distance is ignored, the lower price wins.
    assert uncross_price(bids, asks, 0, 0, 0) == (95, 10, 0)


def test_reference_outside_the_crossed_range_pulls_to_the_nearer_end() -> None:
    bids = [(105, 10)]
    asks = [(95, 10)]
    assert uncross_price(bids, asks, 0, 0, 200) == (105, 10, 0)
    assert uncross_price(bids, asks, 0, 0, 1) == (95, 10, 0)


def test_market_orders_only_on_both_sides_use_the_reference_price() -> None:
    assert uncross_price([], [], 30, 20, 123) == (123, 20, 10)
    assert uncross_price([], [], 20, 20, 7) == (7, 20, 0)
    assert uncross_price([], [], 5, 40, 50) == (50, 5, -35)


def test_market_orders_only_without_reference_do_not_trade() -> None:
    assert uncross_price([], [], 30, 20, 0) is None


def test_market_orders_on_one_side_only_do_not_trade() -> None:
    assert uncross_price([], [], 30, 0, 100) is None
    assert uncross_price([], [], 0, 30, 100) is None


def test_market_buy_against_limit_asks() -> None:
    # Market buy 100 vs asks 50 @ 101 and 80 @ 105: at 105 all 100 trade (sell surplus 30).
    assert uncross_price([], [(101, 50), (105, 80)], 100, 0, 100) == (105, 100, -30)


def test_market_sell_against_limit_bids() -> None:
    # Market sell 40 vs bids 30 @ 99, 30 @ 97: at 97 all 40 trade (buy surplus 20).
    assert uncross_price([(99, 30), (97, 30)], [], 0, 40, 100) == (97, 40, 20)


def test_market_orders_on_both_sides_plus_limits() -> None:
    # Market buy 10 and sell 10, bid 5 @ 101, ask 5 @ 99: 99, 100 (the reference, a candidate
    # when market orders stand on both sides) and 101 all give volume 15 with no imbalance;
    # the reference price is nearest.
    assert uncross_price([(101, 5)], [(99, 5)], 10, 10, 100) == (100, 15, 0)


def test_nothing_crosses_returns_none() -> None:
    assert uncross_price([(99, 10), (98, 5)], [(100, 10), (101, 1)], 0, 0, 100) is None
    assert uncross_price([(99, 10)], [], 0, 0, 100) is None
    assert uncross_price([], [(99, 10)], 0, 0, 100) is None
    assert uncross_price([], [], 0, 0, 100) is None


def test_touching_prices_cross() -> None:
    assert uncross_price([(100, 7)], [(100, 3)], 0, 0, 0) == (100, 3, 4)


def test_quantities_at_one_price_are_aggregated_and_order_is_irrelevant() -> None:
    bids = [(100, 3), (102, 4), (100, 2)]
    asks = [(101, 1), (99, 6), (101, 2)]
    shuffled = (list(reversed(bids)), list(reversed(asks)))
    expected = uncross_price(bids, asks, 0, 0, 100)
    assert expected == uncross_price(*shuffled, 0, 0, 100)
    assert expected == oracle(bids, asks, 0, 0, 100)


def test_only_market_orders_executable_trade_at_the_reference_price() -> None:
    # Market buy 100 and market sell 100; a bid of 10 @ 90 that cannot take part
    # (the market sells are all used up by the market buys). At 100 volume is 100 with
    # imbalance 0; at 90 (the only candidate considered) volume is 100 with imbalance +10.
    assert cum([(90, 10)], [], 100, 100, 100) == (100, 100)
    assert uncross_price([(90, 10)], [], 100, 100, 100) == (100, 100, 0)


# ------------------------------------------------------------------ properties

levels = st.lists(
    st.tuples(st.integers(min_value=90, max_value=110), st.integers(min_value=1, max_value=50)),
    max_size=8,
)
market_qty = st.integers(min_value=0, max_value=60)
reference = st.integers(min_value=0, max_value=120)


@settings(max_examples=300, deadline=None)
@given(levels, levels, market_qty, market_qty, reference)
def test_volume_is_the_maximum_executable_volume(
    bids: Book, asks: Book, mkt_buy: int, mkt_sell: int, ref: int
) -> None:
    result = uncross_price(bids, asks, mkt_buy, mkt_sell, ref)
    # Every integer price around the book (and the reference) is a candidate for the oracle.
    prices = {p for p, _ in bids} | {p for p, _ in asks}
    if prices:
        candidates = range(min(prices) - 2, max(prices) + 3)
    else:
        candidates = range(ref, ref + 1) if ref > 0 else range(0)
    best = max((min(cum(bids, asks, mkt_buy, mkt_sell, p)) for p in candidates), default=0)
    if best == 0:
        assert result is None
    else:
        assert result is not None
        price, volume, imbalance = result
        assert volume == best
        buy, sell = cum(bids, asks, mkt_buy, mkt_sell, price)
        assert min(buy, sell) == volume
        assert imbalance == buy - sell


@settings(max_examples=300, deadline=None)
@given(levels, levels, market_qty, market_qty, reference)
def test_price_follows_the_tie_break_chain(
    bids: Book, asks: Book, mkt_buy: int, mkt_sell: int, ref: int
) -> None:
    assert uncross_price(bids, asks, mkt_buy, mkt_sell, ref) == oracle(
        bids, asks, mkt_buy, mkt_sell, ref
    )


@settings(max_examples=200, deadline=None)
@given(levels, levels, reference)
def test_uncross_leaves_no_executable_surplus(bids: Book, asks: Book, ref: int) -> None:
    """After executing the volume at the price, the leftover bids and asks no longer cross."""
    result = uncross_price(bids, asks, 0, 0, ref)
    if result is None:
        if bids and asks:
            assert max(p for p, _ in bids) < min(p for p, _ in asks)
        return
    price, volume, _ = result
    # Allocate in price priority and check what is left does not cross.
    left_bids = sorted(bids, key=lambda x: -x[0])
    left_asks = sorted(asks, key=lambda x: x[0])
    for book, ok in ((left_bids, lambda p: p >= price), (left_asks, lambda p: p <= price)):
        need = volume
        for i, (p, q) in enumerate(book):
            if need == 0:
                break
            assert ok(p)
            take = min(q, need)
            book[i] = (p, q - take)
            need -= take
        assert need == 0
    rest_bids = [p for p, q in left_bids if q]
    rest_asks = [p for p, q in left_asks if q]
    if rest_bids and rest_asks:
        assert max(rest_bids) < min(rest_asks)
