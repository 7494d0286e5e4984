"""Calendar: windows in the client's time zone, DST, midnight, freezes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from support.clock import controller_zone as set_controller_zone

from webmg_ops.config.calendar import calendar_state, freeze_periods, is_due, window_openings
from webmg_ops.config.contract import Freeze, Window
from webmg_ops.config.policy import PolicyFreeze
from webmg_ops.errors import ExitCode

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(autouse=True, params=["UTC", "Pacific/Kiritimati", "America/Adak"])
def controller_zone(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run every calendar test with the controller's own clock in several zones: windows
    and freezes are the client's, whatever zone the controller's machine is set to."""
    with set_controller_zone(request.param):
        yield request.param


def window(days: list[str], start: str, duration: str, tz: str) -> Window:
    return Window.model_validate(
        {"weekdays": days, "start": start, "duration": duration, "timezone": tz}
    )


def freeze(start: date, end: date, yearly: bool = False) -> PolicyFreeze:
    return PolicyFreeze(
        Freeze(name="frozen", start=start, end=end, yearly=yearly, reason="test"), "contract"
    )


def openings(w: Window, start: datetime, days: int) -> list[tuple[datetime, datetime]]:
    return [
        (o.interval.start, o.interval.end)
        for o in window_openings(w, start, start + timedelta(days=days))
    ]


def test_paris_spring_forward_night() -> None:
    # 29 March 2026: clocks jump from 02:00 to 03:00 in Paris.
    w = window(["sun"], "01:30", "2h", "Europe/Paris")
    ((start, end),) = openings(w, datetime(2026, 3, 28, tzinfo=UTC), 2)
    assert start == datetime(2026, 3, 29, 1, 30, tzinfo=PARIS)
    assert start.astimezone(UTC) == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    # Two hours of elapsed time: 01:30 CET -> 04:30 CEST on the wall clock.
    assert end.astimezone(PARIS).time() == time(4, 30)


def test_paris_skipped_opening_time_opens_after_the_jump() -> None:
    w = window(["sun"], "02:30", "1h", "Europe/Paris")
    ((start, _end),) = openings(w, datetime(2026, 3, 28, tzinfo=UTC), 2)
    assert start.astimezone(UTC) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert start.astimezone(PARIS).time() == time(3, 0)


def test_paris_fall_back_ambiguous_time_is_first_occurrence() -> None:
    # 25 October 2026: 02:00-03:00 happens twice in Paris.
    w = window(["sun"], "02:30", "1h", "Europe/Paris")
    ((start, end),) = openings(w, datetime(2026, 10, 24, tzinfo=UTC), 2)
    assert start.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert end - start == timedelta(hours=1)


def test_new_york_window_same_local_time_across_dst() -> None:
    # DST starts 8 March 2026 in New York: a Sunday 02:00 window on the
    # Sundays before and after opens at 02:00 local both times.
    w = window(["sun"], "04:00", "4h", "America/New_York")
    found = openings(w, datetime(2026, 3, 1, tzinfo=UTC), 14)
    local_starts = [start.astimezone(NEW_YORK).time() for start, _ in found]
    assert local_starts == [time(4, 0)] * 2
    utc_starts = [start.astimezone(UTC).hour for start, _ in found]
    assert utc_starts == [9, 8]


def test_new_york_fall_back_inside_window() -> None:
    # 1 November 2026: 01:00-02:00 repeats. A 4 h window from 00:00 ends at 03:00 local.
    w = window(["sun"], "00:00", "4h", "America/New_York")
    ((start, end),) = openings(w, datetime(2026, 10, 31, tzinfo=UTC), 2)
    assert end - start == timedelta(hours=4)
    assert end.astimezone(NEW_YORK).time() == time(3, 0)


def test_window_across_midnight() -> None:
    w = window(["sat"], "23:00", "3h", "Europe/Paris")
    sunday_1am = datetime(2026, 11, 29, 1, 0, tzinfo=PARIS)
    state = calendar_state([w], [], sunday_1am)
    assert state.window is not None
    assert state.changes_allowed
    state = calendar_state([w], [], datetime(2026, 11, 29, 2, 0, tzinfo=PARIS))
    assert state.window is None
    assert state.next_opening is not None
    assert state.next_opening.start == datetime(2026, 12, 5, 23, 0, tzinfo=PARIS)


