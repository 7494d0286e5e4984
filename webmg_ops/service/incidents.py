"""Incidents: entries in, state and SLA clocks out; each command's entry decided here.

Pure: no I/O and no clock. An incident is the ledger entries that name it: it is
opened by an ``incident-opened`` entry (its id is ``INC-<seq>`` of that entry),
and every later entry carries the opening entry's seq as ``incident``. Its state
is derived from those entries, oldest first, and never stored elsewhere.

States go ``triage -> mitigation -> fix -> resolved -> closed``: ``ack`` ends
the triage (the response clock stops), ``mitigate`` restores the service (the
restore clock stops), ``fix`` removes the cause (the resolution clock stops),
``close`` ends the incident once a post-mortem is recorded where the policy
asks for one. While the incident waits on the client every clock is paused, and
no step is taken until it resumes. Severity is computed from impact and
criticality by the policy's table; it may be raised at any time, and lowered
only by a recorded decision that gives its reason. The monitor may record that
the service recovered (``incident-recovered``): that stops the restore clock
once, ends the mitigation step, and an acknowledgement after it leads to the fix.

A clock is due at the first instant its budget of SLA time is spent. It is met
when it stops at or before that instant (due at T and acknowledged at T is met),
breached when it stops after it, or when it still runs (or is paused) past it: at
T itself a running clock is still running. On a business-hours calendar a clock
due at closing time is breached from that evening on, though no more SLA time
runs until the next opening.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from webmg_ops.config.clients import Client
from webmg_ops.config.contract import CRITICALITIES, IMPACTS, PRIORITIES
from webmg_ops.config.durations import format_duration
from webmg_ops.config.policy import Policy, severity_setting
from webmg_ops.errors import BadInput, Refused
from webmg_ops.ledger import Entry, NewEntry
from webmg_ops.runs.records import RUN_FINISHED, RUN_REFUSED, RUN_STARTED
from webmg_ops.service import ids
from webmg_ops.service.sla import BusinessCalendar, Span, due_at, elapsed, make_calendar

PREFIX = ids.INCIDENT_PREFIX

OPENED = "incident-opened"
ACKNOWLEDGED = "incident-acknowledged"
MITIGATED = "incident-mitigated"
FIXED = "incident-fixed"
CLOSED = "incident-closed"
WAITING = "incident-waiting"
RESUMED = "incident-resumed"
RAISED = "incident-severity-raised"
LOWERED = "incident-severity-lowered"
POSTMORTEM = "incident-postmortem"
#: The monitor saw the service up again (:mod:`webmg_ops.service.detection`): the restore
#: clock stops there, whoever acknowledges the incident, and when.
RECOVERED = "incident-recovered"
#: Evidence read on the incident's hosts (:mod:`webmg_ops.service.evidence`): it moves
#: no state, and its outputs are large, so that it is read only where it is shown.
EVIDENCE = "incident-evidence"

#: Every kind of entry an incident is made of.
INCIDENT_KINDS: tuple[str, ...] = (
    OPENED,
    ACKNOWLEDGED,
    MITIGATED,
    FIXED,
    CLOSED,
    WAITING,
    RESUMED,
    RAISED,
    LOWERED,
    POSTMORTEM,
    RECOVERED,
)
#: A run's entries, which join the timeline of the incident the run names (``--incident``).
RUN_KINDS: tuple[str, ...] = (RUN_STARTED, RUN_REFUSED, RUN_FINISHED)

#: The kinds an incident's timeline shows: its own, and the evidence attached to it.
TIMELINE_KINDS: tuple[str, ...] = (*INCIDENT_KINDS, EVIDENCE)

TRIAGE = "triage"
MITIGATION = "mitigation"
FIX = "fix"
RESOLVED = "resolved"
CLOSED_STATE = "closed"


@dataclass(frozen=True)
class Step:
    """One step of the state machine: the command, the state it applies to, the state it
    leads to and the entry it records."""

    command: str
    before: str
    after: str
    kind: str


#: The steps, in order: each applies to one state only.
STEPS: dict[str, Step] = {
    step.command: step
    for step in (
        Step("ack", TRIAGE, MITIGATION, ACKNOWLEDGED),
        Step("mitigate", MITIGATION, FIX, MITIGATED),
        Step("fix", FIX, RESOLVED, FIXED),
        Step("close", RESOLVED, CLOSED_STATE, CLOSED),
    )
}
_STEP_OF_KIND = {step.kind: step for step in STEPS.values()}
_NEXT_COMMAND = {step.before: step.command for step in STEPS.values()}

#: The states in which an incident may wait on the client (before its fix).
_WAITABLE = frozenset({TRIAGE, MITIGATION, FIX})

#: What the client may be waited on for; a single party today, named to stay explicit.
WAIT_PARTIES: tuple[str, ...] = ("client",)

#: The SLA clocks: name, the policy's budget row, the entry kind that stops it.
CLOCKS: tuple[tuple[str, str, str], ...] = (
    ("response", "response", ACKNOWLEDGED),
    ("restore", "restore", MITIGATED),
    ("resolution", "resolution", FIXED),
)

#: The sections a post-mortem must have (Markdown headings, any level, any case).
POSTMORTEM_SECTIONS: tuple[str, ...] = (
    "summary",
    "timeline",
    "root cause",
    "what went well",
    "actions",
)


@dataclass(frozen=True)
class IncidentRules:
    """What a client's contract and policy say about its incidents.

    ``hosts`` are its inventory's host names, ``calendar`` its business calendar.
    """

    client: str
    policy: Policy
    calendar: BusinessCalendar
    hosts: frozenset[str]

    @property
    def zone(self) -> ZoneInfo:
        """Return the client's time zone."""
        return self.calendar.zone

    def severity(self, impact: str, criticality: str) -> str:
        """Given an impact and a criticality, return the priority the table gives them."""
        priority: str = self.policy.get(severity_setting(impact, criticality))
        return priority

    def budget(self, clock: str, severity: str) -> timedelta:
        """Given a clock's policy row and a priority, return its budget as written.

        A response time of "next business day" (no duration) is one day: one business
        day on a business-hours calendar.
        """
        value: timedelta | None = self.policy.get(f"{clock}.{severity.lower()}")
        return value if value is not None else timedelta(days=1)

    def needs_postmortem(self, severity: str) -> bool:
        """Given a priority, return whether closing needs a post-mortem."""
        return bool(self.policy.get(f"postmortem.{severity.lower()}"))


