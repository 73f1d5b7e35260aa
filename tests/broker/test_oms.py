"""The broker's order management against a real venue: lifecycle, holds, contingent orders,
idempotency, risk rejections, and recovery from the venue's journal after a restart."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from sqlalchemy import select

from broker.stack import FakeClock, broker_stack, history, settle, trailing_stops
from tradingfloor.broker.calendar import MarketCalendar
from tradingfloor.broker.errors import BrokerError
from tradingfloor.broker.oms.orders import BrokerOrder, LegRole, OrderStatus
from tradingfloor.broker.oms.requests import OrderRequest, ReplaceRequest
from tradingfloor.broker.risk.codes import RiskCode
from tradingfloor.broker.risk.pretrade import RiskLimits
from tradingfloor.broker.service import TradeUpdate
from tradingfloor.exchange.engine.types import Side
from tradingfloor.storage import tables as t


def limit(side: str, qty: int, price: int, **kw: object) -> OrderRequest:
    return OrderRequest(
        symbol="AAPL",
        side=side,
        qty=qty,
        order_type="limit",
        limit_price=price,
        **kw,  # type: ignore[arg-type]
    )


async def test_limit_order_rests_fills_and_updates_cash_position_and_holds(
    tmp_path: Path, db_url: str | None
) -> None:
    async with broker_stack(tmp_path, db_url=db_url) as s:
        acct_id = await s.funded_account(1_000_000)  # $10,000
        acct = s.broker.accounts[acct_id]
        updates: list[TradeUpdate] = []
        s.broker.add_trade_update_listener(updates.append)
        order = await s.broker.submit_order(acct_id, limit("buy", 10, 10_000))
        assert order.status == OrderStatus.NEW and order.venue_order_id
        assert order.hold == 100_000 and acct.held == 100_000
        assert s.broker.buying_power(acct) == 900_000
        await s.counterparty("AAPL", Side.SELL, 10_000, 4)
        assert order.status == OrderStatus.PARTIALLY_FILLED and order.filled_qty == 4
        assert acct.held == order.hold == 60_000
        assert acct.cash == 1_000_000 - 40_000
        await s.counterparty("AAPL", Side.SELL, 9_900, 6)
        assert order.status == OrderStatus.FILLED and order.hold == acct.held == 0
        pos = acct.positions["AAPL"]
        assert pos.qty == 10 and pos.cost_basis == 100_000  # maker price: our 100.00
        assert [u.event for u in updates] == ["new", "partial_fill", "fill"]
        assert updates[-1].position_qty == 10
        await s.broker.store.flush()
        async with s.broker.store.engine.connect() as conn:
            row = (await conn.execute(select(t.orders).where(t.orders.c.id == order.id))).one()
            fills = list(await conn.execute(select(t.fills)))
        assert row.status == "filled" and row.filled_qty == 10
        assert sorted(f.qty for f in fills) == [4, 6]


async def test_sale_proceeds_settle_next_trading_day_in_a_cash_account(tmp_path: Path) -> None:
    async with broker_stack(tmp_path) as s:
        acct_id = await s.funded_account(1_000_000)
        acct = s.broker.accounts[acct_id]
        await s.counterparty("AAPL", Side.SELL, 10_000, 10)
        await s.broker.submit_order(acct_id, limit("buy", 10, 10_000))
        await s.counterparty("AAPL", Side.BUY, 10_500, 10)
        await s.broker.submit_order(acct_id, limit("sell", 10, 10_500))
        now = s.broker.clock()
        assert acct.positions["AAPL"].qty == 0
        assert acct.cash == 1_000_000 + 5_000
        assert acct.settled_cash(now) == 1_000_000 - 100_000  # the sale is unsettled
        assert acct.positions["AAPL"].realized_pnl == 5_000


async def test_client_order_id_is_idempotent(tmp_path: Path, db_url: str | None) -> None:
    async with broker_stack(tmp_path, db_url=db_url) as s:
        acct_id = await s.funded_account()
        first = await s.broker.submit_order(acct_id, limit("buy", 1, 10_000, client_order_id="a1"))
        again = await s.broker.submit_order(acct_id, limit("buy", 5, 9_000, client_order_id="a1"))
        assert again.id == first.id and again.qty == 1
        assert len(s.broker.open_orders(acct_id)) == 1


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (limit("buy", 200, 10_000), RiskCode.INSUFFICIENT_BUYING_POWER),
        (limit("buy", 20_000, 100), RiskCode.MAX_ORDER_QTY),
        (limit("sell", 1, 10_000), RiskCode.SHORT_NOT_ALLOWED),
        (limit("buy", 6_000, 100), RiskCode.POSITION_LIMIT),
    ],
)
async def test_risk_rejections_change_nothing(
    tmp_path: Path, request_: OrderRequest, code: RiskCode
) -> None:
    async with broker_stack(tmp_path) as s:
        acct_id = await s.funded_account(1_000_000)
        acct = s.broker.accounts[acct_id]
        with pytest.raises(BrokerError) as info:
            await s.broker.submit_order(acct_id, request_)
        assert info.value.code == code and info.value.status == 403
        assert acct.held == 0 and not s.broker.open_orders(acct_id)


async def test_kyc_gates_trading(tmp_path: Path) -> None:
    async with broker_stack(tmp_path) as s:
        acct_id = await s.funded_account(kyc="pending")
        with pytest.raises(BrokerError) as info:
            await s.broker.submit_order(acct_id, limit("buy", 1, 10_000))
        assert info.value.code == RiskCode.KYC_NOT_APPROVED


async def test_restricted_symbol_is_refused(tmp_path: Path) -> None:
    async with broker_stack(tmp_path) as s:
        acct_id = await s.funded_account()
        await s.broker.set_restricted("AAPL", True, "pending news")
        with pytest.raises(BrokerError) as info:
            await s.broker.submit_order(acct_id, limit("buy", 1, 10_000))
        assert info.value.code == RiskCode.RESTRICTED_SYMBOL


async def test_venue_rejection_releases_the_hold(tmp_path: Path) -> None:
    async with broker_stack(tmp_path) as s:
        acct_id = await s.funded_account()
        acct = s.broker.accounts[acct_id]
        await s.counterparty("AAPL", Side.BUY, 9_000, 5)  # a reference for the market order
        s.broker.last_price["AAPL"] = 9_000
        order = await s.broker.submit_order(
            acct_id, OrderRequest(symbol="AAPL", side="buy", qty=1, order_type="market")
        )
        assert order.status == OrderStatus.REJECTED  # no asks: the venue refuses it
        assert order.reject_reason and acct.held == 0


async def test_cancel_and_replace(tmp_path: Path, db_url: str | None) -> None:
    async with broker_stack(tmp_path, db_url=db_url) as s:
        acct_id = await s.funded_account()
        acct = s.broker.accounts[acct_id]
        order = await s.broker.submit_order(acct_id, limit("buy", 10, 10_000))
        new = await s.broker.replace_order(
            acct_id, order.id, ReplaceRequest(qty=20, limit_price=9_500)
        )
        assert order.status == OrderStatus.REPLACED and order.replaced_by == new.id
        assert new.status == OrderStatus.NEW and new.replaces == order.id
        assert new.venue_order_id == order.venue_order_id
        assert acct.held == new.hold == 190_000
        await s.counterparty("AAPL", Side.SELL, 9_500, 20)
        assert new.status == OrderStatus.FILLED
        other = await s.broker.submit_order(acct_id, limit("buy", 1, 9_000))
        await s.broker.cancel_order(acct_id, other.id)
        assert other.status == OrderStatus.CANCELED and acct.held == 0
        with pytest.raises(BrokerError):
            await s.broker.cancel_order(acct_id, other.id)


async def test_bracket_exits_activate_on_fill_and_cancel_each_other(
    tmp_path: Path, db_url: str | None
) -> None:
    async with broker_stack(tmp_path, db_url=db_url) as s:
        acct_id = await s.funded_account()
        parent = await s.broker.submit_order(
            acct_id,
            limit(
                "buy",
                5,
                10_000,
                order_class="bracket",
                take_profit_limit=11_000,
                stop_loss_stop=9_000,
            ),
        )
        legs = s.broker.legs_of(parent)
        assert {leg.status for leg in legs} == {OrderStatus.HELD}
        await s.counterparty("AAPL", Side.SELL, 10_000, 5)
        await settle()
        assert parent.status == OrderStatus.FILLED
        assert {leg.status for leg in legs} == {OrderStatus.NEW}
        take_profit = next(leg for leg in legs if leg.leg_role == LegRole.TAKE_PROFIT)
        stop_loss = next(leg for leg in legs if leg.leg_role == LegRole.STOP_LOSS)
        await s.counterparty("AAPL", Side.BUY, 11_000, 5)
        await settle()
        assert take_profit.status == OrderStatus.FILLED
        assert stop_loss.status == OrderStatus.CANCELED
        assert s.broker.accounts[acct_id].positions["AAPL"].qty == 0


async def test_bracket_entry_cancelled_unfilled_cancels_its_exits(tmp_path: Path) -> None:
    async with broker_stack(tmp_path) as s:
        acct_id = await s.funded_account()
        parent = await s.broker.submit_order(
            acct_id,
            limit("buy", 5, 10_000, order_class="oto", stop_loss_stop=9_000),
        )
        (leg,) = s.broker.legs_of(parent)
        await s.broker.cancel_order(acct_id, parent.id)
        assert parent.status == OrderStatus.CANCELED and leg.status == OrderStatus.CANCELED


async def test_oco_pair_works_both_legs_at_once(tmp_path: Path) -> None:
    async with broker_stack(tmp_path) as s:
        acct_id = await s.funded_account()
        await s.counterparty("AAPL", Side.SELL, 10_000, 5)
        await s.broker.submit_order(acct_id, limit("buy", 5, 10_000))
        oco = await s.broker.submit_order(
            acct_id,
            OrderRequest(
                symbol="AAPL",
                side="sell",
                qty=5,
                order_type="limit",
                order_class="oco",
                take_profit_limit=11_000,
                stop_loss_stop=9_000,
            ),
        )
        (stop,) = s.broker.legs_of(oco)
        assert oco.status == OrderStatus.NEW and stop.status == OrderStatus.NEW
        await s.counterparty("AAPL", Side.BUY, 8_800, 10)  # a bid for the stop to hit
        await s.counterparty("AAPL", Side.SELL, 8_900, 1)
        await s.counterparty("AAPL", Side.BUY, 8_900, 1)  # trades at 89.00: the stop triggers
        await settle()
        assert stop.status == OrderStatus.FILLED
        assert oco.status == OrderStatus.CANCELED


async def test_restart_applies_venue_events_the_database_missed(
    tmp_path: Path, db_url: str | None
) -> None:
    async with broker_stack(tmp_path, db_url=db_url) as s:
        acct_id = await s.funded_account(1_000_000)
        order = await s.broker.submit_order(acct_id, limit("buy", 10, 10_000))
        order_id = order.id
        await s.broker.store.flush()
        # From here on the broker's writes are lost, as in a crash between the venue's journal
        # commit and the broker's database commit:
        s.broker.store._queue = lambda *args, **kwargs: None  # type: ignore[method-assign]
        await s.counterparty("AAPL", Side.SELL, 10_000, 10)
        assert order.status == OrderStatus.FILLED
    async with broker_stack(tmp_path, db_url=db_url) as s:
        found = await s.broker.find_order(acct_id, order_id)
        assert found is not None and found.status == OrderStatus.FILLED
        acct = s.broker.accounts[acct_id]
        assert acct.positions["AAPL"].qty == 10
        assert acct.cash == 900_000 and acct.held == 0
    async with broker_stack(tmp_path, db_url=db_url) as s:  # and the replayed result was committed
        acct = s.broker.accounts[acct_id]
        assert acct.positions["AAPL"].qty == 10 and acct.cash == 900_000


async def test_order_never_sent_before_a_crash_is_rejected_on_restart(
    tmp_path: Path, db_url: str | None
) -> None:
    async with broker_stack(tmp_path, db_url=db_url) as s:
        acct_id = await s.funded_account()
        now = s.broker.clock()
        # What submit_order commits before it sends the order to the venue; then the crash.
        pending = BrokerOrder(
            id="0d9a3d6e-0000-4000-8000-000000000001",
            account_id=acct_id,
            client_order_id="c1",
            symbol="AAPL",
            side="buy",
            order_type="limit",
            time_in_force="day",
            order_class="simple",
            qty=1,
            status=OrderStatus.PENDING_NEW,
            created_at=now,
            updated_at=now,
            limit_price=10_000,
            hold=10_000,
        )
        s.broker.store.insert(t.orders, pending.row())
        await s.broker.store.flush()
    async with broker_stack(tmp_path, db_url=db_url) as s:
        order = await s.broker.find_by_client_id(acct_id, "c1")
        assert order is not None and order.status == OrderStatus.REJECTED
        assert s.broker.accounts[acct_id].held == 0


async def test_an_order_only_the_venue_journaled_is_rebuilt_on_restart(
    tmp_path: Path, db_url: str | None
) -> None:
    """A simple order without a client order id is not committed before it is routed: if the
    broker stops before its write-behind commit, the venue's NewOrder restores it."""
    async with broker_stack(tmp_path, db_url=db_url) as s:
        acct_id = await s.funded_account(1_000_000)
        s.broker.store._queue = lambda *args, **kwargs: None  # type: ignore[method-assign]
        order = await s.broker.submit_order(acct_id, limit("buy", 10, 10_000))
        assert order.status == OrderStatus.NEW and order.client_order_id == order.id
    async with broker_stack(tmp_path, db_url=db_url) as s:
        rebuilt = s.broker.cached_order(order.id)
        assert rebuilt is not None and rebuilt.status == OrderStatus.NEW
        assert (rebuilt.qty, rebuilt.limit_price, rebuilt.side) == (10, 10_000, "buy")
        assert s.broker.accounts[acct_id].held == rebuilt.hold == 100_000
        await s.counterparty("AAPL", Side.SELL, 10_000, 10)
        assert rebuilt.status == OrderStatus.FILLED
    async with broker_stack(tmp_path, db_url=db_url) as s:
        found = await s.broker.find_by_client_id(acct_id, order.id)
        assert found is not None and found.status == OrderStatus.FILLED
        # nobody recorded who placed it: the history says the broker's recovery rebuilt it
        events = await history(s.broker, order.id)
        assert [e.kind for e in events] == ["submitted", "new", "fill"]
        assert (events[0].actor_principal, events[0].credential_id) == (
            "system",
            "broker:recovery",
        )


