"""ITCH-like binary market-data messages and the translator from engine events to them.

Every message is big-endian with a fixed layout and starts with a common 11-byte header:
a 1-byte ASCII type, the stock locate (uint16; 0 for messages about no stock) and a timestamp
(uint64 nanoseconds since the Unix epoch, the ``ts`` of the engine event; Nasdaq ITCH uses 6
bytes of nanoseconds since midnight instead). Prices are int64 ticks of the instrument's tick
size, which the stock directory message publishes as ``tick_mantissa * 10**tick_exponent``.

``encode(msg) -> bytes`` and ``decode(buf) -> msg`` convert between the typed message structs and
the wire. ``ItchTranslator`` turns the events of each engine command into messages, tracking
which orders are on the displayed book and their shown size so that every execute, cancel,
delete and replace names a reference the consumer knows. The layouts and the event mapping are
documented in ``docs/itch.md``.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import ClassVar, Final

import msgspec

from tradingfloor.exchange.checkpoint import CheckpointError
from tradingfloor.exchange.engine.events import (
    AuctionUncrossed,
    Cancelled,
    Event,
    Expired,
    InstrumentAdded,
    LevelChanged,
    OrderBooked,
    OrderUnbooked,
    PhaseChanged,
    Replaced,
    Repriced,
    Trade,
)
from tradingfloor.exchange.engine.types import Phase, Side
from tradingfloor.exchange.marketdata.checkpoint_state import (
    ListingState,
    ShownOrder,
    TranslatorState,
)

__all__ = [
    "CROSS_CLOSING",
    "CROSS_HALT",
    "CROSS_INTRADAY",
    "CROSS_OPENING",
    "HEADER_SIZE",
    "MAX_SYMBOL_LEN",
    "MESSAGE_SIZES",
    "PHASE_STATES",
    "REASON_CODES",
    "SE_END_OF_MESSAGES",
    "SE_END_OF_SYSTEM_HOURS",
    "SE_START_OF_MESSAGES",
    "SE_START_OF_SYSTEM_HOURS",
    "STATE_PHASES",
    "AddOrder",
    "CrossTrade",
    "ItchError",
    "ItchMessage",
    "ItchTranslator",
    "OrderCancel",
    "OrderDelete",
    "OrderExecuted",
    "OrderExecutedWithPrice",
    "OrderReplace",
    "StockDirectory",
    "SystemEvent",
    "TradeMessage",
    "TradingAction",
    "decode",
    "encode",
    "tick_scale",
]

HEADER_SIZE: Final = 11  # type (1) + stock locate (2) + timestamp (8)
MAX_SYMBOL_LEN: Final = 8  # symbols are 8 ASCII bytes, space padded on the right
REASON_LEN: Final = 4

# System event codes ('S').
SE_START_OF_MESSAGES: Final = "O"
SE_START_OF_SYSTEM_HOURS: Final = "S"
SE_END_OF_SYSTEM_HOURS: Final = "E"
SE_END_OF_MESSAGES: Final = "C"
_SYSTEM_EVENTS: Final = frozenset("OSQMEC")

# Cross types ('Q'): which call the uncross ended.
CROSS_OPENING: Final = "O"
CROSS_CLOSING: Final = "C"
CROSS_HALT: Final = "H"
CROSS_INTRADAY: Final = "I"
_CROSS_TYPES: Final = frozenset("OCHI")

# Trading action state ('H') per engine phase, one code each.
PHASE_STATES: Final[dict[Phase, str]] = {
    Phase.CLOSED: "C",
    Phase.PRE_OPEN: "P",
    Phase.OPENING_AUCTION: "O",
    Phase.CONTINUOUS: "T",
    Phase.CLOSING_AUCTION: "A",
    Phase.HALTED: "H",
}
STATE_PHASES: Final[dict[str, Phase]] = {code: phase for phase, code in PHASE_STATES.items()}

# Trading action reason ('H'): the engine's phase-change reason as a 4-character code.
REASON_CODES: Final[dict[str, str]] = {
    "listed": "LIST",
    "operator": "OPER",
    "schedule": "SCHD",
    "resumed": "RSUM",
    "price band": "BAND",
    "pause ended": "PEND",
}
_OTHER_REASON: Final = "OTHR"

_STATES: Final = frozenset(STATE_PHASES)
_SIDES: Final = frozenset("BS")
_PRINTABLE: Final = frozenset("YN")
_CHARS_HEADER: Final = ">cHQ"


class ItchError(ValueError):
    """A message cannot be encoded (a field out of range) or a buffer is not a valid message."""


def _char(value: str, allowed: frozenset[str], name: str) -> bytes:
    if value not in allowed:
        raise ItchError(f"{name} {value!r} not one of {sorted(allowed)}")
    return value.encode("ascii")


def _alpha(value: str, size: int, name: str) -> bytes:
    """A left-justified, space-padded ASCII field of ``size`` bytes (1..size visible chars)."""
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError:
        raw = b""
    if not 0 < len(raw) <= size or not all(0x21 <= b <= 0x7E for b in raw):
        raise ItchError(f"{name} {value!r}: 1 to {size} printable ASCII characters, no spaces")
    return raw.ljust(size, b" ")


def _code(raw: bytes, allowed: frozenset[str], name: str) -> str:
    value = raw.decode("ascii", "replace")
    if value not in allowed:
        raise ItchError(f"{name} {raw!r} not one of {sorted(allowed)}")
    return value


def _text(raw: bytes) -> str:
    return raw.rstrip(b" ").decode("ascii", "replace")


def _pack(layout: struct.Struct, *fields: object) -> bytes:
    try:
        return layout.pack(*fields)
    except struct.error as exc:
        raise ItchError(f"field out of range: {exc}") from exc


_CFG = {"frozen": True, "gc": False}


class SystemEvent(msgspec.Struct, **_CFG):
    """'S': a feed-wide event (start/end of messages or system hours); locate 0."""

    TYPE: ClassVar[bytes] = b"S"
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(_CHARS_HEADER + "c")
    locate: int
    ts: int
    event_code: str

    def pack(self) -> bytes:
        code = _char(self.event_code, _SYSTEM_EVENTS, "event code")
        return _pack(self.LAYOUT, self.TYPE, self.locate, self.ts, code)

    @classmethod
    def unpack(cls, buf: bytes) -> SystemEvent:
        _, locate, ts, code = cls.LAYOUT.unpack(buf)
        return cls(locate, ts, _code(code, _SYSTEM_EVENTS, "event code"))


class StockDirectory(msgspec.Struct, **_CFG):
    """'R': a listed symbol, its locate, tick size (mantissa * 10**exponent) and lot size."""

    TYPE: ClassVar[bytes] = b"R"
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(_CHARS_HEADER + "8sIbI3s")
    locate: int
    ts: int
    symbol: str
    tick_mantissa: int
    tick_exponent: int
    lot_size: int
    currency: str

    @property
    def tick_size(self) -> Decimal:
        return Decimal(self.tick_mantissa).scaleb(self.tick_exponent)

    def pack(self) -> bytes:
        if len(self.currency) != 3:
            raise ItchError(f"currency {self.currency!r}: 3 characters")
        return _pack(
            self.LAYOUT,
            self.TYPE,
            self.locate,
            self.ts,
            _alpha(self.symbol, MAX_SYMBOL_LEN, "symbol"),
            self.tick_mantissa,
            self.tick_exponent,
            self.lot_size,
            _alpha(self.currency, 3, "currency"),
        )

    @classmethod
    def unpack(cls, buf: bytes) -> StockDirectory:
        _, locate, ts, symbol, mantissa, exponent, lot, currency = cls.LAYOUT.unpack(buf)
        return cls(locate, ts, _text(symbol), mantissa, exponent, lot, _text(currency))


class TradingAction(msgspec.Struct, **_CFG):
    """'H': the symbol's trading state (its engine phase) changed, with a 4-character reason."""

    TYPE: ClassVar[bytes] = b"H"
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(_CHARS_HEADER + "c4s")
    locate: int
    ts: int
    state: str
    reason: str

    def pack(self) -> bytes:
        state = _char(self.state, _STATES, "trading state")
        reason = _alpha(self.reason, REASON_LEN, "reason")
        return _pack(self.LAYOUT, self.TYPE, self.locate, self.ts, state, reason)

    @classmethod
    def unpack(cls, buf: bytes) -> TradingAction:
        _, locate, ts, state, reason = cls.LAYOUT.unpack(buf)
        return cls(locate, ts, _code(state, _STATES, "trading state"), _text(reason))


