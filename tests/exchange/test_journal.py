"""Journal format, append and group commit, torn-tail and corruption detection, segments."""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from pathlib import Path

import msgspec
import pytest
from journal_files import (
    FRAME,
    SEGMENT_HEADER,
    FsyncCounter,
    flip,
    frames,
    segments,
    truncate,
)

from tradingfloor.exchange._durable import DirectoryLockedError
from tradingfloor.exchange.engine.commands import CancelOrder, NewOrder, Tick
from tradingfloor.exchange.engine.types import Side
from tradingfloor.exchange.journal import (
    JOURNAL_MAGIC,
    JOURNAL_VERSION,
    MAX_RECORD_BYTES,
    SECTOR_BYTES,
    SEGMENT_HEADER_SIZE,
    Journal,
    JournalCorruptError,
    JournalError,
    JournalReader,
    JournalRecord,
    decode_payload,
    encode_record,
    encode_segment_header,
    segment_name,
    truncate_corrupt,
)


def order(n: int) -> NewOrder:
    return NewOrder(symbol="ACME", member="M1", cl_ord_id=f"c{n}", side=Side.BUY, qty=n, price=100)


def rec(seq: int, ts: int | None = None) -> JournalRecord:
    return JournalRecord(seq=seq, ts=100 * seq if ts is None else ts, command=order(seq))


def write_journal(jdir: Path, n: int, *, segment_bytes: int = 1 << 20) -> list[JournalRecord]:
    """n records, each committed on its own."""
    records = [rec(i) for i in range(1, n + 1)]
    with Journal.open(jdir, segment_bytes=segment_bytes) as journal:
        for record in records:
            journal.append(record)
            journal.commit()
    return records


def read_all(jdir: Path, after_seq: int = 0) -> tuple[list[JournalRecord], JournalReader]:
    reader = JournalReader(jdir, after_seq=after_seq)
    return list(reader), reader


def only_segment(jdir: Path) -> Path:
    (path,) = segments(jdir)
    return path


# ------------------------------------------------------------------------------ encoding


def test_record_frame_layout() -> None:
    record = JournalRecord(seq=7, ts=123_456_789, command=order(7))
    framed = encode_record(record)
    length, crc = struct.unpack_from("<II", framed)
    payload = framed[8:]
    assert length == len(payload) and crc == zlib.crc32(payload)
    seq, ts, command = msgspec.msgpack.decode(payload)
    assert (seq, ts) == (7, 123_456_789)
    assert command["type"] == "new_order" and command["cl_ord_id"] == "c7"
    assert decode_payload(payload) == record


def test_every_command_type_round_trips(no_fsync: None, tmp_path: Path) -> None:
    commands = [order(1), CancelOrder(symbol="ACME", member="M1", order_id=3), Tick()]
    with Journal.open(tmp_path) as journal:
        for seq, command in enumerate(commands, start=1):
            journal.append(JournalRecord(seq=seq, ts=seq, command=command))
        journal.commit()
    records, reader = read_all(tmp_path)
    assert [r.command for r in records] == commands
    assert (reader.last_seq, reader.last_ts, reader.torn) == (3, 3, None)


def test_segment_header_layout() -> None:
    header = encode_segment_header(5, 777)
    assert len(header) == SEGMENT_HEADER_SIZE == SEGMENT_HEADER == 32
    magic, version, flags, first_seq, base_ts, crc = struct.unpack("<8sHHQqI", header)
    assert (magic, version, flags) == (JOURNAL_MAGIC, JOURNAL_VERSION, 0)
    assert (first_seq, base_ts) == (5, 777)
    assert crc == zlib.crc32(header[:28])


def test_new_journal_is_one_header_only_segment(no_fsync: None, tmp_path: Path) -> None:
    Journal.open(tmp_path).close()
    path = only_segment(tmp_path)
    assert path.name == segment_name(1) == "journal-00000000000000000001.log"
    assert path.read_bytes() == encode_segment_header(1, 0)


def test_record_over_max_size_is_refused(no_fsync: None, tmp_path: Path) -> None:
    huge = NewOrder(symbol="x" * MAX_RECORD_BYTES, member="M", cl_ord_id="c", side=Side.BUY, qty=1)
    with Journal.open(tmp_path) as journal:
        with pytest.raises(JournalError, match="MAX_RECORD_BYTES"):
            journal.append(JournalRecord(seq=1, ts=1, command=huge))
        journal.append(rec(1))  # nothing was buffered; the journal is still usable
        journal.commit()
        assert journal.last_seq == 1