def test_freeze_beats_window_and_next_window_skips_it() -> None:
    w = window(["mon"], "10:00", "2h", "Europe/Paris")
    frozen = freeze(date(2026, 11, 30), date(2026, 12, 6))
    state = calendar_state([w], [frozen], datetime(2026, 11, 30, 10, 30, tzinfo=PARIS))
    assert state.window is not None
    assert state.freeze is not None
    assert not state.changes_allowed
    assert state.next_opening is not None
    assert state.next_opening.start == datetime(2026, 12, 7, 10, 0, tzinfo=PARIS)


def test_freeze_starting_inside_a_window_cuts_it() -> None:
    w = window(["sun"], "22:00", "4h", "Europe/Paris")
    frozen = freeze(date(2026, 11, 30), date(2026, 11, 30))
    state = calendar_state([w], [frozen], datetime(2026, 11, 29, 21, 0, tzinfo=PARIS))
    assert state.next_opening is not None
    assert state.next_opening.start == datetime(2026, 11, 29, 22, 0, tzinfo=PARIS)
    assert state.next_opening.end == datetime(2026, 11, 30, 0, 0, tzinfo=PARIS)


@pytest.mark.parametrize(
    ("instant", "frozen"),
    [
        (datetime(2026, 12, 31, 12, tzinfo=PARIS), True),
        (datetime(2027, 1, 6, 23, 59, tzinfo=PARIS), True),
        (datetime(2027, 1, 7, 0, 0, tzinfo=PARIS), False),
        (datetime(2026, 12, 19, 23, 59, tzinfo=PARIS), False),
        (datetime(2031, 1, 2, 9, tzinfo=PARIS), True),
    ],
)
def test_yearly_freeze_across_new_year(instant: datetime, frozen: bool) -> None:
    w = Window.model_validate({"always": True, "timezone": "Europe/Paris"})
    christmas = freeze(date(2000, 12, 20), date(2001, 1, 6), yearly=True)
    assert (calendar_state([w], [christmas], instant).freeze is not None) is frozen


def test_yearly_freeze_on_29_february() -> None:
    w = Window.model_validate({"always": True, "timezone": "UTC"})
    leap = freeze(date(2000, 2, 29), date(2000, 3, 1), yearly=True)
    assert calendar_state([w], [leap], datetime(2027, 2, 28, 12, tzinfo=UTC)).freeze
    assert calendar_state([w], [leap], datetime(2028, 2, 29, 12, tzinfo=UTC)).freeze
    assert not calendar_state([w], [leap], datetime(2028, 2, 28, 12, tzinfo=UTC)).freeze


def test_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        calendar_state([], [], datetime(2026, 1, 1))


def test_is_due() -> None:
    now = datetime(2026, 11, 28, tzinfo=UTC)
    assert is_due(None, timedelta(days=7), now)
    assert is_due(now - timedelta(days=7), timedelta(days=7), now)
    assert not is_due(now - timedelta(days=6), timedelta(days=7), now)
    assert not is_due(None, None, now)


def test_due_command_gives_next_window_in_client_time_zone(cli) -> None:
    result = cli("due", "--at", "2026-11-28T12:00:00+00:00", "--json")
    assert result.code == ExitCode.OK, result
    by_client = {item["client"]: item for item in json.loads(result.out)}
    riverton = by_client["riverton"]
    assert riverton["timezone"] == "America/New_York"
    assert riverton["next_window"]["start"] == "2026-11-29T02:00:00-05:00"
    assert riverton["in_window"] is False
    alpenhof = by_client["alpenhof"]
    assert alpenhof["next_window"]["start"] == "2026-12-01T23:00:00+01:00"
    terre = by_client["terre-solidaire"]
    # December is frozen for the giving campaign: the next usable window is in January.
    assert terre["next_window"]["start"] == "2027-01-02T08:00:00+01:00"
    assert by_client["atelier-nord"]["changes_allowed"] is True
    # Nothing has ever run: every recurring action of the level is due.
    assert "drill" in riverton["due"]
    assert "drift" not in by_client["alpenhof"]["due"]  # not part of stability-security


def test_due_reports_freeze(cli) -> None:
    result = cli("due", "alpenhof", "--at", "2026-07-15T10:00:00+02:00", "--json")
    (alpenhof,) = json.loads(result.out)
    assert alpenhof["in_freeze"] is True
    assert alpenhof["freeze"]["name"] == "summer season"
    assert alpenhof["next_window"]["start"] == "2026-09-01T23:00:00+02:00"


def test_due_bad_time_is_bad_input(cli) -> None:
    result = cli("due", "--at", "yesterday")
    assert result.code == ExitCode.BAD_INPUT
    assert "Error: --at 'yesterday' is not an ISO 8601 time" in result.err


