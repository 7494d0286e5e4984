"""The figures of a client's report, computed from ledger entries and samples alone.

Pure: given the client, the period, the entries, the daily aggregates, the samples
and the ledger's checkpoint at the period's end, :func:`report_figures` returns one
JSON-ready document, the same that ``report --json`` prints and the templates render.
No host is queried and nothing is written here.

Availability is read from the daily aggregates (``sample_days``, UTC days): a day
belongs to the period when its date falls within the period's local dates. Planned
failures (a recorded run or a maintenance window) are left out of the SLA figure:
``sla_percent = up / (probes - down_planned)``. Outages are runs of failing samples
in a row, read from the raw samples still kept (only the failing ones, each with the
next sample up, found in SQL); an outage is planned when every one
of its samples is. Each check is held to the policy's ``targets.availability`` (None:
the level has none) and compared with the same period a year earlier, from the daily
aggregates kept then (``days`` reaches back to that period). The sector's own section
is computed by :mod:`webmg_ops.service.report_sectors`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from webmg_ops.config.clients import Client
from webmg_ops.config.durations import parse_duration
from webmg_ops.errors import BadInput
from webmg_ops.hardening.compliance import percent as compliance_percent
from webmg_ops.ledger import Checkpoint, Entry
from webmg_ops.ledger.samples import FailedSample, SampleDay
from webmg_ops.reports.period import Period, cadence_kind, parse_period
from webmg_ops.reports.runlog import contract_timezone
from webmg_ops.runs.records import RUN_FINISHED
from webmg_ops.service.backlog import backlog_of
from webmg_ops.service.changes import ChangeState, changes_of
from webmg_ops.service.decisions import decisions_of
from webmg_ops.service.incidents import clock_statuses, fold_incidents, rules_for
from webmg_ops.service.report_sectors import sector_section
from webmg_ops.service.risks import RiskState, register_of

#: The policy setting of an availability target (a percentage), when a level has one.
AVAILABILITY_TARGET = "targets.availability"


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 3) if whole else None


def _period_days(days: Sequence[SampleDay], period: Period) -> list[SampleDay]:
    return [day for day in days if period.first_day <= day.day <= period.last_day]


def outages_of(failures: Sequence[FailedSample]) -> list[dict[str, Any]]:
    """Given one check's failing samples oldest first, each with when the check was next
    up, return its outages: failing samples in a row (the same next sample up), each
    with start, end (the next sample up, else the last failing one), duration in
    seconds, whether planned (every sample planned) and causes. Longest first."""
    groups: dict[datetime | None, list[FailedSample]] = {}
    for item in failures:
        groups.setdefault(item.next_up, []).append(item)
    outages = []
    for next_up, run in groups.items():
        first = run[0].sample.at
        end = next_up if next_up is not None else run[-1].sample.at
        outages.append(
            {
                "start": first.isoformat(),
                "end": end.isoformat(),
                "duration_s": (end - first).total_seconds(),
                "samples": len(run),
                "planned": all(item.sample.planned for item in run),
                "causes": sorted({item.sample.cause or "unknown" for item in run}),
            }
        )
    return sorted(outages, key=lambda item: (-item["duration_s"], item["start"]))


def year_before(period: Period) -> Period | None:
    """Given a period, return the same period one year earlier (None: before 1970)."""
    try:
        return parse_period(f"{period.first_day.year - 1}{period.name[4:]}")
    except BadInput:
        return None


def _sla_percent(days: Sequence[SampleDay]) -> float | None:
    probes = sum(day.probes for day in days)
    return _percent(sum(day.up for day in days), probes - sum(day.down_planned for day in days))


def _year_before_name(period: Period) -> str | None:
    earlier = year_before(period)
    return earlier.name if earlier is not None else None


def availability_target(client: Client) -> float | None:
    """Given a client, return its availability target in percent (None: the level has none)."""
    target = client.policy.values.get(AVAILABILITY_TARGET)
    return float(target.value) if target is not None and target.value is not None else None


def _availability(
    client: Client,
    period: Period,
    days: Sequence[SampleDay],
    failures: Mapping[str, Sequence[FailedSample]],
) -> list[dict[str, Any]]:
    target = availability_target(client)
    earlier = year_before(period)
    names = [check.name for check in client.contract.health_checks]
    names += sorted({day.check for day in _period_days(days, period)} - set(names))
    checks = []
    for name in names:
        own = [day for day in _period_days(days, period) if day.check == name]
        then = (
            [day for day in _period_days(days, earlier) if day.check == name]
            if earlier is not None
            else []
        )
        probes = sum(day.probes for day in own)
        up = sum(day.up for day in own)
        planned = sum(day.down_planned for day in own)
        unplanned = sum(day.down_unplanned for day in own)
        outages = outages_of(failures.get(name, ()))
        checks.append(
            {
                "check": name,
                "probes": probes,
                "up": up,
                "down_planned": planned,
                "down_unplanned": unplanned,
                "uptime_percent": _percent(up, probes),
                "sla_percent": _percent(up, probes - planned),
                "target_percent": target,
                "target_met": (
                    None
                    if target is None or probes - planned == 0
                    else 100.0 * up / (probes - planned) >= target
                ),
                # The same period a year earlier, from the daily aggregates kept then.
                "year_before_percent": _sla_percent(then) if then else None,
                "daily": [
                    {
                        "day": day.day.isoformat(),
                        "sla_percent": _percent(day.up, day.probes - day.down_planned),
                        "latency_avg_ms": day.latency_avg_ms,
                        "latency_max_ms": day.latency_max_ms,
                        "page_bytes_max": day.page_bytes_max,
                    }
                    for day in own
                ],
                "outages": outages,
                "outages_planned": sum(1 for item in outages if item.get("planned")),
                "outages_unplanned": sum(1 for item in outages if not item.get("planned")),
            }
        )
    return checks


def _incidents(
    client: Client, entries: Sequence[Entry], start: datetime, end: datetime, now: datetime
) -> list[dict[str, Any]]:
    rules = rules_for(client)
    at = min(end, now)
    found = []
    for incident in fold_incidents(entries).values():
        closed = next(
            (event.at for event in incident.timeline if event.kind == "incident-closed"), None
        )
        if incident.opened_at >= end or (closed is not None and closed < start):
            continue
        clocks = clock_statuses(incident, rules, at)
        found.append(
            {
                "id": incident.id,
                "title": incident.title,
                "severity": incident.severity,
                "state": incident.state,
                "opened_at": incident.opened_at.isoformat(),
                "closed_at": closed.isoformat() if closed else None,
                "clocks": [{"name": clock.name, "state": clock.state} for clock in clocks],
                "breached": [clock.name for clock in clocks if clock.state == "breached"],
                "postmortem": incident.postmortem is not None,
            }
        )
    return found


#: A zero duration as text (``0s``): a measured RPO or RTO may be one.
_ZERO_DURATION = re.compile(r"0+[smhdw]")

#: How many periods the compliance trend covers, the report's own the last.
TREND_PERIODS = 12


def trend_periods(period: Period, count: int = TREND_PERIODS) -> list[Period]:
    """Given a period (a month or a quarter), return the ``count`` periods of its kind
    ending with it, oldest first."""
    year, _, rest = period.name.partition("-")
    if rest.upper().startswith("Q"):
        last = int(year) * 4 + int(rest[1:]) - 1
        names = [
            f"{index // 4:04d}-Q{index % 4 + 1}" for index in range(last - count + 1, last + 1)
        ]
    else:
        last = int(year) * 12 + int(rest) - 1
        names = [
            f"{index // 12:04d}-{index % 12 + 1:02d}" for index in range(last - count + 1, last + 1)
        ]
    return [parse_period(name) for name in names]


def compliance_of(payload: Mapping[str, Any]) -> tuple[int, int] | None:
    """Given a ``run-finished`` payload, return the compliance (passed, applicable) it
    measured last, or None: a hardening run's score after the play, a drift check's
    (``harden --check``, nothing changed) its only score."""
    evidence = payload.get("evidence")
    if payload.get("action") != "harden" or not isinstance(evidence, Mapping):
        return None
    score = evidence.get("score_before") if evidence.get("check") else evidence.get("score_after")
    if not isinstance(score, Mapping):
        return None
    passed, applicable = score.get("passed"), score.get("applicable")
    if isinstance(passed, int) and isinstance(applicable, int):
        return passed, applicable
    return None


def _compliance_trend(
    entries: Sequence[Entry], period: Period, zone: ZoneInfo
) -> list[dict[str, Any]]:
    """Given the entries (seq order), the report's period and the client's zone, return
    the last compliance measured in each of the trend's periods (None: none measured)."""
    trend = []
    for item in trend_periods(period):
        start, end = item.start(zone), item.end(zone)
        last = None
        for entry in entries:
            if entry.kind == RUN_FINISHED and start <= entry.at < end:
                last = compliance_of(entry.payload) or last
        passed, total = last if last is not None else (None, None)
        trend.append(
            {
                "period": item.name,
                "passed": passed,
                "total": total,
                "percent": None if last is None else compliance_percent(*last),
            }
        )
    return trend


