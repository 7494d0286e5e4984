"""Incidents the monitor detects: opened after failures in a row, recovery recorded.

An incident the monitor opens is an ordinary incident (impact availability, the
check's declared criticality, its severity from the policy's table, its SLA clocks
and escalation); its opening entry names the check (``check``) and says it was
``detected_by`` the monitor. One such incident per check is open at a time: while
it is open, the check's further failures open nothing (a flapping check makes no
storm). The first probe up again records ``incident-recovered`` on it, which stops
the restore clock: mitigation time is the time to recovery.

Each decision reads the client's incident entries and appends under the ledger's
write lock (:meth:`~webmg_ops.ledger.Ledger.append_derived`), so two monitors
running at once still open one incident.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from webmg_ops.config.clients import Client
from webmg_ops.config.contract import HealthCheck
from webmg_ops.ledger import Entry, LedgerReader, NewEntry
from webmg_ops.service.incidents import (
    INCIDENT_KINDS,
    OPENED,
    RECOVERED,
    Incident,
    decide_open,
    fold_incidents,
    format_id,
    rules_for,
)
from webmg_ops.service.records import DerivedRecorder

#: Who records what the monitor decides.
MONITOR_ACTOR = "monitor"
#: The value of ``detected_by`` in the opening entry of an incident the monitor opened.
DETECTED_BY = "monitor"


def _detected_check(incident: Incident) -> str | None:
    opening = incident.timeline[0].payload
    if opening.get("detected_by") != DETECTED_BY:
        return None
    check = opening.get("check")
    return check if isinstance(check, str) else None


def _recovered(incident: Incident) -> bool:
    return any(event.kind == RECOVERED for event in incident.timeline)


def open_detected(history: Sequence[Entry]) -> dict[str, Incident]:
    """Given a client's incident entries (oldest first), return its open incidents the
    monitor opened, by check name."""
    found: dict[str, Incident] = {}
    for incident in fold_incidents(history).values():
        check = _detected_check(incident)
        if check is not None and incident.is_open:
            found[check] = incident
    return found


def awaiting_recovery(ledger: LedgerReader, client: str) -> set[str]:
    """Given the ledger and a client, return the checks whose open detected incident has
    no recovery recorded yet."""
    history = list(ledger.entries(client=client, kinds=INCIDENT_KINDS))
    return {check for check, incident in open_detected(history).items() if not _recovered(incident)}


def decide_detected_open(
    client: Client,
    check: HealthCheck,
    history: Sequence[Entry],
    *,
    failures: int,
    cause: str | None,
    since: datetime,
    now: datetime,
) -> list[NewEntry]:
    """Given a client, its failing check, the client's incident entries, how many probes
    failed in a row, the last failure's cause, the first failure's instant and now,
    return the opening entry of the check's incident, or nothing if one is open already.
    """
    if check.name in open_detected(history):
        return []
    rules = rules_for(client)
    drafted = decide_open(
        rules,
        title=f"{check.name} unavailable ({cause or 'failing'})",
        impact="availability",
        criticality=check.criticality,
        host=None,
        reported_by=MONITOR_ACTOR,
        ticket=None,
        by=MONITOR_ACTOR,
        now=now,
    )
    payload: dict[str, Any] = {
        **drafted.payload,
        "check": check.name,
        "url": check.url,
        "detected_by": DETECTED_BY,
        "failures": failures,
        "cause": cause,
        "down_since": since.isoformat(),
    }
    return [NewEntry(OPENED, drafted.client, payload, actor=drafted.actor, at=drafted.at)]


def decide_recovery(
    client: Client, check: HealthCheck, history: Sequence[Entry], *, now: datetime
) -> list[NewEntry]:
    """Given a client, its check seen up again, the client's incident entries and now,
    return the recovery entry of the check's open incident (nothing if it has none, or
    its recovery is recorded already)."""
    incident = open_detected(history).get(check.name)
    if incident is None or _recovered(incident):
        return []
    down_for = now - incident.opened_at
    payload = {
        "incident": incident.seq,
        "check": check.name,
        "down_since": incident.timeline[0].payload.get("down_since"),
        "note": (
            f"{check.name} answers again: {format_id(incident.seq)} restored "
            f"{int(down_for.total_seconds()) // 60} min after it opened"
        ),
    }
    return [NewEntry(RECOVERED, client.name, payload, actor=MONITOR_ACTOR, at=now)]


def record_detected_open(
    record: DerivedRecorder,
    client: Client,
    check: HealthCheck,
    *,
    failures: int,
    cause: str | None,
    since: datetime,
    now: datetime,
) -> Entry | None:
    """Given a recorder, a client and its failing check (failures in a row, last cause,
    first failure's instant, now), open the check's incident unless one is open; return
    the opening entry, or None. Raise EnvironmentProblem if the ledger fails."""

    def derive(history: Sequence[Entry]) -> list[NewEntry]:
        return decide_detected_open(
            client, check, history, failures=failures, cause=cause, since=since, now=now
        )

    made = record(client, INCIDENT_KINDS, derive)
    return made[0] if made else None


def record_recovery(
    record: DerivedRecorder, client: Client, check: HealthCheck, *, now: datetime
) -> Entry | None:
    """Given a recorder, a client and its check seen up again, record the recovery on the
    check's open incident; return the entry, or None when there was nothing to record."""

    def derive(history: Sequence[Entry]) -> list[NewEntry]:
        return decide_recovery(client, check, history, now=now)

    made = record(client, INCIDENT_KINDS, derive)
    return made[0] if made else None
