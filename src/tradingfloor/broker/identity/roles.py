"""Roles, permissions and the role -> permission table (RBAC) of the broker.

The hierarchy is admin > broker > trader > investor; each role holds every permission of the roles
below it. The table is data, not logic: a test pins it cell by cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "PERMISSIONS",
    "Permission",
    "Role",
    "can_assign",
    "has_permission",
    "parse_role",
    "role_at_least",
    "role_level",
]


class Role(StrEnum):
    """A user's role; the string value is what tokens and the database store."""

    ADMIN = "admin"
    BROKER = "broker"
    TRADER = "trader"
    INVESTOR = "investor"


class Permission(StrEnum):
    """One thing a user may do; checked by the API layer before it acts."""

    #: View own account, orders, positions, activities and market data.
    VIEW_ACCOUNT = "view_account"
    #: Place, replace and cancel orders on own account.
    TRADE = "trade"
    #: Create, change and delete own watchlists.
    MANAGE_WATCHLISTS = "manage_watchlists"
    #: Create and revoke own API keys (an investor's keys are as read-only as the investor).
    MANAGE_API_KEYS = "manage_api_keys"
    #: View every customer's accounts, orders, positions and activities.
    VIEW_ALL_ACCOUNTS = "view_all_accounts"
    #: Create customers and accounts, book deposits and withdrawals, decide KYC.
    MANAGE_CUSTOMERS = "manage_customers"
    #: Create and disable users, of a role the actor may assign (see `can_assign`).
    MANAGE_USERS = "manage_users"
    #: Operate the venue: halt/resume, kill switch, restricted list, risk settings.
    ADMIN_VENUE = "admin_venue"
    #: Read the records of who did what (administrative records, every order's history).
    VIEW_AUDIT = "view_audit"


_LEVEL: Mapping[Role, int] = MappingProxyType(
    {Role.INVESTOR: 0, Role.TRADER: 1, Role.BROKER: 2, Role.ADMIN: 3}
)

_INVESTOR = frozenset({Permission.VIEW_ACCOUNT, Permission.MANAGE_API_KEYS})
_TRADER = _INVESTOR | {Permission.TRADE, Permission.MANAGE_WATCHLISTS}
_BROKER = _TRADER | {
    Permission.VIEW_ALL_ACCOUNTS,
    Permission.MANAGE_CUSTOMERS,
    Permission.MANAGE_USERS,
}
_ADMIN = frozenset(Permission)

#: The permissions of each role (read-only).
PERMISSIONS: Mapping[Role, frozenset[Permission]] = MappingProxyType(
    {
        Role.INVESTOR: _INVESTOR,
        Role.TRADER: _TRADER,
        Role.BROKER: _BROKER,
        Role.ADMIN: _ADMIN,
    }
)


def parse_role(value: str) -> Role | None:
    """The `Role` named by `value` (exact, lower case), or None if there is no such role."""
    try:
        return Role(value)
    except ValueError:
        return None


def role_level(role: Role) -> int:
    """The rank of `role` in the hierarchy: investor 0, trader 1, broker 2, admin 3."""
    return _LEVEL[role]


def role_at_least(role: Role, minimum: Role) -> bool:
    """True if `role` ranks at or above `minimum` in the hierarchy."""
    return _LEVEL[role] >= _LEVEL[minimum]


def has_permission(role: Role, permission: Permission) -> bool:
    """True if `role` holds `permission` according to `PERMISSIONS`."""
    return permission in PERMISSIONS[role]


def can_assign(actor: Role, target: Role) -> bool:
    """True if a user of role `actor` may create a user of role `target` (or give it that role).

    An admin may assign any role; a broker only roles strictly below its own (trader, investor);
    traders and investors may assign none.
    """
    if not has_permission(actor, Permission.MANAGE_USERS):
        return False
    return actor == Role.ADMIN or _LEVEL[target] < _LEVEL[actor]
