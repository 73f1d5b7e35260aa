"""The shared limits and the venue's intake: nothing outside them can fail a journal batch."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradingfloor.core import limits
from tradingfloor.exchange.engine import Engine
from tradingfloor.exchange.engine.commands import (
    AddInstrument,
    CancelOrder,
    Command,
    Halt,
    NewOrder,
    ReplaceOrder,
    SetPriceBand,
    SetReferencePrice,
)
from tradingfloor.exchange.engine.events import Accepted, Rejected
from tradingfloor.exchange.engine.reasons import Reject
from tradingfloor.exchange.engine.types import OrdType, Side, TimeInForce
from tradingfloor.exchange.intake import command_problem
from tradingfloor.exchange.journal import JournalRecord, encode_record
from tradingfloor.exchange.venue import CommandOutOfRangeError, Venue

WIDE = st.integers(-(2**80), 2**80)
_NEW_ORDER_INTS = (
    "qty",
    "price",
    "stop_price",
    "expire_ts",
    "display_qty",
    "peg_offset",
    "trail_amount",
    "trail_bps",
    "limit_offset",
    "min_qty",
)


def test_the_limits_fit_a_signed_64_bit_integer() -> None:
    assert limits.MAX_ORDER_QTY * limits.MAX_PRICE_TICKS <= limits.INT64_MAX
    assert limits.MAX_CASH_MINOR + limits.MAX_NOTIONAL_MINOR <= limits.INT64_MAX
    assert limits.fits_int64(limits.INT64_MAX) and not limits.fits_int64(limits.INT64_MAX + 1)
    assert limits.fits_int64(limits.INT64_MIN) and not limits.fits_int64(limits.INT64_MIN - 1)


def _stores_everywhere(command: Command) -> bool:
    """The journal can encode it and every integer fits SQLite's INTEGER."""
    try:
        encode_record(JournalRecord(seq=1, ts=1, command=command))
    except (OverflowError, msgspec.EncodeError):
        return False
    conn = sqlite3.connect(":memory:")
    try:
        for value in msgspec.structs.astuple(command):
            if isinstance(value, int):
                conn.execute("select ?", (value,))
    except OverflowError:
        return False
    finally:
        conn.close()
    return True


@settings(max_examples=300)
@given(st.sampled_from(_NEW_ORDER_INTS), WIDE)
def test_a_new_order_passes_intake_exactly_when_every_store_can_hold_it(
    field: str, value: int
) -> None:
    order = NewOrder(symbol="AAPL", member="M1", cl_ord_id="c", side=Side.BUY, qty=1, price=1)
    order = msgspec.structs.replace(order, **{field: value})
    problem = command_problem(order)
    assert (problem is None) == _stores_everywhere(order), (field, value, problem)
    if problem is not None:
        assert field in problem


@settings(max_examples=200)
@given(
    st.sampled_from(
        [
            lambda v: ReplaceOrder(symbol="A", member="M", cl_ord_id="r", qty=v),
            lambda v: ReplaceOrder(symbol="A", member="M", cl_ord_id="r", qty=1, price=v),
            lambda v: CancelOrder(symbol="A", member="M", order_id=v),
            lambda v: SetReferencePrice(symbol="A", price=v),
            lambda v: SetPriceBand(symbol="A", band_bps=1, pause_ns=v),
            lambda v: AddInstrument(symbol="A", reference_price=v),
        ]
    ),
    WIDE,
)
def test_every_command_passes_intake_exactly_when_every_store_can_hold_it(
    make: object, value: int
) -> None:
    assert callable(make)
    command = make(value)
    assert (command_problem(command) is None) == _stores_everywhere(command)


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (NewOrder(symbol="A" * 17, member="M", cl_ord_id="c", side=Side.BUY, qty=1), "symbol"),
        (NewOrder(symbol="A", member="M", cl_ord_id="c" * 129, side=Side.BUY, qty=1), "cl_ord_id"),
        (NewOrder(symbol="A", member="M" * 65, cl_ord_id="c", side=Side.BUY, qty=1), "member"),
        (Halt(symbol="A", reason="r" * 257), "reason"),
        (CancelOrder(symbol="A", member="M", orig_cl_ord_id="o" * 129), "orig_cl_ord_id"),
    ],
)
def test_text_beyond_its_limit_is_refused(command: Command, field: str) -> None:
    problem = command_problem(command)
    assert problem is not None and field in problem


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"qty": limits.MAX_ORDER_QTY + 1}, Reject.INVALID_QUANTITY),
        ({"qty": 2**63 - 1}, Reject.INVALID_QUANTITY),
        ({"price": limits.MAX_PRICE_TICKS}, Reject.INVALID_PRICE),
        (
            {"ord_type": OrdType.TRAILING_STOP, "price": 0, "trail_amount": 2**62},
            Reject.INVALID_TRAILING,
        ),
        (
            {"ord_type": OrdType.TRAILING_STOP, "price": 0, "trail_bps": 10_000},
            Reject.INVALID_TRAILING,
        ),
        (
            {
                "ord_type": OrdType.TRAILING_STOP_LIMIT,
                "price": 0,
                "trail_amount": 5,
                "limit_offset": limits.MAX_PEG_OFFSET_TICKS + 1,
            },
            Reject.INVALID_TRAILING,
        ),
        ({"display_qty": 2**62}, Reject.INVALID_DISPLAY_QTY),
        ({"min_qty": 2**62}, Reject.INVALID_MIN_QTY),
    ],
)
def test_the_engine_rejects_journal_sized_values_beyond_the_limits(
    changes: dict[str, object], code: Reject
) -> None:
    engine = Engine()
    engine.apply(1, 1, AddInstrument(symbol="AAPL", reference_price=10_000))
    order = NewOrder(
        symbol="AAPL",
        member="M1",
        cl_ord_id="c",
        side=Side.SELL,
        qty=10,
        price=10_000,
        tif=TimeInForce.GTC,
    )
    events = engine.apply(2, 2, msgspec.structs.replace(order, **changes))
    assert [type(e) for e in events] == [Rejected]
    assert events[0].code == code  # type: ignore[union-attr]


async def test_the_venue_refuses_an_unstorable_command_and_goes_on(tmp_path: Path) -> None:
    venue = Venue.open(tmp_path)
    venue.replay_history()
    await venue.start(tick_interval=None)
    try:
        await venue.submit(AddInstrument(symbol="AAPL"))
        before = venue.last_seq
        huge = NewOrder(
            symbol="AAPL", member="M1", cl_ord_id="big", side=Side.BUY, qty=10**20, price=100
        )
        with pytest.raises(CommandOutOfRangeError, match="qty"):
            venue.submit_nowait(huge)
        assert venue.running and venue.queued == 0 and venue.last_seq == before
        ok = NewOrder(symbol="AAPL", member="M1", cl_ord_id="ok", side=Side.BUY, qty=10, price=100)
        events = await venue.submit(ok)
        assert isinstance(events[0], Accepted)
        assert venue.failure is None
    finally:
        await venue.stop()
