"""RevokedSessions: ended sessions are remembered exactly while one of their access tokens can
still be valid (the start-up query is tested through the service and over HTTP)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tradingfloor.broker.identity.sessions import REMEMBER_NS, RevokedSessions
from tradingfloor.broker.identity.tokens import ACCESS_TOKEN_TTL_S

NS = 1_000_000_000
TTL = ACCESS_TOKEN_TTL_S * NS
NOW = 1_764_000_000 * NS


def test_remembered_as_long_as_an_access_token_lives() -> None:
    assert REMEMBER_NS == TTL


def test_remembered_until_the_newest_access_token_expires() -> None:
    ended = RevokedSessions()
    ended.add("a", NOW, NOW)
    ended.add("old", NOW - TTL, NOW)  # every token of it has expired: not remembered
    assert "a" in ended and "old" not in ended and len(ended) == 1
    ended.add("b", NOW + TTL - 1, NOW + TTL - 1)
    assert "a" in ended  # its last token is valid until NOW + TTL
    ended.add("c", NOW + TTL, NOW + TTL)
    assert "a" not in ended and "b" in ended  # adding forgets what has expired
    ended.add("b", NOW, NOW + TTL)  # an older issue time does not shorten it
    ended.add("d", NOW + 2 * TTL - 2, NOW + 2 * TTL - 2)
    assert "b" in ended
    ended.replace_all([("e", NOW)], NOW)
    assert "b" not in ended and "c" not in ended and "e" in ended


@given(
    events=st.lists(
        st.tuples(st.sampled_from("abcdef"), st.integers(0, TTL), st.integers(0, 2 * TTL)),
        max_size=40,
    ),
    probe=st.sampled_from("abcdefg"),
)
def test_an_ended_session_is_known_while_a_token_of_it_can_be_valid(
    events: list[tuple[str, int, int]], probe: str
) -> None:
    ended = RevokedSessions()
    valid_until: dict[str, int] = {}  # the model: when the newest token of the session expires
    now = NOW
    for session, step, age in events:
        now += step
        ended.add(session, now - age, now)
        valid_until[session] = max(valid_until.get(session, 0), now - age + TTL)
        for known, until in valid_until.items():
            if until > now:
                assert known in ended
    if probe not in valid_until:
        assert probe not in ended  # never ended, never refused
