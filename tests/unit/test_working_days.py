"""Working days (England and Wales bank holidays, Europe/London dates): known answers
around Christmas and Easter 2026, and properties."""

from __future__ import annotations

import datetime as dt

import holidays
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.inbox import (
    DEFAULT_WORKING_DAYS,
    LONDON,
    add_working_days,
    due_at,
    due_date,
    is_working_day,
)

D = dt.date


def london(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=LONDON)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (D(2026, 12, 24), True),  # Thursday
        (D(2026, 12, 25), False),  # Christmas Day (Friday)
        (D(2026, 12, 26), False),  # Boxing Day, a Saturday
        (D(2026, 12, 28), False),  # Boxing Day (substitute day), Monday
        (D(2026, 12, 29), True),
        (D(2027, 1, 1), False),  # New Year's Day (Friday)
        (D(2026, 4, 3), False),  # Good Friday
        (D(2026, 4, 6), False),  # Easter Monday
        (D(2026, 4, 7), True),
        (D(2026, 5, 4), False),  # Early May bank holiday
        (D(2026, 5, 25), False),  # Spring bank holiday
        (D(2026, 8, 31), False),  # Summer bank holiday (England, not Scotland's)
        (D(2026, 8, 3), True),  # Scotland's summer bank holiday is not England's
        (D(2026, 11, 21), False),  # Saturday
        (D(2026, 11, 22), False),  # Sunday
        (D(2026, 11, 23), True),
        (D(2027, 12, 27), False),  # Christmas Day (substitute day)
        (D(2027, 12, 28), False),  # Boxing Day (substitute day)
    ],
)
def test_working_days_are_weekdays_that_are_not_bank_holidays(day: D, working: bool) -> None:
    assert is_working_day(day) is working


@pytest.mark.parametrize(
    ("routed", "days", "due"),
    [
        # Christmas 2026: Fri 25 and Mon 28 (Boxing Day substitute) are bank holidays.
        (london(2026, 12, 24), 1, D(2026, 12, 29)),
        (london(2026, 12, 24), 3, D(2026, 12, 31)),
        (london(2026, 12, 24), 4, D(2027, 1, 4)),  # past New Year's Day
        (london(2026, 12, 24), 10, D(2027, 1, 12)),
        (london(2026, 12, 23), 2, D(2026, 12, 29)),
        # Easter 2026: Good Friday 3 April, Easter Monday 6 April.
        (london(2026, 4, 2), 1, D(2026, 4, 7)),
        (london(2026, 4, 2), 10, D(2026, 4, 20)),
        (london(2026, 4, 1), 2, D(2026, 4, 7)),
        (london(2026, 4, 4), 1, D(2026, 4, 7)),  # routed on Easter Saturday
        # An ordinary fortnight.
        (london(2026, 11, 2), 10, D(2026, 11, 16)),
        (london(2026, 11, 6, 17, 30), 1, D(2026, 11, 9)),  # Friday evening -> Monday
        (london(2026, 11, 7), 1, D(2026, 11, 9)),  # a Saturday: Monday is the first
    ],
)
def test_due_date_known_answers(routed: dt.datetime, days: int, due: D) -> None:
    assert due_date(routed, days) == due


def test_days_are_counted_in_london_dates_not_utc() -> None:
    # 23:30 UTC on Tuesday 30 June 2026 is 00:30 BST on Wednesday 1 July in England.
    routed = dt.datetime(2026, 6, 30, 23, 30, tzinfo=dt.UTC)
    assert due_date(routed, 1) == D(2026, 7, 2)
    # In winter London is on UTC: the same clock time stays on the Tuesday.
    assert due_date(dt.datetime(2026, 12, 1, 23, 30, tzinfo=dt.UTC), 1) == D(2026, 12, 2)


def test_due_at_is_the_start_of_the_london_day_after_the_due_date() -> None:
    # Due Tuesday 12 January 2027 (GMT): overdue from 00:00 on the 13th, 00:00 UTC.
    assert due_at(london(2026, 12, 24), 10) == dt.datetime(2027, 1, 13, tzinfo=dt.UTC)
    # Due Monday 20 April 2026 (BST): overdue from 00:00 BST on the 21st, 23:00 UTC.
    assert due_at(london(2026, 4, 2), 10) == dt.datetime(2026, 4, 20, 23, tzinfo=dt.UTC)
    assert due_at(london(2026, 4, 2), 10).tzinfo is dt.UTC


def test_the_default_is_ten_working_days() -> None:
    assert DEFAULT_WORKING_DAYS == 10
    assert due_date(london(2026, 11, 2)) == D(2026, 11, 16)


@pytest.mark.parametrize("days", [0, -1])
def test_fewer_than_one_working_day_is_refused(days: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        add_working_days(D(2026, 11, 2), days)


# hypothesis takes naive bounds and attaches the time zone itself.
instants = st.datetimes(
    min_value=dt.datetime(2001, 1, 1),  # noqa: DTZ001
    max_value=dt.datetime(2098, 12, 1),  # noqa: DTZ001
    timezones=st.just(dt.UTC),
)
day_counts = st.integers(min_value=1, max_value=60)


@given(instants, day_counts)
def test_due_date_is_a_working_day_never_a_weekend_or_bank_holiday(
    routed: dt.datetime, days: int
) -> None:
    due = due_date(routed, days)
    assert is_working_day(due)
    assert due.weekday() < 5
    assert due not in holidays.country_holidays("GB", subdiv="ENG", years=due.year)


@given(instants, day_counts)
def test_exactly_n_working_days_fall_after_the_routed_day_up_to_the_due_date(
    routed: dt.datetime, days: int
) -> None:
    start = routed.astimezone(LONDON).date()
    due = due_date(routed, days)
    assert due > start
    span = [start + dt.timedelta(days=i) for i in range(1, (due - start).days + 1)]
    assert sum(is_working_day(day) for day in span) == days


@given(instants, instants, day_counts)
def test_due_date_is_monotone_in_the_routing_time(
    first: dt.datetime, second: dt.datetime, days: int
) -> None:
    early, late = sorted((first, second))
    assert due_date(early, days) <= due_date(late, days)
    assert due_at(early, days) <= due_at(late, days)


@given(instants, day_counts, day_counts)
def test_due_date_is_strictly_monotone_in_the_working_days(
    routed: dt.datetime, one: int, other: int
) -> None:
    fewer, more = sorted((one, other))
    if fewer < more:
        assert due_date(routed, fewer) < due_date(routed, more)
    else:
        assert due_date(routed, fewer) == due_date(routed, more)


@given(instants, day_counts)
def test_a_finding_is_never_due_before_it_was_routed(routed: dt.datetime, days: int) -> None:
    assert due_at(routed, days) > routed
    # and at least `days` calendar days later, plus the rest of the routing day
    assert due_at(routed, days) - routed > dt.timedelta(days=days)
