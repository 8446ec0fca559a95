"""Business-hours arithmetic: how much of a span falls in a calendar's open hours, and when a budget of them runs out.

Pure Python. Open hours are local wall-clock intervals; each one is turned into a UTC interval for its own local date,
so daylight-saving switches shorten or lengthen a day exactly as the clocks on the wall do.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from replyclock.models.domain import BusinessCalendar

# A calendar with no open hours for this long is misconfigured (every open weekday a holiday); stop rather than loop.
MAX_DAYS_WITHOUT_OPEN_HOURS = 3660

_ONE_DAY = timedelta(days=1)
_ONE_SECOND = timedelta(seconds=1)
_NO_TIME = timedelta(0)

# Local (start, end) offsets from midnight of one open interval; end may be a full 24 h.
_LocalInterval = tuple[timedelta, timedelta]


def business_seconds(start: datetime, end: datetime, calendar: BusinessCalendar) -> float:
    """Seconds of [start, end) inside the calendar's open hours, excluding holidays; 0 when end <= start."""
    start_utc = _as_utc(start, "start")
    end_utc = _as_utc(end, "end")
    if end_utc <= start_utc:
        return 0.0
    schedule = _Schedule.of(calendar)
    # The previous local date is included because, being monotonic, the local->UTC mapping can only place its
    # intervals at or before local midnight; starting a day early costs nothing and rules out an off-by-one.
    day = start_utc.astimezone(schedule.zone).date() - _ONE_DAY
    last_day = end_utc.astimezone(schedule.zone).date()
    open_time = _NO_TIME
    while day <= last_day:
        for opens, closes in schedule.open_intervals(day):
            lower = max(opens, start_utc)
            upper = min(closes, end_utc)
            if upper > lower:
                open_time += upper - lower
        day += _ONE_DAY
    # timedelta sums are exact microseconds, so splitting a span never changes its total by float drift.
    return open_time / _ONE_SECOND


def add_business_seconds(start: datetime, seconds: float, calendar: BusinessCalendar) -> datetime:
    """The earliest instant `due` (UTC) with business_seconds(start, due, calendar) == seconds.

    `seconds` is rounded to whole microseconds. Zero returns `start` unchanged. Raises ValueError for a negative or
    non-finite budget, and when the calendar has no open hours for MAX_DAYS_WITHOUT_OPEN_HOURS days in a row.
    """
    start_utc = _as_utc(start, "start")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"business seconds must be a finite number >= 0, got {seconds!r}")
    remaining = timedelta(seconds=seconds)
    if remaining == _NO_TIME:
        return start
    schedule = _Schedule.of(calendar)
    day = start_utc.astimezone(schedule.zone).date() - _ONE_DAY
    days_without_open_hours = 0
    while True:
        found_open_hours = False
        for opens, closes in schedule.open_intervals(day):
            lower = max(opens, start_utc)
            if closes <= lower:
                continue
            found_open_hours = True
            available = closes - lower
            if remaining <= available:
                return lower + remaining
            remaining -= available
        days_without_open_hours = 0 if found_open_hours else days_without_open_hours + 1
        if days_without_open_hours >= MAX_DAYS_WITHOUT_OPEN_HOURS:
            raise ValueError(
                f"no open hours in the {MAX_DAYS_WITHOUT_OPEN_HOURS} days up to {day.isoformat()} "
                f"(timezone {calendar.timezone}); check the calendar's weekly_hours and holidays"
            )
        try:
            day += _ONE_DAY
        except OverflowError as error:
            raise ValueError(f"{seconds} business seconds from {start_utc.isoformat()} is past year 9999") from error


def _as_utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {moment!r}")
    return moment.astimezone(UTC)


@functools.lru_cache(maxsize=512)
def _country_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    # Imported here, not at the top: only calendars with a holiday country need it, and it costs ~15 ms
    # of every function's cold start (models.domain imports it lazily for the same reason).
    import holidays

    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year).keys())


