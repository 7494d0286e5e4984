"""The backlog: a client's open work, derived from its entries, ordered by priority, capped.

Nothing is stored as "the backlog": it is derived from the client's changes,
incidents and backlog entries, oldest first. Its items are:

- every open change (``CHG-<seq>``: not accepted or rejected yet);
- every incident follow-up (``INC-<seq>``): an open incident past mitigation
  whose fix is pending, or whose post-mortem is pending where the policy needs
  one (triage and mitigation run on the SLA clocks, not in the backlog);
- every action of an incident's post-mortem (``ACT-<post-mortem seq>.<n>``, n
  from 1 in the order written), until it is marked done. A later post-mortem of
  the same incident replaces the earlier one, its actions included.

Order (most urgent first): items the client has not deprioritised, then those
it has; within each, incident work (follow-ups and post-mortem actions) before
changes. Incident work is ordered by the incident's severity (P1 first), then
its impact (availability, security, data, operations) and criticality (critical,
major, minor); changes by their estimated risk (high, medium, low, not yet
estimated: the riskier a change, the earlier it must be prepared). Then age
(oldest first), then id.

Each item says what it waits on and whom: the client (a decision, an approval,
an acceptance, or an answer while its incident waits on it) or the agency (work).

Caps (policy rows ``backlog.wip_cap`` and ``backlog.open_cap``): an item is
started with ``backlog start`` (a ``backlog-started`` entry; scheduling a change
does not start it) and is in progress until it leaves the backlog (a change
accepted or rejected, an incident fixed and its post-mortem recorded, an action
marked done with ``backlog done``) or is deprioritised. Starting past the WIP
cap is refused, and so is a change request past the open-items cap (incident
follow-ups and post-mortem actions are never refused: they count, but incidents
are not turned away). Deprioritised items count towards neither cap; the
client's decision to deprioritise (``decision-recorded``, subject the item) is
recorded in the same transaction as the ``backlog-deprioritised`` entry. A
deprioritised item is not started; the client's decision to take it back
(``backlog-reprioritised``, with its decision) returns it to its place by
priority, counted again, and is refused past the open-items cap.

Pure: entries and the client's policy in, items or drafts of entries out; the
current time is an argument.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from webmg_ops.config.contract import CRITICALITIES, IMPACTS, PRIORITIES
from webmg_ops.config.policy import Policy
from webmg_ops.errors import BadInput, Refused
from webmg_ops.ledger import Entry, NewEntry
from webmg_ops.service import incidents
from webmg_ops.service.changes import (
    APPROVAL_REQUIRED,
    CHANGE_KINDS,
    RISK_LEVELS,
    Change,
    ChangeState,
    changes_of,
)
from webmg_ops.service.decisions import draft_decision, latest_decision_on, required_text
from webmg_ops.service.ids import ACTION_PREFIX

BACKLOG_STARTED = "backlog-started"
BACKLOG_DONE = "backlog-done"
BACKLOG_DEPRIORITISED = "backlog-deprioritised"
BACKLOG_REPRIORITISED = "backlog-reprioritised"

#: The entries of the backlog itself.
BACKLOG_KINDS: tuple[str, ...] = (
    BACKLOG_STARTED,
    BACKLOG_DONE,
    BACKLOG_DEPRIORITISED,
    BACKLOG_REPRIORITISED,
)

#: Every kind the backlog is derived from (changes with their approvals and decisions,
#: incidents, and the backlog's own entries).
READ_KINDS: tuple[str, ...] = (
    *CHANGE_KINDS,
    *(kind for kind in incidents.INCIDENT_KINDS if kind not in CHANGE_KINDS),
    *BACKLOG_KINDS,
)

#: The policy rows of the caps.
WIP_CAP = "backlog.wip_cap"
OPEN_CAP = "backlog.open_cap"

#: What an item is.
CHANGE_ITEM = "change"
FOLLOW_UP_ITEM = "incident follow-up"
ACTION_ITEM = "post-mortem action"

CLIENT = "client"
AGENCY = "agency"

_ITEM_ID = re.compile(r"(CHG|INC|ACT)-([1-9][0-9]{0,17})(?:\.([1-9][0-9]{0,5}))?")

#: The order of a change's risk in the backlog (None: not estimated yet).
_RISK_ORDER: tuple[str | None, ...] = (*reversed(RISK_LEVELS), None)


@dataclass(frozen=True)
class Item:
    """One backlog item as derived from the client's entries.

    ``severity``, ``impact`` and ``criticality`` are its incident's (None for a
    change); ``risk`` is a change's estimated risk. ``waits_on`` is the party the
    item waits on (client or agency) and ``waiting_for`` what for.
    """

    id: str
    client: str
    type: str
    title: str
    created_at: datetime
    created_seq: int
    waits_on: str
    waiting_for: str
    severity: str | None = None
    impact: str | None = None
    criticality: str | None = None
    risk: str | None = None
    state: str | None = None
    in_progress: bool = False
    started_by: str | None = None
    started_at: datetime | None = None
    #: The client's decision that deprioritised the item (its id), if any.
    deprioritised_by: str | None = None

    @property
    def counts(self) -> bool:
        """Return whether the item counts towards the caps (not deprioritised)."""
        return self.deprioritised_by is None

    def document(self) -> dict[str, Any]:
        """Return the item as a JSON-ready document."""
        return {
            "id": self.id,
            "client": self.client,
            "type": self.type,
            "title": self.title,
            "created_at": self.created_at.isoformat(),
            "severity": self.severity,
            "impact": self.impact,
            "criticality": self.criticality,
            "risk": self.risk,
            "state": self.state,
            "waits_on": self.waits_on,
            "waiting_for": self.waiting_for,
            "in_progress": self.in_progress,
            "started_by": self.started_by,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "deprioritised_by": self.deprioritised_by,
        }


def priority_key(item: Item) -> tuple[Any, ...]:
    """Given an item, return its place in the backlog's order (smaller first)."""
    if item.severity is not None:
        # Incident work (follow-ups and post-mortem actions) comes before changes.
        rank: tuple[int, ...] = (
            0,
            PRIORITIES.index(item.severity),
            IMPACTS.index(str(item.impact)),
            CRITICALITIES.index(str(item.criticality)),
        )
    else:
        rank = (1, _RISK_ORDER.index(item.risk))
    return (not item.counts, rank, item.created_at, item.created_seq, item.id)


