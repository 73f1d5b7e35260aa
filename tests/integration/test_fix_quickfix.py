"""The exchange's FIX 4.4 gateway against a real QuickFIX initiator: logon, every order type,
cancel/replace, market data, security list, resends, restarts and cancel-on-disconnect.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fixpeer.harness import Event, Peer, ProcessGroup, Venue, fix_time, write_config

BUY, SELL = "1", "2"

# One book per scenario (reference 100.00, band 90.00 .. 110.00): tests stay independent.
SYMBOLS = [
    "REST", "CROSS", "MKT", "STOP", "STPLMT", "TRAIL", "MIT", "MTL", "PEGMID", "PEGMKT", "PEGPRI",
    "ICE", "POST", "IOC", "FOK", "GTD", "AON", "MINQ", "CXL", "DUP", "STAT", "MASS", "MASS2",
    "MD", "GAP", "COD",
]  # fmt: skip
REFERENCE = 10000
# Extra members, so that tests which break a session do not disturb the shared ones.
AUTH_MEMBER = ("AUTHTEST", "auth-secret", False)
SEQLOW_MEMBER = ("SEQLOW", "seqlow-secret", False)
RESET_MEMBER = ("RESETTER", "reset-secret", False)
DEFAULT_SYMBOLS = {"AAPL", "MSFT", "GOOG", "AMZN", "TSLA"}


# --- message builders -----------------------------------------------------------------------


def order(
    cl_ord_id: str,
    symbol: str,
    side: str,
    qty: int,
    price: str | None = None,
    ord_type: str | None = None,
    extra: Sequence[tuple[int, str]] = (),
) -> list[list[Any]]:
    """NewOrderSingle (D) fields: limit when a price is given, else market, unless ``ord_type``."""
    fields: list[list[Any]] = [[11, cl_ord_id], [55, symbol], [54, side], [38, str(qty)]]
    fields.append([40, ord_type or ("2" if price is not None else "1")])
    if price is not None:
        fields.append([44, price])
    fields.append([60, fix_time()])
    fields += [[tag, value] for tag, value in extra]
    return fields


def cancel(cl_ord_id: str, orig: str, symbol: str, side: str, qty: int) -> list[list[Any]]:
    """OrderCancelRequest (F) fields."""
    return [[11, cl_ord_id], [41, orig], [55, symbol], [54, side], [38, str(qty)], [60, fix_time()]]


def status(cl_ord_id: str, symbol: str, side: str, req_id: str = "") -> list[list[Any]]:
    """OrderStatusRequest (H) fields."""
    fields: list[list[Any]] = [[11, cl_ord_id], [55, symbol], [54, side]]
    if req_id:
        fields.append([790, req_id])
    return fields


def md_request(req_id: str, symbols: Sequence[str], sub_type: str = "1") -> list[list[Any]]:
    """MarketDataRequest (V): bids, offers and trades, full depth, incremental updates."""
    return [
        [262, req_id],
        [263, sub_type],
        [264, "0"],
        [265, "1"],
        [267, [[[269, "0"]], [[269, "1"]], [[269, "2"]]]],
        [146, [[[55, s]] for s in symbols]],
    ]


def px(value: str | None) -> Decimal:
    """A FIX price as a Decimal (fails on a missing field)."""
    assert value is not None, "price field missing"
    return Decimal(value)


def order_status(peer: Peer, cl_ord_id: str, symbol: str, side: str) -> Event:
    """Ask for an order's status and return the ExecutionReport (150=I) that answers."""
    mark = peer.mark()
    peer.send("H", status(cl_ord_id, symbol, side))
    return peer.wait_er(cl_ord_id, "I", start=mark)


def final_er(peer: Peer, cl_ord_id: str, start: int = 0) -> Event:
    """The first ExecutionReport for the order with a terminal OrdStatus (2, 4, 8, C)."""
    return peer.wait_msg(
        "8",
        lambda e: e.get(11) == cl_ord_id and e.get(39) in ("2", "4", "8", "C"),
        start=start,
        what=f"terminal ExecutionReport for 11={cl_ord_id}",
    )


def entries(message: Event) -> list[dict[int, str]]:
    """The MDEntries of a W (delimiter 269) or X (delimiter 279) message."""
    return message.entries(268, 269 if message.msg_type == "W" else 279)


def rest(peer: Peer, cl_ord_id: str, symbol: str, side: str, qty: int, price: str) -> Event:
    """Place a limit order that must rest, and return its ER new."""
    mark = peer.mark()
    peer.send("D", order(cl_ord_id, symbol, side, qty, price))
    return peer.wait_er(cl_ord_id, "0", start=mark)


