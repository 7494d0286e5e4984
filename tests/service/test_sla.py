"""SLA time in the client's business calendar: business hours across a weekend, public
holidays of the client's country and region, closures, daylight-saving changes in the
client's zone, pauses, and 24/7 clocks.

Every expected instant is worked out by hand and written in UTC, so that a wrong
offset in the module under test cannot hide behind the same wrong offset here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.clock import controller_zone

from webmg_ops.config.contract import BusinessHours
from webmg_ops.service.sla import (
    BusinessCalendar,
    Span,
    due_at,
    elapsed,
    make_calendar,
)

VIENNA = "Europe/Vienna"
H = timedelta(hours=1)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def vienna(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=ZoneInfo(VIENNA))


def office(zone: str = VIENNA, **hours: object) -> BusinessCalendar:
    """Monday to Friday, 09:00-18:00 in ``zone``, with the given business hours' fields."""
    return make_calendar(BusinessHours.model_validate(hours), zone, around_the_clock=False)


@pytest.fixture
def controller_in_kiritimati() -> Iterator[None]:
    """The controller's own clock set to UTC+14, a day ahead of a client at UTC-10."""
    with controller_zone("Pacific/Kiritimati"):
        yield


@pytest.mark.usefixtures("controller_in_kiritimati")
def test_business_days_are_the_clients_whatever_the_controllers_zone() -> None:
    # Monday 08:00 in Honolulu (UTC-10) is already Tuesday on the controller's clock:
    # the business day that counts is still the client's Monday, opening at 09:00.
    honolulu = "Pacific/Honolulu"
    opened = datetime(2026, 11, 30, 8, 0, tzinfo=ZoneInfo(honolulu))
    assert due_at(office(honolulu), opened, H) == utc(2026, 11, 30, 20, 0)  # 10:00 local


def test_a_budget_runs_over_the_weekend_in_business_hours_only() -> None:
    """A business-hours clock stops at Friday's closing and goes on at Monday's opening."""
    # Friday 27 Nov 2026, 16:00 in Vienna (UTC+1): 2 h left that day, the other 2 h on Monday.
    opened = vienna(2026, 11, 27, 16, 0)
    assert due_at(office(), opened, 4 * H) == utc(2026, 11, 30, 10, 0)  # Monday 11:00 local
    # Friday 16:00 to Monday 10:00 local: two hours on Friday, one on Monday.
    assert elapsed(office(), opened, vienna(2026, 11, 30, 10, 0)) == 3 * H
    # Nothing counts on Saturday and Sunday.
    assert elapsed(office(), vienna(2026, 11, 28, 8, 0), vienna(2026, 11, 29, 23, 0)) == 0 * H


def test_a_clock_started_outside_business_hours_starts_at_the_next_opening() -> None:
    # Saturday evening: the first business hour is Monday 09:00 local (08:00 UTC).
    assert due_at(office(), vienna(2026, 11, 28, 20, 0), 30 * timedelta(minutes=1)) == utc(
        2026, 11, 30, 8, 30
    )


def test_a_public_holiday_of_the_clients_country_does_not_count() -> None:
    """A public holiday of the contract's country (the holidays package) counts no SLA time."""
    # Tuesday 8 December is a public holiday in Austria (Immaculate Conception).
    opened = vienna(2026, 12, 7, 17, 0)
    assert due_at(office(country="AT"), opened, 2 * H) == utc(2026, 12, 9, 9, 0)
    # Without the country the Tuesday is a business day like any other.
    assert due_at(office(), opened, 2 * H) == utc(2026, 12, 8, 9, 0)
    assert elapsed(office(country="AT"), opened, vienna(2026, 12, 8, 18, 0)) == 1 * H


def test_a_regional_holiday_counts_only_in_its_region() -> None:
    """A holiday of one region of the country counts only for a contract in that region."""
    # 6 January 2026 (a Tuesday) is Epiphany: a holiday in Bavaria, not in Berlin.
    berlin = "Europe/Berlin"
    opened = datetime(2026, 1, 5, 17, 0, tzinfo=ZoneInfo(berlin))
    bavaria = office(berlin, country="DE", region="BY")
    berlin_state = office(berlin, country="DE", region="BE")
    assert due_at(bavaria, opened, 2 * H) == utc(2026, 1, 7, 9, 0)
    assert due_at(berlin_state, opened, 2 * H) == utc(2026, 1, 6, 9, 0)


