"""The participants' checkpoint: restoring it and replaying the journal after it gives the
participants a replay of the whole journal gives (the restart behaviour without checkpoints),
and bytes that cannot be used are refused without touching the crowd."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from enum import Enum

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradingfloor.exchange.checkpoint import CheckpointError
from tradingfloor.exchange.engine.commands import AddInstrument
from tradingfloor.exchange.engine.types import Side
from tradingfloor.sim.checkpoint_state import (
    SIM_STATE_VERSION,
    MarketRecord,
    OrderRecord,
    ParticipantRecord,
    SimState,
    SymbolRecord,
    decode_sim_state,
    encode_sim_state,
)
from tradingfloor.sim.crowd import Crowd
from tradingfloor.sim.participant import NS_PER_S
from tradingfloor.sim.simulator import SIM_START_NS

from .checkpoint_helpers import (
    AAPL,
    OPERATIONS,
    SCHEDULING,
    XYZ,
    crowd_for,
    engine_after,
    first_difference,
    replay,
    state_of,
    trading_run,
)

NEXT_TURNS = 60

operations = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=40_000),  # offset in ms
        st.sampled_from(OPERATIONS),
        st.integers(min_value=0, max_value=40),
    ),
    max_size=8,
)


def assert_same(a: Crowd, c: Crowd, skip: frozenset[str] = frozenset()) -> None:
    difference = first_difference(state_of(a, skip), state_of(c, skip))
    assert difference is None, difference


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    two_symbols=st.booleans(),
    seconds=st.integers(min_value=5, max_value=40),
    ops=operations,
    k_permille=st.integers(min_value=0, max_value=1_000),
    lost_permille=st.one_of(st.just(0), st.integers(min_value=0, max_value=1_000)),
)
def test_restore_and_tail_equal_a_full_replay(
    seed: int,
    two_symbols: bool,
    seconds: int,
    ops: list[tuple[int, str, int]],
    k_permille: int,
    lost_permille: int,
) -> None:
    """A trading crowd checkpoints after k commands (mid-turn too: orders on their way); the
    journal keeps m >= k commands (a crash loses the rest). A replays all m into fresh
    participants; C restores the checkpoint and replays commands k+1..m. A and C keep the same
    state, and from the same clock send the same commands turn after turn."""
    listed: tuple[AddInstrument, ...] = (AAPL, XYZ) if two_symbols else (AAPL,)
    run = trading_run(listed, seed, seconds * NS_PER_S, ops, lambda _k: True)
    n = len(run.steps)
    k = n * k_permille // 1_000
    m = n - (n - k) * lost_permille // 1_000
    journal = run.steps[:m]

    a = crowd_for(listed, seed)
    replay(a, journal)
    c = crowd_for(listed, seed)
    c.restore_checkpoint(run.checkpoints[k])
    replay(c, journal[k:])
    assert_same(a, c, SCHEDULING)  # turn times are set by begin(), below
    assert a.checkpoint() == c.checkpoint()

    now = (journal[-1].ts if journal else SIM_START_NS) + NS_PER_S
    a.begin(now)
    c.begin(now)
    assert_same(a, c)  # the generators included
    engine = engine_after(journal)
    seq = len(journal)
    for _ in range(NEXT_TURNS):
        wake = a.next_wake_ns()
        assert c.next_wake_ns() == wake
        i = a.pop_due(wake)
        assert i is not None and c.pop_due(wake) == i
        sent = a.act(i, wake)
        assert c.act(i, wake) == sent
        for command in sent:
            seq += 1
            events = engine.apply(seq, wake, command)
            for crowd in (a, c):
                crowd.note_command(command)
                crowd.on_events(events, wake)
    assert_same(a, c)
    assert a.errors == c.errors == 0


def test_a_checkpoint_restores_to_the_same_bytes() -> None:
    _k, checkpoint = trading_run(
        (AAPL, XYZ), 7, 30 * NS_PER_S, [(9_000, "kill", 3)]
    ).last_checkpoint()
    c = crowd_for((AAPL, XYZ), 7)
    c.restore_checkpoint(checkpoint)
    assert c.checkpoint() == checkpoint
    state = decode_sim_state(checkpoint)
    assert sum(len(p.orders) for p in state.participants) > 5
    assert any(p.position for p in state.participants)
    assert state.market.symbols[0].bids and state.market.symbols[0].asks


# --- every field of the record is restored and compared -----------------------------------------


def perturbed(value: object) -> object:
    """Some other value of the same type."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, Decimal):
        return value * 2
    if isinstance(value, Enum):
        return next(v for v in type(value) if v != value)
    if isinstance(value, dict):
        return {**value, "ZZZ": 1}
    if isinstance(value, list):
        if value and isinstance(value[0], msgspec.Struct):
            return value[:-1]
        top = max((price for price, _qty in value), default=0)
        return [*value, (top + 1, 7)]
    raise AssertionError(f"no perturbation for {value!r}")


