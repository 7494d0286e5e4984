"""The business calendar of a client, and SLA time counted in it.

Pure: no clock is read and nothing is written; every instant is passed in,
timezone-aware, and every instant returned is in UTC. A calendar either runs
around the clock (24/7 levels), or counts only the client's business hours:
its weekdays, from its opening to its closing time in its own time zone,
public holidays of its country and region (the ``holidays`` package) and its
extra closure dates excluded. Opening and closing are local wall-clock
times, so a business day on either side of a daylight-saving change opens at
09:00 local time, whatever the UTC offset.

A budget of SLA time is written as a duration: on a business-hours calendar
its whole days are business days (each as long as one business day) and the
rest business hours; around the clock, a day is 24 hours. A clock may be
paused (the incident waits on the client): paused time never counts.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from webmg_ops.config.contract import BusinessHours
from webmg_ops.config.public_holidays import closed_days

DAY = timedelta(days=1)
ZERO = timedelta(0)

#: How far a search for business time goes before giving up (a calendar with no
#: business day in ten years is a configuration error, not a long wait).
HORIZON = timedelta(days=3660)


@dataclass(frozen=True)
class Span:
    """A half-open span of time ``[start, end)``; ``end`` None: still open."""

    start: datetime
    end: datetime | None = None


@dataclass(frozen=True)
class BusinessCalendar:
    """When a client's SLA clocks run.

    ``weekdays`` are numbers as :meth:`date.weekday` counts them; ``closed`` holds
    the public holidays and closure dates (local dates) on which no business hour
    counts; ``around_the_clock`` makes every instant count, holidays included.
    """

    zone: ZoneInfo
    around_the_clock: bool
    weekdays: frozenset[int] = frozenset(range(5))
    opens: time = time(9, 0)
    closes: time = time(18, 0)
    closed: Collection[date] = frozenset()

    @property
    def business_day(self) -> timedelta:
        """Return the length of one business day (24 hours around the clock)."""
        if self.around_the_clock:
            return DAY
        return datetime.combine(date.min, self.closes) - datetime.combine(date.min, self.opens)

    def budget(self, duration: timedelta) -> timedelta:
        """Given a budget as written (``2d``, ``8h``), return it in this calendar's time:
        whole days become business days."""
        days, rest = divmod(duration, DAY)
        return days * self.business_day + rest

    def is_business_day(self, day: date) -> bool:
        """Given a local date, return whether the business opens that day."""
        return day.weekday() in self.weekdays and day not in self.closed

    def open_spans(self, start: datetime) -> Iterator[Span]:
        """Given an aware instant, yield the spans in which the clock runs from there on,
        in order, in UTC (one endless span around the clock)."""
        start = start.astimezone(UTC)
        if self.around_the_clock:
            yield Span(start, None)
            return
        day = start.astimezone(self.zone).date()
        last = day + HORIZON
        while day <= last:
            if self.is_business_day(day):
                opens = _local_instant(day, self.opens, self.zone)
                closes = _local_instant(day, self.closes, self.zone)
                if closes > start:
                    yield Span(max(opens, start), closes)
            day += DAY
        raise ValueError(f"no business hour in the {HORIZON.days} days after {start.isoformat()}")


def _local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """Return the UTC instant at which clocks in ``zone`` show ``day`` ``at``.

    An ambiguous local time (clocks going back) is its first occurrence; a skipped
    one (clocks jumping forward) is read with the offset before the jump, so it lands
    after the jump by as much as it lay inside the gap.
    """
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def make_calendar(
    hours: BusinessHours, zone_name: str, *, around_the_clock: bool
) -> BusinessCalendar:
    """Given a contract's business hours, the client's time zone and whether the level's
    clocks run 24/7, return the client's calendar.

    Public holidays come from the ``holidays`` package for the contract's country and
    region (none without a country); closure dates are added to them.
    """
    closed = closed_days(hours.country, hours.region, list(hours.closures))
    return BusinessCalendar(
        zone=ZoneInfo(zone_name),
        around_the_clock=around_the_clock,
        weekdays=frozenset(day.number for day in hours.weekdays),
        opens=hours.start,
        closes=hours.end,
        closed=closed,
    )


def _running_spans(
    calendar: BusinessCalendar, start: datetime, pauses: Sequence[Span]
) -> Iterator[Span]:
    """Yield the calendar's open spans from ``start`` with the pauses cut out, in order."""
    ordered = sorted(
        (Span(p.start.astimezone(UTC), p.end.astimezone(UTC) if p.end else None) for p in pauses),
        key=lambda span: span.start,
    )
    for span in calendar.open_spans(start):
        cursor = span.start
        for pause in ordered:
            if pause.end is not None and pause.end <= cursor:
                continue
            if span.end is not None and pause.start >= span.end:
                break
            if pause.start > cursor:
                yield Span(cursor, pause.start)
            if pause.end is None:
                return  # paused until now: the clock does not run again
            cursor = max(cursor, pause.end)
        if span.end is None or cursor < span.end:
            yield Span(cursor, span.end)


def elapsed(
    calendar: BusinessCalendar, start: datetime, end: datetime, pauses: Sequence[Span] = ()
) -> timedelta:
    """Given a calendar, two aware instants and the pauses, return the SLA time that ran
    between them (zero if ``end`` is not after ``start``)."""
    end = end.astimezone(UTC)
    total = ZERO
    for span in _running_spans(calendar, start, pauses):
        if span.start >= end:
            break
        total += min(span.end or end, end) - span.start
    return total


def due_at(
    calendar: BusinessCalendar, start: datetime, budget: timedelta, pauses: Sequence[Span] = ()
) -> datetime | None:
    """Given a calendar, the clock's start, its budget in the calendar's time (see
    :meth:`BusinessCalendar.budget`) and its pauses, return the UTC instant at which
    the budget runs out; None while a pause is still open and the budget not spent
    before it (the due instant depends on when the pause ends).

    A budget that runs out exactly at a closing time is due at that closing time, not
    at the next opening.
    """
    left = budget
    for span in _running_spans(calendar, start, pauses):
        length = None if span.end is None else span.end - span.start
        if length is None or left <= length:
            return span.start + left
        left -= length
    return None
