"""The journal on the command line: ``engine run --journal-dir`` and ``engine recover``.

A journaled replay writes the same events as a plain one, its journal holds the file's commands
with the file's times, and recovery rebuilds the same state (equal state hashes), also after a
torn tail; a corrupt journal stops recovery with exit code 3.
"""

from __future__ import annotations

import errno
import io
import re
import struct
from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner, Result

from tradingfloor.cli import EXIT_CORRUPT_JOURNAL, EXIT_INPUT_ERROR, EXIT_INTERNAL_ERROR, app
from tradingfloor.exchange.journal import Journal, JournalReader
from tradingfloor.exchange.jsonl import CommandDecoder, read_lines

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "commands.jsonl"
LINES = EXAMPLE.read_bytes().splitlines(keepends=True)

SEGMENT_HEADER = 32
FRAME = struct.Struct("<II")
HASH = re.compile(r"^state hash: ([0-9a-f]{64})$", re.M)

runner = CliRunner()


def invoke(*args: str | Path) -> Result:
    return runner.invoke(app, [str(arg) for arg in args])


def state_hash(text: str) -> str:
    found = HASH.findall(text)
    assert len(found) == 1, text
    return str(found[0])


def write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(lines))
    return path


def run(commands: Path, out: Path, *options: str | Path) -> Result:
    result = invoke("engine", "run", "--input", commands, "--output", out, *options)
    assert result.exit_code == 0, result.output
    return result


def segment(journal_dir: Path) -> Path:
    """The journal's only segment file."""
    (path,) = sorted((journal_dir / "journal").glob("journal-*.log"))
    return path


def frames(path: Path) -> list[tuple[int, int]]:
    """(start, end) offsets of every record of a segment (read here, not with the library)."""
    data = path.read_bytes()
    offset, found = SEGMENT_HEADER, []
    while offset < len(data):
        length, _crc = FRAME.unpack_from(data, offset)
        found.append((offset, offset + FRAME.size + length))
        offset += FRAME.size + length
    return found


def test_journaled_run_writes_the_same_events_and_journals_the_file(tmp_path: Path) -> None:
    plain = run(EXAMPLE, tmp_path / "plain.jsonl")
    journaled = run(
        EXAMPLE,
        tmp_path / "journaled.jsonl",
        "--journal-dir",
        tmp_path / "j",
        "--batch",
        "5",
        "--snapshot-every",
        "10",
    )
    assert (tmp_path / "journaled.jsonl").read_bytes() == (tmp_path / "plain.jsonl").read_bytes()
    assert state_hash(journaled.stderr) == state_hash(plain.stderr)
    assert "journal seq  1..48" in journaled.stderr
    assert list((tmp_path / "j" / "snapshots").glob("snapshot-*.bin"))

    decoder = CommandDecoder()
    expected = [decoder.decode(n, raw) for n, raw in read_lines(io.BytesIO(EXAMPLE.read_bytes()))]
    journal = [(r.seq, r.ts, r.command) for r in JournalReader(tmp_path / "j" / "journal")]
    assert journal == [tuple(s) for s in expected if s is not None], "seq 1..n and the file's ts"


def test_recover_gives_the_state_hash_of_the_run(tmp_path: Path) -> None:
    options = ["--journal-dir", tmp_path / "j", "--snapshot-every", "16", "--batch", "8"]
    ran = run(EXAMPLE, tmp_path / "events.jsonl", *options)
    tail_out = ["--events-out", tmp_path / "tail.jsonl"]
    result = invoke("engine", "recover", "--journal-dir", tmp_path / "j", *tail_out)
    assert result.exit_code == 0, result.output
    assert state_hash(result.stdout) == state_hash(ran.stderr)
    assert "snapshot-00000000000000000034.bin (seq 34)" in result.stdout
    assert re.search(r"records replayed +14\n", result.stdout)
    assert re.search(r"torn tail +none\n", result.stdout)
    assert re.search(r"last seq +48\n", result.stdout)
    assert re.search(r"ACME +│ continuous", result.stdout)
    events = (tmp_path / "events.jsonl").read_bytes().splitlines(keepends=True)
    tail = (tmp_path / "tail.jsonl").read_bytes()
    assert tail and events[-len(tail.splitlines()) :] == tail.splitlines(keepends=True)
    first = msgspec.json.decode(tail.splitlines()[0])
    assert first["ts"] >= 1736170213000000000, "events of the commands after the snapshot"