class AddOrder(msgspec.Struct, **_CFG):
    """'A': a displayed order (or iceberg slice) joined the back of its price level."""

    TYPE: ClassVar[bytes] = b"A"
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(_CHARS_HEADER + "QcI8sq")
    locate: int
    ts: int
    order_ref: int
    side: str  # "B" / "S"
    shares: int
    symbol: str
    price: int

    def pack(self) -> bytes:
        return _pack(
            self.LAYOUT,
            self.TYPE,
            self.locate,
            self.ts,
            self.order_ref,
            _char(self.side, _SIDES, "side"),
            self.shares,
            _alpha(self.symbol, MAX_SYMBOL_LEN, "symbol"),
            self.price,
        )

    @classmethod
    def unpack(cls, buf: bytes) -> AddOrder:
        _, locate, ts, ref, side, shares, symbol, price = cls.LAYOUT.unpack(buf)
        side_code = _code(side, _SIDES, "side")
        return cls(locate, ts, ref, side_code, shares, _text(symbol), price)


class OrderExecuted(msgspec.Struct, **_CFG):
    """'E': a displayed order traded at its own price (a printable execution)."""

    TYPE: ClassVar[bytes] = b"E"
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(_CHARS_HEADER + "QIQ")
    locate: int
    ts: int
    order_ref: int
    shares: int
    match: int

    def pack(self) -> bytes:
        return _pack(
            self.LAYOUT, self.TYPE, self.locate, self.ts, self.order_ref, self.shares, self.match
        )

    @classmethod
    def unpack(cls, buf: bytes) -> OrderExecuted:
        _, locate, ts, ref, shares, match = cls.LAYOUT.unpack(buf)
        return cls(locate, ts, ref, shares, match)


