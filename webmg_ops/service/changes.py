"""Changes, from the client's request to the client's acceptance.

A change moves through ``requested -> scoped -> estimated -> scheduled ->
approved -> deployed -> accepted | rejected``; each step is one ledger entry
naming the change (``"change": "CHG-43"``), and the change's state is folded
from those entries, never stored. A step out of order is bad input.

- Scope: the change's ``in`` items are checked against the contract's
  ``scope.excluded``; an item naming an excluded one (as whole words, case
  ignored: "move e-mail to a new host" names "e-mail") flags the change out of
  scope. A flagged change cannot be estimated (refused) until the client
  accepts it: ``change accept-out-of-scope`` records the client's decision
  (a ``decision-recorded`` entry on the change) in the same transaction as the
  acceptance. Re-scoping drops an earlier acceptance: it covered another scope.
- Estimate: capped by the policy's ``changes.max_estimate``; a larger change is
  refused with "split the change".
- Schedule: a time inside one of the contract's windows and outside every
  freeze, or the next opening of a named window that no freeze covers.
- Approve: an ``approval`` entry for the action ``deploy`` naming the change,
  the approval a deploy consumes (required where the policy's
  ``changes.approval_required`` says so; allowed everywhere).
- Deploy: a change names the application version it deploys (``--deploys
  PACKAGE=VERSION`` on its request or scope: a package of the client's
  repository, as updates install them). The deploy run (``run CLIENT deploy
  --change CHG-n``) consumes the change's approval when it starts, as every run
  consumes the approval it names: a deploy that fails leaves the change
  scheduled, to be approved again where the policy requires it. The
  ``change-deployed`` entry is written by the engine when the deploy succeeded;
  this module says what a change deploys (:func:`deployment_of`), when it may
  be deployed (:func:`check_deployable`) and drafts that entry
  (:func:`draft_deployed`).
- Accept or reject: the client's functional validation, after deployment only.

Pure: entries and the contract's data in, drafts of entries or changes out;
the current time is an argument.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from webmg_ops.config.calendar import LOOKAHEAD, calendar_state, window_openings
from webmg_ops.config.contract import Scope, Window
from webmg_ops.config.durations import format_duration
from webmg_ops.config.instants import parse_instant
from webmg_ops.config.policy import PolicyFreeze
from webmg_ops.errors import BadInput, Refused
from webmg_ops.ledger import Entry, NewEntry
from webmg_ops.runs.records import APPROVAL, RUN_STARTED
from webmg_ops.service.decisions import (
    DECISION_RECORDED,
    draft_decision,
    latest_decision_on,
    required_text,
)
from webmg_ops.service.ids import CHANGE_PREFIX, format_id

CHANGE_REQUESTED = "change-requested"
CHANGE_SCOPED = "change-scoped"
CHANGE_OUT_OF_SCOPE_ACCEPTED = "change-out-of-scope-accepted"
CHANGE_ESTIMATED = "change-estimated"
CHANGE_SCHEDULED = "change-scheduled"
#: Written by the deploy action when it has installed the change.
CHANGE_DEPLOYED = "change-deployed"
CHANGE_ACCEPTED = "change-accepted"
CHANGE_REJECTED = "change-rejected"
#: The action a change's approval is for.
DEPLOY_ACTION = "deploy"

#: Every kind a change's state is folded from (the approval and the decisions included).
CHANGE_KINDS: tuple[str, ...] = (
    CHANGE_REQUESTED,
    CHANGE_SCOPED,
    CHANGE_OUT_OF_SCOPE_ACCEPTED,
    CHANGE_ESTIMATED,
    CHANGE_SCHEDULED,
    APPROVAL,
    CHANGE_DEPLOYED,
    CHANGE_ACCEPTED,
    CHANGE_REJECTED,
    DECISION_RECORDED,
    # A deploy run naming the change: it consumes the change's approval.
    RUN_STARTED,
)

#: The policy settings a change reads.
MAX_ESTIMATE = "changes.max_estimate"
APPROVAL_REQUIRED = "changes.approval_required"

#: A change's estimated risk.
RISK_LEVELS: tuple[str, ...] = ("low", "medium", "high")

#: A Debian package name (Debian policy 5.6.1): lower case, two characters at least.
PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")
#: The parts of a Debian version (Debian policy 5.6.12), ``[epoch:]upstream[-revision]``:
#: the epoch is digits; the revision letters, digits and ``+ . ~``.
_EPOCH = re.compile(r"[0-9]+")
_REVISION = re.compile(r"[A-Za-z0-9+.~]+")
#: The upstream part, once the epoch (up to the first colon) and the revision (after the
#: last hyphen) are split off: a colon is left in it only after an epoch, a hyphen only
#: before a revision, so allowing both here allows them just then.
_UPSTREAM = re.compile(r"[0-9][A-Za-z0-9.+~:-]*")


class ChangeState(StrEnum):
    """Where a change stands."""

    REQUESTED = "requested"
    SCOPED = "scoped"
    ESTIMATED = "estimated"
    SCHEDULED = "scheduled"
    APPROVED = "approved"
    DEPLOYED = "deployed"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


#: The state each entry kind moves a change to.
STATE_AFTER: dict[str, ChangeState] = {
    CHANGE_REQUESTED: ChangeState.REQUESTED,
    CHANGE_SCOPED: ChangeState.SCOPED,
    CHANGE_ESTIMATED: ChangeState.ESTIMATED,
    CHANGE_SCHEDULED: ChangeState.SCHEDULED,
    APPROVAL: ChangeState.APPROVED,
    CHANGE_DEPLOYED: ChangeState.DEPLOYED,
    CHANGE_ACCEPTED: ChangeState.ACCEPTED,
    CHANGE_REJECTED: ChangeState.REJECTED,
}

#: The states each step may start from. A step may be repeated until the next one is
#: taken (a scope corrected, a window moved); a schedule approved is fixed.
ALLOWED_FROM: dict[str, frozenset[ChangeState]] = {
    "scope": frozenset({ChangeState.REQUESTED, ChangeState.SCOPED}),
    "accept-out-of-scope": frozenset({ChangeState.SCOPED}),
    "estimate": frozenset({ChangeState.SCOPED, ChangeState.ESTIMATED}),
    "schedule": frozenset({ChangeState.ESTIMATED, ChangeState.SCHEDULED}),
    "approve": frozenset({ChangeState.SCHEDULED}),
    "deploy": frozenset({ChangeState.SCHEDULED, ChangeState.APPROVED}),
    "accept": frozenset({ChangeState.DEPLOYED}),
}


@dataclass(frozen=True)
class Change:
    """A change as its entries tell it."""

    id: str
    client: str
    title: str
    description: str
    requested_by: str
    requested_at: datetime
    state: ChangeState = ChangeState.REQUESTED
    scope_in: tuple[str, ...] = ()
    scope_out: tuple[str, ...] = ()
    #: The contract's excluded items that the scope names.
    out_of_scope: tuple[str, ...] = ()
    #: The client's decision accepting the out-of-scope items (its id).
    out_of_scope_decision: str | None = None
    hours: float | None = None
    risk: str | None = None
    rollback: str | None = None
    scheduled_at: datetime | None = None
    window: str | None = None
    approved_by: str | None = None
    #: The seq of the approval entry a deploy consumes (None: none, or consumed).
    approval_seq: int | None = None
    #: What the change deploys: (package, version) pairs, by package name.
    deploys: tuple[tuple[str, str], ...] = ()
    #: The deploy runs started for the change (run ids), oldest first.
    deploy_runs: tuple[str, ...] = ()
    deployed_seq: int | None = None
    #: The run that deployed the change.
    deployed_run: str | None = None
    accepted_by: str | None = None
    acceptance_note: str | None = None
    history: tuple[tuple[int, str, str, str], ...] = field(default=())

    @property
    def deployment(self) -> dict[str, str]:
        """Return what the change deploys: package -> version (empty: it names none)."""
        return dict(self.deploys)

    @property
    def blocked_out_of_scope(self) -> bool:
        """Return whether the scope names excluded items that the client has not accepted."""
        return bool(self.out_of_scope) and self.out_of_scope_decision is None

    def document(self) -> dict[str, Any]:
        """Return the change as a JSON-ready document."""
        return {
            "id": self.id,
            "client": self.client,
            "title": self.title,
            "description": self.description,
            "requested_by": self.requested_by,
            "requested_at": self.requested_at.isoformat(),
            "state": self.state.value,
            "scope": {"in": list(self.scope_in), "out": list(self.scope_out)},
            "out_of_scope": list(self.out_of_scope),
            "out_of_scope_decision": self.out_of_scope_decision,
            "blocked": self.blocked_out_of_scope,
            "estimate": None
            if self.hours is None
            else {"hours": self.hours, "risk": self.risk, "rollback": self.rollback},
            "scheduled_at": self.scheduled_at.isoformat() if self.scheduled_at else None,
            "window": self.window,
            "approved_by": self.approved_by,
            "approval_seq": self.approval_seq,
            "deploys": self.deployment,
            "deploy_runs": list(self.deploy_runs),
            "deployed_seq": self.deployed_seq,
            "deployed_run": self.deployed_run,
            "accepted_by": self.accepted_by,
            "acceptance_note": self.acceptance_note,
            "history": [
                {"seq": seq, "kind": kind, "at": at, "actor": actor}
                for seq, kind, at, actor in self.history
            ],
        }


# --- folding entries into changes ---------------------------------------------


def _deploys(payload: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(name), str(version)) for name, version in payload.items()))


def _consume(change: Change, payload: Mapping[str, Any]) -> Change:
    """Given a change and a deploy run's ``run-started`` naming it, return the change with
    the run noted and, if the run went under the change's approval, that approval used."""
    runs = (*change.deploy_runs, str(payload.get("run_id")))
    seq = payload.get("approval_seq")
    if seq is None or change.approval_seq is None or int(seq) != change.approval_seq:
        return replace(change, deploy_runs=runs)
    # Consumed by the attempt, whatever its outcome (as every run's approval): a deploy
    # that failed leaves the change scheduled, to be approved again.
    return replace(
        change,
        deploy_runs=runs,
        state=ChangeState.SCHEDULED,
        approved_by=None,
        approval_seq=None,
    )


