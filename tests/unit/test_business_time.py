"""Specification of business-hours arithmetic: business_seconds and add_business_seconds."""

from __future__ import annotations

import time as stopwatch
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replyclock.logic.business_time import MAX_DAYS_WITHOUT_OPEN_HOURS, add_business_seconds, business_seconds
from replyclock.models.domain import BusinessCalendar, OpenInterval

HOUR = 3600.0
WEEKDAYS = range(5)
EVERY_DAY = range(7)


def make_calendar(
    timezone: str = "Europe/London",
    hours: tuple[tuple[str, str], ...] = (("09:00", "17:00"),),
    days: range | tuple[int, ...] = WEEKDAYS,
    holidays: tuple[date, ...] = (),
    holiday_country: str | None = None,
) -> BusinessCalendar:
    intervals = [OpenInterval.model_validate({"start": start, "end": end}) for start, end in hours]
    return BusinessCalendar(
        timezone=timezone,
        weekly_hours={day: list(intervals) for day in days},
        holidays=list(holidays),
        holiday_country=holiday_country,
    )


def local(timezone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An aware UTC datetime for a wall-clock time in a timezone (first occurrence if ambiguous)."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


LONDON = "Europe/London"
NINE_TO_FIVE = make_calendar(LONDON)
ROUND_THE_CLOCK = (("00:00", "24:00"),)


# --- business_seconds -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected_hours"),
    [
        pytest.param(
            local(LONDON, 2026, 11, 18, 10), local(LONDON, 2026, 11, 18, 12), 2, id="inside one open interval"
        ),
        pytest.param(local(LONDON, 2026, 11, 18, 7), local(LONDON, 2026, 11, 18, 8), 0, id="before opening"),
        pytest.param(local(LONDON, 2026, 11, 18, 7), local(LONDON, 2026, 11, 18, 10), 1, id="from before opening"),
        pytest.param(local(LONDON, 2026, 11, 18, 16), local(LONDON, 2026, 11, 18, 20), 1, id="past closing"),
        pytest.param(local(LONDON, 2026, 11, 18, 16), local(LONDON, 2026, 11, 19, 10), 2, id="overnight"),
        pytest.param(local(LONDON, 2026, 11, 20, 16), local(LONDON, 2026, 11, 23, 10), 2, id="across a weekend"),
        pytest.param(local(LONDON, 2026, 11, 21, 9), local(LONDON, 2026, 11, 22, 17), 0, id="within a weekend"),
        pytest.param(local(LONDON, 2026, 11, 16), local(LONDON, 2026, 11, 23), 40, id="a whole week"),
    ],
)
def test_counts_only_the_open_hours_of_a_span(start: datetime, end: datetime, expected_hours: float) -> None:
    assert business_seconds(start, end, NINE_TO_FIVE) == expected_hours * HOUR


@pytest.mark.parametrize("offset", [timedelta(0), -timedelta(hours=3)], ids=["empty span", "end before start"])
def test_a_span_that_does_not_move_forward_has_no_business_time(offset: timedelta) -> None:
    start = local(LONDON, 2026, 11, 18, 10)

    assert business_seconds(start, start + offset, NINE_TO_FIVE) == 0.0


def test_overnight_wait_counts_the_evening_and_the_next_morning() -> None:
    # Given a wait from 16:00 to 10:00 the next working day
    start, end = local(LONDON, 2026, 11, 18, 16), local(LONDON, 2026, 11, 19, 10)

    # Then one hour before closing and one after opening count
    assert business_seconds(start, end, NINE_TO_FIVE) == 2 * HOUR


def test_weekend_is_skipped() -> None:
    # Given a wait from Friday 16:00 to Monday 10:00
    start, end = local(LONDON, 2026, 11, 20, 16), local(LONDON, 2026, 11, 23, 10)

    assert business_seconds(start, end, NINE_TO_FIVE) == 2 * HOUR


def test_an_explicit_holiday_date_is_closed_all_day() -> None:
    # Given Wednesday 2026-11-18 is declared a holiday
    calendar = make_calendar(LONDON, holidays=(date(2026, 11, 18),))

    # When a wait runs from Tuesday 16:00 to Thursday 10:00
    waited = business_seconds(local(LONDON, 2026, 11, 17, 16), local(LONDON, 2026, 11, 19, 10), calendar)

    # Then Wednesday contributes nothing
    assert waited == 2 * HOUR


