"""Every inbound numeric field, from -2^80 to 2^80 (and NaN, Infinity, exponents, 30-digit
fractions), against a real `serve` (venue, FIX gateway, broker) over its real sockets.

For each value the server must answer (no dropped connection, no server error), a value outside
the shared limits (``tradingfloor.core.limits``) must get the interface's rejection, and the
venue must keep running: nothing may fail a journal batch or a database commit. Each test ends
with a well-formed client being served.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api_customer import api_customer
from tradingfloor.core.limits import MAX_ORDER_QTY, MAX_PRICE_TICKS, MAX_TRAIL_BPS
from tradingfloor.exchange.fix import tags as t
from tradingfloor.exchange.fix.codec import Message, StreamDecoder, encode, utc_timestamp
from tradingfloor.node.serve import ServeOptions, VenueServer

ADMIN_PASSWORD = "Chief-passw0rd-1"
FIX_PASSWORDS = {"MEMBER1": "member1-secret", "MEMBER2": "member2-secret"}
TICK = Decimal("0.01")
EXAMPLES = 40
# Each test drives its own examples against the module's one server (a fixture per module).
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

SPECIAL = [
    "NaN",
    "-NaN",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "1e20",
    "1E+30",
    "-1e-30",
    "0",
    "-0",
    "0.000000000000000000000000000001",
    "123456789012345678901234567890.123456789012345678901234567890",
    str(2**63 - 1),
    str(2**63),
    str(2**64),
    str(2**80),
    str(-(2**80)),
    "100000000000000000000",
    "99999999999999999",
    "1000000000000000000000000000000",
]
NUMBERS = st.one_of(
    st.sampled_from(SPECIAL),
    st.integers(-(2**80), 2**80).map(str),
    st.decimals(
        min_value=-(2**80), max_value=2**80, allow_nan=False, allow_infinity=False, places=2
    ).map(str),
    st.builds(
        lambda whole, frac: f"{whole}.{frac}",
        st.integers(0, 10**6),
        st.text("0123456789", min_size=30, max_size=30),
    ),
)


def _number(text: str) -> Decimal | None:
    """The value as a finite decimal, or None when it is not one."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def beyond_qty(text: str) -> bool:
    value = _number(text)
    return value is None or not 0 <= value <= MAX_ORDER_QTY


def beyond_price(text: str) -> bool:
    value = _number(text)
    return value is None or abs(value) >= MAX_PRICE_TICKS * TICK


def beyond_bps(text: str) -> bool:
    value = _number(text)
    return value is None or not 0 <= value <= MAX_TRAIL_BPS


class Server:
    """`serve` (FIX + broker) on its own event loop in a thread, driven over real sockets."""

    def __init__(self, data_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        options = ServeOptions(
            data_dir=data_dir,
            fix_port=0,
            http_port=0,
            broker_port=0,
            udp_feed=None,
            tick_interval=None,
            announce=lambda _line: None,
            admin_password=ADMIN_PASSWORD,
            api_rate_limit=1_000_000,
        )
        self.server = VenueServer(options)
        self.run(self.server.start())

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def healthy(self) -> bool:
        venue = self.server.venue
        return venue is not None and venue.running and venue.failure is None

    def close(self) -> None:
        self.run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class FixClient:
    """A blocking FIX 4.4 initiator that waits for the answer to each message it sends."""

    def __init__(self, port: int, comp_id: str) -> None:
        self.comp_id = comp_id
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.decoder = StreamDecoder()
        self.inbox: list[Message] = []
        self.seq = 0
        self.send(
            t.MT_LOGON,
            [
                (t.EncryptMethod, "0"),
                (t.HeartBtInt, "30"),
                (t.ResetSeqNumFlag, "Y"),
                (t.Password, FIX_PASSWORDS[comp_id]),
            ],
        )
        self.wait(lambda m: m.msg_type == t.MT_LOGON)

    def send(self, msg_type: str, body: list[tuple[int, str]]) -> int:
        self.seq += 1
        header = [
            (t.SenderCompID, self.comp_id),
            (t.TargetCompID, "TFEX"),
            (t.MsgSeqNum, str(self.seq)),
            (t.SendingTime, utc_timestamp(time.time_ns())),
        ]
        self.sock.sendall(encode(t.BEGIN_STRING, msg_type, header, body))
        return self.seq

    def wait(self, match: Callable[[Message], bool]) -> Message:
        while True:
            for i, msg in enumerate(self.inbox):
                if match(msg):
                    return self.inbox.pop(i)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the venue closed the FIX connection")
            self.inbox += [m for m in self.decoder.feed(data) if isinstance(m, Message)]

    def answer(self, seq: int, cl_ord_id: str) -> Message:
        """The venue's first answer to message ``seq`` (whose ClOrdID is ``cl_ord_id``)."""

        def about(m: Message) -> bool:
            if m.msg_type in (t.MT_REJECT, t.MT_BUSINESS_MESSAGE_REJECT):
                return m.get(t.RefSeqNum) == str(seq)
            return m.msg_type in (t.MT_EXECUTION_REPORT, t.MT_ORDER_CANCEL_REJECT) and (
                m.get(t.ClOrdID) == cl_ord_id
            )

        return self.wait(about)

    def close(self) -> None:
        self.sock.close()


def is_rejection(m: Message) -> bool:
    if m.msg_type in (t.MT_REJECT, t.MT_BUSINESS_MESSAGE_REJECT, t.MT_ORDER_CANCEL_REJECT):
        return True
    return m.msg_type == t.MT_EXECUTION_REPORT and m.get(t.ExecType) == t.EXEC_REJECTED


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("fuzz") / "venue")
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture(scope="module")
def fix(server: Server) -> Iterator[FixClient]:
    client = FixClient(server.server.fix_port, "MEMBER1")
    yield client
    client.close()


