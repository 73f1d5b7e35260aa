"""Invariants of any simulated run (hypothesis over seeds and instruments)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradingfloor.exchange.engine.commands import AddInstrument, Command, NewOrder, ReplaceOrder
from tradingfloor.exchange.engine.events import Event, Rejected, Trade
from tradingfloor.exchange.engine.reasons import Reject
from tradingfloor.sim.participant import NS_PER_S
from tradingfloor.sim.population import CrowdConfig, build_participants
from tradingfloor.sim.simulator import Simulation

DURATION_NS = 20 * NS_PER_S


def band(instrument: AddInstrument) -> tuple[int, int]:
    width = instrument.reference_price * instrument.band_bps // 10_000
    return instrument.reference_price - width, instrument.reference_price + width


instruments = st.tuples(
    st.integers(min_value=500, max_value=200_000),  # reference price in ticks
    st.integers(min_value=30, max_value=2_000),  # band in bps
    st.sampled_from([1, 1, 10, 100]),  # lot size
).map(
    lambda t: (
        AddInstrument(symbol="AAPL", reference_price=19_000, band_bps=1_000),
        AddInstrument(symbol="XYZ", reference_price=t[0], band_bps=t[1], lot_size=t[2]),
    )
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32), listed=instruments)
def test_any_run_keeps_the_participants_invariants(
    seed: int, listed: tuple[AddInstrument, ...]
) -> None:
    by_symbol = {i.symbol: i for i in listed}
    used: dict[str, set[str]] = defaultdict(set)
    horizon = 15 * NS_PER_S
    participants = build_participants(listed, seed, CrowdConfig(vwap_horizon_ns=horizon))
    sim: Simulation

    def check(command: Command, events: Sequence[Event]) -> None:
        if isinstance(command, NewOrder | ReplaceOrder):
            inst = by_symbol[command.symbol]
            lo, hi = band(inst)
            assert command.qty > 0 and command.qty % inst.lot_size == 0, command
            assert lo <= command.price <= hi, (command, lo, hi)
            assert command.cl_ord_id not in used[command.member], command
            used[command.member].add(command.cl_ord_id)
        for ev in events:
            assert not (isinstance(ev, Rejected) and ev.code == Reject.DUPLICATE_CL_ORD_ID), ev
            if isinstance(ev, Trade):
                assert ev.maker_member != ev.taker_member, ev  # no self-trades
        for symbol in by_symbol.keys() & sim.engine.instruments.keys():
            bid, _bs, ask, _as = sim.engine.l1(symbol)
            assert not (bid and ask and bid >= ask), (symbol, bid, ask)

    sim = Simulation(listed, participants, duration_ns=DURATION_NS, seed=seed, observer=check)
    summary = sim.run()
    assert summary.orders_submitted > 0
    # Trades only happen between participants: positions and cash net out to zero.
    for symbol in by_symbol:
        assert sum(p.position.get(symbol, 0) for p in participants) == 0
        assert sum(p.cash.get(symbol, 0) for p in participants) == 0
