"""Samples in the ledger's database, on SQLite and PostgreSQL alike: stored outside the
hash chain, rolled up by day in SQL, pruned per the level's retention (raw samples for
weeks, daily aggregates for more than 13 months)."""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime, timedelta

from support.service import ledger_url, service_postgres

from webmg_ops.config.contract import Level
from webmg_ops.config.policy import LEVEL_DEFAULTS, is_looser
from webmg_ops.ledger import open_ledger, verify_ledger
from webmg_ops.ledger.samples import (
    Sample,
    prune,
    read_days,
    read_samples,
    roll_up,
    store_samples,
)

# Fixtures of the service tests: every test here runs on SQLite and on PostgreSQL.
__all__ = ["ledger_url", "service_postgres"]

DAY_ONE = datetime(2026, 3, 2, tzinfo=UTC)


def minute_samples(day: datetime, check: str, downs: dict[int, bool]) -> list[Sample]:
    """Return a day of one-minute samples of a check: minute -> planned for the failures
    in ``downs``, up otherwise; latency grows with the minute, certificate days shrink."""
    return [
        Sample(
            client="riverton",
            check=check,
            at=day + timedelta(minutes=minute),
            up=minute not in downs,
            status=200 if minute not in downs else None,
            latency_ms=float(minute % 100) if minute not in downs else None,
            cert_days=30.0 - minute / 1440,
            cause=None if minute not in downs else "refused",
            planned=downs.get(minute, False),
            planned_by="run r-1" if downs.get(minute, False) else None,
        )
        for minute in range(1440)
    ]


def test_samples_are_stored_and_read_back_outside_the_chain(ledger_url: str) -> None:
    taken = minute_samples(DAY_ONE, "portal", {3: False, 4: True})[:10]
    with open_ledger(ledger_url) as ledger:
        assert store_samples(ledger, taken) == 10
        # The same samples again (a retried batch) are not stored twice.
        assert store_samples(ledger, taken) == 0
        back = read_samples(ledger, "riverton", check="portal")
        head = ledger.head()
    assert back == taken
    # Samples are not entries: the chain is untouched (and still verifies).
    assert head is None
    with open_ledger(ledger_url, create=False) as reader:
        assert verify_ledger(reader).ok


def test_a_day_rolls_up_in_the_database(ledger_url: str) -> None:
    downs = {minute: minute % 2 == 0 for minute in range(600, 660)}  # an hour, half planned
    day_samples = minute_samples(DAY_ONE, "portal", downs)
    next_day = minute_samples(DAY_ONE + timedelta(days=1), "portal", {})
    with open_ledger(ledger_url) as ledger:
        store_samples(ledger, day_samples + next_day)
        # Rolled up at noon of the next day: only the complete day is aggregated.
        made = roll_up(ledger, DAY_ONE + timedelta(days=1, hours=12))
        again = roll_up(ledger, DAY_ONE + timedelta(days=1, hours=13))
        days = read_days(ledger, "riverton")
    assert (made, again) == (1, 0)
    (day,) = days
    latencies = [s.latency_ms for s in day_samples if s.latency_ms is not None]
    assert day.day == date(2026, 3, 2)
    assert day.probes == 1440
    assert day.up == 1440 - 60
    assert day.down_planned == 30 and day.down_unplanned == 30
    assert day.latency_avg_ms is not None
    assert abs(day.latency_avg_ms - statistics.fmean(latencies)) < 1e-6
    assert day.latency_max_ms == max(latencies)
    assert day.cert_days_min is not None
    assert abs(day.cert_days_min - min(s.cert_days or 99 for s in day_samples)) < 1e-6


def test_retention_prunes_raw_samples_before_their_days(ledger_url: str) -> None:
    with open_ledger(ledger_url) as ledger:
        for offset in range(3):
            store_samples(
                ledger, minute_samples(DAY_ONE + timedelta(days=offset), "portal", {})[:60]
            )
        now = DAY_ONE + timedelta(days=3, hours=1)
        roll_up(ledger, now)
        removed = prune(
            ledger,
            "riverton",
            samples_before=DAY_ONE + timedelta(days=2),
            days_before=DAY_ONE + timedelta(days=1),
        )
        left = read_samples(ledger, "riverton")
        days = read_days(ledger, "riverton")
    assert removed == (120, 1)
    assert {sample.at.date() for sample in left} == {date(2026, 3, 4)}
    # The days rolled up outlive their raw samples; the oldest day went with its retention.
    assert [day.day for day in days] == [date(2026, 3, 3), date(2026, 3, 4)]


def test_every_level_keeps_13_months_of_days_and_longer_is_tighter() -> None:
    for level in Level:
        assert LEVEL_DEFAULTS[level]["monitoring.days_kept"] >= timedelta(days=396)
        assert LEVEL_DEFAULTS[level]["monitoring.samples_kept"] >= timedelta(days=31)
    assert is_looser("monitoring.days_kept", timedelta(days=300), timedelta(days=400))
    assert not is_looser("monitoring.samples_kept", timedelta(days=90), timedelta(days=35))
