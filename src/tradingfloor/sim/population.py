"""The default crowd of simulated participants for a list of instruments.

Per symbol two market makers, three noise traders and one momentum trader, plus one VWAP slicer
on the first symbol: in real time about 40 commands per second over the five default symbols
(a laptop demo, not a load test). Member ids are ``SIM-MM1-AAPL``, ``SIM-NOISE2-MSFT``,
``SIM-MOM1-TSLA``, ``SIM-VWAP1``; the order of the list is part of a run's determinism.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from tradingfloor.exchange.engine.commands import AddInstrument
from tradingfloor.exchange.engine.types import Side
from tradingfloor.sim.market_maker import MarketMaker, MarketMakerParams
from tradingfloor.sim.momentum import MomentumParams, MomentumTrader
from tradingfloor.sim.noise import NoiseParams, NoiseTrader
from tradingfloor.sim.participant import NS_PER_S, Participant
from tradingfloor.sim.vwap import VwapParams, VwapSlicer

__all__ = ["DEFAULT_VWAP_HORIZON_NS", "MAX_PARTICIPANTS", "CrowdConfig", "build_participants"]

MAX_PARTICIPANTS: Final = 1_000  # most participants one crowd may hold
DEFAULT_VWAP_HORIZON_NS: Final = 30 * 60 * NS_PER_S
_VWAP_QTY_PER_HORIZON: Final = 20_000  # shares per 30-minute horizon; shorter ones get less
_ROUND_LOT: Final = 100


@dataclass(frozen=True, slots=True)
class CrowdConfig:
    """How many of each participant per symbol, and their parameters."""

    market_makers: int = 2
    noise_traders: int = 3
    momentum_traders: int = 1
    vwap: bool = True
    vwap_symbol: str = ""  # "" = the first instrument
    vwap_side: Side = Side.BUY
    vwap_qty: int = 0  # 0 = 20,000 shares per 30 minutes of horizon (at least 100)
    vwap_horizon_ns: int = DEFAULT_VWAP_HORIZON_NS
    member_prefix: str = "SIM"
    market_maker: MarketMakerParams = field(default_factory=MarketMakerParams)
    noise: NoiseParams = field(default_factory=NoiseParams)
    momentum: MomentumParams = field(default_factory=MomentumParams)

    def vwap_parent_qty(self) -> int:
        if self.vwap_qty > 0:
            return self.vwap_qty
        scaled = _VWAP_QTY_PER_HORIZON * self.vwap_horizon_ns // DEFAULT_VWAP_HORIZON_NS
        return max(_ROUND_LOT, scaled - scaled % _ROUND_LOT)


def build_participants(
    instruments: Sequence[AddInstrument | str], seed: int, config: CrowdConfig | None = None
) -> list[Participant]:
    """The crowd for ``instruments`` (``AddInstrument`` commands or symbols), seeded by ``seed``.

    Market makers differ a little (the second quotes one basis point wider and larger), so the
    book has more than one price per level.
    """
    cfg = config if config is not None else CrowdConfig()
    if min(cfg.market_makers, cfg.noise_traders, cfg.momentum_traders) < 0:
        raise ValueError("participant counts cannot be negative")
    symbols = [i if isinstance(i, str) else i.symbol for i in instruments]
    if len(set(symbols)) != len(symbols):
        raise ValueError("a symbol is listed twice")
    per_symbol = cfg.market_makers + cfg.noise_traders + cfg.momentum_traders
    if per_symbol * len(symbols) + 1 > MAX_PARTICIPANTS:
        raise ValueError(f"more than {MAX_PARTICIPANTS} participants")
    pre = cfg.member_prefix
    crowd: list[Participant] = []
    for symbol in symbols:
        for i in range(cfg.market_makers):
            mm = replace(
                cfg.market_maker,
                half_spread_bps=cfg.market_maker.half_spread_bps + i,
                level_qty=cfg.market_maker.level_qty * (1 + i % 2),
            )
            crowd.append(MarketMaker(f"{pre}-MM{i + 1}-{symbol}", symbol, seed=seed, params=mm))
        for i in range(cfg.noise_traders):
            crowd.append(
                NoiseTrader(f"{pre}-NOISE{i + 1}-{symbol}", symbol, seed=seed, params=cfg.noise)
            )
        for i in range(cfg.momentum_traders):
            crowd.append(
                MomentumTrader(f"{pre}-MOM{i + 1}-{symbol}", symbol, seed=seed, params=cfg.momentum)
            )
    if cfg.vwap and symbols:
        target = cfg.vwap_symbol or symbols[0]
        if target not in symbols:
            raise ValueError(f"vwap_symbol {target!r} is not among the instruments")
        params = VwapParams(
            symbol=target,
            side=cfg.vwap_side,
            qty=cfg.vwap_parent_qty(),
            horizon_ns=cfg.vwap_horizon_ns,
        )
        crowd.append(VwapSlicer(f"{pre}-VWAP1", seed=seed, params=params))
    return crowd
