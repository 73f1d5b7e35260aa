"""The venue operator's routes (``/api/admin/venue/...``) over HTTP (ASGI): instruments and
session state, halt and resume (orders refused while halted), price bands (orders outside the
new band refused), the member kill switch (the member's orders cancelled, new ones refused),
their validation, and that only admins reach them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from tradingfloor.broker.errors import ErrorCode
from tradingfloor.broker.identity.roles import Role
from tradingfloor.exchange.engine.commands import SetReferencePrice
from tradingfloor.exchange.engine.events import Accepted, Cancelled, Rejected
from tradingfloor.exchange.engine.types import Side

from ..stack import BROKER_MEMBER, Stack, broker_stack

pytestmark = pytest.mark.asyncio(loop_scope="module")

BASE = "/api/admin/venue"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    path: Path = tmp_path_factory.mktemp("venue-admin")
    async with broker_stack(path, symbols=("AAPL", "MSFT", "TSLA")) as s:
        # a reference price and a band, as the default venue lists them
        await s.venue.submit(SetReferencePrice(symbol="MSFT", price=42_000))
        yield s


async def admin(stack: Stack) -> dict[str, str]:
    _, headers = await stack.user(Role.ADMIN)
    return headers


async def test_instruments_list_session_state_and_bands(stack: Stack) -> None:
    headers = await admin(stack)
    async with stack.client() as client:
        answer = await client.get(f"{BASE}/instruments", headers=headers)
    assert answer.status_code == 200
    by_symbol = {i["symbol"]: i for i in answer.json()}
    assert set(by_symbol) == {"AAPL", "MSFT", "TSLA"}
    assert by_symbol["MSFT"]["phase"] == "continuous"
    assert by_symbol["MSFT"]["reference_price"] == "420.00"
    assert by_symbol["MSFT"]["tick_size"] == "0.01"
    assert by_symbol["AAPL"]["reference_price"] is None


async def test_halt_refuses_orders_and_resume_reopens(stack: Stack) -> None:
    headers = await admin(stack)
    async with stack.client() as client:
        halted = await client.post(
            f"{BASE}/instruments/TSLA/halt", json={"reason": "news pending"}, headers=headers
        )
        assert halted.status_code == 200, halted.text
        assert halted.json()["phase"] == "halted"
        assert halted.json()["halt_reason"] == "news pending"
        events = await stack.counterparty("TSLA", Side.BUY, 25_000, 10)
        assert [e.text for e in events if isinstance(e, Rejected)] == ["instrument is halted"]
        resumed = await client.post(f"{BASE}/instruments/TSLA/resume", headers=headers)
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["phase"] == "continuous"
        assert resumed.json()["halt_reason"] == ""
    events = await stack.counterparty("TSLA", Side.BUY, 25_000, 10)
    assert any(isinstance(e, Accepted) for e in events)


async def test_price_band_applies_to_new_orders(stack: Stack) -> None:
    headers = await admin(stack)
    async with stack.client() as client:
        answer = await client.put(
            f"{BASE}/instruments/MSFT/price-band",
            json={"band_bps": 100, "band_action": "reject"},
            headers=headers,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["band_bps"] == 100
        # 5% above the 420.00 reference: outside a 1% band
        events = await stack.counterparty("MSFT", Side.BUY, 44_100, 10)
        assert any(isinstance(e, Rejected) for e in events)
        inside = await stack.counterparty("MSFT", Side.BUY, 42_100, 10)
        assert any(isinstance(e, Accepted) for e in inside)
        back = await client.put(
            f"{BASE}/instruments/MSFT/price-band", json={"band_bps": 1000}, headers=headers
        )
        assert back.json()["band_bps"] == 1000


async def test_kill_switch_cancels_and_blocks_a_member(stack: Stack) -> None:
    headers = await admin(stack)
    resting = await stack.counterparty("AAPL", Side.SELL, 20_000, 5, member="MMKILL")
    assert any(isinstance(e, Accepted) for e in resting)
    async with stack.client() as client:
        members = {
            m["member"]: m for m in (await client.get(f"{BASE}/members", headers=headers)).json()
        }
        assert members["MMKILL"]["kill_switch"] is False
        assert BROKER_MEMBER in members
        on = await client.put(
            f"{BASE}/members/MMKILL/kill-switch", json={"active": True}, headers=headers
        )
        assert on.status_code == 200, on.text
        assert on.json() == {"member": "MMKILL", "kill_switch": True}
        assert stack.book.l1("AAPL").ask == 0  # its resting sell was cancelled
        refused = await stack.counterparty("AAPL", Side.SELL, 20_000, 5, member="MMKILL")
        assert [e.code for e in refused if isinstance(e, Rejected)] == [2001]
        off = await client.put(
            f"{BASE}/members/MMKILL/kill-switch", json={"active": False}, headers=headers
        )
        assert off.json()["kill_switch"] is False
    again = await stack.counterparty("AAPL", Side.SELL, 20_000, 5, member="MMKILL")
    assert not any(isinstance(e, Rejected | Cancelled) for e in again)


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        ("post", "/instruments/NOPE/halt", None, ErrorCode.ASSET_NOT_FOUND),
        ("put", "/instruments/AAPL/price-band", {"band_bps": -1}, ErrorCode.INVALID),
        ("put", "/instruments/AAPL/price-band", {"band_bps": 10_001}, ErrorCode.INVALID),
        ("put", "/instruments/AAPL/price-band", {"band_bps": 5, "band_action": "x"}, 42210000),
        ("post", "/instruments/AAPL/halt", {"reason": ""}, ErrorCode.INVALID),
        ("put", "/members/NOBODY/kill-switch", {"active": True}, ErrorCode.NOT_FOUND),
        ("put", "/members/MMKILL/kill-switch", {"active": "yes please"}, ErrorCode.INVALID),
    ],
)
async def test_bad_requests_are_refused_and_change_nothing(
    stack: Stack, method: str, path: str, body: object, code: int
) -> None:
    headers = await admin(stack)
    async with stack.client() as client:
        before = (await client.get(f"{BASE}/instruments", headers=headers)).json()
        answer = await client.request(method, f"{BASE}{path}", json=body, headers=headers)
        after = (await client.get(f"{BASE}/instruments", headers=headers)).json()
    assert answer.status_code == code // 100_000, answer.text
    assert answer.json()["code"] == code
    assert before == after


@pytest.mark.parametrize("role", [Role.INVESTOR, Role.TRADER, Role.BROKER])
async def test_only_admins_operate_the_venue(stack: Stack, role: Role) -> None:
    account = await stack.funded_account()
    _, headers = await stack.user(role, account_id=account if role is not Role.BROKER else None)
    async with stack.client() as client:
        for method, path, body in [
            ("get", "/instruments", None),
            ("post", "/instruments/AAPL/halt", None),
            ("put", "/members/MMKILL/kill-switch", {"active": True}),
        ]:
            answer = await client.request(method, f"{BASE}{path}", json=body, headers=headers)
            assert answer.status_code == 403, (role, path, answer.text)
            assert answer.json()["code"] == ErrorCode.FORBIDDEN


async def test_unauthenticated_is_401(stack: Stack) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=stack.runtime.asgi), base_url="http://broker"
    ) as client:
        answer = await client.get(f"{BASE}/instruments")
    assert answer.status_code == 401


async def test_a_venue_that_is_not_running_is_503_and_nothing_changes(tmp_path: Path) -> None:
    async with broker_stack(tmp_path, symbols=("AAPL",)) as own:
        headers = await admin(own)
        await own.venue.stop()
        async with own.client() as client:
            answer = await client.post(f"{BASE}/instruments/AAPL/halt", headers=headers)
            listed = (await client.get(f"{BASE}/instruments", headers=headers)).json()
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == ErrorCode.VENUE_UNAVAILABLE
        assert listed[0]["phase"] == "continuous"