def test_torn_tail_recovers_the_prefix(tmp_path: Path) -> None:
    run(EXAMPLE, tmp_path / "events.jsonl", "--journal-dir", tmp_path / "j")
    path = segment(tmp_path / "j")
    start, end = frames(path)[-1]
    with path.open("r+b") as f:
        f.truncate(start + (end - start) // 2)
    dropped = (end - start) // 2

    prefix = run(write(tmp_path / "prefix.jsonl", LINES[:-1]), tmp_path / "prefix-events.jsonl")
    result = invoke(
        "engine", "recover", "--journal-dir", tmp_path / "j", "--events-out", tmp_path / "re.jsonl"
    )
    assert result.exit_code == 0, result.output
    assert f"dropped {dropped} bytes at offset {start} of {path}" in result.stdout
    assert re.search(r"last seq +47\n", result.stdout)
    assert state_hash(result.stdout) == state_hash(prefix.stderr)
    assert (tmp_path / "re.jsonl").read_bytes() == (tmp_path / "prefix-events.jsonl").read_bytes()
    assert path.stat().st_size == start, "the torn tail is truncated"

    again = invoke("engine", "recover", "--journal-dir", tmp_path / "j")
    assert again.exit_code == 0, again.output
    assert re.search(r"torn tail +none\n", again.stdout)
    assert state_hash(again.stdout) == state_hash(prefix.stderr)


def test_corrupt_middle_record_exits_3(tmp_path: Path) -> None:
    run(EXAMPLE, tmp_path / "events.jsonl", "--journal-dir", tmp_path / "j")
    path = segment(tmp_path / "j")
    start, end = frames(path)[20]
    data = bytearray(path.read_bytes())
    data[end - 1] ^= 0xFF
    path.write_bytes(bytes(data))

    result = invoke(
        "engine", "recover", "--journal-dir", tmp_path / "j", "--events-out", tmp_path / "re.jsonl"
    )
    assert result.exit_code == EXIT_CORRUPT_JOURNAL, result.output
    assert "JOURNAL CORRUPT" in result.stderr
    assert (
        f"{path}: corrupt journal at offset {start} (seq 21): record fails its CRC" in result.stderr
    )
    assert "state hash" not in result.stdout
    assert path.read_bytes() == bytes(data), "nothing is repaired"
    assert not (tmp_path / "re.jsonl").exists()

    more = ["-o", tmp_path / "more.jsonl", "--journal-dir", tmp_path / "j", "--append"]
    appended = invoke("engine", "run", "-i", EXAMPLE, *more)
    assert appended.exit_code == EXIT_CORRUPT_JOURNAL
    assert f"corrupt journal at offset {start}" in appended.stderr


def test_second_run_into_the_same_directory_needs_append(tmp_path: Path) -> None:
    run(EXAMPLE, tmp_path / "events.jsonl", "--journal-dir", tmp_path / "j")
    before = segment(tmp_path / "j").read_bytes()
    out = tmp_path / "again.jsonl"
    result = invoke("engine", "run", "-i", EXAMPLE, "-o", out, "--journal-dir", tmp_path / "j")
    assert result.exit_code == EXIT_INPUT_ERROR
    assert "already holds a journal" in result.stderr and "--append" in result.stderr
    assert segment(tmp_path / "j").read_bytes() == before
    assert not out.exists()


def test_append_continues_the_journal(tmp_path: Path) -> None:
    full = run(EXAMPLE, tmp_path / "full.jsonl")
    first = write(tmp_path / "first.jsonl", LINES[:30])
    rest = write(tmp_path / "rest.jsonl", LINES[30:])
    journal = ["--journal-dir", tmp_path / "j"]
    run(first, tmp_path / "first-events.jsonl", *journal)
    appended = run(rest, tmp_path / "rest-events.jsonl", *journal, "--append", "--batch", "4")
    assert "journal seq  31..48 (continuing after seq 30)" in appended.stderr
    assert "retimed" not in appended.stderr
    events = (tmp_path / "first-events.jsonl").read_bytes()
    events += (tmp_path / "rest-events.jsonl").read_bytes()
    assert events == (tmp_path / "full.jsonl").read_bytes()
    assert state_hash(appended.stderr) == state_hash(full.stderr)

    recovered = invoke("engine", "recover", "--journal-dir", tmp_path / "j")
    assert recovered.exit_code == 0, recovered.output
    assert state_hash(recovered.stdout) == state_hash(full.stderr)
    assert [r.seq for r in JournalReader(tmp_path / "j" / "journal")] == list(range(1, 49))


REFUSED = b'{"type":"add_instrument","symbol":"X","tick_size":"0.01","lot_size":0}\n'
LISTED = b'{"type":"add_instrument","symbol":"X","tick_size":"0.05"}\n'
ORDER = (
    b'{"type":"new_order","symbol":"X","member":"m","cl_ord_id":"%d","side":"buy",'
    b'"qty":10,"price":"1.05"}\n'
)


def test_listings_and_skipped_lines_keep_the_output_identical(tmp_path: Path) -> None:
    lines = [REFUSED, LISTED, ORDER % 1, b'{"type":"nope"}\n', ORDER % 2, ORDER % 3]
    commands = write(tmp_path / "commands.jsonl", lines)
    run(commands, tmp_path / "plain.jsonl", "--skip-invalid")
    options = ["--skip-invalid", "--journal-dir", tmp_path / "j", "--batch", "64"]
    run(commands, tmp_path / "journaled.jsonl", *options)
    journaled = (tmp_path / "journaled.jsonl").read_bytes()
    assert journaled == (tmp_path / "plain.jsonl").read_bytes()
    assert b'"type":"input_error","line":4' in journaled


def test_invalid_line_keeps_the_commands_before_it(tmp_path: Path) -> None:
    commands = write(tmp_path / "commands.jsonl", [LISTED, ORDER % 1, b"{}\n", ORDER % 2])
    out = tmp_path / "events.jsonl"
    args = ["engine", "run", "-i", commands, "-o", out, "--journal-dir", tmp_path / "j"]
    result = invoke(*args)
    assert result.exit_code == EXIT_INPUT_ERROR
    assert f"{commands}:3:" in result.stderr and "keeps the 2 commands" in result.stderr
    assert not out.exists()
    assert [r.seq for r in JournalReader(tmp_path / "j" / "journal")] == [1, 2]


def test_usage_errors(tmp_path: Path) -> None:
    result = invoke("engine", "run", "-i", EXAMPLE, "-o", tmp_path / "e.jsonl", "--batch", "8")
    assert result.exit_code == EXIT_INPUT_ERROR
    assert "--batch needs --journal-dir" in result.stderr
    result = invoke("engine", "recover", "--journal-dir", tmp_path / "missing")
    assert result.exit_code == EXIT_INPUT_ERROR
    assert "no journal in" in result.stderr


def test_failed_journal_write_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(self: Journal) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Journal, "commit", no_space)
    out = tmp_path / "events.jsonl"
    result = invoke("engine", "run", "-i", EXAMPLE, "-o", out, "--journal-dir", tmp_path / "j")
    assert result.exit_code == EXIT_INTERNAL_ERROR
    assert "journaled replay failed" in result.stderr and "No space left" in result.stderr
    assert not out.exists()
