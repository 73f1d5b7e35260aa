"""`serve` restarts from projection checkpoints: after a clean stop it replays nothing, and after
a crash only the journal after the newest periodic checkpoint, also when no FIX member traded
(the FIX gateway's mark must follow events that stored no report, or it would hold every
checkpoint back)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from test_serve import Client, options
from typer.testing import CliRunner

from tradingfloor.cli import EXIT_INPUT_ERROR, app
from tradingfloor.exchange.checkpoint import decode_checkpoint, encode_checkpoint
from tradingfloor.exchange.engine.commands import NewOrder
from tradingfloor.exchange.engine.types import Side
from tradingfloor.exchange.fix import tags as t
from tradingfloor.exchange.snapshot import encode_snapshot, read_snapshot
from tradingfloor.node.serve import ServeOptions, VenueServer


def _options(data: Path, lines: list[str]) -> ServeOptions:
    opts = options(data)
    opts.snapshot_every = 20
    opts.announce = lines.append
    return opts


async def _trade_in_process(srv: VenueServer, count: int) -> None:
    """Orders of a member that is not a FIX session (as the broker's and the demo's are)."""
    assert srv.venue is not None
    for i in range(count):
        side = Side.BUY if i % 2 else Side.SELL
        await srv.venue.submit(
            NewOrder(
                symbol="AAPL",
                member="INPROC",
                cl_ord_id=f"p{i}",
                side=side,
                qty=10,
                price=18_500 + i % 3,
            )
        )


async def _wait_for_fix_mark(srv: VenueServer) -> None:
    """Until the gateway's mark file names the venue's last event (bounded)."""
    assert srv.venue is not None and srv.gateway is not None
    mark = srv.options.data_dir / "fix" / "last_event_seq"
    for _ in range(200):
        if mark.is_file() and mark.read_text().split()[-1] == str(srv.venue.last_event_seq):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the FIX mark stayed at {mark.read_text()!r}")


def _restored_from(lines: list[str]) -> int:
    found = [line for line in lines if line.startswith("Projections restored from")]
    return int(found[0].rsplit(" ", 1)[1]) if found else 0


async def test_a_crash_restart_starts_from_the_newest_periodic_checkpoint(
    tmp_path: Path,
) -> None:
    data, image = tmp_path / "venue", tmp_path / "crashed"
    srv = VenueServer(_options(data, []))
    await srv.start()
    try:
        await _trade_in_process(srv, 47)
        await _wait_for_fix_mark(srv)
        assert srv.venue is not None and srv.venue.stats.checkpoints >= 2
        await asyncio.sleep(0.2)  # the broker's write-behind store commits its mark
        shutil.copytree(data, image)  # the disk as a kill -9 now would leave it
    finally:
        await srv.stop()

    lines: list[str] = []
    again = VenueServer(_options(image, lines))
    await again.start()
    try:
        start = _restored_from(lines)
        assert start >= 40, lines  # the newest periodic checkpoint, not the journal's start
        assert again.venue is not None
        replayed = [line for line in lines if "journaled commands replayed" in line]
        assert replayed and int(replayed[0].split(": ")[1].split()[0]) < 20
        # the restored projections carry on: a FIX member sees the book the crowd left
        fix = await Client.logon(again.fix_port, "MEMBER1")
        fix.order("after-crash", t.SIDE_BUY, "185.02", qty=5)
        report = await fix.report("after-crash", t.EXEC_TRADE)
        assert report.get(t.LastQty) == "5"
        await fix.close()
    finally:
        await again.stop()


async def test_a_clean_stop_restarts_without_replaying(tmp_path: Path) -> None:
    data = tmp_path / "venue"
    srv = VenueServer(_options(data, []))
    await srv.start()
    try:
        await _trade_in_process(srv, 13)
    finally:
        await srv.stop()
    lines: list[str] = []
    again = VenueServer(_options(data, lines))
    await again.start()
    try:
        assert again.venue is not None
        assert _restored_from(lines) == again.venue.last_seq
        assert any(": 0 journaled commands replayed" in line for line in lines), lines
    finally:
        await again.stop()


def test_a_checkpoint_part_refused_after_others_restored_exits_with_advice(
    tmp_path: Path,
) -> None:
    """The FIX gateway refuses its part after the market-data feed restored its own: start-up
    stops with a clear message (exit 2) and `--full-replay` starts."""
    data = tmp_path / "venue"

    async def first_run() -> None:
        srv = VenueServer(_options(data, []))
        await srv.start()
        try:
            await _trade_in_process(srv, 5)
        finally:
            await srv.stop()

    asyncio.run(first_run())
    [path] = sorted((data / "checkpoints").glob("snapshot-*.bin"))[-1:]
    saved = read_snapshot(path)
    checkpoint = decode_checkpoint(saved.data)
    parts = {**checkpoint.parts, "fix/1": b"\x01not the gateway's state"}
    body = encode_checkpoint(checkpoint.seq, checkpoint.event_seq, parts)
    path.write_bytes(encode_snapshot(saved.seq, saved.ts, body))
    args = ["serve", "--data-dir", str(data), "--no-broker", "--no-udp-feed"]
    args += ["--fix-port", "0", "--http-port", "0"]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == EXIT_INPUT_ERROR, refused.output
    assert "fix/1" in refused.output and "--full-replay" in refused.output

    async def full_replay() -> None:
        lines: list[str] = []
        opts = _options(data, lines)
        opts.broker_port = None
        opts.full_replay = True
        srv = VenueServer(opts)
        await srv.start()
        await srv.stop()
        assert _restored_from(lines) == 0
        assert any(": 10 journaled commands replayed" in line for line in lines), lines

    asyncio.run(full_replay())
