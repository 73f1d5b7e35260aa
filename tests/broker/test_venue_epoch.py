"""The broker across a new venue epoch: its mark records the venue id and epoch, a lost journal
is detected from it, and ``begin_epoch`` cancels what it believes open (SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from tradingfloor.broker import service
from tradingfloor.broker.oms.orders import OrderStatus
from tradingfloor.broker.oms.requests import OrderRequest
from tradingfloor.broker.runtime import BrokerRuntime, book_quotes
from tradingfloor.exchange.engine.commands import AddInstrument, NewOrder
from tradingfloor.exchange.engine.events import Event
from tradingfloor.exchange.engine.types import Side
from tradingfloor.exchange.identity import check_marks
from tradingfloor.exchange.marketdata.views import MarketDataBook
from tradingfloor.exchange.venue import Venue

from .stack import SECRET, SYMBOLS, broker_stack


def _limit(symbol: str, qty: int, price: int) -> OrderRequest:
    return OrderRequest(
        symbol, "buy", qty, order_type="limit", time_in_force="gtc", limit_price=price
    )


async def _reopen_in_new_epoch(data_dir: Path, db_url: str | None) -> tuple[Venue, BrokerRuntime]:
    """What `serve --new-epoch` does for the broker, after the journal was lost."""
    venue = Venue.open(data_dir / "venue")
    book = MarketDataBook()

    def on_events(_command: object, events: Sequence[Event]) -> None:
        for event in events:
            book.apply(event)

    venue.add_listener(on_events)
    runtime = await BrokerRuntime.open(
        venue,
        db_url=db_url or f"sqlite+aiosqlite:///{data_dir / 'broker.db'}",
        secret=SECRET,
        quotes=book_quotes(book),
    )
    mark = runtime.broker.venue_mark()
    bad = check_marks(venue.identity, venue.last_event_seq, [mark])
    assert bad == [mark]  # the lost journal is detected from the broker's mark
    identity = venue.start_new_epoch(actor="ops@test", overridden=bad)
    await runtime.broker.begin_epoch(identity)
    venue.replay_history()
    runtime.after_replay()
    await venue.start(tick_interval=None)
    for symbol in SYMBOLS:
        await venue.submit(AddInstrument(symbol=symbol))
    await runtime.start()
    return venue, runtime


async def test_new_epoch_cancels_open_orders_and_legs_and_releases_holds(
    tmp_path: Path, db_url: str | None
) -> None:
    async with broker_stack(tmp_path, db_url=db_url) as stack:
        account = await stack.funded_account()
        simple = await stack.broker.submit_order(
            account,
            OrderRequest(
                "AAPL", "buy", 10, order_type="limit", time_in_force="gtc", limit_price=18000
            ),
        )
        bracket = await stack.broker.submit_order(
            account,
            OrderRequest(
                "MSFT",
                "buy",
                5,
                order_type="limit",
                time_in_force="gtc",
                limit_price=30000,
                order_class="bracket",
                take_profit_limit=31000,
                stop_loss_stop=29000,
            ),
        )
        legs = [leg.id for leg in stack.broker.legs_of(bracket)]
        assert len(legs) == 2
        assert stack.broker.accounts[account].held > 0
        await stack.broker.adopt_identity(stack.venue.identity)  # what serve does at start
    shutil.rmtree(tmp_path / "venue")
    venue, runtime = await _reopen_in_new_epoch(tmp_path, db_url)
    try:
        broker = runtime.broker
        assert broker.accounts[account].held == 0
        assert broker.open_orders(account) == []
        for order_id in [simple.id, bracket.id, *legs]:
            order = await broker.find_order(account, order_id)
            assert order is not None
            assert order.status == OrderStatus.CANCELED
            assert order.reject_reason is not None and "new epoch (2)" in order.reject_reason
        assert broker.venue_mark().epoch == 2
    finally:
        await runtime.stop()
        await venue.stop()
    # durable: a restart finds the same, and a start that fits the epoch is accepted
    async with broker_stack(tmp_path, db_url=db_url) as stack:
        assert stack.broker.open_orders(account) == []
        mark = stack.broker.venue_mark()
        assert (mark.venue_id, mark.epoch) == (stack.venue.identity.venue_id, 2)
        assert check_marks(stack.venue.identity, stack.venue.last_event_seq, [mark]) == []


async def test_an_old_epochs_venue_order_id_never_steals_a_new_orders_fills(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Venue order ids start again at 1 in a new journal. Forgetting an old closed order (the
    closed-order cache is full) must not forget the new order that has the same venue id."""
    monkeypatch.setattr(service, "CLOSED_CACHE", 1)
    async with broker_stack(tmp_path) as stack:
        account = await stack.funded_account()
        old = await stack.broker.submit_order(
            account,
            OrderRequest(
                "AAPL", "buy", 10, order_type="limit", time_in_force="gtc", limit_price=18000
            ),
        )
        await stack.broker.adopt_identity(stack.venue.identity)
    shutil.rmtree(tmp_path / "venue")
    venue, runtime = await _reopen_in_new_epoch(tmp_path, None)
    try:
        broker = runtime.broker
        new = await broker.submit_order(
            account,
            OrderRequest(
                "AAPL", "buy", 10, order_type="limit", time_in_force="gtc", limit_price=18000
            ),
        )
        assert new.venue_order_id == old.venue_order_id  # the id is reused by the new journal
        other = await broker.submit_order(
            account,
            OrderRequest(
                "MSFT", "buy", 1, order_type="limit", time_in_force="gtc", limit_price=30000
            ),
        )
        await broker.cancel_order(account, other.id)  # closing it pushes the old order out
        await venue.submit(
            NewOrder(
                symbol="AAPL", member="MM", cl_ord_id="mm-1", side=Side.SELL, qty=10, price=18000
            )
        )
        filled = await broker.find_order(account, new.id)
        assert filled is not None and filled.status == OrderStatus.FILLED
    finally:
        await runtime.stop()
        await venue.stop()
