"""The ``diagnose`` action: the scoping diagnostic of a client or a prospect.

Read-only and allowed at any time. The play is the check's (OS, pending
updates, listening services, disk); before it, the controller measures
compliance, reads the backups and drills on record and the TLS state of the
health-check URLs. The outcome combines them with the contract's fit
questionnaire (:mod:`webmg_ops.scoping.diagnostic`): fit or not, the recommended
level with its budget marker, and a prioritised action plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from webmg_ops.actions.base import Action, ActionOutcome, RunContext
from webmg_ops.actions.check import make_outcome as check_outcome
from webmg_ops.ansible.runner import PlaybookResult, ansible_cfg_for
from webmg_ops.config.clients import Client
from webmg_ops.config.durations import format_duration
from webmg_ops.errors import EnvironmentProblem
from webmg_ops.hardening.compliance import run_compliance, to_document
from webmg_ops.ledger import LedgerReader
from webmg_ops.remote.preflight import HostPreflight
from webmg_ops.runs.records import ResidualRisk
from webmg_ops.schedule.due import clients_due
from webmg_ops.scoping import diagnostic

PLAYBOOK = "check.yml"


@dataclass(frozen=True)
class Before:
    """What the controller measured before the play."""

    client: Client
    compliance: Mapping[str, Any]
    backups: Mapping[str, Any]
    certificates: tuple[Mapping[str, Any], ...]
    at: datetime


def backups_on_record(history: LedgerReader, client: Client, at: datetime) -> dict[str, Any]:
    """Given the ledger's history, a client and the time, return its last successful backup
    and drill on record, the backup's age and whether it is overdue for its cadence (as
    ``due`` reckons them).
    """
    (due,) = clients_due(history, [client], at)
    last = {item.action: item for item in due.actions if item.action in ("backup", "drill")}
    # A contract without a backup repository has neither due: nothing on record either.
    backup = last["backup"].last_success if "backup" in last else None
    drill = last["drill"].last_success if "drill" in last else None
    found: dict[str, Any] = {
        "last_backup": backup.isoformat() if backup else None,
        "last_drill": drill.isoformat() if drill else None,
        "repository": client.contract.backup.repository,
    }
    if backup is not None:
        found["age"] = format_duration(at - backup)
        found["overdue"] = last["backup"].due
    return found


def _compliance(
    client: Client, hosts: Sequence[str], vault_password_file: Path | None
) -> dict[str, Any]:
    # The client's own tuning, as every other Ansible run of the client uses it.
    ansible_cfg = ansible_cfg_for(client.folder)
    try:
        checked = run_compliance(client, hosts, ansible_cfg, vault_password_file)
    except EnvironmentProblem as problem:
        return {"error": problem.message, "hosts": {}, "ansible_cfg": str(ansible_cfg)}
    document = {**to_document(client.name, checked), "ansible_cfg": str(ansible_cfg)}
    # The scores and failing controls are the diagnostic's; the per-control
    # detail belongs to `compliance` and `harden`.
    for host in document["hosts"].values():
        host.pop("controls", None)
    return document


def before_play(context: RunContext, hosts: tuple[str, ...]) -> Before:
    """Given the run and its hosts, measure what the play cannot: compliance, backups on
    record and certificates. Changes nothing.
    """
    client, request = context.client, context.request
    at = datetime.now(UTC)
    return Before(
        client=client,
        compliance=_compliance(client, hosts, request.vault_password_file),
        backups=backups_on_record(context.history, client, at),
        certificates=tuple(
            diagnostic.certificate_expiry(check.url) for check in client.contract.health_checks
        ),
        at=at,
    )


def make_outcome(
    result: PlaybookResult, preflight: Mapping[str, HostPreflight], before: Before
) -> ActionOutcome:
    """Given the play's result, preflight and what was measured before, return the
    diagnostic: verdict, recommended level, action plan, and the facts behind them.
    """
    checked = check_outcome(result, preflight)
    hosts: dict[str, dict[str, Any]] = {
        host: dict(facts) for host, facts in checked.evidence.get("hosts", {}).items()
    }
    for facts in hosts.values():
        facts["os_support"] = diagnostic.os_support(str(facts.get("os") or ""), before.at.date())
    contract = before.client.contract
    fit = diagnostic.assess_fit(contract)
    recommendation = diagnostic.recommend_level(contract)
    plan = diagnostic.action_plan(
        fit, recommendation, hosts, before.compliance, before.backups, before.certificates
    )
    document = diagnostic.to_document(fit, recommendation, plan)
    risks = list(checked.residual_risks)
    risks.extend(
        ResidualRisk(
            host, f"{facts['os_support']['os']}: {facts['os_support']['detail']}", "OS support"
        )
        for host, facts in hosts.items()
        if facts["os_support"]["status"] in ("lts", "ended")
    )
    summary = (
        f"{fit.verdict}; recommended level {recommendation.level.value} "
        f"({recommendation.budget_marker}); {len(plan)} action(s) in the plan"
    )
    return ActionOutcome(
        evidence={
            "diagnostic": document,
            "hosts": hosts,
            "compliance": dict(before.compliance),
            "backups": dict(before.backups),
            "certificates": [dict(item) for item in before.certificates],
        },
        residual_risks=tuple(risks),
        next_steps=tuple(f"P{item.priority} {item.action} ({item.finding})" for item in plan[:8]),
        summary=summary,
    )


ACTION = Action("diagnose", PLAYBOOK, make_outcome=make_outcome, before_play=before_play)
