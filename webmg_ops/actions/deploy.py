"""The ``deploy`` action: install the application version a change names, as updates do.

A change names what it deploys (package -> version, a package of the
client's repository); the engine reads it from the ledger into the request
(:mod:`webmg_ops.engine.deploy`). This module plans the update play in its
approved-versions mode with exactly those versions: the same rolling,
health-gated batches (canary first, the contract's health checks), the same
rollback of a failed batch and halt of the window. Its outcome is the
update's, with the versions of the deployed packages before and after on
each host; a host that runs the package but does not end at the change's
version (not published, held, newer installed) fails the run, so that only a
deploy that reached every host running the application counts as deployed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from webmg_ops.actions import update
from webmg_ops.actions.base import Action, ActionOutcome, ungoverned_vars
from webmg_ops.ansible.runner import PlaybookResult
from webmg_ops.ansible.vault import Vault
from webmg_ops.config.clients import Client
from webmg_ops.errors import BadInput
from webmg_ops.remote.preflight import HostPreflight
from webmg_ops.runs.records import HostStatus, RunRequest

#: Extra vars the change, contract and policy set; a run may not set them itself.
GOVERNED_VARS = update.GOVERNED_VARS | {"updates_mode"}


def deploy_vars(
    client: Client,
    hosts: Sequence[str],
    deploys: Mapping[str, str],
    *,
    check: bool,
    requested: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Given a client, the run's hosts, what the change deploys (package -> version),
    whether it is a dry run and the request's own extra vars, return the update play's
    extra vars: approved mode with exactly those versions, the contract's holds and
    health checks per host, and the policy's batches (one batch for a dry run, which
    changes nothing to gate).

    Raise BadInput if the change deploys nothing.
    """
    if not deploys:
        raise BadInput("deploy needs a change naming the version it installs (PACKAGE=VERSION)")
    batches = ((tuple(hosts),) if hosts else ()) if check else update.plan_batches(client, hosts)
    return {
        **(requested or {}),
        "updates_mode": "approved",
        "updates_holds": list(client.contract.updates.holds),
        "updates_approved_versions": dict(deploys),
        "updates_health_checks_by_host": update.match_health_checks(
            client.contract.health_checks, client.hosts, hosts
        ),
        "updates_serial": [len(batch) for batch in batches],
    }


def make_extra_vars(
    client: Client, hosts: Sequence[str], request: RunRequest, *, vault: Vault | None = None
) -> dict[str, Any]:
    """Given a client, the run's hosts and the request (with what its change deploys),
    return the play's extra vars (:func:`deploy_vars`).

    Raise BadInput if the request sets a governed var or its change deploys nothing.
    """
    requested = ungoverned_vars(request, GOVERNED_VARS)
    return deploy_vars(client, hosts, request.deploys, check=request.check, requested=requested)


# --- evidence -----------------------------------------------------------


def host_versions(raw: Mapping[str, Any]) -> dict[str, dict[str, str | None]]:
    """Given one host's raw play evidence, return per deployed package its installed
    version before the deploy and at its end (after a rollback, if any); None: not
    installed."""
    before = raw.get("approved_before") or {}
    after = raw.get("approved_after") or {}
    return {
        str(name): {"before": before.get(name), "after": after.get(name)}
        for name in sorted(raw.get("approved") or {})
    }


