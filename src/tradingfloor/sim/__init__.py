"""Simulated market participants (market makers, noise, momentum, a VWAP slicer), the headless
simulator behind ``tradingfloor simulate`` and the live runner the demo drives a venue with.
"""

from tradingfloor.sim.crowd import Crowd
from tradingfloor.sim.live import LiveSimulation, LiveStats
from tradingfloor.sim.market import MarketView, SymbolView
from tradingfloor.sim.market_maker import MarketMaker, MarketMakerParams
from tradingfloor.sim.momentum import MomentumParams, MomentumTrader
from tradingfloor.sim.noise import NoiseParams, NoiseTrader
from tradingfloor.sim.participant import OrderState, Participant, ParticipantStats
from tradingfloor.sim.population import CrowdConfig, build_participants
from tradingfloor.sim.simulator import SIM_START_NS, Simulation, default_instruments, simulate
from tradingfloor.sim.summary import MemberStats, Summary, SymbolStats, Tally
from tradingfloor.sim.vwap import VwapParams, VwapReport, VwapSlicer

__all__ = [
    "SIM_START_NS",
    "Crowd",
    "CrowdConfig",
    "LiveSimulation",
    "LiveStats",
    "MarketMaker",
    "MarketMakerParams",
    "MarketView",
    "MemberStats",
    "MomentumParams",
    "MomentumTrader",
    "NoiseParams",
    "NoiseTrader",
    "OrderState",
    "Participant",
    "ParticipantStats",
    "Simulation",
    "Summary",
    "SymbolStats",
    "SymbolView",
    "Tally",
    "VwapParams",
    "VwapReport",
    "VwapSlicer",
    "build_participants",
    "default_instruments",
    "simulate",
]