def rules_for(client: Client) -> IncidentRules:
    """Given a loaded client, return its incident rules: policy, business calendar in its
    time zone (24/7 where its level says so) and inventory hosts."""
    contract = client.contract
    calendar = make_calendar(
        contract.business_hours,
        contract.time_zone,
        around_the_clock=bool(client.policy.get("clocks.around_the_clock")),
    )
    return IncidentRules(
        client=client.name,
        policy=client.policy,
        calendar=calendar,
        hosts=frozenset(host.name for host in client.hosts),
    )


@dataclass(frozen=True)
class Event:
    """One entry of an incident's timeline."""

    seq: int
    kind: str
    at: datetime
    actor: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Incident:
    """An incident as derived from its entries."""

    seq: int
    client: str
    title: str
    impact: str
    criticality: str
    severity: str
    host: str | None
    reported_by: str | None
    ticket: str | None
    opened_at: datetime
    state: str = TRIAGE
    waiting_since: datetime | None = None
    pauses: tuple[Span, ...] = ()
    stopped: Mapping[str, datetime] = field(default_factory=dict)
    postmortem: Mapping[str, Any] | None = None
    timeline: tuple[Event, ...] = ()

    @property
    def id(self) -> str:
        """Return the incident's id, ``INC-<seq>``."""
        return format_id(self.seq)

    @property
    def is_open(self) -> bool:
        """Return whether the incident is not closed yet."""
        return self.state != CLOSED_STATE


def format_id(seq: int) -> str:
    """Given the seq of an incident's opening entry, return its id."""
    return ids.format_id(PREFIX, seq)


