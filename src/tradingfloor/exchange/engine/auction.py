"""Call-auction price discovery: the uncross price of a crossed book.

The price maximises executable volume, then minimises the imbalance left at that price, then is
nearest the reference price, then (for a full tie) is the lower price. Pure integer arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["UncrossResult", "uncross_price"]

UncrossResult = tuple[int, int, int]  # (price, volume, imbalance: + buy surplus, - sell surplus)


def uncross_price(
    bids: Sequence[tuple[int, int]],
    asks: Sequence[tuple[int, int]],
    market_buy: int,
    market_sell: int,
    reference: int,
) -> UncrossResult | None:
    """Find the uncross price for limit ``bids``/``asks`` given as (price, qty) in any order.

    Candidates are the limit prices, plus the reference price when market orders stand on both
    sides. Market quantities execute at any price. Returns None when nothing can trade.
    """
    prices = {p for p, _ in bids} | {p for p, _ in asks}
    if market_buy and market_sell and reference > 0:
        prices.add(reference)  # market orders on both sides may cross at the reference
    candidates = sorted(prices)
    if not candidates:
        if market_buy and market_sell and reference > 0:
            volume = min(market_buy, market_sell)
            return reference, volume, market_buy - market_sell
        return None
    bid_at: dict[int, int] = {}
    for p, q in bids:
        bid_at[p] = bid_at.get(p, 0) + q
    ask_at: dict[int, int] = {}
    for p, q in asks:
        ask_at[p] = ask_at.get(p, 0) + q
    # Cumulative sell quantity at or below each candidate, buy quantity at or above it.
    sell_cum: list[int] = []
    running = market_sell
    for p in candidates:
        running += ask_at.get(p, 0)
        sell_cum.append(running)
    buy_cum = [0] * len(candidates)
    running = market_buy
    for i in range(len(candidates) - 1, -1, -1):
        running += bid_at.get(candidates[i], 0)
        buy_cum[i] = running
    best: tuple[int, int, int, int] | None = None
    best_result: UncrossResult | None = None
    for i, p in enumerate(candidates):
        volume = min(buy_cum[i], sell_cum[i])
        if volume <= 0:
            continue
        imbalance = buy_cum[i] - sell_cum[i]
        distance = abs(p - reference) if reference > 0 else 0
        key = (-volume, abs(imbalance), distance, p)
        if best is None or key < best:
            best = key
            best_result = (p, volume, imbalance)
    return best_result
