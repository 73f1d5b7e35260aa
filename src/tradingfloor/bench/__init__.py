"""Benchmarks shipped with the package (``tradingfloor bench ...``): printed, never asserted."""

__all__: list[str] = []
