"""The report's availability target, its year-on-year column and the sector's section.

Each test writes samples and entries into a real ledger, runs the real ``report``
command and checks the figures against values computed here from what it wrote: the
target met or missed, the SLA uptime of the same period a year earlier, a hotel's
readiness for its summer season, an NGO's backups with their donor export verified, a
school's availability during its exam periods, and a government client's audit export
written beside the report (CSV and JSON, with their sha256 recorded).

Every test runs on SQLite and on PostgreSQL (the ``ledger_url`` of the service tests).
"""

from __future__ import annotations

import csv
import hashlib
import json
import stat
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.recorded_runs import append_run_finished
from support.service import ledger_url, service_postgres

from webmg_ops.errors import ExitCode
from webmg_ops.ledger import open_ledger
from webmg_ops.ledger.samples import Sample, roll_up, store_samples

__all__ = ["ledger_url", "service_postgres"]

Run = Callable[..., Any]

#: The levels' availability targets as the service's level table states them.
CONTINUOUS_EVOLUTION_TARGET = 99.5
#: The samples are rolled up by then: every day of the tests' periods is complete.
ROLLED_UP_AT = datetime(2026, 11, 5, tzinfo=UTC)
HOUR = timedelta(hours=1)


def samples(
    client: str,
    check: str,
    first: datetime,
    count: int,
    step: timedelta,
    down: Iterable[int] = (),
    planned: Iterable[int] = (),
) -> list[Sample]:
    """Return ``count`` samples of one check from ``first``, every ``step``: up but the
    indexes in ``down`` (unplanned failures) and ``planned`` (planned ones)."""
    failing, planned_work = set(down), set(planned)
    return [
        Sample(
            client=client,
            check=check,
            at=first + index * step,
            up=index not in failing and index not in planned_work,
            status=200,
            latency_ms=120.0,
            cause="refused" if index in failing or index in planned_work else None,
            planned=index in planned_work,
            planned_by="run r-work" if index in planned_work else None,
        )
        for index in range(count)
    ]


def store(url: str, taken: list[Sample]) -> None:
    """Store the samples and roll them up into daily aggregates (all at once: a roll-up
    only aggregates days after the newest one already rolled up)."""
    with open_ledger(url) as ledger:
        store_samples(ledger, taken)
        roll_up(ledger, ROLLED_UP_AT)


def run_finished(
    url: str, client: str, run_id: str, action: str, at: datetime, **fields: Any
) -> None:
    """Append a run-finished entry the way the engine records one."""
    with open_ledger(url) as ledger:
        append_run_finished(ledger, client, run_id, action, at, **fields)


def sla(taken: list[Sample]) -> float:
    """Return the SLA uptime of the samples in percent: up / (probes - planned failures)."""
    up = sum(1 for item in taken if item.up)
    planned = sum(1 for item in taken if item.planned)
    return 100.0 * up / (len(taken) - planned)


def report(cli: Run, client: str, period: str) -> dict[str, Any]:
    done = cli("report", client, "--period", period, "--json")
    assert done.code == ExitCode.OK, done
    document: dict[str, Any] = json.loads(done.out)
    return document


# --- availability target -------------------------------------------------------


@pytest.mark.parametrize(
    ("unplanned", "contract_target"),
    [(1, None), (3, None), (1, 99.9)],
    ids=["level-target-met", "level-target-missed", "raised-target-missed"],
)
def test_the_availability_target_is_the_policys_and_met_or_missed_by_the_sla_uptime(
    cli: Run,
    ledger_url: str,
    edit_contract: Callable[..., Path],
    unplanned: int,
    contract_target: float | None,
) -> None:
    """A continuous-evolution client's check is held to 99.5 % SLA uptime (or the higher
    target its contract sets): met when the test's own SLA figure reaches it, missed
    otherwise; a check without samples has the target but no verdict."""
    client, check = "terre-solidaire", "donation platform (node 1)"
    if contract_target is not None:
        edit_contract(
            client, lambda data: data.setdefault("targets", {}).update(availability=contract_target)
        )
    taken = samples(
        client,
        check,
        datetime(2026, 10, 5, tzinfo=UTC),
        400,
        timedelta(minutes=5),
        down=range(100, 100 + unplanned),
        planned=[300],
    )
    store(ledger_url, taken)
    target = contract_target if contract_target is not None else CONTINUOUS_EVOLUTION_TARGET

    document = report(cli, client, "2026-10")

    checks = {item["check"]: item for item in document["figures"]["availability"]}
    assert checks[check]["target_percent"] == target
    assert checks[check]["target_met"] is (sla(taken) >= target)
    assert checks[check]["sla_percent"] == pytest.approx(sla(taken), abs=0.001)
    assert checks["donation platform (node 2)"]["target_percent"] == target
    assert checks["donation platform (node 2)"]["target_met"] is None
    html = Path(document["html"]).read_text()
    verdict = "met" if sla(taken) >= target else "missed"
    assert f"{target} % ({verdict})" in html


