"""Windows and freezes in the client's time zone, and what is due when.

All instants are timezone-aware. Windows open at a local wall-clock time
(read with :mod:`zoneinfo`) and stay open for an elapsed duration, so a
window on the night of a daylight-saving change lasts as long as any other;
an opening time that does not exist that night (clocks jump forward over
it) opens at the first instant after the jump. Freezes cover whole local
days and beat any window.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from webmg_ops.config.contract import Freeze, Window
from webmg_ops.config.policy import PolicyFreeze
from webmg_ops.config.zones import time_zone

#: How far ahead ``next_window`` looks before saying there is none.
LOOKAHEAD = timedelta(days=400)


@dataclass(frozen=True)
class Interval:
    """A half-open span of time ``[start, end)`` with aware datetimes."""

    start: datetime
    end: datetime

    def contains(self, instant: datetime) -> bool:
        """Given an aware instant, return whether it lies in the interval."""
        return self.start <= instant < self.end


@dataclass(frozen=True)
class WindowOpening:
    """One occurrence of a window."""

    window: Window
    interval: Interval


@dataclass(frozen=True)
class FreezePeriod:
    """One occurrence of a freeze, in the client's time zone."""

    freeze: Freeze
    source: str
    interval: Interval


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return _wall_clock(day, time(), zone)


def _wall_clock(day: date, at: time, zone: ZoneInfo) -> datetime:
    """Return the instant at which local clocks in ``zone`` show ``day`` ``at``.

    A time skipped by a forward jump maps to the instant of the jump; an
    ambiguous time (clocks going back) is its first occurrence.
    """
    naive = datetime.combine(day, at)
    local = naive.replace(tzinfo=zone, fold=0)
    as_utc = local.astimezone(UTC)
    if as_utc.astimezone(zone).replace(tzinfo=None) != naive:
        # Skipped wall time: the earliest instant after the gap is the first
        # instant whose local time is later than the requested one.
        before = (naive - timedelta(hours=3)).replace(tzinfo=zone).astimezone(UTC)
        step = timedelta(minutes=1)
        candidate = before
        while candidate.astimezone(zone).replace(tzinfo=None) < naive:
            candidate += step
        return candidate
    return as_utc


def window_openings(window: Window, start: datetime, end: datetime) -> Iterator[WindowOpening]:
    """Given a window and an aware span, yield its openings that overlap the span, in order."""
    if window.always:
        yield WindowOpening(window, Interval(start, end))
        return
    assert window.start is not None and window.duration is not None
    zone = time_zone(window.timezone)
    weekdays = {day.number for day in window.weekdays}
    # An opening lasts its duration in elapsed time, so the wall clock can end it on a later
    # date than its length in days says: a day more covers a jump forward of up to a day
    # (an hour in spring, the whole 30 December 2011 in Samoa).
    first_day = start.astimezone(zone).date() - timedelta(days=window.duration.days + 2)
    last_day = end.astimezone(zone).date()
    day = first_day
    while day <= last_day:
        if day.weekday() in weekdays:
            opens = _wall_clock(day, window.start, zone)
            interval = Interval(opens, opens + window.duration)
            if interval.end > start and interval.start < end:
                yield WindowOpening(window, interval)
        day += timedelta(days=1)


def _freeze_dates(freeze: Freeze, year: int) -> tuple[date, date]:
    def on(year: int, day: date) -> date:
        # 29 February in a common year falls back to 28 February.
        if day.month == 2 and day.day == 29:
            try:
                return date(year, 2, 29)
            except ValueError:
                return date(year, 2, 28)
        return date(year, day.month, day.day)

    first = on(year, freeze.start)
    crosses_new_year = (freeze.end.month, freeze.end.day) < (freeze.start.month, freeze.start.day)
    last = on(year + 1 if crosses_new_year else year, freeze.end)
    return first, last


