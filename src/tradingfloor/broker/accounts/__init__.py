"""Customers' accounts as the broker holds them in memory: cash, settlement, holds and positions."""