def trade_at(m1: Peer, m2: Peer, tag: str, symbol: str, price: str, qty: int = 1) -> None:
    """Print a trade: MEMBER1 rests a bid, MEMBER2 sells into it."""
    rest(m1, f"{tag}-tb", symbol, BUY, qty, price)
    mark = m2.mark()
    m2.send("D", order(f"{tag}-ts", symbol, SELL, qty, price))
    m2.wait_er(f"{tag}-ts", "F", start=mark)


# --- fixtures -------------------------------------------------------------------------------


class Members:
    """The logged-on peers of the shared venue, one per member, restarted when one was killed."""

    def __init__(self, group: ProcessGroup, venue: Venue) -> None:
        self.group = group
        self.venue = venue
        self.peers: dict[str, Peer] = {}

    def get(self, sender: str) -> Peer:
        peer = self.peers.get(sender)
        if peer is None or peer.proc is None or peer.proc.poll() is not None:
            peer = self.group.peer(sender, self.venue.fix_port, store=f"peer-{sender}")
            self.peers[sender] = peer
        return peer


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessGroup]:
    group = ProcessGroup(tmp_path_factory.mktemp("fix-quickfix"))
    yield group
    group.close()


@pytest.fixture(scope="module")
def venue(shared: ProcessGroup) -> Venue:
    config = write_config(
        shared.root / "venue.toml",
        [(s, REFERENCE) for s in SYMBOLS],
        [AUTH_MEMBER, SEQLOW_MEMBER, RESET_MEMBER],
    )
    return shared.venue("venue", config=config)


@pytest.fixture(scope="module")
def members(shared: ProcessGroup, venue: Venue) -> Members:
    return Members(shared, venue)


@pytest.fixture
def m1(members: Members) -> Peer:
    return members.get("MEMBER1")


@pytest.fixture
def m2(members: Members) -> Peer:
    return members.get("MEMBER2")


@pytest.fixture
def own(tmp_path: Path) -> Iterator[ProcessGroup]:
    """Venues and peers of one test (restarts, crashes), stopped at its end."""
    group = ProcessGroup(tmp_path)
    yield group
    group.close()


# --- session ----------------------------------------------------------------------------------


def test_logon_with_good_credentials(m1: Peer) -> None:
    sent = m1.wait_for(lambda e: e.kind == "admin" and e.direction == "out" and e.msg_type == "A")
    reply = m1.wait_msg("A")
    assert sent[554] == "member1-secret"
    assert reply[49] == "TFEX" and reply[56] == "MEMBER1"
    assert reply[98] == "0"
    assert reply[108] == sent[108]
    assert reply.get(141, "N") == "N"


def test_logon_with_bad_password_is_refused(shared: ProcessGroup, venue: Venue) -> None:
    comp_id, password, _ = AUTH_MEMBER
    bad = shared.peer(comp_id, venue.fix_port, store="peer-auth-bad", password="wrong", logon=False)
    logout = bad.wait_msg("5", what="Logout answering a Logon with a wrong password")
    assert not any(e.kind == "logon" for e in bad.events())
    assert not bad.messages(lambda e: e.msg_type == "A"), "the venue must not accept the Logon"
    bad.quiet(lambda e: e.kind == "logon", 1.5, start=logout.index)
    bad.kill()
    # The same member with the right password gets in: it was the password that was refused.
    good = shared.peer(comp_id, venue.fix_port, store="peer-auth-good", password=password)
    assert good.wait_msg("A")[56] == comp_id
    good.stop()


def test_repeated_wrong_passwords_lock_the_comp_id_out(own: ProcessGroup) -> None:
    """The default venue (default logon limits): a QuickFIX peer that keeps logging on with a
    wrong password (every second) locks MEMBER1 out; the right password is then refused too."""
    venue = own.venue("default")
    bad = own.peer("MEMBER1", venue.fix_port, store="peer-bad", password="wrong", logon=False)
    locked = bad.wait_msg(
        "5",
        lambda e: (e.get(58) or "").startswith("logon rejected: CompID locked out"),
        timeout=30,
        what="Logout saying the CompID is locked out",
    )
    refusals = bad.messages(lambda e: e.msg_type == "5", start=0)
    assert [e.get(58) for e in refusals[:4]] == ["logon rejected: bad credentials"] * 4
    assert locked.index == refusals[4].index  # the 5th failure locks
    assert all(e.seq == 1 for e in refusals)  # nothing of MEMBER1's session was used up
    bad.kill()
    good = own.peer("MEMBER1", venue.fix_port, store="peer-good", logon=False)
    refused = good.wait_msg("5", what="Logout refusing the locked-out CompID")
    assert (refused.get(58) or "").startswith("logon rejected: CompID locked out")
    assert not good.messages(lambda e: e.msg_type == "A")
    good.kill()


