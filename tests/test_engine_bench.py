"""The engine benchmark: a deterministic stream with the intended mix, and runs that agree.

Nothing here times anything: speed is printed by the benchmark, never asserted.
"""

from __future__ import annotations

import io
import runpy
import sys
from pathlib import Path

import msgspec
import pytest
from rich.console import Console
from typer.testing import CliRunner

from tradingfloor.bench import engine_bench as bench
from tradingfloor.cli import app
from tradingfloor.exchange.engine.commands import (
    AddInstrument,
    CancelOrder,
    Command,
    NewOrder,
    ReplaceOrder,
)
from tradingfloor.exchange.engine.engine import Engine
from tradingfloor.exchange.engine.events import Rejected
from tradingfloor.exchange.engine.reasons import Reject
from tradingfloor.exchange.engine.types import OrdType, Side, TimeInForce

ROOT = Path(__file__).resolve().parents[1]
MIX_MESSAGES = 20_000


@pytest.fixture(scope="module")
def stream() -> bench.Stream:
    return bench.generate_stream(MIX_MESSAGES, seed=7)


def encode(commands: list[Command]) -> bytes:
    return msgspec.msgpack.encode(commands)


def test_same_seed_same_commands_other_seed_other_commands() -> None:
    first = encode(bench.generate(3_000, seed=1))
    assert encode(bench.generate(3_000, seed=1)) == first
    assert encode(bench.generate(3_000, seed=2)) != first


def test_prefix_of_a_longer_stream_is_the_shorter_stream() -> None:
    assert encode(bench.generate(4_000, seed=3)[:1_000]) == encode(bench.generate(1_000, seed=3))


def test_generation_draws_no_global_randomness() -> None:
    import random

    random.seed(0)
    a = encode(bench.generate(1_000, seed=5))
    random.seed(12345)
    assert encode(bench.generate(1_000, seed=5)) == a


def test_stream_shape(stream: bench.Stream) -> None:
    cmds = stream.commands
    assert len(cmds) == MIX_MESSAGES
    assert isinstance(cmds[0], AddInstrument)
    assert not any(isinstance(c, AddInstrument) for c in cmds[1:])
    assert sum(stream.kinds.values()) == MIX_MESSAGES
    assert set(stream.kinds) == set(bench.KINDS)
    symbols = {c.symbol for c in cmds if isinstance(c, NewOrder | CancelOrder | ReplaceOrder)}
    assert symbols == {bench.SYMBOL}
    new = [c for c in cmds if isinstance(c, NewOrder)]
    assert all(c.ord_type is OrdType.LIMIT and c.price > 0 and c.qty > 0 for c in new)
    assert all(c.tif in (TimeInForce.DAY, TimeInForce.IOC) for c in new)
    assert {c.side for c in new} == {Side.BUY, Side.SELL}
    assert {c.member for c in new} == set(bench.MEMBERS)
    assert len(bench.MEMBERS) == 20


def test_mix_roughly_matches_the_intended_proportions(stream: bench.Stream) -> None:
    n = MIX_MESSAGES
    k = stream.kinds
    rejects = k["dup_cancel"] + k["late_cancel"] + k["dup_new"]
    assert 0.52 < stream.new_orders / n < 0.58
    assert 0.22 < k["cancel"] / n < 0.28
    assert 0.10 < k["replace"] / n < 0.14
    assert 0.065 < rejects / n < 0.095
    assert min(k["dup_cancel"], k["late_cancel"], k["dup_new"]) > 0.015 * n
    assert 0.12 < k["new_ioc"] / stream.new_orders < 0.18
    assert 0.15 < stream.crossing_new_orders / stream.new_orders < 0.35
    assert stream.trades > 0
    assert stream.planned_rejects == rejects


def test_cl_ord_ids_are_unique_except_planned_duplicates(stream: bench.Stream) -> None:
    ids = [c.cl_ord_id for c in stream.commands if isinstance(c, NewOrder | ReplaceOrder)]
    ids += [c.cl_ord_id for c in stream.commands if isinstance(c, CancelOrder)]
    assert len(ids) - len(set(ids)) == stream.kinds["dup_new"]


def test_planned_rejects_are_exactly_the_rejected_commands(stream: bench.Stream) -> None:
    assert stream.unplanned_rejects == 0
    assert stream.missed_rejects == 0
    engine = Engine()
    codes: dict[int, int] = {}
    for seq, cmd in enumerate(stream.commands, 1):
        for ev in engine.apply(seq, seq * bench.TS_STEP_NS, cmd):
            if isinstance(ev, Rejected):
                codes[ev.code] = codes.get(ev.code, 0) + 1
    assert sum(codes.values()) == stream.planned_rejects
    assert codes == {
        Reject.UNKNOWN_ORDER: stream.kinds["dup_cancel"] + stream.kinds["late_cancel"],
        Reject.DUPLICATE_CL_ORD_ID: stream.kinds["dup_new"],
    }
    assert engine.state_hash() == stream.state_hash


def test_runs_with_and_without_journal_agree(tmp_path: Path) -> None:
    stream = bench.generate_stream(5_000, seed=11)
    plain = bench.run(stream.commands)
    journaled = bench.run(stream.commands, True, tmp_path, batch=100, snapshot_every=2_000)
    assert isinstance(plain, bench.EngineRun)
    assert isinstance(journaled, bench.JournalRun)
    assert plain.state_hash == journaled.state_hash == stream.state_hash
    assert plain.events == journaled.events == stream.events
    assert plain.trades == journaled.trades == stream.trades
    assert plain.rejects == journaled.rejects == stream.planned_rejects
    assert plain.messages == journaled.messages == 5_000
    assert plain.latency.samples == 5_000
    p = plain.latency
    assert 0 <= p.p50 <= p.p90 <= p.p99 <= p.p999 <= p.max
    assert journaled.batches == journaled.commit_latency.samples == 50
    assert journaled.snapshots == 2  # after commands 2,000 and 4,000
    assert 0 < journaled.snapshot_seconds < journaled.seconds
    assert journaled.journal_bytes > 0
    assert list(tmp_path.iterdir()) == []  # the temporary directory is gone


def test_main_prints_the_report(tmp_path: Path) -> None:
    out = io.StringIO()
    report = bench.main(
        2_000, 3, True, batch=64, tmpdir=tmp_path, console=Console(file=out, width=120)
    )
    text = out.getvalue()
    assert report.journal is not None
    assert report.engine.state_hash in text
    for label in ("messages/s", "p99.9", "rejects = planned", "target 500,000/s", "dup_cancel"):
        assert label in text
    assert "MISMATCH" not in text


def test_cli_bench_engine() -> None:
    result = CliRunner().invoke(app, ["bench", "engine", "--messages", "1000", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert "messages/s" in result.stdout
    assert "MISMATCH" not in result.stdout


def test_benchmark_script(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = ROOT / "benchmarks" / "engine.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--messages", "500", "--seed", "4"])
    runpy.run_path(str(script), run_name="__main__")
    assert "messages/s" in capsys.readouterr().out
