"""The monitor's samples, beside the ledger: store them, roll them up by day, prune them.

Samples live in the ledger's database (SQLite or PostgreSQL alike) but outside the
hash chain: they are measurements, kept for a retention and then deleted. Each
complete UTC day of samples is rolled up into one ``sample_days`` row per check,
in SQL (a year of one-minute samples is half a million rows: they are never
looped over in Python), so the daily aggregates outlive the raw samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Engine,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.exc import SQLAlchemyError

from webmg_ops.errors import BadInput
from webmg_ops.ledger.database import begin_write, describe_error
from webmg_ops.ledger.schema import sample_days, samples
from webmg_ops.ledger.store import Ledger

MS_PER_DAY = 86_400_000
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class Sample:
    """One probe of one health check of a client.

    ``up`` says the check passed; otherwise ``cause`` names why (refused, dns, tls,
    timeout, redirect-loop, bad-status, slow, error) and ``detail`` says more.
    ``planned`` marks a failure during a recorded run of the client or inside one of
    its maintenance windows, named by ``planned_by``: planned work, not an outage.
    ``page_bytes`` is the page's weight with its same-origin assets when the page-weight
    check ran, against ``page_budget``.
    """

    client: str
    check: str
    at: datetime
    up: bool
    status: int | None = None
    latency_ms: float | None = None
    cert_days: float | None = None
    cause: str | None = None
    detail: str | None = None
    page_bytes: int | None = None
    page_budget: int | None = None
    planned: bool = False
    planned_by: str | None = None


@dataclass(frozen=True)
class SampleDay:
    """One UTC day of one check, as rolled up: probes, how many were up, how many failed
    planned or unplanned, latency (mean and worst), fewest certificate days, heaviest page."""

    client: str
    check: str
    day: date
    probes: int
    up: int
    down_planned: int
    down_unplanned: int
    latency_avg_ms: float | None
    latency_max_ms: float | None
    cert_days_min: float | None
    page_bytes_max: int | None


def to_ms(instant: datetime) -> int:
    """Given an aware instant, return it in milliseconds since the epoch.

    Raise BadInput if it is naive.
    """
    if instant.tzinfo is None:
        raise BadInput(f"naive datetime {instant.isoformat()} has no time zone")
    return int(instant.timestamp() * 1000)


def from_ms(value: int) -> datetime:
    """Given milliseconds since the epoch, return the UTC instant."""
    return datetime.fromtimestamp(value / 1000, UTC)


def day_number(day: date) -> int:
    """Given a date, return its number of days since 1970-01-01 (the stored ``day``)."""
    return (day - _EPOCH).days


def _engine(ledger: Ledger) -> Engine:
    return ledger.database()


def _row(sample: Sample) -> dict[str, Any]:
    return {
        "client": sample.client,
        "check_name": sample.check,
        "at_ms": to_ms(sample.at),
        "up": int(sample.up),
        "status": sample.status,
        "latency_ms": sample.latency_ms,
        "cert_days": sample.cert_days,
        "cause": sample.cause,
        "detail": sample.detail,
        "page_bytes": sample.page_bytes,
        "page_budget": sample.page_budget,
        "planned": int(sample.planned),
        "planned_by": sample.planned_by,
    }


def store_samples(ledger: Ledger, items: Sequence[Sample]) -> int:
    """Given a writable ledger and samples, insert them in one transaction; return how many.

    The transaction holds the ledger's write lock (a short one): on SQLite a write that
    starts as a read could otherwise fail at once against an append under way.
    A sample of a check at an instant already stored (the same millisecond) is
    skipped. Raise EnvironmentProblem if the database fails.
    """
    if not items:
        return 0
    rows = {(row["client"], row["check_name"], row["at_ms"]): row for row in map(_row, items)}
    engine = _engine(ledger)
    try:
        with begin_write(engine) as connection:
            clients = {key[0] for key in rows}
            low = min(key[2] for key in rows)
            high = max(key[2] for key in rows)
            present = set(
                connection.execute(
                    select(samples.c.client, samples.c.check_name, samples.c.at_ms)
                    .where(samples.c.client.in_(clients))
                    .where(samples.c.at_ms.between(low, high))
                ).all()
            )
            fresh = [row for key, row in rows.items() if key not in present]
            if fresh:
                connection.execute(insert(samples), fresh)
            return len(fresh)
    except SQLAlchemyError as error:
        raise describe_error(ledger.url, error) from None


def _sample_of(row: Any) -> Sample:
    return Sample(
        client=row.client,
        check=row.check_name,
        at=from_ms(row.at_ms),
        up=bool(row.up),
        status=row.status,
        latency_ms=row.latency_ms,
        cert_days=row.cert_days,
        cause=row.cause,
        detail=row.detail,
        page_bytes=row.page_bytes,
        page_budget=row.page_budget,
        planned=bool(row.planned),
        planned_by=row.planned_by,
    )


def read_samples(
    ledger: Ledger,
    client: str,
    *,
    check: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    newest_first: bool = False,
    limit: int | None = None,
) -> list[Sample]:
    """Given a ledger, a client and optional filters (a check, ``since`` inclusive,
    ``until`` exclusive, newest first, at most ``limit``), return the stored samples.

    Raise EnvironmentProblem if the database fails.
    """
    query = select(samples).where(samples.c.client == client)
    if check is not None:
        query = query.where(samples.c.check_name == check)
    if since is not None:
        query = query.where(samples.c.at_ms >= to_ms(since))
    if until is not None:
        query = query.where(samples.c.at_ms < to_ms(until))
    order = samples.c.at_ms.desc() if newest_first else samples.c.at_ms
    query = query.order_by(order, samples.c.check_name)
    if limit is not None:
        query = query.limit(limit)
    try:
        with _engine(ledger).connect() as connection:
            return [_sample_of(row) for row in connection.execute(query)]
    except SQLAlchemyError as error:
        raise describe_error(ledger.url, error) from None


def latest_sample_times(ledger: Ledger) -> dict[tuple[str, str], datetime]:
    """Given a ledger, return when each check (client, check name) was last sampled, in
    one grouped query (a fleet has thousands of checks).

    Raise EnvironmentProblem if the database fails.
    """
    query = select(samples.c.client, samples.c.check_name, func.max(samples.c.at_ms)).group_by(
        samples.c.client, samples.c.check_name
    )
    try:
        with _engine(ledger).connect() as connection:
            return {
                (client, check): from_ms(at_ms)
                for client, check, at_ms in connection.execute(query)
            }
    except SQLAlchemyError as error:
        raise describe_error(ledger.url, error) from None


def failures_in_a_row(ledger: Ledger, client: str, check: str, most: int) -> int:
    """Given a client's check and a count, return how many of its newest samples (at most
    ``most``) failed unplanned in a row: a sample up or a planned failure ends the row."""
    count = 0
    for sample in read_samples(ledger, client, check=check, newest_first=True, limit=most):
        if sample.up or sample.planned:
            break
        count += 1
    return count


#: A day is rolled up once it has been over for this long: the last samples of the day
#: may still be on their way to the database (a batch is written every second or so).
ROLL_UP_DELAY = timedelta(minutes=10)


def roll_up(ledger: Ledger, before: datetime) -> int:
    """Given a ledger and an instant, aggregate each complete UTC day (over for
    :data:`ROLL_UP_DELAY` at that instant) that has samples but no ``sample_days`` row
    yet; return the rows made.

    The aggregation runs in the database (one INSERT ... SELECT ... GROUP BY), over the
    samples after the newest day already rolled up only, so that running it every
    minute stays cheap. Raise EnvironmentProblem if the database fails.
    """
    limit_ms = day_number((before - ROLL_UP_DELAY).astimezone(UTC).date()) * MS_PER_DAY
    # Floor division of integers on both backends: milliseconds to days since the epoch.
    # One expression, its divisor written inline, so that PostgreSQL sees the grouped
    # expression and the selected one as the same.
    day_of_sample = samples.c.at_ms // literal_column(str(MS_PER_DAY), BigInteger())
    day = day_of_sample.label("day")
    down = and_(samples.c.up == 0, samples.c.planned == 0)
    done = exists().where(
        and_(
            sample_days.c.client == samples.c.client,
            sample_days.c.check_name == samples.c.check_name,
            sample_days.c.day == day_of_sample,
        )
    )
    aggregate = (
        select(
            samples.c.client,
            samples.c.check_name,
            day,
            func.count(),
            func.sum(samples.c.up),
            func.sum(case((and_(samples.c.up == 0, samples.c.planned == 1), 1), else_=0)),
            func.sum(case((down, 1), else_=0)),
            func.avg(samples.c.latency_ms),
            func.max(samples.c.latency_ms),
            func.min(samples.c.cert_days),
            func.max(samples.c.page_bytes),
        )
        .where(samples.c.at_ms < limit_ms)
        .where(samples.c.at_ms >= bindparam("first_ms", type_=BigInteger()))
        .where(~done)
        .group_by(samples.c.client, samples.c.check_name, day_of_sample)
    )
    statement = insert(sample_days).from_select(
        [
            "client",
            "check_name",
            "day",
            "probes",
            "up",
            "down_planned",
            "down_unplanned",
            "latency_avg_ms",
            "latency_max_ms",
            "cert_days_min",
            "page_bytes_max",
        ],
        aggregate,
    )
    try:
        with begin_write(_engine(ledger)) as connection:
            # Counted, not read from rowcount: drivers differ on INSERT ... SELECT.
            count = select(func.count()).select_from(sample_days)
            before_count = connection.execute(count).scalar_one()
            newest = connection.execute(select(func.max(sample_days.c.day))).scalar_one()
            first_ms = 0 if newest is None else (int(newest) + 1) * MS_PER_DAY
            connection.execute(statement, {"first_ms": first_ms})
            return int(connection.execute(count).scalar_one() - before_count)
    except SQLAlchemyError as error:
        raise describe_error(ledger.url, error) from None


def prune(
    ledger: Ledger, client: str, *, samples_before: datetime, days_before: datetime
) -> tuple[int, int]:
    """Given a client and two instants, delete its samples older than ``samples_before``
    and its daily aggregates of days before ``days_before``'s UTC day; return both counts.

    Roll up first (:func:`roll_up`): a day's samples deleted before their day is rolled
    up are lost to the reports. Raise EnvironmentProblem if the database fails.
    """
    first_day = day_number(days_before.astimezone(UTC).date())
    try:
        with begin_write(_engine(ledger)) as connection:
            raw = connection.execute(
                delete(samples)
                .where(samples.c.client == client)
                .where(samples.c.at_ms < to_ms(samples_before))
            ).rowcount
            days = connection.execute(
                delete(sample_days)
                .where(sample_days.c.client == client)
                .where(sample_days.c.day < first_day)
            ).rowcount
    except SQLAlchemyError as error:
        raise describe_error(ledger.url, error) from None
    return int(raw or 0), int(days or 0)


def read_days(
    ledger: Ledger, client: str, *, first: date | None = None, last: date | None = None
) -> list[SampleDay]:
    """Given a client and optional first and last days (inclusive), return its daily
    aggregates, oldest first, check by check. Raise EnvironmentProblem if the database fails."""
    query = select(sample_days).where(sample_days.c.client == client)
    if first is not None:
        query = query.where(sample_days.c.day >= day_number(first))
    if last is not None:
        query = query.where(sample_days.c.day <= day_number(last))
    query = query.order_by(sample_days.c.day, sample_days.c.check_name)
    try:
        with _engine(ledger).connect() as connection:
            return [
                SampleDay(
                    client=row.client,
                    check=row.check_name,
                    day=_EPOCH + timedelta(days=row.day),
                    probes=row.probes,
                    up=row.up,
                    down_planned=row.down_planned,
                    down_unplanned=row.down_unplanned,
                    latency_avg_ms=row.latency_avg_ms,
                    latency_max_ms=row.latency_max_ms,
                    cert_days_min=row.cert_days_min,
                    page_bytes_max=row.page_bytes_max,
                )
                for row in connection.execute(query)
            ]
    except SQLAlchemyError as error:
        raise describe_error(ledger.url, error) from None


@dataclass(frozen=True)
class FailedSample:
    """A failing sample and when its check was next seen up (None: not since)."""

    sample: Sample
    next_up: datetime | None


def read_failures(
    ledger: Ledger, client: str, *, since: datetime, until: datetime
) -> list[FailedSample]:
    """Given a client and an interval (``since`` inclusive, ``until`` exclusive), return
    its failing samples in it, oldest first, each with the instant its check was next
    up (at any time after). Found in SQL through the samples' primary key: a quarter of
    one-minute samples is not read into Python to find a few outages.

    Raise EnvironmentProblem if the database fails.
    """
    later = samples.alias("later")
    next_up = (
        select(func.min(later.c.at_ms))
        .where(later.c.client == samples.c.client)
        .where(later.c.check_name == samples.c.check_name)
        .where(later.c.at_ms > samples.c.at_ms)
        .where(later.c.up == 1)
        .scalar_subquery()
        .label("next_up_ms")
    )
    query = (
        select(samples, next_up)
        .where(samples.c.client == client)
        .where(samples.c.up == 0)
        .where(samples.c.at_ms >= to_ms(since))
        .where(samples.c.at_ms < to_ms(until))
        .order_by(samples.c.check_name, samples.c.at_ms)
    )
    try:
        with _engine(ledger).connect() as connection:
            return [
                FailedSample(
                    _sample_of(row), None if row.next_up_ms is None else from_ms(row.next_up_ms)
                )
                for row in connection.execute(query)
            ]
    except SQLAlchemyError as error:
        raise describe_error(ledger.url, error) from None


def page_budget_max(ledger: Ledger, client: str, *, since: datetime, until: datetime) -> int | None:
    """Given a client and an interval, return the largest page-weight budget its probes
    checked against in it (None: no page-weight check ran). Raise EnvironmentProblem
    if the database fails."""
    query = (
        select(func.max(samples.c.page_budget))
        .where(samples.c.client == client)
        .where(samples.c.at_ms >= to_ms(since))
        .where(samples.c.at_ms < to_ms(until))
    )
    try:
        with _engine(ledger).connect() as connection:
            value = connection.execute(query).scalar_one()
    except SQLAlchemyError as error:
        raise describe_error(ledger.url, error) from None
    return None if value is None else int(value)