def test_too_low_sequence_number_gets_logout(shared: ProcessGroup, venue: Venue) -> None:
    comp_id, password, _ = SEQLOW_MEMBER
    peer = shared.peer(comp_id, venue.fix_port, store="peer-seqlow", password=password)
    for i in range(3):
        rest(peer, f"seqlow-{i}", "REST", BUY, 1, "90.00")
    mark = peer.mark()
    peer.command("set_next_sender_seq", n=2)
    peer.send("D", order("seqlow-3", "REST", BUY, 1, "90.00"))
    # FIX 4.4 session rules: MsgSeqNum lower than expected without PossDupFlag -> Logout.
    logout = peer.wait_msg("5", start=mark, what="Logout for MsgSeqNum too low")
    peer.wait_for(lambda e: e.kind == "logout", start=logout.index)
    assert not peer.messages(lambda e: e.get(11) == "seqlow-3", start=mark)
    peer.kill()


def test_logon_with_reset_seq_num_flag_starts_both_sides_at_one(
    shared: ProcessGroup, venue: Venue
) -> None:
    comp_id, password, _ = RESET_MEMBER
    first = shared.peer(comp_id, venue.fix_port, store="peer-reset", password=password)
    for i in range(3):
        rest(first, f"reset-{i}", "REST", BUY, 1, "90.00")
    first.stop()
    again = shared.peer(comp_id, venue.fix_port, store="peer-reset", password=password, reset=True)
    sent = again.wait_for(lambda e: e.kind == "admin" and e.direction == "out")
    reply = again.wait_msg("A")
    assert sent.msg_type == "A" and sent[141] == "Y" and sent.seq == 1
    assert reply[141] == "Y" and reply.seq == 1
    er = rest(again, "reset-after", "REST", BUY, 1, "90.00")
    assert er.seq == 2


# --- orders -----------------------------------------------------------------------------------


def test_limit_order_rests(m1: Peer) -> None:
    er = rest(m1, "rest-1", "REST", BUY, 100, "99.00")
    assert er[39] == "0"
    assert er[55] == "REST" and er[54] == BUY and er[38] == "100"
    assert er[14] == "0" and er[151] == "100" and px(er[6]) == 0
    assert er[37] and er[17]


def test_crossing_orders_fill_both_sides(m1: Peer, m2: Peer) -> None:
    s1 = rest(m1, "cross-s1", "CROSS", SELL, 100, "100.00")
    s2 = rest(m1, "cross-s2", "CROSS", SELL, 100, "101.00")
    mark1, mark2 = m1.mark(), m2.mark()
    m2.send("D", order("cross-b1", "CROSS", BUY, 150, "101.00"))

    first = m2.wait_er("cross-b1", "F", start=mark2)
    second = m2.wait_msg(
        "8", lambda e: e.get(11) == "cross-b1" and e.get(150) == "F", start=first.index + 1
    )
    assert (first[32], px(first[31]), first[14], first[151], first[39]) == (
        "100",
        Decimal("100.00"),
        "100",
        "50",
        "1",
    )
    assert px(first[6]) == Decimal("100.00")
    assert (second[32], px(second[31]), second[14], second[151], second[39]) == (
        "50",
        Decimal("101.00"),
        "150",
        "0",
        "2",
    )
    assert abs(px(second[6]) - Decimal(100 * 100 + 50 * 101) / 150) < Decimal("0.0001")
    assert first[37] == second[37] and first[17] != second[17]

    fill1 = m1.wait_er("cross-s1", "F", start=mark1)
    assert (fill1[32], px(fill1[31]), fill1[14], fill1[151], fill1[39]) == (
        "100",
        Decimal("100.00"),
        "100",
        "0",
        "2",
    )
    assert px(fill1[6]) == Decimal("100.00") and fill1[37] == s1[37]
    fill2 = m1.wait_er("cross-s2", "F", start=mark1)
    assert (fill2[32], px(fill2[31]), fill2[14], fill2[151], fill2[39]) == (
        "50",
        Decimal("101.00"),
        "50",
        "50",
        "1",
    )
    assert px(fill2[6]) == Decimal("101.00") and fill2[37] == s2[37]


def test_market_order_fills_and_is_rejected_on_an_empty_book(m1: Peer, m2: Peer) -> None:
    rest(m1, "mkt-s1", "MKT", SELL, 50, "100.00")
    rest(m1, "mkt-s2", "MKT", SELL, 50, "100.10")
    mark = m2.mark()
    m2.send("D", order("mkt-b1", "MKT", BUY, 80))
    done = final_er(m2, "mkt-b1", start=mark)
    assert done[39] == "2" and done[14] == "80" and done[151] == "0"
    assert abs(px(done[6]) - (Decimal("5000") + Decimal("3003")) / 80) < Decimal("0.0001")
    # No bids at all: a market sell has nothing to trade against.
    mark = m2.mark()
    m2.send("D", order("mkt-s3", "MKT", SELL, 10))
    rejected = final_er(m2, "mkt-s3", start=mark)
    assert rejected[150] == "8" and rejected[39] == "8" and rejected[14] == "0"