def _apply(change: Change, entry: Entry, entries: Sequence[Entry]) -> Change:
    payload = entry.payload
    step = (entry.seq, entry.kind, entry.at.isoformat(), entry.actor)
    updated = replace(change, history=(*change.history, step))
    kind = entry.kind
    if kind == RUN_STARTED:
        return _consume(updated, payload)
    if kind == CHANGE_OUT_OF_SCOPE_ACCEPTED:
        decision = latest_decision_on(entries, change.id, entry.seq)
        return replace(updated, out_of_scope_decision=decision.id if decision else None)
    updated = replace(updated, state=STATE_AFTER[kind])
    if kind == CHANGE_SCOPED:
        return replace(
            updated,
            scope_in=tuple(payload["in"]),
            scope_out=tuple(payload["out"]),
            out_of_scope=tuple(payload["out_of_scope"]),
            out_of_scope_decision=None,
            # A scope naming no version keeps the request's.
            deploys=_deploys(payload["deploys"]) if "deploys" in payload else change.deploys,
        )
    if kind == CHANGE_ESTIMATED:
        return replace(
            updated,
            hours=float(payload["hours"]),
            risk=str(payload["risk"]),
            rollback=payload.get("rollback"),
        )
    if kind == CHANGE_SCHEDULED:
        return replace(
            updated, scheduled_at=datetime.fromisoformat(payload["at"]), window=payload["window"]
        )
    if kind == APPROVAL:
        return replace(updated, approved_by=str(payload["by"]), approval_seq=entry.seq)
    if kind == CHANGE_DEPLOYED:
        return replace(updated, deployed_seq=entry.seq, deployed_run=payload.get("run_id"))
    if kind in (CHANGE_ACCEPTED, CHANGE_REJECTED):
        return replace(updated, accepted_by=str(payload["by"]), acceptance_note=payload["note"])
    return updated


