"""FIX order entry translation: parsing D/F/G/H/q into engine commands, and execution reports
built from a real engine's events."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradingfloor.core.limits import MAX_ORDER_QTY, MAX_PRICE_TICKS, MAX_SYMBOL_LEN
from tradingfloor.exchange.engine import Engine
from tradingfloor.exchange.engine.commands import (
    AddInstrument,
    CancelOrder,
    Command,
    MassCancel,
    NewOrder,
    OrderStatusRequest,
    ReplaceOrder,
    SetKillSwitch,
    SetPhase,
    Tick,
)
from tradingfloor.exchange.engine.events import Event
from tradingfloor.exchange.engine.types import (
    OrdType,
    PegType,
    Phase,
    PostOnly,
    Side,
    STPMode,
    TimeInForce,
)
from tradingfloor.exchange.fix import tags as t
from tradingfloor.exchange.fix.orders import (
    MAX_ID_LEN,
    MAX_PENDING_STATUS,
    ExecutionReporter,
    FixFields,
    FixRejection,
    Outbound,
    ReporterError,
    StatusEcho,
    _format_utc_timestamp,
    _parse_utc_timestamp,
    parse_cancel,
    parse_mass_cancel,
    parse_new_order,
    parse_replace,
    parse_status,
    rejection_reply,
    status_echo,
)

TICKS = {"ACME": Decimal("0.01"), "BIG": Decimal("0.5")}
START_TS = 1_704_205_800_000_000_000  # 2024-01-02 14:30:00 UTC


class Msg:
    """Stand-in for ``codec.Message``: fields in wire order, header included."""

    def __init__(self, fields: Sequence[tuple[int, str]]) -> None:
        self.fields = tuple(fields)

    @property
    def msg_type(self) -> str:
        value = self.get(t.MsgType)
        assert value is not None
        return value

    @property
    def seq_num(self) -> int:
        return int(self.get(t.MsgSeqNum) or "0")

    def get(self, tag: int) -> str | None:
        return next((v for k, v in self.fields if k == tag), None)

    def get_all(self, tag: int) -> list[str]:
        return [v for k, v in self.fields if k == tag]

    def has(self, tag: int) -> bool:
        return any(k == tag for k, _ in self.fields)


_DEFAULTS: dict[str, dict[int, str]] = {
    "D": {11: "c1", 55: "ACME", 54: "1", 60: "20240102-14:30:00", 38: "100", 40: "2", 44: "10.00"},
    "F": {41: "c1", 11: "x1", 55: "ACME", 54: "1", 60: "20240102-14:30:00", 38: "100"},
    "G": {41: "c1", 11: "r1", 55: "ACME", 54: "1", 60: "20240102-14:30:00", 38: "100", 40: "2"},
    "H": {11: "c1", 55: "ACME", 54: "1"},
    "q": {11: "m1", 530: "7", 60: "20240102-14:30:00"},
}


def msg(msg_type: str, seq: int = 7, extra: Sequence[tuple[int, str]] = (), **kw: Any) -> Msg:
    """A message of ``msg_type`` with default fields; ``tNN=None`` drops tag NN, ``tNN=v`` sets."""
    fields = dict(_DEFAULTS[msg_type])
    for key, value in kw.items():
        tag = int(key[1:])
        if value is None:
            fields.pop(tag, None)
        else:
            fields[tag] = value
    head = [(t.MsgType, msg_type), (t.SenderCompID, "M1"), (t.MsgSeqNum, str(seq))]
    return Msg([*head, *fields.items(), *extra])


def nos(**kw: Any) -> NewOrder:
    cmd = parse_new_order(msg("D", **kw), "M1", TICKS)
    assert isinstance(cmd, NewOrder), cmd
    return cmd


def nos_reject(**kw: Any) -> FixRejection:
    rej = parse_new_order(msg("D", **kw), "M1", TICKS)
    assert isinstance(rej, FixRejection), rej
    return rej


def test_stand_in_satisfies_the_protocol() -> None:
    fields: FixFields = msg("D")
    assert fields.msg_type == "D" and fields.seq_num == 7 and fields.has(11)


# ----------------------------------------------------------------------------- new orders


def test_plain_limit_order_maps_every_field() -> None:
    cmd = nos(t1="ACC1", t44="10.25")
    assert cmd == NewOrder(
        symbol="ACME",
        member="M1",
        cl_ord_id="c1",
        side=Side.BUY,
        qty=100,
        ord_type=OrdType.LIMIT,
        price=1025,
        tif=TimeInForce.DAY,
        account="ACC1",
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"t40": "1", "t44": None}, {"ord_type": OrdType.MARKET}),
        ({"t54": "2"}, {"side": Side.SELL, "price": 1000}),
        ({"t40": "3", "t44": None, "t99": "9.50"}, {"ord_type": OrdType.STOP, "stop_price": 950}),
        ({"t40": "4", "t99": "9.50"}, {"ord_type": OrdType.STOP_LIMIT, "stop_price": 950}),
        ({"t40": "J", "t44": None, "t99": "9.5"}, {"ord_type": OrdType.MARKET_IF_TOUCHED}),
        ({"t40": "J", "t99": "9.5"}, {"ord_type": OrdType.LIMIT_IF_TOUCHED, "price": 1000}),
        ({"t40": "K", "t44": None}, {"ord_type": OrdType.MARKET_TO_LIMIT}),
        ({"t40": "5", "t44": None}, {"ord_type": OrdType.MARKET, "tif": TimeInForce.CLS}),
        ({"t40": "5", "t44": None, "t59": "7"}, {"tif": TimeInForce.CLS}),
        ({"t40": "5", "t44": None, "t59": "0"}, {"tif": TimeInForce.CLS}),
        ({"t40": "B"}, {"ord_type": OrdType.LIMIT, "tif": TimeInForce.CLS, "price": 1000}),
        ({"t59": "2"}, {"tif": TimeInForce.OPG}),
        ({"t40": "1", "t44": None, "t59": "2"}, {"ord_type": OrdType.MARKET, "tif": "opg"}),
        ({"t59": "7"}, {"tif": TimeInForce.CLS}),
        ({"t59": "0"}, {"tif": TimeInForce.DAY}),
        ({"t59": "1"}, {"tif": TimeInForce.GTC}),
        ({"t59": "3"}, {"tif": TimeInForce.IOC}),
        ({"t59": "4"}, {"tif": TimeInForce.FOK}),
        (
            {"t59": "6", "t126": "20240102-21:00:00.5"},
            {"tif": TimeInForce.GTD, "expire_ts": 1_704_229_200_500_000_000},
        ),
        ({"t38": "100.0"}, {"qty": 100}),
        ({"t38": "0100.000"}, {"qty": 100}),
        ({"t110": "50"}, {"min_qty": 50}),
        ({"t1138": "10"}, {"display_qty": 10, "hidden": False}),
        ({"t111": "10"}, {"display_qty": 10}),
        ({"t111": "10", "t1138": "10"}, {"display_qty": 10}),
        ({"t1138": "0"}, {"hidden": True, "display_qty": 0}),
        ({"t111": "0"}, {"hidden": True}),
        ({"t18": "6"}, {"post_only": PostOnly.REJECT}),
        ({"t18": "G"}, {"aon": True}),
        ({"t18": "6 G"}, {"aon": True, "post_only": PostOnly.REJECT}),
        ({"t2964": "1"}, {"stp": STPMode.CANCEL_NEWEST}),
        ({"t2964": "2"}, {"stp": STPMode.CANCEL_OLDEST}),
        ({"t2964": "3"}, {"stp": STPMode.CANCEL_BOTH}),
        ({"t2964": "4"}, {"stp": STPMode.DECREMENT}),
        (
            {"t40": "P", "t44": None, "t1094": "2"},
            {"ord_type": OrdType.PEGGED, "peg": PegType.MIDPOINT, "price": 0},
        ),
        ({"t40": "P", "t44": None, "t1094": "4"}, {"peg": PegType.MARKET}),
        ({"t40": "P", "t44": None, "t1094": "5"}, {"peg": PegType.PRIMARY}),
        ({"t40": "P", "t44": None, "t18": "M"}, {"peg": PegType.MIDPOINT}),
        ({"t40": "P", "t44": None, "t18": "P"}, {"peg": PegType.MARKET}),
        ({"t40": "P", "t44": None, "t18": "R", "t1094": "5"}, {"peg": PegType.PRIMARY}),
        ({"t40": "P", "t1094": "5", "t44": "10.50"}, {"price": 1050}),  # the cap
        ({"t40": "P", "t44": None, "t1094": "5", "t211": "-0.02"}, {"peg_offset": -2}),
        (
            {"t54": "2", "t40": "P", "t44": None, "t1094": "5", "t211": "0.03"},
            {"peg_offset": -3},  # a sell's +0.03 is 3 ticks less aggressive
        ),
        (
            {"t40": "3", "t44": None, "t18": "a", "t20001": "0.25"},
            {"ord_type": OrdType.TRAILING_STOP, "trail_amount": 25},
        ),
        (
            {"t40": "3", "t44": None, "t18": "a", "t20002": "150"},
            {"ord_type": OrdType.TRAILING_STOP, "trail_bps": 150},
        ),
        (
            {"t40": "4", "t44": None, "t18": "a", "t20001": "0.1", "t20003": "0.05"},
            {"ord_type": OrdType.TRAILING_STOP_LIMIT, "trail_amount": 10, "limit_offset": 5},
        ),
    ],
)
def test_new_order_mapping(fields: dict[str, str | None], expected: dict[str, Any]) -> None:
    cmd = nos(**fields)
    for name, value in expected.items():
        assert getattr(cmd, name) == value, (name, cmd)


@pytest.mark.parametrize(
    ("fields", "kind", "ref_tag", "reason"),
    [
        ({"t11": None}, "session", 11, t.SRR_REQUIRED_TAG_MISSING),
        ({"t55": None}, "session", 55, 1),
        ({"t54": None}, "session", 54, 1),
        ({"t38": None}, "session", 38, 1),
        ({"t40": None}, "session", 40, 1),
        ({"t11": ""}, "session", 11, t.SRR_TAG_WITHOUT_VALUE),
        ({"t11": "x" * (MAX_ID_LEN + 1)}, "session", 11, t.SRR_VALUE_INCORRECT),
        ({"t1": "x" * (MAX_ID_LEN + 1)}, "session", 1, 5),
        ({"t54": "Z"}, "session", 54, t.SRR_VALUE_INCORRECT),
        ({"t54": "5"}, "execution", 54, 11),  # sell short: valid FIX, not supported
        ({"t40": "Q"}, "session", 40, 5),
        ({"t40": "D"}, "execution", 40, 11),  # previously quoted
        ({"t59": "9"}, "session", 59, 5),
        ({"t59": "5"}, "execution", 59, 11),  # GTX
        ({"t40": "5", "t44": None, "t59": "1"}, "execution", 59, 11),
        ({"t38": "abc"}, "session", 38, t.SRR_INCORRECT_DATA_FORMAT),
        ({"t38": "1e5"}, "session", 38, 6),
        ({"t38": "1" * 40}, "session", 38, 6),
        ({"t38": "100.5"}, "execution", 38, 13),
        ({"t110": "1.5"}, "execution", 110, 13),
        ({"t1138": "0.5"}, "execution", 1138, 13),
        ({"t1138": "10", "t111": "20"}, "session", 1138, 5),
        ({"t55": "NOPE"}, "execution", 55, 1),
        ({"t44": "10.005"}, "execution", 44, 99),
        ({"t44": "ten"}, "session", 44, 6),
        ({"t40": "4", "t99": "9.999"}, "execution", 99, 99),
        ({"t40": "2", "t44": None}, "business", 44, t.BRR_CONDITIONALLY_REQUIRED_FIELD_MISSING),
        ({"t40": "B", "t44": None}, "business", 44, 5),
        ({"t40": "3", "t44": None}, "business", 99, 5),
        ({"t40": "4"}, "business", 99, 5),
        ({"t40": "J", "t44": None}, "business", 99, 5),
        ({"t59": "6"}, "business", 126, 5),
        ({"t40": "P", "t44": None}, "business", 1094, 5),
        ({"t40": "3", "t44": None, "t18": "a"}, "business", 20001, 5),
        ({"t59": "6", "t126": "2024-01-02"}, "session", 126, 6),
        ({"t59": "6", "t126": "20240230-10:00:00"}, "session", 126, 6),
        ({"t59": "6", "t126": "20240102-24:00:00"}, "session", 126, 6),
        ({"t18": "1"}, "execution", 18, 11),  # not held: valid, unsupported
        ({"t18": "6 E"}, "execution", 18, 11),
        ({"t18": "?"}, "session", 18, 5),
        ({"t18": "a"}, "execution", 18, 11),  # trailing on a limit order
        ({"t1094": "5"}, "execution", 1094, 11),  # peg instruction on a limit order
        ({"t40": "P", "t44": None, "t1094": "1"}, "execution", 1094, 11),  # last peg
        ({"t40": "P", "t44": None, "t1094": "X"}, "session", 1094, 5),
        ({"t40": "P", "t44": None, "t1094": "2", "t18": "R"}, "execution", 1094, 11),
        ({"t2964": "9"}, "session", 2964, 5),
        ({"t20002": "1.5", "t40": "3", "t18": "a", "t44": None}, "session", 20002, 6),
    ],
)
def test_new_order_rejections(
    fields: dict[str, str | None], kind: str, ref_tag: int, reason: int
) -> None:
    rej = nos_reject(**fields)
    assert (rej.kind, rej.ref_tag, rej.reason) == (kind, ref_tag, reason), rej
    assert rej.text


def test_repeated_tag_is_a_session_reject() -> None:
    rej = parse_new_order(msg("D", extra=[(38, "5")]), "M1", TICKS)
    assert rej == FixRejection("session", 38, t.SRR_TAG_APPEARS_MORE_THAN_ONCE, rej.text)  # type: ignore[union-attr]


def test_tick_size_follows_the_symbol() -> None:
    assert nos(t55="BIG", t44="10.5").price == 21
    assert nos_reject(t55="BIG", t44="10.25").kind == "execution"


OVER_U64 = "100000000000000000000"  # 10^20: above 2^64, once a journal-stopping quantity


@pytest.mark.parametrize(
    ("fields", "ref_tag", "reason", "says"),
    [
        ({"t38": OVER_U64}, 38, 13, "out of range"),
        ({"t38": str(2**63)}, 38, 13, "out of range"),
        ({"t38": str(MAX_ORDER_QTY + 1)}, 38, 13, "out of range"),
        ({"t38": "-5"}, 38, 13, "out of range"),
        ({"t110": OVER_U64}, 110, 13, "out of range"),
        ({"t1138": OVER_U64}, 1138, 13, "out of range"),
        ({"t111": OVER_U64}, 111, 13, "out of range"),
        ({"t44": "1000000000000000000000000000000"}, 44, 99, "out of range"),
        ({"t44": "99999999999999999"}, 44, 99, "out of range"),
        ({"t44": "-99999999999999999"}, 44, 99, "out of range"),
        ({"t44": "90000000.00"}, 44, 99, "out of range"),
        ({"t40": "4", "t99": OVER_U64}, 99, 99, "out of range"),
        (
            {"t40": "3", "t44": None, "t18": "a", "t20001": OVER_U64},
            20001,
            99,
            "out of range",
        ),
        ({"t40": "3", "t44": None, "t18": "a", "t20002": OVER_U64}, 20002, 99, "out of range"),
        ({"t40": "3", "t44": None, "t18": "a", "t20002": "10000"}, 20002, 99, "out of range"),
        ({"t40": "P", "t44": None, "t1094": "2", "t211": OVER_U64}, 211, 99, "out of range"),
        ({"t59": "6", "t126": "99991231-23:59:59"}, 126, 99, "out of range"),
    ],
)
def test_values_beyond_the_shared_limits_are_rejected_as_out_of_range(
    fields: dict[str, str | None], ref_tag: int, reason: int, says: str
) -> None:
    rej = nos_reject(**fields)
    assert (rej.kind, rej.ref_tag, rej.reason) == ("execution", ref_tag, reason), rej
    assert says in rej.text


def test_the_largest_values_within_the_limits_are_accepted() -> None:
    cmd = nos(t38=str(MAX_ORDER_QTY), t44=str((MAX_PRICE_TICKS - 1) * Decimal("0.01")))
    assert (cmd.qty, cmd.price) == (MAX_ORDER_QTY, MAX_PRICE_TICKS - 1)


def test_a_symbol_longer_than_the_limit_is_a_session_reject() -> None:
    rej = nos_reject(t55="X" * (MAX_SYMBOL_LEN + 1))
    assert (rej.kind, rej.ref_tag, rej.reason) == ("session", 55, t.SRR_VALUE_INCORRECT)


@pytest.mark.parametrize("value", [str(2**63), OVER_U64, "9" * 32])
def test_an_order_id_beyond_the_limit_is_unknown(value: str) -> None:
    rej = parse_cancel(msg("F", t41=None, t37=value), "M1")
    assert isinstance(rej, FixRejection)
    assert (rej.kind, rej.ref_tag, rej.reason) == ("cancel_reject", 37, 1)
    status = parse_status(msg("H", t37=value), "M1")
    assert isinstance(status, OrderStatusRequest) and status.order_id == 0


def test_replace_values_beyond_the_limits_are_cancel_rejects() -> None:
    for fields in ({"t38": OVER_U64}, {"t44": OVER_U64}, {"t99": OVER_U64}):
        rej = parse_replace(msg("G", **fields), "M1", TICKS)
        assert isinstance(rej, FixRejection) and rej.kind == "cancel_reject", rej
        assert "out of range" in rej.text


# ----------------------------------------------------------------------------- cancel / replace


def test_parse_cancel_by_orig_cl_ord_id_and_by_order_id() -> None:
    assert parse_cancel(msg("F"), "M1") == CancelOrder(
        symbol="ACME", member="M1", cl_ord_id="x1", orig_cl_ord_id="c1"
    )
    by_id = parse_cancel(msg("F", t41=None, t37="42"), "M1")
    assert by_id == CancelOrder(symbol="ACME", member="M1", cl_ord_id="x1", order_id=42)


@pytest.mark.parametrize(
    ("fields", "kind", "ref_tag", "reason"),
    [
        ({"t41": None}, "session", 41, 1),
        ({"t11": None}, "session", 11, 1),
        ({"t55": None}, "session", 55, 1),
        ({"t54": None}, "session", 54, 1),
        ({"t41": None, "t37": "abc"}, "cancel_reject", 37, 1),
        ({"t41": None, "t37": "0"}, "cancel_reject", 37, 1),
    ],
)
def test_parse_cancel_rejections(
    fields: dict[str, str | None], kind: str, ref_tag: int, reason: int
) -> None:
    rej = parse_cancel(msg("F", **fields), "M1")
    assert isinstance(rej, FixRejection)
    assert (rej.kind, rej.ref_tag, rej.reason) == (kind, ref_tag, reason)


def test_parse_replace() -> None:
    cmd = parse_replace(msg("G", t38="150", t44="10.10", t99="9.00"), "M1", TICKS)
    assert cmd == ReplaceOrder(
        symbol="ACME",
        member="M1",
        cl_ord_id="r1",
        qty=150,
        orig_cl_ord_id="c1",
        price=1010,
        stop_price=900,
    )
    kept = parse_replace(msg("G", t41=None, t37="9"), "M1", TICKS)
    assert kept == ReplaceOrder(symbol="ACME", member="M1", cl_ord_id="r1", qty=100, order_id=9)


@pytest.mark.parametrize(
    ("fields", "kind", "ref_tag", "reason"),
    [
        ({"t38": None}, "session", 38, 1),
        ({"t40": None}, "session", 40, 1),
        ({"t40": "?"}, "session", 40, 5),
        ({"t41": None}, "session", 41, 1),
        ({"t38": "10.5"}, "cancel_reject", 38, 99),
        ({"t44": "10.001"}, "cancel_reject", 44, 99),
        ({"t55": "NOPE"}, "cancel_reject", 55, 1),
        ({"t44": "x"}, "session", 44, 6),
    ],
)
def test_parse_replace_rejections(
    fields: dict[str, str | None], kind: str, ref_tag: int, reason: int
) -> None:
    rej = parse_replace(msg("G", **fields), "M1", TICKS)
    assert isinstance(rej, FixRejection)
    assert (rej.kind, rej.ref_tag, rej.reason) == (kind, ref_tag, reason)


# ----------------------------------------------------------------------------- status / mass cancel


def test_parse_status() -> None:
    by_clid = parse_status(msg("H", extra=[(790, "q1")]), "M1")
    assert by_clid == OrderStatusRequest(symbol="ACME", member="M1", orig_cl_ord_id="c1")
    by_id = parse_status(msg("H", t37="12"), "M1")
    assert by_id == OrderStatusRequest(symbol="ACME", member="M1", order_id=12)
    by_orig = parse_status(msg("H", t41="c0"), "M1")
    assert by_orig == OrderStatusRequest(symbol="ACME", member="M1", orig_cl_ord_id="c0")
    foreign = parse_status(msg("H", t37="EXT-1"), "M1")  # not one of ours: look up by 11
    assert foreign == OrderStatusRequest(symbol="ACME", member="M1", orig_cl_ord_id="c1")
    assert status_echo(msg("H", extra=[(790, "q1")])) == StatusEcho("q1", "1", "c1")
    assert status_echo(msg("H")) == StatusEcho("", "1", "c1")
    for fields in ({"t55": None}, {"t54": None}, {"t11": None}):
        rej = parse_status(msg("H", **fields), "M1")
        assert isinstance(rej, FixRejection) and rej.kind == "session" and rej.reason == 1


def test_parse_mass_cancel() -> None:
    assert parse_mass_cancel(msg("q"), "M1") == MassCancel(member="M1", cl_ord_id="m1")
    by_sym = parse_mass_cancel(msg("q", t530="1", t55="ACME", t1="A1"), "M1")
    assert by_sym == MassCancel(member="M1", cl_ord_id="m1", account="A1", symbol="ACME")
    cases = [
        ({"t530": None}, ("session", 530, 1)),
        ({"t11": None}, ("session", 11, 1)),
        ({"t530": "9"}, ("session", 530, 5)),
        ({"t530": "3"}, ("mass_cancel_reject", 530, 0)),
        ({"t530": "1"}, ("mass_cancel_reject", 55, 1)),
        ({"t54": "1"}, ("mass_cancel_reject", 54, 99)),
    ]
    for fields, expected in cases:
        rej = parse_mass_cancel(msg("q", **fields), "M1")
        assert isinstance(rej, FixRejection), fields
        assert (rej.kind, rej.ref_tag, rej.reason) == expected


# ----------------------------------------------------------------------------- rejection replies


def fd(body: Sequence[tuple[int, str]]) -> dict[int, str]:
    """Body as a dict; fails if a tag repeats (no repeating groups in these messages)."""
    d = dict(body)
    assert len(d) == len(body), body
    return d


def test_rejection_reply_session_and_business() -> None:
    m = msg("D", seq=33, t11=None)
    rej = parse_new_order(m, "M1", TICKS)
    assert isinstance(rej, FixRejection)
    mt, body = rejection_reply(m, rej, exec_id="R1", ts=START_TS)
    assert mt == "3"
    assert fd(body) == {45: "33", 371: "11", 372: "D", 373: "1", 58: rej.text}
    m = msg("D", seq=34, t40="2", t44=None)
    rej = parse_new_order(m, "M1", TICKS)
    assert isinstance(rej, FixRejection)
    mt, body = rejection_reply(m, rej, exec_id="R2", ts=START_TS)
    assert mt == "j"
    assert fd(body) == {45: "34", 372: "D", 379: "c1", 380: "5", 58: rej.text}


def test_rejection_reply_execution_report() -> None:
    m = msg("D", t55="NOPE", t1="A1", t59="1")
    rej = parse_new_order(m, "M1", TICKS)
    assert isinstance(rej, FixRejection)
    mt, body = rejection_reply(m, rej, exec_id="R9", ts=START_TS + 1_234_567)
    f = fd(body)
    assert mt == "8"
    assert f[37] == "NONE" and f[17] == "R9" and f[150] == "8" and f[39] == "8" and f[103] == "1"
    assert (f[11], f[1], f[55], f[54], f[38], f[40], f[44], f[59]) == (
        "c1",
        "A1",
        "NOPE",
        "1",
        "100",
        "2",
        "10.00",
        "1",
    )
    assert (f[14], f[151], f[6]) == ("0", "0", "0")
    assert f[60] == "20240102-14:30:00.001"


def test_rejection_reply_cancel_reject_and_mass_cancel() -> None:
    m = msg("G", t41=None, t37="abc")
    rej = parse_replace(m, "M1", TICKS)
    assert isinstance(rej, FixRejection)
    mt, body = rejection_reply(m, rej, exec_id="R3", ts=START_TS)
    f = fd(body)
    assert mt == "9"
    assert (f[37], f[11], f[41], f[39], f[434], f[102]) == ("abc", "r1", "NONE", "8", "2", "1")
    m = msg("F", t38=None)
    rej = FixRejection("cancel_reject", None, 99, "x")
    mt, body = ExecutionReporter().rejection_message(m, rej, "")
    assert fd(body)[434] == "1" and 60 not in fd(body)
    assert (mt, body) == rejection_reply(m, rej, exec_id="")
    m = msg("q", t530="4")
    rej = parse_mass_cancel(m, "M1")
    assert isinstance(rej, FixRejection)
    mt, body = rejection_reply(m, rej, exec_id="R4", ts=START_TS)
    f = fd(body)
    assert mt == "r"
    assert (f[37], f[11], f[530], f[531], f[532]) == ("R4", "m1", "4", "0", "0")


# ----------------------------------------------------------------------------- timestamps


def test_utc_timestamps() -> None:
    assert _format_utc_timestamp(START_TS) == "20240102-14:30:00.000"
    assert _format_utc_timestamp(START_TS + 999_999_999) == "20240102-14:30:00.999"
    assert _format_utc_timestamp(0) == "19700101-00:00:00.000"
    assert _parse_utc_timestamp("20240102-14:30:00") == START_TS
    assert _parse_utc_timestamp("20240102-14:30:00.123456789") == START_TS + 123_456_789
    assert _parse_utc_timestamp("20240102-14:30:00.1") == START_TS + 100_000_000
    for bad in (
        "20240102-14:30",
        "20240102-14:60:00",
        "20241302-00:00:00",
        "\uff120240102-14:30:00",
    ):
        assert _parse_utc_timestamp(bad) is None


# ----------------------------------------------------------------------------- engine-driven


class Venue:
    """An engine plus a reporter fed exactly as the gateway will feed them."""

    def __init__(
        self,
        *,
        strict: bool = False,
        phase: Phase = Phase.CONTINUOUS,
        members: set[str] | None = None,
    ) -> None:
        self.engine = Engine()
        self.reporter = ExecutionReporter(fix44_strict=strict, members=members)
        self.seq = 0
        self.ts = START_TS
        self.log: list[tuple[list[Event], Command]] = []
        self.run(AddInstrument(symbol="ACME", phase=phase))
        self.run(AddInstrument(symbol="BIG", tick_size="0.5"))

    def run(
        self, cmd: Command, *, ts: int | None = None, echo: StatusEcho | None = None
    ) -> list[Outbound]:
        self.seq += 1
        self.ts = ts if ts is not None else self.ts + 1_000_000
        events = self.engine.apply(self.seq, self.ts, cmd)
        self.log.append((events, cmd))
        return self.reporter.apply(events, cmd, echo=echo)

    def fix(self, member: str, m: Msg) -> list[Outbound]:
        """Parse as the gateway does; status echoes go through ``expect_status``."""
        cmd: Command | FixRejection
        if m.msg_type == "D":
            cmd = parse_new_order(m, member, TICKS)
        elif m.msg_type == "G":
            cmd = parse_replace(m, member, TICKS)
        elif m.msg_type == "F":
            cmd = parse_cancel(m, member)
        elif m.msg_type == "q":
            cmd = parse_mass_cancel(m, member)
        else:
            cmd = parse_status(m, member)
            assert isinstance(cmd, OrderStatusRequest), cmd
            self.reporter.expect_status(cmd, status_echo(m))
        assert not isinstance(cmd, FixRejection), cmd
        return self.run(cmd)

    def order(self, member: str, **kw: Any) -> list[Outbound]:
        return self.fix(member, msg("D", **kw))


def ers(out: Sequence[Outbound], member: str | None = None) -> list[dict[int, str]]:
    return [fd(o.body) for o in out if o.msg_type == "8" and member in (None, o.member)]


def test_a_reporter_for_some_members_reports_and_tracks_only_theirs() -> None:
    v = Venue(members={"M1"})  # M2 is, say, an in-process broker without a FIX session
    assert v.order("M2", t11="s1", t54="2", t1="ACC2") == []
    assert v.reporter.open_orders() == 0
    out = v.order("M1", t11="b1", t54="1", t1="ACC1")  # trades with M2's order
    assert {o.member for o in out} == {"M1"}
    assert [r[150] for r in ers(out, "M1")] == ["0", "F"]
    assert v.reporter.open_orders() == 0
    v.run(AddInstrument(symbol="NEW", tick_size="0.05"))  # listings are everyone's
    out = v.run(NewOrder(symbol="NEW", member="M1", cl_ord_id="b2", side=Side.BUY, qty=1, price=21))
    assert [r[44] for r in ers(out, "M1")] == ["1.05"]


def test_full_fill_reports_both_sides() -> None:
    v = Venue()
    out = v.order("M2", t11="s1", t54="2", t1="ACC2")
    (new,) = ers(out, "M2")
    assert (new[150], new[39], new[37], new[11], new[1], new[55], new[54]) == (
        "0",
        "0",
        str(v.seq),
        "s1",
        "ACC2",
        "ACME",
        "2",
    )
    assert (new[38], new[40], new[44], new[59], new[14], new[151], new[6]) == (
        "100",
        "2",
        "10.00",
        "0",
        "0",
        "100",
        "0",
    )
    assert new[60] == _format_utc_timestamp(v.ts) and 99 not in new
    seller = v.seq
    out = v.order("M1", t11="b1")
    assert [o.member for o in out] == ["M1", "M2", "M1"]
    taker_new, taker_fill = ers(out, "M1")
    (maker_fill,) = ers(out, "M2")
    assert taker_new[150] == "0"
    for er, liq in ((maker_fill, "1"), (taker_fill, "2")):
        assert (er[150], er[39], er[31], er[32], er[14], er[151], er[6]) == (
            "F",
            "2",
            "10.00",
            "100",
            "100",
            "0",
            "10.00",
        )
        assert er[851] == liq and er[880] == "1"
    assert maker_fill[37] == str(seller) and maker_fill[11] == "s1"
    assert maker_fill[17] != taker_fill[17]
    assert v.reporter.open_orders() == 0


def test_partial_fills_average_price() -> None:
    v = Venue()
    v.order("M2", t11="s1", t54="2", t38="30", t44="10.00")
    v.order("M3", t11="s2", t54="2", t38="70", t44="10.01")
    out = v.order("M1", t11="b1", t44="10.01")
    fills = [er for er in ers(out, "M1") if er[150] == "F"]
    assert [(f[39], f[32], f[31], f[14], f[151]) for f in fills] == [
        ("1", "30", "10.00", "30", "70"),
        ("2", "70", "10.01", "100", "0"),
    ]
    assert Decimal(fills[0][6]) == Decimal("10.00")
    assert Decimal(fills[1][6]) == Decimal("10.007")
    v.order("M2", t11="s3", t54="2", t38="1", t44="10.00")
    v.order("M2", t11="s4", t54="2", t38="2", t44="10.01")
    out = v.order("M1", t11="b2", t38="3", t44="10.01")
    last = ers(out, "M1")[-1]
    assert last[6] == "10.006667"  # 30.02 / 3, 4 digits beyond the tick, half-even


def test_cancel_by_fix_request() -> None:
    v = Venue()
    v.order("M1", t11="c1", t1="A1")
    out = v.fix("M1", msg("F", t11="x1", t41="c1"))
    (er,) = ers(out)
    assert out[0].member == "M1"
    assert (er[150], er[39], er[11], er[41], er[14], er[151], er[38], er[58], er[1]) == (
        "4",
        "4",
        "x1",
        "c1",
        "0",
        "0",
        "100",
        "user",
        "A1",
    )
    assert v.reporter.open_orders() == 0


def test_replace_reports_new_ids_and_values() -> None:
    v = Venue()
    v.order("M1", t11="c1")
    oid = v.seq
    v.order("M2", t11="s1", t54="2", t38="40")
    out = v.fix("M1", msg("G", t11="r1", t41="c1", t38="150", t44="9.90"))
    (er,) = ers(out)
    assert (er[150], er[39], er[37], er[11], er[41], er[38], er[44], er[14], er[151]) == (
        "5",
        "1",
        str(oid),
        "r1",
        "c1",
        "150",
        "9.90",
        "40",
        "110",
    )
    out = v.fix("M1", msg("F", t11="x2", t41="r1"))
    assert ers(out)[0][41] == "r1"


def test_replace_and_cancel_rejects() -> None:
    v = Venue()
    v.order("M1", t11="c1")
    oid = v.seq
    out = v.fix("M1", msg("G", t11="c1", t41="c1", t38="50"))  # reuses a ClOrdID
    (rej,) = out
    f = fd(rej.body)
    assert (rej.member, rej.msg_type) == ("M1", "9")
    assert (f[37], f[11], f[41], f[39], f[434], f[102]) == (str(oid), "c1", "c1", "0", "2", "6")
    assert f[58].startswith("3004 ")
    out = v.fix("M1", msg("F", t11="x1", t41="zzz"))
    f = fd(out[0].body)
    assert (out[0].msg_type, f[37], f[41], f[39], f[434], f[102]) == (
        "9",
        "NONE",
        "zzz",
        "8",
        "1",
        "1",
    )
    assert f[58].startswith("4001 ")
    # Another member cannot cancel it, learns nothing about it, and the owner hears nothing.
    out = v.fix("M2", msg("F", t11="x9", t41=None, t37=str(oid)))
    assert [(o.member, o.msg_type) for o in out] == [("M2", "9")]
    f = fd(out[0].body)
    assert (f[37], f[41], f[39], f[102]) == ("NONE", "NONE", "8", "1")
    # A replace below the filled quantity: "other", with the order's current status.
    v.order("M2", t11="s1", t54="2", t38="60")
    out = v.fix("M1", msg("G", t11="r2", t41="c1", t38="50"))
    f = fd(out[0].body)
    assert (f[37], f[39], f[102]) == (str(oid), "1", "99") and f[58].startswith("4003 ")


def test_duplicate_cl_ord_id_rejected_and_not_executed_twice() -> None:
    v = Venue()
    v.order("M2", t11="s1", t54="2", t38="500")
    v.order("M1", t11="b1", t38="100")
    out = v.order("M1", t11="b1", t38="100", t1="A9", t59="1")
    (er,) = ers(out)
    assert out[0].member == "M1"
    assert (er[150], er[39], er[103], er[37], er[11], er[38], er[1], er[59], er[44]) == (
        "8",
        "8",
        "6",
        "NONE",
        "b1",
        "100",
        "A9",
        "1",
        "10.00",
    )
    assert er[58] == "3004 duplicate client order id"
    assert v.engine.orders[2 + 1].leaves == 400  # the resting sell: filled once only
    # Another member may use the same ClOrdID.
    assert ers(v.order("M3", t11="b1"))[0][150] == "0"


@pytest.mark.parametrize(
    ("setup", "fields", "code", "reason"),
    [
        (SetPhase(symbol="ACME", phase=Phase.CLOSED), {}, 1003, "2"),
        (SetPhase(symbol="ACME", phase=Phase.HALTED), {}, 1004, "2"),
        (SetKillSwitch(member="M1", active=True), {}, 2001, "0"),
        (None, {"t59": "2"}, 1005, "4"),
        (None, {"t38": "0"}, 3001, "13"),
        (None, {"t44": "0"}, 3002, "99"),
        (None, {"t40": "1"}, 3005, "11"),
        (None, {"t40": "1", "t44": None, "t59": "1"}, 3006, "11"),
        (None, {"t59": "6", "t126": "20000101-00:00:00"}, 3009, "99"),
        (None, {"t1138": "0", "t59": "3"}, 3015, "11"),
        (None, {"t40": "1", "t44": None}, 3016, "99"),
    ],
)
def test_engine_rejects_map_to_ord_rej_reason(
    setup: Command | None, fields: dict[str, str], code: int, reason: str
) -> None:
    v = Venue()
    if setup is not None:
        v.run(setup)
    (er,) = ers(v.order("M1", **fields))
    assert (er[150], er[39], er[103]) == ("8", "8", reason)
    assert er[58].startswith(f"{code} ")


def test_unknown_symbol_in_engine_reject_has_no_price() -> None:
    v = Venue()
    out = v.run(NewOrder(symbol="ZZZ", member="M1", cl_ord_id="z", side=Side.BUY, qty=1, price=5))
    (er,) = ers(out)
    assert er[103] == "1" and 44 not in er and er[54] == "1"


def test_self_trade_prevention_reports() -> None:
    v = Venue()
    v.order("M1", t11="s1", t54="2", t38="100")
    out = v.order("M1", t11="b1", t38="30", t2964="1")
    _, cancelled = ers(out)
    assert (cancelled[150], cancelled[39], cancelled[58], cancelled[11]) == (
        "4",
        "4",
        "self_trade_prevention",
        "b1",
    )
    assert 41 not in cancelled
    # Decrement: the resting sell shrinks by 40 (a restatement), the incoming buy is cancelled.
    out = v.order("M1", t11="b2", t38="40", t2964="4")
    reports = ers(out)
    assert [(r[11], r[150], r[39]) for r in reports] == [
        ("b2", "0", "0"),
        ("s1", "D", "0"),
        ("b2", "4", "4"),
    ]
    restated = reports[1]
    assert (restated[378], restated[38], restated[151], restated[14]) == ("5", "60", "60", "0")
    assert restated[58] == "self_trade_prevention"


def test_ioc_remainder_cancelled() -> None:
    v = Venue()
    v.order("M2", t11="s1", t54="2", t38="40")
    out = v.order("M1", t11="b1", t59="3")
    mine = ers(out, "M1")
    assert [(r[150], r[39], r[14], r[151]) for r in mine] == [
        ("0", "0", "0", "100"),
        ("F", "1", "40", "60"),
        ("4", "4", "40", "0"),
    ]
    assert mine[-1][58] == "ioc_remainder" and mine[-1][6] == "10.00"


def test_expiry_gtd_and_day() -> None:
    v = Venue()
    v.order("M1", t11="g1", t59="6", t126="20240102-15:00:00")
    v.order("M1", t11="d1", t44="9.00")
    out = v.run(Tick(), ts=_parse_utc_timestamp("20240102-15:00:00"))
    (er,) = ers(out)
    assert (er[150], er[39], er[11], er[151], er[59]) == ("C", "C", "g1", "0", "6")
    out = v.run(SetPhase(symbol="ACME", phase=Phase.CLOSED))
    (er,) = ers(out)
    assert (er[150], er[39], er[11]) == ("C", "C", "d1")
    assert v.reporter.open_orders() == 0


@pytest.mark.parametrize("strict", [False, True])
def test_stop_trigger_report(strict: bool) -> None:
    v = Venue(strict=strict)
    v.order("M1", t11="st", t40="4", t44="10.10", t99="10.05")
    v.order("M2", t11="s1", t54="2", t38="1", t44="10.05")
    out = v.order("M3", t11="b1", t38="1", t44="10.05")
    trig = [er for er in ers(out, "M1")]
    assert len(trig) == 1
    (er,) = trig
    assert er[39] == "0" and er[44] == "10.10" and er[99] == "10.05"
    if strict:
        assert (er[150], er[378], er[58]) == ("D", "99", "triggered")
        assert all(880 not in r for r in ers(out))
    else:
        assert er[150] == "L" and 378 not in er
        assert all(r[880] == "1" for r in ers(out) if r[150] == "F")


def test_trailing_stop_report_carries_exec_inst() -> None:
    v = Venue()
    v.order("M2", t11="s1", t54="2", t38="1")
    v.order("M3", t11="b1", t38="1")  # last price 10.00
    (er,) = ers(v.order("M1", t11="ts", t54="2", t40="3", t44=None, t18="a", t20001="0.50"))
    assert (er[40], er[18], er[99]) == ("3", "a", "9.50")


def test_pegged_repriced_is_a_restatement() -> None:
    v = Venue()
    v.order("M2", t11="bid", t44="10.00")
    v.order("M2", t11="ask", t54="2", t44="10.10")
    (er,) = ers(v.order("M1", t11="pg", t40="P", t44=None, t1094="5"))
    assert (er[40], er[44]) == ("P", "10.00")
    out = v.order("M3", t11="bid2", t44="10.02")
    (re,) = ers(out, "M1")
    assert (re[150], re[378], re[44], re[39]) == ("D", "3", "10.02", "0")


def test_auction_trades_liquidity_indicator() -> None:
    for strict, expected in ((False, "4"), (True, None)):
        v = Venue(strict=strict, phase=Phase.PRE_OPEN)
        v.order("M1", t11="b", t59="2")
        v.order("M2", t11="s", t54="2", t59="2")
        out = v.run(SetPhase(symbol="ACME", phase=Phase.CONTINUOUS))
        fills = ers(out)
        assert len(fills) == 2 and {o.member for o in out} == {"M1", "M2"}
        assert all(f.get(851) == expected for f in fills)


def test_kill_switch_cancels_only_reach_the_owner() -> None:
    v = Venue()
    v.order("M1", t11="a")
    v.order("M2", t11="b", t44="9.00")
    out = v.run(SetKillSwitch(member="M1", active=True))
    assert [(o.member, fd(o.body)[58]) for o in out] == [("M1", "kill_switch")]


def test_mass_cancel_report_counts() -> None:
    v = Venue()
    v.order("M1", t11="a", t1="A1")
    v.order("M1", t11="b", t1="A2", t44="9.00")
    v.order("M1", t11="c", t55="BIG", t44="10.5")
    v.order("M2", t11="d", t44="9.50")
    out = v.fix("M1", msg("q", t11="mc1"))
    assert all(o.member == "M1" for o in out)
    assert [fd(o.body)[150] for o in out[:3]] == ["4", "4", "4"]
    assert [(fd(o.body)[11], fd(o.body)[41]) for o in out[:3]] == [
        ("mc1", "a"),
        ("mc1", "b"),
        ("mc1", "c"),
    ]
    rep = out[3]
    f = fd(rep.body)
    assert rep.msg_type == "r"
    assert (f[11], f[530], f[531], f[533]) == ("mc1", "7", "7", "3")
    assert v.reporter.open_orders() == 1
    # Nothing left: still a successful report, zero affected.
    out = v.fix("M1", msg("q", t11="mc2", t530="1", t55="ACME"))
    f = fd(out[0].body)
    assert (out[0].msg_type, f[530], f[531], f[533], f[55]) == ("r", "1", "1", "0", "ACME")
    # Unknown symbol: rejected with reason 1.
    out = v.run(MassCancel(member="M1", cl_ord_id="mc3", symbol="ZZZ"))
    f = fd(out[0].body)
    assert (f[530], f[531], f[532]) == ("1", "0", "1") and f[58].startswith("1001 ")


def test_mass_cancel_by_symbol_and_account() -> None:
    v = Venue()
    v.order("M1", t11="a", t1="A1")
    v.order("M1", t11="b", t1="A2", t44="9.00")
    out = v.fix("M1", msg("q", t11="mc", t530="1", t55="ACME", t1="A2"))
    assert [fd(o.body).get(41) for o in out] == ["b", None]
    assert fd(out[-1].body)[533] == "1"


def test_status_echoes_are_matched_first_in_first_out_and_bounded() -> None:
    v = Venue()
    v.order("M1", t11="c1")
    req = OrderStatusRequest(symbol="ACME", member="M1", orig_cl_ord_id="c1")
    v.reporter.expect_status(req, StatusEcho("q1", "1", "c1"))
    v.reporter.expect_status(req, StatusEcho("q2", "1", "c1"))
    assert [ers(v.run(req))[0][790] for _ in range(2)] == ["q1", "q2"]
    assert 790 not in ers(v.run(req))[0]  # nothing pending: no echo
    explicit = v.run(req, echo=StatusEcho("q9", "1", "c1"))
    assert ers(explicit)[0][790] == "q9"
    other = OrderStatusRequest(symbol="ACME", member="M1", orig_cl_ord_id="zz")
    for i in range(MAX_PENDING_STATUS + 1):
        v.reporter.expect_status(other, StatusEcho(f"o{i}", "2", "zz"))
    (er,) = ers(v.run(other))
    assert (er[39], er[790], er[54]) == ("8", "o1", "2")  # o0 was dropped


def test_order_status_known_and_unknown() -> None:
    v = Venue()
    v.order("M1", t11="c1")
    oid = v.seq
    v.order("M2", t11="s1", t54="2", t38="25")
    out = v.fix("M1", msg("H", t11="c1", extra=[(790, "q1")]))
    (er,) = ers(out)
    assert (er[150], er[39], er[37], er[790], er[14], er[151], er[6], er[11]) == (
        "I",
        "1",
        str(oid),
        "q1",
        "25",
        "75",
        "10.00",
        "c1",
    )
    out = v.fix("M1", msg("H", t11="nope", t54="2", extra=[(790, "q2")]))
    (er,) = ers(out)
    assert (er[150], er[39], er[37], er[790], er[54], er[11], er[55]) == (
        "I",
        "8",
        "NONE",
        "q2",
        "2",
        "nope",
        "ACME",
    )
    # Another member asking about the order gets "unknown", not its state.
    out = v.fix("M2", msg("H", t11="x", t37=str(oid)))
    assert [(o.member, fd(o.body)[39], fd(o.body)[37]) for o in out] == [("M2", "8", "NONE")]


def test_reporter_state_rebuilds_from_the_event_log() -> None:
    v = Venue()
    v.order("M1", t11="a")
    v.order("M2", t11="b", t54="2", t38="30")
    v.order("M1", t11="c", t44="9.00", t59="1")
    rebuilt = ExecutionReporter()
    for events, cmd in v.log:
        rebuilt.apply(events, cmd)
    assert rebuilt.state_hash() == v.reporter.state_hash()
    assert rebuilt.open_orders() == 2
    restored = ExecutionReporter.restore(v.reporter.snapshot())
    assert restored.state_hash() == v.reporter.state_hash()
    # The restored reporter goes on producing the same reports.
    cmd = CancelOrder(symbol="ACME", member="M1", cl_ord_id="x", orig_cl_ord_id="a")
    events = v.engine.apply(v.seq + 1, v.ts + 1, cmd)
    assert restored.apply(events, cmd) == v.reporter.apply(events, cmd)
    assert restored.state_hash() == v.reporter.state_hash() != rebuilt.state_hash()


def test_reporter_load_keeps_its_settings_and_refuses_garbage_unchanged() -> None:
    v = Venue()
    v.order("M1", t11="a")
    v.order("M2", t11="b", t54="2", t38="30")
    loaded = ExecutionReporter(members={"M1"})
    loaded.load(v.reporter.snapshot())
    assert loaded.state_hash() == v.reporter.state_hash()
    before = loaded.state_hash()
    for garbage in (b"", b"\x92\xa1x", v.reporter.snapshot()[:-3]):
        with pytest.raises(ValueError):
            loaded.load(garbage)
        assert loaded.state_hash() == before
    # still only M1's orders are reported: the member filter survived the load
    v.order("M2", t11="c")
    assert all(member == "M1" for member, _t, _b in loaded.apply(*v.log[-1]))


def test_exec_ids_carry_the_epoch_from_the_second_on() -> None:
    v = Venue()
    [first] = v.order("M1", t11="a")
    assert fd(first.body)[17].isdigit()  # epoch 1: the bare event seq
    with pytest.raises(ValueError):
        v.reporter.set_epoch(0)
    v.reporter.set_epoch(3)
    [second] = v.order("M1", t11="b")
    assert fd(second.body)[17] == f"3-{fd(second.body)[17].split('-')[1]}"
    [rejected] = v.order("M1", t11="b")  # a duplicate id: ExecutionReport rejected
    assert fd(rejected.body)[39] == "8" and fd(rejected.body)[17].startswith("3-")
    v.reporter.set_epoch(1)
    [third] = v.order("M1", t11="c")
    assert fd(third.body)[17].isdigit()


def test_reporter_refuses_events_it_cannot_place() -> None:
    v = Venue()
    v.order("M1", t11="a")
    v.order("M2", t11="b", t54="2", t38="30")
    fresh = ExecutionReporter({"ACME": Decimal("0.01")})
    with pytest.raises(ReporterError):
        fresh.apply(v.log[-1][0])
    with pytest.raises(ReporterError):
        fresh.apply(v.log[-2][0] + v.log[-2][0])  # accepted twice


# ----------------------------------------------------------------------------- property


@st.composite
def flows(draw: st.DrawFn) -> list[tuple[str, str, dict[str, str | None]]]:
    """Random order entry by three members; requests mostly name an order of the requester."""
    steps: list[tuple[str, str, dict[str, str | None]]] = []
    placed: list[tuple[str, str]] = []  # (ClOrdID, member) of every D so far
    for i in range(draw(st.integers(1, 40))):
        member = draw(st.sampled_from(["M1", "M2", "M3"]))
        action = draw(st.sampled_from(["D", "D", "D", "F", "G", "G", "q", "H"]))
        target = "none"
        if placed and action in "FGH":
            target, owner = draw(st.sampled_from(placed))
            if draw(st.integers(0, 4)):
                member = owner
        fields: dict[str, str | None]
        if action == "D":
            fields = {
                "t11": f"c{i}",
                "t54": draw(st.sampled_from("12")),
                "t38": str(draw(st.integers(1, 50))),
                "t44": f"10.0{draw(st.integers(0, 4))}",
                "t59": draw(st.sampled_from("0013")),
                "t1": draw(st.sampled_from(["A", "B"])),
            }
            if draw(st.booleans()):
                fields["t2964"] = draw(st.sampled_from("1234"))
            if draw(st.integers(0, 5)) == 0:
                fields.update({"t40": "1", "t44": None, "t59": "0"})
            placed.append((f"c{i}", member))
        elif action == "F":
            fields = {"t11": f"c{i}", "t41": target}
        elif action == "G":
            fields = {
                "t11": f"c{i}",
                "t41": target,
                "t38": str(draw(st.integers(1, 60))),
                "t44": f"10.0{draw(st.integers(0, 4))}",
            }
            placed.append((f"c{i}", member))
        elif action == "q":
            fields = {"t11": f"c{i}"}
        else:
            fields = {"t11": target}
        steps.append((member, action, fields))
    return steps


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flows())
def test_reports_are_consistent_over_random_flows(
    steps: list[tuple[str, str, dict[str, str | None]]],
) -> None:
    v = Venue()
    owner: dict[str, str] = {}  # OrderID -> member who placed it
    last: dict[str, dict[int, str]] = {}
    last_qty_sum: dict[str, int] = defaultdict(int)
    notional: dict[str, Decimal] = defaultdict(Decimal)
    for member, action, fields in steps:
        out = v.fix(member, msg(action, **fields))
        for o in out:
            f = fd(o.body)
            if o.msg_type != "8":
                assert o.member == member  # cancel rejects and mass cancel reports: requester
                continue
            oid = f[37]
            if f[150] == "0":
                owner[oid] = o.member
            if oid == "NONE":
                assert o.member == member
                continue
            assert owner[oid] == o.member, (oid, o)
            if f[150] == "F":
                last_qty_sum[oid] += int(f[32])
                notional[oid] += Decimal(f[31]) * int(f[32])
            cum, leaves, qty = int(f[14]), int(f[151]), int(f[38])
            assert cum == last_qty_sum[oid]
            if f[39] in ("4", "C"):
                assert leaves == 0 and cum < qty
            else:
                assert cum + leaves == qty
            if cum:
                assert abs(Decimal(f[6]) - notional[oid] / cum) < Decimal("0.000001")
            last[oid] = f
    live = {oid for oid, f in last.items() if f[39] not in ("2", "4", "C")}
    assert v.reporter.open_orders() == len(live) == len(v.engine.orders)
    rebuilt = ExecutionReporter()
    for events, cmd in v.log:
        rebuilt.apply(events, cmd)
    assert rebuilt.state_hash() == v.reporter.state_hash()