async def test_day_orders_expire_after_the_close_and_gtc_orders_stay(tmp_path: Path) -> None:
    # Tuesday 2025-11-25, 10:00 in New York (15:00 UTC): the session is open.
    clock = FakeClock(1_764_082_800_000_000_000)
    calendar = MarketCalendar()
    assert calendar.is_open(clock())
    async with broker_stack(tmp_path, clock=clock, calendar=calendar) as s:
        acct_id = await s.funded_account()
        updates: list[TradeUpdate] = []
        s.broker.add_trade_update_listener(updates.append)
        day = await s.broker.submit_order(acct_id, limit("buy", 1, 10_000))
        gtc = await s.broker.submit_order(acct_id, limit("buy", 1, 10_000, time_in_force="gtc"))
        s.broker.maintain()
        await settle()
        assert day.status == OrderStatus.NEW  # still in the session
        clock.advance(6.5 * 3600)  # 16:30 in New York: closed
        s.broker.maintain()
        await settle()
        assert day.status == OrderStatus.EXPIRED and day.expired_at is not None
        assert gtc.status == OrderStatus.NEW
        assert s.broker.accounts[acct_id].held == gtc.hold
        assert ("expired", day.id) in [(u.event, u.order.id) for u in updates]
        events = await history(s.broker, day.id)
        assert [(e.kind, e.credential_id) for e in events] == [
            ("submitted", "in-process"),
            ("new", "venue:TFEX"),
            ("cancel_requested", "broker:day-roll"),
            ("expired", "venue:TFEX"),
        ]


