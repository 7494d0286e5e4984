"""Reporting periods and outages, pure: a month or a quarter in the client's time zone,
the last complete one of a cadence, and outages grouped from failing samples."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from webmg_ops.errors import BadInput
from webmg_ops.ledger.samples import FailedSample, Sample
from webmg_ops.reports.period import (
    MONTHLY,
    QUARTERLY,
    cadence_kind,
    last_complete_period,
    parse_period,
    period_after,
)
from webmg_ops.service.report_figures import outages_of

VIENNA = ZoneInfo("Europe/Vienna")


def test_a_month_and_a_quarter_run_between_local_midnights() -> None:
    """2026-02 runs from 1 February to 1 March, local midnight to local midnight;
    2026-Q4 from 1 October to 1 January."""
    month = parse_period("2026-02")
    assert (month.first_day, month.last_day) == (date(2026, 2, 1), date(2026, 2, 28))
    assert month.start(VIENNA) == datetime(2026, 1, 31, 23, tzinfo=UTC)
    quarter = parse_period("2026-q4")
    assert quarter.name == "2026-Q4"
    assert quarter.end(VIENNA) == datetime(2026, 12, 31, 23, tzinfo=UTC)
    assert period_after(quarter).name == "2027-Q1"
    assert period_after(month).name == "2026-03"


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-Q0", "2026-Q5", "26-11", "", "Q4"])
def test_a_malformed_period_is_bad_input(text: str) -> None:
    """Anything but YYYY-MM (months 01-12) or YYYY-Qn (1-4) is refused, naming the forms."""
    with pytest.raises(BadInput, match="2026-Q4"):
        parse_period(text)


def test_the_last_complete_period_is_reckoned_in_the_clients_time_zone() -> None:
    """At 00:30 on 1 January in Vienna (still 31 December in UTC) December and Q4 are over."""
    now = datetime(2025, 12, 31, 23, 30, tzinfo=UTC)
    assert last_complete_period(MONTHLY, now, VIENNA).name == "2025-12"
    assert last_complete_period(QUARTERLY, now, VIENNA).name == "2025-Q4"
    assert last_complete_period(MONTHLY, now, ZoneInfo("UTC")).name == "2025-11"


def test_the_cadence_names_the_period_kind() -> None:
    """A report cadence of 91 days (or none) is quarterly, one of 30 days monthly."""
    assert cadence_kind(timedelta(days=91)) == QUARTERLY
    assert cadence_kind(None) == QUARTERLY
    assert cadence_kind(timedelta(days=30)) == MONTHLY


def test_outages_group_failing_samples_by_the_next_sample_up() -> None:
    """Failing samples followed by the same sample up are one outage, ending then;
    it is planned only if every sample is; outages come longest first."""
    start = datetime(2026, 10, 1, tzinfo=UTC)

    def failed(minute: int, planned: bool, up_at: int | None) -> FailedSample:
        at = start + timedelta(minutes=minute)
        return FailedSample(
            Sample("c", "site", at, up=False, cause="refused", planned=planned),
            None if up_at is None else start + timedelta(minutes=up_at),
        )

    outages = outages_of(
        [
            failed(0, True, 2),
            failed(1, False, 2),
            failed(10, True, 15),
            failed(11, True, 15),
            failed(50, False, None),
        ]
    )
    assert [(item["duration_s"], item["planned"], item["samples"]) for item in outages] == [
        (300.0, True, 2),
        (120.0, False, 2),
        (0.0, False, 1),
    ]
