"""FIX 4.4 order entry <-> matching engine: parse inbound orders into engine commands (or a
``FixRejection``) and turn engine events into execution reports; pure, no I/O (docs/fix-orders.md).
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Callable, Container, Mapping, Sequence
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Final, Literal, NamedTuple, NoReturn, Protocol

import msgspec

from tradingfloor.core.limits import (
    MAX_ORDER_ID,
    MAX_ORDER_QTY,
    MAX_PRICE_TICKS,
    MAX_SYMBOL_LEN,
    MAX_TIMESTAMP_NS,
    MAX_TRAIL_BPS,
    price_in_range,
)
from tradingfloor.core.units import UnitError, from_ticks, to_ticks
from tradingfloor.exchange.engine.commands import (
    CancelOrder,
    Command,
    MassCancel,
    NewOrder,
    OrderStatusRequest,
    ReplaceOrder,
)
from tradingfloor.exchange.engine.events import (
    Accepted,
    Cancelled,
    Event,
    Expired,
    InstrumentAdded,
    OrderStatus,
    Rejected,
    Replaced,
    Repriced,
    Trade,
    Triggered,
)
from tradingfloor.exchange.engine.reasons import Reject
from tradingfloor.exchange.engine.types import (
    CancelReason,
    OrdType,
    PegType,
    PostOnly,
    Side,
    STPMode,
    TimeInForce,
)
from tradingfloor.exchange.fix import tags as ft
from tradingfloor.exchange.fix.codec import utc_timestamp

__all__ = [
    "MAX_ID_LEN",
    "MAX_NUMBER_LEN",
    "MAX_PENDING_STATUS",
    "ExecutionReporter",
    "FixFields",
    "FixRejection",
    "Outbound",
    "RejectionKind",
    "ReporterError",
    "StatusEcho",
    "parse_cancel",
    "parse_mass_cancel",
    "parse_new_order",
    "parse_replace",
    "parse_status",
    "rejection_reply",
    "status_echo",
]

MAX_ID_LEN: Final = 64  # longest ClOrdID / OrigClOrdID / Account / OrdStatusReqID accepted
MAX_NUMBER_LEN: Final = 32  # longest numeric field value accepted (prices, quantities, bps)
MAX_PENDING_STATUS: Final = 1024  # status requests whose echo waits for the engine's answer

# ExecInst (18) value for "trailing stop peg" and the peg-type letters (FIX 4.4).
_EI_POST_ONLY: Final = "6"  # Participate don't initiate
_EI_AON: Final = "G"
_EI_TRAILING: Final = "a"
_EI_PEGS: Final = {"M": PegType.MIDPOINT, "P": PegType.MARKET, "R": PegType.PRIMARY}
_PEG_PRICE_TYPE: Final = {"2": PegType.MIDPOINT, "4": PegType.MARKET, "5": PegType.PRIMARY}
_STP: Final = {
    "1": STPMode.CANCEL_NEWEST,  # cancel aggressor
    "2": STPMode.CANCEL_OLDEST,  # cancel passive
    "3": STPMode.CANCEL_BOTH,  # cancel aggressor and passive
    "4": STPMode.DECREMENT,  # tradingfloor extension: decrement both
}

# Every value FIX 4.4 defines (a value outside these sets is a session-level error; a defined
# value the venue does not support gets an application-level rejection).
_FIX_SIDES: Final = frozenset("123456789ABCDEFG")
_FIX_ORD_TYPES: Final = frozenset("123456789ABCDEFGHIJKLMP")
_FIX_TIFS: Final = frozenset("01234567")
_FIX_EXEC_INST: Final = frozenset("0123456789ABCDEFGHIJKLMNOPQRSUVWXYZabcde")
_FIX_PEG_PRICE_TYPES: Final = frozenset("123456789")
_FIX_MASS_CANCEL_TYPES: Final = frozenset("1234567")

# OrdRejReason (103), CxlRejReason (102), MassCancelRejectReason (532): FIX 4.4 values.
_ORR_BROKER_OPTION: Final = 0
_ORR_UNKNOWN_SYMBOL: Final = 1
_ORR_EXCHANGE_CLOSED: Final = 2
_ORR_TOO_LATE: Final = 4
_ORR_DUPLICATE: Final = 6
_ORR_UNSUPPORTED: Final = 11
_ORR_INCORRECT_QTY: Final = 13
_ORR_OTHER: Final = 99
_CRR_TOO_LATE: Final = 0
_CRR_UNKNOWN_ORDER: Final = 1
_CRR_DUPLICATE_CL_ORD_ID: Final = 6
_CRR_OTHER: Final = 99
_MCRR_NOT_SUPPORTED: Final = 0
_MCRR_UNKNOWN_SECURITY: Final = 1
_MCRR_OTHER: Final = 99

# ExecRestatementReason (378).
_RESTATE_REPRICE: Final = "3"
_RESTATE_PARTIAL_DECLINE: Final = "5"
_RESTATE_OTHER: Final = "99"

_ORD_REJ: Final[dict[int, int]] = {
    Reject.UNKNOWN_SYMBOL: _ORR_UNKNOWN_SYMBOL,
    Reject.MARKET_CLOSED: _ORR_EXCHANGE_CLOSED,
    Reject.INSTRUMENT_HALTED: _ORR_EXCHANGE_CLOSED,
    Reject.WRONG_PHASE_FOR_TIF: _ORR_TOO_LATE,
    Reject.KILL_SWITCH_ACTIVE: _ORR_BROKER_OPTION,
    Reject.DUPLICATE_CL_ORD_ID: _ORR_DUPLICATE,
    Reject.INVALID_QUANTITY: _ORR_INCORRECT_QTY,
    Reject.INVALID_LOT: _ORR_INCORRECT_QTY,
    Reject.INVALID_DISPLAY_QTY: _ORR_INCORRECT_QTY,
    Reject.INVALID_MIN_QTY: _ORR_INCORRECT_QTY,
    Reject.INVALID_ORDER_TYPE: _ORR_UNSUPPORTED,
    Reject.INVALID_TIF: _ORR_UNSUPPORTED,
    Reject.INVALID_COMBINATION: _ORR_UNSUPPORTED,
}
_CXL_REJ: Final[dict[int, int]] = {
    Reject.UNKNOWN_SYMBOL: _CRR_UNKNOWN_ORDER,
    Reject.UNKNOWN_ORDER: _CRR_UNKNOWN_ORDER,
    Reject.NOT_OWNER: _CRR_UNKNOWN_ORDER,
    Reject.AUCTION_FROZEN: _CRR_TOO_LATE,
    Reject.DUPLICATE_CL_ORD_ID: _CRR_DUPLICATE_CL_ORD_ID,
}

_SIDE_IN: Final = {ft.SIDE_BUY: Side.BUY, ft.SIDE_SELL: Side.SELL}
_SIDE_OUT: Final = {Side.BUY: ft.SIDE_BUY, Side.SELL: ft.SIDE_SELL}
_TIF_IN: Final = {
    ft.TIF_DAY: TimeInForce.DAY,
    ft.TIF_GTC: TimeInForce.GTC,
    ft.TIF_OPG: TimeInForce.OPG,
    ft.TIF_IOC: TimeInForce.IOC,
    ft.TIF_FOK: TimeInForce.FOK,
    ft.TIF_GTD: TimeInForce.GTD,
    ft.TIF_AT_THE_CLOSE: TimeInForce.CLS,
}
_TIF_OUT: Final = {v: k for k, v in _TIF_IN.items()}
_ORD_TYPE_OUT: Final = {
    OrdType.MARKET: ft.ORD_MARKET,
    OrdType.LIMIT: ft.ORD_LIMIT,
    OrdType.STOP: ft.ORD_STOP,
    OrdType.STOP_LIMIT: ft.ORD_STOP_LIMIT,
    OrdType.TRAILING_STOP: ft.ORD_STOP,
    OrdType.TRAILING_STOP_LIMIT: ft.ORD_STOP_LIMIT,
    OrdType.MARKET_IF_TOUCHED: ft.ORD_MARKET_IF_TOUCHED,
    OrdType.LIMIT_IF_TOUCHED: ft.ORD_MARKET_IF_TOUCHED,
    OrdType.MARKET_TO_LIMIT: ft.ORD_MARKET_WITH_LEFTOVER_AS_LIMIT,
    OrdType.PEGGED: ft.ORD_PEGGED,
}
_LIMIT_PRICED: Final = frozenset({OrdType.LIMIT, OrdType.STOP_LIMIT, OrdType.LIMIT_IF_TOUCHED})
_STOP_PRICED: Final = frozenset(
    {OrdType.STOP, OrdType.STOP_LIMIT, OrdType.MARKET_IF_TOUCHED, OrdType.LIMIT_IF_TOUCHED}
)

_DECIMAL_RE: Final = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
_INT_RE: Final = re.compile(r"-?[0-9]+", re.ASCII)
_TS_RE: Final = re.compile(
    r"([0-9]{4})([0-9]{2})([0-9]{2})-([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?",
    re.ASCII,
)
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_NS: Final = 1_000_000_000


class FixFields(Protocol):
    """What the parsers read from a decoded message (``codec.Message`` satisfies it)."""

    @property
    def msg_type(self) -> str: ...

    @property
    def seq_num(self) -> int: ...

    def get(self, tag: int) -> str | None: ...

    def get_all(self, tag: int) -> list[str]: ...

    def has(self, tag: int) -> bool: ...


class _Indexed:
    """A ``FixFields`` with its fields indexed by tag once, for the parsers' many lookups.

    ``get_all`` on a ``codec.Message`` scans every field; a parser asks for ~20 tags. Values
    and errors are those of the wrapped message (msg_type and seq_num are delegated).
    """

    __slots__ = ("_dups", "_fields", "_first", "_msg")

    def __init__(self, msg: FixFields, fields: tuple[tuple[int, str], ...]) -> None:
        self._msg = msg
        self._fields = fields
        self._first: dict[int, str] = dict(reversed(fields))  # first occurrence of each tag
        self._dups: frozenset[int] = frozenset()
        if len(self._first) != len(fields):
            seen: set[int] = set()
            dups: set[int] = set()
            for tag, _ in fields:
                (dups if tag in seen else seen).add(tag)
            self._dups = frozenset(dups)

    @property
    def msg_type(self) -> str:
        return self._msg.msg_type

    @property
    def seq_num(self) -> int:
        return self._msg.seq_num

    def get(self, tag: int) -> str | None:
        return self._first.get(tag)

    def get_all(self, tag: int) -> list[str]:
        value = self._first.get(tag)
        if value is None:
            return []
        if tag in self._dups:
            return [v for k, v in self._fields if k == tag]
        return [value]

    def has(self, tag: int) -> bool:
        return tag in self._first


def _indexed(msg: FixFields) -> FixFields:
    """``msg`` indexed by tag when it carries its fields (``codec.Message`` does), else itself."""
    fields = getattr(msg, "fields", None)
    if type(fields) is not tuple:
        return msg
    return _Indexed(msg, fields)


RejectionKind = Literal["session", "execution", "cancel_reject", "business", "mass_cancel_reject"]


class FixRejection(msgspec.Struct, frozen=True):
    """An inbound message refused before it reached the engine, and how to answer it.

    ``kind`` picks the reply: ``session`` Reject (35=3, ``reason`` = SessionRejectReason 373),
    ``execution`` ExecutionReport 150=8 (OrdRejReason 103), ``cancel_reject`` OrderCancelReject
    (35=9, CxlRejReason 102), ``business`` BusinessMessageReject (35=j, BusinessRejectReason 380),
    ``mass_cancel_reject`` OrderMassCancelReport 531=0 (MassCancelRejectReason 532).
    ``ref_tag`` is the offending tag (None when none). ``rejection_reply`` builds the body.
    """

    kind: RejectionKind
    ref_tag: int | None
    reason: int
    text: str


class Outbound(NamedTuple):
    """One application message for a member: MsgType and body fields (no header)."""

    member: str
    msg_type: str
    body: list[tuple[int, str]]


class StatusEcho(NamedTuple):
    """Fields of an OrderStatusRequest (35=H) its reply echoes; the engine command lacks them."""

    ord_status_req_id: str  # 790, "" when absent
    side: str  # 54 as sent
    cl_ord_id: str  # 11 as sent


class ReporterError(RuntimeError):
    """An event does not fit the reporter's order state (missed events or a broken invariant)."""