# --- deriving the items -----------------------------------------------------------


def _change_waits(change: Change, approval_required: bool) -> tuple[str, str]:
    if change.state is ChangeState.REQUESTED:
        return AGENCY, "work: scope"
    if change.state is ChangeState.SCOPED:
        if change.blocked_out_of_scope:
            return CLIENT, "decision: accept out of scope"
        return AGENCY, "work: estimate"
    if change.state is ChangeState.ESTIMATED:
        return AGENCY, "work: schedule"
    if change.state is ChangeState.SCHEDULED and approval_required:
        return CLIENT, "approval"
    if change.state in (ChangeState.SCHEDULED, ChangeState.APPROVED):
        return AGENCY, "work: deploy"
    return CLIENT, "acceptance"


def _change_items(entries: Sequence[Entry], approval_required: bool) -> list[Item]:
    found = []
    for change in changes_of(entries).values():
        if change.state in (ChangeState.ACCEPTED, ChangeState.REJECTED):
            continue
        party, waiting_for = _change_waits(change, approval_required)
        found.append(
            Item(
                id=change.id,
                client=change.client,
                type=CHANGE_ITEM,
                title=change.title,
                created_at=change.requested_at,
                created_seq=change.history[0][0],
                waits_on=party,
                waiting_for=waiting_for,
                risk=change.risk,
                state=change.state.value,
            )
        )
    return found


def _needs_postmortem(policy: Policy, severity: str) -> bool:
    return bool(policy.get(f"postmortem.{severity.lower()}"))


def action_id(postmortem_seq: int, number: int) -> str:
    """Given a post-mortem entry's seq and an action's number (from 1), return its id."""
    return f"{ACTION_PREFIX}-{postmortem_seq}.{number}"


def _incident_items(entries: Sequence[Entry], policy: Policy) -> list[Item]:
    found = []
    incident_entries = [entry for entry in entries if entry.kind in incidents.INCIDENT_KINDS]
    for incident in incidents.fold_incidents(incident_entries).values():
        common = Item(
            id=incident.id,
            client=incident.client,
            type=FOLLOW_UP_ITEM,
            title=incident.title,
            created_at=incident.opened_at,
            created_seq=incident.seq,
            waits_on=AGENCY,
            waiting_for="work",
            severity=incident.severity,
            impact=incident.impact,
            criticality=incident.criticality,
            state=incident.state,
        )
        follow_up: tuple[str, str] | None = None
        if incident.state == incidents.FIX:
            follow_up = (
                (CLIENT, "answer: the incident waits on the client")
                if incident.waiting_since is not None
                else (AGENCY, "work: fix")
            )
        elif (
            incident.state == incidents.RESOLVED
            and incident.postmortem is None
            and _needs_postmortem(policy, incident.severity)
        ):
            follow_up = (AGENCY, "work: post-mortem")
        if follow_up is not None:
            found.append(replace(common, waits_on=follow_up[0], waiting_for=follow_up[1]))
        postmortems = [event for event in incident.timeline if event.kind == incidents.POSTMORTEM]
        if not postmortems:
            continue
        latest = postmortems[-1]
        for number, action in enumerate(latest.payload["actions"], start=1):
            found.append(
                replace(
                    common,
                    id=action_id(latest.seq, number),
                    type=ACTION_ITEM,
                    title=f"{incident.id}: {action}",
                    created_at=latest.at,
                    created_seq=latest.seq,
                    state="open",
                )
            )
    return found