# ------------------------------------------------------------------------------ appending


def test_append_checks_seq_and_ts(no_fsync: None, tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        with pytest.raises(JournalError, match="expected seq 1"):
            journal.append(rec(2))
        journal.append(rec(1, ts=50))
        with pytest.raises(JournalError, match="below the last ts"):
            journal.append(rec(2, ts=49))
        journal.append(rec(2, ts=50))  # equal timestamps are fine
        assert (journal.pending, journal.last_seq) == (2, 0)
        journal.commit()
        assert (journal.pending, journal.last_seq, journal.last_ts) == (0, 2, 50)


def test_commit_is_one_fsync_per_group(fsync_counter: FsyncCounter, tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        fsync_counter.calls = 0
        for seq in range(1, 51):
            journal.append(rec(seq))
        assert fsync_counter.calls == 0  # append only buffers
        journal.commit()
        assert fsync_counter.calls == 1
        journal.commit()  # nothing buffered: nothing to do
        assert fsync_counter.calls == 1
    assert [f.seq for f in frames(only_segment(tmp_path))] == list(range(1, 51))


def test_uncommitted_records_never_reach_the_file(no_fsync: None, tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        journal.append(rec(1))
        journal.commit()
        journal.append(rec(2))
        journal.discard()
        journal.append(rec(2, ts=999))
    # closed without commit: seq 2 is dropped
    records, _ = read_all(tmp_path)
    assert records == [rec(1)]


def test_failed_write_makes_the_journal_unusable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    journal = Journal.open(tmp_path)

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    journal.append(rec(1))
    with pytest.raises(OSError):
        journal.commit()
    assert journal.last_seq == 0
    with pytest.raises(JournalError, match="restart and recover"):
        journal.append(rec(1))
    journal.close()


def test_one_open_journal_per_directory(no_fsync: None, tmp_path: Path) -> None:
    with Journal.open(tmp_path), pytest.raises(DirectoryLockedError):
        Journal.open(tmp_path)
    Journal.open(tmp_path).close()  # released on close


def test_open_continues_after_the_last_record(no_fsync: None, tmp_path: Path) -> None:
    write_journal(tmp_path, 3)
    with Journal.open(tmp_path) as journal:
        assert (journal.last_seq, journal.last_ts, journal.repaired) == (3, 300, None)
        journal.append(rec(4))
        journal.commit()
    assert [r.seq for r in read_all(tmp_path)[0]] == [1, 2, 3, 4]


def test_open_removes_leftover_temp_files(no_fsync: None, tmp_path: Path) -> None:
    write_journal(tmp_path, 1)
    stale = tmp_path / (segment_name(2) + ".tmp")
    stale.write_bytes(b"half a header")
    Journal.open(tmp_path).close()
    assert not stale.exists()


# ------------------------------------------------------------------------------ torn tails


def test_torn_tail_at_every_offset_of_the_last_record(no_fsync: None, tmp_path: Path) -> None:
    base = tmp_path / "base"
    write_journal(base, 5)
    last = frames(only_segment(base))[-1]
    for cut in range(last.start, last.end + 1):
        jdir = tmp_path / f"cut{cut}"
        shutil.copytree(base, jdir)
        path = only_segment(jdir)
        truncate(path, cut)
        records, reader = read_all(jdir)
        if cut == last.end:
            assert [r.seq for r in records] == [1, 2, 3, 4, 5] and reader.torn is None
            continue
        assert [r.seq for r in records] == [1, 2, 3, 4]
        assert reader.last_seq == 4
        if cut == last.start:
            assert reader.torn is None
        else:
            assert reader.torn is not None
            assert (reader.torn.offset, reader.torn.dropped_bytes) == (last.start, cut - last.start)
        with Journal.open(jdir) as journal:  # truncates the tail, then appends after seq 4
            assert journal.last_seq == 4
            assert path.stat().st_size == last.start
            journal.append(rec(5, ts=555))
            journal.commit()
        assert [(r.seq, r.ts) for r in read_all(jdir)[0]][-2:] == [(4, 400), (5, 555)]


def test_flipped_bit_in_the_last_record_is_corruption(no_fsync: None, tmp_path: Path) -> None:
    """A committed, complete last record that fails its CRC is damage, not a torn write."""
    base = tmp_path / "base"
    write_journal(base, 4)
    last = frames(only_segment(base))[-1]
    for offset in range(last.start, last.end):  # length, CRC and payload
        for mask in (0x01, 0x80, 0xFF):
            jdir = tmp_path / f"flip{offset}-{mask}"
            shutil.copytree(base, jdir)
            path = only_segment(jdir)
            flip(path, offset, mask)
            size = path.stat().st_size
            with pytest.raises(JournalCorruptError) as info:
                read_all(jdir)
            error = info.value
            assert (error.path, error.offset, error.seq) == (path, last.start, 4), (offset, mask)
            assert f"{path.name}:{last.start}" == error.location
            assert f"offset {last.start} (seq 4)" in str(error)
            with pytest.raises(JournalCorruptError):
                Journal.open(jdir)  # the writer refuses it too, and changes nothing
            assert path.stat().st_size == size
            shutil.rmtree(jdir)


def test_zero_filled_tail_is_torn(no_fsync: None, tmp_path: Path) -> None:
    write_journal(tmp_path, 3)
    path = only_segment(tmp_path)
    size = path.stat().st_size
    with path.open("ab") as f:
        f.write(b"\x00" * 4096)
    records, reader = read_all(tmp_path)
    assert len(records) == 3
    assert reader.torn is not None
    assert (reader.torn.offset, reader.torn.dropped_bytes) == (size, 4096)


def sector_straddling_journal(jdir: Path) -> tuple[Path, int, int]:
    """A journal whose last record spans a sector boundary: (segment, record start, boundary)."""
    write_journal(jdir, 1)
    seq = 1
    while frames(only_segment(jdir))[-1].end < SECTOR_BYTES + 8:
        seq += 1
        with Journal.open(jdir) as journal:
            journal.append(rec(seq))
            journal.commit()
    path = only_segment(jdir)
    last = frames(path)[-1]
    assert last.start < SECTOR_BYTES < last.end
    return path, last.start, SECTOR_BYTES


def test_record_zeroed_from_a_sector_boundary_is_torn(no_fsync: None, tmp_path: Path) -> None:
    """Sectors the write allocated but never filled: zeros from a boundary to the end."""
    path, start, boundary = sector_straddling_journal(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:boundary] + b"\x00" * (len(data) - boundary + 100))
    records, reader = read_all(tmp_path)
    assert reader.torn is not None and reader.torn.offset == start
    assert "zero" in reader.torn.reason and records[-1].seq == reader.last_seq


def test_record_zeroed_inside_a_sector_is_corruption(no_fsync: None, tmp_path: Path) -> None:
    """Zeros that start inside a sector and reach no boundary are damage to the record."""
    path, start, _boundary = sector_straddling_journal(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 3] + b"\x00\x00\x00")
    with pytest.raises(JournalCorruptError) as info:
        read_all(tmp_path)
    assert info.value.offset == start


# ------------------------------------------------------------------------------ corruption


def test_flipped_byte_in_a_middle_record_is_corruption(no_fsync: None, tmp_path: Path) -> None:
    base = tmp_path / "base"
    write_journal(base, 5)
    middle = frames(only_segment(base))[2]
    data = only_segment(base).read_bytes()
    for offset in range(middle.start, middle.end):
        for mask in (0x01, 0x80, 0xFF):
            damaged = bytearray(data)
            damaged[offset] ^= mask
            only_segment(base).write_bytes(bytes(damaged))
            with pytest.raises(JournalCorruptError) as info:
                read_all(base)
            assert (info.value.offset, info.value.seq) == (middle.start, 3), (offset, mask)
            with pytest.raises(JournalCorruptError):
                Journal.open(base)  # the writer refuses it too
    only_segment(base).write_bytes(data)
    assert len(read_all(base)[0]) == 5


def test_garbage_after_the_last_record_is_corruption(no_fsync: None, tmp_path: Path) -> None:
    write_journal(tmp_path, 2)
    path = only_segment(tmp_path)
    size = path.stat().st_size
    with path.open("ab") as f:
        f.write(FRAME.pack(4, 0xDEADBEEF) + b"abcd" + b"more bytes")
    with pytest.raises(JournalCorruptError, match="complete record is damaged") as info:
        read_all(tmp_path)
    assert info.value.offset == size


def test_absurd_length_in_a_middle_record_is_corruption(no_fsync: None, tmp_path: Path) -> None:
    write_journal(tmp_path, 4)
    path = only_segment(tmp_path)
    second = frames(path)[1]
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, second.start, MAX_RECORD_BYTES + 1)
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError) as info:
        read_all(tmp_path)
    assert info.value.offset == second.start