class _Fail(Exception):
    def __init__(self, rejection: FixRejection) -> None:
        super().__init__(rejection.text)
        self.rejection = rejection


_Bad = Callable[[int, str], FixRejection]


def _fail(kind: RejectionKind, tag: int, reason: int, text: str) -> NoReturn:
    raise _Fail(FixRejection(kind, tag, reason, text))


def _session(tag: int, reason: int, text: str) -> NoReturn:
    _fail("session", tag, reason, text)


def _execution(tag: int, reason: int, text: str) -> NoReturn:
    _fail("execution", tag, reason, text)


def _one(msg: FixFields, tag: int) -> str | None:
    """The single value of ``tag``; session reject if repeated or empty."""
    if type(msg) is _Indexed:
        value = msg._first.get(tag)
        if value is None:
            return None
        repeated = tag in msg._dups
    else:
        values = msg.get_all(tag)
        if not values:
            return None
        value, repeated = values[0], len(values) > 1
    if repeated:
        _session(tag, ft.SRR_TAG_APPEARS_MORE_THAN_ONCE, f"tag {tag} appears more than once")
    if value == "":
        _session(tag, ft.SRR_TAG_WITHOUT_VALUE, f"tag {tag} has no value")
    return value


def _req(msg: FixFields, tag: int) -> str:
    value = _one(msg, tag)
    if value is None:
        _session(tag, ft.SRR_REQUIRED_TAG_MISSING, f"required tag {tag} missing")
    return value


def _id(msg: FixFields, tag: int, required: bool = False) -> str:
    value = _req(msg, tag) if required else (_one(msg, tag) or "")
    if len(value) > MAX_ID_LEN:
        _session(tag, ft.SRR_VALUE_INCORRECT, f"tag {tag} longer than {MAX_ID_LEN} characters")
    return value


def _symbol(msg: FixFields, *, required: bool = True) -> str:
    value = _req(msg, ft.Symbol) if required else (_one(msg, ft.Symbol) or "")
    if len(value) > MAX_SYMBOL_LEN:
        text = f"tag {ft.Symbol} longer than {MAX_SYMBOL_LEN} characters"
        _session(ft.Symbol, ft.SRR_VALUE_INCORRECT, text)
    return value


def _decimal(msg: FixFields, tag: int) -> Decimal | None:
    value = _one(msg, tag)
    if value is None:
        return None
    if len(value) > MAX_NUMBER_LEN or not _DECIMAL_RE.fullmatch(value):
        _session(tag, ft.SRR_INCORRECT_DATA_FORMAT, f"tag {tag} is not a decimal number")
    return Decimal(value)


def _ticks(msg: FixFields, tag: int, tick: Decimal, bad: _Bad) -> int | None:
    """A price (or price offset) in ticks; out of range before anything else is judged."""
    value = _decimal(msg, tag)
    if value is None:
        return None
    if not price_in_range(value, tick):
        largest = (MAX_PRICE_TICKS - 1) * tick
        raise _Fail(bad(tag, f"tag {tag} value {value} is out of range (largest {largest})"))
    try:
        return to_ticks(value, tick)
    except (UnitError, InvalidOperation):
        raise _Fail(bad(tag, f"tag {tag} value {value} is not a multiple of {tick}")) from None