def parse_id(text: str) -> int:
    """Given an incident id as typed (``INC-42``, any case), return its seq.

    Raise BadInput if it is not of that form.
    """
    return ids.parse_id(text, PREFIX).seq


# --- deriving state from entries ------------------------------------------


def _event(entry: Entry) -> Event:
    return Event(entry.seq, entry.kind, entry.at, entry.actor, entry.payload)


def _apply(incident: Incident, entry: Entry) -> Incident:
    # Two operators acting at once may both record the same step (each decided from
    # what the ledger held before the other's entry): the first one counts, the later
    # one stays in the timeline without moving the state again.
    payload = entry.payload
    timeline = (*incident.timeline, _event(entry))
    step = _STEP_OF_KIND.get(entry.kind)
    if step is not None and incident.state == step.before:
        stopped = {**incident.stopped, entry.kind: entry.at}
        after = step.after
        if after == MITIGATION and MITIGATED in incident.stopped:
            # The service recovered before anyone acknowledged: mitigation is done.
            after = FIX
        return replace(incident, state=after, stopped=stopped, timeline=timeline)
    if entry.kind == RECOVERED and MITIGATED not in incident.stopped and incident.is_open:
        # A recovery stops the restore clock once; in mitigation it ends that step, in
        # triage the response clock still runs until someone acknowledges.
        stopped = {**incident.stopped, MITIGATED: entry.at}
        state = FIX if incident.state == MITIGATION else incident.state
        return replace(incident, state=state, stopped=stopped, timeline=timeline)
    if entry.kind == WAITING and incident.waiting_since is None:
        return replace(incident, waiting_since=entry.at, timeline=timeline)
    if entry.kind == RESUMED and incident.waiting_since is not None:
        pause = Span(incident.waiting_since, entry.at)
        return replace(
            incident, waiting_since=None, pauses=(*incident.pauses, pause), timeline=timeline
        )
    if entry.kind in (RAISED, LOWERED):
        return replace(incident, severity=str(payload["to"]), timeline=timeline)
    if entry.kind == POSTMORTEM:
        return replace(incident, postmortem=payload, timeline=timeline)
    return replace(incident, timeline=timeline)


def fold_incidents(entries: Iterable[Entry]) -> dict[int, Incident]:
    """Given entries of :data:`INCIDENT_KINDS` (and of :data:`RUN_KINDS`, for the runs in
    the timelines) in seq order, return each incident's state by the seq of its opening
    entry. Entries naming no known incident are ignored; a step recorded twice moves the
    state once; a run's entries join the timeline of the incident it named, moving no state."""
    incidents: dict[int, Incident] = {}
    # Runs that named an incident: the seq of their run-started entry, to the incident's.
    runs: dict[int, int] = {}
    for entry in entries:
        payload = entry.payload
        linked = _linked_incident(entry, runs)
        if linked is not None:
            if linked in incidents and incidents[linked].client == entry.client:
                if entry.kind == RUN_STARTED:
                    runs[entry.seq] = linked
                incidents[linked] = replace(
                    incidents[linked], timeline=(*incidents[linked].timeline, _event(entry))
                )
            continue
        if entry.kind in RUN_KINDS:
            # A run joins an incident only through the id it names, never as a step.
            continue
        if entry.kind == OPENED:
            incidents[entry.seq] = Incident(
                seq=entry.seq,
                client=entry.client or "",
                title=str(payload["title"]),
                impact=str(payload["impact"]),
                criticality=str(payload["criticality"]),
                severity=str(payload["severity"]),
                host=payload.get("host"),
                reported_by=payload.get("reported_by"),
                ticket=payload.get("ticket"),
                opened_at=entry.at,
                timeline=(_event(entry),),
            )
            continue
        seq = payload.get("incident")
        if isinstance(seq, int) and seq in incidents:
            incidents[seq] = _apply(incidents[seq], entry)
    return incidents


