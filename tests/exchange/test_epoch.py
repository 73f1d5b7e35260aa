"""A lost, truncated or foreign journal is refused at start-up; `--new-epoch` reconciles.

Each test serves a venue with the broker, lets a broker customer and a FIX member place
resting orders, stops it, then damages the data directory the way an operator might.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from test_serve import PASSWORDS, Client, _broker_customer, options

from tradingfloor.exchange.fix import tags as t
from tradingfloor.exchange.fix.store import EPOCH_FILE, read_store_epoch
from tradingfloor.exchange.identity import (
    IDENTITY_FILE,
    EpochMismatchError,
    format_venue_id,
    read_identity,
)
from tradingfloor.exchange.recovery import SnapshotAheadError
from tradingfloor.node.serve import NoNewEpochNeededError, ServeOptions, VenueServer

ADMIN = "Chief-passw0rd-1"
BUY = {
    "symbol": "AAPL",
    "qty": "10",
    "side": "buy",
    "type": "limit",
    "time_in_force": "gtc",
    "limit_price": "190.00",
}


def _options(data: Path, lines: list[str] | None = None) -> ServeOptions:
    opts = options(data)
    opts.admin_password = ADMIN
    if lines is not None:
        opts.announce = lines.append
    return opts


class Served:
    """What the first run left: the broker customer's key and order, MEMBER2's seq num."""

    def __init__(self, key: dict[str, str], order_id: str, fix_seq: int) -> None:
        self.key = key
        self.order_id = order_id
        self.fix_seq = fix_seq


async def _first_run(data: Path) -> Served:
    srv = VenueServer(_options(data))
    await srv.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv.broker_port}") as http:
            key = await _broker_customer(http, ADMIN)
            placed = (await http.post("/v2/orders", json=BUY, headers=key)).json()
            assert placed["status"] == "new"
        fix = await Client.logon(srv.fix_port, "MEMBER2")  # MEMBER2 keeps orders on disconnect
        fix.order("m2-rest", t.SIDE_SELL, "191.00")
        await fix.report("m2-rest", t.EXEC_NEW)
        await fix.close()
        return Served(key, placed["id"], fix.seq)
    finally:
        await srv.stop()


async def _more_trading(data: Path, served: Served) -> None:
    srv = VenueServer(_options(data))
    await srv.start()
    try:
        fix = await Client.logon(srv.fix_port, "MEMBER2", reset=False, seq=served.fix_seq)
        fix.order("m2-later", t.SIDE_SELL, "192.00")
        await fix.report("m2-later", t.EXEC_NEW)
        served.fix_seq = fix.seq
        await fix.close()
    finally:
        await srv.stop()


def _lose_journal(data: Path) -> None:
    shutil.rmtree(data / "journal")
    shutil.rmtree(data / "snapshots")


async def _refused(data: Path) -> EpochMismatchError:
    srv = VenueServer(_options(data))
    try:
        with pytest.raises(EpochMismatchError) as caught:
            await srv.start()
    finally:
        await srv.stop()
    assert srv.fix_port == 0 and srv.broker_port == 0  # nothing was opened
    return caught.value


async def test_a_lost_journal_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "venue"
    await _first_run(data)
    _lose_journal(data)
    error = await _refused(data)
    text = str(error)
    assert "FIX gateway mark" in text and "broker database" in text
    assert "another venue's journal" in text  # the new, empty journal got a new identity
    assert "--new-epoch" in text
    error = await _refused(data)  # and it stays refused: nothing adopted the new journal
    assert len(error.problems) >= 2


def test_serve_exits_with_code_4_and_says_why(tmp_path: Path) -> None:
    """The command as an operator runs it: a lost journal is exit code 4 with the message."""
    data = tmp_path / "venue"
    asyncio.run(_first_run(data))
    _lose_journal(data)
    args = ["serve", "--data-dir", str(data), "--fix-port", "0", "--http-port", "0"]
    args += ["--broker-port", "0", "--no-udp-feed"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-m", "tradingfloor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 4, done.stderr
    assert "journal does not fit what its consumers recorded" in done.stderr
    assert "--new-epoch" in done.stderr
    assert "journaled commands replayed" not in done.stdout


async def test_a_foreign_journal_is_refused(tmp_path: Path) -> None:
    data, other = tmp_path / "venue", tmp_path / "other"
    await _first_run(data)
    await _first_run(other)  # another venue, with a journal of the same length
    _lose_journal(data)
    shutil.copytree(other / "journal", data / "journal")
    shutil.copytree(other / "snapshots", data / "snapshots")
    error = await _refused(data)
    foreign = read_identity(data / "journal")
    assert foreign is not None
    assert f"journal: venue {format_venue_id(foreign.venue_id)}" in str(error)
    assert "another venue's journal" in str(error)


async def test_a_truncated_journal_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "venue"
    served = await _first_run(data)
    saved = tmp_path / "journal-then"
    shutil.copytree(data / "journal", saved)
    await _more_trading(data, served)
    shutil.rmtree(data / "journal")
    shutil.copytree(saved, data / "journal")  # same identity, fewer commands
    # the clean stop snapshotted the state the journal lost: that snapshot refuses first
    srv = VenueServer(_options(data))
    with pytest.raises(SnapshotAheadError, match="ahead of the journal"):
        await srv.start()
    await srv.stop()
    assert srv.fix_port == 0 and srv.broker_port == 0  # nothing was opened
    # without it, the consumers' marks refuse the journal
    shutil.rmtree(data / "snapshots")
    shutil.rmtree(data / "checkpoints", ignore_errors=True)
    error = await _refused(data)
    assert "ahead of the journal" in str(error)
    assert "another" not in str(error)


async def test_new_epoch_on_a_truncated_journal_cancels_what_the_venue_still_holds(
    tmp_path: Path,
) -> None:
    data = tmp_path / "venue"
    served = await _first_run(data)
    saved = tmp_path / "journal-then"
    shutil.copytree(data / "journal", saved)
    await _more_trading(data, served)
    shutil.rmtree(data / "journal")
    shutil.copytree(saved, data / "journal")
    opts = _options(data)
    opts.new_epoch_by = "ops@test"
    srv = VenueServer(opts)
    await srv.start()
    try:
        book = srv.feed.book.l2("AAPL")  # the journal's resting orders were mass-cancelled
        assert (book.bids, book.asks) == ([], [])
    finally:
        await srv.stop()


async def test_new_epoch_reconciles_the_broker_and_the_fix_sessions(tmp_path: Path) -> None:
    data = tmp_path / "venue"
    served = await _first_run(data)
    before = read_identity(data / "journal")
    assert before is not None
    _lose_journal(data)
    await _refused(data)
    lines: list[str] = []
    opts = _options(data, lines)
    opts.new_epoch_by = "ops@test"
    srv = VenueServer(opts)
    await srv.start()
    try:
        [announced] = [line for line in lines if line.startswith("New epoch")]
        assert "started by ops@test" in announced and "1 open broker orders cancelled" in announced
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv.broker_port}") as http:
            order = (await http.get(f"/v2/orders/{served.order_id}", headers=served.key)).json()
            assert order["status"] == "canceled"
            assert "new epoch" in order["reject_reason"]
            account = (await http.get("/v2/account", headers=served.key)).json()
            assert account["held_for_orders"] in ("0", "0.00")  # the hold is released
            assert account["buying_power"] == account["cash"] == "5000.00"
            again = (await http.post("/v2/orders", json=BUY, headers=served.key)).json()
            assert again["status"] == "new"  # the broker trades in the new epoch

        # MEMBER2 comes back with its old sequence numbers and is told of the reset
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.fix_port)
        fix = Client("MEMBER2", reader, writer)
        fix.seq = served.fix_seq
        hello = [(t.EncryptMethod, "0"), (t.HeartBtInt, "30")]
        fix.send(t.MT_LOGON, [*hello, (t.Password, PASSWORDS["MEMBER2"])])
        logon = await fix.expect(lambda m: m.msg_type == t.MT_LOGON)
        assert logon.get(t.ResetSeqNumFlag) == "Y" and logon.seq_num == 1
        fix.seq = 0  # as a FIX engine does on a Logon with 141=Y: start over, answer in kind
        fix.send(t.MT_LOGON, [*hello, (t.ResetSeqNumFlag, "Y")])
        news = await fix.expect(lambda m: m.msg_type == t.MT_NEWS)
        assert "epoch" in (news.get(t.Headline) or "")
        # seq 2..: what the new epoch stored while MEMBER2 was away (the venue's mass cancel
        # answer), fetched the usual way
        assert news.seq_num == 3
        fix.send(t.MT_RESEND_REQUEST, [(t.BeginSeqNo, "2"), (t.EndSeqNo, "2")])
        resent = await fix.expect(lambda m: m.seq_num == 2)
        assert resent.msg_type == t.MT_ORDER_MASS_CANCEL_REPORT
        assert (resent.get(t.OrderID) or "").startswith("2-")
        fix.order("m2-new", t.SIDE_SELL, "191.00")
        report = await fix.report("m2-new", t.EXEC_NEW)  # reports flow again
        assert report.seq_num == 4
        # the new epoch's event numbers continue the shorter journal, so the lost history's
        # numbers come again: ExecIDs carry the epoch and stay unique for the member
        exec_id = report.get(t.ExecID) or ""
        assert exec_id.startswith("2-") and exec_id[2:].isdigit()
        assert not [m for m in fix.inbox if m.msg_type == t.MT_REJECT]
        await fix.close()
    finally:
        await srv.stop()
    after = read_identity(data / "journal")
    assert after is not None and after.epoch == 2
    record = after.current
    assert (record.actor, record.previous_epoch) == ("ops@test", 1)
    assert any("broker database" in line for line in record.overridden)
    assert before.venue_id != after.venue_id  # the lost journal's id is gone with it

    # the next start is an ordinary one: every consumer follows the new epoch
    srv = VenueServer(_options(data))
    await srv.start()
    try:
        fix = await Client.logon(srv.fix_port, "MEMBER2", reset=False, seq=fix.seq)
        assert not any(m.get(t.ResetSeqNumFlag) == "Y" for m in fix.inbox)
        await fix.close()
    finally:
        await srv.stop()


async def test_new_epoch_is_refused_when_nothing_needs_it(tmp_path: Path) -> None:
    data = tmp_path / "venue"
    await _first_run(data)
    opts = _options(data)
    opts.new_epoch_by = "ops@test"
    srv = VenueServer(opts)
    try:
        with pytest.raises(NoNewEpochNeededError, match="would cancel live orders"):
            await srv.start()
    finally:
        await srv.stop()
    identity = read_identity(data / "journal")
    assert identity is not None and identity.epoch == 1


async def test_a_data_dir_from_before_identities_upgrades(tmp_path: Path) -> None:
    """A var/demo or var/venue written before this change: no identity file, a FIX mark of the
    seq alone, no identity rows in the broker's marks, no epoch file in the session stores."""
    data = tmp_path / "venue"
    served = await _first_run(data)
    (data / "journal" / IDENTITY_FILE).unlink()
    mark = data / "fix" / "last_event_seq"
    seq = mark.read_text().split()[-1]
    mark.write_text(f"{seq}\n")
    for store in (data / "fix" / "sessions").iterdir():
        (store / EPOCH_FILE).unlink()
    with sqlite3.connect(data / "broker.db") as db:
        db.execute("DELETE FROM marks WHERE name LIKE 'venue:%:%'")
    srv = VenueServer(_options(data))
    await srv.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv.broker_port}") as http:
            order = (await http.get(f"/v2/orders/{served.order_id}", headers=served.key)).json()
            assert order["status"] == "new"  # nothing was cancelled
        fix = await Client.logon(srv.fix_port, "MEMBER2", reset=False, seq=served.fix_seq)
        fix.send(
            t.MT_ORDER_CANCEL_REQUEST,
            [(t.ClOrdID, "c1"), (t.OrigClOrdID, "m2-rest"), (t.Symbol, "AAPL"), (t.Side, "2")],
        )
        await fix.report("c1", t.EXEC_CANCELED)  # the old order lives on, reports flow
        await fix.close()
    finally:
        await srv.stop()
    identity = read_identity(data / "journal")
    assert identity is not None and identity.epoch == 1
    assert "upgrade" in identity.current.reason
    venue_id = format_venue_id(identity.venue_id)
    assert mark.read_text().split()[:2] == [venue_id, "1"]
    stores = list((data / "fix" / "sessions").iterdir())
    assert stores and all(read_store_epoch(s) is not None for s in stores)
    with sqlite3.connect(data / "broker.db") as db:
        rows = dict(db.execute("SELECT name, value FROM marks").fetchall())
    assert rows["venue:TFEX:id"] == identity.venue_id and rows["venue:TFEX:epoch"] == 1
    # and a lost journal is now detected for this directory too
    _lose_journal(data)
    await _refused(data)