def test_stop_order_triggers_on_a_trade(m1: Peer, m2: Peer) -> None:
    trade_at(m1, m2, "stop-t1", "STOP", "100.00")
    rest(m1, "stop-ask", "STOP", SELL, 100, "101.00")
    mark = m2.mark()
    m2.send("D", order("stop-b", "STOP", BUY, 20, ord_type="3", extra=[(99, "100.50")]))
    new = m2.wait_er("stop-b", "0", start=mark)
    assert new[39] == "0" and new[151] == "20"
    assert not m2.messages(lambda e: e.get(11) == "stop-b" and e.get(150) == "F", start=mark)
    # A trade at 100.50 reaches the stop price: the stop becomes a market order.
    rest(m1, "stop-t2s", "STOP", SELL, 5, "100.50")
    m2.send("D", order("stop-t2b", "STOP", BUY, 5, "100.50"))
    fill = m2.wait_er("stop-b", "F", start=mark)
    assert px(fill[31]) == Decimal("101.00") and fill[32] == "20"
    assert fill[39] == "2" and fill[14] == "20" and fill[151] == "0"


def test_stop_limit_order_triggers_and_respects_its_limit(m1: Peer, m2: Peer) -> None:
    trade_at(m1, m2, "stl-t1", "STPLMT", "100.00")
    mark = m2.mark()
    extra = [(99, "99.50")]
    m2.send("D", order("stl-s", "STPLMT", SELL, 10, "99.40", ord_type="4", extra=extra))
    assert m2.wait_er("stl-s", "0", start=mark)[39] == "0"
    rest(m1, "stl-bid", "STPLMT", BUY, 20, "99.45")
    trade_at(m1, m2, "stl-t2", "STPLMT", "99.50")
    fill = m2.wait_er("stl-s", "F", start=mark)
    assert px(fill[31]) == Decimal("99.45") and fill[14] == "10" and fill[39] == "2"


def test_trailing_stop_follows_the_last_price(m1: Peer, m2: Peer) -> None:
    trade_at(m1, m2, "trail-t1", "TRAIL", "100.00")
    rest(m1, "trail-bid", "TRAIL", BUY, 10, "99.50")
    mark = m2.mark()
    extra = [(18, "a"), (20001, "1.00")]  # ExecInst a = trailing stop; 20001 = distance
    m2.send("D", order("trail-s", "TRAIL", SELL, 10, ord_type="3", extra=extra))
    assert m2.wait_er("trail-s", "0", start=mark)[39] == "0"
    # The last price rises to 101.00: the trigger follows it from 99.00 up to 100.00 ...
    trade_at(m1, m2, "trail-t2", "TRAIL", "101.00")
    assert not m2.messages(lambda e: e.get(11) == "trail-s" and e.get(150) == "F", start=mark)
    # ... so a trade at 100.00 fires it (a fixed stop at 99.00 would still wait).
    trade_at(m1, m2, "trail-t3", "TRAIL", "100.00")
    fill = m2.wait_er("trail-s", "F", start=mark)
    assert px(fill[31]) == Decimal("99.50") and fill[32] == "10" and fill[39] == "2"


def test_market_if_touched_and_limit_if_touched(m1: Peer, m2: Peer) -> None:
    trade_at(m1, m2, "mit-t1", "MIT", "100.00")
    rest(m1, "mit-ask", "MIT", SELL, 10, "99.60")
    mark = m2.mark()
    m2.send("D", order("mit-b", "MIT", BUY, 10, ord_type="J", extra=[(99, "99.50")]))
    m2.send("D", order("lit-b", "MIT", BUY, 10, "99.20", ord_type="J", extra=[(99, "99.50")]))
    m2.wait_er("mit-b", "0", start=mark)
    m2.wait_er("lit-b", "0", start=mark)
    # Buy if-touched orders fire when the last price falls to 99.50 or below.
    trade_at(m1, m2, "mit-t2", "MIT", "99.50")
    mit = m2.wait_er("mit-b", "F", start=mark)
    assert px(mit[31]) == Decimal("99.60") and mit[39] == "2"
    lit_status = order_status(m2, "lit-b", "MIT", BUY)
    assert lit_status[39] == "0" and lit_status[151] == "10"
    mark = m2.mark()
    m1.send("D", order("lit-hit", "MIT", SELL, 10, "99.20"))
    lit = m2.wait_er("lit-b", "F", start=mark)
    assert px(lit[31]) == Decimal("99.20") and lit[39] == "2"


