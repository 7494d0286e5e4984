"""The sector's own section of a client's report, computed from ledger entries and samples.

Pure, like :mod:`webmg_ops.service.report_figures`: nothing is queried or written here.
Each part is computed where the client's sector or policy calls for it, else None:

- ``peak_season`` (hotel): the sector's next season freeze (ongoing or upcoming at the
  period's end) and whether the latest backup, drill and update run recorded before it
  (before the period's end, when that comes first) succeeded: ready, or not with why.
- ``donor_export`` (policy ``checks.donor_export``): the period's backups, each with its
  donor export verified or missing. A backup's run-finished evidence proves the export
  with ``donor_export: {"ok": true, ...}`` (or ``true``); evidence without it counts as
  missing, so a backup that does not check the export never passes as one that did.
- ``exam_periods`` (education): availability per check during each of the client's
  freezes (its exam and admission periods) that overlaps the period, from the daily
  aggregates of those days (UTC days whose date falls within the freeze's local dates).
- ``audit_export`` (policy ``reporting.audit_export``): the files the period's ledger
  entries are exported to beside the report, and how many entries they hold; the files
  are written by :mod:`webmg_ops.service.report`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from webmg_ops.config.calendar import FreezePeriod, freeze_periods
from webmg_ops.config.clients import Client
from webmg_ops.config.contract import Sector
from webmg_ops.config.policy import SECTOR_PRESETS, PolicyFreeze
from webmg_ops.ledger import Entry
from webmg_ops.ledger.samples import SampleDay
from webmg_ops.reports.period import Period
from webmg_ops.reports.runlog import contract_timezone
from webmg_ops.runs.records import RUN_FINISHED

#: The runs whose latest outcome before a hotel's season says whether it is ready.
READINESS_ACTIONS: tuple[str, ...] = ("backup", "drill", "update")
#: How far after the period's end the next season freeze is looked for.
SEASON_LOOKAHEAD = timedelta(days=400)
#: The files the period's entries are exported to when the policy asks for an audit export.
AUDIT_CSV = "audit.csv"
AUDIT_JSON = "audit.json"


def _runs(entries: Sequence[Entry], action: str) -> list[Entry]:
    # Dry runs (check mode) prove nothing about the client's systems: left out.
    return [
        entry
        for entry in entries
        if entry.kind == RUN_FINISHED
        and entry.payload.get("action") == action
        and not entry.payload.get("check")
    ]


def _local_days(period: FreezePeriod, client: Client) -> tuple[date, date]:
    zone = contract_timezone(client.contract)
    first = period.interval.start.astimezone(zone).date()
    last = (period.interval.end - timedelta(seconds=1)).astimezone(zone).date()
    return first, last


def peak_season(client: Client, entries: Sequence[Entry], end: datetime) -> dict[str, Any] | None:
    """Given a hotel client, its entries (seq order) and the period's end, return its
    readiness for the next season freeze of its sector preset, ongoing or upcoming at the
    period's end: the freeze's name and local dates, when readiness is judged (the freeze's
    start, or the period's end if earlier), the latest backup, drill and update run before
    then, ``ready`` (each one recorded and succeeded) and the reasons it is not. None when
    the sector has no season freeze."""
    zone = contract_timezone(client.contract)
    freezes = [
        PolicyFreeze(freeze, f"sector {client.contract.sector.value}")
        for freeze in SECTOR_PRESETS[client.contract.sector].freezes
    ]
    found = freeze_periods(freezes, str(zone), end, end + SEASON_LOOKAHEAD)
    if not found:
        return None
    season = found[0]
    first, last = _local_days(season, client)
    as_of = min(season.interval.start, end)
    latest = []
    reasons = []
    for action in READINESS_ACTIONS:
        before = [entry for entry in _runs(entries, action) if entry.at < as_of]
        if not before:
            latest.append({"action": action, "run_id": None, "at": None, "outcome": None})
            reasons.append({"action": action, "kind": "missing", "run_id": None, "outcome": None})
            continue
        entry = before[-1]
        outcome = entry.payload.get("outcome")
        run_id = entry.payload.get("run_id")
        latest.append(
            {"action": action, "run_id": run_id, "at": entry.at.isoformat(), "outcome": outcome}
        )
        if outcome != "succeeded":
            reasons.append(
                {"action": action, "kind": "failed", "run_id": run_id, "outcome": outcome}
            )
    return {
        "freeze": season.freeze.name,
        "first_day": first.isoformat(),
        "last_day": last.isoformat(),
        "as_of": as_of.isoformat(),
        "latest": latest,
        "ready": not reasons,
        "reasons": reasons,
    }


def donor_export_verified(evidence: Any) -> bool:
    """Given a backup's run-finished evidence, return whether it proves the donor export."""
    if not isinstance(evidence, Mapping):
        return False
    check = evidence.get("donor_export")
    return check is True or (isinstance(check, Mapping) and check.get("ok") is True)


def donor_export(entries: Sequence[Entry], start: datetime, end: datetime) -> dict[str, Any]:
    """Given a client's entries and the period's bounds, return its backups of the period
    (run id, when, outcome, donor export verified or not), how many verified it and the
    run ids of those that did not."""
    backups = [
        {
            "run_id": entry.payload.get("run_id"),
            "at": entry.at.isoformat(),
            "outcome": entry.payload.get("outcome"),
            "verified": donor_export_verified(entry.payload.get("evidence")),
        }
        for entry in _runs(entries, "backup")
        if start <= entry.at < end
    ]
    return {
        "backups": backups,
        "verified": sum(1 for item in backups if item["verified"]),
        "missing": [item["run_id"] for item in backups if not item["verified"]],
    }


def exam_periods(
    client: Client,
    period: Period,
    days: Sequence[SampleDay],
    target: float | None,
    percent: Callable[[int, int], float | None],
) -> list[dict[str, Any]]:
    """Given an education client, the period, its daily aggregates, its availability
    target (None: none) and how a percentage is rounded, return each of its freezes that
    overlaps the period with its local dates, the days of it within the period, and per
    check the probes, those up, the planned failures, the SLA uptime and the target met."""
    zone = contract_timezone(client.contract)
    start, end = period.start(zone), period.end(zone)
    names = [check.name for check in client.contract.health_checks]
    found = []
    for freeze in freeze_periods(client.policy.freezes, str(zone), start, end):
        first, last = _local_days(freeze, client)
        since, until = max(first, period.first_day), min(last, period.last_day)
        own = [day for day in days if since <= day.day <= until]
        checks = []
        for name in names + sorted({day.check for day in own} - set(names)):
            mine = [day for day in own if day.check == name]
            probes = sum(day.probes for day in mine)
            up = sum(day.up for day in mine)
            planned = sum(day.down_planned for day in mine)
            sla = percent(up, probes - planned)
            checks.append(
                {
                    "check": name,
                    "probes": probes,
                    "up": up,
                    "down_planned": planned,
                    "sla_percent": sla,
                    "target_met": (
                        None
                        if target is None or probes - planned == 0
                        else 100.0 * up / (probes - planned) >= target
                    ),
                }
            )
        found.append(
            {
                "name": freeze.freeze.name,
                "first_day": first.isoformat(),
                "last_day": last.isoformat(),
                "days_from": since.isoformat(),
                "days_to": until.isoformat(),
                "checks": checks,
            }
        )
    return found


def audit_export(entries: Sequence[Entry], start: datetime, end: datetime) -> dict[str, Any]:
    """Given a client's entries and the period's bounds, return the audit export's file
    names and how many entries of the period they hold."""
    return {
        "files": [AUDIT_CSV, AUDIT_JSON],
        "entries": sum(1 for entry in entries if start <= entry.at < end),
    }


def sector_section(
    client: Client,
    period: Period,
    entries: Sequence[Entry],
    days: Sequence[SampleDay],
    target: float | None,
    percent: Callable[[int, int], float | None],
) -> dict[str, Any]:
    """Given a client, the period, its entries (seq order), its daily aggregates, its
    availability target (None: none) and how a percentage is rounded, return the sector's
    section: ``peak_season``, ``donor_export``, ``exam_periods`` and ``audit_export``,
    each None where neither the client's sector nor its policy calls for it."""
    zone = contract_timezone(client.contract)
    start, end = period.start(zone), period.end(zone)
    sector = client.contract.sector
    return {
        "peak_season": peak_season(client, entries, end) if sector == Sector.HOTEL else None,
        "donor_export": (
            donor_export(entries, start, end) if client.policy.get("checks.donor_export") else None
        ),
        "exam_periods": (
            exam_periods(client, period, days, target, percent)
            if sector == Sector.EDUCATION
            else None
        ),
        "audit_export": (
            audit_export(entries, start, end)
            if client.policy.get("reporting.audit_export")
            else None
        ),
    }