def deploy_gaps(
    versions: Mapping[str, Mapping[str, Mapping[str, str | None]]],
    wanted: Mapping[str, str],
    evidence: Mapping[str, Mapping[str, Any]],
) -> dict[str, str]:
    """Given the versions per host and package, what the change deploys and the hosts'
    update evidence, return the hosts that run a deployed package at another version
    than the change's at the end, with why.

    When no host runs any of the packages, every host is one: nothing was deployed.
    """
    running = {
        host
        for host, found in versions.items()
        if any(item["before"] or item["after"] for item in found.values())
    }
    if not running:
        names = ", ".join(sorted(wanted))
        return dict.fromkeys(versions, f"{names} is installed on no host of the run")
    gaps: dict[str, str] = {}
    for host in sorted(running):
        reasons = {
            str(item.get("name")): str(item.get("reason"))
            for item in evidence.get(host, {}).get("not_applicable") or []
        }
        held = {str(item.get("name")) for item in evidence.get(host, {}).get("held") or []}
        missed = []
        for name, version in sorted(wanted.items()):
            item = versions[host].get(name) or {"before": None, "after": None}
            if not (item["before"] or item["after"]) or item["after"] == version:
                continue
            why = "held by the contract" if name in held else reasons.get(name, "not installed")
            missed.append(f"{name} is at {item['after'] or 'none'}, not {version}: {why}")
        if missed:
            gaps[host] = "; ".join(missed)
    return gaps


def make_outcome(
    result: PlaybookResult, preflight: Mapping[str, HostPreflight], before: object = None
) -> ActionOutcome:
    """Given the play's result and preflight, return the deploy's outcome: the update's
    evidence and risks, the deployed versions before and after per host, and a failed
    host for each that runs the application at another version at the end."""
    base = update.make_outcome(result, preflight, before)
    raw_hosts = {host: raw for host, raw in result.evidence.items() if isinstance(raw, Mapping)}
    wanted = next(
        (
            {str(k): str(v) for k, v in (raw.get("approved") or {}).items()}
            for raw in raw_hosts.values()
        ),
        {},
    )
    versions = {host: host_versions(raw) for host, raw in sorted(raw_hosts.items())}
    dry_run = any(raw.get("check") for raw in raw_hosts.values())
    halted = base.evidence.get("halted")
    # A halted window already failed its batch; a dry run installs nothing.
    gaps = (
        {}
        if dry_run or halted or not versions
        else deploy_gaps(versions, wanted, base.evidence.get("hosts") or {})
    )
    notes = {host.host: host for host in base.hosts}
    for host in result.hosts:
        if host.host in gaps:
            notes[host.host] = replace(
                notes.get(host.host, host), status=HostStatus.FAILED, note=gaps[host.host]
            )
    steps = [
        step.replace("then run the update again", "then deploy a corrected version")
        for step in base.next_steps
    ]
    if gaps:
        steps.append(
            "Bring "
            + ", ".join(sorted(gaps))
            + " to the change's version (see why in the hosts' notes), then deploy the change "
            "again: it needs a new approval where the policy requires one."
        )
    return ActionOutcome(
        evidence={
            **base.evidence,
            "deployment": {"packages": wanted, "hosts": versions, "not_deployed": gaps},
        },
        residual_risks=base.residual_risks,
        next_steps=tuple(steps),
        summary=_summary(wanted, versions, gaps, base.summary, dry_run),
        hosts=tuple(notes[name] for name in sorted(notes)),
    )


def _summary(
    wanted: Mapping[str, str],
    versions: Mapping[str, Mapping[str, Mapping[str, str | None]]],
    gaps: Mapping[str, str],
    update_summary: str,
    dry_run: bool,
) -> str:
    if dry_run or not wanted:
        return update_summary
    names = ", ".join(f"{name} {version}" for name, version in sorted(wanted.items()))
    running = [
        host
        for host, found in versions.items()
        if any(item["before"] or item["after"] for item in found.values())
    ]
    reached = [
        host
        for host in running
        if all(
            item["after"] == wanted.get(name)
            for name, item in versions[host].items()
            if item["before"] or item["after"]
        )
    ]
    text = f"{names} on {len(reached)} of {len(running)} host(s) running it; {update_summary}"
    if gaps:
        text += f"; not deployed on {', '.join(sorted(gaps))}"
    return text


ACTION = Action(
    "deploy",
    update.PLAYBOOK,
    make_outcome=make_outcome,
    make_extra_vars=make_extra_vars,
    plan_batches=update.plan_batches,
)
