"""Behaviour of each simulated participant against a real engine (or a synthetic market)."""

from __future__ import annotations

import pytest

from sim.helpers import AAPL, Bench, level, listed, trade
from tradingfloor.exchange.engine.commands import (
    AddInstrument,
    CancelOrder,
    Command,
    Halt,
    NewOrder,
    ReplaceOrder,
)
from tradingfloor.exchange.engine.events import Accepted, Rejected
from tradingfloor.exchange.engine.types import Side, TimeInForce
from tradingfloor.sim.crowd import Crowd, DuplicateMemberError
from tradingfloor.sim.market import MarketView
from tradingfloor.sim.market_maker import MarketMaker, MarketMakerParams
from tradingfloor.sim.momentum import MomentumParams, MomentumTrader
from tradingfloor.sim.noise import MIN_SIDE_PCT, NoiseParams, NoiseTrader
from tradingfloor.sim.participant import NS_PER_S, participant_seed
from tradingfloor.sim.simulator import SIM_START_NS, Simulation
from tradingfloor.sim.vwap import ParentOrder, VwapParams, VwapSlicer, profile

T0 = SIM_START_NS


def new_orders(commands: list[Command]) -> list[NewOrder]:
    return [c for c in commands if isinstance(c, NewOrder)]


# --- market maker ------------------------------------------------------------------------------


def test_market_maker_quotes_two_sided_levels_inside_the_band() -> None:
    mm = MarketMaker("SIM-MM1-AAPL", "AAPL", seed=1)
    bench = Bench([mm])
    sent = new_orders(bench.turn(mm))
    assert len(sent) == 2 * mm.params.levels
    assert all(o.member == mm.member and o.qty > 0 and 17_100 <= o.price <= 20_900 for o in sent)
    bids, asks = bench.engine.l2("AAPL")
    assert len(bids) == len(asks) == mm.params.levels
    assert bids[0][0] < 19_000 < asks[0][0]  # around the reference, nothing traded yet
    assert bids[0][0] < asks[0][0]
    assert len(mm.live_orders()) == 2 * mm.params.levels


def test_market_maker_requotes_after_a_fill() -> None:
    mm = MarketMaker("SIM-MM1-AAPL", "AAPL", seed=1)
    bench = Bench([mm])
    bench.turn(mm)
    bench.ts += NS_PER_S // 10
    old_bid = bench.engine.l2("AAPL")[0][0][0]
    best_ask, best_ask_qty, _n = bench.engine.l2("AAPL")[1][0]
    bench.take(Side.BUY, best_ask_qty, best_ask)  # lifts the whole best ask
    assert mm.position["AAPL"] == -best_ask_qty
    assert mm.next_wake_ns <= bench.ts + mm.params.reaction_ns  # asks for a quick turn
    commands = bench.turn(mm, mm.next_wake_ns)
    assert commands and all(isinstance(c, NewOrder | ReplaceOrder | CancelOrder) for c in commands)
    bids, asks = bench.engine.l2("AAPL")
    assert len(asks) == mm.params.levels and len(bids) == mm.params.levels
    assert bids[0][0] < asks[0][0]
    assert bids[0][0] > old_bid  # quotes moved up toward the trade at the old ask


def test_market_maker_drops_levels_outside_a_narrow_band() -> None:
    narrow = AddInstrument(symbol="AAPL", reference_price=19_000, band_bps=20)  # 18962..19038
    params = MarketMakerParams(levels=8, level_step_bps=5)
    mm = MarketMaker("SIM-MM1-AAPL", "AAPL", seed=2, params=params)
    bench = Bench([mm], [narrow])
    sent = new_orders(bench.turn(mm))
    assert 0 < len(sent) < 2 * params.levels
    assert all(18_962 <= o.price <= 19_038 for o in sent)
    assert not [e for e in bench.events if isinstance(e, Rejected)]


