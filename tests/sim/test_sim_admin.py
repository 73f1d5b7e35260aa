"""Participants under an operator's hand: a halt and resume, a market maker's kill switch, a price
band that narrows or moves away from the last trade. After each the market must come back (a
two-sided book inside the band, trades) within a few simulated seconds."""

from __future__ import annotations

from collections.abc import Sequence

from sim.helpers import AAPL, Bench
from tradingfloor.exchange.engine.commands import (
    Command,
    Halt,
    Resume,
    SetKillSwitch,
    SetPriceBand,
    SetReferencePrice,
)
from tradingfloor.exchange.engine.events import Event, Rejected, Trade
from tradingfloor.exchange.engine.reasons import Reject
from tradingfloor.exchange.engine.types import Side
from tradingfloor.sim.market import MarketView
from tradingfloor.sim.market_maker import MarketMaker
from tradingfloor.sim.participant import NEVER, NS_PER_S, Participant
from tradingfloor.sim.population import CrowdConfig, build_participants
from tradingfloor.sim.simulator import SIM_START_NS, Simulation

T0 = SIM_START_NS
MM1, MM2 = "SIM-MM1-AAPL", "SIM-MM2-AAPL"
RECOVERY_NS = 20 * NS_PER_S  # the market is back within this much simulated time


class Operator(Participant):
    """Sends the scripted admin commands at their times (seconds after the start)."""

    kind = "operator"

    def __init__(self, script: Sequence[tuple[int, Sequence[Command]]]) -> None:
        super().__init__("OPERATOR", seed=0)
        self.script = list(script)

    def begin(self, now_ns: int) -> None:
        self.start_ns = now_ns
        self.next_wake_ns = now_ns + self.script[0][0] * NS_PER_S

    def decide(self, now_ns: int, market: MarketView, out: list[Command]) -> None:
        _at, commands = self.script.pop(0)
        out.extend(commands)
        self.next_wake_ns = self.start_ns + self.script[0][0] * NS_PER_S if self.script else NEVER


def book_in_band(sim: Simulation) -> tuple[bool, list[tuple[int, str]]]:
    """Whether AAPL shows a bid below an ask, both inside the band; and every participant's
    resting order outside the band as (price, member)."""
    engine = sim.engine
    inst = engine.instruments["AAPL"]
    bid, _bs, ask, _as = engine.l1("AAPL")
    lo, hi = inst.band_lo, inst.band_hi
    two_sided = bool(bid and ask and bid < ask and lo <= bid and ask <= hi)
    bids, asks = engine.l3("AAPL")
    outside = [(p, m) for p, _q, _oid, m in bids + asks if not lo <= p <= hi]
    return two_sided, outside


