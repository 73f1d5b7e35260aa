"""The demo's documented users (README, docs/demo.md) and the one function that creates the
missing ones, with their customers, accounts, KYC decisions and deposits: idempotent, so a
restart of the demo finds them as it left them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tradingfloor.broker.identity.roles import Role
from tradingfloor.broker.runtime import BrokerRuntime
from tradingfloor.core.actor import Actor

__all__ = ["DEMO_PASSWORD", "DEMO_USERS", "DemoUser", "ensure_demo_users"]

#: Every demo user's password: a laptop demo, printed at start and written in the README.
DEMO_PASSWORD: Final = "tradingfloor-1"


@dataclass(frozen=True, slots=True)
class DemoUser:
    username: str
    role: Role
    about: str
    account_type: str | None = None  # a customer with one account of this type, or none
    kyc: str = "approved"
    deposit_minor: int = 0  # cents; below the $100,000 at which TOTP becomes mandatory


DEMO_USERS: Final = (
    DemoUser("admin", Role.ADMIN, "operates the venue and the broker"),
    DemoUser("broker", Role.BROKER, "manages customers, accounts and KYC"),
    DemoUser("alice", Role.TRADER, "cash account, $50,000", "cash", deposit_minor=5_000_000),
    DemoUser("bob", Role.TRADER, "margin account, $90,000", "margin", deposit_minor=9_000_000),
    DemoUser(
        "carol", Role.INVESTOR, "KYC pending: approve her in the admin view", "cash", "pending"
    ),
)


async def ensure_demo_users(runtime: BrokerRuntime) -> list[DemoUser]:
    """Create each demo user that does not exist yet; return the ones created."""
    existing = {user["username"] for user in runtime.identity.list_users()}
    broker = runtime.broker
    actor = Actor.system("demo:seed")  # the records show who made these users and deposits
    created = []
    for user in DEMO_USERS:
        if user.username in existing:
            continue
        customer_id = None
        if user.account_type is not None:
            customer_id = await broker.create_customer(
                user.username.capitalize(),
                f"{user.username}@demo.tradingfloor.invalid",
                actor=actor,
            )
            account = await broker.open_account(customer_id, user.account_type, actor=actor)
            if user.kyc != "pending":
                await broker.set_kyc(customer_id, user.kyc, "demo", actor=actor)
            if user.deposit_minor:
                await broker.transfer(
                    account.id, user.deposit_minor, description="demo deposit", actor=actor
                )
        await runtime.identity.create_user(
            user.username, DEMO_PASSWORD, user.role, customer_id, actor=None, by=actor
        )
        created.append(user)
    return created