class OrderExecutedWithPrice(msgspec.Struct, **_CFG):
    """'C': a displayed order traded at another price (an uncross); ``printable`` "Y" / "N"."""

    TYPE: ClassVar[bytes] = b"C"
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(_CHARS_HEADER + "QIQcq")
    locate: int
    ts: int
    order_ref: int
    shares: int
    match: int
    printable: str
    price: int

    def pack(self) -> bytes:
        return _pack(
            self.LAYOUT,
            self.TYPE,
            self.locate,
            self.ts,
            self.order_ref,
            self.shares,
            self.match,
            _char(self.printable, _PRINTABLE, "printable"),
            self.price,
        )

    @classmethod
    def unpack(cls, buf: bytes) -> OrderExecutedWithPrice:
        _, locate, ts, ref, shares, match, printable, price = cls.LAYOUT.unpack(buf)
        flag = _code(printable, _PRINTABLE, "printable")
        return cls(locate, ts, ref, shares, match, flag, price)


class OrderCancel(msgspec.Struct, **_CFG):
    """'X': part of a displayed order's shown size was cancelled; the order stays."""

    TYPE: ClassVar[bytes] = b"X"
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(_CHARS_HEADER + "QI")
    locate: int
    ts: int
    order_ref: int
    shares: int

    def pack(self) -> bytes:
        return _pack(self.LAYOUT, self.TYPE, self.locate, self.ts, self.order_ref, self.shares)

    @classmethod
    def unpack(cls, buf: bytes) -> OrderCancel:
        _, locate, ts, ref, shares = cls.LAYOUT.unpack(buf)
        return cls(locate, ts, ref, shares)


class OrderDelete(msgspec.Struct, **_CFG):
    """'D': a displayed order left the book (cancelled, expired, replaced, repriced, unbooked)."""

    TYPE: ClassVar[bytes] = b"D"
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(_CHARS_HEADER + "Q")
    locate: int
    ts: int
    order_ref: int

    def pack(self) -> bytes:
        return _pack(self.LAYOUT, self.TYPE, self.locate, self.ts, self.order_ref)

    @classmethod
    def unpack(cls, buf: bytes) -> OrderDelete:
        _, locate, ts, ref = cls.LAYOUT.unpack(buf)
        return cls(locate, ts, ref)


