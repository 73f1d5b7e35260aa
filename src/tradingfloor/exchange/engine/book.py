"""Order book: price levels with a displayed and a non-displayed FIFO queue, one side per map.

Price-time priority: better price first, then the displayed queue in arrival order, then the
hidden queue (hidden and all-or-none orders). Levels aggregate displayed size and order count.
"""

from __future__ import annotations

from collections.abc import Iterator

from sortedcontainers import SortedList

from tradingfloor.exchange.engine.order import LOC_BOOK, LOC_DEAD, Order

__all__ = ["BookSide", "Level", "OrderBook"]


class Level:
    """All resting orders at one price on one side."""

    __slots__ = ("count", "hid_head", "hid_tail", "price", "qty", "vis_head", "vis_tail")

    def __init__(self, price: int) -> None:
        self.price = price
        self.qty = 0  # displayed quantity
        self.count = 0  # displayed orders
        self.vis_head: Order | None = None
        self.vis_tail: Order | None = None
        self.hid_head: Order | None = None
        self.hid_tail: Order | None = None

    def empty(self) -> bool:
        """No order rests here, displayed or hidden."""
        return self.vis_head is None and self.hid_head is None

    def append(self, o: Order) -> None:
        """Queue ``o`` at the back of its queue (displayed or hidden)."""
        o.level = self
        o.next = None
        if o.shows:
            o.visible = o.display_slice()
            self.qty += o.visible
            self.count += 1
            tail = self.vis_tail
            o.prev = tail
            if tail is None:
                self.vis_head = o
            else:
                tail.next = o
            self.vis_tail = o
        else:
            o.visible = 0
            tail = self.hid_tail
            o.prev = tail
            if tail is None:
                self.hid_head = o
            else:
                tail.next = o
            self.hid_tail = o

    def unlink(self, o: Order) -> None:
        """Remove ``o`` from its queue in O(1)."""
        prev, nxt = o.prev, o.next
        if o.shows:
            self.qty -= o.visible
            self.count -= 1
            if prev is None:
                self.vis_head = nxt
            else:
                prev.next = nxt
            if nxt is None:
                self.vis_tail = prev
            else:
                nxt.prev = prev
        else:
            if prev is None:
                self.hid_head = nxt
            else:
                prev.next = nxt
            if nxt is None:
                self.hid_tail = prev
            else:
                nxt.prev = prev
        o.prev = o.next = None
        o.level = None
        o.visible = 0  # shows nothing out of the book (state must not depend on where it was)

    def orders(self) -> Iterator[Order]:
        """Orders in priority order: displayed queue, then hidden queue."""
        o = self.vis_head
        while o is not None:
            yield o
            o = o.next
        o = self.hid_head
        while o is not None:
            yield o
            o = o.next


class BookSide:
    """One side of a book: price -> Level plus a sorted price index."""

    __slots__ = ("is_buy", "levels", "prices")

    def __init__(self, is_buy: bool) -> None:
        self.is_buy = is_buy
        self.levels: dict[int, Level] = {}
        self.prices = SortedList()

    def best(self) -> int | None:
        prices = self.prices
        if not prices:
            return None
        return int(prices[-1] if self.is_buy else prices[0])

    def iter_levels(self) -> Iterator[Level]:
        """Levels from best to worst; the side must not change while iterating."""
        prices = reversed(self.prices) if self.is_buy else iter(self.prices)
        levels = self.levels
        for p in prices:
            yield levels[p]

    def add(self, o: Order) -> Level:
        level = self.levels.get(o.price)
        if level is None:
            level = Level(o.price)
            self.levels[o.price] = level
            self.prices.add(o.price)
        level.append(o)
        o.loc = LOC_BOOK
        return level

    def remove(self, o: Order) -> Level:
        level = o.level
        if level is None:
            raise RuntimeError(f"order {o.order_id} is not in a level")
        level.unlink(o)
        o.loc = LOC_DEAD
        if level.empty():
            del self.levels[level.price]
            self.prices.remove(level.price)
        return level

    def drop_if_empty(self, level: Level) -> None:
        if level.empty() and level.price in self.levels:
            del self.levels[level.price]
            self.prices.remove(level.price)

    def depth(self, n: int) -> list[tuple[int, int, int]]:
        """Up to ``n`` displayed levels as (price, size, orders), best first."""
        out: list[tuple[int, int, int]] = []
        for level in self.iter_levels():
            if level.count:
                out.append((level.price, level.qty, level.count))
                if len(out) == n:
                    break
        return out

    def best_displayed(self) -> tuple[int, int]:
        """(price, size) of the best level with displayed size, (0, 0) when none."""
        for level in self.iter_levels():
            if level.count:
                return level.price, level.qty
        return 0, 0


class OrderBook:
    """Both sides of one instrument's book."""

    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids = BookSide(True)
        self.asks = BookSide(False)

    def side(self, is_buy: bool) -> BookSide:
        return self.bids if is_buy else self.asks

    def l3(self, is_buy: bool) -> list[tuple[int, int, int, str]]:
        """Displayed orders as (price, displayed qty, order id, member), in priority order."""
        out: list[tuple[int, int, int, str]] = []
        for level in self.side(is_buy).iter_levels():
            o = level.vis_head
            while o is not None:
                out.append((level.price, o.visible, o.order_id, o.member))
                o = o.next
        return out
