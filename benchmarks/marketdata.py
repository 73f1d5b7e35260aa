"""Market-data benchmark: ``python benchmarks/marketdata.py [--clients N] [--rate R]``.

A thin wrapper around ``tradingfloor.bench.marketdata_bench``; docs/benchmarks.md describes
both measurements. Results are printed, never asserted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    from tradingfloor.bench import marketdata_bench
except ModuleNotFoundError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from tradingfloor.bench import marketdata_bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000, help="in-process commands")
    parser.add_argument("--clients", type=int, default=1000, help="WebSocket clients")
    parser.add_argument("--rate", type=int, default=100, help="commands per second (fan-out)")
    parser.add_argument("--seconds", type=float, default=10.0, help="fan-out duration")
    args = parser.parse_args()
    marketdata_bench.main(args.messages, args.clients, args.rate, args.seconds)


if __name__ == "__main__":
    main()