def test_the_market_comes_back_after_each_operator_action() -> None:
    script: list[tuple[int, Sequence[Command]]] = [
        (60, [Halt(symbol="AAPL")]),
        (75, [Resume(symbol="AAPL")]),
        (120, [SetKillSwitch(member=MM1, active=True), SetKillSwitch(member=MM2, active=True)]),
        (140, [SetKillSwitch(member=MM1, active=False), SetKillSwitch(member=MM2, active=False)]),
        (180, [SetPriceBand(symbol="AAPL", band_bps=10)]),  # +-19 ticks around 190.00
        (240, [SetReferencePrice(symbol="AAPL", price=19_150)]),  # the band moves up 0.8 %
        (300, [SetReferencePrice(symbol="AAPL", price=18_900)]),  # ... and down 1.3 %
        (360, [SetPriceBand(symbol="AAPL", band_bps=1_000)]),
    ]
    actions = [T0 + at * NS_PER_S for at, _c in script]
    crowd = [*build_participants([AAPL], 3, CrowdConfig(vwap=False)), Operator(script)]
    sim: Simulation
    back: list[int] = []  # times the book was two-sided inside the band
    trades: list[int] = []  # times of continuous-trading trades
    stray: list[tuple[int, list[tuple[int, str]]]] = []  # (time, orders outside the band)
    kill_rejects = 0

    def watch(command: Command, events: Sequence[Event]) -> None:
        nonlocal kill_rejects
        ts = events[0].ts if events else 0
        two_sided, outside = book_in_band(sim)
        if two_sided:
            back.append(ts)
        if outside:
            stray.append((ts, outside))
        for e in events:
            if isinstance(e, Trade) and e.aggressor:
                trades.append(e.ts)
            elif isinstance(e, Rejected) and e.code == Reject.KILL_SWITCH_ACTIVE:
                kill_rejects += 1

    sim = Simulation([AAPL], crowd, duration_ns=420 * NS_PER_S, seed=3, observer=watch)
    sim.run()
    assert crowd[-1].script == []  # every action was taken
    for at in actions:
        assert any(at < t <= at + RECOVERY_NS for t in back), f"no two-sided book after {at - T0}"
        assert any(at < t <= at + RECOVERY_NS for t in trades), f"no trade after {at - T0}"
    # Killed members sit out instead of sending orders the venue refuses.
    assert kill_rejects == 0
    # Orders a band change left outside the band are moved or cancelled by their owners.
    late = [(t - T0, o) for t, o in stray if not any(at <= t <= at + RECOVERY_NS for at in actions)]
    assert late == []


def test_market_maker_quotes_inside_a_band_that_moved_away_from_the_last_trade() -> None:
    mm = MarketMaker(MM1, "AAPL", seed=1)
    bench = Bench([mm])
    bench.turn(mm)
    asks = bench.engine.l2("AAPL")[1]
    bench.take(Side.BUY, 100, asks[0][0])  # the last trade: just above 190.00
    bench.apply(SetReferencePrice(symbol="AAPL", price=19_150))
    bench.apply(SetPriceBand(symbol="AAPL", band_bps=10))  # 191.31 .. 191.69
    sent = len(bench.events)
    bench.turn(mm, bench.ts + 2 * NS_PER_S)
    bids, asks = bench.engine.l2("AAPL")
    assert bids and asks, "one-sided or empty after the band moved"
    assert bids[-1][0] >= 19_131 and bids[0][0] < asks[0][0] and asks[-1][0] <= 19_169
    assert not [e for e in bench.events[sent:] if isinstance(e, Rejected)]
    assert any(isinstance(e, Trade) for e in bench.take(Side.SELL, 100, 19_131))


def test_market_maker_keeps_both_sides_in_a_band_narrower_than_its_spread() -> None:
    mm = MarketMaker(MM1, "AAPL", seed=1)
    bench = Bench([mm])
    bench.apply(SetPriceBand(symbol="AAPL", band_bps=2))  # 189.97 .. 190.03, spread 3 bps
    bench.turn(mm)
    bids, asks = bench.engine.l2("AAPL")
    assert bids and asks and bids[0][0] < asks[0][0]
    assert bids[-1][0] >= 18_997 and asks[-1][0] <= 19_003


def test_a_killed_member_sits_out_and_quotes_again_when_released() -> None:
    mm = MarketMaker(MM1, "AAPL", seed=1)
    bench = Bench([mm])
    bench.turn(mm)
    assert len(mm.live_orders()) == 2 * mm.params.levels
    bench.apply(SetKillSwitch(member=MM1, active=True))
    assert mm.killed and mm.live_orders() == []  # the venue cancelled them all
    assert bench.turn(mm, bench.ts + 2 * NS_PER_S) == []  # nothing the venue would refuse
    bench.apply(SetKillSwitch(member=MM1, active=False), bench.ts + NS_PER_S)
    assert not mm.killed and mm.next_wake_ns <= bench.ts  # a turn right away
    bench.turn(mm)
    assert len(mm.live_orders()) == 2 * mm.params.levels
    assert not [e for e in bench.events if isinstance(e, Rejected)]
