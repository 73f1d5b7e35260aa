"""Journal edge cases found by mutation testing (docs/testing.md, journal.py survivors).

Each test here failed against one or more surviving mutmut mutants of exchange/journal.py:
boundaries of the torn-write rule (exact sector ends, short zero tails, eight-byte remainders,
a valid record one byte after damage), the largest record, operator truncation at a segment's
first record or inside its header, the texts an operator is shown, and file descriptors.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import pytest
from journal_files import FRAME, FsyncCounter, frames, segments, truncate

from tradingfloor.exchange.engine.commands import NewOrder
from tradingfloor.exchange.engine.types import Side
from tradingfloor.exchange.journal import (
    MAX_RECORD_BYTES,
    SECTOR_BYTES,
    SEGMENT_HEADER_SIZE,
    DroppedBytes,
    Journal,
    JournalCorruptError,
    JournalError,
    JournalReader,
    JournalRecord,
    TornTail,
    encode_record,
    encode_segment_header,
    repair_torn_tail,
    segment_name,
    truncate_corrupt,
)


def order(n: int, cl_ord_id: str | None = None, symbol: str = "ACME") -> NewOrder:
    return NewOrder(
        symbol=symbol,
        member="M1",
        cl_ord_id=f"c{n}" if cl_ord_id is None else cl_ord_id,
        side=Side.BUY,
        qty=n,
        price=100,
    )


def rec(seq: int, cl_ord_id: str | None = None) -> JournalRecord:
    return JournalRecord(seq=seq, ts=100 * seq, command=order(seq, cl_ord_id))


def write_journal(jdir: Path, n: int, *, segment_bytes: int = 1 << 20) -> None:
    with Journal.open(jdir, segment_bytes=segment_bytes) as journal:
        for seq in range(1, n + 1):
            journal.append(rec(seq))
            journal.commit()


def read_all(jdir: Path) -> tuple[list[JournalRecord], JournalReader]:
    reader = JournalReader(jdir)
    return list(reader), reader


def segment_ending_at(jdir: Path, size: int) -> Path:
    """A one-segment journal whose last record ends exactly at byte ``size`` of the file, with
    its last two bytes non-zero (so zeroing them changes the record)."""
    jdir.mkdir(parents=True, exist_ok=True)
    head = encode_segment_header(1, 0) + encode_record(rec(1))
    for pad in range(1, 2000):
        last = encode_record(rec(2, cl_ord_id="c" * pad))
        if len(head) + len(last) == size and last[-1] and last[-2]:
            path = jdir / segment_name(1)
            path.write_bytes(head + last)
            return path
    raise AssertionError(f"no padding gives a record ending at {size}")


# ------------------------------------------------------------------------------ torn or corrupt


def test_short_zero_tail_inside_one_sector_is_torn(no_fsync: None, tmp_path: Path) -> None:
    """All zeros from the bad record to the end, with no sector boundary in between."""
    write_journal(tmp_path, 3)
    (path,) = segments(tmp_path)
    size = path.stat().st_size
    assert size + 20 < SECTOR_BYTES
    with path.open("ab") as f:
        f.write(b"\x00" * 20)
    records, reader = read_all(tmp_path)
    assert [r.seq for r in records] == [1, 2, 3]
    assert reader.torn is not None
    assert (reader.torn.offset, reader.torn.dropped_bytes) == (size, 20)


def test_zeroed_end_of_a_record_that_ends_on_a_sector_boundary_is_corruption(
    no_fsync: None, tmp_path: Path
) -> None:
    """Zeros starting inside the last sector and ending with it reach no sector boundary."""
    path = segment_ending_at(tmp_path, 2 * SECTOR_BYTES)
    start = frames(path)[-1].start
    data = path.read_bytes()
    path.write_bytes(data[:-3] + b"\x00" * 3)
    with pytest.raises(JournalCorruptError) as info:
        read_all(tmp_path)
    assert (info.value.offset, info.value.seq) == (start, 2)


def test_one_zero_byte_from_a_sector_boundary_is_torn(no_fsync: None, tmp_path: Path) -> None:
    """The record's last byte is the first of a sector and never reached the disk."""
    path = segment_ending_at(tmp_path, SECTOR_BYTES + 1)
    start = frames(path)[-1].start
    data = path.read_bytes()
    path.write_bytes(data[:-1] + b"\x00")
    records, reader = read_all(tmp_path)
    assert [r.seq for r in records] == [1]
    assert reader.torn is not None and reader.torn.offset == start
    assert "zero" in reader.torn.reason


