"""Portfolios of the broker's accounts: positions, average cost, realized and unrealized P&L."""
