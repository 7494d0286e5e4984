"""Governance checks before a run: prospect, diagnostic, window and freeze, approval.

Which checks an action needs is data (:data:`ACTION_RULES`). A refusal is
an exception that carries its :class:`~webmg_ops.runs.records.Refusal` kind, so
the engine can record it before exiting with status 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from webmg_ops.config.calendar import CalendarState, FreezePeriod, calendar_state
from webmg_ops.config.clients import Client
from webmg_ops.errors import BadInput, Refused
from webmg_ops.ledger import Entry, LedgerReader
from webmg_ops.runs.records import APPROVAL, RUN_FINISHED, RUN_STARTED, Refusal, RunRequest
from webmg_ops.service import changes


@dataclass(frozen=True)
class ActionRules:
    """What an action needs before it may run for real (dry runs need neither)."""

    needs_window: bool
    needs_approval: bool
    #: A diagnostic on record and a stabilized system (the seed: diagnostic first).
    needs_diagnostic: bool = False
    #: May run for a prospect (no level contracted yet).
    for_prospects: bool = False
    #: Installs what a change names (``--change CHG-n``), where the level allows it
    #: (``changes.deploy_allowed``); the approval it consumes is the change's own.
    deploys_change: bool = False


#: Changes to live systems need a window and, where the policy says so, an
#: approval. Checks, diagnostics, backups and drills read or copy data; they
#: run on their own cadence at any time.
#: Only read-only looks run for a prospect; changes need a diagnostic first.
ACTION_RULES: dict[str, ActionRules] = {
    "check": ActionRules(needs_window=False, needs_approval=False, for_prospects=True),
    "diagnose": ActionRules(needs_window=False, needs_approval=False, for_prospects=True),
    "backup": ActionRules(needs_window=False, needs_approval=False),
    "drill": ActionRules(needs_window=False, needs_approval=False),
    # The agency's own backup target: adding accounts and keys for the clients' backups.
    "target": ActionRules(needs_window=False, needs_approval=False),
    "update": ActionRules(needs_window=True, needs_approval=True, needs_diagnostic=True),
    "harden": ActionRules(needs_window=True, needs_approval=True, needs_diagnostic=True),
    "deploy": ActionRules(
        needs_window=True, needs_approval=True, needs_diagnostic=True, deploys_change=True
    ),
}

#: The policy setting that lets a level deploy changes.
DEPLOY_ALLOWED = "changes.deploy_allowed"


class PolicyRefusal(Refused):
    """Policy refuses a run; ``refusal`` says which rule."""

    def __init__(self, refusal: Refusal, message: str) -> None:
        super().__init__(message)
        self.refusal = refusal
        #: Set once the refusal is recorded: its refusal log, which the user is shown.
        self.run_log: Path | None = None


@dataclass(frozen=True)
class Clearance:
    """Why a run may go ahead: its window (or emergency) and the approval it consumes."""

    window: str | None
    emergency: bool
    overridden: str | None
    approval_seq: int | None


def rules_for(action: str) -> ActionRules:
    """Given an action name, return its rules. Raise BadInput if the action is unknown."""
    try:
        return ACTION_RULES[action]
    except KeyError:
        known = ", ".join(sorted(ACTION_RULES))
        raise BadInput(f"unknown action {action!r} (known: {known})") from None


def approval_consumers(client: Client) -> tuple[str, ...]:
    """Given a client, return the actions whose runs consume an approval under its policy,
    sorted: those that need one (:data:`ACTION_RULES`) where the policy asks for approvals,
    and that may run for the client (a prospect runs none of them). A deploy is not one of
    them: it consumes its change's approval (``change approve``)."""
    if not client.policy.approval_required:
        return ()
    return tuple(
        sorted(
            name
            for name, rule in ACTION_RULES.items()
            if rule.needs_approval
            and not rule.deploys_change
            and (rule.for_prospects or not client.contract.is_prospect)
        )
    )


def check_approvable(client: Client, action: str) -> None:
    """Given a client and an action, return if a run of that action would consume an
    approval recorded for the client.

    Raise BadInput naming the actions that do (or saying none does): an approval no run
    consumes would sit in the ledger as if it governed something.
    """
    consumers = approval_consumers(client)
    if action in consumers:
        return
    if action in ACTION_RULES and ACTION_RULES[action].deploys_change:
        raise BadInput(
            f"a run of {action} consumes the approval of the change it deploys, not one "
            "recorded for the action: webmg-ops change approve CHG-n --by WHO"
        )
    if consumers:
        raise BadInput(
            f"a run of {action} for {client.name} consumes no approval under its policy; "
            f"actions that do: {', '.join(consumers)}"
        )
    raise BadInput(
        f"a run of {action} for {client.name} consumes no approval: its policy asks for "
        "none (updates.approval_required: no, or a prospect); actions that do: none"
    )


