"""A small driver around the matching engine for the order-type and cancel/replace/STP tests.

``Harness`` owns one ``Engine``, numbers commands 1, 2, 3... (so an order's id is ``h.seq``
right after ``h.new(...)``), advances the timestamp by 1 ns per command unless told otherwise,
lists instrument ``ACME`` in continuous trading, and checks on every command that event
sequence numbers are gapless and stamped with the command's time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
import pytest

from tradingfloor.exchange.engine.commands import (
    AddInstrument,
    CancelOrder,
    Command,
    MassCancel,
    NewOrder,
    OrderStatusRequest,
    ReplaceOrder,
    Tick,
)
from tradingfloor.exchange.engine.engine import Engine
from tradingfloor.exchange.engine.events import Event, Rejected, Trade
from tradingfloor.exchange.engine.types import Side, TimeInForce

E = TypeVar("E")

SYMBOL = "ACME"
START_TS = 1_000_000


class Events(list[Event]):
    """The events of one command, with type filters; ``order_id`` is the command's seq."""

    order_id: int = 0

    def of(self, cls: type[E]) -> list[E]:
        return [ev for ev in self if isinstance(ev, cls)]

    def one(self, cls: type[E]) -> E:
        found = self.of(cls)
        assert len(found) == 1, f"expected one {cls.__name__}, got {found!r} in {list(self)!r}"
        return found[0]

    def has(self, cls: type[Any]) -> bool:
        return any(isinstance(ev, cls) for ev in self)

    @property
    def trades(self) -> list[Trade]:
        return self.of(Trade)

    def fills(self) -> list[tuple[int, int, int]]:
        """(maker order id, price, qty) of every trade, in order."""
        return [(t.maker_order_id, t.price, t.qty) for t in self.trades]

    def types(self) -> list[str]:
        return [type(ev).__name__ for ev in self]

    def reject_code(self) -> int:
        return self.one(Rejected).code