def test_drills_due_picks_exactly_the_clients_whose_cadence_elapsed(cli, ledger_url: str) -> None:
    from webmg_ops.ledger import open_ledger

    at = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    drills = {
        # institutional-sla: weekly; 8 days ago -> due.
        "riverton": at - timedelta(days=8),
        # continuous-evolution: monthly; 10 days ago -> not due.
        "terre-solidaire": at - timedelta(days=10),
        # stability-security: quarterly; 100 days ago -> due.
        "alpenhof": at - timedelta(days=100),
        # atelier-nord: never drilled -> due.
    }
    with open_ledger(ledger_url) as ledger:
        for client, when in drills.items():
            ledger.append(
                "run-finished",
                client,
                {"run_id": f"{client}-drill", "action": "drill", "outcome": "succeeded"},
                at=when,
            )
        # A failed drill does not count.
        ledger.append(
            "run-finished",
            "terre-solidaire",
            {"run_id": "x", "action": "drill", "outcome": "failed"},
            at=at - timedelta(hours=1),
        )
    result = cli("drills-due", "--at", at.isoformat(), "--json")
    assert result.code == ExitCode.OK, result
    due = {row["client"] for row in json.loads(result.out) if row["due"]}
    assert due == {"riverton", "alpenhof", "atelier-nord"}


@pytest.mark.parametrize(
    ("instant", "frozen"),
    [
        (datetime(2028, 4, 28, 23, 59, tzinfo=UTC), False),
        (datetime(2028, 4, 29, 0, 0, tzinfo=UTC), True),  # a leap year: not 29 February
        (datetime(2027, 4, 30, 12, tzinfo=UTC), True),
        (datetime(2028, 2, 29, 12, tzinfo=UTC), False),
        (datetime(2028, 5, 2, 0, 0, tzinfo=UTC), False),
    ],
)
def test_a_yearly_freeze_on_the_29th_of_another_month_keeps_its_month(
    instant: datetime, frozen: bool
) -> None:
    """Only 29 February moves (to the 28th in a common year): 29 April stays 29 April."""
    w = Window.model_validate({"always": True, "timezone": "UTC"})
    may_day = freeze(date(2000, 4, 29), date(2000, 5, 1), yearly=True)
    assert (calendar_state([w], [may_day], instant).freeze is not None) is frozen


def test_a_yearly_freeze_of_one_day_lasts_one_day() -> None:
    """A freeze that starts and ends on the same date covers that day, not the year to come."""
    w = Window.model_validate({"always": True, "timezone": "Europe/Paris"})
    national_day = freeze(date(2000, 7, 14), date(2000, 7, 14), yearly=True)
    on_the_day = calendar_state([w], [national_day], datetime(2027, 7, 14, 12, tzinfo=PARIS))
    assert on_the_day.freeze is not None
    assert on_the_day.freeze.interval.end == datetime(2027, 7, 15, 0, 0, tzinfo=PARIS)
    assert (
        calendar_state([w], [national_day], datetime(2027, 7, 15, 0, 0, tzinfo=PARIS)).freeze
        is None
    )
    assert calendar_state([w], [national_day], datetime(2027, 12, 1, tzinfo=PARIS)).freeze is None


def test_freeze_periods_are_those_overlapping_the_span_with_their_source() -> None:
    """A freeze is listed when it overlaps the half-open span: one that ends as the span
    begins, or begins as it ends, is not; each period says where its freeze came from."""
    start = datetime(2026, 6, 10, 0, 0, tzinfo=PARIS)
    end = datetime(2026, 6, 20, 0, 0, tzinfo=PARIS)
    freezes = [
        freeze(date(2026, 1, 5), date(2026, 1, 9)),  # long before
        freeze(date(2026, 6, 1), date(2026, 6, 9)),  # ends at the span's start
        freeze(date(2026, 6, 20), date(2026, 6, 25)),  # begins at the span's end
        freeze(date(2026, 6, 9), date(2026, 6, 10)),  # overlaps its first day
    ]
    (period,) = freeze_periods(freezes, "Europe/Paris", start, end)
    assert period.source == "contract"
    assert period.interval.start == datetime(2026, 6, 9, 0, 0, tzinfo=PARIS)
    assert period.interval.end == datetime(2026, 6, 11, 0, 0, tzinfo=PARIS)


def test_without_windows_nothing_opens_and_freezes_are_in_utc() -> None:
    at = datetime(2026, 6, 9, 23, 30, tzinfo=UTC)
    state = calendar_state([], [freeze(date(2026, 6, 9), date(2026, 6, 9))], at)
    assert state.at == at
    assert state.freeze is not None
    assert state.freeze.interval.end == datetime(2026, 6, 10, 0, 0, tzinfo=UTC)
    assert (state.window, state.next_opening, state.next_window) == (None, None, None)
    assert not state.changes_allowed


