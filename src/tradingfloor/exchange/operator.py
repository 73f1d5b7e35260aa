"""The exchange operator's console: instrument and member status built from events, and the
operator's commands (halt, resume, price bands, member kill switch) sent through the venue.

``VenueStatus`` is a venue listener, attached before the journal replay like every other
projection, so it knows the session state of every instrument and the kill switch of every
member from the events alone. ``VenueOperator`` checks a request against that status (an
unknown symbol or member changes nothing) and submits the command; an engine rejection is
raised as ``OperatorError`` with the engine's code and text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

import msgspec

from tradingfloor.core.units import from_ticks
from tradingfloor.exchange.checkpoint import CheckpointError, decode_versioned
from tradingfloor.exchange.engine.commands import (
    Command,
    Halt,
    Resume,
    SetKillSwitch,
    SetPriceBand,
)
from tradingfloor.exchange.engine.events import (
    Accepted,
    Event,
    InstrumentAdded,
    InstrumentUpdated,
    KillSwitchChanged,
    PhaseChanged,
    Rejected,
)
from tradingfloor.exchange.engine.instrument import MAX_BAND_BPS
from tradingfloor.exchange.engine.types import BandAction, Phase
from tradingfloor.exchange.marketdata.checkpoint_state import encode_state
from tradingfloor.exchange.venue import Venue, VenueError

__all__ = [
    "MAX_BAND_BPS",
    "MAX_REASON_LENGTH",
    "STATUS_STATE_VERSION",
    "InstrumentStatus",
    "OperatorError",
    "UnknownMemberError",
    "UnknownSymbolError",
    "VenueOperator",
    "VenueStatus",
    "VenueUnavailableError",
]

MAX_REASON_LENGTH: Final = 64


class OperatorError(Exception):
    """The venue refused an operator command; ``code`` is the engine's reject code (0 when the
    venue is not running)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


class VenueUnavailableError(OperatorError):
    """The venue is not running (starting, stopping, or stopped after a failure)."""


class UnknownSymbolError(LookupError):
    """No instrument of that symbol is listed."""


class UnknownMemberError(LookupError):
    """The venue has never heard of that member."""


@dataclass(slots=True)
class InstrumentStatus:
    symbol: str
    tick_size: Decimal
    phase: Phase
    reference_price: int = 0  # ticks; 0 = none yet
    band_bps: int = 0  # 0 = no price band
    band_action: BandAction = BandAction.REJECT
    pause_ns: int = 0
    halt_reason: str = ""

    @property
    def reference(self) -> Decimal | None:
        return from_ticks(self.reference_price, self.tick_size) if self.reference_price else None


STATUS_STATE_VERSION: Final = 1


