"""Building a run's records: ``run-started``, ``run-refused`` and ``run-finished``.

Every payload is masked with the run's secrets before it is handed to
the ledger.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from webmg_ops import __version__
from webmg_ops.actions.base import ActionOutcome, RunContext
from webmg_ops.ansible.revision import project_revision
from webmg_ops.ansible.runner import PLAYBOOKS, PlaybookResult
from webmg_ops.config.clients import Client
from webmg_ops.engine.governance import Clearance, PolicyRefusal
from webmg_ops.engine.plan import policy_summary
from webmg_ops.engine.reconcile import process_start_time
from webmg_ops.ledger import Entry, Ledger
from webmg_ops.remote.preflight import HostPreflight
from webmg_ops.reports.runlog import render_refusal_log
from webmg_ops.runs.records import (
    RUN_REFUSED,
    HostResult,
    HostStatus,
    Outcome,
    ResidualRisk,
    RunFinished,
    RunRefused,
    RunRequest,
    RunStarted,
    new_run_id,
    to_payload,
)
from webmg_ops.secrets import SecretSet
from webmg_ops.settings import Settings


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"webmg-ops": __version__}
    for package in ("ansible-core", "ansible-runner"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "missing"
    return found


def record_refusal(
    settings: Settings,
    ledger: Ledger,
    client: Client,
    request: RunRequest,
    refusal: PolicyRefusal,
    secrets: SecretSet,
    now: datetime,
) -> Entry:
    entry = ledger.append(
        RUN_REFUSED,
        client.name,
        secrets.mask_data(
            to_payload(
                RunRefused(
                    action=request.action,
                    refusal=refusal.refusal,
                    message=refusal.message,
                    check=request.check,
                    emergency=request.emergency,
                    reason=request.reason,
                    ticket=request.ticket,
                    incident=request.incident,
                )
            )
        ),
    )
    run_id = new_run_id(client.name, request.action, now)
    refusal.run_log = render_refusal_log(
        entry, client.contract, settings.var_dir, run_id, secrets=secrets
    ).markdown
    return entry


def outcome_of(
    result: PlaybookResult | None,
    hosts: tuple[HostResult, ...],
    canceled: bool,
    controller_ok: bool = False,
) -> Outcome:
    if canceled or (result is not None and result.canceled):
        return Outcome.CANCELED
    if not controller_ok and (result is None or not result.ok):
        return Outcome.FAILED
    if not all(host.status.carried_out for host in hosts):
        return Outcome.FAILED
    return Outcome.SUCCEEDED


@dataclass
class Played:
    """What the work of a run left, however it ended."""

    hosts: tuple[HostResult, ...] = ()
    result: PlaybookResult | None = None
    preflight: dict[str, HostPreflight] = field(default_factory=dict)
    outcome_detail: ActionOutcome = field(default_factory=ActionOutcome)
    controller_ok: bool = False
    stopped_by: BaseException | None = None
    error_note: str = ""


def started_payload(
    context: RunContext, playbook: Path | None, clearance: Clearance, secrets: SecretSet
) -> dict[str, Any]:
    """Given a run about to start, its playbook (None: on the controller), what cleared it
    and its secrets, return the masked ``run-started`` payload: what governed the run and
    what ran it.
    """
    request = context.request
    payload: dict[str, Any] = secrets.mask_data(
        to_payload(
            RunStarted(
                run_id=context.run_id,
                action=request.action,
                check=request.check,
                emergency=request.emergency,
                reason=request.reason,
                ticket=request.ticket,
                window=clearance.window or clearance.overridden,
                hosts=context.hosts,
                limit=request.limit,
                playbook=(
                    str(playbook.relative_to(PLAYBOOKS.parent)) if playbook else "controller"
                ),
                revision=project_revision(),
                versions=_versions(),
                pid=os.getpid(),
                pid_start=process_start_time(os.getpid()),
                controller=socket.gethostname(),
                approval_seq=clearance.approval_seq,
                policy=policy_summary(context.client),
                # Also when the window was open: a gate passed in an emergency is named.
                overridden=clearance.overridden,
                incident=request.incident,
                change=request.change,
                job=None
                if request.job is None
                else {"id": request.job, "worker_pid": os.getppid()},
            )
        )
    )
    return payload


def preflight_status(check: HostPreflight | None) -> HostStatus:
    """Given a host's preflight (None: never checked), return its status in a run it was
    left out of."""
    if check is None:
        return HostStatus.UNKNOWN
    if check.check.value == "unreachable":
        return HostStatus.UNREACHABLE
    return HostStatus.EXCLUDED


def finished_payload(
    context: RunContext, started: Entry, duration_s: float, played: Played, secrets: SecretSet
) -> dict[str, Any]:
    """Given a run, its ``run-started`` entry, its duration, what its work left and its
    secrets, return the masked ``run-finished`` payload: the outcome, each host's result,
    the evidence and the residual risks.
    """
    outcome = outcome_of(played.result, played.hosts, context.cancel(), played.controller_ok)
    detail = played.outcome_detail
    risks = list(detail.residual_risks)
    for host, check in played.preflight.items():
        if not check.ready:
            risks.append(
                ResidualRisk(host, f"excluded by preflight: {check.check.value}", check.message)
            )
    summary = detail.summary
    if played.error_note:
        stopped = f"stopped by {played.error_note}"
        summary = f"{summary}; {stopped}" if summary else stopped
    evidence = dict(detail.evidence)
    evidence["preflight"] = {
        host: {
            "check": check.check.value,
            "message": check.message,
            "free_mb": check.free_mb,
            "reboot_pending": check.reboot_pending,
        }
        for host, check in played.preflight.items()
    }
    payload = to_payload(
        RunFinished(
            run_id=context.run_id,
            action=context.request.action,
            check=context.request.check,
            outcome=outcome,
            started_seq=started.seq,
            duration_s=round(duration_s, 3),
            hosts=played.hosts,
            evidence=evidence,
            residual_risks=tuple(risks),
            next_steps=detail.next_steps,
            summary=summary,
        )
    )
    masked: dict[str, Any] = secrets.mask_data(payload)
    return masked
