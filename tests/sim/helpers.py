"""Test helpers for the simulated participants: a small engine bench and synthetic events."""

from __future__ import annotations

from collections.abc import Sequence

from tradingfloor.exchange.engine import Engine
from tradingfloor.exchange.engine.commands import AddInstrument, Command, NewOrder
from tradingfloor.exchange.engine.events import (
    Event,
    InstrumentAdded,
    InstrumentUpdated,
    LevelChanged,
    Trade,
)
from tradingfloor.exchange.engine.types import BandAction, Phase, Side, TimeInForce
from tradingfloor.sim.crowd import Crowd
from tradingfloor.sim.market import MarketView
from tradingfloor.sim.participant import Participant
from tradingfloor.sim.simulator import SIM_START_NS

AAPL = AddInstrument(symbol="AAPL", reference_price=19_000, band_bps=1_000)


class Bench:
    """One engine, one crowd: apply commands by hand or let participants take turns."""

    def __init__(
        self, participants: Sequence[Participant], instruments: Sequence[AddInstrument] = (AAPL,)
    ) -> None:
        self.engine = Engine()
        self.crowd = Crowd(participants)
        self.seq = 0
        self.ts = SIM_START_NS
        self.events: list[Event] = []
        self.commands: list[Command] = []
        for instrument in instruments:
            self.apply(instrument)
        self.crowd.begin(self.ts)

    @property
    def market(self) -> MarketView:
        return self.crowd.market

    def apply(self, command: Command, ts: int | None = None) -> list[Event]:
        if ts is not None:
            self.ts = max(self.ts, ts)
        self.seq += 1
        events = self.engine.apply(self.seq, self.ts, command)
        self.commands.append(command)
        self.events.extend(events)
        self.crowd.on_events(events, self.ts)
        return events

    def turn(self, participant: Participant, ts: int | None = None) -> list[Command]:
        """Give ``participant`` a turn now (or at ``ts``) and apply what it sends."""
        if ts is not None:
            self.ts = max(self.ts, ts)
        commands = participant.act(self.ts, self.market)
        for command in commands:
            self.apply(command)
        return commands

    def run_until(self, end_ns: int) -> None:
        """Turns in wake-up order, as the simulator gives them, up to ``end_ns``."""
        crowd = self.crowd
        while (wake := crowd.next_wake_ns()) <= end_ns:
            i = crowd.pop_due(wake)
            assert i is not None
            self.ts = max(self.ts, wake)
            for command in crowd.act(i, self.ts):
                self.apply(command)

    def take(self, side: Side, qty: int, price: int, member: str = "TAKER") -> list[Event]:
        """An outside member's IOC order."""
        order = NewOrder(
            symbol="AAPL",
            member=member,
            cl_ord_id=f"t{self.seq + 1}",
            side=side,
            qty=qty,
            price=price,
            tif=TimeInForce.IOC,
        )
        return self.apply(order)


def listed(
    market: MarketView, symbol: str = "AAPL", reference: int = 19_000, band_bps: int = 1_000
) -> None:
    """List ``symbol`` in ``market`` as the engine would announce it."""
    market.apply(
        InstrumentAdded(
            seq=0,
            ts=SIM_START_NS,
            symbol=symbol,
            tick_size="0.01",
            lot_size=1,
            currency="USD",
            phase=Phase.CONTINUOUS,
        )
    )
    market.apply(
        InstrumentUpdated(
            seq=0,
            ts=SIM_START_NS,
            symbol=symbol,
            reference_price=reference,
            band_bps=band_bps,
            band_action=BandAction.REJECT,
            pause_ns=0,
        )
    )


def level(side: Side, price: int, qty: int, symbol: str = "AAPL", ts: int = 0) -> LevelChanged:
    return LevelChanged(seq=0, ts=ts, symbol=symbol, side=side, price=price, qty=qty, orders=1)


def trade(price: int, qty: int = 100, symbol: str = "AAPL", ts: int = 0) -> Trade:
    return Trade(
        seq=0,
        ts=ts,
        symbol=symbol,
        trade_id=0,
        price=price,
        qty=qty,
        aggressor="buy",
        maker_order_id=1,
        taker_order_id=2,
        maker_member="X",
        taker_member="Y",
        maker_cl_ord_id="a",
        taker_cl_ord_id="b",
        maker_leaves=0,
        taker_leaves=0,
        buy_order_id=2,
        sell_order_id=1,
    )
