"""What an order's status means to the rest of the broker (``broker/oms/orders.py``): which
statuses are closed (``CLOSED_STATUSES``, ``is_open``), which orders can still trade
(``is_working``: open and not a ``held`` leg) and how much they can (``leaves_qty``).

mutmut does not mutate properties or module-level constants, so these were mutated by hand
(docs/testing.md lists each change and the test that fails for it). The promises are
docs/broker.md's: a cash account may sell only shares it holds that are not committed to other
sells; held exits wait for their entry; DAY orders still working at the close expire; closed
orders are listed as closed, also after a restart.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from alpaca.trading import enums as alpaca

from broker.stack import FakeClock, broker_stack, history, settle
from tradingfloor.broker.api.alpaca_json import position_json
from tradingfloor.broker.calendar import MarketCalendar
from tradingfloor.broker.errors import BrokerError
from tradingfloor.broker.oms.orders import (
    CLOSED_STATUSES,
    OrderClass,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from tradingfloor.broker.oms.requests import OrderRequest
from tradingfloor.exchange.engine.types import Side


def lose_uncommitted_writes(store: object) -> None:
    """As in a crash from here on: what the writer has not committed yet is lost, and so is
    every later write (as in ``test_oms.py``)."""
    store._pending.clear()  # type: ignore[attr-defined]
    store._queue = lambda *args, **kwargs: None  # type: ignore[attr-defined]


def limit(side: str, qty: int, price: int, **kw: object) -> OrderRequest:
    return OrderRequest(
        symbol="AAPL",
        side=side,
        qty=qty,
        order_type="limit",
        limit_price=price,
        **kw,  # type: ignore[arg-type]
    )


def test_the_vocabulary_is_alpacas() -> None:
    """Statuses, types, times in force and classes go out as they are (the API's ``status``,
    ``type``, ``time_in_force``, ``order_class``): each must be a value alpaca-py knows, and the
    types, times in force and classes are the ones docs/broker-api.md lists."""
    assert {s.value for s in OrderStatus} <= {s.value for s in alpaca.OrderStatus}
    assert {t.value for t in OrderType} == {t.value for t in alpaca.OrderType}
    assert [t.value for t in TimeInForce] == ["day", "gtc", "opg", "cls", "ioc", "fok"]
    assert {t.value for t in TimeInForce} == {t.value for t in alpaca.TimeInForce}
    assert [c.value for c in OrderClass] == ["simple", "bracket", "oco", "oto"]
    assert {c.value for c in OrderClass} <= {c.value for c in alpaca.OrderClass}
    assert {s.value for s in CLOSED_STATUSES} == {
        "filled",
        "canceled",
        "expired",
        "replaced",
        "rejected",
    }


async def _bought(s: object, acct_id: str, qty: int) -> None:
    """``qty`` AAPL shares in the account, bought at 100.00."""
    await s.counterparty("AAPL", Side.SELL, 10_000, qty)  # type: ignore[attr-defined]
    order = await s.broker.submit_order(acct_id, limit("buy", qty, 10_000))  # type: ignore[attr-defined]
    assert order.status == OrderStatus.FILLED


async def test_a_partly_filled_sell_commits_only_what_is_left_of_it(tmp_path: Path) -> None:
    """A sell of 5 of 10 shares, 2 of them sold: 8 held, 3 committed, so 5 may still be sold
    (and are ``qty_available``), not 6."""
    async with broker_stack(tmp_path) as s:
        acct_id = await s.funded_account()
        await _bought(s, acct_id, 10)
        sell = await s.broker.submit_order(acct_id, limit("sell", 5, 10_100))
        await s.counterparty("AAPL", Side.BUY, 10_100, 2)
        assert sell.status == OrderStatus.PARTIALLY_FILLED and sell.leaves_qty == 3
        acct = s.broker.accounts[acct_id]
        assert position_json(s.broker, acct, acct.positions["AAPL"])["qty_available"] == "5"
        try:
            await s.broker.submit_order(acct_id, limit("sell", 6, 10_200))
        except BrokerError as exc:
            assert exc.status == 403
        else:
            raise AssertionError("a sell of more than the uncommitted shares was accepted")
        more = await s.broker.submit_order(acct_id, limit("sell", 5, 10_200))
        assert more.status == OrderStatus.NEW


async def test_held_exit_legs_commit_no_shares_until_their_entry_fills(tmp_path: Path) -> None:
    """A bracket's exits wait ``held`` for their entry: they are not at the venue and cannot
    trade, so the shares already held stay free to sell."""
    async with broker_stack(tmp_path) as s:
        acct_id = await s.funded_account()
        await _bought(s, acct_id, 10)
        entry = await s.broker.submit_order(
            acct_id,
            limit(
                "buy",
                5,
                9_900,
                order_class="bracket",
                take_profit_limit=11_000,
                stop_loss_stop=9_000,
                time_in_force="gtc",
            ),
        )
        legs = s.broker.legs_of(entry)
        assert [leg.status for leg in legs] == [OrderStatus.HELD, OrderStatus.HELD]
        assert not any(leg.is_working for leg in legs) and entry.is_working
        acct = s.broker.accounts[acct_id]
        assert position_json(s.broker, acct, acct.positions["AAPL"])["qty_available"] == "10"
        sell = await s.broker.submit_order(acct_id, limit("sell", 10, 10_100))
        assert sell.status == OrderStatus.NEW


async def test_orders_closed_during_the_session_are_left_alone_at_the_close(
    tmp_path: Path,
) -> None:
    """Only DAY orders still working expire at the close: a filled, a cancelled and a rejected
    DAY order keep their status and get no cancel request."""
    clock = FakeClock(1_764_082_800_000_000_000)  # Tuesday 2025-11-25, 10:00 in New York
    calendar = MarketCalendar()
    async with broker_stack(tmp_path, clock=clock, calendar=calendar) as s:
        acct_id = await s.funded_account()
        await s.counterparty("AAPL", Side.SELL, 10_000, 1)
        filled = await s.broker.submit_order(acct_id, limit("buy", 1, 10_000))
        canceled = await s.broker.submit_order(acct_id, limit("buy", 1, 9_000))
        await s.broker.cancel_order(acct_id, canceled.id)
        rejected = await s.broker.submit_order(  # no asks left: the venue refuses it
            acct_id, OrderRequest(symbol="AAPL", side="buy", qty=1, order_type="market")
        )
        working = await s.broker.submit_order(acct_id, limit("buy", 1, 9_500))
        statuses = (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED)
        assert (filled.status, canceled.status, rejected.status) == statuses
        clock.advance(6.5 * 3600)  # 16:30 in New York: closed
        s.broker.maintain()
        await settle()
        assert (filled.status, canceled.status, rejected.status) == statuses
        assert working.status == OrderStatus.EXPIRED
        for order, asked in ((filled, 0), (canceled, 1), (rejected, 0)):  # by the day roll: none
            kinds = [e.kind for e in await history(s.broker, order.id)]
            assert kinds.count("cancel_requested") == asked, kinds
        assert s.broker.open_orders(acct_id) == []


async def test_closed_orders_stay_closed_across_a_restart(tmp_path: Path) -> None:
    """A restart loads only open orders: filled, cancelled, expired and rejected
    ones are not open again (and commit nothing), and ``status=closed`` lists every one."""
    clock = FakeClock(1_764_082_800_000_000_000)  # Tuesday 2025-11-25, 10:00 in New York
    calendar = MarketCalendar()
    async with broker_stack(tmp_path, clock=clock, calendar=calendar) as s:
        acct_id = await s.funded_account()
        await _bought(s, acct_id, 10)
        sold = await s.broker.submit_order(acct_id, limit("sell", 2, 9_800))
        await s.counterparty("AAPL", Side.BUY, 9_800, 2)
        canceled = await s.broker.submit_order(acct_id, limit("sell", 2, 10_500))
        await s.broker.cancel_order(acct_id, canceled.id)
        rejected = await s.broker.submit_order(
            acct_id, OrderRequest(symbol="AAPL", side="sell", qty=1, order_type="market")
        )
        expired = await s.broker.submit_order(acct_id, limit("sell", 3, 10_500))
        clock.advance(6.5 * 3600)
        s.broker.maintain()
        for _ in range(5):
            await s.broker.store.flush()
        closed = {sold.id, canceled.id, rejected.id, expired.id}
        assert [sold.status, canceled.status, rejected.status, expired.status] == [
            OrderStatus.FILLED,
            OrderStatus.CANCELED,
            OrderStatus.REJECTED,
            OrderStatus.EXPIRED,
        ]
        assert s.broker.open_orders(acct_id) == []
    async with broker_stack(tmp_path, clock=clock, calendar=calendar) as s:
        assert s.broker.open_orders(acct_id) == []
        acct = s.broker.accounts[acct_id]
        assert position_json(s.broker, acct, acct.positions["AAPL"])["qty_available"] == "8"
        _, headers = await s.user(account_id=acct_id)
        async with s.client() as client:
            answer = await client.get(
                "/v2/orders", params={"status": "closed", "limit": 500}, headers=headers
            )
            assert answer.status_code == 200
            listed = {o["id"] for o in answer.json()}
            assert closed <= listed
            answer = await client.get("/v2/orders", params={"status": "open"}, headers=headers)
            assert answer.json() == []


async def test_an_order_submit_order_committed_but_never_sent_is_rejected_on_restart(
    tmp_path: Path,
) -> None:
    """docs/broker.md: an order committed as ``pending_new`` that never reached the venue is
    ``rejected`` at start-up (only the broker's own exit legs are sent again). The row is the
    one ``submit_order`` itself commits (``test_oms.py`` builds one by hand, with the dataclass
    defaults, so it could not tell a simple order's leg role from an exit's)."""
    async with broker_stack(tmp_path) as s:
        acct_id = await s.funded_account()
        broker = s.broker

        async def crash(command: object) -> object:
            lose_uncommitted_writes(broker.store)
            raise RuntimeError("the process died before the venue got the order")

        broker.venue.submit = crash  # type: ignore[method-assign]
        # what the dead process would have answered (a 503) reaches no one
        with contextlib.suppress(BrokerError):
            await broker.submit_order(acct_id, limit("buy", 1, 10_000, client_order_id="lost"))
    async with broker_stack(tmp_path) as s:
        order = await s.broker.find_by_client_id(acct_id, "lost")
        assert order is not None and order.status == OrderStatus.REJECTED
        assert order.reject_reason == "the broker restarted before the order reached the venue"
        assert order.leg_role == "" and s.broker.accounts[acct_id].held == 0
        assert s.broker.open_orders(acct_id) == []