class Harness:
    """Drives one engine; see the module docstring."""

    def __init__(self, symbol: str = SYMBOL, **instrument: Any) -> None:
        self.e = Engine()
        self.seq = 0
        self.ts = START_TS
        self.event_seq = 0
        self.symbol = symbol
        self.add_instrument(symbol, **instrument)

    # ------------------------------------------------------------ raw commands

    def apply(self, cmd: Command, ts: int | None = None) -> Events:
        self.seq += 1
        self.ts = self.ts + 1 if ts is None else ts
        out = Events(self.e.apply(self.seq, self.ts, cmd))
        out.order_id = self.seq
        for ev in out:
            self.event_seq += 1
            assert ev.seq == self.event_seq, f"event seq gap: {ev!r}"  # type: ignore[union-attr]
            assert ev.ts == self.ts, f"event ts: {ev!r}"  # type: ignore[union-attr]
        return out

    def add_instrument(self, symbol: str, **kw: Any) -> Events:
        out = self.apply(AddInstrument(symbol=symbol, **kw))
        assert not out.has(Rejected), out
        return out

    def tick(self, ts: int | None = None) -> Events:
        return self.apply(Tick(), ts)

    # ------------------------------------------------------------ orders

    def new(
        self,
        side: Side,
        qty: int,
        price: int = 0,
        *,
        member: str = "M1",
        symbol: str | None = None,
        cl_ord_id: str | None = None,
        **kw: Any,
    ) -> Events:
        cmd = NewOrder(
            symbol=symbol or self.symbol,
            member=member,
            cl_ord_id=cl_ord_id if cl_ord_id is not None else f"c{self.seq + 1}",
            side=side,
            qty=qty,
            price=price,
            **kw,
        )
        return self.apply(cmd)

    def buy(self, qty: int, price: int = 0, **kw: Any) -> Events:
        return self.new(Side.BUY, qty, price, **kw)

    def sell(self, qty: int, price: int = 0, **kw: Any) -> Events:
        return self.new(Side.SELL, qty, price, **kw)

    def rest(self, side: Side, qty: int, price: int, **kw: Any) -> int:
        """Place an order that must rest untouched; returns its order id."""
        out = self.new(side, qty, price, **kw)
        assert not out.has(Rejected) and not out.trades, list(out)
        return out.order_id

    def trade_at(self, price: int, qty: int = 1) -> Events:
        """Print a trade at ``price`` between two uninvolved members (sets the last price).

        Returns the events of the buying command: stops the trade triggers show up there.
        """
        self.new(Side.SELL, qty, price, member="XS")
        out = self.new(Side.BUY, qty, price, member="XB", tif=TimeInForce.IOC)
        first = out.trades[0] if out.trades else None
        assert first is not None and (first.price, first.qty) == (price, qty), list(out)
        assert first.maker_member == "XS", list(out)
        return out

    def cancel(
        self, order_id: int = 0, *, member: str = "M1", symbol: str | None = None, **kw: Any
    ) -> Events:
        kw.setdefault("cl_ord_id", f"x{self.seq + 1}")
        return self.apply(
            CancelOrder(symbol=symbol or self.symbol, member=member, order_id=order_id, **kw)
        )

    def replace(
        self,
        order_id: int,
        qty: int,
        price: int = 0,
        *,
        member: str = "M1",
        symbol: str | None = None,
        cl_ord_id: str | None = None,
        **kw: Any,
    ) -> Events:
        return self.apply(
            ReplaceOrder(
                symbol=symbol or self.symbol,
                member=member,
                cl_ord_id=cl_ord_id if cl_ord_id is not None else f"r{self.seq + 1}",
                order_id=order_id,
                qty=qty,
                price=price,
                **kw,
            )
        )

    def mass_cancel(self, member: str = "M1", **kw: Any) -> Events:
        return self.apply(MassCancel(member=member, **kw))

    def status(
        self, order_id: int = 0, *, member: str = "M1", symbol: str | None = None, **kw: Any
    ) -> Events:
        return self.apply(
            OrderStatusRequest(symbol=symbol or self.symbol, member=member, order_id=order_id, **kw)
        )

    # ------------------------------------------------------------ views

    def l2(self, symbol: str | None = None) -> tuple[list[tuple[int, int, int]], ...]:
        return self.e.l2(symbol or self.symbol, 50)

    def l3(self, symbol: str | None = None) -> tuple[list[tuple[int, int, int, str]], ...]:
        return self.e.l3(symbol or self.symbol)

    def bid_ids(self) -> list[int]:
        return [row[2] for row in self.l3()[0]]

    def ask_ids(self) -> list[int]:
        return [row[2] for row in self.l3()[1]]

    def live(self) -> list[int]:
        return sorted(self.e.orders)

    def leaves(self, order_id: int) -> int:
        return self.e.orders[order_id].leaves

    def book_view(self) -> tuple[Any, ...]:
        """Everything a reject must leave unchanged, as plain comparable data."""
        orders = {
            oid: (o.leaves, o.cum_qty, o.qty, o.price, o.stop_price, o.cl_ord_id, o.loc)
            for oid, o in self.e.orders.items()
        }
        views = {s: (self.e.l3(s), self.e.l2(s, 50)) for s in self.e.instruments}
        return orders, views

    def state(self) -> dict[str, Any]:
        """The engine snapshot without the counters every command advances."""
        st = msgspec.msgpack.decode(self.e.snapshot())
        for key in ("last_seq", "event_seq", "ts"):
            st.pop(key)
        return st  # type: ignore[no-any-return]


@pytest.fixture
def h() -> Harness:
    """A fresh engine with ``ACME`` listed in continuous trading."""
    return Harness()


@pytest.fixture
def make_harness() -> Callable[..., Harness]:
    """Build a harness whose first instrument takes custom ``AddInstrument`` fields."""
    return Harness