def changes_of(entries: Iterable[Entry]) -> dict[str, Change]:
    """Given a client's entries (any kinds, oldest first), return its changes by id, in the
    order they were requested.

    Approvals that name no change (a run's approval) and decisions are read only
    as the changes' entries refer to them.
    """
    ordered = list(entries)
    changes: dict[str, Change] = {}
    for entry in ordered:
        if entry.kind == CHANGE_REQUESTED:
            change_id = format_id(CHANGE_PREFIX, entry.seq)
            payload = entry.payload
            changes[change_id] = Change(
                id=change_id,
                client=entry.client or "",
                title=str(payload["title"]),
                description=str(payload["description"]),
                requested_by=str(payload["requested_by"]),
                requested_at=entry.at,
                deploys=_deploys(payload.get("deploys") or {}),
                history=((entry.seq, entry.kind, entry.at.isoformat(), entry.actor),),
            )
            continue
        if entry.kind == RUN_STARTED and entry.payload.get("check"):
            continue  # a dry run consumes nothing and deploys nothing
        if entry.kind not in STATE_AFTER and entry.kind not in (
            CHANGE_OUT_OF_SCOPE_ACCEPTED,
            RUN_STARTED,
        ):
            continue
        named = entry.payload.get("change")
        if named in changes:
            changes[named] = _apply(changes[named], entry, ordered)
    return changes


