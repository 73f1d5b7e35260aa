"""A real QuickFIX initiator follows the venue into a new epoch (`serve --new-epoch`).

The venue's journal is lost while the member's session store and the venue's FIX store
survive. The operator starts a new epoch; the member's next logon is answered with a Logon
carrying MsgSeqNum 1 and ResetSeqNumFlag=Y, QuickFIX resets and answers in kind, a News (B)
says why, and the member trades (and gets its execution reports) again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from fixpeer.harness import ProcessGroup, Venue

from .test_fix_quickfix import BUY, SELL, order, rest


class _NewEpochVenue(Venue):
    """`serve --new-epoch` (the operator's recovery action)."""

    def command(self) -> list[str]:
        return [*super().command(), "--new-epoch", "--operator", "ops@test"]


def test_a_quickfix_member_follows_the_venue_into_a_new_epoch(tmp_path: Path) -> None:
    group = ProcessGroup(tmp_path)
    try:
        venue = group.venue("epoch")
        peer = group.peer("MEMBER2", venue.fix_port)
        rest(peer, "ep-1", "AAPL", BUY, 10, "189.00")
        before = peer.mark()
        assert venue.stop() == 0, venue.output_tail()
        down = peer.wait_for(lambda e: e.kind == "logout", start=before, what="disconnect")
        shutil.rmtree(venue.data_dir / "journal")
        shutil.rmtree(venue.data_dir / "snapshots")

        again = _NewEpochVenue(venue.data_dir, None, venue.fix_port, log_dir=tmp_path)
        group.venues.append(again)
        again.start()
        assert any(line.startswith("New epoch 2") for line in again.output()), again.output()
        peer.wait_logon(start=down.index)
        logon_in = peer.wait_msg("A", start=down.index)
        assert logon_in.get(141) == "Y" and logon_in.seq == 1
        news = peer.wait_msg("B", start=down.index)
        assert "epoch 2" in news.get(148, "")
        logouts = [e for e in peer.events(down.index) if e.msg_type == "5"]
        assert not logouts, f"the session broke: {logouts[0]}"
        mark = peer.mark()
        peer.send("D", order("ep-2", "AAPL", SELL, 5, "191.00"))
        report = peer.wait_er("ep-2", "0", start=mark)  # reports flow in the new epoch
        assert report.seq > news.seq
    finally:
        group.close()
