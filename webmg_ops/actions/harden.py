"""The ``harden`` action: the security baseline, measured before and after.

Compliance (:mod:`webmg_ops.hardening.compliance`) is checked before the play and,
for a real run, after it; the evidence holds both scores and the controls
that fail. In check mode (``--check``, the drift check) the role reports
what it would change, and every control that passed in the last recorded
real hardening run of a host but fails now is drift.

The backup target is the agency's own infrastructure: a client's run never
hardens it (its firewall would decide who reaches every client's backups),
and an explicit ``--limit`` naming it is refused. Every host hardened needs
the agency's management networks (``hardening_management_networks``) from
its inventory: there is no default, so a real client cannot end up
accepting SSH only from the lab.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webmg_ops.actions.base import Action, ActionOutcome, RunContext
from webmg_ops.ansible.connection import read_inventory_variables
from webmg_ops.ansible.inventory import LAB_NETWORK, is_lab_address
from webmg_ops.ansible.runner import PlaybookResult, ansible_cfg_for
from webmg_ops.ansible.vault import Vault
from webmg_ops.config.clients import Client
from webmg_ops.errors import BadInput
from webmg_ops.hardening.compliance import (
    HostCompliance,
    percent,
    run_compliance,
    score,
    statuses,
    to_document,
)
from webmg_ops.hardening.controls import CONTROLS, ControlStatus, root_login_setting
from webmg_ops.ledger import LedgerReader
from webmg_ops.remote.preflight import HostPreflight
from webmg_ops.runs.records import RUN_FINISHED, ResidualRisk, RunRequest

PLAYBOOK = "harden.yml"

#: The agency's management networks: the only sources of SSH once a host is hardened.
MANAGEMENT_NETWORKS = "hardening_management_networks"

#: Extra vars given as ``KEY=a,b`` on the command line that the role reads as lists.
LIST_VARS = frozenset({MANAGEMENT_NETWORKS})

_TITLES = {control.id: control.title for control in CONTROLS}


@dataclass(frozen=True)
class Before:
    """What the action measured before the play."""

    client: Client
    hosts: tuple[str, ...]
    check: bool
    ansible_cfg: Path
    compliance: tuple[HostCompliance, ...]
    #: host -> control -> status after the last recorded real hardening run.
    baseline: Mapping[str, Mapping[str, str]]
    vault_password_file: Path | None = None
    #: Whether the client's run log shows every control with its evidence (policy
    #: ``hardening.evidence_per_control``), not only the scores and failing controls.
    per_control: bool = False


def _bad_network(value: str) -> str | None:
    """Given one management network as written, return why it is refused (None if fine)."""
    if "{{" in value:
        return None  # a template: Ansible resolves it, the role's argument spec checks it
    try:
        ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return f"{value!r} is not a network in CIDR form (203.0.113.0/24)"
    return None


def check_management_networks(host: str, address: str, networks: Any, where: str) -> None:
    """Given a host, its address, its management networks and where they were set, return
    None when they can be used.

    Raise BadInput if they are missing or empty, not networks, or the rehearsal
    lab's range on a host outside the lab (a demo inventory's value copied).
    """
    if not networks:
        raise BadInput(
            f"{where}: {MANAGEMENT_NETWORKS} is not set for {host}; set the agency's "
            "management networks (the only sources of SSH after hardening) in the "
            "client's group_vars"
        )
    if isinstance(networks, str) or not isinstance(networks, Sequence):
        raise BadInput(f"{where}: {MANAGEMENT_NETWORKS} of {host} must be a list of networks")
    for value in networks:
        problem = _bad_network(str(value))
        if problem:
            raise BadInput(f"{where}: {MANAGEMENT_NETWORKS} of {host}: {problem}")
        if "{{" in str(value) or is_lab_address(address):
            continue
        if ipaddress.ip_network(str(value).strip(), strict=False).overlaps(LAB_NETWORK):
            raise BadInput(
                f"{where}: {MANAGEMENT_NETWORKS} of {host} ({address}, outside the lab) "
                f"includes the rehearsal lab's range {LAB_NETWORK}; set the agency's "
                "management networks"
            )


def _require_management_networks(
    client: Client, hosts: Sequence[str], vault: Vault, extra: Mapping[str, Any]
) -> None:
    """Given a client, the hosts hardened, the vault and the extra vars, return None when
    every host has management networks that can be used. Raise BadInput otherwise.
    """
    addresses = {host.name: host.address for host in client.hosts}
    if MANAGEMENT_NETWORKS in extra:
        for host in hosts:
            check_management_networks(
                host, addresses.get(host, host), extra[MANAGEMENT_NETWORKS], "-e"
            )
        return
    variables = read_inventory_variables(client.folder, vault).variables
    for host in hosts:
        networks = (variables.get(host) or {}).get(MANAGEMENT_NETWORKS)
        check_management_networks(host, addresses.get(host, host), networks, str(client.folder))


def make_extra_vars(
    client: Client, hosts: Sequence[str], request: RunRequest, *, vault: Vault | None = None
) -> dict[str, Any]:
    """Given a client, the run's hosts and the request, return the play's extra vars.

    Root login follows the client's level; list variables may be given as
    comma-separated text. Raise BadInput if a host to harden lacks valid
    management networks.
    """
    extra: dict[str, Any] = dict(request.extra_vars)
    for name in LIST_VARS & set(extra):
        if isinstance(extra[name], str):
            extra[name] = [item.strip() for item in extra[name].split(",") if item.strip()]
    _require_management_networks(client, hosts, vault or Vault(request.vault_password_file), extra)
    extra["hardening_ssh_permit_root_login"] = root_login_setting(client.policy.level.value)
    # The controls that start at a higher level (the rootkit scanner) follow it in the role.
    extra["hardening_service_level"] = client.policy.level.value
    return extra


def last_hardened(history: LedgerReader, client: str) -> dict[str, dict[str, str]]:
    """Given the ledger's history and a client, return host -> control -> status as the
    last real hardening run of each host left it (empty for a host never hardened).
    """
    found: dict[str, dict[str, str]] = {}
    for entry in history.entries(client=client, kinds=(RUN_FINISHED,)):
        payload = entry.payload
        if payload.get("action") != "harden" or payload.get("check"):
            continue
        after = (payload.get("evidence") or {}).get("compliance_after") or {}
        found.update(statuses(after))
    return found


def before_play(context: RunContext, hosts: tuple[str, ...]) -> Before:
    """Given the run and its hosts, return the compliance before the play and the state
    the last real hardening run left.
    """
    client, request = context.client, context.request
    ansible_cfg = ansible_cfg_for(client.folder)
    hardened = tuple(hosts)
    return Before(
        client=client,
        hosts=hardened,
        check=request.check,
        ansible_cfg=ansible_cfg,
        compliance=tuple(
            run_compliance(client, hardened, ansible_cfg, request.vault_password_file)
        ),
        vault_password_file=request.vault_password_file,
        baseline=last_hardened(context.history, client.name),
        per_control=bool(client.policy.get("hardening.evidence_per_control")),
    )


def find_drift(
    baseline: Mapping[str, Mapping[str, str]], now: Mapping[str, Mapping[str, str]]
) -> dict[str, list[str]]:
    """Given host -> control -> status after the last hardening and now, return per host the
    controls that passed then and fail now.
    """
    drift: dict[str, list[str]] = {}
    for host, controls in now.items():
        was = baseline.get(host) or {}
        lost = sorted(
            cid
            for cid, status in controls.items()
            if status == ControlStatus.FAIL and was.get(cid) == ControlStatus.PASS
        )
        if lost:
            drift[host] = lost
    return drift


def _host_summary(host: HostCompliance) -> dict[str, Any]:
    return {
        "error": host.error,
        "passed": host.passed,
        "applicable": host.applicable,
        "percent": percent(host.passed, host.applicable),
        "failed": host.with_status(ControlStatus.FAIL),
        "residual_risk": host.with_status(ControlStatus.RESIDUAL_RISK),
    }


def make_outcome(
    result: PlaybookResult, preflight: Mapping[str, HostPreflight], before: Before
) -> ActionOutcome:
    """Given the play's result, preflight and what was measured before, return the
    hardening evidence: scores and failing controls before and after, drift in check mode.
    """
    raw = {host: data for host, data in result.evidence.items() if isinstance(data, Mapping)}
    after = (
        before.compliance
        if before.check
        else tuple(
            run_compliance(
                before.client, before.hosts, before.ansible_cfg, before.vault_password_file
            )
        )
    )
    before_doc = to_document(before.client.name, before.compliance)
    after_doc = to_document(before.client.name, after)
    drift = find_drift(before.baseline, statuses(before_doc)) if before.check else {}
    would_change = {
        host: list(data.get("changed_areas") or []) for host, data in sorted(raw.items())
    }
    after_by_host = {host.host: host for host in after}
    hosts: dict[str, Any] = {}
    risks: list[ResidualRisk] = []
    for host in before.compliance:
        now = after_by_host.get(host.host, host)
        fixed = sorted(
            set(host.with_status(ControlStatus.FAIL)) - set(now.with_status(ControlStatus.FAIL))
        )
        hosts[host.host] = {
            "before": _host_summary(host),
            "after": None if before.check else _host_summary(now),
            "fixed": [] if before.check else fixed,
            "would_fix": host.with_status(ControlStatus.FAIL) if before.check else [],
            "changed_areas": would_change.get(host.host, []),
            "drift": drift.get(host.host, []),
        }
        if now.error:
            risks.append(ResidualRisk(host.host, "compliance not checked", now.error))
        for item in now.results:
            if item.status is ControlStatus.RESIDUAL_RISK:
                risks.append(
                    ResidualRisk(host.host, f"{item.control} {_TITLES[item.control]}", item.detail)
                )
            elif item.status is ControlStatus.FAIL and not before.check:
                risks.append(
                    ResidualRisk(
                        host.host,
                        f"{item.control} still fails: {_TITLES[item.control]}",
                        item.detail,
                    )
                )
        for cid in drift.get(host.host, []):
            risks.append(
                ResidualRisk(
                    host.host, f"drift: {cid} {_TITLES[cid]}", "passed after the last hardening"
                )
            )
    passed_before, applicable_before = score(before.compliance)
    passed_after, applicable_after = score(after)
    steps: list[str] = []
    if drift:
        steps.append("Find who changed the drifted settings, then run harden in a window.")
    if before.check and any(item["would_fix"] for item in hosts.values()):
        steps.append("Run harden in the next window to fix the failing controls.")
    if not before.check and any(item["after"]["failed"] for item in hosts.values()):
        steps.append("Review the controls that still fail; record an exception or fix them.")
    evidence: dict[str, Any] = {
        "check": before.check,
        "score_before": {
            "passed": passed_before,
            "applicable": applicable_before,
            "percent": percent(passed_before, applicable_before),
        },
        "score_after": None
        if before.check
        else {
            "passed": passed_after,
            "applicable": applicable_after,
            "percent": percent(passed_after, applicable_after),
        },
        "drift": drift,
        "hosts": hosts,
        "controls": {control.id: control.title for control in CONTROLS},
        "compliance_before": before_doc,
        "compliance_after": None if before.check else after_doc,
        "per_control": before.per_control,
    }
    if before.check:
        count = sum(len(item) for item in drift.values())
        summary = (
            f"drift check: {count} control(s) drifted on {len(drift)} host(s); "
            f"score {passed_before}/{applicable_before}"
        )
    else:
        summary = (
            f"compliance {passed_before}/{applicable_before} before, "
            f"{passed_after}/{applicable_after} after, on {len(hosts)} host(s)"
        )
    return ActionOutcome(
        evidence=evidence,
        residual_risks=tuple(risks),
        next_steps=tuple(steps),
        summary=summary,
    )


ACTION = Action(
    "harden",
    PLAYBOOK,
    make_outcome=make_outcome,
    make_extra_vars=make_extra_vars,
    before_play=before_play,
)
