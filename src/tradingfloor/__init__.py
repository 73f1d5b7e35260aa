"""tradingfloor: an open-source stock exchange and broker you can run on one laptop."""

__version__ = "0.1.0"
__all__ = ["__version__"]
