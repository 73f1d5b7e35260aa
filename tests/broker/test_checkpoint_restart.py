"""A broker restarted from the venue's projection checkpoint (its market view and market history
restored, only the journal after the checkpoint replayed) answers as before the restart and as
after a full replay: bars from the data API, positions, and a live trailing stop that keeps
trailing with the venue's own stop."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from broker.stack import SECRET, SYMBOLS, Stack
from tradingfloor.broker.identity.passwords import make_hasher
from tradingfloor.broker.identity.roles import Role
from tradingfloor.broker.oms.orders import OrderStatus
from tradingfloor.broker.oms.requests import OrderRequest
from tradingfloor.broker.runtime import BrokerRuntime, book_quotes
from tradingfloor.exchange.engine.commands import AddInstrument
from tradingfloor.exchange.engine.types import Side
from tradingfloor.exchange.venue import Venue


@contextlib.asynccontextmanager
async def checkpointed_stack(data_dir: Path, *, full: bool = False) -> AsyncIterator[Stack]:
    """The venue with only the broker's listeners (both checkpointed), snapshotting often."""
    venue = Venue.open(data_dir / "venue", snapshot_every=7)
    holder: dict[str, Any] = {}
    runtime = await BrokerRuntime.open(
        venue,
        db_url=f"sqlite+aiosqlite:///{data_dir / 'broker.db'}",
        secret=SECRET,
        quotes=lambda symbol: book_quotes(holder["runtime"].history.book)(symbol),
        hasher=make_hasher(time_cost=1, memory_cost_kib=8, parallelism=1),
    )
    holder["runtime"] = runtime
    venue.replay_history(horizon_event_seq=runtime.broker.venue_mark().seq, full=full)
    runtime.after_replay()
    missing = venue.missing_instruments(AddInstrument(symbol=s) for s in SYMBOLS)
    await venue.start(tick_interval=None)
    for command in missing:
        await venue.submit(command)
    await runtime.start()
    try:
        yield Stack(venue, runtime, runtime.history.book, data_dir)
    finally:
        await runtime.stop()
        await venue.stop()


async def _observe(s: Stack, headers: dict[str, str], order_id: str) -> dict[str, Any]:
    async with s.client() as client:
        bars = await client.get(
            "/v2/stocks/AAPL/bars", params={"timeframe": "1Min"}, headers=headers
        )
        trades = await client.get("/v2/stocks/AAPL/trades", headers=headers)
        positions = await client.get("/v2/positions", headers=headers)
        order = await client.get(f"/v2/orders/{order_id}", headers=headers)
    for response in (bars, trades, positions, order):
        assert response.status_code == 200, response.text
    placed = order.json()
    return {
        "bars": bars.json()["bars"],
        "trades": trades.json()["trades"],
        "positions": [
            {k: p[k] for k in ("symbol", "qty", "avg_entry_price", "cost_basis")}
            for p in positions.json()
        ],
        "order": {k: placed[k] for k in ("status", "hwm", "stop_price", "trail_price")},
        "last_price": dict(s.broker.last_price),
        "instruments": sorted(s.broker.instruments),
    }


async def _walk(s: Stack, prices: list[int], tag: str) -> None:
    for i, price in enumerate(prices):
        await s.counterparty("AAPL", Side.SELL, price, 1, member=f"S{tag}{i}")
        await s.counterparty("AAPL", Side.BUY, price, 1, member=f"B{tag}{i}")


async def test_a_restart_from_a_checkpoint_answers_as_before_and_as_a_full_replay(
    tmp_path: Path,
) -> None:
    async with checkpointed_stack(tmp_path) as s:
        account = await s.funded_account(5_000_000, account_type="margin")
        key, secret = await s.api_key(Role.TRADER, account_id=account)
        headers = {"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret}
        await s.counterparty("AAPL", Side.SELL, 10_000, 10)
        request = OrderRequest(
            symbol="AAPL", side="buy", qty=10, order_type="limit", limit_price=10_000
        )
        await s.broker.submit_order(account, request)
        stop = OrderRequest(
            symbol="AAPL",
            side="sell",
            qty=5,
            order_type="trailing_stop",
            time_in_force="gtc",
            trail_price=300,
        )
        trailing = await s.broker.submit_order(account, stop)
        await _walk(s, [10_050, 10_120, 10_090, 10_200, 10_150, 10_180], "a")
        assert s.venue.stats.checkpoints >= 2
        before = await _observe(s, headers, trailing.id)
    assert before["order"]["status"] == "new" and before["order"]["hwm"] == "102.00"
    assert before["positions"][0]["qty"] == "10"

    async with checkpointed_stack(tmp_path) as s:
        assert s.venue.replay_start_seq > 0  # restored from a checkpoint, not the first record
        assert await _observe(s, headers, trailing.id) == before
        await _walk(s, [10_260, 10_240], "b")  # the stop keeps trailing, as the venue's does
        order = s.broker.cached_order(trailing.id)
        assert order is not None and order.status == OrderStatus.NEW
        followed = s.broker.trails.get(order.venue_order_id)
        assert followed is not None and followed.ref == 10_260
        venue_order = s.venue._pipeline.engine.orders[order.venue_order_id]  # read to compare
        assert followed.stop == venue_order.stop_price == 9_960
        after = await _observe(s, headers, trailing.id)

    async with checkpointed_stack(tmp_path, full=True) as s:
        assert s.venue.replay_start_seq == 0
        assert await _observe(s, headers, trailing.id) == after
