"""The exchange operator's routes (``/api/admin/venue/...``, ADMIN_VENUE only): instruments and
their session state, halt and resume, price bands, and each member's kill switch.

They act on the venue through ``exchange.operator.VenueOperator``. Each change the venue accepts
is recorded, with the request's actor, as an administrative record (``venue.halt``,
``venue.resume``, ``venue.price_band``, ``venue.kill_switch``; ``broker/records.py``) before the
answer; a refused one changes nothing and records nothing. Errors are the broker's
``{code, message}``: an unknown symbol or member is 404, a refused value 422 (42210000), a
command the venue rejects 422 with the engine's reason, a venue that is not running 503.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from tradingfloor.broker.api.auth import Principal, require
from tradingfloor.broker.api.context import actor_dependency
from tradingfloor.broker.errors import BrokerError, ErrorCode
from tradingfloor.broker.identity.roles import Permission
from tradingfloor.broker.records import ActionRecorder, AdminAction
from tradingfloor.core.actor import Actor
from tradingfloor.exchange.engine.types import BandAction
from tradingfloor.exchange.operator import (
    MAX_BAND_BPS,
    MAX_REASON_LENGTH,
    InstrumentStatus,
    OperatorError,
    UnknownMemberError,
    UnknownSymbolError,
    VenueOperator,
    VenueUnavailableError,
)

__all__ = ["venue_admin_router"]

_T = TypeVar("_T")

PrincipalDep = Callable[[Request], Awaitable[Principal]]
SymbolPath = Annotated[str, Path(min_length=1, max_length=16, pattern=r"^[A-Z0-9][A-Z0-9.\-]*$")]
MemberPath = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.\-]+$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HaltIn(_Body):
    reason: str = Field(default="operator", min_length=1, max_length=MAX_REASON_LENGTH)


class PriceBandIn(_Body):
    band_bps: int = Field(ge=0, le=MAX_BAND_BPS, description="0 switches the band off")
    band_action: Literal["reject", "pause"] = "reject"


class KillSwitchIn(_Body):
    active: bool


class InstrumentOut(BaseModel):
    symbol: str
    tick_size: str
    phase: str
    halt_reason: str
    reference_price: str | None
    band_bps: int
    band_action: str


class MemberOut(BaseModel):
    member: str
    kill_switch: bool


def _out(inst: InstrumentStatus) -> InstrumentOut:
    ref = inst.reference
    return InstrumentOut(
        symbol=inst.symbol,
        tick_size=str(inst.tick_size),
        phase=inst.phase.value,
        halt_reason=inst.halt_reason,
        reference_price=None if ref is None else str(ref),
        band_bps=inst.band_bps,
        band_action=inst.band_action.value,
    )


async def _run(action: Awaitable[_T]) -> _T:
    try:
        return await action
    except UnknownSymbolError as exc:
        raise BrokerError(ErrorCode.ASSET_NOT_FOUND, f"no instrument {exc.args[0]}") from None
    except UnknownMemberError as exc:
        raise BrokerError(ErrorCode.NOT_FOUND, f"no member {exc.args[0]}") from None
    except VenueUnavailableError as exc:
        raise BrokerError(ErrorCode.VENUE_UNAVAILABLE, exc.text) from None
    except OperatorError as exc:
        detail = f"{exc.text} (engine code {exc.code})" if exc.code else exc.text
        raise BrokerError(ErrorCode.INVALID, detail) from None


def venue_admin_router(
    operator: VenueOperator,
    principal: PrincipalDep,
    records: ActionRecorder,
    clock: Callable[[], int] = time.time_ns,
) -> APIRouter:
    router = APIRouter(prefix="/api/admin/venue")
    admin = Depends(require(principal, Permission.ADMIN_VENUE))
    acting = Depends(actor_dependency(principal))
    tag: list[str | Enum] = ["venue operations"]
    status = operator.status

    @router.get("/instruments", tags=tag, summary="Instruments, session state and price bands")
    async def instruments(_who: Principal = admin) -> list[InstrumentOut]:
        return [_out(i) for _, i in sorted(status.instruments.items())]

    @router.get("/instruments/{symbol}", tags=tag, summary="One instrument")
    async def instrument(symbol: SymbolPath, _who: Principal = admin) -> InstrumentOut:
        return _out(await _run(_lookup(symbol)))

    async def _lookup(symbol: str) -> InstrumentStatus:
        return status.instrument(symbol)

    @router.post("/instruments/{symbol}/halt", tags=tag, summary="Halt trading in a symbol")
    async def halt(
        symbol: SymbolPath,
        body: HaltIn | None = None,
        _who: Principal = admin,
        actor: Actor = acting,
    ) -> InstrumentOut:
        reason = body.reason if body is not None else "operator"
        done = await _run(operator.halt(symbol, reason))
        await records.record_admin_action(
            AdminAction.VENUE_HALT, symbol, actor, clock(), {"reason": reason}
        )
        return _out(done)

    @router.post(
        "/instruments/{symbol}/resume",
        tags=tag,
        summary="End a halt (continuous trading re-opens by auction)",
    )
    async def resume(
        symbol: SymbolPath, _who: Principal = admin, actor: Actor = acting
    ) -> InstrumentOut:
        done = await _run(operator.resume(symbol))
        await records.record_admin_action(AdminAction.VENUE_RESUME, symbol, actor, clock())
        return _out(done)

    @router.put("/instruments/{symbol}/price-band", tags=tag, summary="Set the price band")
    async def price_band(
        symbol: SymbolPath, body: PriceBandIn, _who: Principal = admin, actor: Actor = acting
    ) -> InstrumentOut:
        action = BandAction(body.band_action)
        done = await _run(operator.set_price_band(symbol, body.band_bps, action))
        await records.record_admin_action(
            AdminAction.VENUE_PRICE_BAND,
            symbol,
            actor,
            clock(),
            {"band_bps": body.band_bps, "band_action": body.band_action},
        )
        return _out(done)

    @router.get("/members", tags=tag, summary="Members and their kill switches")
    async def members(_who: Principal = admin) -> list[MemberOut]:
        return [MemberOut(member=m, kill_switch=k) for m, k in sorted(status.kill_switch.items())]

    @router.put(
        "/members/{member}/kill-switch",
        tags=tag,
        summary="Switch a member's kill switch (on: its orders are cancelled, new ones refused)",
    )
    async def kill_switch(
        member: MemberPath, body: KillSwitchIn, _who: Principal = admin, actor: Actor = acting
    ) -> MemberOut:
        active = await _run(operator.set_kill_switch(member, body.active))
        await records.record_admin_action(
            AdminAction.VENUE_KILL_SWITCH, member, actor, clock(), {"active": body.active}
        )
        return MemberOut(member=member, kill_switch=active)

    return router