def _linked_incident(entry: Entry, runs: Mapping[int, int]) -> int | None:
    """Given a run's entry and the runs already linked, return the seq of the incident the
    run works on (None for an entry that is not a run's, or a run that names none)."""
    if entry.kind == RUN_FINISHED:
        started = entry.payload.get("started_seq")
        return runs.get(started) if isinstance(started, int) else None
    if entry.kind not in (RUN_STARTED, RUN_REFUSED):
        return None
    named = entry.payload.get("incident")
    if not isinstance(named, str):
        return None
    try:
        return parse_id(named)
    except BadInput:
        return None


def find_incident(history: Sequence[Entry], seq: int) -> Incident:
    """Given a client's incident entries and an incident's seq, return its state.

    Raise BadInput if no incident has that seq.
    """
    incident = fold_incidents(history).get(seq)
    if incident is None:
        raise BadInput(f"no incident {format_id(seq)}")
    return incident


# --- deciding what to record ----------------------------------------------


def _text(value: str | None, option: str) -> str:
    if value is None or not value.strip():
        raise BadInput(f"{option} is missing or empty")
    return value.strip()


def _optional(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def decide_open(
    rules: IncidentRules,
    *,
    title: str,
    impact: str,
    criticality: str,
    host: str | None,
    reported_by: str | None,
    ticket: str | None,
    by: str | None,
    now: datetime,
) -> NewEntry:
    """Given a client's rules, what is reported, who records it and when, return the
    opening entry, its severity computed from the policy's table.

    Raise BadInput for an empty title, an unknown impact or criticality, or a host
    that is not in the client's inventory.
    """
    title = _text(title, "--title")
    if impact not in IMPACTS:
        raise BadInput(f"impact {impact!r} is not one of {', '.join(IMPACTS)}")
    if criticality not in CRITICALITIES:
        raise BadInput(f"criticality {criticality!r} is not one of {', '.join(CRITICALITIES)}")
    host = _optional(host)
    if host is not None and host not in rules.hosts:
        known = ", ".join(sorted(rules.hosts)) or "none"
        raise BadInput(f"{rules.client} has no host {host!r} in its inventory (hosts: {known})")
    payload = {
        "title": title,
        "impact": impact,
        "criticality": criticality,
        "severity": rules.severity(impact, criticality),
        "host": host,
        "reported_by": _optional(reported_by),
        "ticket": _optional(ticket),
    }
    return NewEntry(OPENED, rules.client, payload, actor=by, at=now)


def _closed(incident: Incident) -> BadInput:
    return BadInput(f"{incident.id} is closed: nothing more can be done to it")


def _out_of_order(incident: Incident, step: Step) -> BadInput:
    if incident.state == CLOSED_STATE:
        return _closed(incident)
    return BadInput(
        f"{incident.id} is in {incident.state}: '{step.command}' is out of order "
        f"(it applies in state {step.before}); "
        f"next is 'incident {_NEXT_COMMAND[incident.state]} {incident.id}'"
    )


def decide_step(
    rules: IncidentRules,
    incident: Incident,
    command: str,
    *,
    note: str | None,
    by: str | None,
    now: datetime,
) -> NewEntry:
    """Given a client's rules, an incident, a step's command (``ack``, ``mitigate``,
    ``fix``, ``close``), its note, who takes it and when, return the step's entry.

    Raise BadInput if the step is out of order, the incident waits on the client, or
    a note is missing (all but ``ack``); Refused to close an incident whose severity
    needs a post-mortem when none is recorded.
    """
    step = STEPS[command]
    if incident.state != step.before:
        raise _out_of_order(incident, step)
    if incident.waiting_since is not None:
        raise BadInput(
            f"{incident.id} waits on the client since {_local(incident.waiting_since, rules)}: "
            f"'incident resume {incident.id}' first"
        )
    text = (note or "").strip() if command == "ack" else _text(note, "--note")
    if (
        command == "close"
        and rules.needs_postmortem(incident.severity)
        and incident.postmortem is None
    ):
        raise Refused(
            f"{incident.id} is {incident.severity}: the {rules.policy.level.value} policy needs "
            f"a post-mortem before it closes ('incident postmortem {incident.id} --file FILE')"
        )
    payload = {"incident": incident.seq, "note": text}
    return NewEntry(step.kind, incident.client, payload, actor=by, at=now)


def decide_wait(
    incident: Incident, *, on: str, note: str | None, by: str | None, now: datetime
) -> NewEntry:
    """Given an incident, whom it waits on, why, who says so and when, return the entry
    that pauses its clocks.

    Raise BadInput for an unknown party, an empty note, an incident already waiting,
    or one fixed or closed (its clocks are all stopped).
    """
    if on not in WAIT_PARTIES:
        raise BadInput(f"--on {on!r}: an incident can wait on {', '.join(WAIT_PARTIES)} only")
    text = _text(note, "--note")
    if incident.state not in _WAITABLE:
        raise BadInput(f"{incident.id} is {incident.state}: its clocks no longer run")
    if incident.waiting_since is not None:
        raise BadInput(f"{incident.id} already waits on the client")
    payload = {"incident": incident.seq, "on": on, "note": text}
    return NewEntry(WAITING, incident.client, payload, actor=by, at=now)


def decide_resume(
    incident: Incident, *, note: str | None, by: str | None, now: datetime
) -> NewEntry:
    """Given an incident, a note, who resumes it and when, return the entry that starts
    its clocks again. Raise BadInput if it is not waiting."""
    if incident.waiting_since is None:
        raise BadInput(f"{incident.id} is not waiting on anyone: nothing to resume")
    payload = {"incident": incident.seq, "note": (note or "").strip()}
    return NewEntry(RESUMED, incident.client, payload, actor=by, at=now)


def _priority(text: str) -> str:
    priority = text.strip().upper()
    if priority not in PRIORITIES:
        raise BadInput(f"severity {text!r} is not one of {', '.join(PRIORITIES)}")
    return priority


def decide_raise(
    incident: Incident, *, to: str, note: str | None, by: str | None, now: datetime
) -> NewEntry:
    """Given an incident, a more urgent priority, a note, who raises it and when, return
    the entry. Raise BadInput for an unknown priority, one that is not more urgent,
    or a closed incident."""
    target = _priority(to)
    if not incident.is_open:
        raise _closed(incident)
    if PRIORITIES.index(target) >= PRIORITIES.index(incident.severity):
        raise BadInput(
            f"{incident.id} is {incident.severity}: {target} is not more urgent "
            "(lowering is 'incident lower ... --reason')"
        )
    payload = {
        "incident": incident.seq,
        "from": incident.severity,
        "to": target,
        "note": (note or "").strip(),
    }
    return NewEntry(RAISED, incident.client, payload, actor=by, at=now)


def decide_lower(
    incident: Incident, *, to: str, reason: str | None, by: str | None, now: datetime
) -> NewEntry:
    """Given an incident, a less urgent priority, the reason, who decides and when, return
    the entry that records the decision. Raise BadInput for an unknown priority, one
    that is not less urgent, a missing reason or a closed incident."""
    target = _priority(to)
    text = _text(reason, "--reason")
    if not incident.is_open:
        raise _closed(incident)
    if PRIORITIES.index(target) <= PRIORITIES.index(incident.severity):
        raise BadInput(
            f"{incident.id} is {incident.severity}: {target} is not less urgent "
            "(raising is 'incident raise')"
        )
    payload = {
        "incident": incident.seq,
        "from": incident.severity,
        "to": target,
        "reason": text,
        "decision": "severity lowered",
    }
    return NewEntry(LOWERED, incident.client, payload, actor=by, at=now)


_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^\s{0,3}(?:[-*+]|[0-9]+[.)])\s+(?:\[[ xX]\]\s+)?(.*\S)\s*$")


