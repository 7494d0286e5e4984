"""The ``update`` action: controlled package updates in health-gated batches.

The policy decides the scope (``updates.mode``: security, all or approved
versions), whether hosts go in rolling batches (``updates.rolling``: one
canary host, then ``updates.batch_percent`` of the run's hosts per batch)
and the contract adds holds, the approved-versions file and health checks.
All of it travels to ``playbooks/update.yml`` as extra vars; the batches
themselves run inside one ansible-playbook run (``serial`` with
``max_fail_percentage: 0``), where a batch failing its health checks is
rolled back and halts the window. This module plans those vars, and turns
the play's evidence into versions before and after, restarted services,
reboots needed, health and rollbacks per host.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml
from pydantic import StrictStr, TypeAdapter, ValidationError

from webmg_ops.actions.base import Action, ActionOutcome, ungoverned_vars
from webmg_ops.ansible.inventory import InventoryHost
from webmg_ops.ansible.inventory import inventory_order as hosts_in_inventory_order
from webmg_ops.ansible.runner import PlaybookResult
from webmg_ops.ansible.vault import Vault
from webmg_ops.config.clients import client_file
from webmg_ops.config.contract import HealthCheck
from webmg_ops.config.policy import UPDATE_MODE_ORDER, is_looser
from webmg_ops.errors import BadInput
from webmg_ops.remote.preflight import HostPreflight
from webmg_ops.runs.records import HostResult, HostStatus, ResidualRisk, RunRequest

if TYPE_CHECKING:
    from webmg_ops.config.clients import Client

PLAYBOOK = "update.yml"

#: Extra vars that the contract and policy set; a run may not set them itself.
GOVERNED_VARS = frozenset(
    {
        "updates_holds",
        "updates_approved_versions",
        "updates_health_checks",
        "updates_health_checks_by_host",
        "updates_serial",
    }
)

_APPROVED_VERSIONS = TypeAdapter(dict[StrictStr, StrictStr])

Batches = tuple[tuple[str, ...], ...]


# --- planning -----------------------------------------------------------


def batch_sizes(count: int, rolling: bool, percent: int) -> tuple[int, ...]:
    """Given a number of hosts, whether updates roll and the batch percentage, return batch sizes.

    Rolling: one canary host, then batches of ``percent`` of all the hosts
    (rounded down, at least one), as Ansible reads ``serial: [1, "50%"]``.
    Otherwise one batch of every host.
    """
    if count <= 0:
        return ()
    if not rolling or count == 1:
        return (count,)
    size = max(1, count * percent // 100)
    sizes = [1]
    left = count - 1
    while left > 0:
        sizes.append(min(size, left))
        left -= size
    return tuple(sizes)


def split_batches(hosts: Sequence[str], sizes: Iterable[int]) -> Batches:
    """Given hosts in update order and batch sizes, return the batches."""
    batches = []
    start = 0
    for size in sizes:
        batches.append(tuple(hosts[start : start + size]))
        start += size
    return tuple(batch for batch in batches if batch)


def inventory_order(client: Client, hosts: Iterable[str]) -> tuple[str, ...]:
    """Given a client and some of its hosts, return them in inventory order (Ansible's play order).

    The first of them is the canary, so a client's inventory lists its canary host first.
    """
    return hosts_in_inventory_order(client.folder, hosts)


def plan_batches(client: Client, hosts: Sequence[str]) -> Batches:
    """Given a client and the run's hosts, return the batches the update goes in, canary first."""
    ordered = inventory_order(client, hosts)
    sizes = batch_sizes(
        len(ordered),
        bool(client.policy.get("updates.rolling")),
        int(client.policy.get("updates.batch_percent")),
    )
    return split_batches(ordered, sizes)


def _url_host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


#: What the updates role's gate reads of a health check: its argument spec refuses any
#: other key (the monitor's criticality and page-weight budget stay on the controller).
GATE_FIELDS: set[str] = {"name", "url", "expect_status", "max_latency_ms"}


def match_health_checks(
    checks: Sequence[HealthCheck], client_hosts: Sequence[InventoryHost], run_hosts: Iterable[str]
) -> dict[str, list[dict[str, Any]]]:
    """Given the contract's health checks, the client's hosts and the run's hosts,
    return the checks that gate each run host.

    A check gates the hosts whose address (or inventory name) is its URL's
    host. A check whose URL names none of the client's hosts (a load
    balancer, a public name) is service-wide: it gates every host of the run.
    A check of a client host outside the run gates nothing.
    """
    run = list(dict.fromkeys(run_hosts))
    gated: dict[str, list[dict[str, Any]]] = {host: [] for host in run}
    for check in checks:
        target = _url_host(check.url)
        owners = [
            host.name
            for host in client_hosts
            if target in (host.address.lower(), host.name.lower())
        ]
        for host in owners if owners else run:
            if host in gated:
                gated[host].append(check.model_dump(include=GATE_FIELDS))
    return gated


def read_approved_versions(path: Path) -> dict[str, str]:
    """Given an approved-versions file (YAML mapping package -> version), return the mapping.

    Raise BadInput if it cannot be read or is not a mapping of names to
    quoted versions (an unquoted ``1.10`` would read as the number 1.1).
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise BadInput(f"{path}: cannot read the approved versions: {error}") from None
    try:
        return _APPROVED_VERSIONS.validate_python(data if data is not None else {})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in detail['loc']) or 'file'}: {detail['msg']}"
            for detail in error.errors()
        )
        raise BadInput(
            f"{path}: approved versions must map package names to quoted versions ({problems})"
        ) from None


def effective_mode(policy_mode: str, requested: object | None) -> str:
    """Given the policy's update mode and the mode a run asks for (or None), return the mode.

    Raise BadInput if the requested mode is unknown or looser than the policy's.
    """
    if requested is None:
        return policy_mode
    mode = str(requested)
    if mode not in UPDATE_MODE_ORDER:
        raise BadInput(f"updates_mode {mode!r} is not one of {', '.join(UPDATE_MODE_ORDER)}")
    if is_looser("updates.mode", mode, policy_mode):
        raise BadInput(
            f"updates_mode {mode!r} is looser than the policy's {policy_mode!r}: "
            "a run may only make updates stricter (all < security < approved)"
        )
    return mode


def make_extra_vars(
    client: Client, hosts: Sequence[str], request: RunRequest, *, vault: Vault | None = None
) -> dict[str, Any]:
    """Given a client, the run's hosts and the request, return the play's extra vars.

    Mode, holds, approved versions, health checks per host and batch sizes
    come from the contract and policy; the request may only make the mode
    stricter. A dry run goes in one batch: it changes nothing, so there is
    nothing to gate. Raise BadInput if the request sets a governed var or a
    looser mode, or approved mode lacks a readable approved-versions file.
    """
    requested = ungoverned_vars(request, GOVERNED_VARS)
    overrides = client.contract.updates
    mode = effective_mode(
        str(client.policy.get("updates.mode")), requested.pop("updates_mode", None)
    )
    approved: dict[str, str] = {}
    if mode == "approved":
        if overrides.approved_versions_file is None:
            raise BadInput(
                f"{client.name}: approved updates need updates.approved_versions_file in client.yml"
            )
        # Checked again here: the file may have become a symlink since validation.
        approved = read_approved_versions(
            client_file(client.folder, overrides.approved_versions_file)
        )
    batches = ((tuple(hosts),) if hosts else ()) if request.check else plan_batches(client, hosts)
    return {
        **requested,
        "updates_mode": mode,
        "updates_holds": list(overrides.holds),
        "updates_approved_versions": approved,
        "updates_health_checks_by_host": match_health_checks(
            client.contract.health_checks, client.hosts, hosts
        ),
        "updates_serial": [len(batch) for batch in batches],
    }


# --- evidence -----------------------------------------------------------


def parse_versions(entries: Iterable[str]) -> dict[str, str]:
    """Given ``name=version`` entries, return the mapping name -> version."""
    versions = {}
    for entry in entries:
        name, _, version = str(entry).partition("=")
        versions[name] = version
    return versions


def version_changes(
    before: Iterable[str], after: Iterable[str], plan: Iterable[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """Given the ``name=version`` entries gone and new between two states, and the plan,
    return one change per package: ``name``, ``old``, ``new`` (None when installed or
    removed) and ``origin`` (the suite of a planned version, else ``dependency``).
    """
    old = parse_versions(before)
    new = parse_versions(after)
    origins = {
        str(item.get("name")): (str(item.get("new")), str(item.get("origin") or ""))
        for item in plan
    }
    changes = []
    for name in sorted(old.keys() | new.keys()):
        planned = origins.get(name)
        origin = planned[1] if planned and planned[0] == new.get(name) else "dependency"
        changes.append({"name": name, "old": old.get(name), "new": new.get(name), "origin": origin})
    return changes


def services_restarted(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Given running services and their invocation ids before and after, return those restarted."""
    return sorted(
        name for name, invocation in after.items() if name in before and before[name] != invocation
    )


def _health(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        return None
    return {
        "ok": bool(raw.get("ok")),
        "checks": [
            {
                key: check.get(key)
                for key in ("name", "url", "status", "latency_ms", "max_latency_ms", "ok", "error")
            }
            for check in raw.get("checks") or []
            if isinstance(check, Mapping)
        ],
        "services_stopped": list(raw.get("services_stopped") or []),
        "services_inactive": list(raw.get("services_inactive") or []),
    }


def _rollback(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        return None
    return {
        "packages": [
            {"name": change["name"], "from": change["old"], "to": change["new"]}
            for change in version_changes(raw.get("from") or [], raw.get("to") or [])
        ],
        "restored": bool(raw.get("restored")),
        "error": raw.get("error"),
        "health": _health(raw.get("health")),
    }


def _host_outcome(raw: Mapping[str, Any], changes: list[dict[str, Any]]) -> str:
    if raw.get("check"):
        return "would update" if raw.get("plan") else "nothing to update"
    if not raw.get("batch_ready", True):
        return "not updated: unhealthy before the update"
    if raw.get("install_error"):
        return "installation failed"
    if isinstance(raw.get("rollback"), Mapping):
        return "rolled back" if changes else "rolled back with its batch (nothing installed)"
    return "updated" if changes else "nothing to update"


def host_evidence(raw: Mapping[str, Any], batch: int) -> dict[str, Any]:
    """Given one host's raw play evidence and its batch number, return its evidence."""
    changes = version_changes(
        raw.get("updated_from") or [], raw.get("updated_to") or [], raw.get("plan") or []
    )
    rollback = _rollback(raw.get("rollback"))
    health_after = _health(raw.get("health_after"))
    return {
        "batch": batch,
        "check": bool(raw.get("check")),
        "mode": raw.get("mode"),
        "outcome": _host_outcome(raw, changes),
        "packages": changes,
        "planned": [
            {key: item.get(key) for key in ("name", "old", "new", "origin", "security")}
            for item in raw.get("plan") or []
        ],
        "held": [
            {key: item.get(key) for key in ("name", "old", "new", "origin")}
            for item in raw.get("held") or []
        ],
        "not_applicable": list(raw.get("not_applicable") or []),
        "install_error": raw.get("install_error"),
        "services_restarted": services_restarted(
            raw.get("services_before") or {}, raw.get("services_after") or {}
        ),
        "reboot_required": bool(raw.get("reboot_required")),
        "reboot_packages": list(raw.get("reboot_packages") or []),
        "health_before": _health(raw.get("health_before")),
        "health_after": None if raw.get("check") else health_after,
        "rollback": rollback,
    }


def ordered_batches(raw_hosts: Mapping[str, Mapping[str, Any]]) -> Batches:
    """Given each host's raw evidence (``batch`` and ``at``), return the batches as they ran."""
    seen: dict[tuple[str, ...], str] = {}
    for raw in raw_hosts.values():
        batch = tuple(str(host) for host in raw.get("batch") or [])
        at = str(raw.get("at") or "")
        if batch and (batch not in seen or at < seen[batch]):
            seen[batch] = at
    return tuple(sorted(seen, key=lambda batch: (seen[batch], batch)))


def _failing(health: Mapping[str, Any] | None) -> str:
    if not health:
        return "not recorded"
    parts = [
        f"{check['name']}: {check.get('error') or 'failed'}"
        for check in health["checks"]
        if not check.get("ok")
    ]
    parts += [f"{name} stopped" for name in health["services_stopped"]]
    parts += [f"{name} not active" for name in health["services_inactive"]]
    return "; ".join(parts) or "a host of the batch failed"


def _risks(host: str, evidence: Mapping[str, Any]) -> list[ResidualRisk]:
    risks = []
    if evidence["reboot_required"] and not evidence["check"]:
        packages = ", ".join(evidence["reboot_packages"]) or "updated packages"
        risks.append(
            ResidualRisk(
                host,
                "a reboot is required to finish the update",
                f"{packages}; the policy allows no reboot in this window",
            )
        )
    rollback = evidence["rollback"]
    if rollback and not (rollback["restored"] and (rollback["health"] or {}).get("ok")):
        risks.append(
            ResidualRisk(
                host,
                "the rollback did not bring the host back to health",
                rollback["error"] or _failing(rollback["health"]),
            )
        )
    if evidence["held"] and not evidence["check"]:
        names = ", ".join(f"{item['name']} {item['new']}" for item in evidence["held"])
        risks.append(
            ResidualRisk(host, f"{len(evidence['held'])} held update(s) not installed", names)
        )
    for item in evidence["not_applicable"]:
        if "not available" in str(item.get("reason")):
            risks.append(
                ResidualRisk(
                    host,
                    f"approved {item.get('name')} {item.get('version')} not installed",
                    str(item.get("reason")),
                )
            )
    return risks


def _batch_failed(batch: Sequence[str], raw_hosts: Mapping[str, Mapping[str, Any]]) -> bool:
    """Given a batch and the hosts' raw evidence, return whether it halted the window."""
    return any(
        not raw.get("check")
        and not (raw.get("batch_ready", True) and raw.get("batch_healthy", True))
        for raw in (raw_hosts[host] for host in batch if host in raw_hosts)
    )


def describe_halt(
    number: int, batch: Sequence[str], hosts: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Given the number of the batch that halted the window, its hosts and the hosts' evidence,
    return what halted it: when its health failed, why, and whether its rollback restored health.
    """
    before = any(hosts[host]["outcome"].startswith("not updated") for host in batch)
    stage = "health_before" if before else "health_after"
    reason = "; ".join(
        f"{host}: {_failing(hosts[host][stage])}"
        for host in batch
        if not (hosts[host][stage] or {}).get("ok")
    )
    rollbacks = [hosts[host]["rollback"] or {} for host in batch]
    restored = all(
        rollback.get("restored", True) and (rollback.get("health") or {"ok": True})["ok"]
        for rollback in rollbacks
    )
    return {
        "batch": number,
        "hosts": list(batch),
        "when": "before the update" if before else "after the update",
        "reason": reason or "a host of the batch failed",
        "rolled_back": not before,
        "health_restored": None if before else restored,
    }


def make_outcome(
    result: PlaybookResult, preflight: Mapping[str, HostPreflight], before: object = None
) -> ActionOutcome:
    """Given the play's result and preflight, return the update's evidence, risks and host notes.

    Hosts whose batch never started (the window halted) are marked excluded,
    with the reason, instead of "no result recorded".
    """
    raw_hosts = {host: raw for host, raw in result.evidence.items() if isinstance(raw, Mapping)}
    batches = ordered_batches(raw_hosts)
    number = {host: index for index, batch in enumerate(batches, 1) for host in batch}
    dry_run = any(raw.get("check") for raw in raw_hosts.values())
    hosts = {
        host: host_evidence(raw, number.get(host, 0)) for host, raw in sorted(raw_hosts.items())
    }
    not_started = [
        host.host
        for host in result.hosts
        if host.host not in raw_hosts and host.status is HostStatus.UNKNOWN
    ]
    failed = next(
        (index for index, batch in enumerate(batches, 1) if _batch_failed(batch, raw_hosts)), None
    )
    halted = None if failed is None else describe_halt(failed, batches[failed - 1], hosts)
    risks = [risk for host, evidence in hosts.items() for risk in _risks(host, evidence)]
    notes: list[HostResult] = []
    steps: list[str] = []
    if halted is not None:
        note = f"not started: the window halted after batch {failed} failed its health checks"
        notes = [
            replace(host, status=HostStatus.EXCLUDED, note=note)
            for host in result.hosts
            if host.host in not_started
        ]
        risks += [ResidualRisk(host, "not updated in this window", note) for host in not_started]
        if halted["health_restored"] is False:
            steps.append("Restore the service now: the rollback did not bring it back to health.")
        steps.append(
            f"Find why batch {failed} ({', '.join(halted['hosts'])}) failed its health checks "
            f"{halted['when']} ({halted['reason']}), then run the update again."
        )
    if any(evidence["reboot_required"] and not evidence["check"] for evidence in hosts.values()):
        steps.append("Reboot the hosts that need it in a window whose policy allows reboots.")
    if any(evidence["held"] for evidence in hosts.values()):
        steps.append("Review the held packages' pending updates with the client.")
    return ActionOutcome(
        evidence={
            "mode": next((evidence["mode"] for evidence in hosts.values()), None),
            # A dry run goes in one batch: batches would say nothing of a real window.
            "batches": [] if dry_run else [list(batch) for batch in batches],
            "halted": halted,
            "not_started": not_started,
            "hosts": hosts,
        },
        residual_risks=tuple(risks),
        next_steps=tuple(steps),
        summary=_summary(hosts, halted, not_started),
        hosts=tuple(notes),
    )


def _summary(
    hosts: Mapping[str, Mapping[str, Any]], halted: Mapping[str, Any] | None, not_started: list[str]
) -> str:
    if any(evidence["check"] for evidence in hosts.values()):
        would = [host for host, evidence in hosts.items() if evidence["planned"]]
        count = sum(len(evidence["planned"]) for evidence in hosts.values())
        return (
            f"dry run: {count} package update(s) would be installed on {len(would)} of "
            f"{len(hosts)} host(s)"
        )
    updated = [host for host, evidence in hosts.items() if evidence["outcome"] == "updated"]
    count = sum(len(hosts[host]["packages"]) for host in updated)
    text = f"{count} package change(s) on {len(updated)} of {len(hosts) + len(not_started)} host(s)"
    if halted is not None:
        restored = {True: "health restored", False: "health NOT restored", None: ""}[
            halted["health_restored"]
        ]
        action = f"rolled back, {restored}" if halted["rolled_back"] else "nothing changed on it"
        text += (
            f"; the window halted at batch {halted['batch']} ({', '.join(halted['hosts'])}): "
            f"health checks failed {halted['when']}; {action}"
        )
        if not_started:
            text += f"; {len(not_started)} host(s) not started"
    return text


ACTION = Action(
    "update",
    PLAYBOOK,
    make_outcome=make_outcome,
    make_extra_vars=make_extra_vars,
    plan_batches=plan_batches,
)