def test_market_to_limit_rests_its_remainder_at_the_first_price(m1: Peer, m2: Peer) -> None:
    rest(m1, "mtl-s1", "MTL", SELL, 30, "100.00")
    rest(m1, "mtl-s2", "MTL", SELL, 30, "100.50")
    mark = m2.mark()
    m2.send("D", order("mtl-b", "MTL", BUY, 50, ord_type="K"))
    fill = m2.wait_er("mtl-b", "F", start=mark)
    assert px(fill[31]) == Decimal("100.00") and fill[32] == "30"
    assert fill[14] == "30" and fill[151] == "20" and fill[39] == "1"
    st = order_status(m2, "mtl-b", "MTL", BUY)
    assert st[39] == "1" and st[151] == "20"
    assert not m1.messages(lambda e: e.get(11) == "mtl-s2" and e.get(150) == "F")
    mark = m2.mark()
    m1.send("D", order("mtl-s3", "MTL", SELL, 20, "100.00"))
    rest_fill = m2.wait_er("mtl-b", "F", start=mark)
    assert px(rest_fill[31]) == Decimal("100.00") and rest_fill[39] == "2"
    assert rest_fill[14] == "50"


@pytest.mark.parametrize(
    ("symbol", "peg_type", "offset", "expected"),
    [
        ("PEGMID", "2", None, "100.00"),  # midpoint of 99.00 / 101.00
        ("PEGMKT", "4", None, "100.99"),  # the ask, moved one tick passive
        ("PEGPRI", "5", "0.01", "99.01"),  # the bid plus the offset
    ],
)
def test_pegged_order_prices_from_the_book(
    m1: Peer, m2: Peer, symbol: str, peg_type: str, offset: str | None, expected: str
) -> None:
    rest(m1, f"{symbol}-bid", symbol, BUY, 10, "99.00")
    rest(m1, f"{symbol}-ask", symbol, SELL, 10, "101.00")
    extra = [(1094, peg_type)] + ([(211, offset)] if offset else [])
    mark = m2.mark()
    m2.send("D", order(f"{symbol}-peg", symbol, BUY, 5, ord_type="P", extra=extra))
    assert m2.wait_er(f"{symbol}-peg", "0", start=mark)[39] == "0"
    # A sell priced through every bid trades with the best one: the peg, at its price.
    m1.send("D", order(f"{symbol}-hit", symbol, SELL, 5, "98.00"))
    fill = m2.wait_er(f"{symbol}-peg", "F", start=mark)
    assert px(fill[31]) == Decimal(expected) and fill[39] == "2"


def test_iceberg_shows_only_its_display_quantity(m1: Peer, m2: Peer) -> None:
    rest_er = m1.mark()
    m1.send("D", order("ice-s", "ICE", SELL, 100, "100.00", extra=[(1138, "20")]))
    m1.wait_er("ice-s", "0", start=rest_er)
    mark = m2.mark()
    m2.send("V", md_request("ice-md", ["ICE"], sub_type="0"))
    snap = m2.wait_msg("W", lambda e: e.get(262) == "ice-md", start=mark)
    offers = [e for e in entries(snap) if e.get(269) == "1"]
    assert [(px(e.get(270)), e.get(271)) for e in offers] == [(Decimal("100.00"), "20")]
    m2.send("D", order("ice-b", "ICE", BUY, 30, "100.00"))
    done = final_er(m2, "ice-b", start=mark)
    assert done[39] == "2" and done[14] == "30"
    st = order_status(m1, "ice-s", "ICE", SELL)
    assert st[14] == "30" and st[151] == "70"


def test_post_only_is_rejected_when_it_would_cross(m1: Peer, m2: Peer) -> None:
    rest(m1, "post-s", "POST", SELL, 10, "100.00")
    mark = m2.mark()
    m2.send("D", order("post-b1", "POST", BUY, 10, "100.00", extra=[(18, "6")]))
    rej = m2.wait_er("post-b1", "8", start=mark)
    assert rej[39] == "8" and rej[14] == "0"
    m2.send("D", order("post-b2", "POST", BUY, 10, "99.99", extra=[(18, "6")]))
    assert m2.wait_er("post-b2", "0", start=mark)[39] == "0"
    assert order_status(m1, "post-s", "POST", SELL)[14] == "0"


def test_ioc_remainder_is_cancelled(m1: Peer, m2: Peer) -> None:
    rest(m1, "ioc-s", "IOC", SELL, 30, "100.00")
    mark = m2.mark()
    m2.send("D", order("ioc-b", "IOC", BUY, 50, "100.00", extra=[(59, "3")]))
    fill = m2.wait_er("ioc-b", "F", start=mark)
    assert fill[32] == "30" and px(fill[31]) == Decimal("100.00")
    done = final_er(m2, "ioc-b", start=mark)
    assert done[39] == "4" and done[14] == "30" and done[151] == "0"


