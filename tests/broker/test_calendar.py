"""Tests of the market calendar: sessions across DST, weekends, holidays, and always-open mode."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfoNotFoundError

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tradingfloor.broker.calendar as calendar_mod
from tradingfloor.broker.calendar import DAY_NS, MarketCalendar

NYSE = MarketCalendar(holidays=frozenset({date(2026, 7, 3), date(2026, 12, 25)}))
DEMO = MarketCalendar(always_open=True)
MINUTE_NS = 60 * 10**9


def ns(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """An instant given in UTC, as ns since the epoch (exact integer arithmetic)."""
    delta = datetime(year, month, day, hour, minute, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 10**9


def test_public_api() -> None:
    assert sorted(calendar_mod.__all__) == ["DAY_NS", "MAX_SEARCH_DAYS", "MarketCalendar"]


@pytest.mark.parametrize(
    ("day", "opens", "closes"),
    [
        (date(2026, 3, 6), (14, 30), (21, 0)),  # Friday before DST starts: EST, UTC-5
        (date(2026, 3, 9), (13, 30), (20, 0)),  # Monday after DST starts (8 March): EDT, UTC-4
        (date(2026, 10, 30), (13, 30), (20, 0)),  # Friday before DST ends (1 November)
        (date(2026, 11, 2), (14, 30), (21, 0)),  # Monday after
        (date(2026, 6, 15), (13, 30), (20, 0)),
    ],
)
def test_session_times_follow_daylight_saving(
    day: date, opens: tuple[int, int], closes: tuple[int, int]
) -> None:
    expected = (ns(day.year, day.month, day.day, *opens), ns(day.year, day.month, day.day, *closes))
    assert NYSE.session(day) == expected


def test_weekends_and_holidays_have_no_session() -> None:
    assert NYSE.session(date(2026, 3, 7)) is None  # Saturday
    assert NYSE.session(date(2026, 3, 8)) is None  # Sunday
    assert NYSE.session(date(2026, 7, 3)) is None  # holiday (a Friday)
    assert not NYSE.is_trading_day(date(2026, 12, 25))
    assert NYSE.is_trading_day(date(2026, 12, 24))
    assert MarketCalendar().session(date(2026, 7, 3)) is not None  # no holidays given


def test_is_open_boundaries() -> None:
    opens, closes = ns(2026, 3, 9, 13, 30), ns(2026, 3, 9, 20, 0)
    assert not NYSE.is_open(opens - 1)
    assert NYSE.is_open(opens)
    assert NYSE.is_open(closes - 1)
    assert not NYSE.is_open(closes)
    assert not NYSE.is_open(ns(2026, 3, 7, 15, 0))  # Saturday
    assert not NYSE.is_open(ns(2026, 7, 3, 15, 0))  # holiday


def test_next_open_and_close() -> None:
    monday_open, monday_close = ns(2026, 3, 9, 13, 30), ns(2026, 3, 9, 20, 0)
    tuesday_open = ns(2026, 3, 10, 13, 30)
    before = ns(2026, 3, 9, 12, 0)
    assert (NYSE.next_open(before), NYSE.next_close(before)) == (monday_open, monday_close)
    during = ns(2026, 3, 9, 15, 0)
    assert (NYSE.next_open(during), NYSE.next_close(during)) == (tuesday_open, monday_close)
    assert NYSE.next_open(monday_open) == tuesday_open  # strictly after
    assert NYSE.next_close(monday_close) == ns(2026, 3, 10, 20, 0)
    friday_evening = ns(2026, 3, 6, 22, 0)  # the weekend spans the DST change
    assert NYSE.next_open(friday_evening) == monday_open
    assert NYSE.next_close(friday_evening) == monday_close
    assert NYSE.next_open(ns(2026, 7, 2, 21, 0)) == ns(2026, 7, 6, 13, 30)  # over the holiday
    late_utc = ns(2026, 3, 10, 2, 0)  # Monday 22:00 in New York, already Tuesday in UTC
    assert NYSE.next_open(late_utc) == tuesday_open


def test_trading_day_of_an_instant() -> None:
    monday = date(2026, 3, 9)
    assert NYSE.trading_day(ns(2026, 3, 9, 12, 0)) == monday  # before the open: today
    assert NYSE.trading_day(ns(2026, 3, 9, 15, 0)) == monday
    assert NYSE.trading_day(ns(2026, 3, 9, 20, 0)) == date(2026, 3, 10)  # after the close
    assert NYSE.trading_day(ns(2026, 3, 7, 15, 0)) == monday  # Saturday
    assert NYSE.trading_day(ns(2026, 3, 6, 23, 0)) == monday  # Friday evening
    assert NYSE.trading_day(ns(2026, 7, 3, 15, 0)) == date(2026, 7, 6)  # holiday


def test_trading_day_lists() -> None:
    assert NYSE.previous_trading_day(date(2026, 3, 9)) == date(2026, 3, 6)
    assert NYSE.previous_trading_day(date(2026, 7, 6)) == date(2026, 7, 2)
    assert NYSE.next_trading_day(date(2026, 7, 2)) == date(2026, 7, 6)
    assert NYSE.trading_days(date(2026, 7, 1), date(2026, 7, 7)) == [
        date(2026, 7, 1),
        date(2026, 7, 2),
        date(2026, 7, 6),
        date(2026, 7, 7),
    ]
    assert NYSE.trading_days(date(2026, 7, 7), date(2026, 7, 1)) == []
    assert NYSE.last_n_trading_days(date(2026, 7, 7), 5) == [  # the PDT window over a holiday
        date(2026, 6, 30),
        date(2026, 7, 1),
        date(2026, 7, 2),
        date(2026, 7, 6),
        date(2026, 7, 7),
    ]
    assert NYSE.last_n_trading_days(date(2026, 3, 7), 3) == [  # a Saturday: up to Friday
        date(2026, 3, 4),
        date(2026, 3, 5),
        date(2026, 3, 6),
    ]
    assert NYSE.last_n_trading_days(date(2026, 3, 9), 0) == []
    with pytest.raises(ValueError):
        NYSE.last_n_trading_days(date(2026, 3, 9), -1)


def test_day_numbers() -> None:
    assert MarketCalendar.day_number(date(2026, 3, 9)) == 20260309
    assert NYSE.day_number(date(987, 12, 31)) == 9871231
    assert MarketCalendar.day_from_number(20260309) == date(2026, 3, 9)


def test_always_open_mode() -> None:
    saturday = date(2026, 3, 7)
    assert DEMO.session(saturday) == (ns(2026, 3, 7), ns(2026, 3, 8))
    assert DEMO.is_open(ns(2026, 3, 7, 3, 0))
    assert DEMO.is_trading_day(date(2026, 12, 25))
    now = ns(2026, 3, 7, 23, 59)
    assert DEMO.trading_day(now) == saturday
    assert DEMO.trading_day(ns(2026, 3, 8)) == date(2026, 3, 8)  # rolls at midnight UTC
    assert DEMO.next_open(now) == ns(2026, 3, 8)
    assert DEMO.next_close(now) == ns(2026, 3, 8)
    assert DEMO.next_close(ns(2026, 3, 8)) == ns(2026, 3, 9)
    assert DEMO.previous_trading_day(date(2026, 3, 9)) == date(2026, 3, 8)
    assert len(DEMO.trading_days(date(2026, 3, 1), date(2026, 3, 31))) == 31
    assert DEMO.last_n_trading_days(date(2026, 3, 9), 2) == [date(2026, 3, 8), date(2026, 3, 9)]
    assert DEMO.session(date(1969, 12, 31)) == (-DAY_NS, 0)
    assert DEMO.trading_day(-1) == date(1969, 12, 31)


def test_other_hours_and_zones() -> None:
    tokyo = MarketCalendar(open_time=time(9, 0), close_time=time(15, 0), tz="Asia/Tokyo")
    assert tokyo.session(date(2026, 3, 9)) == (ns(2026, 3, 9, 0, 0), ns(2026, 3, 9, 6, 0))
    assert tokyo.trading_day(ns(2026, 3, 8, 23, 0)) == date(2026, 3, 9)  # Monday 08:00 local


@pytest.mark.parametrize(
    "kwargs",
    [
        {"open_time": time(16, 0), "close_time": time(9, 30)},
        {"open_time": time(9, 30), "close_time": time(9, 30)},
        {"open_time": time(9, 30, tzinfo=UTC)},
        {"holidays": frozenset({datetime(2026, 7, 3)})},
    ],
)
def test_bad_calendars_raise(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        MarketCalendar(**kwargs)  # type: ignore[arg-type]


def test_unknown_zone_raises() -> None:
    with pytest.raises(ZoneInfoNotFoundError):
        MarketCalendar(tz="Mars/Olympus_Mons")


def test_holiday_calendar_search_is_bounded() -> None:
    start = date(2026, 1, 1)
    every_day = frozenset(start + timedelta(days=i) for i in range(4_000))
    closed = MarketCalendar(holidays=every_day)
    with pytest.raises(ValueError, match="no session"):
        closed.next_open(ns(2026, 1, 2))
    with pytest.raises(ValueError, match="no trading day"):
        closed.next_trading_day(start)


# -- properties ------------------------------------------------------------------------------------

instants = st.integers(min_value=ns(2020, 1, 1), max_value=ns(2031, 1, 1))


@settings(max_examples=300, deadline=None)
@given(instants)
def test_instant_properties(now: int) -> None:
    day = NYSE.trading_day(now)
    bounds = NYSE.session(day)
    assert bounds is not None
    opens, closes = bounds
    assert now < closes
    assert NYSE.is_open(now) == (opens <= now)
    assert NYSE.next_close(now) == closes
    previous = NYSE.session(NYSE.previous_trading_day(day))
    assert previous is not None and previous[1] <= now  # no session ends between
    following = NYSE.session(NYSE.next_trading_day(day))
    assert following is not None
    assert NYSE.next_open(now) == (opens if now < opens else following[0])
    assert closes - opens == 390 * MINUTE_NS  # 6.5 hours, DST or not
    assert (opens // MINUTE_NS) % (24 * 60) in (13 * 60 + 30, 14 * 60 + 30)


@settings(max_examples=200, deadline=None)
@given(instants)
def test_always_open_properties(now: int) -> None:
    day = DEMO.trading_day(now)
    bounds = DEMO.session(day)
    assert bounds is not None
    assert bounds[0] <= now < bounds[1]
    assert DEMO.next_open(now) == DEMO.next_close(now) == bounds[1]
    assert DEMO.day_from_number(DEMO.day_number(day)) == day


def test_clock_orders_next_open_and_close_as_alpaca_does() -> None:
    during = ns(2026, 3, 9, 15, 0)  # Monday, open
    assert NYSE.clock(during) == (True, ns(2026, 3, 10, 13, 30), ns(2026, 3, 9, 20, 0))
    weekend = ns(2026, 3, 7, 15, 0)
    assert NYSE.clock(weekend) == (False, ns(2026, 3, 9, 13, 30), ns(2026, 3, 9, 20, 0))
    # always open: sessions touch at midnight; the close is the day's last instant
    is_open, next_open, next_close = DEMO.clock(ns(2026, 3, 7, 12, 0))
    assert is_open and next_open == ns(2026, 3, 8) and next_close == ns(2026, 3, 8) - 1
    assert next_close < next_open