def test_a_level_without_availability_monitoring_has_no_target(cli: Run, ledger_url: str) -> None:
    """On stability-security the policy sets no availability target: the report says so."""
    store(
        ledger_url,
        samples("alpenhof", "booking site", datetime(2026, 10, 5, tzinfo=UTC), 48, HOUR, down=[3]),
    )
    document = report(cli, "alpenhof", "2026-10")
    (check,) = document["figures"]["availability"]
    assert (check["target_percent"], check["target_met"]) == (None, None)
    assert "no availability target" in Path(document["html"]).read_text()


# --- year on year ----------------------------------------------------------------


def test_each_check_shows_the_same_period_a_year_earlier_from_the_daily_aggregates(
    cli: Run, ledger_url: str
) -> None:
    """October 2026's report carries October 2025's SLA uptime of each check, from the
    aggregates kept then; a check with none kept then shows none, and days of
    September 2025 or November 2025 do not count."""
    client = "terre-solidaire"
    node1, node2 = "donation platform (node 1)", "donation platform (node 2)"
    then = samples(
        client, node1, datetime(2025, 10, 10, tzinfo=UTC), 48, HOUR, down=[5, 6], planned=[7]
    )
    outside = samples(
        client, node1, datetime(2025, 9, 10, tzinfo=UTC), 24, HOUR, down=range(24)
    ) + samples(client, node1, datetime(2025, 11, 10, tzinfo=UTC), 24, HOUR, down=range(24))
    now = samples(client, node1, datetime(2026, 10, 10, tzinfo=UTC), 24, HOUR) + samples(
        client, node2, datetime(2026, 10, 10, tzinfo=UTC), 24, HOUR
    )
    store(ledger_url, outside + then + now)

    document = report(cli, client, "2026-10")

    figures = document["figures"]
    assert figures["year_before"] == "2025-10"
    checks = {item["check"]: item for item in figures["availability"]}
    assert checks[node1]["year_before_percent"] == pytest.approx(sla(then), abs=0.001)
    assert checks[node2]["year_before_percent"] is None
    # This year's figures are this year's days only.
    assert checks[node1]["probes"] == 24
    html = Path(document["html"]).read_text()
    assert "A year earlier (2025-10)" in html
    assert f"{sla(then):.3f} %" in html


# --- hotel: peak-season readiness ---------------------------------------------------


def test_a_hotel_is_not_ready_for_its_season_when_a_run_failed_or_never_ran(
    cli: Run, ledger_url: str
) -> None:
    """Before the next summer season (1 July to 31 August 2027, ahead of October 2026's
    report), the hotel's latest backup succeeded, its latest drill failed and no update
    was recorded: not ready, for those two reasons; a drill that succeeded earlier does
    not hide the later failure, and a dry run does not count."""
    client = "alpenhof"
    run_finished(ledger_url, client, "r-drill-old", "drill", datetime(2026, 10, 2, tzinfo=UTC))
    run_finished(ledger_url, client, "r-backup", "backup", datetime(2026, 10, 3, tzinfo=UTC))
    run_finished(
        ledger_url, client, "r-drill", "drill", datetime(2026, 10, 4, tzinfo=UTC), outcome="failed"
    )
    run_finished(
        ledger_url, client, "r-update-dry", "update", datetime(2026, 10, 5, tzinfo=UTC), check=True
    )

    document = report(cli, client, "2026-10")

    season = document["figures"]["sector_section"]["peak_season"]
    assert (season["freeze"], season["first_day"], season["last_day"]) == (
        "summer season",
        "2027-07-01",
        "2027-08-31",
    )
    assert season["ready"] is False
    assert {(item["action"], item["kind"], item["run_id"]) for item in season["reasons"]} == {
        ("drill", "failed", "r-drill"),
        ("update", "missing", None),
    }
    latest = {item["action"]: item["run_id"] for item in season["latest"]}
    assert latest == {"backup": "r-backup", "drill": "r-drill", "update": None}
    html = Path(document["html"]).read_text()
    assert "Not ready for the season" in html
    assert "the latest restore drill run, r-drill, ended failed" in html
    assert "no update run was recorded before it" in html