def test_fok_is_killed_when_it_cannot_fill_in_full(m1: Peer, m2: Peer) -> None:
    rest(m1, "fok-s", "FOK", SELL, 30, "100.00")
    mark = m2.mark()
    m2.send("D", order("fok-b1", "FOK", BUY, 50, "100.00", extra=[(59, "4")]))
    killed = final_er(m2, "fok-b1", start=mark)
    assert killed[39] == "4" and killed[14] == "0" and killed[151] == "0"
    assert not m2.messages(lambda e: e.get(11) == "fok-b1" and e.get(150) == "F", start=mark)
    assert order_status(m1, "fok-s", "FOK", SELL)[151] == "30"
    m2.send("D", order("fok-b2", "FOK", BUY, 30, "100.00", extra=[(59, "4")]))
    filled = final_er(m2, "fok-b2", start=mark)
    assert filled[39] == "2" and filled[14] == "30"


def test_gtd_order_expires_at_its_expire_time(m1: Peer) -> None:
    mark = m1.mark()
    expire = fix_time(timedelta(seconds=2))
    m1.send("D", order("gtd-b", "GTD", BUY, 10, "99.00", extra=[(59, "6"), (126, expire)]))
    assert m1.wait_er("gtd-b", "0", start=mark)[39] == "0"
    expired = m1.wait_er("gtd-b", "C", timeout=8, start=mark)
    assert expired[39] == "C" and expired[151] == "0"
    past = fix_time(timedelta(minutes=-1))
    m1.send("D", order("gtd-old", "GTD", BUY, 10, "99.00", extra=[(59, "6"), (126, past)]))
    assert m1.wait_er("gtd-old", "8", start=mark)[39] == "8"


def test_all_or_none_executes_only_in_full(m1: Peer, m2: Peer) -> None:
    rest_mark = m1.mark()
    m1.send("D", order("aon-s", "AON", SELL, 100, "100.00", extra=[(18, "G")]))
    m1.wait_er("aon-s", "0", start=rest_mark)
    small = rest(m2, "aon-b1", "AON", BUY, 50, "100.00")
    assert small[14] == "0"
    mark = m2.mark()
    m2.send("D", order("aon-b2", "AON", BUY, 100, "100.00"))
    assert final_er(m2, "aon-b2", start=mark)[14] == "100"
    fill = m1.wait_er("aon-s", "F", start=rest_mark)
    assert fill[32] == "100" and fill[39] == "2"
    assert order_status(m2, "aon-b1", "AON", BUY)[14] == "0"


def test_min_qty(m1: Peer, m2: Peer) -> None:
    rest(m1, "minq-s", "MINQ", SELL, 30, "100.00")
    mark = m2.mark()
    m2.send("D", order("minq-b1", "MINQ", BUY, 50, "100.00", extra=[(110, "40")]))
    cancelled = final_er(m2, "minq-b1", start=mark)
    assert cancelled[39] == "4" and cancelled[14] == "0"
    m2.send("D", order("minq-b2", "MINQ", BUY, 50, "100.00", extra=[(110, "20")]))
    fill = m2.wait_er("minq-b2", "F", start=mark)
    assert fill[32] == "30" and fill[39] == "1" and fill[151] == "20"


# --- cancel, replace, status, mass cancel ------------------------------------------------------


def test_cancel_and_cancel_replace(m1: Peer) -> None:
    new = rest(m1, "cxl-1", "CXL", BUY, 100, "99.00")
    mark = m1.mark()
    replace = [
        [11, "cxl-2"],
        [41, "cxl-1"],
        [55, "CXL"],
        [54, BUY],
        [38, "150"],
        [40, "2"],
        [44, "99.50"],
        [60, fix_time()],
    ]
    m1.send("G", replace)
    replaced = m1.wait_er("cxl-2", "5", start=mark)
    assert replaced[41] == "cxl-1" and replaced[37] == new[37]
    assert replaced[39] == "0" and replaced[38] == "150" and replaced[151] == "150"
    assert px(replaced[44]) == Decimal("99.50")
    m1.send("F", cancel("cxl-3", "cxl-2", "CXL", BUY, 150))
    done = m1.wait_er("cxl-3", "4", start=mark)
    assert done[41] == "cxl-2" and done[39] == "4" and done[151] == "0" and done[37] == new[37]


def test_cancel_of_an_unknown_order_is_rejected(m1: Peer) -> None:
    mark = m1.mark()
    m1.send("F", cancel("cxl-unk", "no-such-order", "CXL", BUY, 10))
    rej = m1.wait_msg("9", lambda e: e.get(11) == "cxl-unk", start=mark)
    assert rej[41] == "no-such-order" and rej[434] == "1" and rej[102] == "1"
    assert rej[37] and rej[39]