class OrderReplace(msgspec.Struct, **_CFG):
    """'U': delete ``orig_ref`` and add ``new_ref`` (same side) at the back of ``price``."""

    TYPE: ClassVar[bytes] = b"U"
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(_CHARS_HEADER + "QQIq")
    locate: int
    ts: int
    orig_ref: int
    new_ref: int
    shares: int
    price: int

    def pack(self) -> bytes:
        return _pack(
            self.LAYOUT,
            self.TYPE,
            self.locate,
            self.ts,
            self.orig_ref,
            self.new_ref,
            self.shares,
            self.price,
        )

    @classmethod
    def unpack(cls, buf: bytes) -> OrderReplace:
        _, locate, ts, orig, new, shares, price = cls.LAYOUT.unpack(buf)
        return cls(locate, ts, orig, new, shares, price)


class TradeMessage(msgspec.Struct, **_CFG):
    """'P': a printable execution of non-displayed interest; no book change. Ref is 0."""

    TYPE: ClassVar[bytes] = b"P"
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(_CHARS_HEADER + "QcI8sqQ")
    locate: int
    ts: int
    order_ref: int
    side: str  # side of the resting (non-displayed) order
    shares: int
    symbol: str
    price: int
    match: int

    def pack(self) -> bytes:
        return _pack(
            self.LAYOUT,
            self.TYPE,
            self.locate,
            self.ts,
            self.order_ref,
            _char(self.side, _SIDES, "side"),
            self.shares,
            _alpha(self.symbol, MAX_SYMBOL_LEN, "symbol"),
            self.price,
            self.match,
        )

    @classmethod
    def unpack(cls, buf: bytes) -> TradeMessage:
        _, locate, ts, ref, side, shares, symbol, price, match = cls.LAYOUT.unpack(buf)
        side_code = _code(side, _SIDES, "side")
        return cls(locate, ts, ref, side_code, shares, _text(symbol), price, match)


class CrossTrade(msgspec.Struct, **_CFG):
    """'Q': the printable volume of one uncross (0 shares and price 0 if nothing crossed)."""

    TYPE: ClassVar[bytes] = b"Q"
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(_CHARS_HEADER + "Q8sqQc")
    locate: int
    ts: int
    shares: int
    symbol: str
    price: int
    match: int
    cross_type: str

    def pack(self) -> bytes:
        return _pack(
            self.LAYOUT,
            self.TYPE,
            self.locate,
            self.ts,
            self.shares,
            _alpha(self.symbol, MAX_SYMBOL_LEN, "symbol"),
            self.price,
            self.match,
            _char(self.cross_type, _CROSS_TYPES, "cross type"),
        )

    @classmethod
    def unpack(cls, buf: bytes) -> CrossTrade:
        _, locate, ts, shares, symbol, price, match, cross = cls.LAYOUT.unpack(buf)
        cross_type = _code(cross, _CROSS_TYPES, "cross type")
        return cls(locate, ts, shares, _text(symbol), price, match, cross_type)


ItchMessage = (
    SystemEvent
    | StockDirectory
    | TradingAction
    | AddOrder
    | OrderExecuted
    | OrderExecutedWithPrice
    | OrderCancel
    | OrderDelete
    | OrderReplace
    | TradeMessage
    | CrossTrade
)

_CLASSES: Final[tuple[type[ItchMessage], ...]] = (
    SystemEvent,
    StockDirectory,
    TradingAction,
    AddOrder,
    OrderExecuted,
    OrderExecutedWithPrice,
    OrderCancel,
    OrderDelete,
    OrderReplace,
    TradeMessage,
    CrossTrade,
)
_BY_TYPE: Final[dict[int, type[ItchMessage]]] = {cls.TYPE[0]: cls for cls in _CLASSES}
MESSAGE_SIZES: Final[dict[str, int]] = {cls.TYPE.decode(): cls.LAYOUT.size for cls in _CLASSES}


