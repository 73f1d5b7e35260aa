"""Tests of the token-bucket (GCRA) rate limiter: limits, Retry-After, eviction, properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradingfloor.core.ratelimit import MAX_KEYS, RateLimiter

NS = 1_000_000_000
T0 = 1_750_000_000.0


def test_burst_then_steady_rate() -> None:
    limiter = RateLimiter(60)  # burst defaults to a minute's allowance
    assert all(limiter.check("k", T0) == 0.0 for _ in range(60))
    wait = limiter.check("k", T0)
    assert wait == pytest.approx(1.0, abs=3e-6)
    assert wait > 1.0
    assert limiter.check("k", T0 + 0.5) > 0
    assert limiter.check("k", T0 + wait) == 0.0
    assert limiter.check("k", T0 + wait) > 0


def test_burst_one() -> None:
    limiter = RateLimiter(120, burst=1)
    assert limiter.check_ns("k", 0) == 0
    assert limiter.check_ns("k", 0) == NS // 2
    assert limiter.check_ns("k", NS // 4) == NS // 4
    assert limiter.check_ns("k", NS // 2) == 0


def test_denied_requests_consume_nothing() -> None:
    limiter = RateLimiter(60, burst=2)
    assert limiter.check_ns("k", 0) == 0
    assert limiter.check_ns("k", 0) == 0
    for _ in range(100):
        assert limiter.check_ns("k", 0) == NS
    assert limiter.check_ns("k", NS) == 0


def test_peek_consumes_nothing() -> None:
    limiter = RateLimiter(60, burst=1)
    assert limiter.peek_ns("k", 0) == 0
    assert limiter.peek("k", 0.0) == 0.0
    assert len(limiter) == 0
    assert limiter.check_ns("k", 0) == 0
    assert limiter.peek_ns("k", 0) == NS
    assert limiter.peek("k", 0.0) == pytest.approx(1.0, abs=3e-6)


def test_keys_are_independent() -> None:
    limiter = RateLimiter(1, burst=1)
    assert limiter.check("a", T0) == 0.0
    assert limiter.check("a", T0) > 0
    assert limiter.check("b", T0) == 0.0


def test_per_key_limits() -> None:
    limits = {"fast": 600, "slow": 6}
    limiter = RateLimiter(lambda key: limits[key], burst=1)
    assert limiter.check_ns("fast", 0) == 0
    assert limiter.check_ns("fast", 0) == NS // 10
    assert limiter.check_ns("slow", 0) == 0
    assert limiter.check_ns("slow", 0) == 10 * NS


def test_changed_limit_takes_effect() -> None:
    limits = {"k": 60}
    limiter = RateLimiter(lambda key: limits[key], burst=1)
    assert limiter.check_ns("k", 0) == 0
    assert limiter.check_ns("k", 0) == NS
    limits["k"] = 120
    assert limiter.check_ns("k", 0) == NS  # the pending interval keeps its end time
    assert limiter.check_ns("k", NS) == 0
    assert limiter.check_ns("k", NS) == NS // 2


def test_reset() -> None:
    limiter = RateLimiter(1, burst=1)
    limiter.check("k", T0)
    limiter.reset("k")
    limiter.reset("never-seen")
    assert limiter.check("k", T0) == 0.0


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)
    with pytest.raises(ValueError):
        RateLimiter(10, burst=0)
    with pytest.raises(ValueError):
        RateLimiter(10, max_keys=0)
    with pytest.raises(ValueError):
        RateLimiter(lambda key: 0).check("k", T0)


def test_memory_is_bounded() -> None:
    assert MAX_KEYS == 100_000
    limiter = RateLimiter(60, max_keys=50)
    for i in range(1000):
        assert limiter.check(f"ip-{i}", T0) == 0.0
        assert len(limiter) <= 50


def test_idle_keys_are_swept() -> None:
    limiter = RateLimiter(60, burst=1)
    for i in range(100):
        limiter.check_ns(f"k{i}", 0)
    assert len(limiter) == 100
    # Every bucket is full again after a second; each new request drops up to two idle ones.
    for i in range(60):
        limiter.check_ns("active", (2 + i) * NS)
    assert len(limiter) <= 100 + 1 - 2 * 60 + 60  # shrinking, not growing
    for i in range(200):
        limiter.check_ns("active", (100 + i) * NS)
    assert len(limiter) == 1


def test_a_swept_key_behaves_like_a_new_one() -> None:
    a = RateLimiter(60, burst=3)
    b = RateLimiter(60, burst=3)
    for t in range(0, 5 * NS, NS // 7):
        a.check_ns("x", t)
    a.check_ns("other", 100 * NS)  # sweeps "x"
    assert [a.check_ns("x", 100 * NS) for _ in range(4)] == [
        b.check_ns("x", 100 * NS) for _ in range(4)
    ]


@given(
    per_minute=st.integers(1, 1200),
    burst=st.one_of(st.none(), st.integers(1, 50)),
    gaps_ms=st.lists(st.integers(0, 3000), min_size=1, max_size=150),
)
def test_allowed_count_is_bounded_in_every_window(
    per_minute: int, burst: int | None, gaps_ms: list[int]
) -> None:
    """In any window of T seconds at most burst + rate*T requests are allowed.

    Times are on a millisecond grid so the bound can be checked exactly in integers.
    """
    limiter = RateLimiter(per_minute, burst)
    effective_burst = burst if burst is not None else per_minute
    t_ms = 1_750_000_000_000
    allowed: list[int] = []
    for gap in gaps_ms:
        t_ms += gap
        if limiter.check("k", t_ms / 1000) == 0.0:
            allowed.append(t_ms)
    assert allowed, "the first request is always allowed"
    for i in range(len(allowed)):
        for j in range(i, len(allowed)):
            count = j - i + 1
            window_ms = allowed[j] - allowed[i]
            # count <= burst + (per_minute / 60_000 ms) * window_ms
            assert count * 60_000 <= effective_burst * 60_000 + per_minute * window_ms


@given(
    per_minute=st.integers(1, 1200),
    burst=st.one_of(st.none(), st.integers(1, 20)),
    start=st.floats(min_value=0, max_value=4e9),
    gaps=st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=100),
)
def test_a_request_at_the_retry_time_is_allowed(
    per_minute: int, burst: int | None, start: float, gaps: list[float]
) -> None:
    limiter = RateLimiter(per_minute, burst)
    now = start
    for gap in gaps:
        now += gap
        wait = limiter.check("k", now)
        if wait > 0:
            assert wait <= 60 / per_minute + 3e-6  # never more than one emission interval
            assert limiter.check("k", now + wait) == 0.0
            now += wait


@given(
    per_minute=st.integers(1, 1200),
    burst=st.one_of(st.none(), st.integers(1, 20)),
    gaps_ns=st.lists(st.integers(0, 5 * NS), min_size=1, max_size=100),
)
def test_retry_time_is_exact_in_nanoseconds(
    per_minute: int, burst: int | None, gaps_ns: list[int]
) -> None:
    limiter = RateLimiter(per_minute, burst)
    now = 1_750_000_000 * NS
    for gap in gaps_ns:
        now += gap
        wait = limiter.check_ns("k", now)
        if wait > 0:
            assert limiter.check_ns("k", now + wait - 1) > 0  # one ns earlier: still denied
            assert limiter.check_ns("k", now + wait) == 0
            now += wait