def parse_postmortem(text: str, name: str) -> dict[str, Any]:
    """Given a post-mortem's Markdown text and its file's name, return its sections
    (heading -> body) and the list items of its actions section.

    Raise BadInput if the text is empty or lacks one of :data:`POSTMORTEM_SECTIONS`.
    """
    if not text.strip():
        raise BadInput(f"post-mortem {name} is empty")
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            current = sections.setdefault(heading[1].strip().lower().rstrip(":"), [])
        elif current is not None:
            current.append(line)
    missing = [section for section in POSTMORTEM_SECTIONS if section not in sections]
    if missing:
        raise BadInput(
            f"post-mortem {name} lacks the section(s) {', '.join(missing)} "
            f"(Markdown headings: {', '.join(POSTMORTEM_SECTIONS)})"
        )
    actions = [
        match[1] for line in sections["actions"] if (match := _LIST_ITEM.match(line)) is not None
    ]
    return {
        "sections": {section: "\n".join(lines).strip() for section, lines in sections.items()},
        "actions": actions,
    }


def decide_postmortem(
    incident: Incident, *, text: str, name: str, by: str | None, now: datetime
) -> NewEntry:
    """Given an incident, its post-mortem's Markdown text and file name, who records it
    and when, return the entry; its actions are a list in the payload (for the backlog).

    Raise BadInput for an empty or incomplete post-mortem, or an incident not fixed yet
    or closed (a later post-mortem, before closing, replaces an earlier one).
    """
    parsed = parse_postmortem(text, name)
    if incident.state != RESOLVED:
        if incident.state == CLOSED_STATE:
            raise _closed(incident)
        raise BadInput(
            f"{incident.id} is in {incident.state}: a post-mortem follows the fix; "
            f"next is 'incident {_NEXT_COMMAND[incident.state]} {incident.id}'"
        )
    payload = {"incident": incident.seq, "file": name, **parsed}
    return NewEntry(POSTMORTEM, incident.client, payload, actor=by, at=now)


