"""An account's configuration in the shape of Alpaca's ``/v2/account/configurations``.

The broker enforces two of the settings: ``suspend_trade`` refuses new orders and
``no_shorting`` refuses sells that would open (or add to) a short position, both with the
pre-trade risk codes of those checks. ``fractional_trading`` must stay false (the broker
trades whole shares). ``max_margin_multiplier`` ("1" to "4"), ``dtbp_check``, ``pdt_check``,
``trade_confirm_email``, ``ptp_no_exception_entry`` and ``max_options_trading_level`` are
stored and reported as given; the broker's own limits (``RiskLimits``) decide margin and the
pattern-day-trader rule.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Final

from tradingfloor.broker.errors import BrokerError, ErrorCode

__all__ = ["CHECKS", "MARGIN_MULTIPLIERS", "AccountConfiguration"]

CHECKS: Final = ("both", "entry", "exit")
MARGIN_MULTIPLIERS: Final = ("1", "2", "3", "4")
_EMAILS: Final = ("all", "none")


def _invalid(message: str) -> BrokerError:
    return BrokerError(ErrorCode.INVALID, message)


@dataclass(frozen=True, slots=True)
class AccountConfiguration:
    dtbp_check: str = "entry"
    fractional_trading: bool = False
    max_margin_multiplier: str = "4"
    no_shorting: bool = False
    pdt_check: str = "entry"
    suspend_trade: bool = False
    trade_confirm_email: str = "all"
    ptp_no_exception_entry: bool = False
    max_options_trading_level: int = 0

    def __post_init__(self) -> None:
        if self.dtbp_check not in CHECKS or self.pdt_check not in CHECKS:
            raise _invalid(f"dtbp_check and pdt_check are one of {', '.join(CHECKS)}")
        if self.max_margin_multiplier not in MARGIN_MULTIPLIERS:
            raise _invalid("max_margin_multiplier is one of 1, 2, 3, 4")
        if self.trade_confirm_email not in _EMAILS:
            raise _invalid("trade_confirm_email is all or none")
        if self.fractional_trading:
            raise _invalid("fractional trading is not offered: the broker trades whole shares")
        if not 0 <= self.max_options_trading_level <= 3:
            raise _invalid("max_options_trading_level is 0 to 3")

    def changed(self, changes: dict[str, Any]) -> AccountConfiguration:
        """A copy with ``changes`` (field names of this class) applied and checked."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise _invalid(f"unknown configuration {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def dumps(self) -> str:
        return json.dumps(self.as_json(), sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> AccountConfiguration:
        stored = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in stored.items() if k in known})