@pytest.mark.parametrize(
    ("holiday_country", "expected_hours"),
    [pytest.param(None, 8, id="no holiday country"), pytest.param("GB", 0, id="GB observes Christmas")],
)
def test_holidays_come_from_the_country_code(holiday_country: str | None, expected_hours: float) -> None:
    # Given Friday 2026-12-25
    calendar = make_calendar(LONDON, holiday_country=holiday_country)

    waited = business_seconds(local(LONDON, 2026, 12, 25), local(LONDON, 2026, 12, 26), calendar)

    assert waited == expected_hours * HOUR


def test_country_holidays_include_observed_substitute_days() -> None:
    # Given Boxing Day 2026 falls on a Saturday, so GB observes it on Monday 2026-12-28
    calendar = make_calendar(LONDON, holiday_country="GB")

    # When a wait runs from Thursday 24th 16:00 to Tuesday 29th 10:00
    waited = business_seconds(local(LONDON, 2026, 12, 24, 16), local(LONDON, 2026, 12, 29, 10), calendar)

    # Then only the hour before Christmas closing and the first hour of Tuesday count
    assert waited == 2 * HOUR


@pytest.mark.parametrize(
    ("timezone", "switch_day", "round_the_clock_hours"),
    [
        pytest.param("Europe/London", date(2026, 3, 29), 23, id="London spring forward"),
        pytest.param("Europe/London", date(2026, 10, 25), 25, id="London fall back"),
        pytest.param("America/New_York", date(2026, 3, 8), 23, id="New York spring forward"),
        pytest.param("America/New_York", date(2026, 11, 1), 25, id="New York fall back"),
    ],
)
@pytest.mark.parametrize("hours_kind", ["24h", "9-17"])
def test_a_dst_switch_day_lasts_as_long_as_the_wall_clock_says(
    timezone: str, switch_day: date, round_the_clock_hours: float, hours_kind: str
) -> None:
    # Given a calendar open every day, either round the clock or 09:00-17:00
    hours = ROUND_THE_CLOCK if hours_kind == "24h" else (("09:00", "17:00"),)
    calendar = make_calendar(timezone, hours=hours, days=EVERY_DAY)
    next_day = switch_day + timedelta(days=1)

    # When measuring from local midnight to local midnight on the switch day
    waited = business_seconds(
        local(timezone, switch_day.year, switch_day.month, switch_day.day),
        local(timezone, next_day.year, next_day.month, next_day.day),
        calendar,
    )

    # Then a 24h day has 23 or 25 hours, while 09:00-17:00 is unaffected by a switch at night
    assert waited == (round_the_clock_hours if hours_kind == "24h" else 8) * HOUR


def test_an_interval_ending_at_2400_runs_to_the_next_midnight() -> None:
    # Given evenings open until midnight and mornings open from midnight
    calendar = BusinessCalendar(
        timezone=LONDON,
        weekly_hours={
            0: [OpenInterval.model_validate({"start": "18:00", "end": "24:00"})],
            1: [OpenInterval.model_validate({"start": "00:00", "end": "06:00"})],
        },
    )

    # When a wait runs from Monday 17:00 to Tuesday 07:00
    waited = business_seconds(local(LONDON, 2026, 11, 16, 17), local(LONDON, 2026, 11, 17, 7), calendar)

    # Then Monday evening and Tuesday morning join seamlessly
    assert waited == 12 * HOUR


def test_a_split_shift_counts_both_parts_and_not_the_break() -> None:
    calendar = make_calendar(LONDON, hours=(("09:00", "12:00"), ("13:00", "17:00")))

    waited = business_seconds(local(LONDON, 2026, 11, 18), local(LONDON, 2026, 11, 19), calendar)

    assert waited == 7 * HOUR


def test_overlapping_intervals_are_counted_once() -> None:
    calendar = make_calendar(LONDON, hours=(("12:00", "17:00"), ("09:00", "13:00")))

    waited = business_seconds(local(LONDON, 2026, 11, 18), local(LONDON, 2026, 11, 19), calendar)

    assert waited == 8 * HOUR


