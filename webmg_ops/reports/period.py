"""Reporting periods: a month (``2026-11``) or a quarter (``2026-Q4``) in a client's time zone.

A client's report covers one period of its level's reporting cadence: the policy's
``cadence.report`` (91 days: quarterly; 30 days: monthly). A period runs from local
midnight of its first day to local midnight of the first day of the next one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from webmg_ops.errors import BadInput

MONTHLY = "monthly"
QUARTERLY = "quarterly"

#: A cadence this long or longer is reported on by quarter, a shorter one by month.
QUARTER_CADENCE = timedelta(days=90)

_MONTH = re.compile(r"(\d{4})-(\d{2})")
_QUARTER = re.compile(r"(\d{4})-[Qq]([1-4])")


@dataclass(frozen=True)
class Period:
    """One reporting period: its name (``2026-11``, ``2026-Q4``) and first and last days."""

    name: str
    first_day: date
    last_day: date

    def start(self, zone: ZoneInfo) -> datetime:
        """Given the client's time zone, return the aware instant the period starts."""
        return datetime.combine(self.first_day, time(0), zone)

    def end(self, zone: ZoneInfo) -> datetime:
        """Given the client's time zone, return the aware instant the period ends (excluded)."""
        return datetime.combine(self.last_day + timedelta(days=1), time(0), zone)


def cadence_kind(cadence: timedelta | None) -> str:
    """Given the policy's report cadence (None: not part of the level), return
    ``quarterly`` or ``monthly``; a level without one is reported on quarterly."""
    return QUARTERLY if cadence is None or cadence >= QUARTER_CADENCE else MONTHLY


def _month(year: int, month: int) -> Period:
    following = date(year + (month == 12), month % 12 + 1, 1)
    return Period(f"{year:04d}-{month:02d}", date(year, month, 1), following - timedelta(days=1))


def _quarter(year: int, quarter: int) -> Period:
    first = date(year, 3 * quarter - 2, 1)
    following = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return Period(f"{year:04d}-Q{quarter}", first, following - timedelta(days=1))


def parse_period(text: str) -> Period:
    """Given ``YYYY-MM`` or ``YYYY-Qn``, return the period. Raise BadInput otherwise."""
    month = _MONTH.fullmatch(text.strip())
    if month and 1 <= int(month[2]) <= 12 and int(month[1]) >= 1970:
        return _month(int(month[1]), int(month[2]))
    quarter = _QUARTER.fullmatch(text.strip())
    if quarter and int(quarter[1]) >= 1970:
        return _quarter(int(quarter[1]), int(quarter[2]))
    raise BadInput(f"--period {text!r} is neither a month (2026-11) nor a quarter (2026-Q4)")


def last_complete_period(kind: str, now: datetime, zone: ZoneInfo) -> Period:
    """Given ``monthly`` or ``quarterly``, an aware instant and the client's time zone,
    return the last period of that kind that ended at or before that instant."""
    today = now.astimezone(zone).date()
    if kind == MONTHLY:
        previous = today.replace(day=1) - timedelta(days=1)
        return _month(previous.year, previous.month)
    quarter = (today.month - 1) // 3 + 1
    previous = date(today.year, 3 * quarter - 2, 1) - timedelta(days=1)
    return _quarter(previous.year, (previous.month - 1) // 3 + 1)


def period_after(period: Period) -> Period:
    """Given a period, return the one of the same kind that follows it."""
    following = period.last_day + timedelta(days=1)
    if "Q" in period.name:
        return _quarter(following.year, (following.month - 1) // 3 + 1)
    return _month(following.year, following.month)