def _updates(runs: Sequence[Entry]) -> list[dict[str, Any]]:
    """Given the period's ``run-finished`` entries, return each real update run with the
    packages it changed per host: name, version before and after (None: installed or
    removed), and whether the host's batch was rolled back (versions restored)."""
    updates = []
    for entry in runs:
        payload = entry.payload
        if payload.get("action") != "update" or payload.get("check"):
            continue
        evidence = payload.get("evidence")
        hosts = evidence.get("hosts") if isinstance(evidence, Mapping) else None
        hosts = hosts if isinstance(hosts, Mapping) else {}
        packages = [
            {
                "host": str(host),
                "name": item.get("name"),
                "from": item.get("old"),
                "to": item.get("new"),
                "rolled_back": isinstance(facts.get("rollback"), Mapping),
            }
            for host, facts in sorted(hosts.items())
            if isinstance(facts, Mapping)
            for item in facts.get("packages") or []
            if isinstance(item, Mapping)
        ]
        run_id = str(payload.get("run_id", ""))
        updates.append(
            {
                "run_id": run_id,
                "at": entry.at.isoformat(),
                "log": f"../../../runs/{run_id}/run-log.html",
                "outcome": payload.get("outcome"),
                "packages": packages,
            }
        )
    return updates


def _duration_seconds(value: Any) -> float | None:
    """Given a recorded duration (seconds, or text such as ``2h``), return seconds or None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and _ZERO_DURATION.fullmatch(value.strip()):
        return 0.0  # parse_duration refuses a zero duration: a setting, not a measurement
    try:
        return parse_duration(value).total_seconds()
    except ValueError:
        return None


def _drill(payload: Mapping[str, Any], evidence: Mapping[str, Any]) -> dict[str, Any]:
    """Given a drill's payload and evidence, return its figures: RPO and RTO measured and
    their targets, as recorded text and in seconds. A drill records them per host (the
    worst host's are the drill's) with the targets beside; a figure recorded for the
    whole drill is taken as it is."""
    recorded = evidence.get("hosts")
    hosts = [
        item
        for item in (recorded.values() if isinstance(recorded, Mapping) else ())
        if isinstance(item, Mapping)
    ]
    targets = evidence.get("targets")
    targets = targets if isinstance(targets, Mapping) else {}
    figures: dict[str, Any] = {
        "run_id": str(payload.get("run_id", "")),
        "outcome": payload.get("outcome"),
    }
    for key in ("rpo", "rto"):
        if key in evidence:
            text = evidence.get(key)
            seconds = _duration_seconds(evidence.get(f"{key}_s", text))
        else:
            measured = [
                (found, item.get(key))
                for item in hosts
                if (found := _duration_seconds(item.get(f"{key}_s"))) is not None
            ]
            seconds, text = max(measured, key=lambda pair: pair[0], default=(None, None))
        target = evidence.get(f"{key}_target") or targets.get(key)
        if target is None:
            target = next((item.get(f"{key}_target") for item in hosts), None)
        figures |= {
            key: text,
            f"{key}_target": target,
            f"{key}_s": seconds,
            f"{key}_target_s": _duration_seconds(target),
        }
    figures["ok"] = evidence.get("ok", all(item.get("ok") for item in hosts) if hosts else None)
    return figures


def _actions(entries: Sequence[Entry], period: Period, zone: ZoneInfo) -> dict[str, Any]:
    start, end = period.start(zone), period.end(zone)
    runs = [entry for entry in entries if entry.kind == RUN_FINISHED and start <= entry.at < end]
    listed = []
    drills = []
    for entry in runs:
        payload = entry.payload
        run_id = str(payload.get("run_id", ""))
        listed.append(
            {
                "run_id": run_id,
                "action": payload.get("action"),
                "check": bool(payload.get("check")),
                "outcome": payload.get("outcome"),
                "at": entry.at.isoformat(),
                "seq": entry.seq,
                # From var/reports/<client>/<period>/ to var/runs/<run-id>/.
                "log": f"../../../runs/{run_id}/run-log.html",
            }
        )
        evidence = payload.get("evidence") or {}
        if payload.get("action") == "drill" and isinstance(evidence, Mapping):
            drills.append(_drill(payload, evidence))

    def succeeded(action: str) -> int:
        return sum(
            1
            for entry in runs
            if entry.payload.get("action") == action
            and entry.payload.get("outcome") == "succeeded"
            and not entry.payload.get("check")
        )

    return {
        "runs": listed,
        "updates_applied": succeeded("update"),
        "backups_taken": succeeded("backup"),
        "hardening_runs": succeeded("harden"),
        "drills": drills,
        "updates": _updates(runs),
        "compliance_trend": _compliance_trend(entries, period, zone),
    }


def _service(
    client: Client, entries: Sequence[Entry], start: datetime, end: datetime
) -> dict[str, Any]:
    zone = contract_timezone(client.contract)
    upto = [entry for entry in entries if entry.at < end]
    register = register_of(upto, today=(end - timedelta(seconds=1)).astimezone(zone).date())
    backlog = backlog_of(upto, client.policy)
    changes = changes_of(upto)
    return {
        "risks_open": [
            {"id": risk.id, "title": risk.title}
            for risk in register
            if risk.state == RiskState.OPEN
        ],
        "risks_accepted": [
            {
                "id": risk.id,
                "title": risk.title,
                "until": risk.accepted_until.isoformat() if risk.accepted_until else None,
            }
            for risk in register
            if risk.state == RiskState.ACCEPTED
        ],
        "decisions": [
            {"id": item.id, "title": item.title, "by": item.by, "at": item.at.isoformat()}
            for item in decisions_of(upto)
            if start <= item.at < end
        ],
        "backlog": [
            {"id": item.id, "title": item.title, "waits_on": item.waits_on} for item in backlog
        ],
        "changes_delivered": [
            {"id": change.id, "title": change.title, "state": str(change.state)}
            for change in changes.values()
            if change.state in (ChangeState.DEPLOYED, ChangeState.ACCEPTED)
        ],
    }


def _sector(client: Client, availability: Sequence[Mapping[str, Any]], budget: int | None) -> str:
    sector = str(client.contract.sector)
    if sector == "hotel":
        heaviest = [
            day["page_bytes_max"]
            for check in availability
            for day in check["daily"]
            if day["page_bytes_max"] is not None
        ]
        if not heaviest:
            return "page_weight_none"
        if budget is not None and max(heaviest) > budget:
            return "page_weight_over"
        return "page_weight_within"
    return sector


def report_figures(
    client: Client,
    period: Period,
    entries: Sequence[Entry],
    days: Sequence[SampleDay],
    failures: Mapping[str, Sequence[FailedSample]],
    budget: int | None,
    checkpoint: Checkpoint | None,
    now: datetime,
) -> dict[str, Any]:
    """Given a client, a period, the client's entries (seq order), its daily aggregates
    (from the same period a year earlier on, for the year-on-year figure),
    its failing samples of the period by check (with when next up), the page-weight
    budget the probes checked against (None: none), the ledger's checkpoint at the period's end
    (None: empty then) and an aware instant, return the report's figures."""
    zone = contract_timezone(client.contract)
    start, end = period.start(zone), period.end(zone)
    availability = _availability(client, period, days, failures)
    heaviest = [
        day["page_bytes_max"]
        for check in availability
        for day in check["daily"]
        if day["page_bytes_max"] is not None
    ]
    incidents = _incidents(client, entries, start, end, now)
    actions = _actions(entries, period, zone)
    has_data = bool(any(check["probes"] for check in availability) or incidents or actions["runs"])
    return {
        "client": client.name,
        "level": client.contract.level_name,
        "sector": str(client.contract.sector),
        "period": period.name,
        "cadence": cadence_kind(client.policy.cadence("report")),
        "timezone": str(zone),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "in_progress": end > now,
        "has_data": has_data,
        "availability": availability,
        "incidents": incidents,
        "actions": actions,
        "service": _service(client, entries, start, end),
        "sector_note": {
            "kind": _sector(client, availability, budget),
            "page_bytes_max": max(heaviest) if heaviest else None,
            "page_budget": budget,
        },
        "sector_section": sector_section(
            client, period, entries, days, availability_target(client), _percent
        ),
        "year_before": _year_before_name(period),
        "proof": {
            "seq": checkpoint.seq if checkpoint else 0,
            "hash": checkpoint.hash if checkpoint else None,
        },
    }