def test_a_wall_time_in_the_spring_forward_gap_opens_when_the_clocks_jump() -> None:
    # Given Sunday hours 01:30-03:00 in London, where 01:00-02:00 does not exist on 2026-03-29
    calendar = make_calendar(LONDON, hours=(("01:30", "03:00"),), days=(6,))

    waited = business_seconds(datetime(2026, 3, 29, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC), calendar)

    # Then the interval runs from the jump (01:00 UTC, 02:00 BST) to 03:00 BST
    assert waited == 1 * HOUR


def test_an_ambiguous_wall_time_in_the_fall_back_fold_means_its_first_occurrence() -> None:
    # Given Sunday hours 01:30-03:00 in London, where 01:00-02:00 happens twice on 2026-10-25
    calendar = make_calendar(LONDON, hours=(("01:30", "03:00"),), days=(6,))

    waited = business_seconds(datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 26, tzinfo=UTC), calendar)

    # Then it opens at the first 01:30 (BST, 00:30 UTC) and closes at 03:00 GMT
    assert waited == 2.5 * HOUR


def test_non_utc_aware_inputs_are_accepted() -> None:
    zone = ZoneInfo(LONDON)
    start, end = datetime(2026, 11, 18, 10, tzinfo=zone), datetime(2026, 11, 18, 12, tzinfo=zone)

    assert business_seconds(start, end, NINE_TO_FIVE) == 2 * HOUR


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        business_seconds(datetime(2026, 11, 18, 10), datetime(2026, 11, 18, 12, tzinfo=UTC), NINE_TO_FIVE)


def test_a_three_year_span_is_fast() -> None:
    # Given a calendar with country holidays, and its holiday cache already warm
    calendar = make_calendar(LONDON, holiday_country="GB")
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    business_seconds(start, end, calendar)

    # When measuring three years, best of a few runs to ignore scheduler noise
    timings = []
    for _ in range(5):
        began = stopwatch.perf_counter()
        business_seconds(start, end, calendar)
        timings.append(stopwatch.perf_counter() - began)

    assert min(timings) < 0.05


# --- add_business_seconds ---------------------------------------------------------------------------------------


def test_a_wait_opened_after_friday_closing_is_due_on_monday_morning() -> None:
    # Given a Mon-Fri 09:00-17:00 London calendar and a wait opened Friday 2026-11-20 at 17:55
    start = local(LONDON, 2026, 11, 20, 17, 55)

    # When 30 business minutes are allowed
    due = add_business_seconds(start, 30 * 60, NINE_TO_FIVE)

    # Then it is due Monday 2026-11-23 at 09:30
    assert due == local(LONDON, 2026, 11, 23, 9, 30)


@pytest.mark.parametrize(
    ("start", "hours", "expected_due"),
    [
        pytest.param(local(LONDON, 2026, 11, 18, 10), 2, local(LONDON, 2026, 11, 18, 12), id="same interval"),
        pytest.param(local(LONDON, 2026, 11, 18, 16), 2, local(LONDON, 2026, 11, 19, 10), id="overnight"),
        pytest.param(local(LONDON, 2026, 11, 18, 7), 1, local(LONDON, 2026, 11, 18, 10), id="before opening"),
        pytest.param(local(LONDON, 2026, 11, 18, 10), 7, local(LONDON, 2026, 11, 18, 17), id="exactly at closing"),
        pytest.param(local(LONDON, 2026, 11, 16, 9), 40, local(LONDON, 2026, 11, 20, 17), id="a whole week"),
    ],
)
def test_the_due_time_walks_forward_through_open_hours(start: datetime, hours: float, expected_due: datetime) -> None:
    assert add_business_seconds(start, hours * HOUR, NINE_TO_FIVE) == expected_due


def test_a_split_shift_due_time_skips_the_break() -> None:
    calendar = make_calendar(LONDON, hours=(("09:00", "12:00"), ("13:00", "17:00")))

    due = add_business_seconds(local(LONDON, 2026, 11, 18, 11, 30), HOUR, calendar)

    assert due == local(LONDON, 2026, 11, 18, 13, 30)


def test_a_due_time_skips_country_holidays() -> None:
    # Given Thursday 2026-12-24 16:30 and GB holidays on Friday 25th and Monday 28th
    calendar = make_calendar(LONDON, holiday_country="GB")

    due = add_business_seconds(local(LONDON, 2026, 12, 24, 16, 30), HOUR, calendar)

    assert due == local(LONDON, 2026, 12, 29, 9, 30)