def craft(tmp_path: Path, records: list[JournalRecord], first_seq: int = 1) -> Path:
    path = tmp_path / segment_name(first_seq)
    path.write_bytes(encode_segment_header(first_seq, 0) + b"".join(map(encode_record, records)))
    return path


@pytest.mark.parametrize(
    ("seqs", "bad_index"),
    [([1, 2, 4], 2), ([1, 2, 2], 2), ([2, 3], 0), ([1, 3], 1)],
)
def test_sequence_gap_or_repeat_is_corruption(
    tmp_path: Path, seqs: list[int], bad_index: int
) -> None:
    path = craft(tmp_path, [rec(s) for s in seqs])
    bad_offset = frames(path)[bad_index].start
    with pytest.raises(JournalCorruptError, match="sequence gap") as info:
        read_all(tmp_path)
    assert info.value.offset == bad_offset


def test_timestamp_going_backwards_is_corruption(tmp_path: Path) -> None:
    craft(tmp_path, [rec(1, ts=10), rec(2, ts=9)])
    with pytest.raises(JournalCorruptError, match="backwards"):
        read_all(tmp_path)


def test_checksum_valid_but_undecodable_record_is_corruption(tmp_path: Path) -> None:
    payload = msgspec.msgpack.encode([1, 5, {"type": "no_such_command"}])
    path = craft(tmp_path, [])
    with path.open("ab") as f:
        f.write(FRAME.pack(len(payload), zlib.crc32(payload)) + payload)
    with pytest.raises(JournalCorruptError, match="undecodable") as info:
        read_all(tmp_path)
    assert info.value.offset == SEGMENT_HEADER_SIZE


