"""`serve` and durability: dropped journal bytes reported at start-up, corruption refused."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from journal_files import flip, frames, segments
from typer.testing import CliRunner

from tradingfloor.cli import EXIT_CORRUPT_JOURNAL, app
from tradingfloor.exchange.journal import JournalCorruptError
from tradingfloor.node.serve import ServeOptions, VenueServer


def options(data_dir: Path, lines: list[str]) -> ServeOptions:
    return ServeOptions(
        data_dir=data_dir,
        fix_port=0,
        http_port=0,
        broker_port=None,
        udp_feed=None,
        tick_interval=None,
        announce=lines.append,
    )


async def start_and_stop(data: Path, **extra: str) -> list[str]:
    lines: list[str] = []
    opts = options(data, lines)
    for name, value in extra.items():
        setattr(opts, name, value)
    server = VenueServer(opts)
    try:
        await server.start()
    finally:
        await server.stop()
    return lines


async def test_a_torn_tail_is_reported_in_the_output_and_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "venue"
    await start_and_stop(data)  # lists the configured instruments: five records
    path = segments(data / "journal")[-1]
    last = frames(path)[-1]
    # A write torn by a crash: the start of one more record, never acknowledged (so no
    # consumer saw it), at the end of the file.
    committed = path.read_bytes()
    with path.open("ab") as f:
        f.write(committed[last.start : last.end - 3])
    with caplog.at_level(logging.WARNING):
        lines = await start_and_stop(data)
    [line] = [line for line in lines if line.startswith("Journal: dropped")]
    torn_end = len(committed) + (last.end - 3 - last.start)
    expected = f"bytes {len(committed)}..{torn_end} of {path}"
    assert expected in line and "torn write" in line
    assert any(expected in r.getMessage() for r in caplog.records)


async def test_a_damaged_last_record_refuses_to_start_until_the_operator_cuts_it(
    tmp_path: Path,
) -> None:
    data = tmp_path / "venue"
    await start_and_stop(data)
    path = segments(data / "journal")[-1]
    last = frames(path)[-1]
    flip(path, last.end - 1, 0x01)
    with pytest.raises(JournalCorruptError) as info:
        await start_and_stop(data)
    assert (info.value.offset, info.value.seq) == (last.start, last.seq)
    # The cut record was acknowledged and its consumers (the FIX gateway's mark) had seen it:
    # cutting it makes the journal end before their marks, so a new epoch is needed as well.
    lines = await start_and_stop(
        data, truncate_journal_at=info.value.location, new_epoch_by="test operator"
    )
    [line] = [line for line in lines if line.startswith("Journal: dropped")]
    assert "CORRUPT" in line and f"bytes {last.start}..{last.end}" in line
    assert (data / "journal" / "dropped").is_dir()
    # the stop's snapshot held the cut record: it is set aside, not used and not deleted
    [aside] = [line for line in lines if line.startswith("Snapshot past the journal's end")]
    assert aside.endswith(f"snapshot-{last.seq:020d}.bin")
    assert (data / "snapshots" / "ahead-of-journal" / f"snapshot-{last.seq:020d}.bin").is_file()


def test_serve_exits_with_the_corrupt_journal_code_naming_the_place(tmp_path: Path) -> None:
    data = tmp_path / "venue"
    asyncio.run(start_and_stop(data))
    path = segments(data / "journal")[-1]
    last = frames(path)[-1]
    flip(path, last.end - 1, 0x01)
    result = CliRunner().invoke(app, ["serve", "--data-dir", str(data), "--no-broker"])
    assert result.exit_code == EXIT_CORRUPT_JOURNAL, result.output
    assert f"--truncate-corrupt-journal {path.name}:{last.start}" in result.output
    assert f"seq {last.seq}" in result.output
