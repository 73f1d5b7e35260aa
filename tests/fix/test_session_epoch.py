"""A FIX session store and session across a new venue epoch (store ``epoch`` file, the reset
Logon, the News), driven sans-IO like tests/fix/test_session.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tradingfloor.exchange.fix import tags as t
from tradingfloor.exchange.fix.store import (
    EPOCH_FILE,
    SessionStore,
    StoreCorruptError,
    read_store_epoch,
)

from .test_session import T0, Harness, types

VENUE_ID = 0x1234_5678_9ABC_DEF0


@pytest.fixture(autouse=True)
def _no_disk_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "fsync", lambda fd: None)


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path / "M1")
    yield harness
    harness.store.close()


def _old_session(h: Harness) -> None:
    """A session that traded in epoch 1 and disconnected: both sides are at seq 4."""
    h.store.adopt_epoch(VENUE_ID, 1)
    h.connect_and_logon()
    h.session.send_app(t.MT_EXECUTION_REPORT, [(t.ExecID, "old")], now_ns=h.now)
    h.feed(h.order("c1"))
    h.feed(h.order("c2"))
    h.session.connection_lost("gone", h.now)


def test_the_store_records_its_epoch_and_reopens_with_it(tmp_path: Path) -> None:
    store = SessionStore.open(tmp_path, now_ns=T0)
    assert store.venue_epoch is None and not store.epoch_notice_pending
    store.adopt_epoch(VENUE_ID, 1)
    store.close()
    assert (tmp_path / EPOCH_FILE).read_text() == "123456789abcdef0 1 given\n"
    again = SessionStore.open(tmp_path, now_ns=T0)
    try:
        assert again.venue_epoch is not None and again.venue_epoch.epoch == 1
        again.begin_epoch(VENUE_ID, 2, now_ns=T0 + 1)
        assert again.epoch_notice_pending
        assert (again.next_sender_seq, again.next_target_seq) == (2, 1)  # seq 1 reserved
        assert again.get_range(1, 0) == []  # the old epoch's messages are gone
    finally:
        again.close()
    epoch = read_store_epoch(tmp_path)
    assert epoch is not None and (epoch.epoch, epoch.notice_pending) == (2, True)


@pytest.mark.parametrize(
    "text",
    ["", "123456789abcdef0 1\n", "123456789abcdef0 x given\n", "zz 1 given\n", "123 1 maybe\n"],
)
def test_a_damaged_epoch_file_is_an_error(tmp_path: Path, text: str) -> None:
    SessionStore.open(tmp_path, now_ns=T0).close()
    (tmp_path / EPOCH_FILE).write_text(text)
    with pytest.raises(StoreCorruptError, match=EPOCH_FILE):
        SessionStore.open(tmp_path, now_ns=T0)


def test_first_logon_of_a_new_epoch_resets_with_notice(h: Harness) -> None:
    _old_session(h)
    h.store.begin_epoch(VENUE_ID, 2, now_ns=h.now)
    h.session.send_app(t.MT_EXECUTION_REPORT, [(t.ExecID, "while-away")], now_ns=h.now)
    h.session.connection_made(h.now)
    out = h.feed(h.logon())  # the member's old seq num (4), no reset asked
    assert types(out) == [t.MT_LOGON, t.MT_NEWS]
    logon, news = out
    assert (logon.seq_num, logon.get(t.ResetSeqNumFlag)) == (1, "Y")
    assert news.seq_num == 3  # after the report stored while the member was away (seq 2)
    assert news.get(t.Headline) == "TFEX started epoch 2"
    assert news.get(t.LinesOfText) == "1" and "epoch 2" in (news.get(t.Text) or "")
    assert not h.store.epoch_notice_pending  # given once
    assert h.app.events[-1] == ("logon", "M1")
    # the member resets and answers with its own Logon 34=1 141=Y: taken silently
    h.peer_seq = 1
    assert h.feed(h.logon(extra_body=[(t.ResetSeqNumFlag, "Y")])) == []
    assert h.store.next_target_seq == 2
    h.feed(h.order("new-1"))
    assert h.app.delivered[-1] == 2
    # what was stored in the new epoch is there to resend; the old epoch's is not
    assert [seq for seq, _raw in h.store.get_range(1, 0)] == [2, 3]


def test_a_member_that_asks_for_the_reset_itself_is_not_asked_again(h: Harness) -> None:
    _old_session(h)
    h.store.begin_epoch(VENUE_ID, 2, now_ns=h.now)
    h.session.send_app(t.MT_EXECUTION_REPORT, [(t.ExecID, "while-away")], now_ns=h.now)
    h.session.connection_made(h.now)
    h.peer_seq = 1
    out = h.feed(h.logon(extra_body=[(t.ResetSeqNumFlag, "Y")]))
    assert types(out) == [t.MT_LOGON, t.MT_NEWS]
    assert h.store.next_target_seq == 2
    assert [seq for seq, _raw in h.store.get_range(1, 0)] == [2, 3]  # not wiped by the reset
    # a second Logon now is no answer to anything: rejected as before
    (reject,) = h.feed(h.logon(extra_body=[(t.ResetSeqNumFlag, "Y")], seq=2))
    assert reject.msg_type == t.MT_REJECT


def test_later_logons_of_the_epoch_are_ordinary(h: Harness) -> None:
    _old_session(h)
    h.store.begin_epoch(VENUE_ID, 2, now_ns=h.now)
    h.session.connection_made(h.now)
    h.feed(h.logon())
    h.peer_seq = 1
    h.feed(h.logon(extra_body=[(t.ResetSeqNumFlag, "Y")]))
    h.session.connection_lost("gone", h.now)
    h.session.connection_made(h.now)
    (logon,) = h.feed(h.logon())
    assert not logon.has(t.ResetSeqNumFlag) and logon.seq_num == 3  # after Logon 1, News 2


def test_a_logon_while_logged_on_is_still_rejected_outside_a_new_epoch(h: Harness) -> None:
    h.connect_and_logon()
    h.peer_seq = 1
    (reject,) = h.feed(h.logon(extra_body=[(t.ResetSeqNumFlag, "Y")], seq=2))
    assert reject.msg_type == t.MT_REJECT and reject.get(t.Text) == "already logged on"