@dataclass(frozen=True)
class _Marks:
    started_by: str | None = None
    started_at: datetime | None = None
    done: bool = False
    deprioritised_by: str | None = None


def _marks(entries: Sequence[Entry]) -> dict[str, _Marks]:
    marks: dict[str, _Marks] = {}
    for entry in entries:
        if entry.kind not in BACKLOG_KINDS:
            continue
        item = str(entry.payload["item"])
        current = marks.get(item, _Marks())
        if entry.kind == BACKLOG_STARTED:
            current = replace(current, started_by=str(entry.payload["by"]), started_at=entry.at)
        elif entry.kind == BACKLOG_DONE:
            current = replace(current, done=True)
        elif entry.kind == BACKLOG_REPRIORITISED:
            current = replace(current, deprioritised_by=None)
        else:
            decision = latest_decision_on(entries, item, entry.seq)
            current = replace(
                current,
                deprioritised_by=decision.id if decision else "unknown",
                started_by=None,
                started_at=None,
            )
        marks[item] = current
    return marks


def backlog_of(entries: Iterable[Entry], policy: Policy) -> list[Item]:
    """Given a client's entries of :data:`READ_KINDS` (oldest first) and its policy, return
    its backlog in priority order (most urgent first)."""
    ordered = list(entries)
    approval_required = bool(policy.get(APPROVAL_REQUIRED))
    marks = _marks(ordered)
    items = []
    for item in (*_incident_items(ordered, policy), *_change_items(ordered, approval_required)):
        mark = marks.get(item.id, _Marks())
        if mark.done:
            continue
        items.append(
            replace(
                item,
                in_progress=mark.started_by is not None,
                started_by=mark.started_by,
                started_at=mark.started_at,
                deprioritised_by=mark.deprioritised_by,
            )
        )
    return sorted(items, key=priority_key)


# --- deciding what to record ---------------------------------------------------------


def parse_item_id(text: str) -> tuple[str, int]:
    """Given a backlog item's id as typed (any case), return its prefix and the seq of
    the entry that created it (an action's: its post-mortem's).

    Raise BadInput if it is not ``CHG-<n>``, ``INC-<n>`` or ``ACT-<n>.<k>``.
    """
    match = _ITEM_ID.fullmatch(text.strip().upper())
    if match is None or (match[1] == ACTION_PREFIX) != (match[3] is not None):
        raise BadInput(f"{text!r} is not a backlog item id (CHG-<n>, INC-<n> or ACT-<n>.<k>)")
    return match[1], int(match[2])


def find_item(items: Sequence[Item], item_id: str) -> Item:
    """Given a backlog and an item's id, return the item.

    Raise BadInput if the id is malformed or names no item in the backlog.
    """
    parse_item_id(item_id)
    wanted = item_id.strip().upper()
    for item in items:
        if item.id == wanted:
            return item
    raise BadInput(f"{wanted} is not in the backlog (unknown, or no longer open)")


def _listing(items: Iterable[Item]) -> str:
    return ", ".join(item.id for item in items) or "none"


def draft_start(
    entries: Sequence[Entry], policy: Policy, item_id: str, *, by: str, now: datetime
) -> NewEntry:
    """Given a client's entries, its policy, an item, who starts it and when, return the
    ``backlog-started`` entry.

    Raise BadInput for an unknown item, one already in progress or deprioritised, or a
    blank name; Refused when as many items as the WIP cap are already in progress.
    """
    items = backlog_of(entries, policy)
    item = find_item(items, item_id)
    if item.in_progress:
        raise BadInput(f"{item.id} is already in progress (started by {item.started_by})")
    if not item.counts:
        raise BadInput(
            f"{item.id} was deprioritised by the client ({item.deprioritised_by}): "
            f"it is not started unless the client takes it back (backlog reprioritise {item.id} "
            "--by WHO --note TEXT)"
        )
    cap: int = policy.get(WIP_CAP)
    in_progress = [other for other in items if other.in_progress and other.counts]
    if len(in_progress) >= cap:
        raise Refused(
            f"{item.client}'s WIP cap ({WIP_CAP}) is {cap}: {len(in_progress)} item(s) in "
            f"progress ({_listing(in_progress)}); finish one (backlog done ITEM) or have the "
            "client deprioritise one (backlog deprioritise ITEM --by WHO --note TEXT)"
        )
    return NewEntry(
        BACKLOG_STARTED,
        item.client,
        {"item": item.id, "by": required_text("--by", by)},
        at=now,
    )