def test_the_next_opening_is_a_whole_window_and_names_it() -> None:
    w = window(["mon"], "10:00", "2h", "Europe/Paris")
    state = calendar_state([w], [], datetime(2026, 11, 28, 9, 0, tzinfo=PARIS))
    assert state.next_window == w
    assert state.next_opening is not None
    assert state.next_opening.start == datetime(2026, 11, 30, 10, 0, tzinfo=PARIS)
    assert state.next_opening.end == datetime(2026, 11, 30, 12, 0, tzinfo=PARIS)


def test_a_window_frozen_to_its_end_is_skipped() -> None:
    """A freeze that covers a window until it closes leaves nothing of it: the next
    opening is the window's next occurrence."""
    w = window(["sun"], "22:00", "2h", "Europe/Paris")
    frozen = freeze(date(2026, 11, 29), date(2026, 11, 29))
    state = calendar_state([w], [frozen], datetime(2026, 11, 29, 21, 0, tzinfo=PARIS))
    assert state.next_opening is not None
    assert state.next_opening.start == datetime(2026, 12, 6, 22, 0, tzinfo=PARIS)


def test_a_naive_instant_is_refused_saying_why() -> None:
    with pytest.raises(ValueError, match=r"^the instant must carry a time zone$"):
        calendar_state([], [], datetime(2026, 1, 1))


def test_an_opening_skipped_at_any_minute_opens_at_the_jump() -> None:
    """29 March 2026 in Paris: 02:15 does not exist; the window opens at 03:00 sharp."""
    w = window(["sun"], "02:15", "1h", "Europe/Paris")
    assert openings(w, datetime(2026, 3, 29, 0, 0, tzinfo=PARIS), 1) == [
        (datetime(2026, 3, 29, 3, 0, tzinfo=PARIS), datetime(2026, 3, 29, 4, 0, tzinfo=PARIS))
    ]


def test_window_openings_are_those_overlapping_the_half_open_span() -> None:
    """An opening that closes as the span begins, or opens as it ends, is not in it."""
    w = window(["mon", "tue", "wed"], "10:00", "2h", "Europe/Paris")
    start = datetime(2026, 12, 1, 12, 0, tzinfo=PARIS)  # Tuesday's opening closes here
    end = datetime(2026, 12, 2, 10, 0, tzinfo=PARIS)  # Wednesday's opens here
    assert list(window_openings(w, start, end)) == []
    assert [o.interval.start for o in window_openings(w, start, end + timedelta(seconds=1))] == [
        end
    ]


def test_the_window_under_way_follows_the_clients_date_not_the_controllers() -> None:
    """Honolulu (UTC-10, no daylight saving): a Saturday 20:00 window of 20 hours is still
    open on Sunday 29 November 2026 at 15:00, when the date is already Monday in UTC and
    on Kiritimati. Which opening is under way depends on the client's date, not the
    controller's."""
    honolulu = ZoneInfo("Pacific/Honolulu")
    w = window(["sat"], "20:00", "20h", "Pacific/Honolulu")
    state = calendar_state([w], [], datetime(2026, 11, 29, 15, 0, tzinfo=honolulu))
    assert state.window is not None
    # Saturday 28 November 20:00 HST to Sunday 29 November 16:00 HST.
    assert state.window.interval.start == datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    assert state.window.interval.end == datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    assert state.changes_allowed


def test_a_yearly_new_year_freeze_is_in_force_early_on_new_years_day() -> None:
    """Tokyo (UTC+9): at 03:00 on 1 January 2027 the New Year freeze of 2027 applies,
    though it is still 2026 in UTC and on Adak. The freeze's year is the client's."""
    tokyo = ZoneInfo("Asia/Tokyo")
    new_year = freeze(date(2000, 1, 1), date(2000, 1, 3), yearly=True)
    at = datetime(2027, 1, 1, 3, 0, tzinfo=tokyo)
    (period,) = freeze_periods([new_year], "Asia/Tokyo", at, at + timedelta(seconds=1))
    assert period.interval.start == datetime(2027, 1, 1, 0, 0, tzinfo=tokyo)
    assert period.interval.end == datetime(2027, 1, 4, 0, 0, tzinfo=tokyo)


