"""Tests of the broker's market-data history and its Alpaca-compatible API."""
