"""``tick``: evaluate every open incident, record breaches, send what is due once.

Safe to run every minute (cron, a systemd timer, CI). For each client with an
open incident, :func:`webmg_ops.service.escalation.decide_tick` decides under
the ledger's write lock which breaches to record and which deliveries to claim;
the claims are appended before anything is sent, so that a second tick, at
once or right after, finds them and sends nothing. Each claimed delivery is
then sent through Apprise and its outcome recorded: ``notification-sent``, or
``notification-pending`` with the error, masked, which the next tick retries.

A step of a contract that names no target of its own is notified through the
agency's on-call targets (the first escalation step of the agency's own
contract), their vault references read from the agency's vault.

Every contract is loaded before anything is written: a contract that fails
validation (an unsupported notification scheme) stops the tick with nothing
written.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from webmg_ops.ansible.vault import Vault
from webmg_ops.config.clients import AGENCY, CONTRACT_FILE, Client, load_client_contract
from webmg_ops.config.contract import EscalationStep
from webmg_ops.config.notify_targets import resolve_url, vault_names
from webmg_ops.errors import WebmgError
from webmg_ops.ledger import Entry, NewEntry, open_ledger
from webmg_ops.secrets import SecretSet
from webmg_ops.service.escalation import (
    CLOCK_BREACHED,
    TICK_KINDS,
    Notification,
    decide_tick,
    outcome_entry,
)
from webmg_ops.service.incidents import INCIDENT_KINDS, fold_incidents, rules_for
from webmg_ops.service.notify import Sender, send_apprise
from webmg_ops.service.records import DerivedRecorder, derived_recorders
from webmg_ops.settings import Settings


@dataclass
class _ClientTick:
    """One client's part of a tick: its escalation path as notified, and the vaults read."""

    client: Client
    secrets: SecretSet
    #: The contract's steps, each without targets given the agency's on-call targets.
    steps: tuple[EscalationStep, ...]
    #: The steps (numbered from 1) notified through the agency's targets, whose vault
    #: references are the agency's.
    agency_steps: frozenset[int]
    vaults: dict[Path, dict[str, Any]] = field(default_factory=dict)


def agency_targets(settings: Settings) -> tuple[str, ...]:
    """Given the settings, return the agency's on-call targets: the ``notify`` URLs of the
    first escalation step of the agency's own contract (none without an agency folder).

    Raise BadInput if the agency's contract fails validation.
    """
    if not (settings.inventories / AGENCY / CONTRACT_FILE).is_file():
        return ()
    steps = load_client_contract(settings.inventories, AGENCY).contract.escalation
    return tuple(steps[0].notify) if steps else ()


def _client_tick(client: Client, fallback: Sequence[str]) -> _ClientTick:
    """Given a client and the agency's targets, return its tick state: a step that names
    no target of its own is notified through the agency's."""
    steps: list[EscalationStep] = []
    agency_steps: set[int] = set()
    for number, step in enumerate(client.contract.escalation, start=1):
        if not step.notify and fallback:
            step = step.model_copy(update={"notify": list(fallback)})
            agency_steps.add(number)
        steps.append(step)
    return _ClientTick(client, SecretSet(), tuple(steps), frozenset(agency_steps))


def _clients_with_open_incidents(settings: Settings, only: str | None) -> list[str]:
    with open_ledger(settings.ledger_url) as ledger:
        entries = list(ledger.entries(client=only, kinds=INCIDENT_KINDS))
    return sorted({i.client for i in fold_incidents(entries).values() if i.is_open})


def _vault_of(state: _ClientTick, vault: Vault, notification: Notification) -> dict[str, Any]:
    # The agency's targets name the agency's vault; the contract's own, the client's.
    folder = state.client.folder
    if notification.step in state.agency_steps:
        folder = folder.parent / AGENCY
    if folder not in state.vaults:
        # Read only when a URL names the vault, and then once per folder, client and tick.
        state.vaults[folder] = vault.variables(folder)
        state.secrets = state.secrets.union(SecretSet.of(vault.values(folder)))
    return state.vaults[folder]


