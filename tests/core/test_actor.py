"""``core.actor``: the actor value (its checks and its row round trip) and request-id hygiene."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradingfloor.core.actor import (
    ACTOR_COLUMNS,
    IN_PROCESS,
    MAX_REQUEST_ID_LENGTH,
    Actor,
    CredentialKind,
    new_request_id,
    sane_request_id,
)

actors = st.builds(
    Actor,
    principal=st.text(min_size=1, max_size=64),
    role=st.text(min_size=1, max_size=16),
    credential_kind=st.sampled_from(CredentialKind),
    credential_id=st.text(min_size=1, max_size=64),
    address=st.text(max_size=64),
    port=st.integers(0, 65_535),
    request_id=st.text(max_size=MAX_REQUEST_ID_LENGTH),
)


@given(actors)
def test_an_actor_survives_its_row(actor: Actor) -> None:
    row = actor.row()
    assert tuple(row) == ACTOR_COLUMNS
    assert Actor.from_row(row) == actor


@pytest.mark.parametrize(
    "change",
    [
        {"principal": ""},
        {"role": ""},
        {"credential_id": ""},
        {"port": -1},
        {"port": 65_536},
        {"request_id": "x" * (MAX_REQUEST_ID_LENGTH + 1)},
        {"principal": "p" * 65},
        {"role": "r" * 17},
        {"credential_id": "c" * 65},
        {"address": "a" * 65},
    ],
)
def test_an_actor_without_its_facts_is_refused(change: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "principal": "u-1",
        "role": "trader",
        "credential_kind": CredentialKind.TOKEN,
        "credential_id": "jti",
        "address": "192.0.2.1",
        "port": 5000,
        "request_id": "r",
    }
    with pytest.raises(ValueError):
        Actor(**{**fields, **change})  # type: ignore[arg-type]


def test_system_actors_name_their_component() -> None:
    actor = Actor.system("broker:day-roll")
    assert (actor.principal, actor.role, actor.credential_kind) == (
        "system",
        "system",
        CredentialKind.SYSTEM,
    )
    assert actor.is_system and (actor.address, actor.port) == ("", 0)
    assert len(actor.request_id) == 32 and actor.request_id != new_request_id()
    assert IN_PROCESS.credential_id == "in-process"


@given(st.text(max_size=200))
def test_a_sane_request_id_is_safe_in_a_header_and_a_log_line(value: str) -> None:
    kept = sane_request_id(value)
    if kept is None:
        return
    assert kept == value
    assert 0 < len(kept) <= MAX_REQUEST_ID_LENGTH
    assert kept.isascii() and kept.isprintable()
    assert not any(c.isspace() or c in "\"',;\\" for c in kept)


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,127}", fullmatch=True))
def test_ids_of_the_documented_shape_are_kept(value: str) -> None:
    assert sane_request_id(value) == value


def test_common_request_ids_are_kept() -> None:
    for value in (
        "6f1c1e8e-3b9a-4c43-9a6e-0c0f7c1d2b3a",
        "Root=1-5759e988-bd862e3fe1be46a994272793",
    ):
        assert sane_request_id(value) == value
    assert sane_request_id(None) is None


def test_the_widths_of_the_facts_are_those_of_their_columns() -> None:
    from tradingfloor.core import actor as a
    from tradingfloor.storage import tables as t

    widths = {
        "actor_principal": a.MAX_PRINCIPAL_LENGTH,
        "actor_role": a.MAX_ROLE_LENGTH,
        "credential_id": a.MAX_CREDENTIAL_ID_LENGTH,
        "source_address": a.MAX_ADDRESS_LENGTH,
        "request_id": a.MAX_REQUEST_ID_LENGTH,
    }
    kinds = max(len(kind.value) for kind in CredentialKind)
    for table in (t.order_events, t.admin_actions):
        for column, width in widths.items():
            assert table.c[column].type.length == width, (table.name, column)
        assert table.c["credential_kind"].type.length >= kinds