def find_change(history: Sequence[Entry], change_id: str) -> Change:
    """Given a client's entries and a change's id, return the change.

    Raise BadInput if the client has no such change.
    """
    change = changes_of(history).get(change_id)
    if change is None:
        raise BadInput(f"unknown change {change_id}")
    return change


def require_step(change: Change, step: str) -> None:
    """Given a change and the step asked for, return if the change's state allows it.

    Raise BadInput naming the state and the states the step needs otherwise.
    """
    allowed = ALLOWED_FROM[step]
    if change.state not in allowed:
        needed = " or ".join(state.value for state in ChangeState if state in allowed)
        raise BadInput(
            f"{change.id} is {change.state.value}: {step} needs a change that is {needed}"
        )


# --- the steps ------------------------------------------------------------------


def valid_version(text: str) -> bool:
    """Given a version as typed, return whether it is a Debian version (policy 5.6.12):
    ``[epoch:]upstream[-revision]``, the upstream part starting with a digit."""
    epoch, colon, rest = text.partition(":")
    if not colon:
        rest = text
    elif _EPOCH.fullmatch(epoch) is None:
        return False
    upstream, hyphen, revision = rest.rpartition("-")
    if not hyphen:
        upstream = rest
    elif _REVISION.fullmatch(revision) is None:
        return False
    return _UPSTREAM.fullmatch(upstream) is not None


def parse_deploys(items: Sequence[str]) -> dict[str, str]:
    """Given ``PACKAGE=VERSION`` items as typed, return package -> version.

    Raise BadInput for an item that is not ``PACKAGE=VERSION``, a package name or a
    version that Debian would refuse, or a package named twice.
    """
    found: dict[str, str] = {}
    for item in items:
        name, equals, version = item.strip().partition("=")
        if not equals:
            raise BadInput(f"--deploys {item!r}: expected PACKAGE=VERSION (e.g. webmg-app=1.1)")
        if PACKAGE_NAME.fullmatch(name) is None:
            raise BadInput(
                f"--deploys {item!r}: {name!r} is not a Debian package name (lower-case "
                "letters, digits, '+', '-' and '.', two characters at least)"
            )
        if not valid_version(version):
            raise BadInput(
                f"--deploys {item!r}: {version!r} is not a Debian version "
                "([epoch:]upstream[-revision], the upstream part starting with a digit)"
            )
        if name in found:
            raise BadInput(f"--deploys names {name} twice")
        found[name] = version
    return found