_SCHEDULE_CACHE_SIZE = 256
_SCHEDULES: dict[int, tuple[BusinessCalendar, _Schedule]] = {}


@dataclass(frozen=True, slots=True)
class _Schedule:
    """A calendar prepared for day-by-day walking: intervals merged per weekday, holidays as sets."""

    zone: ZoneInfo
    week: tuple[tuple[_LocalInterval, ...], ...]
    explicit_holidays: frozenset[date]
    country: str | None
    subdivision: str | None

    @classmethod
    def of(cls, calendar: BusinessCalendar) -> _Schedule:
        # Every wait measures business time against its brand's calendar: prepare each calendar object once.
        cached = _SCHEDULES.get(id(calendar))
        if cached is not None and cached[0] is calendar:
            return cached[1]
        week = tuple(_merged_intervals(calendar, weekday) for weekday in range(7))
        schedule = cls(
            zone=calendar.zone,
            week=week,
            explicit_holidays=frozenset(calendar.holidays),
            country=calendar.holiday_country,
            subdivision=calendar.holiday_subdivision,
        )
        if len(_SCHEDULES) >= _SCHEDULE_CACHE_SIZE:
            _SCHEDULES.clear()
        # The calendar is kept with its schedule, so its id cannot be reused by another object meanwhile.
        _SCHEDULES[id(calendar)] = (calendar, schedule)
        return schedule

    def is_holiday(self, day: date) -> bool:
        if day in self.explicit_holidays:
            return True
        return self.country is not None and day in _country_holidays(self.country, self.subdivision, day.year)

    def open_intervals(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        """The UTC [opens, closes) intervals of one local date, in order and never overlapping."""
        local_intervals = self.week[day.weekday()]
        if not local_intervals or self.is_holiday(day):
            return
        midnight = datetime.combine(day, time())
        for opens, closes in local_intervals:
            yield self._to_utc(midnight + opens), self._to_utc(midnight + closes)

    def _to_utc(self, wall_time: datetime) -> datetime:
        # A wall time inside a spring-forward gap does not exist: it maps to the instant the clocks jump. An ambiguous
        # wall time in a fall-back fold maps to its first occurrence (fold=0). Both keep local->UTC monotonic, so
        # intervals never invert or overlap, and the result is the same on every run.
        utc = wall_time.replace(tzinfo=self.zone).astimezone(UTC)
        if utc.astimezone(self.zone).replace(tzinfo=None) == wall_time:
            return utc
        return self._gap_transition(wall_time)

    def _gap_transition(self, wall_time: datetime) -> datetime:
        # Both readings of a gap time bracket the transition; tz transitions fall on whole seconds, so bisect seconds.
        readings = [wall_time.replace(tzinfo=self.zone, fold=fold).astimezone(UTC) for fold in (0, 1)]
        before = math.floor(min(readings).timestamp())
        after = math.ceil(max(readings).timestamp())
        offset_after = datetime.fromtimestamp(after, self.zone).utcoffset()
        while after - before > 1:
            middle = (before + after) // 2
            if datetime.fromtimestamp(middle, self.zone).utcoffset() == offset_after:
                after = middle
            else:
                before = middle
        return datetime.fromtimestamp(after, UTC)


def _merged_intervals(calendar: BusinessCalendar, weekday: int) -> tuple[_LocalInterval, ...]:
    """Sorted, with overlapping or touching intervals joined so no stretch of time is counted twice."""
    spans = sorted(
        (
            _since_midnight(interval.start),
            timedelta(days=1) if interval.ends_at_midnight else _since_midnight(interval.end),
        )
        for interval in calendar.weekly_hours.get(weekday, [])
    )
    merged: list[_LocalInterval] = []
    for opens, closes in spans:
        if merged and opens <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], closes))
        else:
            merged.append((opens, closes))
    return tuple(merged)


def _since_midnight(moment: time) -> timedelta:
    return timedelta(hours=moment.hour, minutes=moment.minute, seconds=moment.second, microseconds=moment.microsecond)
