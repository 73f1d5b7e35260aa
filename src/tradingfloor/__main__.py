"""`python -m tradingfloor` runs the tradingfloor command line."""

from tradingfloor.cli import main

main()
