"""Customer risk of the broker: pre-trade checks, buying power, margin, pattern day trading."""
