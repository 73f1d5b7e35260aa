"""Demo memory soak: ``python benchmarks/soak.py [--minutes N] [--speed S] [--interval S]``.

A thin wrapper around ``tradingfloor.bench.soak`` (also ``tradingfloor bench soak``);
docs/benchmarks.md describes the method. Results are printed, never asserted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    from tradingfloor.bench import soak
except ModuleNotFoundError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from tradingfloor.bench import soak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="wall-clock minutes")
    parser.add_argument("--speed", type=float, default=10.0, help="the demo's --speed")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up minutes")
    parser.add_argument("--seed", type=int, default=1, help="seeds the participants")
    args = parser.parse_args()
    soak.main(
        args.minutes, args.speed, interval=args.interval, warmup_minutes=args.warmup, seed=args.seed
    )


if __name__ == "__main__":
    main()