async def test_pattern_day_trader_rule_when_switched_on(tmp_path: Path) -> None:
    limits = RiskLimits(pdt_enabled=True)
    async with broker_stack(tmp_path, limits=limits) as s:
        acct_id = await s.funded_account(1_000_000, account_type="margin")  # $10,000 < $25,000
        for _ in range(3):  # three round trips the same day: three day trades
            await s.counterparty("AAPL", Side.SELL, 10_000, 1)
            await s.broker.submit_order(acct_id, limit("buy", 1, 10_000))
            await s.counterparty("AAPL", Side.BUY, 10_000, 1)
            await s.broker.submit_order(acct_id, limit("sell", 1, 10_000))
        await s.counterparty("AAPL", Side.SELL, 10_000, 1)
        await s.broker.submit_order(acct_id, limit("buy", 1, 10_000))  # opening is allowed
        with pytest.raises(BrokerError) as info:  # closing it today would be a fourth
            await s.broker.submit_order(acct_id, limit("sell", 1, 10_000))
        assert info.value.code == RiskCode.PATTERN_DAY_TRADER


def bracket(price: int, **kw: object) -> OrderRequest:
    return limit(
        "buy",
        5,
        price,
        order_class="bracket",
        take_profit_limit=11_000,
        stop_loss_stop=9_000,
        time_in_force="gtc",
        **kw,
    )