def test_duplicate_cl_ord_id_is_rejected_and_executed_once(m1: Peer, m2: Peer) -> None:
    rest(m1, "dup-1", "DUP", BUY, 10, "99.00")
    mark = m1.mark()
    m1.send("D", order("dup-1", "DUP", BUY, 10, "99.00"))
    rej = m1.wait_er("dup-1", "8", start=mark)
    assert rej[103] == "6" and rej[39] == "8"
    m2.send("D", order("dup-s", "DUP", SELL, 20, "99.00"))
    m2.wait_er("dup-s", "F")
    st = order_status(m2, "dup-s", "DUP", SELL)
    assert st[14] == "10" and st[151] == "10", "the duplicate must not have been booked"


def test_order_status_request(m1: Peer) -> None:
    new = rest(m1, "stat-1", "STAT", BUY, 10, "99.00")
    mark = m1.mark()
    m1.send("H", status("stat-1", "STAT", BUY, req_id="osr-1"))
    st = m1.wait_er("stat-1", "I", start=mark)
    assert st[39] == "0" and st[14] == "0" and st[151] == "10" and st[37] == new[37]
    assert st[790] == "osr-1"


def test_mass_cancel_by_symbol(m1: Peer) -> None:
    for i in range(3):
        rest(m1, f"mass-{i}", "MASS", BUY, 10, f"99.0{i}")
    rest(m1, "mass-other", "MASS2", BUY, 10, "99.00")
    mark = m1.mark()
    m1.send("q", [[11, "mass-req"], [530, "1"], [55, "MASS"], [60, fix_time()]])
    report = m1.wait_msg("r", lambda e: e.get(11) == "mass-req", start=mark)
    assert report[530] == "1" and report[531] == "1" and report[533] == "3"
    for i in range(3):
        # The ER of each cancelled order names it in ClOrdID or OrigClOrdID.
        done = m1.wait_msg(
            "8", lambda e, i=i: e.get(150) == "4" and f"mass-{i}" in (e.get(11), e.get(41))
        )
        assert done[39] == "4" and done[151] == "0"
    assert order_status(m1, "mass-other", "MASS2", BUY)[39] == "0"


# --- market data and reference data -------------------------------------------------------------


def test_market_data_snapshot_then_incremental_updates(m1: Peer, m2: Peer) -> None:
    rest(m1, "md-b", "MD", BUY, 10, "99.00")
    rest(m1, "md-s", "MD", SELL, 10, "101.00")
    mark = m2.mark()
    m2.send("V", md_request("md-1", ["MD"]))
    snap = m2.wait_msg("W", lambda e: e.get(262) == "md-1", start=mark)
    assert snap[55] == "MD"
    book = {(e.get(269), px(e.get(270)), e.get(271)) for e in entries(snap) if e.get(269) != "2"}
    assert book == {("0", Decimal("99.00"), "10"), ("1", Decimal("101.00"), "10")}
    m2.send("D", order("md-hit", "MD", SELL, 4, "99.00"))
    update = m2.wait_msg("X", lambda e: e.get(262) == "md-1", start=snap.index)
    rows = entries(update)
    trades = [r for r in rows if r.get(269) == "2"]
    bids = [r for r in rows if r.get(269) == "0"]
    assert [(px(r.get(270)), r.get(271)) for r in trades] == [(Decimal("99.00"), "4")]
    assert [(r.get(279), px(r.get(270)), r.get(271)) for r in bids] == [
        ("1", Decimal("99.00"), "6")
    ]
    assert all(r.get(55) == "MD" for r in rows)


def test_market_data_request_for_an_unknown_symbol_is_rejected(m2: Peer) -> None:
    mark = m2.mark()
    m2.send("V", md_request("md-unk", ["NOSUCH"]))
    rej = m2.wait_msg("Y", lambda e: e.get(262) == "md-unk", start=mark)
    assert rej[281] == "0"


def test_security_list_of_the_default_venue(own: ProcessGroup) -> None:
    venue = own.venue("default")
    peer = own.peer("BROKER", venue.fix_port)
    peer.send("x", [[320, "sl-1"], [559, "4"]])
    listing = peer.wait_msg("y", lambda e: e.get(320) == "sl-1")
    assert listing[560] == "0" and listing[322]
    assert set(listing.all(55)) == DEFAULT_SYMBOLS
    assert listing[146] == "5" and len(listing.all(55)) == 5


# --- sequence numbers and recovery --------------------------------------------------------------