def test_eight_bytes_with_a_zero_length_after_the_last_record_is_corruption(
    no_fsync: None, tmp_path: Path
) -> None:
    """A whole frame header is there (not fewer than 8 bytes) and says nothing runs past."""
    write_journal(tmp_path, 2)
    (path,) = segments(tmp_path)
    size = path.stat().st_size
    with path.open("ab") as f:
        f.write(FRAME.pack(0, 0xDEADBEEF))
    with pytest.raises(JournalCorruptError, match="complete record is damaged") as info:
        read_all(tmp_path)
    assert info.value.offset == size


@pytest.mark.parametrize(
    "trailer",
    [
        b"\x01" + encode_record(rec(3)),  # a whole record one byte after the damage
        b"\x01" + FRAME.pack(1, zlib.crc32(b"z")) + b"z",  # the smallest frame, at the very end
    ],
    ids=["record", "smallest-frame-at-the-end"],
)
def test_a_valid_frame_one_byte_after_damage_is_corruption(
    no_fsync: None, tmp_path: Path, trailer: bytes
) -> None:
    write_journal(tmp_path, 2)
    (path,) = segments(tmp_path)
    size = path.stat().st_size
    with path.open("ab") as f:
        f.write(trailer)
    with pytest.raises(JournalCorruptError) as info:
        read_all(tmp_path)
    assert info.value.offset == size


def test_closed_segment_damage_names_the_seq_and_the_reason(no_fsync: None, tmp_path: Path) -> None:
    write_journal(tmp_path, 12, segment_bytes=200)
    first = segments(tmp_path)[0]
    last = frames(first)[-1]
    truncate(first, last.end - 1)
    with pytest.raises(JournalCorruptError) as info:
        read_all(tmp_path)
    error = info.value
    assert (error.path, error.offset, error.seq) == (first, last.start, last.seq)
    length = last.end - last.start - FRAME.size
    assert error.reason == (
        f"record length {length} runs past the end of the file (in a closed segment)"
    )


def test_a_record_of_exactly_max_record_bytes(no_fsync: None, tmp_path: Path) -> None:
    """The largest payload append accepts is read back; cut short, it is a torn write."""
    probe = len(encode_record(JournalRecord(1, 1, order(1, symbol="x" * (MAX_RECORD_BYTES - 100)))))
    symbol = "x" * (MAX_RECORD_BYTES - 100 + MAX_RECORD_BYTES + FRAME.size - probe)
    big = JournalRecord(seq=1, ts=1, command=order(1, symbol=symbol))
    assert len(encode_record(big)) == FRAME.size + MAX_RECORD_BYTES
    with Journal.open(tmp_path) as journal:
        journal.append(big)
        journal.commit()
    records, reader = read_all(tmp_path)
    assert records == [big] and reader.torn is None
    (path,) = segments(tmp_path)
    truncate(path, path.stat().st_size - 1)
    records, reader = read_all(tmp_path)
    assert records == [] and reader.torn is not None
    assert reader.torn.offset == SEGMENT_HEADER_SIZE


# ------------------------------------------------------------------------------ operator truncation


def test_truncate_corrupt_at_a_segments_first_record_keeps_its_header(
    no_fsync: None, tmp_path: Path
) -> None:
    write_journal(tmp_path, 12, segment_bytes=200)
    first, second, *_later = segments(tmp_path)
    first_seq = frames(second)[0].seq
    dropped = truncate_corrupt(tmp_path, f"{second.name}:{SEGMENT_HEADER_SIZE}")
    assert (dropped[0].path, dropped[0].start) == (second, SEGMENT_HEADER_SIZE)
    assert segments(tmp_path) == [first, second]
    assert second.stat().st_size == SEGMENT_HEADER_SIZE
    records, reader = read_all(tmp_path)
    assert [r.seq for r in records] == list(range(1, first_seq)) and reader.torn is None


