"""The FIX order-entry and market-data application of the exchange, between sessions and the venue.

Inbound application messages (D, F, G, H, q, V, x) are parsed by ``orders`` into engine
commands and queued on the venue in arrival order; what cannot be parsed is answered at once
(session Reject, ExecutionReport rejected, OrderCancelReject or BusinessMessageReject) and
never reaches the engine. Outbound messages come from engine events only: once per
acknowledged command the ``ExecutionReporter`` turns its events into execution reports for
the members concerned, and ``FixMarketData`` sends market-data updates.

Nothing acknowledged is lost: an execution report is written to the member's durable session
store before it is sent, also when the member is offline (it gets it by ResendRequest after
its next logon). The gateway records the seq of the last engine event whose reports are in
the stores (``fix/last_event_seq``); at start-up the venue replays its journal through the
gateway, which rebuilds its state from every event and sends only the reports of events past
that mark, the ones a crash may have cut off.

The mark also names the venue identity (venue id and epoch) it belongs to, one line
``<venue id> <epoch> <seq>`` (a mark from before identities is the seq alone). ``serve``
checks it against the journal before the replay (``venue_mark``), so a lost or foreign journal
is refused instead of having its events suppressed as "stored already".
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Final

import msgspec

from tradingfloor.exchange._durable import atomic_write
from tradingfloor.exchange.checkpoint import CheckpointError
from tradingfloor.exchange.config import VenueConfig
from tradingfloor.exchange.engine.commands import (
    AddInstrument,
    Command,
    MassCancel,
    OrderStatusRequest,
)
from tradingfloor.exchange.engine.events import Event, InstrumentAdded
from tradingfloor.exchange.fix import tags as t
from tradingfloor.exchange.fix.acceptor import FixAcceptor, SessionHandle
from tradingfloor.exchange.fix.codec import Message
from tradingfloor.exchange.fix.marketdata import FixMarketData
from tradingfloor.exchange.fix.orders import (
    ExecutionReporter,
    FixRejection,
    parse_cancel,
    parse_mass_cancel,
    parse_new_order,
    parse_replace,
    parse_status,
    status_echo,
)
from tradingfloor.exchange.identity import (
    ConsumerMark,
    IdentityCorruptError,
    VenueIdentity,
    format_venue_id,
    parse_venue_id,
)
from tradingfloor.exchange.marketdata.views import MarketDataBook
from tradingfloor.exchange.venue import CommandOutOfRangeError, Venue, VenueError

__all__ = ["APPLICATION_MSG_TYPES", "FixGateway"]

APPLICATION_MSG_TYPES: Final = frozenset(
    {
        t.MT_NEW_ORDER_SINGLE,
        t.MT_ORDER_CANCEL_REQUEST,
        t.MT_ORDER_CANCEL_REPLACE_REQUEST,
        t.MT_ORDER_STATUS_REQUEST,
        t.MT_ORDER_MASS_CANCEL_REQUEST,
        t.MT_MARKET_DATA_REQUEST,
        t.MT_SECURITY_LIST_REQUEST,
    }
)
_MARK_FILE: Final = "last_event_seq"


class _GatewayState(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    ticks: dict[str, str]
    reporter: bytes


class FixGateway:
    """See module docstring. Implements the acceptor's ``FixApplication`` protocol."""

    supported_msg_types: frozenset[str] = APPLICATION_MSG_TYPES

    def __init__(
        self,
        config: VenueConfig,
        venue: Venue,
        book: MarketDataBook,
        *,
        mark_dir: Path,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._config = config
        self._venue = venue
        self._tick_sizes: dict[str, Decimal] = config.tick_sizes()
        self._comp_by_member = {m.member: m.comp_id for m in config.members}
        # Strict FIX 4.4: no ExecType L / TrdMatchID in reports, which 4.4 engines reject.
        fix_members = {member for member, comp in self._comp_by_member.items() if comp}
        self._reporter = ExecutionReporter(self._tick_sizes, fix44_strict=True, members=fix_members)
        self._md = FixMarketData(book, clock)
        self._handles: FixAcceptor | None = None
        self._mark_path = mark_dir / _MARK_FILE
        mark_dir.mkdir(parents=True, exist_ok=True)
        self._venue_id: int | None = None
        self._epoch: int | None = None
        self._sent_upto = 0
        self._read_mark()
        self._mark_dirty = False
        self.closing = False  # set while the venue shuts down: logouts then cancel nothing

    # --- wiring ---------------------------------------------------------------------------------

    def attach(self, acceptor: FixAcceptor) -> None:
        """Give the gateway the acceptor; do it before the venue replays its history."""
        self._handles = acceptor
        acceptor.on_synced = self.on_stores_synced
        acceptor.on_store_failed = self._venue.fail  # a store that cannot write stops matching

    @property
    def reporter(self) -> ExecutionReporter:
        return self._reporter

    # --- projection checkpoint (exchange.checkpoint) ---------------------------------------------

    @property
    def checkpoint_name(self) -> str:
        return "fix/1"

    def checkpoint(self) -> bytes:
        """The reporter's state (live orders, tick sizes) and the tick sizes orders are parsed
        with (instruments the journal listed, not only the configured ones)."""
        ticks = {sym: str(tick) for sym, tick in sorted(self._tick_sizes.items())}
        return msgspec.msgpack.encode(_GatewayState(ticks, self._reporter.snapshot()))

    def restore_checkpoint(self, data: bytes) -> None:
        try:
            state = msgspec.msgpack.decode(data, type=_GatewayState)
            ticks = {sym: Decimal(tick) for sym, tick in state.ticks.items()}
            self._reporter.load(state.reporter)
        except (ValueError, ArithmeticError) as exc:
            raise CheckpointError(f"FIX gateway checkpoint: {exc}") from None
        self._tick_sizes.update(ticks)

    @property
    def market_data(self) -> FixMarketData:
        return self._md

    def _read_mark(self) -> None:
        try:
            parts = self._mark_path.read_bytes()[:256].decode("ascii", "replace").split()
        except FileNotFoundError:
            return
        try:
            if len(parts) == 3:  # <venue id> <epoch> <seq>
                self._venue_id = parse_venue_id(parts[0])
                if not parts[1].isdigit():
                    raise ValueError(f"bad epoch {parts[1]!r}")
                self._epoch = int(parts[1])
                parts = parts[2:]
            if len(parts) > 1 or not all(p.isdigit() for p in parts):
                raise ValueError("expected '<venue id> <epoch> <seq>'")
        except ValueError as exc:
            raise IdentityCorruptError(f"{self._mark_path}: damaged FIX mark: {exc}") from None
        # an empty file (a crash while it was first written) is no mark: every report of the
        # journal is regenerated (97=Y) and the members drop what they have by ExecID
        self._sent_upto = int(parts[0]) if parts else 0

    def venue_mark(self) -> ConsumerMark:
        """The venue identity and last event seq the FIX session stores have (for the check)."""
        return ConsumerMark("FIX gateway mark", self._venue_id, self._epoch, self._sent_upto)

    def adopt_identity(self, identity: VenueIdentity) -> None:
        """Record ``identity`` with the mark (durably), keeping the seq: after the check."""
        self._venue_id, self._epoch = identity.venue_id, identity.epoch
        self._reporter.set_epoch(identity.epoch)
        self._write_mark(durable=True)

    def begin_epoch(self, identity: VenueIdentity) -> None:
        """A new epoch starts at the journal's last seq: the reports of every later event are
        sent, none of the journal before it (its reports belong to the lost history)."""
        self._sent_upto = identity.current.start_event_seq
        self.adopt_identity(identity)

    def on_stores_synced(self) -> None:
        """The acceptor fsynced every session store: every report sent so far is on disk."""
        self.flush_mark()

    def flush_mark(self) -> None:
        """Persist the seq of the last event whose reports are stored (atomic replace)."""
        if self._mark_dirty:
            try:
                self._write_mark(durable=False)
            except OSError as exc:
                self._venue.fail(exc)  # a durable store failing stops matching (docs/journal.md)
                raise

    def _write_mark(self, *, durable: bool) -> None:
        """Replace the mark file; ``durable`` also fsyncs it (identity changes). The per-batch
        write is not fsynced: an older mark after a crash only regenerates reports (97=Y)."""
        line = f"{self._sent_upto}\n"
        if self._venue_id is not None:
            line = f"{format_venue_id(self._venue_id)} {self._epoch} {line}"
        if durable:
            atomic_write(self._mark_path, line.encode("ascii"))
        else:
            tmp = self._mark_path.with_suffix(".tmp")
            tmp.write_text(line, encoding="ascii")
            os.replace(tmp, self._mark_path)
        self._mark_dirty = False

    # --- venue listener -------------------------------------------------------------------------

    def on_events(self, command: Command, events: Sequence[Event]) -> None:
        """After each acknowledged (or replayed) command: reports and market data."""
        outbound = self._reporter.apply(events, command)
        if isinstance(command, AddInstrument):  # listed by the journal, maybe not the config
            for event in events:
                if isinstance(event, InstrumentAdded):
                    self._tick_sizes[event.symbol] = Decimal(event.tick_size)
        if not events or events[-1].seq <= self._sent_upto:
            return  # replayed history whose reports are in the stores already
        if self._handles is None:
            raise VenueError("FIX gateway has no acceptor attached")
        # Before the venue starts, these are reports of journaled events past the mark: a
        # crash may have come after they were stored, so they may be duplicates (97=Y).
        regenerated = not self._venue.running
        for member, msg_type, body in outbound:
            comp_id = self._comp_by_member.get(member)
            if comp_id is not None:  # orders of non-FIX members (e.g. in-process brokers)
                self._handles.handle(comp_id).send(msg_type, body, poss_resend=regenerated)
        self._md.on_events(events)
        self._sent_upto = events[-1].seq
        self._mark_dirty = True  # written by on_stores_synced, once the stores are on disk
        self._handles.request_sync()  # also when nothing was stored: the mark moves on

    # --- FIX application ------------------------------------------------------------------------

    def on_logon(self, session: SessionHandle) -> None:
        return None  # nothing to set up: reports find the member's store by comp id

    def on_logout(self, session: SessionHandle, reason: str) -> None:
        self._md.drop_session(session.comp_id)
        member = session.member
        if member.cancel_on_disconnect and not self.closing:
            # If the venue is stopping, its orders are journaled and nothing is cancelled now.
            with contextlib.suppress(VenueError):
                self._venue.submit_nowait(MassCancel(member=member.member, cl_ord_id=""))

    def on_message(self, session: SessionHandle, msg: Message) -> None:
        msg_type = msg.msg_type
        member = session.member.member
        if msg_type == t.MT_NEW_ORDER_SINGLE:
            self._submit(session, msg, parse_new_order(msg, member, self._tick_sizes))
        elif msg_type == t.MT_ORDER_CANCEL_REQUEST:
            self._submit(session, msg, parse_cancel(msg, member))
        elif msg_type == t.MT_ORDER_CANCEL_REPLACE_REQUEST:
            self._submit(session, msg, parse_replace(msg, member, self._tick_sizes))
        elif msg_type == t.MT_ORDER_STATUS_REQUEST:
            parsed = parse_status(msg, member)
            if isinstance(parsed, OrderStatusRequest):
                # The reply echoes OrdStatusReqID (790), which the engine command lacks.
                self._reporter.expect_status(parsed, status_echo(msg))
            self._submit(session, msg, parsed)
        elif msg_type == t.MT_ORDER_MASS_CANCEL_REQUEST:
            self._submit(session, msg, parse_mass_cancel(msg, member))
        elif msg_type == t.MT_MARKET_DATA_REQUEST:
            self._md.on_request(session, msg)
        elif msg_type == t.MT_SECURITY_LIST_REQUEST:
            self._security_list(session, msg)
        else:  # the acceptor only passes supported types; keep the answer defined anyway
            session.business_reject(msg, t.BRR_UNSUPPORTED_MSG_TYPE, f"MsgType {msg_type}")

    def _submit(self, session: SessionHandle, msg: Message, parsed: Command | FixRejection) -> None:
        if isinstance(parsed, FixRejection):
            self._answer_rejection(session, msg, parsed)
            return
        try:
            self._venue.submit_nowait(parsed)
        except CommandOutOfRangeError as exc:
            # The parsers check the shared limits first; this is the venue's own check behind them.
            self._answer_rejection(
                session,
                msg,
                FixRejection(
                    kind="business", ref_tag=None, reason=t.BRR_OTHER, text=f"out of range: {exc}"
                ),
            )
        except VenueError as exc:
            self._answer_rejection(
                session,
                msg,
                FixRejection(
                    kind="business",
                    ref_tag=None,
                    reason=t.BRR_APPLICATION_NOT_AVAILABLE,
                    text=f"venue unavailable: {exc}",
                ),
            )

    def _answer_rejection(self, session: SessionHandle, msg: Message, rej: FixRejection) -> None:
        if rej.kind == "session":
            session.reject(msg, rej.reason, rej.ref_tag, rej.text)
        elif rej.kind == "business":
            session.business_reject(msg, rej.reason, rej.text, msg.get(t.ClOrdID) or "")
        else:
            prefix = self._reporter.exec_id_prefix
            exec_id = f"R{prefix}{self._venue.last_seq}-{session.comp_id}-{msg.seq_num}"
            msg_type, body = self._reporter.rejection_message(msg, rej, exec_id, time.time_ns())
            session.send(msg_type, body)

    # --- security list --------------------------------------------------------------------------

    def _security_list(self, session: SessionHandle, msg: Message) -> None:
        req_id = msg.get(t.SecurityReqID)
        if not req_id:
            session.reject(
                msg, t.SRR_REQUIRED_TAG_MISSING, t.SecurityReqID, "SecurityReqID is required"
            )
            return
        kind = msg.get(t.SecurityListRequestType) or "4"
        instruments = list(self._config.instruments)
        if kind == "0":  # one symbol
            symbol = msg.get(t.Symbol)
            instruments = [i for i in instruments if i.symbol == symbol]
        elif kind != "4":  # 4 = all securities
            session.send(
                t.MT_SECURITY_LIST,
                [
                    (t.SecurityReqID, req_id),
                    (t.SecurityResponseID, f"{req_id}-1"),
                    (t.SecurityRequestResult, "1"),
                    (t.Text, f"SecurityListRequestType {kind} unsupported (0 symbol, 4 all)"),
                ],
            )
            return
        body: list[tuple[int, str]] = [
            (t.SecurityReqID, req_id),
            (t.SecurityResponseID, f"{req_id}-1"),
            (t.SecurityRequestResult, "0" if instruments else "2"),
            (t.TotNoRelatedSym, str(len(instruments))),
            (t.LastFragment, "Y"),
            (t.NoRelatedSym, str(len(instruments))),
        ]
        for inst in instruments:
            # FIX 4.4 has no MinPriceIncrement (969) in SecurityList: the tick goes in Text.
            body += [
                (t.Symbol, inst.symbol),
                (t.SecurityExchange, self._config.name),
                (t.Currency, inst.currency),
                (t.RoundLot, str(inst.lot_size)),
                (t.Text, f"tick size {inst.tick_size}"),
            ]
        session.send(t.MT_SECURITY_LIST, body)
