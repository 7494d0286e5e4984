"""The ``harden`` action: the security baseline, measured before and after.

Compliance (:mod:`webmg_ops.compliance`) is checked before the play and,
for a real run, after it; the evidence holds both scores and the controls
that fail. In check mode (``--check``, the drift check) the role reports
what it would change, and every control that passed in the last recorded
real hardening run of a host but fails now is drift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webmg_ops.actions import ActionOutcome
from webmg_ops.clients import Client
from webmg_ops.compliance import (
    HostCompliance,
    percent,
    run_compliance,
    score,
    statuses,
    to_document,
)
from webmg_ops.controls import CONTROLS, ControlStatus, root_login_setting
from webmg_ops.ledger import open_ledger
from webmg_ops.preflight import HostPreflight
from webmg_ops.runner import ANSIBLE_CFG, PlaybookResult
from webmg_ops.runs import RUN_FINISHED, ResidualRisk, RunRequest
from webmg_ops.settings import Settings

PLAYBOOK = "harden.yml"

#: Extra vars given as ``KEY=a,b`` on the command line that the role reads as lists.
LIST_VARS = frozenset({"hardening_management_networks"})

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


def make_extra_vars(client: Client, hosts: Sequence[str], request: RunRequest) -> dict[str, Any]:
    """Given a client, the run's hosts and the request, return the play's extra vars.

    Root login follows the client's level; list variables may be given as
    comma-separated text.
    """
    extra: dict[str, Any] = dict(request.extra_vars)
    for name in LIST_VARS & set(extra):
        if isinstance(extra[name], str):
            extra[name] = [item.strip() for item in extra[name].split(",") if item.strip()]
    extra["hardening_ssh_permit_root_login"] = root_login_setting(client.policy.level.value)
    return extra


def last_hardened(settings: Settings, client: str) -> dict[str, dict[str, str]]:
    """Given the settings and a client, return host -> control -> status as the last real
    hardening run of each host left it (empty for a host never hardened).
    """
    found: dict[str, dict[str, str]] = {}
    with open_ledger(settings.ledger_url, create=False) as ledger:
        for entry in ledger.entries(client=client, kinds=(RUN_FINISHED,)):
            payload = entry.payload
            if payload.get("action") != "harden" or payload.get("check"):
                continue
            after = (payload.get("evidence") or {}).get("compliance_after") or {}
            found.update(statuses(after))
    return found


def before_play(
    settings: Settings, client: Client, hosts: Sequence[str], request: RunRequest
) -> Before:
    """Given the settings, client, hosts and request, return the compliance before the play
    and the state the last real hardening run left.
    """
    own = client.folder / "ansible.cfg"
    ansible_cfg = own if own.is_file() else ANSIBLE_CFG
    return Before(
        client=client,
        hosts=tuple(hosts),
        check=request.check,
        ansible_cfg=ansible_cfg,
        compliance=tuple(run_compliance(client, hosts, ansible_cfg, request.vault_password_file)),
        vault_password_file=request.vault_password_file,
        baseline=last_hardened(settings, client.name),
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
