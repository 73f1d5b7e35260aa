"""Property: whatever customers and the venue do, every stored order event has an actor, every
order's history starts with its submission by the customer who placed it, requests are
attributed to their requesters and the venue's events to the system."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from broker.stack import broker_stack
from tradingfloor.broker.errors import BrokerError
from tradingfloor.broker.oms.requests import OrderRequest, ReplaceRequest
from tradingfloor.core.actor import SYSTEM_PRINCIPAL, Actor, CredentialKind
from tradingfloor.exchange.engine.types import Side
from tradingfloor.storage import tables as t

ACTORS = (
    Actor("user-a", "trader", CredentialKind.TOKEN, "jti-a", "192.0.2.1", 40001, "ra"),
    Actor("user-b", "broker", CredentialKind.API_KEY, "key-b", "2001:db8::2", 40002, "rb"),
)
#: Kinds a request makes, and kinds only the venue (a system actor) makes.
REQUESTED = {"submitted", "cancel_requested", "replace_requested"}
VENUE_ONLY = {"new", "fill", "partial_fill", "replaced", "order_cancel_rejected"}

prices = st.integers(9_990, 10_010)
actor_index = st.integers(0, len(ACTORS) - 1)
operations = st.one_of(
    st.tuples(
        st.just("order"), st.sampled_from(["buy", "sell"]), st.integers(1, 5), prices, actor_index
    ),
    st.tuples(st.just("market"), st.sampled_from(["buy", "sell"]), st.integers(1, 5), actor_index),
    st.tuples(st.just("cancel"), st.integers(0, 20), actor_index),
    st.tuples(st.just("replace"), st.integers(0, 20), prices, actor_index),
    st.tuples(st.just("cancel_all"), actor_index),
    st.tuples(st.just("venue"), st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 5), prices),
)


async def _run(data_dir: Path, ops: list[tuple[Any, ...]]) -> tuple[list[Any], set[str]]:
    async with broker_stack(data_dir) as s:
        account = await s.funded_account(100_000_000, account_type="margin")
        broker = s.broker
        placed: list[str] = []
        for op in ops:
            try:
                if op[0] == "order":
                    _, side, qty, price, who = op
                    request = OrderRequest(
                        symbol="AAPL", side=side, qty=qty, order_type="limit", limit_price=price
                    )
                    placed.append(
                        (await broker.submit_order(account, request, actor=ACTORS[who])).id
                    )
                elif op[0] == "market":
                    _, side, qty, who = op
                    request = OrderRequest(symbol="AAPL", side=side, qty=qty)
                    placed.append(
                        (await broker.submit_order(account, request, actor=ACTORS[who])).id
                    )
                elif op[0] == "cancel" and placed:
                    _, n, who = op
                    await broker.cancel_order(account, placed[n % len(placed)], actor=ACTORS[who])
                elif op[0] == "replace" and placed:
                    _, n, price, who = op
                    change = ReplaceRequest(limit_price=price)
                    new = await broker.replace_order(
                        account, placed[n % len(placed)], change, actor=ACTORS[who]
                    )
                    placed.append(new.id)
                elif op[0] == "cancel_all":
                    await broker.cancel_all(account, actor=ACTORS[op[1]])
                elif op[0] == "venue":
                    _, side, qty, price = op
                    await s.counterparty("AAPL", side, price, qty)
            except BrokerError:
                pass  # refused requests change nothing (and record nothing)
            await asyncio.sleep(0)  # let the broker's follow-ups (exit legs, cancels) run
        await broker.store.flush()
        async with broker.store.engine.connect() as conn:
            events = list(await conn.execute(select(t.order_events).order_by(t.order_events.c.seq)))
            orders = set((await conn.execute(select(t.orders.c.id))).scalars())
        return events, orders


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operations, min_size=1, max_size=12))
def test_every_order_event_has_an_actor(ops: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        events, orders = asyncio.run(_run(Path(tmp), ops))
    seqs = [e.seq for e in events]
    assert len(set(seqs)) == len(seqs)
    by_order: dict[str, list[Any]] = {}
    for event in events:
        actor = Actor.from_row(event._mapping)  # every fact present (Actor checks them)
        by_order.setdefault(event.order_id, []).append(event)
        if event.kind in REQUESTED:
            assert actor in ACTORS, (event.kind, actor)
        if event.kind in VENUE_ONLY:
            assert actor.principal == SYSTEM_PRINCIPAL and actor.credential_id == "venue:TFEX"
    assert set(by_order) == orders
    for history in by_order.values():
        assert history[0].kind == "submitted"