def _shares(msg: FixFields, tag: int, bad: _Bad) -> int | None:
    value = _decimal(msg, tag)
    if value is None:
        return None
    if not 0 <= value <= MAX_ORDER_QTY:
        raise _Fail(bad(tag, f"tag {tag} value {value} is out of range (0 to {MAX_ORDER_QTY})"))
    if value != value.to_integral_value():
        raise _Fail(bad(tag, f"tag {tag} must be a whole number of shares"))
    return int(value)


def _int(msg: FixFields, tag: int) -> int | None:
    value = _one(msg, tag)
    if value is None:
        return None
    if len(value) > MAX_NUMBER_LEN or not _INT_RE.fullmatch(value):
        _session(tag, ft.SRR_INCORRECT_DATA_FORMAT, f"tag {tag} is not an integer")
    return int(value)


def _parse_utc_timestamp(value: str) -> int | None:
    """Nanoseconds since the epoch of ``YYYYMMDD-HH:MM:SS[.f{1,9}]``, or None if malformed."""
    m = _TS_RE.fullmatch(value)
    if m is None:
        return None
    y, mo, d, hh, mm, ss = (int(g) for g in m.groups()[:6])
    if hh > 23 or mm > 59 or ss > 59:
        return None
    try:
        days = date(y, mo, d).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None
    frac = m.group(7) or ""
    sub = int(frac.ljust(9, "0")) if frac else 0
    return (days * 86_400 + hh * 3_600 + mm * 60 + ss) * _NS + sub


# Reports use the codec's formatter (cached per second), under the name the tests know.
_format_utc_timestamp = utc_timestamp


def _side(value: str) -> Side:
    side = _SIDE_IN.get(value)
    if side is not None:
        return side
    if value in _FIX_SIDES:
        _execution(ft.Side, _ORR_UNSUPPORTED, f"Side {value} is not supported (1 buy, 2 sell)")
    _session(ft.Side, ft.SRR_VALUE_INCORRECT, f"Side {value!r} is not a FIX Side")


def _tif(value: str | None) -> TimeInForce | None:
    if value is None:
        return None
    tif = _TIF_IN.get(value)
    if tif is not None:
        return tif
    if value in _FIX_TIFS:
        _execution(ft.TimeInForce, _ORR_UNSUPPORTED, f"TimeInForce {value} is not supported")
    _session(ft.TimeInForce, ft.SRR_VALUE_INCORRECT, f"TimeInForce {value!r} is not valid")


def _exec_inst(msg: FixFields) -> set[str]:
    value = _one(msg, ft.ExecInst)
    if value is None:
        return set()
    tokens = set(value.split(" ")) - {""}
    for token in sorted(tokens):
        if token not in _FIX_EXEC_INST:
            _session(ft.ExecInst, ft.SRR_VALUE_INCORRECT, f"ExecInst {token!r} is not valid")
    unsupported = tokens - {_EI_POST_ONLY, _EI_AON, _EI_TRAILING, *_EI_PEGS}
    if unsupported:
        text = f"ExecInst {' '.join(sorted(unsupported))} not supported"
        _execution(ft.ExecInst, _ORR_UNSUPPORTED, text)
    return tokens


def _peg(msg: FixFields, exec_inst: set[str]) -> PegType:
    from_ei = {_EI_PEGS[t] for t in exec_inst if t in _EI_PEGS}
    value = _one(msg, ft.PegPriceType)
    if value is not None:
        peg = _PEG_PRICE_TYPE.get(value)
        if peg is None:
            if value in _FIX_PEG_PRICE_TYPES:
                _execution(ft.PegPriceType, _ORR_UNSUPPORTED, f"PegPriceType {value} not supported")
            _session(ft.PegPriceType, ft.SRR_VALUE_INCORRECT, f"PegPriceType {value!r} is invalid")
        from_ei.add(peg)
    if len(from_ei) > 1:
        _execution(ft.PegPriceType, _ORR_UNSUPPORTED, "conflicting peg instructions")
    return from_ei.pop() if from_ei else PegType.NONE


def _conditional(tag: int, why: str) -> NoReturn:
    _fail("business", tag, ft.BRR_CONDITIONALLY_REQUIRED_FIELD_MISSING, f"tag {tag} required {why}")


def _exec_bad(reason: int) -> _Bad:
    return lambda tag, text: FixRejection("execution", tag, reason, text)


def _cxl_bad(tag: int, text: str) -> FixRejection:
    return FixRejection("cancel_reject", tag, _CRR_OTHER, text)


def parse_new_order(
    msg: FixFields, member: str, tick_sizes: Mapping[str, Decimal]
) -> NewOrder | FixRejection:
    """NewOrderSingle (35=D) -> ``NewOrder`` for ``member``, or how to refuse it."""
    try:
        return _new_order(_indexed(msg), member, tick_sizes)
    except _Fail as failure:
        return failure.rejection


