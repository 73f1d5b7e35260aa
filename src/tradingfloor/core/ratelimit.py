"""Token-bucket rate limiter keyed by string (per API key, user, client address, ...).

Implemented as GCRA (the generic cell rate algorithm, equivalent to a token bucket) in exact
integer arithmetic: each key keeps one "theoretical arrival time". Over any window of T seconds
a key is allowed at most ``burst + per_minute / 60 * T`` requests. Idle keys (full buckets)
are dropped, and at most `max_keys` keys are kept (least recently used goes first).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

__all__ = ["MAX_KEYS", "RateLimiter"]

#: Default bound on the number of keys a limiter remembers.
MAX_KEYS = 100_000

_NS_PER_S = 1_000_000_000
_NS_PER_MINUTE = 60 * _NS_PER_S
#: Idle buckets examined (and dropped if full) per call, oldest first.
_SWEEP_PER_CALL = 2


class RateLimiter:
    """Allow `per_minute` requests per minute per key, with bursts of up to `burst` requests.

    `per_minute` is a number or a function of the key (for per-key limits, read at every call).
    `burst` defaults to the key's `per_minute` (a full minute's allowance at once).

    Internally time is integer nanoseconds and a bucket stores its theoretical arrival time
    multiplied by the key's rate, so no rounding ever happens inside.
    """

    def __init__(
        self,
        per_minute: int | Callable[[str], int],
        burst: int | None = None,
        *,
        max_keys: int = MAX_KEYS,
    ) -> None:
        if isinstance(per_minute, int) and per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        if burst is not None and burst < 1:
            raise ValueError("burst must be at least 1")
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._per_minute = per_minute
        self._burst = burst
        self._max_keys = max_keys
        # key -> (theoretical arrival time in ns * per_minute, per_minute it was computed with)
        self._buckets: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def __len__(self) -> int:
        """The number of keys currently remembered."""
        return len(self._buckets)

    def _rate(self, key: str) -> int:
        rate = self._per_minute(key) if callable(self._per_minute) else self._per_minute
        if rate < 1:
            raise ValueError(f"per_minute for {key!r} must be at least 1, got {rate}")
        return rate

    def _wait(self, key: str, now_ns: int) -> tuple[int, int, int]:
        """(wait in ns, 0 if allowed; scaled arrival time after an allowed request; rate)."""
        rate = self._rate(key)
        burst = self._burst if self._burst is not None else rate
        now_scaled = now_ns * rate
        bucket = self._buckets.get(key)
        tat = now_scaled
        if bucket is not None:
            tat, old_rate = bucket
            if old_rate != rate:  # the key's limit changed: rescale, rounding up
                tat = -(-tat * rate // old_rate)
            tat = max(tat, now_scaled)
        allowed_from = tat - (burst - 1) * _NS_PER_MINUTE
        if now_scaled >= allowed_from:
            return 0, tat + _NS_PER_MINUTE, rate
        return -(-(allowed_from - now_scaled) // rate), tat, rate

    def peek_ns(self, key: str, now_ns: int) -> int:
        """Nanoseconds until a request for `key` would be allowed (0: now); consumes nothing."""
        return self._wait(key, now_ns)[0]

    def check_ns(self, key: str, now_ns: int) -> int:
        """0 if a request for `key` at `now_ns` is allowed (and counts it), else the wait in ns.

        A denied request consumes nothing, and a request `wait` ns later is allowed.
        """
        wait, tat, rate = self._wait(key, now_ns)
        if wait == 0:
            self._buckets[key] = (tat, rate)
            self._buckets.move_to_end(key)
            self._evict(now_ns)
        return wait

    def check(self, key: str, now: float) -> float:
        """0.0 if a request for `key` at `now` (seconds) is allowed and counted, else Retry-After.

        The wait is rounded up to whole microseconds plus one, so that a request at
        ``now + wait`` (computed in floating point) is allowed.
        """
        return _wait_seconds(self.check_ns(key, round(now * _NS_PER_S)))

    def peek(self, key: str, now: float) -> float:
        """Like `check`, but counts nothing."""
        return _wait_seconds(self.peek_ns(key, round(now * _NS_PER_S)))

    def reset(self, key: str) -> None:
        """Forget `key` (its bucket becomes full)."""
        self._buckets.pop(key, None)

    def _evict(self, now_ns: int) -> None:
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        for _ in range(_SWEEP_PER_CALL):
            key, (tat, rate) = next(iter(self._buckets.items()))
            if tat > now_ns * rate:
                break
            del self._buckets[key]  # full again: remembering it changes nothing
            if not self._buckets:
                break


def _wait_seconds(wait_ns: int) -> float:
    if wait_ns == 0:
        return 0.0
    return (-(-wait_ns // 1000) + 1) / 1_000_000
