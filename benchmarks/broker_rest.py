"""REST order submit-to-ack benchmark: ``python benchmarks/broker_rest.py [--rate N]``.

A thin wrapper around ``tradingfloor.bench.broker_bench``; docs/benchmarks.md describes the
method. Results are printed, never asserted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    from tradingfloor.bench import broker_bench
except ModuleNotFoundError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from tradingfloor.bench import broker_bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1_000, help="orders per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to send")
    parser.add_argument(
        "--server",
        metavar="HOST:PORT",
        help=f"a running broker API (serve with TF_ADMIN_PASSWORD={broker_bench.ADMIN_PASSWORD} "
        "and --api-rate-limit 10000000) instead of a fresh one",
    )
    args = parser.parse_args()
    server = None
    if args.server:
        host, _, port = args.server.rpartition(":")
        server = (host, int(port))
    broker_bench.main(rate=args.rate, seconds=args.seconds, server=server)


if __name__ == "__main__":
    main()
