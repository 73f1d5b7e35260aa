"""Matching-engine benchmark: ``python benchmarks/engine.py [--messages N] [--journal]``.

A thin wrapper around ``tradingfloor.bench.engine_bench`` (also ``tradingfloor bench engine``);
docs/benchmarks.md describes the stream and the output. Results are printed, never asserted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    from tradingfloor.bench import engine_bench
except ModuleNotFoundError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from tradingfloor.bench import engine_bench
from tradingfloor.exchange.sequencer import DEFAULT_SNAPSHOT_EVERY


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Matching-engine throughput and latency on a generated command stream."
    )
    parser.add_argument(
        "--messages",
        type=_positive,
        default=engine_bench.DEFAULT_MESSAGES,
        help="commands in the stream",
    )
    parser.add_argument(
        "--seed", type=int, default=engine_bench.DEFAULT_SEED, help="generator seed"
    )
    parser.add_argument(
        "--journal", action="store_true", help="also run the stream through the journal"
    )
    parser.add_argument(
        "--batch",
        type=_positive,
        default=engine_bench.DEFAULT_BATCH,
        help="commands per journal commit (one fsync each)",
    )
    parser.add_argument(
        "--snapshot-every",
        type=_non_negative,
        default=DEFAULT_SNAPSHOT_EVERY,
        help="commands between snapshots in the journaled run (0: none)",
    )
    parser.add_argument(
        "--dir",
        default=None,
        help="where the journaled run makes its temporary directory (default: system temp)",
    )
    args = parser.parse_args(argv)
    engine_bench.main(
        args.messages,
        args.seed,
        args.journal,
        batch=args.batch,
        snapshot_every=args.snapshot_every,
        tmpdir=args.dir,
    )


if __name__ == "__main__":
    main()