def draft_request(
    client: str,
    *,
    title: str,
    description: str,
    requested_by: str,
    deploys: Sequence[str] = (),
) -> NewEntry:
    """Given a client, a title, a description, who asks and what it deploys (``PACKAGE=
    VERSION`` items, maybe none), return the ``change-requested`` entry.

    Raise BadInput for blank text or a bad ``--deploys`` item.
    """
    payload: dict[str, Any] = {
        "title": required_text("--title", title),
        "description": required_text("--description", description),
        "requested_by": required_text("--requested-by", requested_by),
    }
    if deploys:
        payload["deploys"] = parse_deploys(deploys)
    return NewEntry(CHANGE_REQUESTED, client, payload)


def _words(text: str) -> str:
    return " ".join(text.casefold().split())


def names_item(text: str, item: str) -> bool:
    """Given a scope line and a contract's scope item, return whether the line names the
    item: the item's words appear in it as whole words, case and spacing ignored."""
    pattern = r"(?<!\w)" + re.escape(_words(item)) + r"(?!\w)"
    return re.search(pattern, _words(text)) is not None


def excluded_items_named(included: Sequence[str], contract_scope: Scope) -> list[str]:
    """Given a change's ``in`` items and the contract's scope, return the contract's
    excluded items that they name, in the contract's order."""
    return [
        item for item in contract_scope.excluded if any(names_item(line, item) for line in included)
    ]


def _clean_items(option: str, items: Sequence[str]) -> list[str]:
    cleaned = [" ".join(item.split()) for item in items]
    if any(not item for item in cleaned):
        raise BadInput(f"{option} has an empty item")
    return cleaned


def draft_scope(
    history: Sequence[Entry],
    change_id: str,
    *,
    included: Sequence[str],
    excluded: Sequence[str],
    contract_scope: Scope,
    deploys: Sequence[str] = (),
) -> NewEntry:
    """Given a client's entries, a change, what it includes and leaves out, the
    contract's scope and what it deploys (``PACKAGE=VERSION`` items; none: what the
    request named stays), return the ``change-scoped`` entry, flagged with the
    contract's excluded items that the change includes.

    Raise BadInput for an unknown change, a change past scoping, no ``--in`` item,
    an empty item or a bad ``--deploys`` item.
    """
    change = find_change(history, change_id)
    require_step(change, "scope")
    if not included:
        raise BadInput("--in: name at least one thing the change touches")
    inside = _clean_items("--in", included)
    outside = _clean_items("--out", excluded)
    payload: dict[str, Any] = {
        "change": change.id,
        "in": inside,
        "out": outside,
        "out_of_scope": excluded_items_named(inside, contract_scope),
    }
    if deploys:
        payload["deploys"] = parse_deploys(deploys)
    return NewEntry(CHANGE_SCOPED, change.client, payload)


def draft_out_of_scope_acceptance(
    history: Sequence[Entry], change_id: str, *, by: str, note: str
) -> list[NewEntry]:
    """Given a client's entries, a scoped change flagged out of scope, who accepts for the
    client and why, return the client's decision and the acceptance, to append together.

    Raise BadInput for an unknown change, one not scoped, one not flagged, or blank text.
    """
    change = find_change(history, change_id)
    require_step(change, "accept-out-of-scope")
    if not change.out_of_scope:
        raise BadInput(f"{change.id} is within the contract's scope: there is nothing to accept")
    if change.out_of_scope_decision is not None:
        raise BadInput(
            f"{change.id}'s out-of-scope items were accepted by {change.out_of_scope_decision}"
        )
    decision = draft_decision(
        change.client,
        title=f"{change.id} accepted although out of scope: {', '.join(change.out_of_scope)}",
        by=by,
        party="client",
        note=note,
        subject=change.id,
    )
    acceptance = NewEntry(
        CHANGE_OUT_OF_SCOPE_ACCEPTED,
        change.client,
        {"change": change.id, "by": decision.payload["by"], "items": list(change.out_of_scope)},
    )
    return [decision, acceptance]


