"""FIX market data: requests answered by W/Y, incremental X rebuilt by a client equals the book."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tradingfloor.core.units import from_ticks
from tradingfloor.exchange.engine import Engine
from tradingfloor.exchange.engine.commands import AddInstrument, CancelOrder, Command, NewOrder
from tradingfloor.exchange.engine.types import Side, TimeInForce
from tradingfloor.exchange.fix import tags as t
from tradingfloor.exchange.fix.marketdata import MAX_DEPTH, FixMarketData
from tradingfloor.exchange.marketdata.views import MarketDataBook

TICK = Decimal("0.01")


class Fields:
    def __init__(self, pairs: Sequence[tuple[int, str]]) -> None:
        self.pairs = list(pairs)

    def get(self, tag: int) -> str | None:
        return next((v for k, v in self.pairs if k == tag), None)

    def get_all(self, tag: int) -> list[str]:
        return [v for k, v in self.pairs if k == tag]


class Session:
    comp_id = "M1"

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[tuple[int, str]]]] = []
        self.rejects: list[tuple[int, int | None, str]] = []

    def send(self, msg_type: str, body: Sequence[tuple[int, str]]) -> None:
        self.sent.append((msg_type, list(body)))

    def reject(self, msg: object, reason: int, ref_tag: int | None, text: str) -> None:
        self.rejects.append((reason, ref_tag, text))


class Market:
    def __init__(self) -> None:
        self.engine = Engine()
        self.book = MarketDataBook()
        self.md = FixMarketData(self.book, clock=lambda: 0)
        self.seq = 0
        self.run(AddInstrument(symbol="AAPL"), AddInstrument(symbol="MSFT"))

    def run(self, *commands: Command) -> None:
        for command in commands:
            self.seq += 1
            events = self.engine.apply(self.seq, self.seq * 1000, command)
            for event in events:
                self.book.apply(event)
            self.md.on_events(events)


def request(
    req: str,
    sub: str,
    *,
    depth: str = "0",
    symbols: Sequence[str] = ("AAPL",),
    types: Sequence[str] = ("0", "1", "2"),
    update: str | None = None,
) -> Fields:
    pairs = [(t.MDReqID, req), (t.SubscriptionRequestType, sub), (t.MarketDepth, depth)]
    if update is not None:
        pairs.append((t.MDUpdateType, update))
    pairs.append((t.NoMDEntryTypes, str(len(types))))
    pairs += [(t.MDEntryType, x) for x in types]
    pairs.append((t.NoRelatedSym, str(len(symbols))))
    pairs += [(t.Symbol, s) for s in symbols]
    return Fields(pairs)


def order(
    cl: str,
    side: Side,
    price: int,
    qty: int = 10,
    tif: TimeInForce = TimeInForce.DAY,
    member: str = "M1",
) -> NewOrder:
    return NewOrder(
        symbol="AAPL", member=member, cl_ord_id=cl, side=side, qty=qty, price=price, tif=tif
    )


def entries(body: list[tuple[int, str]], first: int) -> list[dict[int, str]]:
    out: list[dict[int, str]] = []
    for tag, value in body:
        if tag == first:
            out.append({})
        if out:
            out[-1][tag] = value
    return out


def test_snapshot_has_levels_positions_and_last_trade() -> None:
    m = Market()
    m.run(
        order("b1", Side.BUY, 100),
        order("b2", Side.BUY, 100),
        order("b3", Side.BUY, 99),
        order("s1", Side.SELL, 105, 5),
        order("x", Side.SELL, 100, 3, TimeInForce.IOC, "M2"),
    )
    s = Session()
    m.md.on_request(s, request("r1", t.SUB_SNAPSHOT))
    [(msg_type, body)] = s.sent
    assert msg_type == t.MT_MARKET_DATA_SNAPSHOT
    assert (t.MDReqID, "r1") in body and (t.Symbol, "AAPL") in body
    rows = entries(body, t.MDEntryType)
    assert dict(body)[t.NoMDEntries] == str(len(rows)) == "4"
    assert rows[0] == {269: "0", 270: "1.00", 271: "17", 346: "2", 290: "1"}
    assert rows[1] == {269: "0", 270: "0.99", 271: "10", 346: "1", 290: "2"}
    assert rows[2] == {269: "1", 270: "1.05", 271: "5", 346: "1", 290: "1"}
    assert rows[3] == {269: "2", 270: "1.00", 271: "3"}
    assert m.md.subscriptions("M1") == []  # a plain snapshot does not subscribe


def test_bad_requests_are_rejected_and_subscribe_nothing() -> None:
    m = Market()
    cases = [
        (request("a", "1", symbols=("NOPE",)), t.MDRR_UNKNOWN_SYMBOL),
        (request("b", "1", depth=str(MAX_DEPTH + 1)), t.MDRR_UNSUPPORTED_MARKET_DEPTH),
        (request("c", "1", types=("0", "4")), t.MDRR_UNSUPPORTED_MDENTRYTYPE),
        (request("d", "1", update="2"), t.MDRR_UNSUPPORTED_MDUPDATETYPE),
        (request("e", "7"), t.MDRR_UNSUPPORTED_SUBSCRIPTION_TYPE),
        (request("f", "1", symbols=()), t.MDRR_UNKNOWN_SYMBOL),
    ]
    for req, reason in cases:
        s = Session()
        m.md.on_request(s, req)
        [(msg_type, body)] = s.sent
        assert msg_type == t.MT_MARKET_DATA_REQUEST_REJECT
        assert dict(body)[t.MDReqRejReason] == reason and dict(body)[t.Text]
    assert m.md.subscriptions("M1") == []
    s = Session()
    m.md.on_request(s, Fields([(t.SubscriptionRequestType, "1")]))
    assert s.rejects == [(t.SRR_REQUIRED_TAG_MISSING, t.MDReqID, "MDReqID is required")]


def test_duplicate_request_id_and_unsubscribe() -> None:
    m = Market()
    s = Session()
    m.md.on_request(s, request("r", "1"))
    m.md.on_request(s, request("r", "1"))
    assert s.sent[-1][0] == t.MT_MARKET_DATA_REQUEST_REJECT
    assert dict(s.sent[-1][1])[t.MDReqRejReason] == t.MDRR_DUPLICATE_MDREQID
    m.md.on_request(s, request("r", "2"))
    assert m.md.subscriptions("M1") == []
    before = len(s.sent)
    m.run(order("b1", Side.BUY, 100))
    assert len(s.sent) == before


def test_incremental_updates_new_change_delete_and_trades() -> None:
    m = Market()
    s = Session()
    m.md.on_request(s, request("r", "1", depth="1"))
    m.run(order("b1", Side.BUY, 100))
    assert s.sent[-1][0] == t.MT_MARKET_DATA_INCREMENTAL
    assert entries(s.sent[-1][1], t.MDUpdateAction) == [
        {279: "0", 269: "0", 55: "AAPL", 270: "1.00", 271: "10", 346: "1"}
    ]
    n = len(s.sent)
    m.run(order("b0", Side.BUY, 99))  # below the requested depth of 1: nothing to say
    assert len(s.sent) == n
    m.run(order("s", Side.SELL, 100, 4, member="M2"))
    rows = entries(s.sent[-1][1], t.MDUpdateAction)
    assert rows == [
        {279: "1", 269: "0", 55: "AAPL", 270: "1.00", 271: "6", 346: "1"},
        {279: "0", 269: "2", 55: "AAPL", 270: "1.00", 271: "4"},
    ]
    m.run(CancelOrder(symbol="AAPL", member="M1", cl_ord_id="c", orig_cl_ord_id="b1"))
    rows = entries(s.sent[-1][1], t.MDUpdateAction)
    assert rows == [
        {279: "2", 269: "0", 55: "AAPL", 270: "1.00", 271: "0"},
        {279: "0", 269: "0", 55: "AAPL", 270: "0.99", 271: "10", 346: "1"},
    ]
    m.md.drop_session("M1")
    n = len(s.sent)
    m.run(order("b9", Side.BUY, 101))
    assert len(s.sent) == n


def test_full_refresh_mode_sends_snapshots() -> None:
    m = Market()
    s = Session()
    m.md.on_request(s, request("r", "1", update="0", types=("0",)))
    m.run(order("b1", Side.BUY, 100))
    assert [x for x, _ in s.sent] == [t.MT_MARKET_DATA_SNAPSHOT] * 2


ops = st.lists(
    st.tuples(st.booleans(), st.integers(95, 105), st.integers(1, 30), st.integers(0, 5)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(ops, st.integers(1, MAX_DEPTH))
def test_client_rebuilt_from_snapshot_and_increments_equals_book(
    flow: list[tuple[bool, int, int, int]], depth: int
) -> None:
    m = Market()
    s = Session()
    m.md.on_request(s, request("r", "1", depth=str(depth), types=("0", "1")))
    book: dict[str, dict[str, int]] = {"0": {}, "1": {}}
    applied = 0

    def catch_up() -> None:
        nonlocal applied
        for msg_type, body in s.sent[applied:]:
            if msg_type == t.MT_MARKET_DATA_SNAPSHOT:
                book["0"].clear()
                book["1"].clear()
                for row in entries(body, t.MDEntryType):
                    book[row[269]][row[270]] = int(row[271])
            else:
                for row in entries(body, t.MDUpdateAction):
                    if row[279] == "2":
                        del book[row[269]][row[270]]
                    else:
                        book[row[269]][row[270]] = int(row[271])
        applied = len(s.sent)

    for i, (buy, price, qty, cancel_back) in enumerate(flow):
        if cancel_back and i >= cancel_back:
            m.run(
                CancelOrder(
                    symbol="AAPL",
                    member="M1",
                    cl_ord_id=f"c{i}",
                    orig_cl_ord_id=f"o{i - cancel_back}",
                )
            )
        m.run(order(f"o{i}", Side.BUY if buy else Side.SELL, price, qty))
        catch_up()
        l2 = m.book.l2("AAPL", depth)
        expect_bids = {str(from_ticks(p, TICK)): q for p, q, _n in l2.bids}
        expect_asks = {str(from_ticks(p, TICK)): q for p, q, _n in l2.asks}
        assert book["0"] == expect_bids
        assert book["1"] == expect_asks
