"""Market data: books, trades and bars projected from engine events, and their wire formats."""