def test_a_due_time_runs_past_midnight_on_a_2400_interval() -> None:
    calendar = make_calendar(LONDON, hours=(("18:00", "24:00"),), days=EVERY_DAY)

    due = add_business_seconds(local(LONDON, 2026, 11, 18, 23), 2 * HOUR, calendar)

    assert due == local(LONDON, 2026, 11, 19, 19)


def test_zero_seconds_returns_the_start_unchanged() -> None:
    start = datetime(2026, 11, 21, 3, tzinfo=ZoneInfo(LONDON))

    assert add_business_seconds(start, 0, NINE_TO_FIVE) is start


@pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf")])
def test_a_negative_or_non_finite_budget_is_rejected(seconds: float) -> None:
    with pytest.raises(ValueError, match="finite number >= 0"):
        add_business_seconds(local(LONDON, 2026, 11, 18, 10), seconds, NINE_TO_FIVE)


def test_a_calendar_without_open_hours_for_ten_years_is_an_error() -> None:
    # Given a calendar open only on Mondays, with every Monday for the next eleven years a holiday
    first_monday = date(2026, 11, 16)
    mondays = tuple(first_monday + timedelta(weeks=week) for week in range(MAX_DAYS_WITHOUT_OPEN_HOURS // 7 + 60))
    calendar = make_calendar(LONDON, days=(0,), holidays=mondays)

    # Then no due time can be found
    with pytest.raises(ValueError, match="no open hours in the 3660 days"):
        add_business_seconds(local(LONDON, 2026, 11, 16, 8), HOUR, calendar)


# --- properties -------------------------------------------------------------------------------------------------

PROPERTY_CALENDARS = [
    NINE_TO_FIVE,
    make_calendar("America/New_York", hours=ROUND_THE_CLOCK, days=EVERY_DAY),
    # Interval ends inside DST gaps and folds (both zones switch on Sundays).
    make_calendar("America/New_York", hours=(("01:30", "02:15"), ("02:30", "03:15"), ("09:00", "17:00")), days=(6,)),
    make_calendar("Australia/Lord_Howe", hours=(("01:45", "02:15"), ("08:30", "24:00")), days=(0, 2, 3, 6)),
    make_calendar("Europe/London", hours=(("00:30", "01:30"), ("22:00", "24:00")), days=EVERY_DAY),
    make_calendar("Asia/Kolkata", holiday_country="IN"),
    make_calendar("UTC", hours=(("09:00", "17:00"),), days=(6,), holidays=(date(2026, 3, 1),)),
]

instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC))
budgets = st.one_of(
    st.floats(min_value=0, max_value=1e7, allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=400).map(lambda quarter_hours: quarter_hours * 900.0),
)


@settings(deadline=None, max_examples=300)
@given(start=instants, seconds=budgets, calendar=st.sampled_from(PROPERTY_CALENDARS))
def test_the_due_time_consumes_exactly_the_budget(start: datetime, seconds: float, calendar: BusinessCalendar) -> None:
    due = add_business_seconds(start, seconds, calendar)

    assert business_seconds(start, due, calendar) == pytest.approx(seconds, abs=1e-6)


@settings(deadline=None, max_examples=300)
@given(start=instants, seconds=budgets, calendar=st.sampled_from(PROPERTY_CALENDARS))
def test_the_due_time_is_the_earliest_such_instant(start: datetime, seconds: float, calendar: BusinessCalendar) -> None:
    due = add_business_seconds(start, seconds, calendar)

    if seconds >= 1e-6:
        assert business_seconds(start, due - timedelta(microseconds=1), calendar) < seconds


@settings(deadline=None, max_examples=300)
@given(moments=st.lists(instants, min_size=3, max_size=3), calendar=st.sampled_from(PROPERTY_CALENDARS))
def test_business_time_of_a_span_is_the_sum_of_its_parts(moments: list[datetime], calendar: BusinessCalendar) -> None:
    first, middle, last = sorted(moments)

    whole = business_seconds(first, last, calendar)

    assert whole == pytest.approx(
        business_seconds(first, middle, calendar) + business_seconds(middle, last, calendar), abs=1e-6
    )
    assert 0 <= whole <= (last - first).total_seconds()