def test_market_maker_skews_against_its_inventory() -> None:
    market = MarketView()
    listed(market)
    market.on_events([trade(19_000)])
    view = market.get("AAPL")
    assert view is not None
    flat = MarketMaker("SIM-MM", "AAPL", seed=3)
    long = MarketMaker("SIM-MM", "AAPL", seed=3)
    long.position["AAPL"] = long.params.max_position
    flat_bid = flat.quotes(view)[Side.BUY][0][0]
    long_bid = long.quotes(view)[Side.BUY][0][0]
    assert long_bid < flat_bid  # long: cheaper bids (and asks) to sell inventory


def test_market_maker_stays_out_of_a_halted_symbol() -> None:
    mm = MarketMaker("SIM-MM1-AAPL", "AAPL", seed=1)
    bench = Bench([mm])
    bench.apply(Halt(symbol="AAPL"))
    assert bench.turn(mm) == []


# --- noise trader ------------------------------------------------------------------------------


def test_noise_orders_stay_within_their_limits() -> None:
    params = NoiseParams(interval_ns=NS_PER_S // 2)
    noise = [NoiseTrader(f"SIM-NOISE{i}-AAPL", "AAPL", seed=5, params=params) for i in range(3)]
    mms = [MarketMaker(f"SIM-MM{i}-AAPL", "AAPL", seed=5) for i in range(2)]
    bench = Bench([*mms, *noise])
    members = {n.member for n in noise}
    bench.run_until(T0 + 120 * NS_PER_S)
    sent = [c for c in new_orders(bench.commands) if c.member in members]
    assert len(sent) > 100
    for order in sent:
        assert params.lot <= order.qty <= params.lot * params.max_lots
        assert order.qty % params.lot == 0
        assert 17_100 <= order.price <= 20_900
        assert order.tif in (TimeInForce.IOC, TimeInForce.DAY)
    assert {o.tif for o in sent} == {TimeInForce.IOC, TimeInForce.DAY}
    assert sum(o.side is Side.BUY for o in sent) > len(sent) // 4
    for n in noise:
        resting = [o for o in n.live_orders() if o.tif is TimeInForce.DAY]
        assert len(resting) <= params.max_open
        assert abs(n.position.get("AAPL", 0)) <= params.max_position + params.lot * params.max_lots
    assert not [e for e in bench.events if isinstance(e, Rejected)]


def test_noise_leans_toward_the_reference_price() -> None:
    market = MarketView()
    listed(market)
    view = market.get("AAPL")
    assert view is not None
    noise = NoiseTrader("SIM-NOISE1-AAPL", "AAPL", seed=1)
    assert noise.buy_pct(view) == 50
    market.on_events([trade(19_190)])  # 1% above the reference
    assert MIN_SIDE_PCT <= noise.buy_pct(view) < 50
    market.on_events([trade(18_810)])
    assert 50 < noise.buy_pct(view) <= 100 - MIN_SIDE_PCT


def test_noise_passive_orders_moved_into_the_band_do_not_cross() -> None:
    """The touch is outside the band (left there when the band narrowed): a passive order
    priced behind it is moved into the band, where it must not cross the other side."""
    market = MarketView()
    listed(market, band_bps=20)  # 189.62 .. 190.38
    market.on_events(
        [
            level(Side.BUY, 18_950, 100),  # a bid below the band
            level(Side.SELL, 18_962, 100),  # an ask at its bottom
        ]
    )
    passive = NoiseParams(marketable_pct=0, value_tilt_bps=0)
    noise = NoiseTrader("SIM-NOISE1-AAPL", "AAPL", seed=1, params=passive)
    sent = [o for k in range(40) for o in new_orders(noise.act(T0 + k * NS_PER_S, market))]
    assert sent and all(o.tif is TimeInForce.DAY and o.side is Side.SELL for o in sent)
    assert all(18_962 <= o.price <= 19_038 for o in sent)
    # A buy behind the bid, moved up into the band, would take the ask: none was sent.


# --- momentum ----------------------------------------------------------------------------------


def trending(step: int, turns: int, params: MomentumParams) -> list[NewOrder]:
    """Momentum trader turns while the price moves ``step`` ticks per turn."""
    market = MarketView()
    listed(market)
    mt = MomentumTrader("SIM-MOM1-AAPL", "AAPL", seed=1, params=params)
    sent: list[NewOrder] = []
    price = 19_000
    for k in range(turns):
        price += step
        market.on_events(
            [
                level(Side.BUY, price - 2, 500),
                level(Side.SELL, price + 2, 500),
                level(Side.BUY, price - 2 - step, 0),
                level(Side.SELL, price + 2 - step, 0),
                trade(price),
            ]
        )
        sent += new_orders(mt.act(T0 + k * NS_PER_S, market))
    return sent


def test_momentum_buys_an_uptrend_and_sells_a_downtrend() -> None:
    params = MomentumParams(short_window=3, long_window=10, cooldown_ns=0)
    up = trending(+3, 30, params)
    down = trending(-3, 30, params)
    assert up and all(o.side is Side.BUY and o.tif is TimeInForce.IOC for o in up)
    assert down and all(o.side is Side.SELL for o in down)
    assert trending(0, 30, params) == []  # flat: nothing to follow


def test_momentum_respects_its_position_limit() -> None:
    params = MomentumParams(short_window=3, long_window=10, cooldown_ns=0, max_position=200)
    market = MarketView()
    listed(market)
    mt = MomentumTrader("SIM-MOM1-AAPL", "AAPL", seed=1, params=params)
    mt.position["AAPL"] = 200
    for k in range(30):
        market.on_events([level(Side.SELL, 19_002 + 3 * k, 500), trade(19_000 + 3 * k)])
        assert not [o for o in new_orders(mt.act(T0 + k * NS_PER_S, market)) if o.side is Side.BUY]


# --- VWAP slicer -------------------------------------------------------------------------------


def test_profile_is_u_shaped_and_the_target_reaches_the_parent() -> None:
    weights = profile(30)
    assert weights[0] == weights[-1] > weights[15]  # ends heavier than the middle
    assert min(weights) > 0 and weights == weights[::-1]
    parent = ParentOrder(
        number=1,
        side=Side.BUY,
        qty=20_000,
        start_ns=0,
        end_ns=1_800,
        deadline_ns=1_800,
        weights=weights,
    )
    targets = [parent.target(t) for t in range(0, 1_801, 7)]
    assert targets == sorted(targets) and targets[0] == 0
    assert parent.target(1_800) == 20_000 and parent.target(900) < 10_500


def test_vwap_slicer_completes_its_parent_within_the_horizon_and_never_exceeds_it() -> None:
    qty, horizon = 6_000, 180 * NS_PER_S
    vwap = VwapSlicer(
        "SIM-VWAP1",
        seed=4,
        params=VwapParams(symbol="AAPL", qty=qty, horizon_ns=horizon, repeat=False),
    )
    crowd = [
        *(MarketMaker(f"SIM-MM{i}-AAPL", "AAPL", seed=4) for i in range(2)),
        *(NoiseTrader(f"SIM-NOISE{i}-AAPL", "AAPL", seed=4) for i in range(3)),
        vwap,
    ]
    worst = 0

    def check(command: Command, events: object) -> None:
        nonlocal worst
        committed = vwap.position.get("AAPL", 0) + vwap.working_qty("AAPL", Side.BUY)
        worst = max(worst, committed)

    sim = Simulation([AAPL], crowd, duration_ns=horizon + 60 * NS_PER_S, observer=check)
    summary = sim.run()
    assert worst <= qty
    assert vwap.position["AAPL"] == qty
    (report,) = summary.vwap
    assert report.completed and report.filled == qty and report.side is Side.BUY
    assert report.start_ns < report.done_ns <= report.end_ns
    assert report.children > 1
    assert report.average_price is not None and report.market_vwap is not None
    assert report.slippage_bps is not None and abs(report.slippage_bps) < 50


def test_vwap_slicer_keeps_a_bounded_history_of_parents(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tradingfloor.sim.vwap.MAX_PARENTS", 3)
    params = VwapParams(
        symbol="AAPL",
        qty=200,
        horizon_ns=10 * NS_PER_S,
        start_delay_ns=NS_PER_S,
        interval_ns=NS_PER_S,
        pause_ns=NS_PER_S,
    )
    vwap = VwapSlicer("SIM-VWAP1", seed=4, params=params)
    crowd = [
        *(MarketMaker(f"SIM-MM{i}-AAPL", "AAPL", seed=4) for i in range(2)),
        *(NoiseTrader(f"SIM-NOISE{i}-AAPL", "AAPL", seed=4) for i in range(3)),
        vwap,
    ]
    summary = Simulation([AAPL], crowd, duration_ns=240 * NS_PER_S).run()
    numbers = [p.number for p in vwap.parents]
    assert len(numbers) == 3 and numbers[0] > 3  # many more were worked; the last 3 are kept
    assert numbers == list(range(numbers[0], numbers[0] + 3))
    assert [r.start_ns for r in summary.vwap] == [p.start_ns for p in vwap.parents]
    assert sum(r.completed for r in summary.vwap) >= 2


# --- the participant base ----------------------------------------------------------------------


def test_a_fresh_participant_learns_ids_and_orders_from_history() -> None:
    mm = MarketMaker("SIM-MM1-AAPL", "AAPL", seed=1)
    bench = Bench([mm])
    bench.run_until(T0 + 30 * NS_PER_S)
    used = {c.cl_ord_id for c in bench.commands if getattr(c, "member", "") == mm.member}
    assert len(used) == mm.last_cl_ord_number  # s1..sN, none twice
    again = MarketMaker("SIM-MM1-AAPL", "AAPL", seed=1)  # same seed: same random draws
    Crowd([again]).on_events(bench.events, bench.ts)
    assert again.last_cl_ord_number == mm.last_cl_ord_number
    bids, asks = bench.engine.l3("AAPL")
    resting = {oid for _p, _q, oid, member in bids + asks if member == mm.member}
    assert {o.order_id for o in again.live_orders()} == resting
    assert again.position == mm.position and again.cash == mm.cash
    commands = bench.turn(again, bench.ts + 5 * NS_PER_S)
    assert all(c.cl_ord_id not in used for c in commands if hasattr(c, "cl_ord_id"))
    assert not [e for e in bench.events if isinstance(e, Rejected)]


def test_unsent_commands_are_forgotten_but_their_ids_stay_used() -> None:
    mm = MarketMaker("SIM-MM1-AAPL", "AAPL", seed=1)
    bench = Bench([mm])
    commands = mm.act(bench.ts, bench.market)
    for command in commands:
        mm.unsent(command)
    assert mm.open_orders("AAPL") == [] and mm.stats.orders == 0
    again = bench.turn(mm)
    first = next(e for e in bench.events if isinstance(e, Accepted))
    assert first.cl_ord_id == f"s{len(commands) + 1}"
    assert len(again) == len(commands)


def test_participants_differ_by_name_and_members_are_unique() -> None:
    assert participant_seed(1, "A") == participant_seed(1, "A")
    assert participant_seed(1, "A") != participant_seed(1, "B")
    assert participant_seed(1, "A") != participant_seed(2, "A")
    with pytest.raises(DuplicateMemberError):
        Crowd([NoiseTrader("X", "AAPL", seed=1), MarketMaker("X", "AAPL", seed=1)])


class HalfBroken(MarketMaker):
    """Quotes, then fails before the turn ends."""

    def decide(self, now_ns: int, market: MarketView, out: list[Command]) -> None:
        super().decide(now_ns, market, out)
        raise RuntimeError("participant bug")


def test_a_turn_that_fails_half_way_leaves_no_phantom_orders() -> None:
    broken = HalfBroken("SIM-MM1-AAPL", "AAPL", seed=1)
    market = MarketView()
    listed(market)
    crowd = Crowd([broken], market=market, tolerant=True)
    crowd.begin(T0)
    assert crowd.act(0, T0 + NS_PER_S) == []  # logged and skipped: nothing is sent
    assert crowd.errors == 1
    assert broken.open_orders("AAPL") == [] and broken.stats.orders == 0