def encode(msg: ItchMessage) -> bytes:
    """The wire bytes of ``msg``; ``ItchError`` if a field does not fit its layout."""
    return msg.pack()


def decode(buf: bytes | bytearray | memoryview) -> ItchMessage:
    """Parse one message; ``ItchError`` for an unknown type or a wrong length."""
    data = bytes(buf)
    if not data:
        raise ItchError("empty message")
    cls = _BY_TYPE.get(data[0])
    if cls is None:
        raise ItchError(f"unknown message type {data[:1]!r}")
    if len(data) != cls.LAYOUT.size:
        raise ItchError(f"message {data[:1]!r}: {len(data)} bytes, expected {cls.LAYOUT.size}")
    return cls.unpack(data)


def tick_scale(tick_size: str | Decimal) -> tuple[int, int]:
    """``(mantissa, exponent)`` with ``tick_size == mantissa * 10**exponent``, exponent <= 0.

    The smallest such pair: "0.01" -> (1, -2), "0.05" -> (5, -2), "25" -> (25, 0).
    """
    try:
        value = Decimal(tick_size)
    except InvalidOperation as exc:
        raise ItchError(f"tick size {tick_size!r} is not a decimal") from exc
    if not value.is_finite() or value <= 0:
        raise ItchError(f"tick size {tick_size!r} must be a positive finite decimal")
    _, digits, exponent = value.normalize().as_tuple()
    if not isinstance(exponent, int):  # pragma: no cover - finite values have int exponents
        raise ItchError(f"tick size {tick_size!r} must be finite")
    mantissa = int("".join(map(str, digits)))
    if exponent > 0:
        mantissa *= 10**exponent
        exponent = 0
    return mantissa, exponent


# --------------------------------------------------------------------------- translation


@dataclass(slots=True)
class _Cross:
    """An uncross whose 'Q' message waits until its trades have been translated."""

    locate: int
    ts: int
    symbol: str
    price: int
    shares: int
    cross_type: str
    match: int = 0


_CROSS_BY_PHASE: Final[dict[Phase, str]] = {
    Phase.PRE_OPEN: CROSS_OPENING,
    Phase.OPENING_AUCTION: CROSS_OPENING,
    Phase.CLOSING_AUCTION: CROSS_CLOSING,
    Phase.HALTED: CROSS_HALT,
}


# Every event type ``ItchTranslator.translate`` acts on; per event class, whether it is one.
_TRANSLATED_EVENTS: Final = (
    OrderBooked,
    Trade,
    Cancelled,
    Replaced,
    Repriced,
    Expired,
    OrderUnbooked,
    AuctionUncrossed,
    PhaseChanged,
    InstrumentAdded,
)
_TRANSLATED: dict[type, bool] = {}