def draft_estimate(
    history: Sequence[Entry],
    change_id: str,
    *,
    hours: float,
    risk: str,
    rollback: str | None,
    cap: timedelta | None,
) -> NewEntry:
    """Given a client's entries, a change, its estimate in hours, its risk, how it is rolled
    back and the policy's cap on one change (None: no cap), return the ``change-estimated``
    entry.

    Raise BadInput for an unknown change, one not scoped, hours not above zero, an
    unknown risk or a blank rollback; Refused for a change flagged out of scope that
    the client has not accepted, or an estimate above the cap (split the change).
    """
    change = find_change(history, change_id)
    require_step(change, "estimate")
    if not hours > 0:
        raise BadInput(f"--hours {hours:g} must be more than 0")
    if risk not in RISK_LEVELS:
        raise BadInput(f"--risk {risk!r} must be one of {', '.join(RISK_LEVELS)}")
    if change.blocked_out_of_scope:
        raise Refused(
            f"{change.id} touches what the contract excludes ({', '.join(change.out_of_scope)}): "
            f"the client must accept it first (webmg-ops change accept-out-of-scope {change.id} "
            "--by WHO --note TEXT)"
        )
    if cap is not None and timedelta(hours=hours) > cap:
        raise Refused(
            f"{change.id}: {hours:g} h is more than the {format_duration(cap)} one change may "
            "take at this level: split the change into smaller ones"
        )
    payload: dict[str, Any] = {"change": change.id, "hours": hours, "risk": risk}
    if rollback is not None:
        payload["rollback"] = required_text("--rollback", rollback)
    return NewEntry(CHANGE_ESTIMATED, change.client, payload)


def client_zone(windows: Sequence[Window]) -> ZoneInfo:
    """Given a client's windows, return the client's time zone (its first window's; UTC
    without windows), the zone the calendar reads freezes in."""
    return ZoneInfo(windows[0].timezone if windows else "UTC")


def next_usable_opening(
    window: Window, windows: Sequence[Window], freezes: Sequence[PolicyFreeze], now: datetime
) -> datetime | None:
    """Given a window, the client's windows and freezes, and now, return the first instant
    at or after now at which that window is open and no freeze applies (None within the
    calendar's look-ahead)."""
    for opening in window_openings(window, now, now + LOOKAHEAD):
        start = max(opening.interval.start, now)
        # A freeze covers whole days: the window's next opening may fall outside it.
        if calendar_state(windows, freezes, start).freeze is None:
            return start
    return None


def draft_schedule(
    history: Sequence[Entry],
    change_id: str,
    *,
    window_name: str | None,
    at: str | None,
    windows: Sequence[Window],
    freezes: Sequence[PolicyFreeze],
    now: datetime,
) -> NewEntry:
    """Given a client's entries, a change, a window's name or a time (one of them), the
    client's windows and freezes, and now, return the ``change-scheduled`` entry.

    Raise BadInput for an unknown change, one not estimated, both or neither of
    window and time, an unknown window, a time that is not one or is past;
    Refused for a time outside every window or inside a freeze, or a window with
    no opening outside freezes.
    """
    change = find_change(history, change_id)
    require_step(change, "schedule")
    if (window_name is None) == (at is None):
        raise BadInput("give either --window NAME or --at TIME")
    zone = client_zone(windows)
    if window_name is not None:
        window = next((item for item in windows if item.name == window_name), None)
        if window is None:
            names = ", ".join(item.name for item in windows) or "none"
            raise BadInput(f"{change.client} has no window {window_name!r} (windows: {names})")
        instant = next_usable_opening(window, windows, freezes, now)
        if instant is None:
            raise Refused(f"window {window_name!r} has no opening outside freezes within a year")
        chosen = window
    else:
        assert at is not None
        instant = parse_instant("--at", at)
        if instant < now:
            raise BadInput(f"--at {at!r} is in the past")
        state = calendar_state(windows, freezes, instant)
        if state.freeze is not None:
            period = state.freeze
            raise Refused(
                f"{instant.astimezone(zone):%Y-%m-%d %H:%M %Z} is inside the freeze "
                f"{period.freeze.name!r} ({period.freeze.reason}): choose another time"
            )
        if state.window is None:
            following = (
                f"; the next opening is {state.next_opening.start.astimezone(zone):%Y-%m-%d %H:%M}"
                f" ({state.next_window.name})"
                if state.next_opening is not None and state.next_window is not None
                else ""
            )
            raise Refused(
                f"{instant.astimezone(zone):%Y-%m-%d %H:%M %Z} is outside every maintenance "
                f"window{following}"
            )
        chosen = state.window.window
    return NewEntry(
        CHANGE_SCHEDULED,
        change.client,
        {
            "change": change.id,
            "at": instant.astimezone(UTC).isoformat(),
            "local": instant.astimezone(zone).isoformat(),
            "timezone": str(zone),
            "window": chosen.name,
        },
    )