@pytest.mark.parametrize("offset", [0, 8, 12, 28])
def test_damaged_segment_header_is_corruption(no_fsync: None, tmp_path: Path, offset: int) -> None:
    write_journal(tmp_path, 2)
    flip(only_segment(tmp_path), offset)
    with pytest.raises(JournalCorruptError) as info:
        read_all(tmp_path)
    assert info.value.offset == 0


def test_segment_whose_header_disagrees_with_its_name(tmp_path: Path) -> None:
    craft(tmp_path, [rec(1)]).rename(tmp_path / segment_name(9))
    with pytest.raises(JournalCorruptError, match="does not match the name"):
        read_all(tmp_path, after_seq=8)


# ------------------------------------------------------------------------------ segments


def test_segments_rotate_at_commit_boundaries(no_fsync: None, tmp_path: Path) -> None:
    records = write_journal(tmp_path, 12, segment_bytes=200)
    paths = segments(tmp_path)
    assert len(paths) > 2
    previous_ts = 0
    for path in paths:
        found = frames(path)
        assert path.name == segment_name(found[0].seq)
        header = path.read_bytes()[:SEGMENT_HEADER_SIZE]
        assert header == encode_segment_header(found[0].seq, previous_ts)
        previous_ts = found[-1].ts
    assert read_all(tmp_path)[0] == records
    assert [r.seq for r in read_all(tmp_path, after_seq=7)[0]] == [8, 9, 10, 11, 12]


def test_missing_middle_segment_is_a_gap(no_fsync: None, tmp_path: Path) -> None:
    write_journal(tmp_path, 12, segment_bytes=200)
    segments(tmp_path)[1].unlink()
    with pytest.raises(JournalCorruptError, match="sequence gap"):
        read_all(tmp_path)


def test_journal_starting_after_the_wanted_seq_is_a_gap(no_fsync: None, tmp_path: Path) -> None:
    write_journal(tmp_path, 12, segment_bytes=200)
    segments(tmp_path)[0].unlink()
    with pytest.raises(JournalCorruptError, match="sequence gap"):
        read_all(tmp_path)


