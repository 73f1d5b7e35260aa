"""Tests of the role hierarchy and the role -> permission table (pinned cell by cell)."""

from __future__ import annotations

import itertools

import pytest

from tradingfloor.broker.identity.roles import (
    PERMISSIONS,
    Permission,
    Role,
    can_assign,
    has_permission,
    parse_role,
    role_at_least,
    role_level,
)

P = Permission
ROLES = (Role.INVESTOR, Role.TRADER, Role.BROKER, Role.ADMIN)

# The full matrix, written out: a change to PERMISSIONS must change this table too.
# Columns: investor, trader, broker, admin.
EXPECTED: dict[Permission, tuple[bool, bool, bool, bool]] = {
    P.VIEW_ACCOUNT: (True, True, True, True),
    P.MANAGE_API_KEYS: (True, True, True, True),
    P.TRADE: (False, True, True, True),
    P.MANAGE_WATCHLISTS: (False, True, True, True),
    P.VIEW_ALL_ACCOUNTS: (False, False, True, True),
    P.MANAGE_CUSTOMERS: (False, False, True, True),
    P.MANAGE_USERS: (False, False, True, True),
    P.ADMIN_VENUE: (False, False, False, True),
    P.VIEW_AUDIT: (False, False, False, True),
}

# can_assign(actor, target). Rows: actor; columns: target investor, trader, broker, admin.
EXPECTED_ASSIGN: dict[Role, tuple[bool, bool, bool, bool]] = {
    Role.INVESTOR: (False, False, False, False),
    Role.TRADER: (False, False, False, False),
    Role.BROKER: (True, True, False, False),
    Role.ADMIN: (True, True, True, True),
}


def test_role_and_permission_values_are_stable() -> None:
    assert [r.value for r in Role] == ["admin", "broker", "trader", "investor"]
    assert [p.value for p in Permission] == [
        "view_account",
        "trade",
        "manage_watchlists",
        "manage_api_keys",
        "view_all_accounts",
        "manage_customers",
        "manage_users",
        "admin_venue",
        "view_audit",
    ]


def test_expected_table_covers_every_permission_and_role() -> None:
    assert set(EXPECTED) == set(Permission)
    assert set(PERMISSIONS) == set(Role)
    assert set(EXPECTED_ASSIGN) == set(Role)


@pytest.mark.parametrize("permission", list(Permission))
def test_permission_matrix(permission: Permission) -> None:
    actual = tuple(has_permission(role, permission) for role in ROLES)
    assert actual == EXPECTED[permission]
    actual_table = tuple(permission in PERMISSIONS[role] for role in ROLES)
    assert actual_table == EXPECTED[permission]


def test_each_role_holds_the_permissions_of_the_roles_below() -> None:
    for lower, higher in itertools.pairwise(ROLES):
        assert PERMISSIONS[lower] < PERMISSIONS[higher]
    assert PERMISSIONS[Role.ADMIN] == frozenset(Permission)


def test_investor_is_view_only() -> None:
    assert PERMISSIONS[Role.INVESTOR] == {P.VIEW_ACCOUNT, P.MANAGE_API_KEYS}


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        PERMISSIONS[Role.INVESTOR] = frozenset(Permission)  # type: ignore[index]


@pytest.mark.parametrize("actor", ROLES)
def test_assignment_matrix(actor: Role) -> None:
    assert tuple(can_assign(actor, target) for target in ROLES) == EXPECTED_ASSIGN[actor]


def test_hierarchy() -> None:
    assert [role_level(r) for r in ROLES] == [0, 1, 2, 3]
    for i, role in enumerate(ROLES):
        for j, minimum in enumerate(ROLES):
            assert role_at_least(role, minimum) == (i >= j)


def test_parse_role() -> None:
    assert parse_role("broker") is Role.BROKER
    assert parse_role("Broker") is None
    assert parse_role("root") is None
    assert parse_role("") is None


def test_plain_strings_work_like_roles() -> None:
    # Values read back from a database or a token are plain strings.
    assert has_permission(Role("trader"), P.TRADE)
    assert can_assign(Role("admin"), Role("admin"))