def test_a_closure_date_of_the_contract_does_not_count() -> None:
    opened = vienna(2026, 11, 30, 17, 0)  # Monday
    closed_tuesday = office(closures=[date(2026, 12, 1)])
    assert due_at(closed_tuesday, opened, 2 * H) == utc(2026, 12, 2, 9, 0)
    # With the country's holidays as well: Monday 7 December closed by the contract,
    # Tuesday 8 December a public holiday.
    both = office(country="AT", closures=[date(2026, 12, 7)])
    friday = vienna(2026, 12, 4, 17, 0)
    # Friday 17-18, then Wednesday 9th 09-10 local.
    assert due_at(both, friday, 2 * H) == utc(2026, 12, 9, 9, 0)


def test_business_hours_follow_the_local_clock_across_the_autumn_change() -> None:
    """Business hours open at the client's local time on both sides of a DST change."""
    # Vienna leaves summer time on Sunday 25 October 2026. Friday 17:00 is 15:00 UTC;
    # Monday opens at 09:00 local, now 08:00 UTC (not 07:00 as before the change).
    opened = vienna(2026, 10, 23, 17, 0)
    assert opened.astimezone(UTC) == utc(2026, 10, 23, 15, 0)
    assert due_at(office(), opened, 2 * H) == utc(2026, 10, 26, 9, 0)
    assert elapsed(office(), opened, utc(2026, 10, 26, 9, 0)) == 2 * H


def test_business_hours_follow_the_local_clock_across_the_spring_change() -> None:
    # New York enters daylight time on Sunday 8 March 2026: Friday 17:00 EST is 22:00
    # UTC, Monday 09:00 EDT is 13:00 UTC.
    york = "America/New_York"
    opened = datetime(2026, 3, 6, 17, 0, tzinfo=ZoneInfo(york))
    assert due_at(office(york), opened, 2 * H) == utc(2026, 3, 9, 14, 0)


@pytest.mark.parametrize(
    ("opened", "due"),
    [
        # The night of the autumn change has 25 hours: 6 h after 23:00 local is 04:00 local.
        (vienna(2026, 10, 24, 23, 0), utc(2026, 10, 25, 3, 0)),
        # The night of the spring change has 23 hours: 6 h after 23:00 local is 06:00 local.
        (vienna(2026, 3, 28, 23, 0), utc(2026, 3, 29, 4, 0)),
    ],
)
def test_a_247_clock_counts_elapsed_time_across_a_daylight_saving_change(
    opened: datetime, due: datetime
) -> None:
    """A 24/7 clock counts real elapsed time, whatever the wall clock does."""
    calendar = make_calendar(BusinessHours(), VIENNA, around_the_clock=True)
    assert due_at(calendar, opened, 6 * H) == due
    assert elapsed(calendar, opened, due) == 6 * H


def test_a_247_clock_counts_weekends_and_holidays() -> None:
    calendar = make_calendar(BusinessHours(country="AT"), VIENNA, around_the_clock=True)
    # Saturday 5 December 20:00 local to Tuesday 8 December (a holiday) 20:00: 72 hours.
    assert elapsed(calendar, vienna(2026, 12, 5, 20, 0), vienna(2026, 12, 8, 20, 0)) == 72 * H


def test_a_pause_stops_the_clock_and_a_resume_starts_it_again() -> None:
    """Time waiting on the client never counts; the due instant moves by the pause."""
    # Monday 09:00 local, 4 h budget; waiting on the client from 10:00 to 14:00.
    opened = vienna(2026, 11, 30, 9, 0)
    pause = Span(vienna(2026, 11, 30, 10, 0), vienna(2026, 11, 30, 14, 0))
    # One hour before the pause, three after it: due at 17:00 local (16:00 UTC).
    assert due_at(office(), opened, 4 * H, [pause]) == utc(2026, 11, 30, 16, 0)
    assert elapsed(office(), opened, vienna(2026, 11, 30, 15, 0), [pause]) == 2 * H


def test_while_a_pause_is_open_the_due_instant_is_unknown_and_time_stands_still() -> None:
    opened = vienna(2026, 11, 30, 9, 0)
    waiting = Span(vienna(2026, 11, 30, 10, 0), None)
    assert due_at(office(), opened, 4 * H, [waiting]) is None
    assert elapsed(office(), opened, vienna(2026, 12, 3, 12, 0), [waiting]) == 1 * H
    # A budget spent before the pause began is still due when it was spent.
    assert due_at(office(), opened, 30 * timedelta(minutes=1), [waiting]) == utc(
        2026, 11, 30, 8, 30
    )