def _new_order(msg: FixFields, member: str, tick_sizes: Mapping[str, Decimal]) -> NewOrder:
    cl_ord_id = _id(msg, ft.ClOrdID, required=True)
    symbol = _symbol(msg)
    side_value = _req(msg, ft.Side)
    _req(msg, ft.OrderQty)
    ot = _req(msg, ft.OrdType)
    account = _id(msg, ft.Account)
    side = _side(side_value)
    if ot not in _FIX_ORD_TYPES:
        _session(ft.OrdType, ft.SRR_VALUE_INCORRECT, f"OrdType {ot!r} is not valid")
    tif_value = _one(msg, ft.TimeInForce)
    tif = _tif(tif_value)
    if ot in (ft.ORD_MARKET_ON_CLOSE, ft.ORD_LIMIT_ON_CLOSE):
        if tif not in (None, TimeInForce.DAY, TimeInForce.CLS):
            _execution(ft.TimeInForce, _ORR_UNSUPPORTED, f"OrdType {ot} is at-the-close only")
        tif = TimeInForce.CLS
    tif = tif or TimeInForce.DAY
    qty = _shares(msg, ft.OrderQty, _exec_bad(_ORR_INCORRECT_QTY))
    tick = tick_sizes.get(symbol)
    if tick is None:
        _execution(ft.Symbol, _ORR_UNKNOWN_SYMBOL, f"unknown symbol {symbol}")
    bad_price = _exec_bad(_ORR_OTHER)
    price = _ticks(msg, ft.Price, tick, bad_price)
    stop_price = _ticks(msg, ft.StopPx, tick, bad_price)
    exec_inst = _exec_inst(msg)
    peg = _peg(msg, exec_inst)
    trailing = _EI_TRAILING in exec_inst

    ord_type: OrdType
    if ot in (ft.ORD_MARKET, ft.ORD_MARKET_ON_CLOSE):
        ord_type = OrdType.MARKET
    elif ot in (ft.ORD_LIMIT, ft.ORD_LIMIT_ON_CLOSE):
        ord_type = OrdType.LIMIT
    elif ot == ft.ORD_STOP:
        ord_type = OrdType.TRAILING_STOP if trailing else OrdType.STOP
    elif ot == ft.ORD_STOP_LIMIT:
        ord_type = OrdType.TRAILING_STOP_LIMIT if trailing else OrdType.STOP_LIMIT
    elif ot == ft.ORD_MARKET_IF_TOUCHED:
        ord_type = OrdType.MARKET_IF_TOUCHED if price is None else OrdType.LIMIT_IF_TOUCHED
    elif ot == ft.ORD_MARKET_WITH_LEFTOVER_AS_LIMIT:
        ord_type = OrdType.MARKET_TO_LIMIT
    elif ot == ft.ORD_PEGGED:
        ord_type = OrdType.PEGGED
    else:
        _execution(ft.OrdType, _ORR_UNSUPPORTED, f"OrdType {ot} is not supported")
    if trailing and ot not in (ft.ORD_STOP, ft.ORD_STOP_LIMIT):
        _execution(ft.ExecInst, _ORR_UNSUPPORTED, "ExecInst a (trailing stop) needs OrdType 3 or 4")
    if peg != PegType.NONE and ord_type != OrdType.PEGGED:
        _execution(ft.PegPriceType, _ORR_UNSUPPORTED, "peg instructions need OrdType P")

    # Conditionally required fields.
    if ord_type in _LIMIT_PRICED and price is None:
        _conditional(ft.Price, f"with OrdType {ot}")
    if ord_type in _STOP_PRICED and stop_price is None:
        _conditional(ft.StopPx, f"with OrdType {ot}")
    if ord_type == OrdType.PEGGED and peg == PegType.NONE:
        _conditional(ft.PegPriceType, "with OrdType P (or ExecInst M, P or R)")
    trail_amount = _ticks(msg, ft.TrailingStopAmount, tick, bad_price)
    trail_bps = _int(msg, ft.TrailingStopBps)
    if trail_bps is not None and not 0 <= trail_bps <= MAX_TRAIL_BPS:
        text = f"tag {ft.TrailingStopBps} value {trail_bps} is out of range (0 to {MAX_TRAIL_BPS})"
        raise _Fail(bad_price(ft.TrailingStopBps, text))
    limit_offset = _ticks(msg, ft.TrailingLimitOffset, tick, bad_price)
    if trailing and trail_amount is None and trail_bps is None:
        _conditional(ft.TrailingStopAmount, "(or 20002) with ExecInst a")
    expire_value = _one(msg, ft.ExpireTime)
    expire_ts = 0
    if expire_value is not None:
        parsed = _parse_utc_timestamp(expire_value)
        if parsed is None:
            _session(ft.ExpireTime, ft.SRR_INCORRECT_DATA_FORMAT, "ExpireTime is not UTCTimestamp")
        if parsed > MAX_TIMESTAMP_NS:
            raise _Fail(bad_price(ft.ExpireTime, "ExpireTime is out of range (after 2262)"))
        expire_ts = parsed
    elif tif == TimeInForce.GTD:
        _conditional(ft.ExpireTime, "with TimeInForce 6 (GTD)")

    bad_qty = _exec_bad(_ORR_INCORRECT_QTY)
    min_qty = _shares(msg, ft.MinQty, bad_qty)
    display = _shares(msg, ft.DisplayQty, bad_qty)
    max_floor = _shares(msg, ft.MaxFloor, bad_qty)
    if display is not None and max_floor is not None and display != max_floor:
        _session(ft.DisplayQty, ft.SRR_VALUE_INCORRECT, "DisplayQty and MaxFloor disagree")
    if display is None:
        display = max_floor
    peg_offset = _ticks(msg, ft.PegOffsetValue, tick, bad_price) or 0
    stp_value = _one(msg, ft.SelfMatchPreventionInstruction)
    stp = STPMode.NONE
    if stp_value is not None:
        if stp_value not in _STP:
            text = f"SelfMatchPreventionInstruction {stp_value!r} is not valid (1-4)"
            _session(ft.SelfMatchPreventionInstruction, ft.SRR_VALUE_INCORRECT, text)
        stp = _STP[stp_value]

    return NewOrder(
        symbol=symbol,
        member=member,
        cl_ord_id=cl_ord_id,
        side=side,
        qty=qty or 0,
        ord_type=ord_type,
        price=price or 0,
        stop_price=stop_price or 0,
        tif=tif,
        account=account,
        expire_ts=expire_ts,
        display_qty=display or 0,
        hidden=display == 0,
        post_only=PostOnly.REJECT if _EI_POST_ONLY in exec_inst else PostOnly.NONE,
        peg=peg,
        # FIX adds the signed offset to the peg price; the engine adds it toward the other side.
        peg_offset=peg_offset if side == Side.BUY else -peg_offset,
        trail_amount=trail_amount or 0,
        trail_bps=trail_bps or 0,
        limit_offset=limit_offset or 0,
        min_qty=min_qty or 0,
        aon=_EI_AON in exec_inst,
        stp=stp,
    )


def _order_ref(msg: FixFields) -> tuple[int, str]:
    """(order_id, orig_cl_ord_id) named by 37 and/or 41; one of them is required."""
    orig = _id(msg, ft.OrigClOrdID)
    order_id_value = _id(msg, ft.OrderID)
    if not orig and not order_id_value:
        _session(ft.OrigClOrdID, ft.SRR_REQUIRED_TAG_MISSING, "OrigClOrdID (41) or OrderID (37)")
    order_id = 0
    if order_id_value:
        if (
            not (order_id_value.isascii() and order_id_value.isdigit())
            or not 0 < int(order_id_value) <= MAX_ORDER_ID
        ):
            _fail("cancel_reject", ft.OrderID, _CRR_UNKNOWN_ORDER, "unknown OrderID")
        order_id = int(order_id_value)
    return order_id, orig


def parse_cancel(msg: FixFields, member: str) -> CancelOrder | FixRejection:
    """OrderCancelRequest (35=F) -> ``CancelOrder``; Side (54) is required but not compared."""
    msg = _indexed(msg)
    try:
        cl_ord_id = _id(msg, ft.ClOrdID, required=True)
        symbol = _symbol(msg)
        _req(msg, ft.Side)
        order_id, orig = _order_ref(msg)
        return CancelOrder(
            symbol=symbol,
            member=member,
            cl_ord_id=cl_ord_id,
            order_id=order_id,
            orig_cl_ord_id=orig,
        )
    except _Fail as failure:
        return failure.rejection


def parse_replace(
    msg: FixFields, member: str, tick_sizes: Mapping[str, Decimal]
) -> ReplaceOrder | FixRejection:
    """OrderCancelReplaceRequest (35=G) -> ``ReplaceOrder`` (OrderQty = new total quantity).

    Only OrderQty, Price and StopPx change the order; an absent Price/StopPx keeps the current
    one. The other fields are not compared with the order.
    """
    msg = _indexed(msg)
    try:
        cl_ord_id = _id(msg, ft.ClOrdID, required=True)
        symbol = _symbol(msg)
        _req(msg, ft.Side)
        _req(msg, ft.OrderQty)
        ot = _req(msg, ft.OrdType)
        if ot not in _FIX_ORD_TYPES:
            _session(ft.OrdType, ft.SRR_VALUE_INCORRECT, f"OrdType {ot!r} is not valid")
        order_id, orig = _order_ref(msg)
        qty = _shares(msg, ft.OrderQty, _cxl_bad)
        tick = tick_sizes.get(symbol)
        if tick is None:
            _fail("cancel_reject", ft.Symbol, _CRR_UNKNOWN_ORDER, f"unknown symbol {symbol}")
        price = _ticks(msg, ft.Price, tick, _cxl_bad)
        stop_price = _ticks(msg, ft.StopPx, tick, _cxl_bad)
        return ReplaceOrder(
            symbol=symbol,
            member=member,
            cl_ord_id=cl_ord_id,
            qty=qty or 0,
            order_id=order_id,
            orig_cl_ord_id=orig,
            price=price or 0,
            stop_price=stop_price or 0,
        )
    except _Fail as failure:
        return failure.rejection