def test_a_hotel_whose_latest_backup_drill_and_update_succeeded_is_ready(
    cli: Run, ledger_url: str
) -> None:
    """In June 2026's report the season starts right after the period (1 July 2026): the
    runs before it all succeeded, so the hotel is ready; a failed run after the season
    started is not read."""
    client = "alpenhof"
    for day, action in ((2, "backup"), (3, "drill"), (4, "update")):
        run_finished(ledger_url, client, f"r-{action}", action, datetime(2026, 6, day, tzinfo=UTC))
    run_finished(
        ledger_url, client, "r-late", "backup", datetime(2026, 7, 2, tzinfo=UTC), outcome="failed"
    )

    document = report(cli, client, "2026-06")

    season = document["figures"]["sector_section"]["peak_season"]
    assert (season["first_day"], season["ready"], season["reasons"]) == ("2026-07-01", True, [])
    assert "Ready for the season" in Path(document["html"]).read_text()


# --- NGO: donor-export check of the backups ----------------------------------------


def test_an_ngos_backups_of_the_period_are_listed_with_their_donor_export_check(
    cli: Run, ledger_url: str
) -> None:
    """Of the period's backups, the one whose evidence proves the donor export counts as
    verified, the one without is named as missing; a backup of another month and a dry
    run are not the period's backups."""
    client = "terre-solidaire"
    run_finished(ledger_url, client, "r-sept", "backup", datetime(2026, 9, 20, tzinfo=UTC))
    run_finished(
        ledger_url,
        client,
        "r-verified",
        "backup",
        datetime(2026, 10, 3, tzinfo=UTC),
        evidence={"donor_export": {"ok": True, "rows": 1200}},
    )
    run_finished(
        ledger_url,
        client,
        "r-unverified",
        "backup",
        datetime(2026, 10, 4, tzinfo=UTC),
        evidence={"snapshots": {"web1": "abc"}},
    )
    run_finished(
        ledger_url, client, "r-dry", "backup", datetime(2026, 10, 5, tzinfo=UTC), check=True
    )

    document = report(cli, client, "2026-10")

    section = document["figures"]["sector_section"]
    donor = section["donor_export"]
    assert [item["run_id"] for item in donor["backups"]] == ["r-verified", "r-unverified"]
    assert (donor["verified"], donor["missing"]) == (1, ["r-unverified"])
    assert section["peak_season"] is None and section["exam_periods"] is None
    html = Path(document["html"]).read_text()
    assert "donor export verified: 1 of 2" in html
    assert "Backups without a verified donor export: r-unverified." in html


# --- education: availability during exam periods --------------------------------------


def test_a_schools_availability_during_its_exam_periods_comes_from_those_days(
    cli: Run, ledger_url: str, edit_contract: Callable[..., Path]
) -> None:
    """A school's January report shows its winter exams (12 to 23 January, the
    education preset's freeze) with the SLA uptime of those days only: failures on
    10 and 25 January do not count, those on 13 January do."""
    client, check = "terre-solidaire", "donation platform (node 1)"
    edit_contract(client, lambda data: data.update(sector="education"))
    first = datetime(2026, 1, 8, tzinfo=UTC)
    taken = samples(
        client,
        check,
        first,
        24 * 20,
        HOUR,
        down=[*range(48, 52), *range(5 * 24, 5 * 24 + 3), *range(17 * 24, 17 * 24 + 5)],
        planned=[5 * 24 + 10],
    )
    store(ledger_url, taken)
    exams = [item for item in taken if date(2026, 1, 12) <= item.at.date() <= date(2026, 1, 23)]

    document = report(cli, client, "2026-01")

    (period,) = document["figures"]["sector_section"]["exam_periods"]
    assert (period["name"], period["days_from"], period["days_to"]) == (
        "winter exams",
        "2026-01-12",
        "2026-01-23",
    )
    checks = {item["check"]: item for item in period["checks"]}
    assert checks[check]["probes"] == len(exams)
    assert checks[check]["sla_percent"] == pytest.approx(sla(exams), abs=0.001)
    assert checks[check]["target_met"] is (sla(exams) >= CONTINUOUS_EVOLUTION_TARGET)
    assert checks["donation platform (node 2)"]["probes"] == 0
    html = Path(document["html"]).read_text()
    assert "winter exams (2026-01-12 to 2026-01-23)" in html
    assert f"{sla(exams):.3f} %" in html