class _InstrumentState(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    symbol: str
    tick_size: str  # the listing's decimal string
    phase: Phase
    reference_price: int
    band_bps: int
    band_action: BandAction
    pause_ns: int
    halt_reason: str


class _StatusState(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """``VenueStatus``'s checkpoint part (``status``)."""

    version: int
    instruments: list[_InstrumentState]  # listing order
    kill_switch: list[tuple[str, bool]]  # members in the order the status learned them


class VenueStatus:
    """Instruments' session state and members' kill switches, from the venue's events.

    ``Checkpointed`` (exchange.checkpoint) as part ``status``: restoring keeps the members
    given to the constructor and adds, after them, those the checkpoint knows.
    """

    def __init__(self, members: Iterable[str] = ()) -> None:
        self.instruments: dict[str, InstrumentStatus] = {}
        self.kill_switch: dict[str, bool] = dict.fromkeys(members, False)
        self._fresh = True  # no event applied and nothing restored yet

    @property
    def checkpoint_name(self) -> str:
        return "status/1"

    def checkpoint(self) -> bytes:
        """The instruments' status and every member's kill switch after the last command."""
        instruments = [
            _InstrumentState(
                i.symbol,
                str(i.tick_size),
                i.phase,
                i.reference_price,
                i.band_bps,
                i.band_action,
                i.pause_ns,
                i.halt_reason,
            )
            for i in self.instruments.values()
        ]
        state = _StatusState(STATUS_STATE_VERSION, instruments, list(self.kill_switch.items()))
        return encode_state(state)

    def restore_checkpoint(self, data: bytes) -> None:
        """Continue from ``checkpoint()``'s bytes (on a status that has seen no event).

        ``CheckpointError``, and nothing changed, for unusable bytes.
        """
        if not self._fresh:
            raise RuntimeError("restore_checkpoint needs a fresh status")
        state = decode_versioned(data, _StatusState, STATUS_STATE_VERSION, "status")
        instruments: dict[str, InstrumentStatus] = {}
        for i in state.instruments:
            try:
                tick = Decimal(i.tick_size)
            except InvalidOperation:
                tick = Decimal(0)
            if not tick.is_finite() or tick <= 0 or i.symbol in instruments:
                raise CheckpointError(f"status checkpoint: instrument {i.symbol!r} {i.tick_size}")
            instruments[i.symbol] = InstrumentStatus(
                i.symbol,
                tick,
                i.phase,
                i.reference_price,
                i.band_bps,
                i.band_action,
                i.pause_ns,
                i.halt_reason,
            )
        self.instruments = instruments
        self.kill_switch.update(state.kill_switch)
        self._fresh = False

    def on_events(self, _command: Command, events: Sequence[Event]) -> None:
        self._fresh = False
        for ev in events:
            if isinstance(ev, Accepted | Rejected):  # every member that has sent an order
                if ev.member and ev.member not in self.kill_switch:
                    self.kill_switch[ev.member] = False
            elif isinstance(ev, PhaseChanged):
                inst = self.instruments.get(ev.symbol)
                if inst is not None:
                    inst.phase = ev.phase
                    inst.halt_reason = ev.reason if ev.phase is Phase.HALTED else ""
            elif isinstance(ev, InstrumentUpdated):
                inst = self.instruments.get(ev.symbol)
                if inst is not None:
                    inst.reference_price = ev.reference_price
                    inst.band_bps = ev.band_bps
                    inst.band_action = ev.band_action
                    inst.pause_ns = ev.pause_ns
            elif isinstance(ev, KillSwitchChanged):
                self.kill_switch[ev.member] = ev.active
            elif isinstance(ev, InstrumentAdded):
                self.instruments[ev.symbol] = InstrumentStatus(
                    ev.symbol, Decimal(ev.tick_size), ev.phase
                )

    def add_member(self, member: str) -> None:
        """A member the venue should list before it has sent an order (its switch is off)."""
        self.kill_switch.setdefault(member, False)

    def instrument(self, symbol: str) -> InstrumentStatus:
        try:
            return self.instruments[symbol]
        except KeyError:
            raise UnknownSymbolError(symbol) from None


class VenueOperator:
    """The operator's commands, checked against ``status`` and sent through ``venue``."""

    def __init__(self, venue: Venue, status: VenueStatus) -> None:
        self.venue = venue
        self.status = status

    async def halt(self, symbol: str, reason: str = "operator") -> InstrumentStatus:
        inst = self.status.instrument(symbol)
        if not reason or len(reason) > MAX_REASON_LENGTH:
            raise OperatorError(0, f"reason must be 1 to {MAX_REASON_LENGTH} characters")
        await self._submit(Halt(symbol=inst.symbol, reason=reason))
        return inst

    async def resume(self, symbol: str) -> InstrumentStatus:
        inst = self.status.instrument(symbol)
        await self._submit(Resume(symbol=inst.symbol))
        return inst

    async def set_price_band(
        self, symbol: str, band_bps: int, band_action: BandAction
    ) -> InstrumentStatus:
        """A new band; the instrument keeps its pause length (for ``pause`` bands)."""
        inst = self.status.instrument(symbol)
        if not 0 <= band_bps <= MAX_BAND_BPS:
            raise OperatorError(0, f"band_bps must be 0 to {MAX_BAND_BPS}")
        await self._submit(
            SetPriceBand(
                symbol=inst.symbol,
                band_bps=band_bps,
                band_action=band_action,
                pause_ns=inst.pause_ns,
            )
        )
        return inst

    async def set_kill_switch(self, member: str, active: bool) -> bool:
        if member not in self.status.kill_switch:
            raise UnknownMemberError(member)
        await self._submit(SetKillSwitch(member=member, active=active))
        return self.status.kill_switch[member]

    async def _submit(self, command: Command) -> None:
        try:
            events = await self.venue.submit(command)
        except VenueError as exc:
            raise VenueUnavailableError(0, f"the venue is not available: {exc}") from exc
        for ev in events:
            if isinstance(ev, Rejected):
                raise OperatorError(ev.code, ev.text)
