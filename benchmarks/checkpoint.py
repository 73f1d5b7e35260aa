"""Projection checkpoint benchmark: ``python benchmarks/checkpoint.py [--orders N]``.

A thin wrapper around ``tradingfloor.bench.checkpoint_bench``; docs/benchmarks.md describes
the measurement. Results are printed, never asserted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    from tradingfloor.bench import checkpoint_bench
except ModuleNotFoundError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from tradingfloor.bench import checkpoint_bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=50_000, help="resting orders to build")
    parser.add_argument("--rounds", type=int, default=20, help="timed checkpoints per part")
    args = parser.parse_args()
    checkpoint_bench.main(args.orders, args.rounds)


if __name__ == "__main__":
    main()