_ids = itertools.count(1)


def _order_body(cl: str, **overrides: str | None) -> list[tuple[int, str]]:
    fields: dict[int, str | None] = {
        t.ClOrdID: cl,
        t.Symbol: "AAPL",
        t.Side: t.SIDE_BUY,
        t.TransactTime: utc_timestamp(0),
        t.OrderQty: overrides.pop("qty", "1"),
        t.OrdType: overrides.pop("ord_type", t.ORD_LIMIT),
        t.Price: overrides.pop("price", "185.00"),
    }
    for key, value in overrides.items():
        fields[int(key[1:])] = value
    return [(tag, value) for tag, value in fields.items() if value is not None]


# (name, message type, body from (ClOrdID, OrigClOrdID of a live order, value), must reject)
_Body = Callable[[str, str, str], list[tuple[int, str]]]
_FixCase = tuple[str, str, _Body, Callable[[str], bool]]


def _replace_body(cl: str, orig: str, qty: str = "10", price: str = "185.00") -> list[Any]:
    return [
        (t.ClOrdID, cl),
        (t.OrigClOrdID, orig),
        (t.Symbol, "AAPL"),
        (t.Side, t.SIDE_BUY),
        (t.TransactTime, utc_timestamp(0)),
        (t.OrderQty, qty),
        (t.OrdType, t.ORD_LIMIT),
        (t.Price, price),
    ]


def _cancel_by_id(cl: str, _orig: str, value: str) -> list[tuple[int, str]]:
    number = _number(value)
    if number is not None and 0 < number < 10**9:
        value = str(2**70)  # a small id could name a live order: fuzz only ids no order has
    body = [(t.ClOrdID, cl), (t.OrderID, value), (t.Symbol, "AAPL"), (t.Side, t.SIDE_BUY)]
    return [*body, (t.TransactTime, utc_timestamp(0))]


FIX_CASES: list[_FixCase] = [
    ("OrderQty", "D", lambda cl, _o, v: _order_body(cl, qty=v), beyond_qty),
    ("Price", "D", lambda cl, _o, v: _order_body(cl, price=v), beyond_price),
    (
        "StopPx",
        "D",
        lambda cl, _o, v: _order_body(cl, ord_type=t.ORD_STOP, price=None, t99=v),
        beyond_price,
    ),
    ("MinQty", "D", lambda cl, _o, v: _order_body(cl, qty="100", t110=v), beyond_qty),
    ("DisplayQty", "D", lambda cl, _o, v: _order_body(cl, qty="100", t1138=v), beyond_qty),
    ("MaxFloor", "D", lambda cl, _o, v: _order_body(cl, qty="100", t111=v), beyond_qty),
    (
        "PegOffsetValue",
        "D",
        lambda cl, _o, v: _order_body(cl, ord_type="P", price=None, t1094="2", t211=v),
        beyond_price,
    ),
    (
        "TrailingStopAmount",
        "D",
        lambda cl, _o, v: _order_body(cl, ord_type=t.ORD_STOP, price=None, t18="a", t20001=v),
        beyond_price,
    ),
    (
        "TrailingStopBps",
        "D",
        lambda cl, _o, v: _order_body(cl, ord_type=t.ORD_STOP, price=None, t18="a", t20002=v),
        beyond_bps,
    ),
    ("Replace OrderQty", "G", lambda cl, o, v: _replace_body(cl, o, qty=v), beyond_qty),
    ("Replace Price", "G", lambda cl, o, v: _replace_body(cl, o, price=v), beyond_price),
    ("Cancel OrderID", "F", _cancel_by_id, lambda _v: True),
]


