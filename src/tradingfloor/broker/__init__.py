"""The broker (a member firm): identity, accounts, order management, risk, portfolios, API."""