async def test_last_equity_is_the_previous_close_and_survives_restarts(
    tmp_path: Path, db_url: str | None
) -> None:
    clock = FakeClock()  # 2025-11-24 16:00 UTC; the always-open calendar rolls at midnight UTC
    async with broker_stack(tmp_path, db_url=db_url, clock=clock) as s:
        acct_id = await s.funded_account(1_000_000)
        acct = s.broker.accounts[acct_id]
        await s.counterparty("AAPL", Side.SELL, 10_000, 10)
        await s.broker.submit_order(acct_id, limit("buy", 10, 10_000))
        await s.counterparty("AAPL", Side.SELL, 10_500, 1, member="MM")
        await s.counterparty("AAPL", Side.BUY, 10_500, 1, member="MM2")
        assert s.broker.valuation(acct)[0] == 1_005_000
        assert s.broker.last_equity(acct) == 1_000_000  # day one: what it started with
    clock.advance(10 * 3600)  # the next day
    async with broker_stack(tmp_path, db_url=db_url, clock=clock) as s:
        acct = s.broker.accounts[acct_id]
        assert s.broker.last_equity(acct) == 1_005_000  # the close, although it was down
        await s.counterparty("AAPL", Side.SELL, 11_000, 1, member="MM")
        await s.counterparty("AAPL", Side.BUY, 11_000, 1, member="MM2")
        assert s.broker.valuation(acct)[0] == 1_010_000
        assert s.broker.last_equity(acct) == 1_005_000
    clock.advance(3600)  # a restart later the same day
    async with broker_stack(tmp_path, db_url=db_url, clock=clock) as s:
        acct = s.broker.accounts[acct_id]
        assert s.broker.last_equity(acct) == 1_005_000
        clock.advance(24 * 3600)
        s.broker.maintain()  # the day rolls while it runs
        assert s.broker.last_equity(acct) == 1_010_000