def test_resend_request_after_a_forced_gap_replays_with_poss_dup(m1: Peer) -> None:
    original = rest(m1, "gap-1", "GAP", BUY, 10, "99.00")
    m1.wait_seqnums(lambda _sender, target: target > original.seq)
    mark = m1.mark()
    # Make the peer expect the ER's sequence number again: the next message looks like a gap.
    m1.command("set_next_target_seq", n=original.seq)
    m1.send("D", order("gap-2", "GAP", BUY, 10, "98.00"))
    request = m1.wait_for(
        lambda e: e.kind == "admin" and e.direction == "out" and e.msg_type == "2",
        start=mark,
        what="ResendRequest from the peer",
    )
    assert request[7] == str(original.seq)
    replay = m1.wait_msg("8", lambda e: e.get(11) == "gap-1" and e.poss_dup, start=mark)
    assert replay.seq == original.seq
    assert replay[17] == original[17] and replay[150] == "0"
    assert replay[122] and replay[122] <= replay[52]
    m1.wait_er("gap-2", "0", start=mark)


def test_gap_in_the_peer_sequence_is_filled_and_the_order_executed_once(m1: Peer) -> None:
    sender, _ = m1.seqnums()
    mark = m1.mark()
    m1.command("set_next_sender_seq", n=sender + 5)
    m1.send("D", order("gap-3", "GAP", BUY, 10, "97.00"))
    request = m1.wait_msg("2", start=mark, what="ResendRequest from the venue")
    assert request[7] == str(sender)
    first = m1.wait_er("gap-3", "0", start=mark)
    gap_fill = m1.wait_for(
        lambda e: e.kind == "admin" and e.direction == "out" and e.msg_type == "4",
        start=mark,
    )
    assert gap_fill[123] == "Y" and gap_fill[36] == str(sender + 5)
    # Exactly one answer: no second ER new, no duplicate-ClOrdID reject.
    m1.quiet(lambda e: e.incoming and e.get(11) == "gap-3" and e.index != first.index, 0.5)


def _restart_scenario(own: ProcessGroup, crash: bool) -> None:
    venue = own.venue("restart")
    peer = own.peer("MEMBER2", venue.fix_port)
    rest(peer, "rs-1", "AAPL", BUY, 10, "189.00")
    before = peer.mark()
    if crash:
        venue.kill()
    else:
        assert venue.stop() == 0, venue.output_tail()
    down = peer.wait_for(lambda e: e.kind == "logout", start=before, what="disconnect")
    last_in = max(e.seq for e in peer.messages())
    again = own.venue(data_dir=venue.data_dir, fix_port=venue.fix_port)
    assert again.fix_port == venue.fix_port
    peer.wait_logon(start=down.index)
    logon_in = peer.wait_msg("A", start=down.index)
    sent = [e for e in peer.events(down.index) if e.kind == "admin" and e.direction == "out"]
    assert all(e.get(141, "N") == "N" for e in [logon_in, *sent]), "no sequence reset"
    assert logon_in.seq >= last_in + 1, "the venue's sequence numbers must continue"
    logouts = [e for e in sent if e.msg_type == "5"]
    assert not logouts, f"the peer logged out: {logouts[0]}"
    mark = peer.mark()
    peer.send("F", cancel("rs-2", "rs-1", "AAPL", BUY, 10))
    done = peer.wait_er("rs-2", "4", start=mark)
    assert done[41] == "rs-1" and done[39] == "4"


def test_restart_after_sigterm_keeps_sessions_and_orders(own: ProcessGroup) -> None:
    _restart_scenario(own, crash=False)


def test_restart_after_sigkill_keeps_sessions_and_orders(own: ProcessGroup) -> None:
    _restart_scenario(own, crash=True)


def test_cancel_on_disconnect(members: Members, m1: Peer, m2: Peer) -> None:
    mark2 = m2.mark()
    m2.send("V", md_request("cod-md", ["COD"]))
    m2.wait_msg("W", lambda e: e.get(262) == "cod-md", start=mark2)
    rest(m1, "cod-1", "COD", BUY, 10, "99.00")

    def bid_row(action: str) -> Any:
        def pred(e: Event) -> bool:
            return e.get(262) == "cod-md" and any(
                r.get(269) == "0" and r.get(279) == action and px(r.get(270)) == Decimal("99")
                for r in entries(e)
            )

        return pred

    m2.wait_msg("X", bid_row("0"), start=mark2, what="the new bid in market data")
    dropped = m2.mark()
    m1.kill()  # the TCP connection drops without a Logout
    m2.wait_msg("X", bid_row("2"), start=dropped, what="the bid deleted on disconnect")
    again = members.get("MEMBER1")
    assert again is not m1
    cancelled = again.wait_er("cod-1", "4")
    assert cancelled[39] == "4" and cancelled[151] == "0"