def test_torn_record_in_a_closed_segment_is_corruption(no_fsync: None, tmp_path: Path) -> None:
    write_journal(tmp_path, 12, segment_bytes=200)
    first = segments(tmp_path)[0]
    truncate(first, first.stat().st_size - 1)
    with pytest.raises(JournalCorruptError, match="closed segment"):
        read_all(tmp_path)


def test_reader_skips_segments_before_after_seq(no_fsync: None, tmp_path: Path) -> None:
    write_journal(tmp_path, 12, segment_bytes=200)
    first, second = segments(tmp_path)[:2]
    flip(first, SEGMENT_HEADER_SIZE + 10)  # damage in a segment a snapshot already covers
    start = frames(second)[0].seq
    records, reader = read_all(tmp_path, after_seq=start - 1)
    assert [r.seq for r in records] == list(range(start, 13)) and reader.last_seq == 12


def test_empty_last_segment_after_rotation(no_fsync: None, tmp_path: Path) -> None:
    write_journal(tmp_path, 6, segment_bytes=200)
    last_seq = frames(segments(tmp_path)[-1])[-1].seq
    assert last_seq == 6
    path = tmp_path / segment_name(7)
    path.write_bytes(encode_segment_header(7, 600))  # as a rotation would leave it
    records, reader = read_all(tmp_path)
    assert len(records) == 6 and (reader.last_seq, reader.last_ts, reader.torn) == (6, 600, None)
    with Journal.open(tmp_path) as journal:
        assert (journal.last_seq, journal.last_ts) == (6, 600)


# ------------------------------------------------------------------------------ operator truncation


def test_truncate_corrupt_cuts_at_the_named_place_and_keeps_a_copy(
    no_fsync: None, tmp_path: Path
) -> None:
    write_journal(tmp_path, 12, segment_bytes=200)
    first, second, *later = segments(tmp_path)
    bad = frames(second)[1]
    flip(second, bad.end - 1)
    with pytest.raises(JournalCorruptError) as info:
        read_all(tmp_path)
    original = {p: p.read_bytes() for p in [second, *later]}
    dropped = truncate_corrupt(tmp_path, info.value.location)
    assert [(d.path, d.start, d.torn) for d in dropped] == [
        (second, bad.start, False),
        *[(p, 0, False) for p in later],
    ]
    for d in dropped:
        assert d.saved_to is not None
        assert d.saved_to.read_bytes() == original[d.path][d.start :]
        assert "CORRUPT" in d.describe() and str(d.saved_to) in d.describe()
    assert segments(tmp_path) == [first, second] and second.stat().st_size == bad.start
    records, reader = read_all(tmp_path)
    assert [r.seq for r in records] == list(range(1, bad.seq)) and reader.torn is None


@pytest.mark.parametrize("location", ["nonsense", "journal-00000000000000000009.log:40", "x:1"])
def test_truncate_corrupt_refuses_a_place_that_is_not_in_the_journal(
    no_fsync: None, tmp_path: Path, location: str
) -> None:
    write_journal(tmp_path, 3)
    with pytest.raises(ValueError):
        truncate_corrupt(tmp_path, location)
    assert len(read_all(tmp_path)[0]) == 3


# ------------------------------------------------------------------------------ rotation durability


def test_rotation_makes_the_new_segment_and_its_name_durable_before_its_records(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The new segment's header is fsynced before its rename, the directory after it, and both
    before the first commit into it returns: a crash then cannot lose a segment whose records
    were acknowledged."""
    events: list[tuple[str, str]] = []
    real_replace = os.replace

    def fsync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        events.append(("fsync-dir" if os.path.isdir(target) else "fsync", os.path.basename(target)))

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        events.append(("rename", Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    with Journal.open(tmp_path, segment_bytes=SEGMENT_HEADER_SIZE + 1) as journal:
        journal.append(rec(1))
        journal.commit()
        events.clear()
        journal.append(rec(2))
        journal.commit()  # the first segment is full: this commit starts segment 2
    new = segment_name(2)
    assert events == [
        ("fsync", new + ".tmp"),  # the header is on disk before the name points at it
        ("rename", new),
        ("fsync-dir", tmp_path.name),  # the name is on disk
        ("fsync", new),  # the batch itself (the acknowledgement)
    ]