def test_last_years_yearly_freeze_is_in_force_on_its_last_day() -> None:
    """Pago Pago (UTC-11, no daylight saving): a yearly freeze from 31 December to
    30 December covers the whole year. At 23:30 on 30 December 2026 the period begun on
    31 December 2025 still applies and the next one is half an hour away, though on
    Kiritimati (UTC+14) it is already 1 January 2027. The years looked at are the
    client's."""
    pago_pago = ZoneInfo("Pacific/Pago_Pago")
    all_year = freeze(date(2000, 12, 31), date(2001, 12, 30), yearly=True)
    at = datetime(2026, 12, 30, 23, 30, tzinfo=pago_pago)
    periods = freeze_periods([all_year], "Pacific/Pago_Pago", at, at + timedelta(hours=1))
    assert [(p.interval.start, p.interval.end) for p in periods] == [
        (
            datetime(2025, 12, 31, 0, 0, tzinfo=pago_pago),
            datetime(2026, 12, 31, 0, 0, tzinfo=pago_pago),
        ),
        (
            datetime(2026, 12, 31, 0, 0, tzinfo=pago_pago),
            datetime(2027, 12, 31, 0, 0, tzinfo=pago_pago),
        ),
    ]


def test_a_freeze_on_a_day_the_clients_zone_skipped_freezes_nothing() -> None:
    """Samoa moved across the date line at the end of Thursday 29 December 2011 (UTC-10 to
    UTC+14): Friday 30 December never happened in Pacific/Apia. A freeze of that day alone
    covers no instant, so the Saturday 00:00 window right after it stays whole."""
    apia = ZoneInfo("Pacific/Apia")
    w = window(["sat"], "00:00", "2h", "Pacific/Apia")
    skipped = freeze(date(2011, 12, 30), date(2011, 12, 30))
    state = calendar_state([w], [skipped], datetime(2011, 12, 29, 12, 0, tzinfo=apia))
    assert state.freeze is None
    assert state.next_opening is not None
    # Saturday 31 December 2011 00:00 in Apia is 10:00 UTC the day before.
    assert state.next_opening.start == datetime(2011, 12, 30, 10, 0, tzinfo=UTC)
    assert state.next_opening.end == datetime(2011, 12, 30, 12, 0, tzinfo=UTC)


def test_an_ambiguous_opening_time_is_its_first_occurrence_whatever_its_fold() -> None:
    """25 October 2026: 02:00-03:00 happens twice in Paris. An opening time given as the
    second pass (fold=1) still opens at the first, as every ambiguous opening time does:
    02:30 CEST, 00:30 UTC."""
    w = Window.model_validate(
        {
            "weekdays": ["sun"],
            "start": time(2, 30, fold=1),
            "duration": "1h",
            "timezone": "Europe/Paris",
        }
    )
    ((start, end),) = openings(w, datetime(2026, 10, 24, tzinfo=UTC), 2)
    assert start == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert end == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


def test_a_window_open_across_the_spring_jump_is_under_way_on_its_last_morning() -> None:
    """Paris: a Saturday 23:30 window of 23 h 59 min opens on 28 March 2026 and, the clocks
    going forward that night, closes on Monday 30 March at 00:29 CEST, two dates later.
    At 00:15 that Monday it is still under way."""
    paris = ZoneInfo("Europe/Paris")
    w = window(["sat"], "23:30", "1439m", "Europe/Paris")
    state = calendar_state([w], [], datetime(2026, 3, 30, 0, 15, tzinfo=paris))
    assert state.window is not None
    # Saturday 23:30 CET is 22:30 UTC; 23 h 59 min later is Sunday 22:29 UTC.
    assert state.window.interval.start == datetime(2026, 3, 28, 22, 30, tzinfo=UTC)
    assert state.window.interval.end == datetime(2026, 3, 29, 22, 29, tzinfo=UTC)
    assert state.changes_allowed


def test_a_window_open_across_a_skipped_day_is_under_way_after_it() -> None:
    """Apia skipped 30 December 2011 (from UTC-10 to UTC+14): a Thursday 22:00 window of
    four hours opens on 29 December and closes at 02:00 on 31 December, two dates later."""
    apia = ZoneInfo("Pacific/Apia")
    w = window(["thu"], "22:00", "4h", "Pacific/Apia")
    state = calendar_state([w], [], datetime(2011, 12, 31, 1, 0, tzinfo=apia))
    assert state.window is not None
    # 29 December 22:00 at UTC-10 is 30 December 08:00 UTC.
    assert state.window.interval.start == datetime(2011, 12, 30, 8, 0, tzinfo=UTC)
    assert state.window.interval.end == datetime(2011, 12, 30, 12, 0, tzinfo=UTC)
