"""The broker's market calendar: trading days, session times, and the trading day of an instant.

Pure and deterministic: no clock is read; every instant is an integer of nanoseconds since the
Unix epoch (UTC) given by the caller, every day a :class:`datetime.date`. Sessions are defined in
the market's time zone (``zoneinfo``, with the pinned ``tzdata``), so their UTC times follow
daylight saving time.

A regular calendar trades Monday to Friday except the given holidays, from ``open_time``
(inclusive) to ``close_time`` (exclusive), local time; early closes are not modelled. An
``always_open`` calendar (demo mode) is open continuously: every calendar day, weekends and
holidays included, is a session from 00:00 to 24:00 UTC, so trading days roll at midnight UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["DAY_NS", "MAX_SEARCH_DAYS", "MarketCalendar"]

NS_PER_US = 1_000
NS_PER_SECOND = 1_000_000_000
DAY_NS = 86_400 * NS_PER_SECOND
"""Nanoseconds in a (UTC) day."""
MAX_SEARCH_DAYS = 3_660
"""How far (about ten years) a search for the next or previous trading day may look."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DATE = _EPOCH.date()
_ONE_DAY = timedelta(days=1)


def _to_ns(moment: datetime) -> int:
    delta = moment - _EPOCH
    return ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds) * NS_PER_US


def _from_ns(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // NS_PER_US)


@dataclass(frozen=True, slots=True)
class MarketCalendar:
    """Trading days and sessions of one market; see the module doc for the rules."""

    open_time: time = time(9, 30)
    close_time: time = time(16, 0)
    tz: str = "America/New_York"
    holidays: frozenset[date] = frozenset()
    always_open: bool = False
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.open_time.tzinfo is not None or self.close_time.tzinfo is not None:
            raise ValueError("open_time and close_time are local wall-clock times without tzinfo")
        if not self.open_time < self.close_time:
            raise ValueError("open_time must be before close_time (sessions within one day)")
        holidays: Iterable[object] = self.holidays
        for day in holidays:
            if not isinstance(day, date) or isinstance(day, datetime):
                raise ValueError(f"holidays must be dates, got {day!r}")
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "_zone", ZoneInfo(self.tz))

    # -- days ---------------------------------------------------------------------------------

    def is_trading_day(self, day: date) -> bool:
        """True if ``day`` has a session (every day when ``always_open``)."""
        if self.always_open:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def session(self, day: date) -> tuple[int, int] | None:
        """Open and close (ns since epoch, UTC) of ``day``'s session; None if not a trading day."""
        if self.always_open:
            start = (day - _EPOCH_DATE).days * DAY_NS
            return start, start + DAY_NS
        if not self.is_trading_day(day):
            return None
        opens = datetime.combine(day, self.open_time, tzinfo=self._zone)
        closes = datetime.combine(day, self.close_time, tzinfo=self._zone)
        return _to_ns(opens), _to_ns(closes)

    def previous_trading_day(self, day: date) -> date:
        """The last trading day strictly before ``day``."""
        for _ in range(MAX_SEARCH_DAYS):
            day -= _ONE_DAY
            if self.is_trading_day(day):
                return day
        raise ValueError(f"no trading day within {MAX_SEARCH_DAYS} days before {day}")

    def next_trading_day(self, day: date) -> date:
        """The first trading day strictly after ``day``."""
        for _ in range(MAX_SEARCH_DAYS):
            day += _ONE_DAY
            if self.is_trading_day(day):
                return day
        raise ValueError(f"no trading day within {MAX_SEARCH_DAYS} days after {day}")

    def trading_days(self, start: date, end: date) -> list[date]:
        """Trading days from ``start`` to ``end``, both inclusive, in order ([] if end < start)."""
        days: list[date] = []
        day = start
        while day <= end:
            if self.is_trading_day(day):
                days.append(day)
            day += _ONE_DAY
        return days

    def last_n_trading_days(self, day: date, n: int) -> list[date]:
        """The ``n`` trading days up to ``day`` (inclusive if it is one), oldest first.

        E.g. the five-day window of the pattern-day-trader rule.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        days: list[date] = []
        if n and self.is_trading_day(day):
            days.append(day)
        while len(days) < n:
            day = self.previous_trading_day(day)
            days.append(day)
        days.reverse()
        return days

    @staticmethod
    def day_number(day: date) -> int:
        """``day`` as the integer YYYYMMDD (the form ledgers and trackers store)."""
        return day.year * 10_000 + day.month * 100 + day.day

    @staticmethod
    def day_from_number(number: int) -> date:
        """The date of a YYYYMMDD integer (inverse of :meth:`day_number`)."""
        return date(number // 10_000, number // 100 % 100, number % 100)

    # -- instants -----------------------------------------------------------------------------

    def _local_date(self, now_ns: int) -> date:
        if self.always_open:
            return _EPOCH_DATE + timedelta(days=now_ns // DAY_NS)
        return _from_ns(now_ns).astimezone(self._zone).date()

    def is_open(self, now_ns: int) -> bool:
        """True if ``now_ns`` is within a session (open inclusive, close exclusive)."""
        if self.always_open:
            return True
        bounds = self.session(self._local_date(now_ns))
        return bounds is not None and bounds[0] <= now_ns < bounds[1]

    def _first_session(self, now_ns: int, index: int) -> tuple[date, int]:
        """The first session whose bound ``index`` (0 open, 1 close) is after ``now_ns``."""
        day = self._local_date(now_ns)
        for _ in range(MAX_SEARCH_DAYS):
            bounds = self.session(day)
            if bounds is not None and bounds[index] > now_ns:
                return day, bounds[index]
            day += _ONE_DAY
        raise ValueError(f"no session within {MAX_SEARCH_DAYS} days")

    def next_open(self, now_ns: int) -> int:
        """The first session open strictly after ``now_ns`` (the next day's while open).

        When ``always_open``: the next midnight UTC (the start of the next day's session).
        """
        return self._first_session(now_ns, 0)[1]

    def next_close(self, now_ns: int) -> int:
        """The first session close strictly after ``now_ns`` (today's while open).

        When ``always_open``: the next midnight UTC.
        """
        return self._first_session(now_ns, 1)[1]

    def clock(self, now_ns: int) -> tuple[bool, int, int]:
        """Alpaca's clock at ``now_ns``: (is open, next open, next close), ns since the epoch.

        As at Alpaca, while open the next close comes first and the next open is the following
        session's; while closed the next open comes first. When ``always_open`` the sessions
        touch (one ends at midnight UTC as the next begins), so the next close is given as the
        last instant of the current trading day (23:59:59.999999999, the close
        ``/v2/calendar`` shows as 23:59) and the next open as midnight: the two differ, in
        Alpaca's order.
        """
        is_open = self.is_open(now_ns)
        next_open, next_close = self.next_open(now_ns), self.next_close(now_ns)
        if self.always_open:
            next_close -= 1
        return is_open, next_open, next_close

    def trading_day(self, now_ns: int) -> date:
        """The trading day ``now_ns`` belongs to.

        Within a session: that session's day. Outside one: the next trading day, i.e. the day of
        the next session to open (before the open on a trading day that is the same day; after the
        close, at a weekend or on a holiday it is a later day). When ``always_open``: the UTC date.
        """
        return self._first_session(now_ns, 1)[0]
