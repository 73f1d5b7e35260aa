"""Journal retention: closed segments below the horizon are archived, and stay readable."""

from __future__ import annotations

import gzip
import itertools
import time
from pathlib import Path

import pytest
from fake_machine import FakeMachine
from journal_files import frames, segments

from tradingfloor.exchange.engine.commands import Tick
from tradingfloor.exchange.journal import ARCHIVE_DIR, Journal, JournalReader
from tradingfloor.exchange.recovery import recover
from tradingfloor.exchange.retention import RetentionPolicy, archive_segments
from tradingfloor.exchange.sequencer import JournaledEngine
from tradingfloor.exchange.snapshot import SnapshotStore

LATER = time.time() + 10 * 24 * 3600  # "now" for the archiving pass: every file is old

Dirs = tuple[Path, Path]


def write(dirs: Dirs, n: int, **options: object) -> JournaledEngine[FakeMachine]:
    clock = itertools.count(1_000, 10).__next__
    pipeline, _ = JournaledEngine.open(
        *dirs,
        FakeMachine,
        clock=clock,
        segment_bytes=200,
        **options,  # type: ignore[arg-type]
    )
    for _ in range(n):
        pipeline.submit([Tick()])
    return pipeline


def archived(jdir: Path) -> list[str]:
    return sorted(p.name for p in (jdir / ARCHIVE_DIR).glob("*.gz"))


def test_only_closed_segments_below_the_horizon_beyond_the_kept_ones_are_archived(
    no_fsync: None, dirs: Dirs
) -> None:
    write(dirs, 45, snapshot_every=0).close()
    before = [(r.seq, r.ts, r.command) for r in JournalReader(dirs[0])]
    live = segments(dirs[0])
    assert len(live) >= 6
    last_seqs = [frames(p)[-1].seq for p in live]
    horizon = last_seqs[3]  # the first four segments are wholly below it
    policy = RetentionPolicy(keep_segments=2, keep_seconds=0)
    written = archive_segments(dirs[0], horizon, policy, now=LATER)
    assert [p.name for p in written] == [p.name + ".gz" for p in live[:4]]
    assert segments(dirs[0]) == live[4:]
    for path, original in zip(written, live[:4], strict=True):
        assert gzip.decompress(path.read_bytes()).startswith(b"TFJOURNL")
        assert not original.exists()
    # replay and audit read the same journal, every record checked as before
    assert [(r.seq, r.ts, r.command) for r in JournalReader(dirs[0])] == before
    _machine, report = recover(dirs[0], dirs[1].parent / "no-snapshots", FakeMachine)
    assert report.last_seq == 45 and report.records_replayed == 45
    # the rest: above the horizon, or among the newest kept
    assert archive_segments(dirs[0], 45, policy, now=LATER)[-1].name == live[-3].name + ".gz"
    assert segments(dirs[0]) == live[-2:]


def test_young_segments_and_the_open_one_stay(no_fsync: None, dirs: Dirs) -> None:
    write(dirs, 20, snapshot_every=0).close()
    live = segments(dirs[0])
    assert archive_segments(dirs[0], 20, RetentionPolicy(keep_segments=1), now=time.time()) == []
    written = archive_segments(dirs[0], 20, RetentionPolicy(keep_segments=1), now=LATER)
    assert len(written) == len(live) - 1 and segments(dirs[0]) == live[-1:]


def test_an_interrupted_pass_leaves_a_readable_journal(no_fsync: None, dirs: Dirs) -> None:
    write(dirs, 20, snapshot_every=0).close()
    before = list(JournalReader(dirs[0]))
    first = segments(dirs[0])[0]
    data = first.read_bytes()
    archive_segments(dirs[0], 20, RetentionPolicy(keep_segments=1, keep_seconds=0), now=LATER)
    first.write_bytes(data)  # as if the crash came before the live file was unlinked
    (dirs[0] / ARCHIVE_DIR / "x.gz.tmp").write_bytes(b"half")
    assert list(JournalReader(dirs[0])) == before
    archive_segments(dirs[0], 20, RetentionPolicy(keep_segments=1, keep_seconds=0), now=LATER)
    assert not first.exists() and not (dirs[0] / ARCHIVE_DIR / "x.gz.tmp").exists()
    assert list(JournalReader(dirs[0])) == before


def test_a_damaged_archive_is_corruption_like_a_damaged_segment(no_fsync: None, dirs: Dirs) -> None:
    write(dirs, 20, snapshot_every=0).close()
    archive_segments(dirs[0], 20, RetentionPolicy(keep_segments=1, keep_seconds=0), now=LATER)
    path = dirs[0] / ARCHIVE_DIR / archived(dirs[0])[0]
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-1]))
    with pytest.raises(Exception, match="closed segment"):
        list(JournalReader(dirs[0]))


def test_the_pipeline_archives_after_each_snapshot_up_to_the_slowest_consumer(
    no_fsync: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "time", lambda: LATER)
    policy = RetentionPolicy(keep_segments=1, keep_seconds=0)
    for mark, expect_archives in ((None, True), (0, False)):
        root = tmp_path / f"mark-{mark}"
        pipeline = JournaledEngine(
            FakeMachine(),
            Journal.open(root / "j", segment_bytes=200),
            snapshots=SnapshotStore(root / "s"),
            snapshot_every=10,
            clock=itertools.count(1_000, 10).__next__,
            retention=policy,
            consumer_horizon=None if mark is None else (lambda m=mark: m),
        )
        for _ in range(30):
            pipeline.submit([Tick()])
        pipeline.wait_for_snapshot()
        pipeline.close()
        # archived up to the snapshot at seq 30, unless a consumer at seq 0 holds it back
        assert bool(archived(root / "j")) is expect_archives
        assert [r.seq for r in JournalReader(root / "j")] == list(range(1, 31))