def find_open_approval(ledger: LedgerReader, client: str, action: str) -> int | None:
    """Given a ledger, a client and an action, return the seq of the oldest unused approval."""
    approvals: list[int] = []
    used: set[int] = set()
    for entry in ledger.entries(client=client, kinds=(APPROVAL, RUN_STARTED)):
        if entry.kind == APPROVAL and entry.payload.get("action") == action:
            approvals.append(entry.seq)
        elif entry.kind == RUN_STARTED and entry.payload.get("approval_seq"):
            used.add(int(entry.payload["approval_seq"]))
    return next((seq for seq in approvals if seq not in used), None)


def last_diagnostic(ledger: LedgerReader, client: str) -> Entry | None:
    """Given a ledger and a client, return the last successful diagnostic's run-finished."""
    found: Entry | None = None
    for entry in ledger.entries(client=client, kinds=(RUN_FINISHED,)):
        payload = entry.payload
        if payload.get("action") == "diagnose" and payload.get("outcome") == "succeeded":
            found = entry
    return found


def _diagnostic_gap(client: Client, ledger: LedgerReader) -> str | None:
    """Return why the client may not be changed before scoping, or None."""
    if client.contract.fit.stabilized is False:
        return (
            f"{client.name} is not stabilized (client.yml fit.stabilized: false): "
            "the priority is a diagnostic (scoping) before committing to support"
        )
    if last_diagnostic(ledger, client.name) is None:
        return (
            f"{client.name} has no diagnostic on record: run `webmg-ops diagnose {client.name}` "
            "before changing its hosts"
        )
    return None


def _change_approval(client: Client, change_id: str | None, ledger: LedgerReader) -> int | None:
    """Given a client, the change a deploy names and the ledger, return the seq of the
    change's approval the deploy consumes (None: the change is not approved, and the
    policy does not require it).

    Raise BadInput for no change, an unknown one or one not scheduled; PolicyRefusal
    if the policy requires an approval the change does not have (or has consumed).
    """
    if change_id is None:
        raise BadInput("deploy needs --change CHG-n: the change naming the version it installs")
    history = list(ledger.entries(client=client.name, kinds=changes.CHANGE_KINDS))
    change = changes.find_change(history, change_id)
    try:
        changes.check_deployable(change, bool(client.policy.get(changes.APPROVAL_REQUIRED)))
    except Refused as refused:
        raise PolicyRefusal(Refusal.APPROVAL, refused.message) from None
    return change.approval_seq if change.state is changes.ChangeState.APPROVED else None


_ONLY_AN_EMERGENCY = "only an emergency may run (--emergency --reason ...)"


def _freeze_refusal(client: Client, period: FreezePeriod) -> PolicyRefusal:
    freeze = period.freeze
    return PolicyRefusal(
        Refusal.FREEZE,
        f"{client.name} is in the freeze {freeze.name!r} ({freeze.reason}); {_ONLY_AN_EMERGENCY}",
    )


def _window_refusal(client: Client, state: CalendarState) -> PolicyRefusal:
    """The refusal outside every window, naming when the next one opens in the client's
    time (the time ``due`` shows), with its zone."""
    upcoming = ""
    if state.next_opening:
        zone = changes.client_zone(client.contract.windows)
        opens = state.next_opening.start.astimezone(zone).isoformat()
        upcoming = f"; next window opens {opens} ({zone.key})"
    return PolicyRefusal(
        Refusal.WINDOW,
        f"{client.name} is outside its maintenance windows{upcoming}; {_ONLY_AN_EMERGENCY}",
    )


def _diagnostic_refusal(gap: str) -> PolicyRefusal:
    return PolicyRefusal(Refusal.DIAGNOSTIC, f"{gap}; {_ONLY_AN_EMERGENCY}")


def _approval_refusal(client: Client, action: str) -> PolicyRefusal:
    return PolicyRefusal(
        Refusal.APPROVAL,
        f"{client.name}'s policy requires an approval for {action}: record one with "
        f"webmg-ops approve {client.name} {action} --by NAME --note TEXT",
    )