def test_truncate_corrupt_inside_a_header_drops_the_whole_segment(
    no_fsync: None, tmp_path: Path
) -> None:
    write_journal(tmp_path, 12, segment_bytes=200)
    first, second, *_later = segments(tmp_path)
    original = second.read_bytes()
    dropped = truncate_corrupt(tmp_path, f"{second.name}:5")
    assert (dropped[0].path, dropped[0].start, dropped[0].end) == (second, 0, len(original))
    assert dropped[0].saved_to is not None and dropped[0].saved_to.read_bytes() == original
    assert segments(tmp_path) == [first] and not second.exists()
    assert [r.seq for r in read_all(tmp_path)[0]] == [f.seq for f in frames(first)]


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("nonsense", "expected SEGMENT_NAME:OFFSET"),
        (f"{segment_name(1)}:abc", "expected SEGMENT_NAME:OFFSET"),
        ("x:1", "expected SEGMENT_NAME:OFFSET"),
        (f"{segment_name(9)}:40", "is not a segment of the journal"),
    ],
)
def test_truncate_corrupt_says_what_is_wrong_with_the_place(
    no_fsync: None, tmp_path: Path, location: str, message: str
) -> None:
    write_journal(tmp_path, 3)
    with pytest.raises(ValueError, match=message):
        truncate_corrupt(tmp_path, location)
    assert len(read_all(tmp_path)[0]) == 3


def test_dropped_bytes_describe_the_range_and_its_kind(tmp_path: Path) -> None:
    path = tmp_path / segment_name(1)
    torn = DroppedBytes(path, 100, 130, "incomplete record header", torn=True)
    assert torn.describe() == (
        f"dropped 30 bytes (torn write (never acknowledged)) at bytes 100..130 of {path}: "
        "incomplete record header"
    )
    saved = tmp_path / "dropped" / "x"
    cut = DroppedBytes(path, 32, 232, "cut at the reported corruption", torn=False, saved_to=saved)
    assert cut.describe() == (
        f"dropped 200 bytes (CORRUPT committed data) at bytes 32..232 of {path}: "
        f"cut at the reported corruption, copy kept in {saved}"
    )


# ------------------------------------------------------------------------------ durability, fds


def test_repairing_a_torn_tail_fsyncs_the_truncated_segment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(os, "fsync", FsyncCounter())
    write_journal(tmp_path, 2)
    (path,) = segments(tmp_path)
    size = path.stat().st_size
    with path.open("ab") as f:
        f.write(b"\x07\x00")
    synced: list[str] = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")))
    repair_torn_tail(TornTail(path, size, 2, "incomplete record header"))
    assert path.stat().st_size == size
    assert synced == [str(path)]


def open_fds_on(path: Path) -> list[str]:
    fds = Path("/proc/self/fd")
    found = []
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target == str(path):
            found.append(fd.name)
    return found


def test_rotation_closes_the_previous_segment(no_fsync: None, tmp_path: Path) -> None:
    with Journal.open(tmp_path, segment_bytes=SEGMENT_HEADER_SIZE + 1) as journal:
        journal.append(rec(1))
        journal.commit()
        first = segments(tmp_path)[0]
        assert len(open_fds_on(first)) == 1
        journal.append(rec(2))
        journal.commit()  # starts segment 2
        assert open_fds_on(first) == []
        assert len(open_fds_on(segments(tmp_path)[1])) == 1


# ------------------------------------------------------------------------------ what an error says


def test_equal_timestamps_are_read_back(no_fsync: None, tmp_path: Path) -> None:
    """append accepts a ts equal to the previous one; the reader must accept it too."""
    with Journal.open(tmp_path) as journal:
        for seq in (1, 2, 3):
            journal.append(JournalRecord(seq=seq, ts=50, command=order(seq)))
        journal.commit()
    records, reader = read_all(tmp_path)
    assert [(r.seq, r.ts) for r in records] == [(1, 50), (2, 50), (3, 50)]
    assert (reader.last_seq, reader.last_ts) == (3, 50)