def draft_approval(history: Sequence[Entry], change_id: str, *, by: str, note: str) -> NewEntry:
    """Given a client's entries, a scheduled change, who approves and a note, return the
    ``approval`` entry for the change's deploy (the approval a deploy consumes).

    Raise BadInput for an unknown change, one not scheduled, or a blank approver.
    """
    change = find_change(history, change_id)
    require_step(change, "approve")
    return NewEntry(
        APPROVAL,
        change.client,
        {
            "action": DEPLOY_ACTION,
            "by": required_text("--by", by),
            "note": note.strip(),
            "change": change.id,
        },
    )


def check_deployable(change: Change, approval_required: bool) -> None:
    """Given a change and whether the policy requires an approval, return if it may be
    deployed now: scheduled (and approved, when required).

    Raise BadInput for a change not scheduled or approved; Refused for one that the
    policy requires approved and is not.
    """
    require_step(change, "deploy")
    if approval_required and change.state is not ChangeState.APPROVED:
        raise Refused(
            f"{change.client}'s policy requires an approval before {change.id} is deployed: "
            f"webmg-ops change approve {change.id} --by WHO"
        )


def deployment_of(change: Change, *, check: bool) -> dict[str, str]:
    """Given a change and whether the deploy is a dry run, return what it deploys
    (package -> version).

    Raise BadInput if the change names no version, or (not for a dry run, which
    changes nothing) if it is not scheduled or approved.
    """
    if not change.deploys:
        raise BadInput(
            f"{change.id} names no version to deploy: webmg-ops change scope {change.id} "
            "--in TEXT --deploys PACKAGE=VERSION"
        )
    if not check:
        require_step(change, "deploy")
    return change.deployment


def draft_deployed(
    change: Change, *, run_id: str, versions: Mapping[str, Mapping[str, Mapping[str, Any]]]
) -> NewEntry:
    """Given a change, the run that deployed it and the versions per host (host ->
    package -> ``before``/``after``), return the ``change-deployed`` entry."""
    return NewEntry(
        CHANGE_DEPLOYED,
        change.client,
        {
            "change": change.id,
            "run_id": run_id,
            "packages": change.deployment,
            "hosts": {host: dict(found) for host, found in versions.items()},
        },
    )


def draft_acceptance(
    history: Sequence[Entry], change_id: str, *, by: str, rejected: bool, note: str | None
) -> NewEntry:
    """Given a client's entries, a deployed change, who validates for the client, whether
    the change is rejected and a note, return the ``change-accepted`` or
    ``change-rejected`` entry (the client's act).

    Raise BadInput for an unknown change, one not deployed, a blank name, or a
    rejection without a note.
    """
    change = find_change(history, change_id)
    require_step(change, "accept")
    if rejected and (note is None or not note.strip()):
        raise BadInput("--rejected needs --note: what did not pass the client's validation")
    return NewEntry(
        CHANGE_REJECTED if rejected else CHANGE_ACCEPTED,
        change.client,
        {
            "change": change.id,
            "by": required_text("--by", by),
            "party": "client",
            "note": (note or "").strip(),
        },
    )