def test_a_period_without_exam_days_says_so(
    cli: Run, ledger_url: str, edit_contract: Callable[..., Path]
) -> None:
    """October holds none of a school's exam periods: the section says so."""
    edit_contract("terre-solidaire", lambda data: data.update(sector="education", freezes=[]))
    document = report(cli, "terre-solidaire", "2026-10")
    assert document["figures"]["sector_section"]["exam_periods"] == []
    assert "No exam period falls within this period." in Path(document["html"]).read_text()


# --- government: the audit export --------------------------------------------------


def test_a_government_report_carries_the_periods_entries_as_csv_and_json(
    cli: Run, ledger_url: str, inventories: Path
) -> None:
    """With ``reporting.audit_export`` (government), the client's entries of the period,
    and only those, are written beside the report as audit.csv and audit.json (0600,
    with their hashes as stored), listed in the ``--json`` document and the
    report-written entry with their sha256, and named in the sector section; a secret
    typed into an entry's free text is masked in both."""
    client = "riverton"
    secret = "Zk4-audit-secret-71qp"
    variables = inventories / client / "group_vars" / "all" / "main.yml"
    variables.write_text(variables.read_text() + f'\naudit_test_api_token: "{secret}"\n')
    with open_ledger(ledger_url) as ledger:
        ledger.append("note", client, {"text": "before"}, at=datetime(2026, 9, 20, tzinfo=UTC))
        inside = [
            ledger.append(
                "note",
                client,
                {"text": f"token {secret} rotated"},
                at=datetime(2026, 10, 6, tzinfo=UTC),
            ),
            ledger.append("note", client, {"text": "second"}, at=datetime(2026, 10, 7, tzinfo=UTC)),
        ]
        ledger.append(
            "note", "alpenhof", {"text": "another client"}, at=datetime(2026, 10, 8, tzinfo=UTC)
        )
        ledger.append("note", client, {"text": "after"}, at=datetime(2026, 11, 20, tzinfo=UTC))

    document = report(cli, client, "2026-10")

    folder = Path(document["html"]).parent
    as_json = json.loads((folder / "audit.json").read_text())
    assert [item["seq"] for item in as_json] == [entry.seq for entry in inside]
    assert [item["hash"] for item in as_json] == [entry.hash for entry in inside]
    with (folder / "audit.csv").open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [int(row["seq"]) for row in rows] == [entry.seq for entry in inside]
    assert rows[1]["hash"] == inside[1].hash
    for name in ("audit_csv", "audit_json"):
        path = Path(document[name])
        assert path.parent == folder
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert document["sha256"][name] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert secret not in path.read_text()
    assert "token ******** rotated" in (folder / "audit.json").read_text()
    with open_ledger(ledger_url, create=False) as ledger:
        (written,) = ledger.entries(kinds=("report-written",))
    assert written.payload["files"]["audit_json"]["sha256"] == document["sha256"]["audit_json"]
    assert written.payload["files"]["audit_csv"]["path"] == document["audit_csv"]
    assert document["figures"]["sector_section"]["audit_export"] == {
        "files": ["audit.csv", "audit.json"],
        "entries": len(inside),
    }
    html = Path(document["html"]).read_text()
    assert "2 ledger entries are attached beside this report as audit.csv, audit.json" in html


def test_a_client_without_audit_export_gets_no_audit_files(cli: Run, ledger_url: str) -> None:
    """A hotel on stability-security has no audit export: no file, no sector part."""
    document = report(cli, "alpenhof", "2026-10")
    assert "audit_csv" not in document and "audit_csv" not in document["sha256"]
    assert not (Path(document["html"]).parent / "audit.csv").exists()
    assert document["figures"]["sector_section"]["audit_export"] is None
