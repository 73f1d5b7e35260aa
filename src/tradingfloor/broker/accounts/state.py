"""One account as the broker holds it in memory: cash, settlement, buying-power holds, positions.

Cash is integer minor units. Credits from sales settle later (T+N): they count in ``cash`` at
once but in ``settled_cash`` only from their settlement time; debits count against both at
once. Holds are the buying power reserved by open orders.
"""

from __future__ import annotations

import bisect
import sys
from dataclasses import dataclass, field

from tradingfloor.broker.portfolio.position import Position
from tradingfloor.broker.risk.daytrades import DayTradeTracker

__all__ = ["AccountState"]

_MAX = sys.maxsize


@dataclass(slots=True)
class AccountState:
    id: str
    account_number: str
    customer_id: str
    account_type: str  # cash | margin
    status: str
    currency: str
    created_at: int
    kyc_status: str = "pending"
    trading_blocked: bool = False
    pattern_day_trader: bool = False
    cash: int = 0
    held: int = 0
    # equity at the previous session's close (Alpaca's last_equity) and the trading day
    # (YYYYMMDD) it opened; None until the account has been through a day roll
    last_equity: int | None = None
    last_equity_day: int = 0
    net_transfers: int = 0  # deposits minus withdrawals, ever
    # credits not settled yet: (settle_at ns, amount), oldest first, and their sum
    pending_credits: list[tuple[int, int]] = field(default_factory=list)
    unsettled: int = 0
    positions: dict[str, Position] = field(default_factory=dict)
    day_trades: DayTradeTracker = field(default_factory=DayTradeTracker)

    def settled_cash(self, now_ns: int) -> int:
        pending = self.pending_credits
        if pending and pending[0][0] <= now_ns:
            due = bisect.bisect_right(pending, (now_ns, _MAX))
            self.unsettled -= sum(amount for _, amount in pending[:due])
            del pending[:due]
        return self.cash - self.unsettled

    def credit(self, amount: int, settle_at: int, now_ns: int) -> None:
        self.cash += amount
        if amount > 0 and settle_at > now_ns:
            bisect.insort(self.pending_credits, (settle_at, amount))
            self.unsettled += amount

    def position(self, symbol: str) -> Position:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = Position(symbol)
        return pos