@pytest.mark.parametrize("case", FIX_CASES, ids=[c[0] for c in FIX_CASES])
def test_fix_numeric_fields(server: Server, fix: FixClient, case: _FixCase) -> None:
    name, msg_type, body, must_reject = case

    @FUZZ
    @given(NUMBERS)
    def check(value: str) -> None:
        orig = ""
        if msg_type == "G":  # a live order of its own to replace
            orig = f"base-{next(_ids)}"
            seq = fix.send(t.MT_NEW_ORDER_SINGLE, _order_body(orig, qty="5", price="180.00"))
            assert fix.answer(seq, orig).get(t.ExecType) == t.EXEC_NEW
        cl = f"fz-{next(_ids)}"
        seq = fix.send(msg_type, body(cl, orig, value))
        reply = fix.answer(seq, cl)
        if must_reject(value):
            assert is_rejection(reply), (name, value, reply)
        venue = server.server.venue
        assert server.healthy(), (name, value, venue.failure if venue else None)
        fix.inbox.clear()

    check()
    # A well-formed client is still served.
    cl = f"ok-{next(_ids)}"
    seq = fix.send(t.MT_NEW_ORDER_SINGLE, _order_body(cl, qty="1", price="184.00"))
    ack = fix.answer(seq, cl)
    assert ack.get(t.ExecType) == t.EXEC_NEW, ack


# --------------------------------------------------------------------------------- the broker


def beyond_rest_qty(text: str) -> bool:
    value = _number(text)
    return value is None or not 0 < value <= MAX_ORDER_QTY


def beyond_rest_price(text: str) -> bool:
    value = _number(text)
    return value is None or not 0 < value < MAX_PRICE_TICKS * TICK


def beyond_percent(text: str) -> bool:
    value = _number(text)
    return value is None or not 0 < value < 100


@pytest.fixture(scope="module")
def broker(server: Server) -> Iterator[tuple[httpx.Client, dict[str, str], dict[str, str], str]]:
    """A client of the broker's port, an admin's and a funded trader's credentials, the account."""
    base = f"http://127.0.0.1:{server.server.broker_port}"

    async def make() -> tuple[dict[str, str], str]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            return await api_customer(http, ADMIN_PASSWORD, username="fuzzer")

    trader, account = server.run(make())
    http = httpx.Client(base_url=base, timeout=30)
    form = {"username": "admin", "password": ADMIN_PASSWORD}
    token = http.post("/api/auth/token", data=form).json()["access_token"]
    admin = {"Authorization": f"Bearer {token}"}
    yield http, admin, trader, account
    http.close()


ORDER: dict[str, Any] = {
    "symbol": "AAPL",
    "qty": "1",
    "side": "buy",
    "type": "limit",
    "time_in_force": "gtc",
    "limit_price": "185.00",
}
BRACKET: dict[str, Any] = {
    **ORDER,
    "order_class": "bracket",
    "take_profit": {"limit_price": "200.00"},
    "stop_loss": {"stop_price": "170.00"},
}
_Order = dict[str, Any]
# (name, the body with the fuzzed value in place of the marker, must reject)
MARK = "\u2063"  # replaced by the fuzzed value in the encoded JSON
REST_ORDER_CASES: list[tuple[str, _Order, Callable[[str], bool]]] = [
    ("qty", {**ORDER, "qty": MARK}, beyond_rest_qty),
    ("notional", {**ORDER, "qty": None, "notional": MARK}, lambda _v: True),
    ("limit_price", {**ORDER, "limit_price": MARK}, beyond_rest_price),
    (
        "stop_price",
        {**ORDER, "type": "stop", "limit_price": None, "stop_price": MARK},
        beyond_rest_price,
    ),
    (
        "trail_price",
        {**ORDER, "type": "trailing_stop", "limit_price": None, "trail_price": MARK},
        beyond_rest_price,
    ),
    (
        "trail_percent",
        {**ORDER, "type": "trailing_stop", "limit_price": None, "trail_percent": MARK},
        beyond_percent,
    ),
    (
        "take_profit.limit_price",
        {**BRACKET, "take_profit": {"limit_price": MARK}},
        beyond_rest_price,
    ),
    ("stop_loss.stop_price", {**BRACKET, "stop_loss": {"stop_price": MARK}}, beyond_rest_price),
    (
        "stop_loss.limit_price",
        {**BRACKET, "stop_loss": {"stop_price": "170.00", "limit_price": MARK}},
        beyond_rest_price,
    ),
]