def variants(record: msgspec.Struct, path: str) -> list[tuple[str, msgspec.Struct]]:
    """``record`` with one field changed, for every field at every depth (lists of records
    also lose their last item; in the first item that has orders, position and book levels)."""
    out: list[tuple[str, msgspec.Struct]] = []
    for name in record.__struct_fields__:
        value = getattr(record, name)
        where = f"{path}.{name}"
        if not isinstance(value, msgspec.Struct):
            out.append((where, msgspec.structs.replace(record, **{name: perturbed(value)})))
        if isinstance(value, list) and value and isinstance(value[0], msgspec.Struct):
            pick = next(
                (i for i, item in enumerate(value) if getattr(item, "orders", [1]) != []), 0
            )
            for inner_where, inner in variants(value[pick], f"{where}[{pick}]"):
                changed = [*value[:pick], inner, *value[pick + 1 :]]
                out.append((inner_where, msgspec.structs.replace(record, **{name: changed})))
        elif isinstance(value, msgspec.Struct):
            for inner_where, inner in variants(value, where):
                out.append((inner_where, msgspec.structs.replace(record, **{name: inner})))
    return out


def test_every_recorded_field_is_restored_and_compared() -> None:
    """The property's comparison sees a change in any field of the record: a field restored
    wrongly or left out fails it (or the record is refused)."""
    listed = (AAPL, XYZ)
    run = trading_run(listed, 11, 25 * NS_PER_S, [(20_000, "kill", 2)])
    a = crowd_for(listed, 11)
    replay(a, run.steps)
    expected = state_of(a, SCHEDULING)
    state = decode_sim_state(run.last_checkpoint()[1])
    assert any(p.killed for p in state.participants)
    assert any(o.cum_qty for p in state.participants for o in p.orders)
    found = variants(state, "state")
    changed_fields = {
        (where.rsplit(".", 2)[-2].split("[")[0], where.rsplit(".", 1)[-1]) for where, _s in found
    }
    records = {
        "state": SimState,
        "market": MarketRecord,
        "symbols": SymbolRecord,
        "participants": ParticipantRecord,
        "orders": OrderRecord,
    }
    every_field = {(k, f) for k, r in records.items() for f in r.__struct_fields__}
    assert every_field - {("market", "symbols"), ("state", "market")} <= changed_fields
    for where, changed in found:
        assert isinstance(changed, SimState)
        c = crowd_for(listed, 11)
        try:
            c.restore_checkpoint(encode_sim_state(changed))
        except CheckpointError:
            assert state_of(c) == state_of(crowd_for(listed, 11)), where
            continue
        assert state_of(c, SCHEDULING) != expected, f"{where} is not restored or not compared"


# --- unusable bytes ----------------------------------------------------------------------------


def refused(data: bytes, listed: tuple[AddInstrument, ...] = (AAPL,), seed: int = 1) -> None:
    """``data`` raises CheckpointError and leaves a fresh crowd exactly as fresh."""
    crowd = crowd_for(listed, seed)
    before = state_of(crowd)
    with pytest.raises(CheckpointError):
        crowd.restore_checkpoint(data)
    assert state_of(crowd) == before