def craft(jdir: Path, records: list[JournalRecord], tail: bytes = b"") -> Path:
    jdir.mkdir(parents=True, exist_ok=True)
    path = jdir / segment_name(1)
    path.write_bytes(encode_segment_header(1, 0) + b"".join(map(encode_record, records)) + tail)
    return path


def test_sequence_gap_error_names_the_place(tmp_path: Path) -> None:
    path = craft(tmp_path, [rec(1), rec(3)])
    with pytest.raises(JournalCorruptError) as info:
        read_all(tmp_path)
    error = info.value
    assert (error.path, error.offset, error.seq) == (path, frames(path)[1].start, 2)
    assert error.reason == "sequence gap: expected seq 2, found 3"


def test_backwards_timestamp_error_names_the_place(tmp_path: Path) -> None:
    backwards = JournalRecord(seq=2, ts=99, command=order(2))
    path = craft(tmp_path, [rec(1), backwards])
    with pytest.raises(JournalCorruptError) as info:
        read_all(tmp_path)
    error = info.value
    assert (error.path, error.offset, error.seq) == (path, frames(path)[1].start, 2)
    assert error.reason == "timestamp goes backwards at seq 2: 99 < 100"


def test_undecodable_record_error_names_the_place(tmp_path: Path) -> None:
    payload = b"\xc1"  # never valid msgpack
    path = craft(tmp_path, [rec(1)], FRAME.pack(1, zlib.crc32(payload)) + payload)
    with pytest.raises(JournalCorruptError) as info:
        read_all(tmp_path)
    error = info.value
    offset = SEGMENT_HEADER_SIZE + len(encode_record(rec(1)))
    assert (error.path, error.offset, error.seq) == (path, offset, 2)
    assert error.reason.startswith("undecodable record: ")


@pytest.mark.parametrize(
    ("offset", "reason"),
    [
        (0, "not a journal segment (bad magic)"),
        (8, "segment header fails its CRC"),
        (28, "segment header fails its CRC"),
        (None, "segment header is incomplete"),
    ],
)
def test_damaged_header_error_names_the_segment(
    tmp_path: Path, offset: int | None, reason: str
) -> None:
    path = craft(tmp_path, [rec(1)])
    data = bytearray(path.read_bytes())
    if offset is None:
        del data[SEGMENT_HEADER_SIZE - 1 :]
    else:
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError) as info:
        read_all(tmp_path)
    error = info.value
    assert (error.path, error.offset, error.seq, error.reason) == (path, 0, 1, reason)


def test_unsupported_version_error(tmp_path: Path) -> None:
    path = craft(tmp_path, [rec(1)])
    data = bytearray(path.read_bytes())
    head = _header_with_version(bytes(data[:SEGMENT_HEADER_SIZE]), 2)
    path.write_bytes(head + bytes(data[SEGMENT_HEADER_SIZE:]))
    with pytest.raises(JournalCorruptError) as info:
        read_all(tmp_path)
    assert (info.value.path, info.value.reason) == (path, "unsupported journal version 2")


def _header_with_version(header: bytes, version: int) -> bytes:
    head = header[:8] + version.to_bytes(2, "little") + header[10:28]
    return head + zlib.crc32(head).to_bytes(4, "little")


# ------------------------------------------------------------------------------ reader bounds


def test_empty_directory_reads_as_nothing(tmp_path: Path) -> None:
    records, reader = read_all(tmp_path)
    assert records == [] and (reader.last_seq, reader.last_ts, reader.torn) == (0, 0, None)


def test_journal_missing_only_its_first_record_is_a_gap(tmp_path: Path) -> None:
    """One segment starting at seq 2 when the reader needs seq 1."""
    path = tmp_path / segment_name(2)
    path.write_bytes(encode_segment_header(2, 0) + encode_record(rec(2)))
    with pytest.raises(JournalCorruptError, match="sequence gap") as info:
        read_all(tmp_path)
    assert (info.value.path, info.value.offset, info.value.seq) == (path, 0, 1)


