"""Planning a run: the action, its playbook, the hosts chosen, the batches and policy.

Nothing here touches a host or writes: ``plan`` shows it, and a run
refuses the input its plan would refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from webmg_ops.actions.base import Action
from webmg_ops.actions.registry import action_named
from webmg_ops.ansible.inventory import hosts_matching
from webmg_ops.ansible.runner import PLAYBOOKS
from webmg_ops.ansible.vault import Vault
from webmg_ops.config.clients import Client, load_client
from webmg_ops.config.policy import describe_value
from webmg_ops.engine.deploy import with_change
from webmg_ops.engine.governance import Clearance, PolicyRefusal, list_refusals, rules_for
from webmg_ops.engine.lock import find_lock_holder, locked_message
from webmg_ops.errors import BadInput
from webmg_ops.ledger import open_ledger
from webmg_ops.runs.records import Refusal, RunRequest
from webmg_ops.settings import Settings

#: Policy values copied into ``run-started`` so the record says what governed the run.
RECORDED_POLICY = (
    "updates.mode",
    "updates.rolling",
    "updates.batch_percent",
    "updates.approval_required",
    "runs.partial_hosts",
    "targets.rpo",
    "targets.rto",
)


@dataclass(frozen=True)
class Plan:
    """What a run would do, computed without touching a host."""

    client: Client
    action: str
    playbook: Path | None
    hosts: tuple[str, ...]
    batches: tuple[tuple[str, ...], ...]
    clearance: Clearance | None
    #: The refusal a run would report (the first of ``refusals``), None if it would run.
    refusal: PolicyRefusal | None
    policy: Mapping[str, str]
    #: What a deploy installs (package -> version); empty for every other action.
    deploys: Mapping[str, str] = field(default_factory=dict)
    #: Every reason a run would be refused, in the order a run checks them.
    refusals: tuple[PolicyRefusal, ...] = ()


def playbook_of(action: Action) -> Path | None:
    """Given an action, return its playbook (None for a controller action)."""
    return PLAYBOOKS / action.playbook if action.playbook else None


def select_hosts(client: Client, limit: str | None) -> tuple[str, ...]:
    """Given a client and an Ansible ``--limit`` pattern (or None), return the hosts chosen.

    Raise BadInput if the pattern matches no host.
    """
    names = tuple(host.name for host in client.hosts)
    if limit is None:
        return names
    if not limit.strip():
        raise BadInput("--limit is empty")
    chosen = hosts_matching(client.folder, limit)
    if not chosen:
        raise BadInput(f"--limit {limit!r} matches no host of {client.name}")
    return chosen


def with_action_vars(
    action: Action, client: Client, hosts: tuple[str, ...], request: RunRequest, vault: Vault
) -> RunRequest:
    """Return the request with the extra vars the action derives from contract and policy."""
    if action.make_extra_vars is None:
        return request
    return replace(request, extra_vars=action.make_extra_vars(client, hosts, request, vault=vault))


def with_incident(settings: Settings, client: Client, request: RunRequest) -> RunRequest:
    """Given a request, return it with the incident it names written ``INC-<seq>``.

    Raise BadInput, before anything is written, if the incident is unknown, another
    client's or closed.
    """
    if request.incident is None:
        return request
    # Imported for a run that names an incident: the incident service (its clocks and
    # escalations) is no part of planning any other run.
    from webmg_ops.service.incident_commands import incident_for_run

    return replace(request, incident=incident_for_run(settings, client.name, request.incident))


def policy_summary(client: Client) -> dict[str, str]:
    return {name: describe_value(client.policy.get(name)) for name in RECORDED_POLICY}


def plan_run(settings: Settings, request: RunRequest, at: datetime | None = None) -> Plan:
    """Given a request, return what the run would do and whether policy would refuse it.

    Touches no host and writes nothing. Every reason the run would be refused is listed
    (:func:`list_refusals`, then the client's lock). Raise BadInput for an unknown
    client, action or an empty ``--limit`` match.
    """
    client = load_client(settings.inventories, request.client)
    rules_for(request.action)
    action = action_named(request.action)
    playbook = playbook_of(action)
    hosts = select_hosts(client, request.limit)
    with open_ledger(settings.ledger_url, create=False, missing_ok=True) as ledger:
        request = with_change(ledger, client, request)
    # A plan refuses the input that the run would refuse.
    with_incident(settings, client, request)
    with_action_vars(action, client, hosts, request, Vault(request.vault_password_file))
    batches = (
        action.plan_batches(client, hosts)
        if action.plan_batches is not None and not request.check
        else (hosts,)
    )
    with open_ledger(settings.ledger_url, create=False, missing_ok=True) as ledger:
        clearance, refusals = list_refusals(client, request, at or datetime.now(UTC), ledger)
    # A run takes the client's lock once governance clears it: the lock comes last.
    holder = find_lock_holder(settings.var_dir, client.name)
    if holder is not None:
        refusals = (*refusals, PolicyRefusal(Refusal.LOCK, locked_message(client.name, holder)))
    return Plan(
        client=client,
        action=request.action,
        playbook=playbook,
        hosts=hosts,
        batches=batches,
        clearance=clearance,
        refusal=refusals[0] if refusals else None,
        policy=policy_summary(client),
        deploys=request.deploys,
        refusals=refusals,
    )