async def test_a_replaced_entry_hands_its_legs_on_and_a_restart_repairs_orphans(
    tmp_path: Path, db_url: str | None
) -> None:
    async with broker_stack(tmp_path, db_url=db_url) as s:
        acct_id = await s.funded_account()
        old = await s.broker.submit_order(acct_id, bracket(10_000))
        legs = s.broker.legs_of(old)
        await s.counterparty("AAPL", Side.SELL, 10_000, 2)  # two of five fill
        new = await s.broker.replace_order(acct_id, old.id, ReplaceRequest(limit_price=10_100))
        assert s.broker.legs_of(new) == legs and not s.broker.legs_of(old)
        assert {leg.parent_id for leg in legs} == {new.id}
        # a database written before the fix: the legs still name the replaced entry
        for leg in legs:
            s.broker.store.update(t.orders, {"id": leg.id, "parent_id": old.id})
        await s.broker.store.flush()
    async with broker_stack(tmp_path, db_url=db_url) as s:
        new_now = s.broker.cached_order(new.id)
        assert new_now is not None
        assert {leg.id for leg in s.broker.legs_of(new_now)} == {leg.id for leg in legs}
        await s.counterparty("AAPL", Side.SELL, 10_100, 3, member="MM3")  # a fresh cl_ord_id
        await settle()
        assert new_now.status == OrderStatus.FILLED
        for leg in s.broker.legs_of(new_now):  # the exits cover all five shares
            assert leg.status == OrderStatus.NEW and leg.qty == 5


