"""The broker's market-data history: trades, quotes and bars projected from venue events."""