# --- SLA clocks ------------------------------------------------------------

RUNNING = "running"
PAUSED = "paused"
MET = "met"
BREACHED = "breached"

#: The shares of a budget at which escalation looks (the seam for notifications).
THRESHOLDS: tuple[float, ...] = (0.5, 1.0)


@dataclass(frozen=True)
class ClockStatus:
    """One SLA clock of an incident at an instant.

    ``budget`` is the policy's value as written, ``allowed`` the same in the calendar's
    time; ``used`` is the SLA time run until the clock stopped (or until now); ``due``
    is the UTC instant the budget runs out, None while paused before it does;
    ``overdue`` is the elapsed time from ``due`` until the clock stopped (or now) once
    past it, zero otherwise.
    """

    name: str
    budget: timedelta
    allowed: timedelta
    used: timedelta
    due: datetime | None
    stopped_at: datetime | None
    state: str
    overdue: timedelta = timedelta(0)

    @property
    def remaining(self) -> timedelta:
        """Return the SLA time left (zero or less once spent)."""
        return self.allowed - self.used

    @property
    def share_used(self) -> float:
        """Return the share of the budget used (1.0 when it is exactly spent)."""
        return self.used / self.allowed if self.allowed else 1.0

    def thresholds_crossed(self, thresholds: Sequence[float] = THRESHOLDS) -> tuple[float, ...]:
        """Given shares of the budget, return those the clock has reached. A share below
        1 is reached when that much SLA time is used; 1 is reached at the breach (past
        the due instant, not at it); a share above 1 when more than that is used."""
        return tuple(
            share
            for share in thresholds
            if (
                self.used >= share * self.allowed
                if share < 1
                else (self.state == BREACHED if share == 1 else self.used > share * self.allowed)
            )
        )