def parse_status(msg: FixFields, member: str) -> OrderStatusRequest | FixRejection:
    """OrderStatusRequest (35=H) -> ``OrderStatusRequest``.

    The order is named by OrderID (37), else OrigClOrdID (41, an extension), else ClOrdID (11,
    FIX 4.4's way: the order's current ClOrdID). Pass ``status_echo(msg)`` to the reporter.
    """
    msg = _indexed(msg)
    try:
        symbol = _symbol(msg)
        _req(msg, ft.Side)
        _id(msg, ft.OrdStatusReqID)
        cl_ord_id = _id(msg, ft.ClOrdID)
        orig = _id(msg, ft.OrigClOrdID)
        order_id_value = _id(msg, ft.OrderID)
        if not (order_id_value or orig or cl_ord_id):
            _session(ft.ClOrdID, ft.SRR_REQUIRED_TAG_MISSING, "OrderID (37) or ClOrdID (11)")
        # An OrderID that cannot be ours is ignored: the order is then looked up by 41 / 11,
        # and an order found by neither gets the "unknown order" status reply.
        order_id = 0
        if order_id_value.isascii() and order_id_value.isdigit():
            order_id = int(order_id_value)
            if order_id > MAX_ORDER_ID:
                order_id = 0
        return OrderStatusRequest(
            symbol=symbol,
            member=member,
            order_id=order_id,
            orig_cl_ord_id="" if order_id else (orig or cl_ord_id),
        )
    except _Fail as failure:
        return failure.rejection


def status_echo(msg: FixFields) -> StatusEcho:
    """What the status reply echoes from the request (truncated to ``MAX_ID_LEN``)."""
    return StatusEcho(
        (msg.get(ft.OrdStatusReqID) or "")[:MAX_ID_LEN],
        (msg.get(ft.Side) or "")[:1],
        (msg.get(ft.ClOrdID) or "")[:MAX_ID_LEN],
    )


def parse_mass_cancel(msg: FixFields, member: str) -> MassCancel | FixRejection:
    """OrderMassCancelRequest (35=q) -> ``MassCancel``: type 1 (by Symbol) or 7 (all orders);
    Account (1) narrows it (an extension to 4.4)."""
    msg = _indexed(msg)
    try:
        cl_ord_id = _id(msg, ft.ClOrdID, required=True)
        kind = _req(msg, ft.MassCancelRequestType)
        account = _id(msg, ft.Account)
        if kind not in _FIX_MASS_CANCEL_TYPES:
            text = f"MassCancelRequestType {kind!r} is not valid"
            _session(ft.MassCancelRequestType, ft.SRR_VALUE_INCORRECT, text)
        if kind not in ("1", "7"):
            text = f"MassCancelRequestType {kind} not supported (1 or 7)"
            _fail("mass_cancel_reject", ft.MassCancelRequestType, _MCRR_NOT_SUPPORTED, text)
        if msg.has(ft.Side):
            _fail("mass_cancel_reject", ft.Side, _MCRR_OTHER, "mass cancel by Side not supported")
        symbol = _symbol(msg, required=False)
        if kind == "1" and not symbol:
            _fail("mass_cancel_reject", ft.Symbol, _MCRR_UNKNOWN_SECURITY, "Symbol required")
        return MassCancel(
            member=member,
            cl_ord_id=cl_ord_id,
            account=account,
            symbol=symbol if kind == "1" else "",
        )
    except _Fail as failure:
        return failure.rejection


def rejection_reply(
    msg: FixFields, rejection: FixRejection, *, exec_id: str, ts: int | None = None
) -> tuple[str, list[tuple[int, str]]]:
    """(MsgType, body) answering ``msg`` refused with ``rejection``.

    ``exec_id`` is used as ExecID (execution) or OrderID (mass cancel report) and must be unique
    for the member; ``ts`` (ns since the epoch), if given, becomes TransactTime (60) in the
    ExecutionReport, OrderCancelReject and OrderMassCancelReport (optional there in FIX 4.4).
    """
    text = rejection.text
    ref_msg_type = msg.msg_type
    if rejection.kind == "session":
        body = [(ft.RefSeqNum, str(msg.seq_num))]
        if rejection.ref_tag is not None:
            body.append((ft.RefTagID, str(rejection.ref_tag)))
        body += [
            (ft.RefMsgType, ref_msg_type),
            (ft.SessionRejectReason, str(rejection.reason)),
            (ft.Text, text),
        ]
        return ft.MT_REJECT, body
    if rejection.kind == "business":
        body = [(ft.RefSeqNum, str(msg.seq_num)), (ft.RefMsgType, ref_msg_type)]
        ref_id = msg.get(ft.ClOrdID)
        if ref_id:
            body.append((ft.BusinessRejectRefID, ref_id))
        body += [(ft.BusinessRejectReason, str(rejection.reason)), (ft.Text, text)]
        return ft.MT_BUSINESS_MESSAGE_REJECT, body
    when = [] if ts is None else [(ft.TransactTime, _format_utc_timestamp(ts))]
    if rejection.kind == "cancel_reject":
        return ft.MT_ORDER_CANCEL_REJECT, [
            (ft.OrderID, msg.get(ft.OrderID) or "NONE"),
            (ft.ClOrdID, msg.get(ft.ClOrdID) or "NONE"),
            (ft.OrigClOrdID, msg.get(ft.OrigClOrdID) or "NONE"),
            (ft.OrdStatus, ft.ST_REJECTED),
            (
                ft.CxlRejResponseTo,
                "2" if ref_msg_type == ft.MT_ORDER_CANCEL_REPLACE_REQUEST else "1",
            ),
            (ft.CxlRejReason, str(rejection.reason)),
            *when,
            (ft.Text, text),
        ]
    if rejection.kind == "mass_cancel_reject":
        body = [(ft.OrderID, exec_id)]
        if msg.get(ft.ClOrdID):
            body.append((ft.ClOrdID, msg.get(ft.ClOrdID) or ""))
        body += [
            (ft.MassCancelRequestType, msg.get(ft.MassCancelRequestType) or "7"),
            (ft.MassCancelResponse, "0"),
            (ft.MassCancelRejectReason, str(rejection.reason)),
            *when,
            (ft.Text, text),
        ]
        return ft.MT_ORDER_MASS_CANCEL_REPORT, body
    body = [(ft.OrderID, "NONE"), (ft.ExecID, exec_id)]
    for tag in (ft.ClOrdID, ft.Account):
        value = msg.get(tag)
        if value:
            body.append((tag, value))
    body += [
        (ft.ExecType, ft.EXEC_REJECTED),
        (ft.OrdStatus, ft.ST_REJECTED),
        (ft.OrdRejReason, str(rejection.reason)),
    ]
    for tag in (ft.Symbol, ft.Side, ft.OrderQty, ft.OrdType, ft.Price, ft.StopPx, ft.TimeInForce):
        value = msg.get(tag)
        if value:
            body.append((tag, value))
    body += [
        (ft.LeavesQty, "0"),
        (ft.CumQty, "0"),
        (ft.AvgPx, "0"),
        *when,
        (ft.Text, text),
    ]
    return ft.MT_EXECUTION_REPORT, body


# ------------------------------------------------------------------------- execution reports


class _Order(msgspec.Struct, array_like=True, gc=False):
    """What the reports of one live order need, kept from its events."""

    order_id: int
    symbol: str
    member: str
    account: str
    cl_ord_id: str
    side: Side
    ord_type: OrdType
    tif: TimeInForce
    qty: int
    cum_qty: int
    leaves: int
    notional: int  # sum of price (ticks) * qty over fills
    price: int
    stop_price: int


class _State(msgspec.Struct, array_like=True):
    ticks: dict[str, str]
    orders: list[_Order]


_CANCEL_TEXT: Final = {reason: reason.value for reason in CancelReason}
# Every event type ``ExecutionReporter.apply`` acts on; per event class, whether it is one.
_REPORTED_EVENTS: Final = (
    Trade,
    Accepted,
    Cancelled,
    Expired,
    Replaced,
    Repriced,
    Triggered,
    OrderStatus,
    Rejected,
    InstrumentAdded,
)
_REPORTED: dict[type, bool] = {}
_PX_CACHE_SIZE: Final = 4096  # formatted prices kept per symbol (the cache restarts when full)
# An average price that is a whole number of ticks, from a notional below this and a tick of at
# most _SMALL_TICK_DIGITS digits, is formatted as a price: the general computation (4 more
# decimal places, then back to the tick) is then exact in the default 28-digit context and
# gives the same string.
_AVG_PX_EXACT_LIMIT: Final = 10**12
_SMALL_TICK_DIGITS: Final = 10


