"""The broker API: REST and WebSocket adapters (Alpaca-compatible and native)."""