def test_journal_starting_after_the_wanted_seq_names_its_first_segment(
    no_fsync: None, tmp_path: Path
) -> None:
    write_journal(tmp_path, 12, segment_bytes=200)
    segments(tmp_path)[0].unlink()
    second = segments(tmp_path)[0]
    with pytest.raises(JournalCorruptError) as info:
        read_all(tmp_path)
    error = info.value
    assert (error.path, error.offset, error.seq) == (second, 0, 1)
    assert error.reason == "sequence gap: expected a segment starting at seq 1"


def test_segment_base_ts_disagreeing_with_the_last_ts_names_the_segment(
    no_fsync: None, tmp_path: Path
) -> None:
    write_journal(tmp_path, 12, segment_bytes=200)
    second = segments(tmp_path)[1]
    first_seq = frames(second)[0].seq
    data = second.read_bytes()
    second.write_bytes(encode_segment_header(first_seq, 1) + data[SEGMENT_HEADER_SIZE:])
    with pytest.raises(JournalCorruptError) as info:
        read_all(tmp_path)
    error = info.value
    last_ts = 100 * (first_seq - 1)
    assert (error.path, error.offset, error.seq) == (second, 0, first_seq)
    assert error.reason == f"segment base_ts 1 != last ts {last_ts} before it"


# ------------------------------------------------------------------------------ the writer


def test_open_names_a_damaged_last_segment(no_fsync: None, tmp_path: Path) -> None:
    write_journal(tmp_path, 2)
    (path,) = segments(tmp_path)
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError) as info:
        Journal.open(tmp_path)
    assert (info.value.path, info.value.offset, info.value.seq) == (path, 0, 1)


def test_open_reports_the_torn_tail_it_repaired(no_fsync: None, tmp_path: Path) -> None:
    write_journal(tmp_path, 2)
    (path,) = segments(tmp_path)
    size = path.stat().st_size
    with path.open("ab") as f:
        f.write(b"\x07\x00\x00")
    with Journal.open(tmp_path) as journal:
        assert journal.repaired == TornTail(path, size, 3, "incomplete record header")


def test_new_journal_starts_at_seq_zero_ts_zero(no_fsync: None, tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        assert (journal.last_seq, journal.last_ts) == (0, 0)
        journal.append(JournalRecord(seq=1, ts=0, command=order(1)))
        journal.commit()
    assert [(r.seq, r.ts) for r in read_all(tmp_path)[0]] == [(1, 0)]


def test_segment_bytes_must_exceed_the_header(no_fsync: None, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"segment_bytes must exceed {SEGMENT_HEADER_SIZE}"):
        Journal.open(tmp_path, segment_bytes=SEGMENT_HEADER_SIZE)
    Journal.open(tmp_path, segment_bytes=SEGMENT_HEADER_SIZE + 1).close()


def test_segment_rotates_once_exactly_full(no_fsync: None, tmp_path: Path) -> None:
    """'Closed once it has grown to at least segment_bytes': equal is full."""
    full = SEGMENT_HEADER_SIZE + len(encode_record(rec(1)))
    with Journal.open(tmp_path, segment_bytes=full) as journal:
        journal.append(rec(1))
        journal.commit()
        assert segments(tmp_path)[0].stat().st_size == full
        journal.append(rec(2))
        journal.commit()
    assert [p.name for p in segments(tmp_path)] == [segment_name(1), segment_name(2)]


def test_a_closed_journal_says_so(no_fsync: None, tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    journal.close()
    with pytest.raises(JournalError, match="journal is closed"):
        journal.append(rec(1))


def test_close_releases_the_segment_and_closing_twice_is_harmless(
    no_fsync: None, tmp_path: Path
) -> None:
    journal = Journal.open(tmp_path)
    (path,) = segments(tmp_path)
    assert len(open_fds_on(path)) == 1
    journal.close()
    assert open_fds_on(path) == []
    journal.close()