def check_governance(
    client: Client,
    action: str,
    *,
    check: bool,
    emergency: bool,
    reason: str,
    at: datetime,
    ledger: LedgerReader,
    change: str | None = None,
) -> Clearance:
    """Given a requested run (and the change a deploy names), return its clearance.

    Raise BadInput if an emergency has no reason, PolicyRefusal if the
    client is a prospect and the action is not a read-only look, if the
    client's level may not deploy, if a change comes before a diagnostic or
    on a system that is not stabilized, if the run falls outside every window
    or inside a freeze (each unless it is an emergency), or if it needs an
    approval that was not recorded (a deploy: its change's).
    """
    rules = rules_for(action)
    if emergency and not reason.strip():
        raise BadInput("--emergency needs --reason: an emergency change must say why")
    if client.contract.is_prospect and not rules.for_prospects:
        # No emergency overrides this: there is no contract to act under yet.
        allowed = ", ".join(
            sorted(name for name, rule in ACTION_RULES.items() if rule.for_prospects)
        )
        raise PolicyRefusal(
            Refusal.PROSPECT,
            f"{client.name} is a prospect (no level in client.yml): only {allowed} may run "
            "until a service level is contracted",
        )
    if rules.deploys_change and not client.policy.get(DEPLOY_ALLOWED):
        # No emergency overrides this either: the level does not include deploys at all.
        source = client.policy.values[DEPLOY_ALLOWED].source
        raise PolicyRefusal(
            Refusal.LEVEL,
            f"{client.name} may not {action}: its policy does not deploy application "
            f"versions ({DEPLOY_ALLOWED}: no, from the {source}); deploys are part of "
            "continuous-evolution and institutional-sla",
        )
    overridden_parts: list[str] = []
    state = calendar_state(client.contract.windows, client.policy.freezes, at)
    window_name = state.window.window.name if state.window else None
    if rules.needs_window and not check:
        if state.freeze is not None:
            if not emergency:
                raise _freeze_refusal(client, state.freeze)
            overridden_parts.append(f"freeze {state.freeze.freeze.name}")
        elif state.window is None:
            if not emergency:
                raise _window_refusal(client, state)
            overridden_parts.append("outside windows")
    if rules.needs_diagnostic and not check:
        gap = _diagnostic_gap(client, ledger)
        if gap is not None:
            if not emergency:
                raise _diagnostic_refusal(gap)
            overridden_parts.append("diagnostic first")
    approval_seq: int | None = None
    if rules.deploys_change:
        # A dry run changes nothing: it consumes no approval and may look at any change.
        approval_seq = None if check else _change_approval(client, change, ledger)
    elif rules.needs_approval and not check and client.policy.approval_required:
        approval_seq = find_open_approval(ledger, client.name, action)
        if approval_seq is None:
            raise _approval_refusal(client, action)
    return Clearance(
        window=window_name,
        emergency=emergency,
        overridden=", ".join(overridden_parts) or None,
        approval_seq=approval_seq,
    )


def clear_request(
    client: Client, request: RunRequest, at: datetime, ledger: LedgerReader
) -> Clearance:
    """Given a client, a run's request, the instant and the ledger, return the clearance
    :func:`check_governance` gives the request's action and flags; raise as it does."""
    return check_governance(
        client,
        request.action,
        check=request.check,
        emergency=request.emergency,
        reason=request.reason,
        at=at,
        ledger=ledger,
        change=request.change,
    )


#: Refusals no other rule adds to: without a contract, or a level that excludes the
#: action, nothing else is worth naming.
_ABSOLUTE = (Refusal.PROSPECT, Refusal.LEVEL)


def list_refusals(
    client: Client, request: RunRequest, at: datetime, ledger: LedgerReader
) -> tuple[Clearance | None, tuple[PolicyRefusal, ...]]:
    """Given a client, a run's request, the instant and the ledger, return the clearance
    :func:`clear_request` gives (None if refused) and every refusal governance would make
    of the run, in the order the rules are checked: the first is the one a run reports.

    Each refusal the gate would raise once the previous one were lifted is listed: freeze,
    window, diagnostic, approval (a deploy: its change's). A prospect or a level without
    deploys is listed alone. Raise BadInput as :func:`clear_request` does.
    """
    try:
        return clear_request(client, request, at, ledger), ()
    except PolicyRefusal as first:
        if first.refusal in _ABSOLUTE:
            return None, (first,)
        found = [first, *_later_refusals(client, request, at, ledger)]
    # The first refusal is found again among the later ones: each kind is named once.
    named: dict[Refusal, PolicyRefusal] = {}
    for refusal in found:
        named.setdefault(refusal.refusal, refusal)
    return None, tuple(named.values())


def _later_refusals(
    client: Client, request: RunRequest, at: datetime, ledger: LedgerReader
) -> list[PolicyRefusal]:
    """Every refusal of the window, diagnostic and approval rules for a real run, each
    judged as if the others passed (nothing for a dry run or an emergency but approval)."""
    if request.check:
        return []
    rules = rules_for(request.action)
    found: list[PolicyRefusal] = []
    state = calendar_state(client.contract.windows, client.policy.freezes, at)
    if rules.needs_window and not request.emergency:
        if state.freeze is not None:
            found.append(_freeze_refusal(client, state.freeze))
        if state.window is None:
            found.append(_window_refusal(client, state))
    gap = _diagnostic_gap(client, ledger) if rules.needs_diagnostic else None
    if gap is not None and not request.emergency:
        found.append(_diagnostic_refusal(gap))
    if rules.deploys_change:
        try:
            _change_approval(client, request.change, ledger)
        except PolicyRefusal as refused:
            found.append(refused)
        except BadInput:
            # A change the gate would reject as input is not a refusal: the plan has read
            # the request already, and the run reports it once the rules before it pass.
            pass
    elif (
        rules.needs_approval
        and client.policy.approval_required
        and find_open_approval(ledger, client.name, request.action) is None
    ):
        found.append(_approval_refusal(client, request.action))
    return found