class ExecutionReporter:
    """Builds execution reports from engine events alone (rebuildable by replaying the log).

    Call ``apply`` once per engine command with all its events. Orders are forgotten once done
    (filled, cancelled, expired), so memory is bounded by the live orders. ``fix44_strict``
    keeps every message inside the FIX 4.4 dictionary: triggers become restatements (150=D,
    378=99) instead of 150=L, and TrdMatchID (880) and auction LastLiquidityInd are left out.
    """

    def __init__(
        self,
        tick_sizes: Mapping[str, Decimal] | None = None,
        *,
        fix44_strict: bool = False,
        members: Container[str] | None = None,
    ) -> None:
        self._ticks: dict[str, Decimal] = dict(tick_sizes or {})
        # Only these members' orders are tracked and reported (None: everyone's). The gateway
        # names its FIX members, so orders of in-process members (the broker) cost nothing here.
        self._members = members
        self._px_cache: dict[str, dict[int, str]] = {}  # symbol -> ticks -> formatted price
        self._small_ticks: dict[str, bool] = {}  # symbol -> tick of at most _SMALL_TICK_DIGITS
        self._orders: dict[int, _Order] = {}
        self._strict = fix44_strict
        # Status requests waiting for their events: command -> echoes, oldest first. Transient
        # (not in the snapshot): a replayed status request has nobody to answer.
        self._echoes: dict[OrderStatusRequest, deque[StatusEcho]] = {}
        self._pending = 0
        self._exec_prefix = ""  # "<epoch>-" from the venue's second epoch on (set_epoch)

    # ---------------------------------------------------------------- state

    def set_epoch(self, epoch: int) -> None:
        """Make ExecIDs unique across venue epochs: a new epoch continues the journal's event
        numbers after a lost tail, so the seqs of the lost events come again. From epoch 2 on
        every ExecID is ``<epoch>-<event seq>`` (epoch 1 keeps the bare seq)."""
        if epoch < 1:
            raise ValueError(f"epoch must be at least 1, got {epoch}")
        self._exec_prefix = "" if epoch == 1 else f"{epoch}-"

    @property
    def exec_id_prefix(self) -> str:
        return self._exec_prefix

    def open_orders(self) -> int:
        """How many orders the reporter is tracking (live orders seen from their acceptance)."""
        return len(self._orders)

    def snapshot(self) -> bytes:
        """Canonical encoding of the state (equal states give equal bytes)."""
        state = _State(
            {sym: str(tick) for sym, tick in sorted(self._ticks.items())},
            [self._orders[oid] for oid in sorted(self._orders)],
        )
        return msgspec.msgpack.encode(state)

    @classmethod
    def restore(cls, data: bytes, *, fix44_strict: bool = False) -> ExecutionReporter:
        """A reporter in the state ``snapshot()`` encoded."""
        reporter = cls(fix44_strict=fix44_strict)
        reporter.load(data)
        return reporter

    def load(self, data: bytes) -> None:
        """Take the state ``snapshot()`` encoded (tick sizes and live orders), keeping this
        reporter's settings; ``msgspec.DecodeError`` (a ValueError) and no change if ``data``
        is not a snapshot."""
        state = msgspec.msgpack.decode(data, type=_State)
        ticks = {sym: Decimal(tick) for sym, tick in state.ticks.items()}
        self._ticks = ticks
        self._px_cache.clear()
        self._small_ticks.clear()
        self._orders = {o.order_id: o for o in state.orders}

    def state_hash(self) -> str:
        """SHA-256 of ``snapshot()``."""
        return hashlib.sha256(self.snapshot()).hexdigest()

    # ---------------------------------------------------------------- gateway helpers

    def expect_status(self, command: OrderStatusRequest, echo: StatusEcho) -> None:
        """Remember what the reply to ``command`` echoes (790, 54, 11) until ``apply`` sees it.

        For a gateway that hands ``apply`` only the command: call this before submitting the
        request; equal commands are answered first-in, first-out. At most
        ``MAX_PENDING_STATUS`` wait: beyond that the oldest are dropped (their reply lacks 790).
        """
        if self._pending >= MAX_PENDING_STATUS:
            oldest = next(iter(self._echoes))
            self._take_echo(oldest)
        self._echoes.setdefault(command, deque()).append(echo)
        self._pending += 1

    def _take_echo(self, command: OrderStatusRequest) -> StatusEcho | None:
        queue = self._echoes.get(command)
        if not queue:
            return None
        echo = queue.popleft()
        if not queue:
            del self._echoes[command]
        self._pending -= 1
        return echo

    def rejection_message(
        self, msg: FixFields, rejection: FixRejection, exec_id: str, ts: int | None = None
    ) -> tuple[str, list[tuple[int, str]]]:
        """``rejection_reply`` for a message refused before it reached the engine."""
        return rejection_reply(msg, rejection, exec_id=exec_id, ts=ts)

    # ---------------------------------------------------------------- events

    def apply(
        self,
        events: Sequence[Event],
        command: Command | None = None,
        *,
        echo: StatusEcho | None = None,
    ) -> list[Outbound]:
        """The messages one engine command's events produce, in event order.

        ``command`` (the command the events answer) fills the fields a rejection echoes and
        triggers the OrderMassCancelReport; ``echo`` carries the status request's 790 and 54.
        """
        if echo is None and isinstance(command, OrderStatusRequest):
            echo = self._take_echo(command)
        out: list[Outbound] = []
        mass_cancelled = 0
        mass_rejected = False
        for ev in events:
            reported = _REPORTED.get(type(ev))
            if reported is None:
                reported = _REPORTED[type(ev)] = issubclass(type(ev), _REPORTED_EVENTS)
            if not reported:
                continue  # e.g. book and level events: none of the branches below
            members = self._members
            if members is not None and not isinstance(ev, Trade):
                member = getattr(ev, "member", None)  # None: not a member's (a listing)
                if member is not None and member not in members:
                    continue  # a member this reporter does not report to
            if isinstance(ev, Trade):
                self._on_trade(ev, out)
            elif isinstance(ev, Accepted):
                self._on_accepted(ev, out)
            elif isinstance(ev, Cancelled):
                self._on_cancelled(ev, out)
                if (
                    ev.reason == CancelReason.MASS_CANCEL
                    and isinstance(command, MassCancel)
                    and ev.member == command.member
                ):
                    mass_cancelled += 1
            elif isinstance(ev, Expired):
                self._on_expired(ev, out)
            elif isinstance(ev, Replaced):
                self._on_replaced(ev, out)
            elif isinstance(ev, Repriced):
                o = self._get(ev.order_id)
                o.price = ev.price
                body = self._report(o, ev.seq, ft.EXEC_RESTATED, self._status(o), ev.ts)
                body.insert(5, (ft.ExecRestatementReason, _RESTATE_REPRICE))
                out.append(Outbound(o.member, ft.MT_EXECUTION_REPORT, body))
            elif isinstance(ev, Triggered):
                self._on_triggered(ev, out)
            elif isinstance(ev, OrderStatus):
                self._on_status(ev, echo, out)
            elif isinstance(ev, Rejected):
                mass_rejected |= ev.command == "mass_cancel"
                self._on_rejected(ev, command, echo, out)
            elif isinstance(ev, InstrumentAdded):
                self._ticks[ev.symbol] = Decimal(ev.tick_size)
                self._px_cache.pop(ev.symbol, None)
                self._small_ticks.pop(ev.symbol, None)
        if isinstance(command, MassCancel) and events and not mass_rejected:
            last = events[-1]
            body = [(ft.OrderID, f"{self._exec_prefix}{last.seq}")]
            if command.cl_ord_id:
                body.append((ft.ClOrdID, command.cl_ord_id))
            kind = "1" if command.symbol else "7"
            body += [(ft.MassCancelRequestType, kind), (ft.MassCancelResponse, kind)]
            if command.symbol:
                body.append((ft.Symbol, command.symbol))
            body += [
                (ft.TotalAffectedOrders, str(mass_cancelled)),
                (ft.TransactTime, _format_utc_timestamp(last.ts)),
            ]
            out.append(Outbound(command.member, ft.MT_ORDER_MASS_CANCEL_REPORT, body))
        return out

    def _get(self, order_id: int) -> _Order:
        o = self._orders.get(order_id)
        if o is None:
            raise ReporterError(f"event for order {order_id} the reporter never saw accepted")
        return o

    @staticmethod
    def _check(o: _Order) -> None:
        if o.cum_qty + o.leaves != o.qty or o.leaves < 0:
            raise ReporterError(
                f"order {o.order_id}: cum {o.cum_qty} + leaves {o.leaves} != qty {o.qty}"
            )

    def _tick(self, symbol: str) -> Decimal:
        tick = self._ticks.get(symbol)
        if tick is None:
            raise ReporterError(f"no tick size known for {symbol}")
        return tick

    def _px(self, symbol: str, ticks: int) -> str:
        cache = self._px_cache.get(symbol)
        if cache is None:
            cache = self._px_cache[symbol] = {}
        text = cache.get(ticks)
        if text is None:
            text = f"{from_ticks(ticks, self._tick(symbol)):f}"
            if len(cache) >= _PX_CACHE_SIZE:
                cache.clear()
            cache[ticks] = text
        return text

    def _small_tick(self, symbol: str) -> bool:
        small = self._small_ticks.get(symbol)
        if small is None:
            small = len(self._tick(symbol).as_tuple().digits) <= _SMALL_TICK_DIGITS
            self._small_ticks[symbol] = small
        return small

    def _avg_px(self, o: _Order) -> str:
        if not o.cum_qty:
            return "0"
        tick = self._tick(o.symbol)
        whole, rest = divmod(o.notional, o.cum_qty)
        if not rest and abs(o.notional) < _AVG_PX_EXACT_LIMIT and self._small_tick(o.symbol):
            return self._px(o.symbol, whole)  # on a tick: what the general case gives then
        exponent = tick.as_tuple().exponent
        if not isinstance(exponent, int):
            raise ReporterError(f"tick size {tick} is not finite")
        avg = (tick * o.notional / o.cum_qty).quantize(
            Decimal(1).scaleb(exponent - 4), ROUND_HALF_EVEN
        )
        at_tick = avg.quantize(tick)
        return f"{at_tick:f}" if at_tick == avg else f"{avg.normalize():f}"

    @staticmethod
    def _status(o: _Order) -> str:
        if o.leaves == 0:
            return ft.ST_FILLED
        return ft.ST_PARTIALLY_FILLED if o.cum_qty else ft.ST_NEW

    def _report(
        self, o: _Order, exec_id: int | str, exec_type: str, status: str, ts: int
    ) -> list[tuple[int, str]]:
        """The common ExecutionReport body; index 5 is where ExecType-specific reasons go."""
        body = [
            (ft.OrderID, str(o.order_id)),
            (ft.ExecID, f"{self._exec_prefix}{exec_id}"),
            (ft.ClOrdID, o.cl_ord_id),
            (ft.ExecType, exec_type),
            (ft.OrdStatus, status),
        ]
        if o.account:
            body.append((ft.Account, o.account))
        body += [
            (ft.Symbol, o.symbol),
            (ft.Side, _SIDE_OUT[o.side]),
            (ft.OrderQty, str(o.qty)),
            (ft.OrdType, _ORD_TYPE_OUT[o.ord_type]),
        ]
        if o.price:
            body.append((ft.Price, self._px(o.symbol, o.price)))
        if o.stop_price:
            body.append((ft.StopPx, self._px(o.symbol, o.stop_price)))
        body.append((ft.TimeInForce, _TIF_OUT[o.tif]))
        if o.ord_type in (OrdType.TRAILING_STOP, OrdType.TRAILING_STOP_LIMIT):
            body.append((ft.ExecInst, _EI_TRAILING))
        body += [
            (ft.LeavesQty, str(o.leaves)),
            (ft.CumQty, str(o.cum_qty)),
            (ft.AvgPx, self._avg_px(o)),
            (ft.TransactTime, _format_utc_timestamp(ts)),
        ]
        return body

    def _on_accepted(self, ev: Accepted, out: list[Outbound]) -> None:
        if ev.order_id in self._orders:
            raise ReporterError(f"order {ev.order_id} accepted twice")
        o = _Order(
            ev.order_id,
            ev.symbol,
            ev.member,
            ev.account,
            ev.cl_ord_id,
            ev.side,
            ev.ord_type,
            ev.tif,
            ev.qty,
            0,
            ev.qty,
            0,
            ev.price,
            ev.stop_price,
        )
        self._orders[o.order_id] = o
        body = self._report(o, ev.seq, ft.EXEC_NEW, ft.ST_NEW, ev.ts)
        out.append(Outbound(o.member, ft.MT_EXECUTION_REPORT, body))

    def _on_trade(self, ev: Trade, out: list[Outbound]) -> None:
        auction = ev.aggressor == ""
        members = self._members
        for order_id, leaves, liquidity, member in (
            (ev.maker_order_id, ev.maker_leaves, "1", ev.maker_member),
            (ev.taker_order_id, ev.taker_leaves, "2", ev.taker_member),
        ):
            if members is not None and member not in members:
                continue
            o = self._get(order_id)
            o.cum_qty += ev.qty
            o.notional += ev.price * ev.qty
            o.leaves = leaves
            self._check(o)
            suffix = "B" if order_id == ev.buy_order_id else "S"
            body = self._report(o, f"{ev.seq}{suffix}", ft.EXEC_TRADE, self._status(o), ev.ts)
            body[-4:-4] = [
                (ft.LastQty, str(ev.qty)),
                (ft.LastPx, self._px(o.symbol, ev.price)),
            ]
            if not self._strict:
                body.append((ft.TrdMatchID, str(ev.trade_id)))
            if not auction:
                body.append((ft.LastLiquidityInd, liquidity))
            elif not self._strict:
                body.append((ft.LastLiquidityInd, "4"))  # auction execution (FIX 5.0 SP1)
            out.append(Outbound(o.member, ft.MT_EXECUTION_REPORT, body))
            if o.leaves == 0:
                del self._orders[order_id]

    def _on_cancelled(self, ev: Cancelled, out: list[Outbound]) -> None:
        o = self._get(ev.order_id)
        if ev.leaves_qty > 0:  # self-trade prevention "decrement": a partial decline
            o.qty -= ev.cancelled_qty
            o.leaves = ev.leaves_qty
            self._check(o)
            body = self._report(o, ev.seq, ft.EXEC_RESTATED, self._status(o), ev.ts)
            body.insert(5, (ft.ExecRestatementReason, _RESTATE_PARTIAL_DECLINE))
            body.append((ft.Text, _CANCEL_TEXT[ev.reason]))
            out.append(Outbound(o.member, ft.MT_EXECUTION_REPORT, body))
            return
        if ev.cancelled_qty != o.leaves:
            raise ReporterError(f"order {o.order_id}: cancelled {ev.cancelled_qty} of {o.leaves}")
        o.leaves = 0
        o.cl_ord_id = ev.cl_ord_id
        body = self._report(o, ev.seq, ft.EXEC_CANCELED, ft.ST_CANCELED, ev.ts)
        if ev.cl_ord_id != ev.orig_cl_ord_id:
            body.insert(3, (ft.OrigClOrdID, ev.orig_cl_ord_id))
        body.append((ft.Text, _CANCEL_TEXT[ev.reason]))
        out.append(Outbound(o.member, ft.MT_EXECUTION_REPORT, body))
        del self._orders[o.order_id]

    def _on_expired(self, ev: Expired, out: list[Outbound]) -> None:
        o = self._get(ev.order_id)
        if ev.expired_qty != o.leaves:
            raise ReporterError(f"order {o.order_id}: expired {ev.expired_qty} of {o.leaves}")
        o.leaves = 0
        body = self._report(o, ev.seq, ft.EXEC_EXPIRED, ft.ST_EXPIRED, ev.ts)
        out.append(Outbound(o.member, ft.MT_EXECUTION_REPORT, body))
        del self._orders[o.order_id]

    def _on_replaced(self, ev: Replaced, out: list[Outbound]) -> None:
        o = self._get(ev.order_id)
        o.cl_ord_id = ev.cl_ord_id
        o.qty = ev.qty
        o.leaves = ev.leaves_qty
        o.price = ev.price
        o.stop_price = ev.stop_price
        self._check(o)
        body = self._report(o, ev.seq, ft.EXEC_REPLACED, self._status(o), ev.ts)
        body.insert(3, (ft.OrigClOrdID, ev.orig_cl_ord_id))
        out.append(Outbound(o.member, ft.MT_EXECUTION_REPORT, body))

    def _on_triggered(self, ev: Triggered, out: list[Outbound]) -> None:
        o = self._get(ev.order_id)
        o.price = ev.price
        o.stop_price = ev.trigger_price
        status = self._status(o)
        if self._strict:
            body = self._report(o, ev.seq, ft.EXEC_RESTATED, status, ev.ts)
            body.insert(5, (ft.ExecRestatementReason, _RESTATE_OTHER))
            body.append((ft.Text, "triggered"))
        else:
            body = self._report(o, ev.seq, ft.EXEC_TRIGGERED, status, ev.ts)
        out.append(Outbound(o.member, ft.MT_EXECUTION_REPORT, body))

    def _on_status(self, ev: OrderStatus, echo: StatusEcho | None, out: list[Outbound]) -> None:
        o = self._get(ev.order_id)
        if (o.qty, o.cum_qty, o.leaves) != (ev.qty, ev.cum_qty, ev.leaves_qty):
            raise ReporterError(f"order {o.order_id}: status differs from the reporter's state")
        body = self._report(o, ev.seq, ft.EXEC_ORDER_STATUS, self._status(o), ev.ts)
        if echo is not None and echo.ord_status_req_id:
            body.insert(3, (ft.OrdStatusReqID, echo.ord_status_req_id))
        out.append(Outbound(o.member, ft.MT_EXECUTION_REPORT, body))

    def _on_rejected(
        self,
        ev: Rejected,
        command: Command | None,
        echo: StatusEcho | None,
        out: list[Outbound],
    ) -> None:
        if not ev.member:
            return
        now = _format_utc_timestamp(ev.ts)
        text = f"{ev.code} {ev.text}"
        if ev.command == "new_order":
            out.append(Outbound(ev.member, ft.MT_EXECUTION_REPORT, self._new_reject(ev, command)))
            return
        if ev.command == "mass_cancel":
            kind = "1" if ev.symbol else "7"
            body = [(ft.OrderID, f"{self._exec_prefix}{ev.seq}")]
            if ev.cl_ord_id:
                body.append((ft.ClOrdID, ev.cl_ord_id))
            body.append((ft.MassCancelRequestType, kind))
            if ev.code == Reject.NOTHING_TO_CANCEL:
                body += [(ft.MassCancelResponse, kind), (ft.TotalAffectedOrders, "0")]
            else:
                reason = _MCRR_UNKNOWN_SECURITY if ev.code == Reject.UNKNOWN_SYMBOL else _MCRR_OTHER
                body += [(ft.MassCancelResponse, "0"), (ft.MassCancelRejectReason, str(reason))]
            if ev.symbol:
                body.append((ft.Symbol, ev.symbol))
            body += [(ft.TransactTime, now), (ft.Text, text)]
            out.append(Outbound(ev.member, ft.MT_ORDER_MASS_CANCEL_REPORT, body))
            return
        # Never reveal another member's order: treat it as unknown.
        o = self._orders.get(ev.order_id) if ev.order_id else None
        if o is not None and (o.member != ev.member or o.symbol != ev.symbol):
            o = None
        orig = getattr(command, "orig_cl_ord_id", "") or (o.cl_ord_id if o else "")
        if ev.command in ("cancel", "replace"):
            body = [
                (ft.OrderID, str(o.order_id) if o else "NONE"),
                (ft.ClOrdID, ev.cl_ord_id or "NONE"),
                (ft.OrigClOrdID, orig or "NONE"),
                (ft.OrdStatus, self._status(o) if o else ft.ST_REJECTED),
            ]
            if o and o.account:
                body.append((ft.Account, o.account))
            body += [
                (ft.CxlRejResponseTo, "1" if ev.command == "cancel" else "2"),
                (ft.CxlRejReason, str(_CXL_REJ.get(ev.code, _CRR_OTHER))),
                (ft.TransactTime, now),
                (ft.Text, text),
            ]
            out.append(Outbound(ev.member, ft.MT_ORDER_CANCEL_REJECT, body))
        elif ev.command == "order_status":
            # FIX 4.4: an unknown order is answered by ExecType=I with OrdStatus=Rejected.
            body = [(ft.OrderID, "NONE"), (ft.ExecID, f"{self._exec_prefix}{ev.seq}")]
            cl_ord_id = (echo.cl_ord_id if echo else "") or orig
            if cl_ord_id:
                body.append((ft.ClOrdID, cl_ord_id))
            if echo is not None and echo.ord_status_req_id:
                body.append((ft.OrdStatusReqID, echo.ord_status_req_id))
            body += [
                (ft.ExecType, ft.EXEC_ORDER_STATUS),
                (ft.OrdStatus, ft.ST_REJECTED),
                (ft.Symbol, ev.symbol),
            ]
            if echo is not None and echo.side:
                body.append((ft.Side, echo.side))
            body += [
                (ft.LeavesQty, "0"),
                (ft.CumQty, "0"),
                (ft.AvgPx, "0"),
                (ft.TransactTime, now),
                (ft.Text, text),
            ]
            out.append(Outbound(ev.member, ft.MT_EXECUTION_REPORT, body))

    def _new_reject(self, ev: Rejected, command: Command | None) -> list[tuple[int, str]]:
        cmd = command if isinstance(command, NewOrder) else None
        exec_id = f"{self._exec_prefix}{ev.seq}"
        body = [(ft.OrderID, "NONE"), (ft.ExecID, exec_id), (ft.ClOrdID, ev.cl_ord_id)]
        body += [
            (ft.ExecType, ft.EXEC_REJECTED),
            (ft.OrdStatus, ft.ST_REJECTED),
            (ft.OrdRejReason, str(_ORD_REJ.get(ev.code, _ORR_OTHER))),
        ]
        if cmd is not None and cmd.account:
            body.append((ft.Account, cmd.account))
        body.append((ft.Symbol, ev.symbol))
        if cmd is not None:
            body += [
                (ft.Side, _SIDE_OUT[cmd.side]),
                (ft.OrderQty, str(cmd.qty)),
                (ft.OrdType, _ORD_TYPE_OUT[cmd.ord_type]),
            ]
            tick = self._ticks.get(ev.symbol)
            if tick is not None and cmd.price > 0:
                body.append((ft.Price, f"{from_ticks(cmd.price, tick):f}"))
            if tick is not None and cmd.stop_price > 0:
                body.append((ft.StopPx, f"{from_ticks(cmd.stop_price, tick):f}"))
            body.append((ft.TimeInForce, _TIF_OUT[cmd.tif]))
        body += [
            (ft.LeavesQty, "0"),
            (ft.CumQty, "0"),
            (ft.AvgPx, "0"),
            (ft.TransactTime, _format_utc_timestamp(ev.ts)),
            (ft.Text, f"{ev.code} {ev.text}"),
        ]
        return body