@pytest.fixture(scope="module")
def good() -> bytes:
    return trading_run((AAPL,), 1, 20 * NS_PER_S, []).last_checkpoint()[1]


def test_truncated_bytes_are_refused(good: bytes) -> None:
    size = len(good)
    ends = {*range(64), *range(64, size, 31), *range(size - 64, size)}
    for end in sorted(ends):
        refused(good[:end])


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_garbage_is_refused(data: bytes) -> None:
    refused(data)


def edit(good: bytes, change: Callable[[SimState], SimState]) -> bytes:
    return encode_sim_state(change(decode_sim_state(good)))


def test_other_versions_and_other_crowds_are_refused(good: bytes) -> None:
    refused(edit(good, lambda s: msgspec.structs.replace(s, version=SIM_STATE_VERSION + 1)))
    refused(msgspec.msgpack.encode({"version": SIM_STATE_VERSION + 1, "other": "layout"}))
    refused(msgspec.msgpack.encode({"version": "1"}))
    refused(msgspec.msgpack.encode([SIM_STATE_VERSION]))
    refused(good, (AAPL, XYZ))  # another crowd: more members
    refused(good, (XYZ,))  # other members
    reordered = edit(good, lambda s: msgspec.structs.replace(s, participants=s.participants[::-1]))
    refused(reordered)
    crowd = crowd_for((AAPL,), 2)  # another seed: the history's state does not depend on it
    crowd.restore_checkpoint(good)


def with_participant(index: int, **changes: object) -> Callable[[SimState], SimState]:
    def change(s: SimState) -> SimState:
        people = list(s.participants)
        people[index] = msgspec.structs.replace(people[index], **changes)
        return msgspec.structs.replace(s, participants=people)

    return change


def with_symbol(**changes: object) -> Callable[[SimState], SimState]:
    def change(s: SimState) -> SimState:
        market = s.market
        first = msgspec.structs.replace(market.symbols[0], **changes)
        symbols = [first, *market.symbols[1:]]
        return msgspec.structs.replace(s, market=msgspec.structs.replace(market, symbols=symbols))

    return change


def test_inconsistent_records_are_refused(good: bytes) -> None:
    state = decode_sim_state(good)
    i, holder = next((i, p) for i, p in enumerate(state.participants) if len(p.orders) >= 2)
    first, second = holder.orders[0], holder.orders[1]
    bad = [
        with_participant(i, orders=[second, first]),
        with_participant(i, orders=[first, first]),
        with_participant(i, orders=[msgspec.structs.replace(first, price=0)]),
        with_participant(i, orders=[msgspec.structs.replace(first, leaves=-1)]),
        with_participant(i, orders=[msgspec.structs.replace(first, cl_ord_id="")]),
        with_participant(i, fills=-1),
        with_participant(i, last_cl_ord_number=-5),
        with_participant(1, member=state.participants[0].member),
        with_symbol(lot_size=0),
        with_symbol(tick_size=Decimal("NaN")),
        with_symbol(tick_size=Decimal(0)),
        with_symbol(band_lo=0),
        with_symbol(band_lo=10, band_hi=9),
        with_symbol(bids=[(10, 5), (9, 5)]),
        with_symbol(bids=[(10, 5), (10, 6)]),
        with_symbol(asks=[(10, 0)]),
        with_symbol(volume=-1),
        lambda s: msgspec.structs.replace(
            s, market=msgspec.structs.replace(s.market, symbols=s.market.symbols * 2)
        ),
    ]
    for change in bad:
        refused(edit(good, change))
    assert first.side in (Side.BUY, Side.SELL)


def test_restoring_into_a_crowd_that_saw_events_is_a_programming_error(good: bytes) -> None:
    crowd = crowd_for((AAPL,), 1)
    crowd.restore_checkpoint(good)
    with pytest.raises(RuntimeError):
        crowd.restore_checkpoint(good)
