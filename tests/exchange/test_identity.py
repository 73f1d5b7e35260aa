"""The venue identity file and the check of consumer marks against it (exchange.identity)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradingfloor.exchange import identity as ident
from tradingfloor.exchange.identity import (
    IDENTITY_FILE,
    MAX_VENUE_ID,
    ConsumerMark,
    EpochMismatchError,
    IdentityCorruptError,
    IdentityError,
    check_marks,
    create_identity,
    format_venue_id,
    load_or_create_identity,
    mismatch,
    parse_venue_id,
    read_identity,
    start_new_epoch,
)
from tradingfloor.exchange.venue import Venue


def _new(directory: Path) -> ident.VenueIdentity:
    return create_identity(directory, now_ns=5, actor="test", reason="created with the journal")


def test_a_new_identity_is_written_durably_and_reads_back(tmp_path: Path) -> None:
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def counting(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    os.fsync = counting  # type: ignore[assignment]
    try:
        made = _new(tmp_path)
    finally:
        os.fsync = real_fsync
    assert len(fsyncs) == 2  # the file, then its directory (after the rename)
    assert [p.name for p in tmp_path.iterdir()] == [IDENTITY_FILE]  # no .tmp left
    assert 1 <= made.venue_id <= MAX_VENUE_ID and made.epoch == 1
    assert read_identity(tmp_path) == made
    assert made.current.actor == "test" and made.current.previous_epoch is None


def test_two_journals_get_different_venue_ids(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    assert _new(a).venue_id != _new(b).venue_id


def test_create_never_replaces_an_existing_identity(tmp_path: Path) -> None:
    first = _new(tmp_path)
    with pytest.raises(IdentityError, match="exists already"):
        _new(tmp_path)
    assert read_identity(tmp_path) == first


def test_an_interrupted_write_leaves_the_old_identity(tmp_path: Path) -> None:
    """atomic_write renames only a complete, fsynced file: a crash before the rename leaves a
    stray .tmp and the previous identity intact."""
    first = _new(tmp_path)
    (tmp_path / (IDENTITY_FILE + ".tmp")).write_bytes(b'{"body": {"form')
    assert read_identity(tmp_path) == first
    assert load_or_create_identity(tmp_path, last_seq=10, now_ns=9) == first


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # cut short
        lambda data: b"",  # empty
        lambda data: b"not json at all\n",
        lambda data: data.replace(b'"epoch":1', b'"epoch":2', 1),  # edited: checksum fails
        lambda data: data.replace(b"tradingfloor venue identity", b"tradingfloor venue idENTITY"),
        lambda data: data.replace(b'"crc32":', b'"crc33":'),
    ],
)
def test_a_damaged_file_is_an_error_not_a_new_identity(tmp_path: Path, damage: object) -> None:
    _new(tmp_path)
    path = tmp_path / IDENTITY_FILE
    assert callable(damage)
    damaged = damage(path.read_bytes())
    path.write_bytes(damaged)
    with pytest.raises(IdentityCorruptError, match=IDENTITY_FILE):
        read_identity(tmp_path)
    with pytest.raises(IdentityCorruptError):
        load_or_create_identity(tmp_path, last_seq=0, now_ns=1)
    assert path.read_bytes() == damaged  # left as found, for the operator to look at


async def test_a_venue_with_a_damaged_identity_does_not_open(tmp_path: Path) -> None:
    venue = Venue.open(tmp_path)
    await venue.stop()
    path = tmp_path / "journal" / IDENTITY_FILE
    damaged = path.read_bytes().replace(b'"epoch":1', b'"epoch":7', 1)
    path.write_bytes(damaged)
    with pytest.raises(IdentityCorruptError):
        Venue.open(tmp_path)
    assert path.read_bytes() == damaged  # untouched
    again = Venue.open(tmp_path.parent / "other")  # and the failed open released nothing shared
    await again.stop()
    path.write_bytes(damaged.replace(b'"epoch":7', b'"epoch":1', 1))
    venue = Venue.open(tmp_path)  # the journal lock was released by the failed open
    await venue.stop()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_changed_byte_is_detected_or_harmless(tmp_path_factory: object, data: object) -> None:
    """Property: one changed byte anywhere makes the file an error, or (whitespace after the
    JSON) leaves exactly the same identity; never a different identity."""
    assert isinstance(data, st.DataObject)
    directory = tmp_path_factory.mktemp("id")  # type: ignore[attr-defined]
    made = _new(directory)
    path = directory / IDENTITY_FILE
    raw = bytearray(path.read_bytes())
    at = data.draw(st.integers(0, 1 << 20)) % len(raw)  # the length varies with the crc
    raw[at] = (raw[at] + data.draw(st.integers(1, 255))) % 256
    path.write_bytes(bytes(raw))
    try:
        got = read_identity(directory)
    except IdentityCorruptError:
        return
    assert got == made


def test_venue_ids_format_as_16_hex_digits() -> None:
    assert format_venue_id(1) == "0000000000000001"
    assert parse_venue_id(format_venue_id(MAX_VENUE_ID)) == MAX_VENUE_ID
    for bad in ["", "0" * 16, "g" * 16, "1" * 15, "F" * 16, "8" + "0" * 15]:
        with pytest.raises(ValueError):
            parse_venue_id(bad)


def test_an_existing_journal_without_identity_gets_one_covering_its_history(
    tmp_path: Path,
) -> None:
    made = load_or_create_identity(tmp_path, last_seq=42, now_ns=7)
    assert made.epoch == 1 and made.current.start_event_seq == 0
    assert "existing journal of 42 commands" in made.current.reason
    assert load_or_create_identity(tmp_path, last_seq=50, now_ns=8) == made  # read back


def test_a_new_epoch_is_recorded_with_who_when_and_from_what(tmp_path: Path) -> None:
    first = _new(tmp_path)
    stale = ConsumerMark("broker database", 99, 3, 500)
    new = start_new_epoch(
        tmp_path,
        first,
        last_event_seq=10,
        last_command_seq=4,
        now_ns=123,
        actor="ops@host",
        overridden=[stale],
    )
    assert new.venue_id == first.venue_id
    assert new.epoch == 4  # above every epoch a consumer recorded
    record = new.current
    assert (record.actor, record.started_ns, record.previous_epoch) == ("ops@host", 123, 1)
    assert (record.start_event_seq, record.start_command_seq) == (10, 4)
    assert record.overridden == [stale.describe()]
    assert read_identity(tmp_path) == new
    assert [e.epoch for e in new.epochs] == [1, 4]
    with pytest.raises(IdentityError, match="operator"):
        start_new_epoch(tmp_path, new, last_event_seq=1, last_command_seq=1, now_ns=1, actor=" ")


def test_check_marks() -> None:
    me = ident.VenueIdentity(venue_id=7, epoch=2, epochs=())
    fits = [
        ConsumerMark("same epoch, behind", 7, 2, 5),
        ConsumerMark("same epoch, at the end", 7, 2, 10),
        ConsumerMark("from before identities", None, None, 10),
        ConsumerMark("new consumer", None, None, 0),
    ]
    assert check_marks(me, 10, fits) == []
    bad = [
        ConsumerMark("ahead", 7, 2, 11),
        ConsumerMark("old, ahead", None, None, 11),
        ConsumerMark("other venue", 8, 2, 0),
        ConsumerMark("older epoch", 7, 1, 0),
        ConsumerMark("newer epoch", 7, 3, 0),
    ]
    assert check_marks(me, 10, fits + bad) == bad
    error = mismatch(me, 10, bad)
    assert isinstance(error, EpochMismatchError)
    text = str(error)
    assert "another venue's journal" in text and "another epoch" in text
    assert "ahead of the journal (its last event is seq 10)" in text
    assert "--new-epoch" in text