def freeze_periods(
    freezes: Sequence[PolicyFreeze], timezone: str, start: datetime, end: datetime
) -> list[FreezePeriod]:
    """Given freezes, a time zone and an aware span, return the freeze periods overlapping it."""
    zone = time_zone(timezone)
    periods = []
    for item in freezes:
        freeze = item.freeze
        if freeze.yearly:
            years = range(start.astimezone(zone).year - 1, end.astimezone(zone).year + 1)
            spans = [_freeze_dates(freeze, year) for year in years]
        else:
            spans = [(freeze.start, freeze.end)]
        for first, last in spans:
            interval = Interval(
                _local_midnight(first, zone), _local_midnight(last + timedelta(days=1), zone)
            )
            if interval.end > start and interval.start < end:
                periods.append(FreezePeriod(freeze, item.source, interval))
    return sorted(periods, key=lambda period: period.interval.start)


@dataclass(frozen=True)
class CalendarState:
    """Where an instant stands for one client: window, freeze, next opening."""

    at: datetime
    window: WindowOpening | None
    freeze: FreezePeriod | None
    next_opening: Interval | None
    next_window: Window | None

    @property
    def changes_allowed(self) -> bool:
        """Return whether a non-emergency change may run at this instant."""
        return self.window is not None and self.freeze is None


def _client_zone(windows: Sequence[Window]) -> str:
    return windows[0].timezone if windows else "UTC"


def _subtract(interval: Interval, frozen: Sequence[FreezePeriod]) -> Interval | None:
    """Return the first part of ``interval`` that no freeze covers, if any."""
    start = interval.start
    for period in frozen:
        if period.interval.contains(start):
            start = period.interval.end
    if start >= interval.end:
        return None
    for period in frozen:
        if start < period.interval.start < interval.end:
            return Interval(start, period.interval.start)
    return Interval(start, interval.end)


def calendar_state(
    windows: Sequence[Window], freezes: Sequence[PolicyFreeze], at: datetime
) -> CalendarState:
    """Given a client's windows and freezes and an aware instant, return its calendar state.

    The next opening is the first span, at or after ``at``, in which a
    window is open and no freeze applies (None if none within :data:`LOOKAHEAD`).
    Raise ValueError if ``at`` is naive.
    """
    if at.tzinfo is None:
        raise ValueError("the instant must carry a time zone")
    timezone = _client_zone(windows)
    horizon = at + LOOKAHEAD
    frozen = freeze_periods(freezes, timezone, at - timedelta(days=1), horizon)
    current_freeze = next((p for p in frozen if p.interval.contains(at)), None)
    # Each window yields its openings in order; merged lazily, only the openings up to
    # the first usable one are computed (a few days' worth, not the lookahead's year,
    # which made this the cost of `due` over a fleet). Ties keep the windows' order.
    openings = heapq.merge(
        *(window_openings(window, at, horizon) for window in windows),
        key=lambda opening: opening.interval.start,
    )
    current_window: WindowOpening | None = None
    next_opening: Interval | None = None
    next_window: Window | None = None
    for index, opening in enumerate(openings):
        # Every opening overlaps [at, horizon): one that starts by ``at`` contains it, and
        # such openings come first.
        if index == 0 and opening.interval.contains(at):
            current_window = opening
        clipped = Interval(max(opening.interval.start, at), opening.interval.end)
        usable = _subtract(clipped, frozen)
        if usable is not None:
            next_opening, next_window = usable, opening.window
            break
    return CalendarState(
        at=at,
        window=current_window,
        freeze=current_freeze,
        next_opening=next_opening,
        next_window=next_window,
    )


def is_due(last_success: datetime | None, cadence: timedelta | None, at: datetime) -> bool:
    """Given when an action last succeeded, its cadence and now, return whether it is due.

    An action that never ran is due; one without a cadence never is.
    """
    if cadence is None:
        return False
    return last_success is None or last_success + cadence <= at
