"""Escalation: which notifications are due for a client's open incidents, and which
breaches to record; entries in, drafts out.

Pure: no I/O and no clock; the instant of evaluation (``now``) and the instant
of the machine (``wall``, for claims' leases) are passed in.

What is due, for each open incident at ``now``:

- a *threshold* notification for each share of the policy's
  ``escalation.thresholds`` (percent of a budget) that a running or paused SLA
  clock has reached (``ClockStatus.thresholds_crossed``: 100 % is reached at
  the breach, past the due instant), sent to the first escalation step's
  targets (the first contact of the path hears how its clocks stand);
- a *step* notification for each escalation step whose ``after`` of SLA time
  (counted in the client's calendar, pauses excluded, like the clocks) has run
  while the incident is not fixed yet, sent to that step's targets;
- a breach entry (``incident-clock-breached``) for each clock past its due
  instant, once per incident and clock.

Each delivery (one notification to one target) has a stable key, e.g.
``INC-42/response/50%/step-1/1`` or ``INC-42/after/step-2/1``, so that it is
sent exactly once. Delivery is recorded in three kinds of entries:
``notification-claimed`` (under the ledger's write lock, before sending),
``notification-sent`` and ``notification-pending`` (after). A key is to send
when it has no entry yet, when its last entry is pending (a failed send is
retried by every tick until it succeeds: never lost), or when its last entry is
a claim older than :data:`CLAIM_LEASE` (the tick that claimed it died before it
recorded the outcome). A fresh claim is another tick's: left alone, so two
ticks at once never both send. The choice is at-least-once: a tick that dies
between sending and recording leaves a stale claim that a later tick sends
again, since a lost escalation costs more than a repeated one.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from webmg_ops.config.contract import EscalationStep
from webmg_ops.config.durations import format_duration
from webmg_ops.config.notify_targets import mask_url
from webmg_ops.ledger import Entry, NewEntry
from webmg_ops.service.incidents import (
    BREACHED,
    INCIDENT_KINDS,
    RESOLVED,
    ClockStatus,
    Incident,
    IncidentRules,
    clock_statuses,
    fold_incidents,
)

CLOCK_BREACHED = "incident-clock-breached"
NOTIFICATION_CLAIMED = "notification-claimed"
NOTIFICATION_SENT = "notification-sent"
NOTIFICATION_PENDING = "notification-pending"

#: The delivery entries of notifications.
NOTIFICATION_KINDS: tuple[str, ...] = (
    NOTIFICATION_CLAIMED,
    NOTIFICATION_SENT,
    NOTIFICATION_PENDING,
)

#: Every kind a tick reads for one client.
TICK_KINDS: tuple[str, ...] = (*INCIDENT_KINDS, CLOCK_BREACHED, *NOTIFICATION_KINDS)

#: How long a claim holds a key before a later tick may take it over: far longer than
#: one tick sends for (Apprise's own time-outs are seconds), far shorter than an SLA.
CLAIM_LEASE = timedelta(minutes=10)


@dataclass(frozen=True)
class Notification:
    """One delivery that is due: its key, the incident, the step and the target's place
    in that step (both from 1), the target URL as written (vault references unresolved)
    and the message."""

    key: str
    incident: int
    step: int
    index: int
    url: str
    title: str
    body: str

    @property
    def target(self) -> str:
        """Return the target URL with its secrets masked (what is recorded and shown)."""
        return mask_url(self.url)


@dataclass(frozen=True)
class Delivery:
    """The last delivery entry of one key: its kind, when it was recorded, its payload."""

    kind: str
    at: datetime
    payload: Mapping[str, Any]


def _percent(share: float) -> int:
    return round(share * 100)


def _message(incident: Incident, rules: IncidentRules, headline: str) -> tuple[str, str]:
    zone = rules.zone
    title = f"[{incident.client}] {incident.id} {incident.severity}: {headline}"
    body = (
        f"{incident.id} ({incident.severity}, {incident.impact}, {incident.criticality}): "
        f"{incident.title}\n"
        f"Client: {incident.client}\n"
        f"State: {incident.state}\n"
        f"Opened at: {incident.opened_at.astimezone(zone).isoformat()}\n"
        f"{headline}"
    )
    return title, body


def _clock_headline(status: ClockStatus, share: int, rules: IncidentRules) -> str:
    due = status.due.astimezone(rules.zone).isoformat() if status.due else "not while paused"
    budget = format_duration(status.budget)
    if share >= 100:
        return f"{status.name} clock past {share}% of its {budget} budget (due {due}): breached"
    return f"{status.name} clock reached {share}% of its {budget} budget (due {due})"


def due_notifications(
    incident: Incident,
    rules: IncidentRules,
    steps: Sequence[EscalationStep],
    thresholds: Iterable[int],
    now: datetime,
    *,
    skip: Container[str] = (),
    statuses: Sequence[ClockStatus] | None = None,
) -> list[Notification]:
    """Given an incident, its client's rules, the contract's escalation path, the
    policy's thresholds (percent) and an aware instant, return every delivery due at
    that instant (sent or not), in a stable order; the keys in ``skip`` are left out
    (their messages are not even written). ``statuses`` are the incident's clocks at
    ``now`` when the caller has them.

    Nothing is due for a closed incident, nor for a clock that has stopped.
    """
    if not incident.is_open:
        return []
    if statuses is None:
        statuses = clock_statuses(incident, rules, now)
    due: list[Notification] = []
    first_targets = steps[0].notify if steps else []
    shares = sorted(set(thresholds))
    for status in statuses:
        if status.stopped_at is not None:
            continue
        for share in status.thresholds_crossed(tuple(s / 100 for s in shares)):
            percent = _percent(share)
            keys = [
                (index, url, f"{incident.id}/{status.name}/{percent}%/step-1/{index}")
                for index, url in enumerate(first_targets, start=1)
            ]
            keys = [(index, url, key) for index, url, key in keys if key not in skip]
            if not keys:
                continue
            title, body = _message(incident, rules, _clock_headline(status, percent, rules))
            for index, url, key in keys:
                due.append(Notification(key, incident.seq, 1, index, url, title, body))
    # Steps count SLA time as the resolution clock does: it runs until the fix.
    resolution = statuses[-1]
    if incident.state != RESOLVED and resolution.stopped_at is None:
        for number, step in enumerate(steps, start=1):
            if resolution.used < rules.calendar.budget(step.after):
                continue
            targets = [
                (index, url, f"{incident.id}/after/step-{number}/{index}")
                for index, url in enumerate(step.notify, start=1)
            ]
            targets = [(index, url, key) for index, url, key in targets if key not in skip]
            if not targets:
                continue
            headline = (
                f"escalation step {number} ({step.role}, {step.name}): "
                f"not fixed after {format_duration(step.after)} of SLA time"
            )
            title, body = _message(incident, rules, headline)
            for index, url, key in targets:
                due.append(Notification(key, incident.seq, number, index, url, title, body))
    return due


def breach_entries(
    incident: Incident,
    rules: IncidentRules,
    recorded: Iterable[tuple[int, str]],
    now: datetime,
    *,
    statuses: Sequence[ClockStatus] | None = None,
) -> list[NewEntry]:
    """Given an incident, its client's rules, the (incident seq, clock) pairs whose breach
    is already recorded and an aware instant, return an ``incident-clock-breached`` entry
    for each clock breached at that instant and not recorded yet (``statuses``: the
    incident's clocks at ``now`` when the caller has them)."""
    done = set(recorded)
    entries = []
    if statuses is None:
        statuses = clock_statuses(incident, rules, now)
    for status in statuses:
        if status.state != BREACHED or (incident.seq, status.name) in done:
            continue
        payload = {
            "incident": incident.seq,
            "clock": status.name,
            "severity": incident.severity,
            "due": status.due.isoformat() if status.due else None,
            "evaluated_at": now.isoformat(),
        }
        entries.append(NewEntry(CLOCK_BREACHED, incident.client, payload))
    return entries


def deliveries(entries: Iterable[Entry]) -> dict[str, Delivery]:
    """Given delivery entries in seq order, return the last one of each key."""
    return {
        str(entry.payload["key"]): Delivery(entry.kind, entry.at, entry.payload)
        for entry in entries
        if entry.kind in NOTIFICATION_KINDS
    }


def to_send(delivery: Delivery | None, wall: datetime, lease: timedelta = CLAIM_LEASE) -> bool:
    """Given a key's last delivery entry (None: none yet) and the machine's instant,
    return whether a tick should claim and send it now."""
    if delivery is None or delivery.kind == NOTIFICATION_PENDING:
        return True
    return delivery.kind == NOTIFICATION_CLAIMED and wall - delivery.at >= lease


def claim_entry(notification: Notification, client: str, tick: str) -> NewEntry:
    """Given a due delivery, its client and the tick's id, return the entry that claims it.

    The message is kept in the claim, so that a retry sends what was due even once
    the incident has moved on.
    """
    payload = {
        "key": notification.key,
        "incident": notification.incident,
        "step": notification.step,
        "index": notification.index,
        "target": notification.target,
        "title": notification.title,
        "body": notification.body,
        "tick": tick,
    }
    return NewEntry(NOTIFICATION_CLAIMED, client, payload)


def outcome_entry(
    notification: Notification, client: str, tick: str, error: str | None
) -> NewEntry:
    """Given a claimed delivery, its client, the tick's id and the sending error (masked;
    None: sent), return the entry that records the outcome."""
    payload: dict[str, Any] = {
        "key": notification.key,
        "incident": notification.incident,
        "target": notification.target,
        "tick": tick,
    }
    if error is None:
        return NewEntry(NOTIFICATION_SENT, client, payload)
    return NewEntry(NOTIFICATION_PENDING, client, {**payload, "error": error})


@dataclass(frozen=True)
class TickDecision:
    """What one tick decides for one client: the entries to append (breaches and
    claims) and the deliveries it claimed (to send once they are recorded)."""

    entries: tuple[NewEntry, ...]
    claimed: tuple[Notification, ...]
    evaluated: int = 0


def decide_tick(
    history: Sequence[Entry],
    rules: IncidentRules,
    steps: Sequence[EscalationStep],
    thresholds: Iterable[int],
    *,
    now: datetime,
    wall: datetime,
    tick: str,
    lease: timedelta = CLAIM_LEASE,
) -> TickDecision:
    """Given a client's entries of :data:`TICK_KINDS` (oldest first), its rules, escalation
    path and thresholds, the instant evaluated, the machine's instant, the tick's id
    and the claims' lease, return what the tick records and sends for that client.

    A pending or stale key is sent again as first claimed (its message and target),
    whether or not it is still due: a failed notification is never lost.
    """
    incidents = fold_incidents(entry for entry in history if entry.kind in INCIDENT_KINDS)
    recorded = {
        (int(entry.payload["incident"]), str(entry.payload["clock"]))
        for entry in history
        if entry.kind == CLOCK_BREACHED
    }
    last = deliveries(history)
    entries: list[NewEntry] = []
    claimed: dict[str, Notification] = {}
    evaluated = 0
    for incident in incidents.values():
        if not incident.is_open:
            continue
        evaluated += 1
        statuses = clock_statuses(incident, rules, now)
        entries.extend(breach_entries(incident, rules, recorded, now, statuses=statuses))
        for notification in due_notifications(
            incident, rules, steps, thresholds, now, skip=last, statuses=statuses
        ):
            claimed[notification.key] = notification
    again = [key for key, delivery in last.items() if to_send(delivery, wall, lease)]
    if again:
        # A key's first claim holds the message it was due with.
        first_claims = {
            str(entry.payload["key"]): entry.payload
            for entry in reversed(history)
            if entry.kind == NOTIFICATION_CLAIMED
        }
        for key in again:
            retry = _retry(first_claims.get(key), steps)
            if retry is not None:
                claimed[key] = retry
    entries.extend(claim_entry(n, rules.client, tick) for n in claimed.values())
    return TickDecision(tuple(entries), tuple(claimed.values()), evaluated)


def _retry(claim: Mapping[str, Any] | None, steps: Sequence[EscalationStep]) -> Notification | None:
    """Given a key's first claim and the escalation path, return the delivery to send
    again; None if the claim is unreadable."""
    if claim is None:
        return None
    step, index = int(claim["step"]), int(claim["index"])
    # The URL as written now: a target whose secret moved to the vault is still reached.
    if 1 <= step <= len(steps) and 1 <= index <= len(steps[step - 1].notify):
        url = steps[step - 1].notify[index - 1]
    else:
        url = ""
    return Notification(
        key=str(claim["key"]),
        incident=int(claim["incident"]),
        step=step,
        index=index,
        url=url,
        title=str(claim["title"]),
        body=str(claim["body"]),
    )