async def test_cancelling_a_partly_filled_entry_sends_its_exits_for_the_filled_part(
    tmp_path: Path,
) -> None:
    async with broker_stack(tmp_path) as s:
        acct_id = await s.funded_account()
        parent = await s.broker.submit_order(acct_id, bracket(10_000))
        await s.counterparty("AAPL", Side.SELL, 10_000, 2)
        await s.broker.cancel_order(acct_id, parent.id)
        await settle()
        assert parent.status == OrderStatus.CANCELED
        legs = s.broker.legs_of(parent)
        assert len(legs) == 2
        assert all(leg.status == OrderStatus.NEW and leg.qty == 2 for leg in legs)


async def test_account_configuration_persists_and_no_shorting_refuses_short_sales(
    tmp_path: Path, db_url: str | None
) -> None:
    async with broker_stack(tmp_path, db_url=db_url) as s:
        acct_id = await s.funded_account(account_type="margin")
        await s.broker.configure(acct_id, {"no_shorting": True, "trade_confirm_email": "none"})
        with pytest.raises(BrokerError) as info:
            await s.broker.submit_order(acct_id, limit("sell", 1, 10_000))
        assert info.value.code == RiskCode.SHORT_NOT_ALLOWED
        with pytest.raises(BrokerError):  # an unknown value changes nothing
            await s.broker.configure(acct_id, {"dtbp_check": "sometimes"})
    async with broker_stack(tmp_path, db_url=db_url) as s:
        config = s.broker.configuration(acct_id)
        assert config.no_shorting and config.trade_confirm_email == "none"
        assert config.dtbp_check == "entry"
        await s.counterparty("AAPL", Side.SELL, 10_000, 2, member="MM3")
        await s.broker.submit_order(acct_id, limit("buy", 2, 10_000))
        await s.broker.submit_order(acct_id, limit("sell", 2, 11_000))  # closes: allowed
        with pytest.raises(BrokerError) as info:  # the two are committed to a sell already
            await s.broker.submit_order(acct_id, limit("sell", 1, 11_000))
        assert info.value.code == RiskCode.SHORT_NOT_ALLOWED


# --- promises of docs/broker.md that a one-line change could break --------------------------------


def lose_uncommitted_writes(store: object) -> None:
    """As in a crash from here on: what the writer has not committed yet is lost, and so is
    every later write."""
    store._pending.clear()  # type: ignore[attr-defined]
    store._queue = lambda *args, **kwargs: None  # type: ignore[attr-defined]


async def test_concurrent_submits_with_one_client_order_id_place_one_order(
    tmp_path: Path, db_url: str | None
) -> None:
    async with broker_stack(tmp_path, db_url=db_url) as s:
        acct_id = await s.funded_account()
        first, second = await asyncio.gather(
            s.broker.submit_order(acct_id, limit("buy", 1, 10_000, client_order_id="twice")),
            s.broker.submit_order(acct_id, limit("buy", 2, 9_900, client_order_id="twice")),
        )
        # either may win the race (each awaits its database lookup); both get the winner
        assert first.id == second.id and first.qty == second.qty and first.qty in (1, 2)
        assert len(s.broker.open_orders(acct_id)) == 1
        await s.broker.store.flush()  # a second row would break the unique constraint here
        assert s.broker.store.failure is None
        async with s.broker.store.engine.connect() as conn:
            rows = list(await conn.execute(select(t.orders)))
        assert [r.id for r in rows] == [first.id]