def draft_done(
    entries: Sequence[Entry], policy: Policy, item_id: str, *, by: str, note: str, now: datetime
) -> NewEntry:
    """Given a client's entries, its policy, a post-mortem action, who finished it, a note
    and when, return the ``backlog-done`` entry.

    Raise BadInput for an unknown item, a blank name, or a change or incident follow-up
    (they leave the backlog by their own flow: the client's acceptance, the fix and
    the post-mortem).
    """
    item = find_item(backlog_of(entries, policy), item_id)
    if item.type == CHANGE_ITEM:
        raise BadInput(
            f"{item.id} is a change: it leaves the backlog when the client accepts or rejects "
            f"it (change accept {item.id} --by WHO)"
        )
    if item.type == FOLLOW_UP_ITEM:
        raise BadInput(
            f"{item.id} is an incident follow-up: it leaves the backlog once the incident is "
            f"fixed and its post-mortem recorded (incident fix / incident postmortem {item.id})"
        )
    return NewEntry(
        BACKLOG_DONE,
        item.client,
        {"item": item.id, "by": required_text("--by", by), "note": note.strip()},
        at=now,
    )


def draft_deprioritise(
    entries: Sequence[Entry], policy: Policy, item_id: str, *, by: str, note: str, now: datetime
) -> list[NewEntry]:
    """Given a client's entries, its policy, an item, who decides for the client, why and
    when, return the client's decision and the ``backlog-deprioritised`` entry, to append
    together.

    Raise BadInput for an unknown item, one already deprioritised, or blank text.
    """
    item = find_item(backlog_of(entries, policy), item_id)
    if not item.counts:
        raise BadInput(f"{item.id} was already deprioritised ({item.deprioritised_by})")
    decision = draft_decision(
        item.client,
        title=f"{item.id} deprioritised: {item.title}",
        by=by,
        party=CLIENT,
        note=note,
        subject=item.id,
    )
    marked = NewEntry(
        BACKLOG_DEPRIORITISED,
        item.client,
        {"item": item.id, "by": decision.payload["by"], "was_in_progress": item.in_progress},
        at=now,
    )
    return [replace(decision, at=now), marked]


def draft_reprioritise(
    entries: Sequence[Entry], policy: Policy, item_id: str, *, by: str, note: str, now: datetime
) -> list[NewEntry]:
    """Given a client's entries, its policy, a deprioritised item, who decides for the
    client, why and when, return the client's decision and the ``backlog-reprioritised``
    entry, to append together: the item takes its place by priority again, and counts
    towards the caps (not in progress: it is started anew).

    Raise BadInput for an unknown item, one not deprioritised, or blank text; Refused
    when the open items already reach the open-items cap.
    """
    items = backlog_of(entries, policy)
    item = find_item(items, item_id)
    if item.counts:
        raise BadInput(f"{item.id} is not deprioritised: there is nothing to take back")
    decision = draft_decision(
        item.client,
        title=f"{item.id} taken back into the backlog: {item.title}",
        by=by,
        party=CLIENT,
        note=note,
        subject=item.id,
    )
    _check_room(items, policy, item.client)
    marked = NewEntry(
        BACKLOG_REPRIORITISED,
        item.client,
        {"item": item.id, "by": decision.payload["by"]},
        at=now,
    )
    return [replace(decision, at=now), marked]


def check_room_for(entries: Sequence[Entry], policy: Policy, client: str) -> None:
    """Given a client's entries, its policy and the client, return if one more change may
    join its backlog.

    Raise Refused when its open items (not deprioritised) already reach the open-items cap.
    """
    _check_room(backlog_of(entries, policy), policy, client)


def _check_room(items: Sequence[Item], policy: Policy, client: str) -> None:
    cap: int = policy.get(OPEN_CAP)
    open_items = [item for item in items if item.counts]
    if len(open_items) >= cap:
        raise Refused(
            f"{client}'s backlog is full: {len(open_items)} open item(s), the open-items cap "
            f"({OPEN_CAP}) is {cap} ({_listing(open_items)}); finish one or have the client "
            "deprioritise one (backlog deprioritise ITEM --by WHO --note TEXT)"
        )