def clock_statuses(
    incident: Incident, rules: IncidentRules, now: datetime
) -> tuple[ClockStatus, ...]:
    """Given an incident, its client's rules and an aware instant, return each SLA clock
    (response, restore, resolution) with its due instant, time used and state at that
    instant, under the incident's current severity.

    A clock is breached once the instant it stopped, or ``now`` while it runs or is
    paused, is past its due instant; stopped at or before it, it is met.
    """
    pauses = list(incident.pauses)
    if incident.waiting_since is not None:
        pauses.append(Span(incident.waiting_since))
    statuses = []
    for name, row, stop_kind in CLOCKS:
        budget = rules.budget(row, incident.severity)
        allowed = rules.calendar.budget(budget)
        stopped_at = incident.stopped.get(stop_kind)
        until = stopped_at if stopped_at is not None else max(now, incident.opened_at)
        used = elapsed(rules.calendar, incident.opened_at, until, pauses)
        due = due_at(rules.calendar, incident.opened_at, allowed, pauses)
        overdue = max(until - due, timedelta(0)) if due is not None else timedelta(0)
        if overdue:
            state = BREACHED
        elif stopped_at is not None:
            state = MET
        elif incident.waiting_since is not None:
            state = PAUSED
        else:
            state = RUNNING
        statuses.append(ClockStatus(name, budget, allowed, used, due, stopped_at, state, overdue))
    return tuple(statuses)


# --- documents -------------------------------------------------------------


def _local(instant: datetime | None, rules: IncidentRules) -> str | None:
    return None if instant is None else instant.astimezone(rules.zone).isoformat()


def _signed_duration(value: timedelta) -> str:
    # Hours and minutes, rounded towards zero: a day of SLA time is a business day on
    # some calendars, so days would mislead.
    minutes = int(abs(value).total_seconds()) // 60
    sign = "-" if value < timedelta(0) and minutes else ""
    return f"{sign}{minutes // 60}h{minutes % 60:02d}m"


def clock_document(status: ClockStatus, rules: IncidentRules) -> dict[str, Any]:
    """Given a clock's status and the client's rules, return it as JSON-ready data, its
    instants in the client's time zone."""
    return {
        "state": status.state,
        "budget": format_duration(status.budget),
        "due_at": _local(status.due, rules),
        "stopped_at": _local(status.stopped_at, rules),
        "remaining": _signed_duration(status.remaining),
        "remaining_seconds": int(status.remaining.total_seconds()),
        "overdue": _signed_duration(status.overdue),
        "overdue_seconds": int(status.overdue.total_seconds()),
        "used_seconds": int(status.used.total_seconds()),
        "thresholds_crossed": list(status.thresholds_crossed()),
    }


#: What a timeline shows of an entry's payload: the step's words; for a run that worked
#: on the incident, which run it was and how it ended; a breach's clock; a notification's
#: step, target and error.
_TIMELINE_FIELDS = frozenset(
    {
        *("note", "reason", "from", "to", "on", "summary"),
        *("run_id", "action", "outcome", "refusal", "message"),
        # A recorded breach, and a notification's delivery (the target is kept masked).
        *("clock", "due", "step", "target", "error"),
        # A recovery seen by the monitor: which check, down since when.
        *("check", "down_since"),
    }
)


def incident_document(incident: Incident, rules: IncidentRules, now: datetime) -> dict[str, Any]:
    """Given an incident, its client's rules and an aware instant, return the incident as
    JSON-ready data: its fields, state, each clock at that instant, post-mortem actions
    and timeline, instants in the client's time zone."""
    clocks = clock_statuses(incident, rules, now)
    return {
        "id": incident.id,
        "client": incident.client,
        "title": incident.title,
        "impact": incident.impact,
        "criticality": incident.criticality,
        "severity": incident.severity,
        "host": incident.host,
        "reported_by": incident.reported_by,
        "ticket": incident.ticket,
        "state": incident.state,
        "waiting_on": "client" if incident.waiting_since is not None else None,
        "opened_at": _local(incident.opened_at, rules),
        "timezone": rules.zone.key,
        "clocks": {status.name: clock_document(status, rules) for status in clocks},
        "postmortem": None
        if incident.postmortem is None
        else {
            "file": incident.postmortem.get("file"),
            "actions": list(incident.postmortem["actions"]),
        },
        "postmortem_required": rules.needs_postmortem(incident.severity),
        "timeline": [
            {
                "seq": event.seq,
                "kind": event.kind,
                "at": _local(event.at, rules),
                "by": event.actor,
                **{key: value for key, value in event.payload.items() if key in _TIMELINE_FIELDS},
            }
            for event in incident.timeline
        ],
    }