class ItchTranslator:
    """Turns engine events into ITCH messages, one command's event batch at a time.

    State: the locate of each listed symbol (1, 2, 3, ... in listing order), each symbol's phase,
    and every order on the displayed book with its shown size, maintained with the L3 rules of
    ``docs/engine.md``. Order references are engine order ids. Feed it every event of an engine
    from its first command, in order; events of other kinds are ignored.
    """

    def __init__(self) -> None:
        self._locates: dict[str, int] = {}
        self._symbols: dict[int, str] = {}
        self._phases: dict[str, Phase] = {}
        self._book: dict[int, ShownOrder] = {}  # insertion order = time priority within a level
        self._directory: dict[str, StockDirectory] = {}

    # ------------------------------------------------------------ views

    def locate(self, symbol: str) -> int:
        """The stock locate of a listed symbol (``KeyError`` if not listed)."""
        return self._locates[symbol]

    def symbol(self, locate: int) -> str:
        return self._symbols[locate]

    def shown(self, order_ref: int) -> int:
        """The size consumers see for a displayed order, 0 if it is not on the displayed book."""
        entry = self._book.get(order_ref)
        return entry.shown if entry is not None else 0

    def state_hash(self) -> str:
        """SHA-256 over the translator's state (locates, phases, displayed book)."""
        state = (
            sorted(self._locates.items()),
            sorted((s, str(p)) for s, p in self._phases.items()),
            sorted((ref, e.locate, e.side, e.price, e.shown) for ref, e in self._book.items()),
        )
        return hashlib.sha256(msgspec.msgpack.encode(state)).hexdigest()

    def export_state(self) -> TranslatorState:
        """Listings and the displayed book in time priority (for ``checkpoint_state``)."""
        listings = [
            ListingState(
                symbol,
                d.locate,
                d.ts,
                d.tick_mantissa,
                d.tick_exponent,
                d.lot_size,
                d.currency,
                self._phases[symbol],
            )
            for symbol, d in self._directory.items()
        ]
        return TranslatorState(listings, self._book)  # its records are the state's structs

    def restore_state(self, state: TranslatorState) -> None:
        """Become the translator ``export_state`` described (no listings: fresh).

        ``CheckpointError``, and nothing changed, if a listing or an order is inconsistent.
        """
        directory: dict[str, StockDirectory] = {}
        phases: dict[str, Phase] = {}
        for n, ls in enumerate(state.listings, 1):
            d = StockDirectory(
                ls.locate,
                ls.ts,
                ls.symbol,
                ls.tick_mantissa,
                ls.tick_exponent,
                ls.lot_size,
                ls.currency,
            )
            try:
                d.pack()
            except ItchError as exc:
                raise CheckpointError(f"listing {ls.symbol!r}: {exc}") from None
            if ls.locate != n or ls.symbol in directory:
                raise CheckpointError(f"listing {ls.symbol!r} has locate {ls.locate}, not {n}")
            directory[ls.symbol] = d
            phases[ls.symbol] = ls.phase
        book = state.book
        for ref, e in book.items():
            if (
                not 0 < e.locate <= len(directory)
                or e.side not in _SIDES
                or min(e.price, e.shown) <= 0
            ):
                raise CheckpointError(f"displayed order {ref}: {e}")
        self._directory, self._phases, self._book = directory, phases, dict(book)
        self._locates = {symbol: d.locate for symbol, d in directory.items()}
        self._symbols = {d.locate: symbol for symbol, d in directory.items()}

    def state_messages(self, ts: int) -> list[ItchMessage]:
        """Messages that bring a consumer starting from nothing to the current state.

        Start of messages ('O'), then per listed symbol its directory ('R') and trading state
        ('H'), then every displayed order as an 'A' in time priority. A feed session that starts
        mid-day sends these first, so its message 1 onwards describes the whole book.
        """
        out: list[ItchMessage] = [SystemEvent(0, ts, "O")]
        for symbol, directory in self._directory.items():
            out.append(msgspec.structs.replace(directory, ts=ts))
            out.append(self._action(symbol, ts, self._phases[symbol], "listed"))
        for ref, entry in self._book.items():
            symbol = self._symbols[entry.locate]
            out.append(
                AddOrder(entry.locate, ts, ref, entry.side, entry.shown, symbol, entry.price)
            )
        return out

    # ------------------------------------------------------------ translation

    def translate(self, events: Sequence[Event]) -> list[ItchMessage]:
        """The messages for the events of one engine command, in order.

        A batch must be complete: an uncross's 'Q' is emitted after its trades, and a
        ``replaced``/``repriced`` followed at once by the order's ``booked`` becomes one 'U'.
        """
        out: list[ItchMessage] = []
        cross: _Cross | None = None
        skip = -1
        for i, ev in enumerate(events):
            if i == skip:
                continue
            if cross is None:
                translated = _TRANSLATED.get(type(ev))
                if translated is None:
                    translated = _TRANSLATED[type(ev)] = issubclass(type(ev), _TRANSLATED_EVENTS)
                if not translated:
                    continue  # e.g. accepted and level events: none of the branches below
            if cross is not None and not (
                (isinstance(ev, Trade) and not ev.aggressor)
                or isinstance(ev, OrderBooked | LevelChanged)
            ):
                out.append(self._cross_message(cross))
                cross = None
            if isinstance(ev, OrderBooked):
                self._booked(ev, out)
            elif isinstance(ev, Trade):
                if ev.aggressor:
                    self._continuous_trade(ev, out)
                else:
                    if cross is None:  # pragma: no cover - the engine announces every uncross
                        cross = self._start_cross(ev.symbol, ev.ts, ev.price, 0)
                    if not cross.match:
                        cross.match = ev.trade_id
                    self._auction_trade(ev, out)
            elif isinstance(ev, Cancelled):
                self._reduce_to(ev.order_id, ev.leaves_qty, ev.ts, out)
            elif isinstance(ev, Replaced):
                if ev.priority_kept:
                    self._reduce_to(ev.order_id, ev.leaves_qty, ev.ts, out)
                elif self._requeue(events, i, ev.order_id, ev.ts, out):
                    skip = self._next_relevant(events, i)
            elif isinstance(ev, Repriced):
                if self._requeue(events, i, ev.order_id, ev.ts, out):
                    skip = self._next_relevant(events, i)
            elif isinstance(ev, Expired | OrderUnbooked):
                self._delete(ev.order_id, ev.ts, out)
            elif isinstance(ev, AuctionUncrossed):
                cross = self._start_cross(ev.symbol, ev.ts, ev.price, ev.qty)
            elif isinstance(ev, PhaseChanged):
                self._phases[ev.symbol] = ev.phase
                out.append(self._action(ev.symbol, ev.ts, ev.phase, ev.reason))
            elif isinstance(ev, InstrumentAdded):
                self._listed(ev, out)
        if cross is not None:
            out.append(self._cross_message(cross))
        return out

    def _listed(self, ev: InstrumentAdded, out: list[ItchMessage]) -> None:
        if ev.symbol in self._locates:
            raise ItchError(f"symbol {ev.symbol!r} listed twice")
        mantissa, exponent = tick_scale(ev.tick_size)
        locate = len(self._locates) + 1
        if locate > 0xFFFF:
            raise ItchError("more than 65535 symbols: stock locates are uint16")
        directory = StockDirectory(
            locate, ev.ts, ev.symbol, mantissa, exponent, ev.lot_size, ev.currency
        )
        directory.pack()  # symbol, currency, lot size must fit: fail before taking the locate
        self._locates[ev.symbol] = locate
        self._symbols[locate] = ev.symbol
        self._directory[ev.symbol] = directory
        self._phases[ev.symbol] = ev.phase
        out.append(directory)
        out.append(self._action(ev.symbol, ev.ts, ev.phase, "listed"))

    def _action(self, symbol: str, ts: int, phase: Phase, reason: str) -> TradingAction:
        code = REASON_CODES.get(reason, _OTHER_REASON)
        return TradingAction(self._locates[symbol], ts, PHASE_STATES[phase], code)

    def _booked(self, ev: OrderBooked, out: list[ItchMessage]) -> None:
        locate = self._locates[ev.symbol]
        side = "B" if ev.side == Side.BUY else "S"
        entry = self._book.get(ev.order_id)
        if entry is not None:  # re-queued without leaving first: lost priority
            out.append(OrderReplace(locate, ev.ts, ev.order_id, ev.order_id, ev.qty, ev.price))
        else:
            out.append(AddOrder(locate, ev.ts, ev.order_id, side, ev.qty, ev.symbol, ev.price))
        self._book.pop(ev.order_id, None)  # re-inserted: dict order is time priority
        self._book[ev.order_id] = ShownOrder(locate, side, ev.price, ev.qty)

    @staticmethod
    def _next_relevant(events: Sequence[Event], i: int) -> int:
        """Index of the first event after ``i`` that is not a ``level`` event (or len)."""
        j = i + 1
        while j < len(events) and isinstance(events[j], LevelChanged):
            j += 1
        return j

    def _requeue(
        self, events: Sequence[Event], i: int, ref: int, ts: int, out: list[ItchMessage]
    ) -> bool:
        """The order lost priority: 'U' if it is booked again at once (True), else 'D'."""
        entry = self._book.get(ref)
        if entry is None:
            return False
        j = self._next_relevant(events, i)
        nxt = events[j] if j < len(events) else None
        if isinstance(nxt, OrderBooked) and nxt.order_id == ref:
            out.append(OrderReplace(entry.locate, ts, ref, ref, nxt.qty, nxt.price))
            del self._book[ref]  # re-inserted at the back: dict order is time priority
            self._book[ref] = ShownOrder(entry.locate, entry.side, nxt.price, nxt.qty)
            return True
        self._delete(ref, ts, out)
        return False

    def _delete(self, ref: int, ts: int, out: list[ItchMessage]) -> None:
        entry = self._book.pop(ref, None)
        if entry is not None:
            out.append(OrderDelete(entry.locate, ts, ref))

    def _reduce_to(self, ref: int, leaves: int, ts: int, out: list[ItchMessage]) -> None:
        """The order's open quantity is now ``leaves``: delete it, or cap its shown size."""
        entry = self._book.get(ref)
        if entry is None:
            return
        if leaves <= 0:
            self._delete(ref, ts, out)
        elif leaves < entry.shown:
            out.append(OrderCancel(entry.locate, ts, ref, entry.shown - leaves))
            entry.shown = leaves

    def _executed(
        self, ref: int, entry: ShownOrder, shares: int, leaves: int, ts: int, out: list[ItchMessage]
    ) -> None:
        """Book-keeping after an execution message for ``shares`` of a displayed order."""
        entry.shown -= shares
        if entry.shown <= 0:
            del self._book[ref]  # consumers drop an order whose shown size reaches 0
        elif leaves == 0:  # pragma: no cover - the engine never shows more than the leaves
            self._delete(ref, ts, out)

    def _continuous_trade(self, ev: Trade, out: list[ItchMessage]) -> None:
        """One printable message per trade: 'E' against a displayed maker, else 'P'."""
        locate = self._locates[ev.symbol]
        printed = 0
        maker = self._book.get(ev.maker_order_id)
        if maker is not None:
            printed = min(ev.qty, maker.shown)
            out.append(OrderExecuted(locate, ev.ts, ev.maker_order_id, printed, ev.trade_id))
            self._executed(ev.maker_order_id, maker, printed, ev.maker_leaves, ev.ts, out)
        if ev.qty > printed:
            side = "B" if ev.maker_order_id == ev.buy_order_id else "S"
            out.append(
                TradeMessage(
                    locate, ev.ts, 0, side, ev.qty - printed, ev.symbol, ev.price, ev.trade_id
                )
            )
        taker = self._book.get(ev.taker_order_id)
        if taker is not None:  # pragma: no cover - an aggressor is never on the book
            shares = min(ev.qty, taker.shown)
            out.append(
                OrderExecutedWithPrice(
                    locate, ev.ts, ev.taker_order_id, shares, ev.trade_id, "N", ev.price
                )
            )
            self._executed(ev.taker_order_id, taker, shares, ev.taker_leaves, ev.ts, out)

    def _auction_trade(self, ev: Trade, out: list[ItchMessage]) -> None:
        """Non-printable 'C' for each displayed side; the cross's 'Q' carries the volume."""
        locate = self._locates[ev.symbol]
        for ref in (ev.buy_order_id, ev.sell_order_id):
            entry = self._book.get(ref)
            if entry is None:
                continue
            leaves = ev.maker_leaves if ref == ev.maker_order_id else ev.taker_leaves
            shares = min(ev.qty, entry.shown)
            out.append(
                OrderExecutedWithPrice(locate, ev.ts, ref, shares, ev.trade_id, "N", ev.price)
            )
            self._executed(ref, entry, shares, leaves, ev.ts, out)

    def _start_cross(self, symbol: str, ts: int, price: int, shares: int) -> _Cross:
        cross_type = _CROSS_BY_PHASE.get(self._phases[symbol], CROSS_INTRADAY)
        return _Cross(self._locates[symbol], ts, symbol, price, shares, cross_type)

    @staticmethod
    def _cross_message(cross: _Cross) -> CrossTrade:
        return CrossTrade(
            cross.locate,
            cross.ts,
            cross.shares,
            cross.symbol,
            cross.price,
            cross.match,
            cross.cross_type,
        )