async def test_an_order_with_a_client_order_id_is_durable_before_it_is_routed(
    tmp_path: Path, db_url: str | None
) -> None:
    """A crash after the venue journaled the order but before the broker's next commit: the
    order must come back with its client order id, so that the client's retry finds it."""
    async with broker_stack(tmp_path, db_url=db_url) as s:
        acct_id = await s.funded_account()
        broker, venue_submit = s.broker, s.broker.venue.submit

        async def crash_then_submit(command: object) -> object:
            lose_uncommitted_writes(broker.store)
            return await venue_submit(command)  # type: ignore[arg-type]

        broker.venue.submit = crash_then_submit  # type: ignore[method-assign]
        placed = await broker.submit_order(acct_id, limit("buy", 1, 10_000, client_order_id="k1"))
        assert placed.status == OrderStatus.NEW
    async with broker_stack(tmp_path, db_url=db_url) as s:
        found = await s.broker.find_by_client_id(acct_id, "k1")
        assert found is not None and found.id == placed.id and found.status == OrderStatus.NEW
        retry = await s.broker.submit_order(acct_id, limit("buy", 1, 10_000, client_order_id="k1"))
        assert retry.id == placed.id
        assert [o.id for o in s.broker.open_orders(acct_id)] == [placed.id]


async def test_exit_legs_whose_entry_filled_are_sent_after_a_restart(
    tmp_path: Path, db_url: str | None
) -> None:
    async with broker_stack(tmp_path, db_url=db_url) as s:
        acct_id = await s.funded_account()
        parent = await s.broker.submit_order(acct_id, bracket(10_000))
        legs = s.broker.legs_of(parent)
        s.broker._later = lambda action: None  # type: ignore[method-assign]  # stops before sending
        await s.counterparty("AAPL", Side.SELL, 10_000, 5)
        assert parent.status == OrderStatus.FILLED
        assert {leg.status for leg in legs} == {OrderStatus.PENDING_NEW}
    async with broker_stack(tmp_path, db_url=db_url) as s:
        await settle()
        for leg in legs:
            again = s.broker.cached_order(leg.id)
            assert again is not None and again.status == OrderStatus.NEW
            assert again.venue_order_id is not None and again.qty == 5


@pytest.mark.parametrize("pending", [OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE])
async def test_a_cancel_or_replace_the_venue_never_saw_is_undone_on_restart(
    tmp_path: Path, db_url: str | None, pending: OrderStatus
) -> None:
    async with broker_stack(tmp_path, db_url=db_url) as s:
        acct_id = await s.funded_account()
        order = await s.broker.submit_order(acct_id, limit("buy", 4, 10_000))
        await s.counterparty("AAPL", Side.SELL, 10_000, 1)
        assert order.status == OrderStatus.PARTIALLY_FILLED
        # committed as pending; then the broker stopped before the venue had the request
        order.status = pending
        s.broker.store.update(t.orders, order.row())
        await s.broker.store.flush()
    async with broker_stack(tmp_path, db_url=db_url) as s:
        again = s.broker.cached_order(order.id)
        assert again is not None and again.status == OrderStatus.PARTIALLY_FILLED
        await s.broker.cancel_order(acct_id, order.id)  # and it can be cancelled now
        assert again.status == OrderStatus.CANCELED


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_tracked_trailing_stops_match_the_venues(tmp_path: Path, seed: int) -> None:
    """A differential test: after every trade of a random walk, the broker's view of each live
    trailing stop equals the venue engine's own stop."""
    rng = random.Random(seed)
    async with broker_stack(tmp_path) as s:
        acct_id = await s.funded_account()
        await s.counterparty("AAPL", Side.SELL, 10_000, 10)
        await s.broker.submit_order(acct_id, limit("buy", 10, 10_000))
        orders = [await s.broker.submit_order(acct_id, req) for req in trailing_stops()]
        engine = s.venue._pipeline.engine  # the venue's own state, read for comparison only
        price, checked = 10_000, 0
        for step in range(40):
            price = max(9_200, min(10_800, price + rng.choice((-90, -40, 0, 35, 80))))
            await s.counterparty("AAPL", Side.SELL, price, 1, member=f"S{step}")
            await s.counterparty("AAPL", Side.BUY, price, 1, member=f"B{step}")
            for order in orders:
                if order.status != OrderStatus.NEW:
                    continue
                trail = s.broker.trails.get(order.venue_order_id)
                assert trail is not None
                assert trail.stop == engine.orders[order.venue_order_id].stop_price, step
                checked += 1
        assert checked >= 40  # the walk kept stops live long enough to compare