def _deliver(
    state: _ClientTick, vault: Vault, notification: Notification, send: Sender
) -> str | None:
    """Send one claimed delivery; return None, or the reason it failed, masked."""
    try:
        if not notification.url:
            return "the target is no longer in the contract's escalation path"
        url = notification.url
        if vault_names(url):
            try:
                url = resolve_url(url, _vault_of(state, vault, notification))
            except KeyError as missing:
                owner = "agency's" if notification.step in state.agency_steps else "client's"
                return f"the {owner} vault lacks {missing.args[0]}"
        error = send(url, notification.title, notification.body)
        if error is not None:
            # The resolved URL's secrets are masked in the error, whatever their form.
            secrets = state.secrets.union(SecretSet.of([url, *_url_secrets(url)]))
            return secrets.mask_text(error)
        return None
    except WebmgError as problem:
        return state.secrets.mask_text(problem.message)


def _url_secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    found += [value for _name, value in parse_qsl(parts.query) if len(value) >= 6]
    return [value for value in found if value]


def _decide_for(
    record: DerivedRecorder, state: _ClientTick, *, at: datetime, wall: datetime, tick: str
) -> tuple[list[Entry], list[Notification], int]:
    """Record one client's breaches and claims under the write lock; return the entries
    appended, the deliveries claimed and how many open incidents were evaluated."""
    rules = rules_for(state.client)
    steps = state.steps
    thresholds = state.client.policy.get("escalation.thresholds")
    claimed: list[Notification] = []
    open_count = 0

    def derive(history: Sequence[Entry]) -> Sequence[NewEntry]:
        nonlocal open_count
        decision = decide_tick(history, rules, steps, thresholds, now=at, wall=wall, tick=tick)
        claimed[:] = decision.claimed
        open_count = decision.evaluated
        return decision.entries

    made = record(state.client, TICK_KINDS, derive)
    return made, claimed, open_count


def tick(
    settings: Settings,
    *,
    client_name: str | None = None,
    now: datetime | None = None,
    vault: Vault | None = None,
    send: Sender = send_apprise,
) -> dict[str, Any]:
    """Given the settings, an optional client, the instant to evaluate (default now),
    the vault and the sender, record breaches, send each due notification once, and
    return what was done: ``breaches`` and ``notifications`` (key, target masked,
    outcome, error masked), and how many incidents were evaluated.

    Raise BadInput for an unknown client or a contract that fails validation
    (nothing written), EnvironmentProblem if the ledger fails.
    """
    wall = datetime.now(UTC)
    at = (now or wall).astimezone(UTC)
    vault = vault or Vault(None)
    tick_id = uuid.uuid4().hex
    if client_name is not None:
        client_name = load_client_contract(settings.inventories, client_name).name
    names = _clients_with_open_incidents(settings, client_name)
    # Every contract first: one that fails validation stops the tick before any entry.
    fallback = agency_targets(settings) if names else ()
    states = {
        name: _client_tick(load_client_contract(settings.inventories, name), fallback)
        for name in names
    }
    breaches: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    evaluated = 0
    with derived_recorders(settings) as (record_derived, record):
        for name, state in states.items():
            made, claimed, open_count = _decide_for(
                record_derived, state, at=at, wall=wall, tick=tick_id
            )
            evaluated += open_count
            breaches.extend(
                {
                    "client": name,
                    "incident": f"INC-{entry.payload['incident']}",
                    "clock": entry.payload["clock"],
                }
                for entry in made
                if entry.kind == CLOCK_BREACHED
            )
            outcomes: list[NewEntry] = []
            for notification in claimed:
                error = _deliver(state, vault, notification, send)
                outcomes.append(outcome_entry(notification, name, tick_id, error))
                notifications.append(
                    {
                        "client": name,
                        "key": notification.key,
                        "target": notification.target,
                        "outcome": "sent" if error is None else "pending",
                        "error": error,
                    }
                )
            # One transaction per client: a tick that dies before it leaves that client's
            # deliveries claimed, and a later tick sends them again once the lease is over.
            if outcomes:
                record(outcomes)
    return {
        "at": at.isoformat(),
        "incidents_evaluated": evaluated,
        "breaches": breaches,
        "notifications": notifications,
    }