def _json_with(body: _Order, value: str, as_number: bool) -> bytes:
    """``body`` as JSON with ``value`` in place of the marker: a JSON number or a string."""
    clean = {k: v for k, v in body.items() if v is not None}
    text = json.dumps(clean)
    literal = value if as_number else json.dumps(value)
    return text.replace(json.dumps(MARK), literal).encode()


def _is_json_number(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return text.strip() not in ("NaN", "Infinity", "-Infinity")


def _assert_answered(response: httpx.Response, value: str, must_reject: bool, what: str) -> None:
    assert response.status_code < 500, (what, value, response.status_code, response.text)
    if must_reject:
        assert 400 <= response.status_code < 500, (what, value, response.text)


@pytest.mark.parametrize("case", REST_ORDER_CASES, ids=[c[0] for c in REST_ORDER_CASES])
def test_rest_order_fields(server: Server, broker: Any, case: Any) -> None:
    http, _admin, trader, _account = broker
    name, body, must_reject = case
    headers = {**trader, "content-type": "application/json"}

    @FUZZ
    @given(NUMBERS, st.booleans())
    def check(value: str, as_number: bool) -> None:
        as_number = as_number and _is_json_number(value)
        response = http.post(
            "/v2/orders", content=_json_with(body, value, as_number), headers=headers
        )
        _assert_answered(response, value, must_reject(value), name)
        assert server.healthy(), (name, value)
        if response.status_code == 200:
            http.delete("/v2/orders", headers=trader)  # free the buying power it holds

    check()
    placed = http.post("/v2/orders", json={**ORDER, "qty": "1"}, headers=trader)
    assert placed.status_code == 200 and placed.json()["status"] == "new", placed.text
    http.delete("/v2/orders", headers=trader)


@pytest.mark.parametrize(
    ("field", "must_reject"),
    [("qty", beyond_rest_qty), ("limit_price", beyond_rest_price)],
)
def test_rest_replace_fields(
    server: Server, broker: Any, field: str, must_reject: Callable[[str], bool]
) -> None:
    http, _admin, trader, _account = broker
    headers = {**trader, "content-type": "application/json"}

    @FUZZ
    @given(NUMBERS, st.booleans())
    def check(value: str, as_number: bool) -> None:
        placed = http.post("/v2/orders", json={**ORDER, "limit_price": "180.00"}, headers=trader)
        assert placed.status_code == 200, placed.text
        as_number = as_number and _is_json_number(value)
        response = http.patch(
            f"/v2/orders/{placed.json()['id']}",
            content=_json_with({field: MARK}, value, as_number),
            headers=headers,
        )
        _assert_answered(response, value, must_reject(value), f"PATCH {field}")
        assert server.healthy(), (field, value)
        http.delete("/v2/orders", headers=trader)

    check()


def test_rest_deposit_amounts_and_page_sizes(server: Server, broker: Any) -> None:
    http, admin, trader, account = broker
    headers = {**admin, "content-type": "application/json"}

    @FUZZ
    @given(NUMBERS, st.booleans())
    def check(value: str, as_number: bool) -> None:
        as_number = as_number and _is_json_number(value)
        number = _number(value)
        response = http.post(
            f"/api/accounts/{account}/deposits",
            content=_json_with({"amount": MARK}, value, as_number),
            headers=headers,
        )
        _assert_answered(response, value, number is None or number <= 0, "deposit")
        for path, largest in (("/v2/orders", 500), ("/v2/account/activities", 100)):
            key = "limit" if path == "/v2/orders" else "page_size"
            listed = http.get(path, params={key: value}, headers=trader)
            is_page = number is not None and number == number.to_integral_value()
            _assert_answered(listed, value, not (is_page and 1 <= number <= largest), path)
        assert server.healthy(), value

    check()
    assert http.get("/v2/account", headers=trader).status_code == 200