def test_pauses_outside_business_hours_and_overlapping_pauses_count_once() -> None:
    opened = vienna(2026, 11, 27, 17, 0)  # Friday
    pauses = [
        Span(vienna(2026, 11, 28, 10, 0), vienna(2026, 11, 30, 9, 30)),  # weekend to Mon 09:30
        Span(vienna(2026, 11, 30, 9, 15), vienna(2026, 11, 30, 10, 0)),  # overlaps it
    ]
    # Friday 17-18 (1 h), Monday from 10:00: one more hour is due at 11:00 local.
    assert due_at(office(), opened, 2 * H, pauses) == utc(2026, 11, 30, 10, 0)


def test_a_budget_that_ends_at_closing_time_is_due_then_not_at_the_next_opening() -> None:
    """A budget spent exactly at closing time is due at closing time."""
    opened = vienna(2026, 11, 30, 9, 0)
    assert due_at(office(), opened, 9 * H) == utc(2026, 11, 30, 17, 0)  # 18:00 local


def test_a_day_of_budget_is_one_business_day_in_business_hours_and_24_h_otherwise() -> None:
    assert office().budget(timedelta(days=2)) == 18 * H  # 09:00-18:00
    assert office(start=time(8, 0), end=time(12, 30)).budget(timedelta(days=1, hours=1)) == (
        5 * H + 30 * timedelta(minutes=1)
    )
    calendar = make_calendar(BusinessHours(), VIENNA, around_the_clock=True)
    assert calendar.budget(timedelta(days=2)) == 48 * H
    # "2d" opened on Monday 10:00 is due on Wednesday 10:00.
    budget = office().budget(timedelta(days=2))
    assert due_at(office(), vienna(2026, 11, 30, 10, 0), budget) == utc(2026, 12, 2, 9, 0)


def test_business_weekdays_come_from_the_contract() -> None:
    # A shop open Tuesday to Saturday: Saturday counts, Monday does not.
    shop = office(weekdays=["tue", "wed", "thu", "fri", "sat"])
    assert elapsed(shop, vienna(2026, 11, 28, 0, 0), vienna(2026, 11, 29, 0, 0)) == 9 * H
    assert elapsed(shop, vienna(2026, 11, 30, 0, 0), vienna(2026, 12, 1, 0, 0)) == 0 * H


def test_a_calendar_without_any_business_day_is_an_error_not_an_endless_wait() -> None:
    never = BusinessCalendar(zone=ZoneInfo(VIENNA), around_the_clock=False, weekdays=frozenset())
    with pytest.raises(ValueError, match="no business hour in the 3660 days after 2026-11-30"):
        due_at(never, vienna(2026, 11, 30, 9, 0), H)


@settings(max_examples=60, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    minutes=st.integers(min_value=1, max_value=60 * 24 * 20),
    around_the_clock=st.booleans(),
)
def test_the_time_elapsed_until_the_due_instant_is_the_budget(
    start: datetime, minutes: int, around_the_clock: bool
) -> None:
    """For any start and budget, the SLA time elapsed until the due instant is the budget."""
    calendar = make_calendar(
        BusinessHours(country="AT", region="7"), VIENNA, around_the_clock=around_the_clock
    )
    budget = timedelta(minutes=minutes)
    due = due_at(calendar, start, budget)
    assert due is not None and due > start
    assert elapsed(calendar, start, due) == budget
    # A minute earlier, the budget was not yet spent.
    assert elapsed(calendar, start, due - timedelta(minutes=1)) < budget


def test_a_pause_that_ended_before_the_next_opening_does_not_hide_a_later_one() -> None:
    # Friday 17:00; a pause on Saturday (no business time anyway), then Monday 10-11.
    opened = vienna(2026, 11, 27, 17, 0)
    pauses = [
        Span(vienna(2026, 11, 28, 10, 0), vienna(2026, 11, 28, 12, 0)),
        Span(vienna(2026, 11, 30, 10, 0), vienna(2026, 11, 30, 11, 0)),
    ]
    # Friday 17-18, Monday 09-10, then from 11:00: the third hour ends at 12:00 local.
    assert due_at(office(), opened, 3 * H, pauses) == utc(2026, 11, 30, 11, 0)
    assert elapsed(office(), opened, vienna(2026, 11, 30, 12, 0), pauses) == 3 * H
